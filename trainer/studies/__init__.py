"""One-off studies behind decisions in the docs: what the saliency metric rewards (`saliency_study`), masks for
classes the black box barely sees (`weak_classes`) and the gate's threshold (`gate`). May import trainer.evaluation
and trainer.data; nothing imports them but `python -m trainer`."""
