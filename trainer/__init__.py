"""Training and evaluation of masking models against a frozen black box (uses engine; never Qt or app)."""
