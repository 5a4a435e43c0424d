"""Code that names a device this machine does not have (``.cuda()``, ``device="cuda"``).

On a CPU-only machine such code fails every check with torch's own words
("Torch not compiled with CUDA enabled", "Found no NVIDIA driver on your system",
...). That error is evidence of ``device-mismatch`` (CONTRACT §3: a hard-coded
``.cuda()``), like the meta-device probe's: the code does not run on the input's
device. The student's message names the line and says what to write instead.
"""
from __future__ import annotations

# torch's wording when CUDA is asked for and absent (a CPU-only build, no driver, no GPU)
CUDA_UNAVAILABLE = (
    "Torch not compiled with CUDA enabled",
    "Found no NVIDIA driver",
    "CUDA driver initialization failed",
    "No CUDA GPUs are available",
    "no CUDA-capable device is detected",
    "Cannot initialize CUDA without ATen_cuda library",
    "The NVIDIA driver on your system is too old",
    "Torch not compiled with ROCm",  # AMD builds word it their own way
)
DIAGNOSIS = "device-mismatch"


def names_missing_device(err) -> bool:
    """Whether an error dict (as the worker reports it) is torch refusing an absent CUDA device."""
    if not isinstance(err, dict) or err.get("kind") not in (None, "exception"):
        return False
    msg = str(err.get("message", ""))
    return any(p in msg for p in CUDA_UNAVAILABLE)


def where(err: dict) -> str:
    """``line 5`` or ``cell 2, line 1``: where the student's code asked for the device."""
    if err.get("cell") and err.get("cell_line"):
        return f"cell {err['cell']}, line {err['cell_line']}"
    return f"line {err['line']}" if err.get("line") else "your code"


def advice(err: dict, input_name: str) -> str:
    """The sentence after the error: the line, and what to write instead."""
    at = where(err)
    return (f": {at} asks for a CUDA device, which this machine does not have; "
            f"use the input's device ({input_name}.device) instead of .cuda() or device=\"cuda\"")
