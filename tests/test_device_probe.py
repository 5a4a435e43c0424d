"""The ``device-probe`` check: device-unportable code caught on any machine, on evidence only.

Every correct style must pass it (tests/test_label_smoothing.py grades them all
to full marks); here, the fixtures that break on a GPU.
"""
import pytest

EX = "label-smoothing"
RANDOM = "random logits (16 x 10), epsilon = 0.1 (case 'random')"
ON = "with its inputs on the meta device (a stand-in for a GPU)"


@pytest.fixture(autouse=True)
def no_gpu(gpu_device):
    gpu_device("none")


def probe(r):
    return next(c for c in r.checks if c.kind == "device-probe")


def test_one_hot_made_on_the_cpu_names_the_line_that_made_it(grade):
    r = grade(EX, "label_smoothing/ls_cpu_one_hot.py")
    c = probe(r)
    assert c.message == ("label_smoothing_ce(...) raised RuntimeError: Tensor on device meta is not on the expected "
                         f"device cpu! (line 11) {ON}, on {RANDOM}; the tensor on cpu was made on line 7: "
                         "q = torch.zeros(N, C)")
    assert c.diagnoses == ("device-mismatch",)
    assert c.details["line"] == 7
    assert c.details["device"] == "meta"
    assert r.diagnoses == ("device-mismatch",)
    assert r.score == 9


def test_an_eye_lookup_on_the_cpu_is_traced_to_its_line(grade):
    c = probe(grade(EX, "label_smoothing/ls_eye_lookup.py"))
    assert c.details["line"] == 7
    assert c.message.endswith("the tensor on cpu was made on line 7: "
                              "onehot = torch.eye(C, dtype=logits.dtype)[target]")


def test_comparing_with_a_cpu_arange_breaks_on_a_gpu(grade):
    r = grade(EX, "label_smoothing/ls_cpu_arange_compare.py")
    c = probe(r)
    assert c.message == ("label_smoothing_ce(...) raised RuntimeError: Tensor on device cpu is not on the expected "
                         f"device meta! (line 7) {ON}, on {RANDOM}; the tensor on cpu was made on line 7: "
                         "onehot = (target[:, None] == torch.arange(C)[None, :]).to(logits.dtype)")
    assert r.score == 9 and r.diagnoses == ("device-mismatch",)


def test_numpy_of_the_input_breaks_on_a_gpu(grade):
    c = probe(grade(EX, "label_smoothing/ls_numpy_roundtrip.py"))
    assert c.message == ("label_smoothing_ce(...) raised TypeError: can't convert meta device type tensor to numpy. "
                         f"Use Tensor.cpu() to copy the tensor to host memory first. (line 6) {ON}, on {RANDOM}")
    assert c.diagnoses == ("device-mismatch",)


def test_a_result_made_on_the_cpu_is_traced_to_its_line(grade):
    c = probe(grade(EX, "gpu/returns_new_cpu_tensor.py"))
    assert c.message == ("label_smoothing_ce(...) returned a tensor on cpu for inputs on the meta device (a stand-in "
                         f"for a GPU), on {RANDOM}; it was made on line 6: fresh = torch.full((), float(c))")
    assert c.details["line"] == 6


@pytest.mark.parametrize("name,stopped", [
    ("ls_returns_cpu.py", "NotImplementedError: Cannot copy out of meta tensor; no data! (line 6)"),
    ("correct_loop_max_shift.py", "RuntimeError: Tensor.item() cannot be called on meta tensors (line 11)"),
])
def test_code_that_needs_the_data_is_no_evidence(grade, name, stopped):
    r = grade(EX, f"label_smoothing/{name}")
    c = probe(r)
    assert c.passed and c.diagnoses == ()
    assert c.message == (f"no device problem found in label_smoothing_ce(...): on the meta device (a stand-in for a "
                         f"GPU) it stopped at {stopped}, and code that needs the data is only checked on a real GPU")
    assert c.details["inconclusive"] is True


def test_a_function_failing_on_the_cpu_earns_nothing_here_either(grade):
    r = grade(EX, "label_smoothing/ls_inplace_on_leaf.py")
    c = probe(r)
    assert not c.passed and c.diagnoses == ()
    assert c.message == r.checks[0].message
