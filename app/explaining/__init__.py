"""From frames to explanations on screen, off the GUI thread: the scheduling (`scheduler`: plain Python, tested without
Qt; the newest request wins), the QThread around it (`worker`), the one-slot hand-over between them (`mailbox`), what
comes back (`results`), the steady auto class (`live_steadiness`) and the status bar's counters (`stats`). Imports
app.playback, app.state and engine.api; never the widgets or the window."""
