"""The bundled assets (masking models, demo clip), installed as the package `live_saliency_assets`.

In the repository this is the top-level assets/ folder; pyproject.toml maps it to that package so that a wheel
carries it. Read the files through `engine.paths` (DEFAULT_MODEL, DEMO_CLIP, bundled_models()), which finds them
in a checkout and in an installed wheel alike.
"""
