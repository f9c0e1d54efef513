"""Training a masking model (`python -m trainer train`): the command (`train`), its configuration and presets
(`config`), the schedule (`schedule`), one step of the paper's objective (`step`), the loop (`loop`) with checkpoints
(`checkpoint`), several processes (`distributed`), the log (`runlog`), validation on boxes during training
(`validation`), the result written as a model file (`result`) and the final evaluation and shipping (`finalise`).
May import trainer.evaluation, trainer.data and the trainer's base (cli, objective, evidence); never trainer.studies."""
