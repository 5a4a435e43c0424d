"""Code that names a device this machine does not have (``.cuda()``, ``device="cuda"``).

Every check but the GPU check runs without a GPU (on a GPU machine too: the main
job never sees it), so such code fails them with torch's own words ("Torch not
compiled with CUDA enabled", "Found no NVIDIA driver on your system", "No CUDA GPUs
are available", ...). That error is evidence of ``device-mismatch`` (CONTRACT §3: a
hard-coded ``.cuda()``), like the meta-device probe's: the code does not run on the
input's device. The student's message names the line and says what to write instead.
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
    return (f": {at} asks for a CUDA device, but the input is on the CPU here; "
            f"use the input's device ({input_name}.device) instead of .cuda() or device=\"cuda\"")
