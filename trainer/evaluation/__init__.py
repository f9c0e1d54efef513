"""Evaluating masks (`python -m trainer evaluate`): localisation error and the saliency metric (`metrics`), the
baselines (`baselines`: centre box, gradient, Grad-CAM, RISE, per-image optimisation), deletion / insertion and the
app's evidence (`faithfulness`), scoring a method over a boxes set (`scoring`), the tables (`report`), the command and
its arguments (`evaluate`, `evaluate_args`) and picture grids (`grid`). May import trainer.data and the trainer's
base (cli, objective, evidence); never trainer.training or trainer.studies."""
