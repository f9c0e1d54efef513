"""The frame pipeline: a frame and a class in, an Explanation out. One sequence of stages (`stages`) run with two
sets of kernels: `host` (numpy and OpenCV around a CPU runner of `runners`: ONNX Runtime, OpenVINO; never torch) and
`device` (torch on the backend's device: a GPU, or torch-cpu through the host kernels), with their compositing
(`composite_host`, `composite_device`); plus what surrounds it: `framing` (regions, aspect), `gate` (classes the black
box does not see), `temporal` (the mask averaged over time), `live` (the evidence stream beside the live view),
`views` (the one picture composer), `gpu_probe` (is there an NVIDIA GPU, without torch).

Imports only the bottom of engine (classes, contract, errors, paths, closing): no models, no backends (the device
kernels take any object with a torch backend's `infer`), so the CPU runtime's modules stay torch-free (an import-linter
contract lists them)."""
