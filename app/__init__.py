"""The PyQt6 desktop app. Never imports torch: it talks to `engine.api`, loaded lazily in the worker thread."""

import os

# OpenCV reads these when it first loads, and the app's modules load it: without them, looking for a webcam that is
# not there prints "can't open camera by index" warnings, and FFmpeg prints decoder chatter, on every launch. The app
# says what it found in its own words (the status bar); a user's own setting wins.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
