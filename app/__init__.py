"""The PyQt6 desktop app. Never imports torch: it talks to `engine.api`, loaded lazily in the worker thread."""
