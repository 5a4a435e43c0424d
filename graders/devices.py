"""Which accelerator GPU checks run on, if any.

By default a CUDA GPU when this machine has one, else none (GPU checks are
then skipped). ``DLGRADE_GPU_DEVICE`` overrides the choice:

* ``auto`` (or unset): CUDA when ``torch.cuda.device_count() > 0``;
* ``none``: behave as if there were no GPU;
* ``cuda``: use CUDA (grading fails clearly if the worker cannot);
* ``cpu`` or ``meta``: a *simulated* accelerator, for testing dlgrade on a
  machine without a GPU. ``cpu`` runs the GPU checks' calls a second time on
  the CPU (so the comparison, autograd and half-precision logic all run);
  ``meta`` runs them on PyTorch's data-less meta device, where a tensor made on
  the CPU by mistake raises just as it would next to a CUDA tensor (so the
  device-mismatch diagnosis and its line numbers run).

Availability is decided without initialising CUDA in this process (NVML
based), and CUDA is only ever initialised in a job's own child process.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from dlgrade.graders.sandbox import SandboxRequired
from dlgrade.graders.errors import UserError

ENV = "DLGRADE_GPU_DEVICE"
CHOICES = ("auto", "none", "cuda", "cpu", "meta")


class GpuUnavailable(UserError, SandboxRequired):
    """A GPU is required for grading (by a spec or by ``DLGRADE_GPU_DEVICE``) and none can be used."""


@dataclass(frozen=True)
class Accelerator:
    """Where GPU checks run: ``device`` is what tensors are moved to."""

    device: str  # "cuda:0", or "cpu"/"meta" when simulated
    simulated: bool = False

    @property
    def has_data(self) -> bool:
        """False on the meta device: shapes and devices, but no values to compare."""
        return self.device != "meta"

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    def describe(self) -> str:
        return f"{self.device} (simulated GPU)" if self.simulated else self.device


def cuda_device_count() -> int:
    """CUDA devices visible here (0 without a CUDA build), counted without initialising CUDA."""
    try:
        import torch
    except ImportError:
        return 0
    if not torch.backends.cuda.is_built():
        return 0
    try:
        return int(torch.cuda.device_count())
    except Exception:  # a broken driver counts as no GPU
        return 0


def accelerator() -> Accelerator | None:
    """The accelerator for GPU checks, or None when there is none (or ``none`` is asked).

    Raises GpuUnavailable for an unknown ``DLGRADE_GPU_DEVICE`` value, or
    ``cuda`` asked for on a machine without one.
    """
    choice = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if choice not in CHOICES:
        raise GpuUnavailable(f"{ENV}={choice!r} is not one of {', '.join(CHOICES)}")
    if choice == "none":
        return None
    if choice in ("cpu", "meta"):
        return Accelerator(choice, simulated=True)
    if cuda_device_count() > 0:
        return Accelerator("cuda:0")
    if choice == "cuda":
        raise GpuUnavailable(f"{ENV}=cuda was given but no CUDA GPU is available on this machine")
    return None


def require_gpu(exercise) -> Accelerator | None:
    """The accelerator for an exercise; raises GpuUnavailable if its spec requires one and there is none."""
    acc = accelerator()
    if acc is None and exercise.gpu.get("required"):
        raise GpuUnavailable(
            f"exercise {exercise.id!r} requires a GPU for grading ([gpu] required = true in its spec), "
            "but no CUDA GPU is available on this machine; grade it on a machine with one")
    return acc
