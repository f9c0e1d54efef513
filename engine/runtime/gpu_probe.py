"""Is there an NVIDIA GPU? Asked of the CUDA driver itself (libcuda, through ctypes), without importing torch.

`auto` needs the answer before it decides whether to load torch at all: on a machine without an NVIDIA GPU the CPU
runtime never imports torch (1.2 to 2.5 s here); with one, the GPU backends (TensorRT, torch-cuda) come first.
"""

from __future__ import annotations

import ctypes
import os
import sys
from functools import lru_cache

_DRIVER_LIBRARIES = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")


@lru_cache(maxsize=1)
def nvidia_gpu_count() -> int:
    """The number of CUDA devices the driver sees (honouring CUDA_VISIBLE_DEVICES); 0 without a driver."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return 0
    for name in _DRIVER_LIBRARIES:
        try:
            driver = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            if driver.cuInit(0) != 0:
                return 0
            count = ctypes.c_int(0)
            if driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
                return 0
            return int(count.value)
        except AttributeError:  # a library of that name that is not the CUDA driver
            return 0
    return 0
