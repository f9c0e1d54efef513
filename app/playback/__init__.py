"""Where the frames come from: sources (camera, file, image, stream: `sources`), decoding and preparing ahead of the
player (`read_ahead`), frame-exact jumps in files (`file_seeker`, PyAV, checked against `frame_index`'s fingerprints)
and real-time pacing (`pacing`). Plain Python and threads, no Qt widgets; imports app.state and engine only."""
