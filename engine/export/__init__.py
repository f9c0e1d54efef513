"""ONNX export by job: `make` (the graphs to ONNX, FP32 and FP16), `optimise` (pads folded, dead nodes removed),
`check` (the comparator against PyTorch FP32) and `cache` (the exported files, keyed by model)."""
