"""graders/devices.py: which accelerator GPU checks use (DLGRADE_GPU_DEVICE)."""
from types import SimpleNamespace

import pytest

from dlgrade.graders.devices import Accelerator, GpuUnavailable, accelerator, cuda_device_count, require_gpu
from dlgrade.graders.sandbox import SandboxRequired


def test_none_means_no_gpu(gpu_device):
    gpu_device("none")
    assert accelerator() is None


@pytest.mark.parametrize("device,has_data", [("cpu", True), ("meta", False)])
def test_simulated_accelerators(gpu_device, device, has_data):
    gpu_device(device)
    acc = accelerator()
    assert acc == Accelerator(device, simulated=True)
    assert acc.has_data is has_data and not acc.is_cuda
    assert acc.describe() == f"{device} (simulated GPU)"


@pytest.mark.skipif(cuda_device_count() > 0, reason="this machine has a GPU")
def test_auto_without_cuda_is_none_and_cuda_is_refused(gpu_device):
    gpu_device("auto")
    assert accelerator() is None
    gpu_device("cuda")
    with pytest.raises(GpuUnavailable) as err:
        accelerator()
    assert str(err.value) == "DLGRADE_GPU_DEVICE=cuda was given but no CUDA GPU is available on this machine"


def test_unknown_value_is_a_clear_error(gpu_device):
    gpu_device("tpu")
    with pytest.raises(GpuUnavailable) as err:
        accelerator()
    assert str(err.value) == "DLGRADE_GPU_DEVICE='tpu' is not one of auto, none, cuda, cpu, meta"
    assert isinstance(err.value, SandboxRequired)  # the CLI turns it into a usage error (exit 2)


def test_require_gpu(gpu_device):
    ex = SimpleNamespace(id="e", gpu={"required": True})
    gpu_device("cpu")
    assert require_gpu(ex) == Accelerator("cpu", simulated=True)
    gpu_device("none")
    assert require_gpu(SimpleNamespace(id="e", gpu={})) is None
    with pytest.raises(GpuUnavailable):
        require_gpu(ex)


def test_cuda_describes_itself_plainly():
    acc = Accelerator("cuda:0")
    assert (acc.describe(), acc.is_cuda, acc.has_data) == ("cuda:0", True, True)
