"""Small widgets, each bound to one part of AppState (napari's layer controls are the model)."""
