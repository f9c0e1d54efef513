"""Video for the engine: reading files and cameras (`reader`, OpenCV), the per-frame table of a file's explanations
(`frametable`), explaining a clip as a sequence (`sequence`: batches with the average over time) and measuring how
steady a clip's explanations are (`steadiness`). `reader` and `frametable` import only the bottom of engine (contract,
errors, closing) and are torch-free; `sequence` and `steadiness` explain through engine.api, so this package sits above
it. Never imports tools."""
