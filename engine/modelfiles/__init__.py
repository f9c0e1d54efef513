"""Model files: the card (`card`, read from a .safetensors header or an exported folder's NAME.card.json, torch-free),
the weights (`modelfile`, `loading`: torch), an exported folder's ONNX graphs (`exported`, torch-free) and the index
of graphs exported on this machine (`prepared`, torch-free; `export_format` says which exports it may trust).
May import engine.models and the bottom of engine (classes, contract, errors, paths); nothing above."""
