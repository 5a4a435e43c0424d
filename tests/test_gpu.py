"""The ``gpu`` check: skipped without a GPU, scored only when a spec requires one.

CI has no GPU, so the GPU path's logic runs here on a *simulated* accelerator
(``DLGRADE_GPU_DEVICE=cpu``: a second CPU run; ``meta``: PyTorch's meta device,
where a stray CPU tensor raises as it would next to a CUDA tensor). Tests
marked ``gpu`` run the real thing and are skipped without CUDA:
``python -m pytest -m gpu -q`` on a GPU machine.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dlgrade.graders.api import grade_one
from dlgrade.graders.checks import gpu as gpu_check
from dlgrade.graders.devices import Accelerator, GpuUnavailable, cuda_device_count
from dlgrade.graders.engine import CallResult, Context
from dlgrade.graders.inputs import make_cases
from dlgrade.graders.decoding import Leaf, Opaque, TensorInfo
from dlgrade.graders.sandbox import GPU_HEADROOM, Limits, gpu_limits
from dlgrade.graders.spec import SpecError, get_exercise, load_exercise
from dlgrade.graders.submission import Submission

EX = "label-smoothing"
FIX = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent
REQUIRED = FIX / "gpu" / "exercises" / "label-smoothing-on-gpu"
RANDOM = "random logits (16 x 10), epsilon = 0.1 (case 'random')"
HALF = "logits past float16's exp range (about ±20) (case 'half-range')"


def gpu_of(r):
    return next(c for c in r.checks if c.kind == "gpu")


# --------------------------------------------------------------------------- no GPU: skipped


def test_without_a_gpu_the_check_is_skipped_and_worth_nothing(grade, gpu_device):
    gpu_device("none")
    r = grade(EX, "label_smoothing/correct_builtin.py")
    c = gpu_of(r)
    assert (c.status, c.passed, c.score, c.max_score) == ("skipped", False, 0, 0)
    assert c.message == "skipped: no GPU"
    assert c.details == {"device": None, "cpu_vs_gpu": {}, "line": None}
    assert r.score == r.max_score == 10
    assert "gpu_job" not in r.extra


@pytest.mark.skipif(cuda_device_count() > 0, reason="this machine has a GPU")
def test_real_skip_on_a_machine_without_cuda(grade, gpu_device):
    gpu_device("auto")
    assert gpu_of(grade(EX, "label_smoothing/correct_one_hot.py")).message == "skipped: no GPU"


def test_skipped_check_renders_as_skip_in_the_terminal(grade, gpu_device):
    from dlgrade.graders.results import Report, StudentReport
    from dlgrade.reports.terminal import render_report

    gpu_device("none")
    r = grade(EX, "label_smoothing/correct_builtin.py")
    text = render_report(StudentReport.of(Report(student="s", results=(r,))))
    assert re.search(r"SKIP on a GPU +- +skipped: no GPU", text)
    assert "Total: 10 / 10" in text


@pytest.mark.parametrize("name", ["correct_scatter.py", "ls_cpu_one_hot.py", "ls_naive_exp.py",
                                  "ls_numpy_roundtrip.py", "ls_returns_cpu.py"])
def test_the_score_is_the_same_whatever_the_accelerator(grade, gpu_device, name):
    scores = {}
    for device in ("none", "cpu", "meta"):
        gpu_device(device)
        r = grade(EX, f"label_smoothing/{name}")
        scores[device] = (r.score, r.max_score, [c.score for c in r.checks])
    assert scores["none"] == scores["cpu"] == scores["meta"]


# --------------------------------------------------------------------------- simulated accelerator


def test_simulated_gpu_passes_a_correct_submission(grade, gpu_device):
    gpu_device("cpu")
    c = gpu_of(grade(EX, "label_smoothing/correct_logsumexp.py"))
    assert c.status == "passed"
    assert c.message == ("label_smoothing_ce(...) runs on cpu (simulated GPU): results on the input's device, "
                         "same values as on the CPU (max abs difference 0), gradients flow, "
                         "stable in float16 and bfloat16 (3 inputs)")
    assert c.details["device"] == "cpu" and c.details["simulated"] is True
    assert c.details["cpu_vs_gpu"]["mismatched"] == 0


def test_half_precision_overflow_is_diagnosed(grade, gpu_device):
    gpu_device("cpu")
    r = grade(EX, "label_smoothing/ls_naive_exp.py")
    c = gpu_of(r)
    assert c.message == (f"label_smoothing_ce(...) returned 1 non-finite value on float16 inputs on cpu "
                         f"(simulated GPU), on {HALF} (got nan); expected finite values as in full precision")
    assert c.diagnoses == ("overflow",)
    assert c.details["dtype"] == "float16"
    assert r.score == 6  # as without a GPU


def test_computing_in_float32_is_fine_in_half_precision(grade, gpu_device):
    gpu_device("cpu")
    assert gpu_of(grade(EX, "label_smoothing/ls_half_cast_to_float32.py")).status == "passed"


def test_meta_accelerator_diagnoses_a_cpu_one_hot_with_its_line(grade, gpu_device):
    gpu_device("meta")
    r = grade(EX, "label_smoothing/ls_cpu_one_hot.py")
    c = gpu_of(r)
    assert c.message == (
        "label_smoothing_ce(...) raised RuntimeError: Tensor on device meta is not on the expected device cpu! "
        f"(line 11) with its inputs on meta (simulated GPU), on {RANDOM}; "
        "the tensor on cpu was made on line 7: q = torch.zeros(N, C)")
    assert c.diagnoses == ("device-mismatch",)
    assert c.details["line"] == 7
    assert c.details["stray"] == {"line": 7, "code": "q = torch.zeros(N, C)", "device": "cpu"}
    assert c.details["error"]["line"] == 11
    assert r.diagnoses == ("device-mismatch",)


def test_meta_accelerator_passes_a_correct_submission(grade, gpu_device):
    gpu_device("meta")
    c = gpu_of(grade(EX, "label_smoothing/correct_new_tensor_device.py"))
    assert c.message == ("label_smoothing_ce(...) runs on meta (simulated GPU): results on the input's device, "
                         "gradients flow (3 inputs)")


def test_a_crash_in_the_gpu_job_fails_only_the_gpu_check(grade, gpu_device):
    gpu_device("cpu")
    r = grade(EX, "gpu/crashes_on_float16.py")
    assert r.status == "graded" and r.score == 10
    c = gpu_of(r)
    assert c.message == (f"label_smoothing_ce(...) did not complete on float16 inputs on cpu (simulated GPU), "
                         f"on {HALF}: the submission ended the process (exit code 3) while running "
                         "label_smoothing_ce on case 'gpu-float16:half-range'")
    assert r.extra["gpu_job"]["status"] == "error"


def test_a_function_that_fails_on_the_cpu_fails_the_gpu_check_with_the_same_message(grade, gpu_device):
    gpu_device("cpu")
    r = grade(EX, "label_smoothing/ls_starter_not_implemented.py")
    assert gpu_of(r).message == r.checks[0].message
    assert gpu_of(r).diagnoses == ()


def test_cuda_is_not_initialised_in_the_worker_before_a_job(grade, gpu_device):
    gpu_device("cpu")
    grade(EX, "label_smoothing/correct_builtin.py")  # a GPU job ran on this runner before
    r = grade(EX, "gpu/reports_cuda_state_at_load.py")
    assert "cuda initialised at load: False" in r.output


# --------------------------------------------------------------------------- findings, one by one


@pytest.fixture
def ctx():
    ex = get_exercise(EX)
    return Context(ex, "s", make_cases(ex, "s", ["random"]))


def tensor(x, device="cuda:0", dtype="float64", grad_fn=True):
    a = np.asarray(x, dtype=float)
    return Leaf(array=a, torch=TensorInfo(device, dtype, grad_fn, grad_fn, tuple(a.shape)))


def ok(out, grads=None, bw="ok", origin=None):
    return CallResult(status="ok", output=out, backward={"status": bw, "grads": grads or [], "error": {}},
                      origin=origin)


CUDA = Accelerator("cuda:0")
GRAD = np.full((16, 10), 0.01)


def message(ctx, f):
    check = next(c for c in ctx.exercise.checks if c.kind == "gpu")
    return gpu_check.finding_message(check, ctx, "random", f, CUDA.describe(), "gpu")


def test_finding_values_differ_between_devices(ctx):
    ctx.calls = {"gpu-cpu:random": ok(tensor(2.0, "cpu"), [tensor(GRAD, "cpu")]),
                 "gpu:random": ok(tensor(2.5), [tensor(GRAD)])}
    f = gpu_check.examine(ctx, "random", "gpu", CUDA, ["logits"])
    assert f.problem == "values" and f.diagnoses == ()
    assert message(ctx, f) == (
        f"label_smoothing_ce(...) gives different results on cuda:0 and on the CPU, on {RANDOM}: 1 / 1 elements "
        "(100%) differ; worst at (): got 2.5, expected 2 (max abs error 0.5, max rel error 0.25; "
        "allowed 1e-09 + 1e-06·|expected|)")


def test_finding_result_on_the_wrong_device_names_where_it_was_made(ctx):
    origin = {"line": 6, "code": "return loss.cpu()", "device": "cpu"}
    ctx.calls = {"gpu-cpu:random": ok(tensor(2.0, "cpu")), "gpu:random": ok(tensor(2.0, "cpu"), origin=origin)}
    f = gpu_check.examine(ctx, "random", "gpu", CUDA)
    assert f.problem == "wrong-device" and f.diagnoses == ("device-mismatch",) and f.line == 6
    assert message(ctx, f) == (f"label_smoothing_ce(...) returned a tensor on cpu for inputs on cuda:0, on {RANDOM}; "
                               "it was made on line 6: return loss.cpu()")


def test_finding_gradients_lost_or_different_on_the_device(ctx):
    cpu = ok(tensor(2.0, "cpu"), [tensor(GRAD, "cpu"), None])
    ctx.calls = {"gpu-cpu:random": cpu, "gpu:random": ok(tensor(2.0), [None, None])}
    f = gpu_check.examine(ctx, "random", "gpu", CUDA, ["logits", "target"])
    assert (f.problem, f.diagnoses) == ("grad-missing", ("device-mismatch",))
    assert message(ctx, f) == f"backward() through label_smoothing_ce(...) left logits.grad empty on cuda:0, on {RANDOM}"
    ctx.calls["gpu:random"] = ok(tensor(2.0), [tensor(GRAD * 2), None])
    f = gpu_check.examine(ctx, "random", "gpu", CUDA, ["logits", "target"])
    assert (f.problem, f.diagnoses) == ("grad-values", ())
    assert message(ctx, f).startswith(f"the gradient w.r.t. logits differs between cuda:0 and the CPU, on {RANDOM}: "
                                       "160 / 160 elements (100%) differ")
    ctx.calls["gpu:random"] = ok(tensor(2.0, grad_fn=False), bw="no-graph")
    f = gpu_check.examine(ctx, "random", "gpu", CUDA)
    assert message(ctx, f) == ("label_smoothing_ce(...) returned a tensor with no autograd history with its inputs "
                               f"on cuda:0, on {RANDOM} (it has one on the CPU)")


def test_finding_backward_fails_only_on_the_device(ctx):
    err = {"type": "RuntimeError", "message": "Expected all tensors to be on the same device", "line": None,
           "stray": {"line": 8, "code": "w = torch.ones(C)", "device": "cpu"}}
    ctx.calls = {"gpu-cpu:random": ok(tensor(2.0, "cpu"), [tensor(GRAD, "cpu")]),
                 "gpu:random": CallResult(status="ok", output=tensor(2.0),
                                          backward={"status": "exception", "error": err})}
    f = gpu_check.examine(ctx, "random", "gpu", CUDA)
    assert f.diagnoses == ("device-mismatch",) and f.line == 8
    assert message(ctx, f) == ("backward() through label_smoothing_ce(...) raised RuntimeError: Expected all tensors "
                               f"to be on the same device on cuda:0, on {RANDOM}; the tensor on cpu was made on "
                               "line 8: w = torch.ones(C)")


def test_finding_on_meta_needs_a_device_error_as_evidence(ctx):
    meta = Accelerator("meta")
    cpu = ok(tensor(2.0, "cpu"))
    ctx.calls = {"gpu-cpu:random": cpu, "gpu:random": CallResult(
        status="exception", error={"type": "RuntimeError", "message": "Tensor.item() cannot be called on meta tensors"})}
    f = gpu_check.examine(ctx, "random", "gpu", meta)
    assert f.ok and f.inconclusive
    ctx.calls["gpu:random"] = CallResult(status="exception", error={
        "type": "RuntimeError", "message": "Tensor on device cpu is not on the expected device meta!", "line": 9})
    assert gpu_check.examine(ctx, "random", "gpu", meta).diagnoses == ("device-mismatch",)
    ctx.calls["gpu:random"] = ok(Opaque("tensor on the meta device"))
    assert gpu_check.examine(ctx, "random", "gpu", meta).ok


def test_finding_any_exception_on_a_real_gpu_counts(ctx):
    ctx.calls = {"gpu-cpu:random": ok(tensor(2.0, "cpu")), "gpu:random": CallResult(
        status="exception", error={"type": "TypeError", "message": "can't convert cuda:0 device type tensor to "
                                   "numpy. Use Tensor.cpu() to copy the tensor to host memory first.", "line": 6})}
    f = gpu_check.examine(ctx, "random", "gpu", CUDA)
    assert f.diagnoses == ("device-mismatch",) and f.line == 6
    assert message(ctx, f) == (
        "label_smoothing_ce(...) raised TypeError: can't convert cuda:0 device type tensor to numpy. Use "
        f"Tensor.cpu() to copy the tensor to host memory first. (line 6) with its inputs on cuda:0, on {RANDOM}")


# --------------------------------------------------------------------------- planning and the GPU job


class RecordingRunner:
    """Delegates to a real runner; a ``gpu=True`` job is run on the CPU instead, and recorded."""

    def __init__(self, runner):
        self.runner, self.jobs = runner, []

    def run(self, exercise, plan, files, gpu=False):
        self.jobs.append((gpu, json.loads(json.dumps({k: v for k, v in plan.items() if k != "_arrays"}))))
        if gpu:
            for call in plan["calls"]:
                call.pop("device", None)
                for a in call["args"]:
                    if a.get("device") == "cuda:0":
                        a["device"] = "cpu"
        return self.runner.run(exercise, plan, files)


def test_cuda_calls_run_in_a_gpu_job_of_their_own(runner, monkeypatch):
    monkeypatch.setattr(gpu_check, "accelerator", lambda: Accelerator("cuda:0"))
    rec = RecordingRunner(runner)
    ex = get_exercise(EX)
    r = grade_one(ex, Submission(FIX / "label_smoothing" / "correct_builtin.py", student="s"), rec)
    (main_gpu, main), (gpu, job) = rec.jobs
    assert (main_gpu, gpu) == (False, True)
    assert not any(c["id"].startswith("gpu:") or c["id"].startswith("gpu-float") for c in main["calls"])
    assert {c["id"] for c in job["calls"]} == {"gpu:random", "gpu:large", "gpu:half-range",
                                               "gpu-float16:half-range", "gpu-bfloat16:half-range"}
    assert all(c["device"] == "cuda:0" and c["args"][0]["device"] == "cuda:0" for c in job["calls"])
    # the run really happened on the CPU here, so the check sees a result off the GPU
    assert gpu_of(r).message.startswith("label_smoothing_ce(...) returned a tensor on cpu for inputs on cuda:0, on ")
    assert r.score == 10


def test_gpu_jobs_get_room_for_cuda_start_up():
    lim = gpu_limits(Limits(wall_s=20, cpu_s=20, memory_mb=1024))
    assert (lim.wall_s, lim.cpu_s, lim.memory_mb) == (20 + GPU_HEADROOM["wall_s"], 20 + GPU_HEADROOM["cpu_s"],
                                                      1024 + GPU_HEADROOM["memory_mb"])
    assert gpu_limits(Limits(memory_mb=8000)).memory_mb == Limits.HARD_CAPS["memory_mb"]


def test_only_gpu_workers_see_a_gpu(monkeypatch):
    from dlgrade.graders import sandbox

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert sandbox._clean_env(False)["CUDA_VISIBLE_DEVICES"] == ""
    assert sandbox._clean_env(True, gpu=False)["CUDA_VISIBLE_DEVICES"] == ""
    assert sandbox._clean_env(True, gpu=True)["CUDA_VISIBLE_DEVICES"] == "1"


def test_gpu_sandbox_binds_the_device_nodes_and_nothing_else_changes(monkeypatch):
    from dlgrade.graders import sandbox

    fake = ["--dev-bind", "/dev/nvidia0", "/dev/nvidia0", "--dev-bind", "/dev/nvidiactl", "/dev/nvidiactl"]
    monkeypatch.setattr(sandbox, "gpu_device_binds", lambda: fake)
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: "/usr/bin/bwrap")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    workers = [sandbox.Worker("sandbox", preload=("numpy", "torch"), gpu=g) for g in (False, True)]
    try:
        plain, gpu = [w._bwrap_cmd() for w in workers]
        jobs = [str(w.jobs) for w in workers]
    finally:
        for w in workers:
            w.close()
    assert not any("nvidia" in a for a in plain)
    i = gpu.index("--dev-bind")
    assert gpu[i:i + 6] == fake and gpu.index("--dev") < i  # after /dev is mounted, so they show through
    hidden = ["--setenv", "CUDA_VISIBLE_DEVICES", ""]
    j = plain.index("CUDA_VISIBLE_DEVICES") - 1
    assert plain[j:j + 3] == hidden and "CUDA_VISIBLE_DEVICES" not in gpu
    plain = [a for a in plain[:j] + plain[j + 3:] if a != jobs[0]]
    assert [a for a in gpu if a not in fake and a != jobs[1]] == plain


# --------------------------------------------------------------------------- [gpu] required


def test_a_required_gpu_without_one_is_an_error_not_a_zero(runner, gpu_device):
    gpu_device("none")
    ex = load_exercise(REQUIRED)
    with pytest.raises(GpuUnavailable) as err:
        grade_one(ex, Submission(FIX / "label_smoothing" / "correct_builtin.py"), runner)
    assert str(err.value) == (
        "exercise 'label-smoothing-on-gpu' requires a GPU for grading ([gpu] required = true in its spec), "
        "but no CUDA GPU is available on this machine; grade it on a machine with one")


def test_a_required_gpu_without_one_is_a_usage_error_on_the_command_line(tmp_path):
    sub = tmp_path / "ls.py"
    sub.write_text((FIX / "label_smoothing" / "correct_builtin.py").read_text())
    p = subprocess.run([sys.executable, "-m", "dlgrade", "check", str(sub), "--exercise", "label-smoothing-on-gpu",
                        "--exercises-dir", str(REQUIRED.parent)], cwd=ROOT, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "DLGRADE_GPU_DEVICE": "none", "HOME": str(tmp_path)})
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert "requires a GPU for grading ([gpu] required = true in its spec)" in p.stderr


def test_a_required_gpu_check_is_scored_where_there_is_one(runner, gpu_device):
    gpu_device("cpu")
    ex = load_exercise(REQUIRED)
    assert ex.max_score == 3
    good = grade_one(ex, Submission(FIX / "label_smoothing" / "correct_builtin.py"), runner)
    assert (good.score, gpu_of(good).score, gpu_of(good).max_score) == (3, 2, 2)
    bad = grade_one(ex, Submission(FIX / "label_smoothing" / "ls_naive_exp.py"), runner)
    assert (bad.score, gpu_of(bad).score) == (1, 0)
    assert bad.diagnoses == ("overflow",)


# --------------------------------------------------------------------------- spec validation


def write_spec(tmp_path, extra: str, gpu_table: str = "", framework: str = "torch") -> Path:
    folder = tmp_path / "ex"
    folder.mkdir(exist_ok=True)
    (folder / "spec.toml").write_text(f"""
id = "x"
title = "x"
framework = "{framework}"
entry = "f"
reference = "dlgrade.reference.label_smoothing:label_smoothing_ce"
{gpu_table}
[cases.a]
args = [1.0]
[cases.b]
args = [2.0]

[[checks]]
name = "on a GPU"
kind = "gpu"
cases = ["a"]
{extra}
""")
    return folder


@pytest.mark.parametrize("extra,gpu_table,framework,problem", [
    ("points = 1", "", "torch",
     "GPU check 'on a GPU' has points = 1, but GPU checks are skipped on machines without a GPU, so they must "
     "have points = 0 unless [gpu] required = true (the score must not depend on the machine)"),
    ("points = 0\nhalf = [\"float8\"]", "", "torch", "check 'on a GPU': half must be a list of float16, bfloat16"),
    ("points = 0\nhalf_cases = [\"b\"]", "", "torch", "check 'on a GPU': half_cases must be among its cases (a)"),
    ("points = 0", "", "numpy", "check 'on a GPU' of kind 'gpu' needs framework = \"torch\""),
    ("points = 0", "[gpu]\nrequired = \"yes\"", "torch", "[gpu] required must be true or false"),
    ("points = 0", "[gpu]\nneeded = true", "torch", "unknown key 'needed' in [gpu] (known: required)"),
    ("points = 0", "[gpu]\nrequired = true", "numpy", "[gpu] required = true needs framework = \"torch\""),
])
def test_spec_errors_are_clear(tmp_path, extra, gpu_table, framework, problem):
    folder = write_spec(tmp_path, extra, gpu_table, framework)
    with pytest.raises(SpecError) as err:
        load_exercise(folder)
    assert str(err.value) == f"{folder / 'spec.toml'}: {problem}"


def test_points_are_allowed_when_the_gpu_is_required(tmp_path):
    ex = load_exercise(write_spec(tmp_path, "points = 2", "[gpu]\nrequired = true"))
    assert ex.max_score == 2 and ex.gpu == {"required": True}


# --------------------------------------------------------------------------- a real GPU


@pytest.fixture
def real_gpu(gpu_device):
    gpu_device("auto")


@pytest.mark.gpu
def test_real_gpu_correct_submission_passes(grade, real_gpu):
    r = grade(EX, "label_smoothing/correct_one_hot.py")
    c = gpu_of(r)
    assert c.status == "passed", c.message
    assert c.message.startswith("label_smoothing_ce(...) runs on cuda:0: results on the input's device, same values "
                                "as on the CPU (max abs difference ")
    assert c.message.endswith("), gradients flow, stable in float16 and bfloat16 (3 inputs)")
    assert r.score == 10 and r.diagnoses == ()


@pytest.mark.gpu
def test_real_gpu_cpu_one_hot_is_a_device_mismatch_with_its_line(grade, real_gpu):
    r = grade(EX, "label_smoothing/ls_cpu_one_hot.py")
    c = gpu_of(r)
    assert c.status == "failed"
    assert c.diagnoses == ("device-mismatch",)
    assert c.message.startswith("label_smoothing_ce(...) raised RuntimeError: Expected all tensors to be on the same "
                                "device")
    assert c.message.endswith(f"with its inputs on cuda:0, on {RANDOM}; the tensor on cpu was made on line 7: "
                              "q = torch.zeros(N, C)")
    assert c.details["line"] == 7
    assert r.score == 9  # the device probe, as on any machine


@pytest.mark.gpu
def test_real_gpu_result_moved_to_the_cpu(grade, real_gpu):
    c = gpu_of(grade(EX, "label_smoothing/ls_returns_cpu.py"))
    assert c.message == (f"label_smoothing_ce(...) returned a tensor on cpu for inputs on cuda:0, on {RANDOM}; "
                         "it was made on line 6: return loss.cpu()")
    assert c.diagnoses == ("device-mismatch",)


@pytest.mark.gpu
def test_real_gpu_other_checks_never_see_the_gpu(grade, real_gpu):
    # .cuda() fails in the main job exactly as on a machine without a GPU
    r = grade(EX, "gpu/hardcodes_cuda.py")
    assert r.checks[0].status == "failed" and r.score == 0


@pytest.mark.gpu
def test_real_gpu_worker_keeps_cuda_out_of_the_zygote(runner, real_gpu):
    ex = get_exercise(EX)
    for _ in range(2):  # the second job forks from a zygote whose first child used CUDA
        r = grade_one(ex, Submission(FIX / "gpu" / "reports_cuda_state_at_load.py"), runner)
        assert gpu_of(r).status == "passed", gpu_of(r).message
    w = runner.worker_for(ex.preload, gpu=True)
    files = {"probe.py": b"import torch\nprint('zygote cuda', torch.cuda.is_initialized())\nf = len\n"}
    out = w.run({"submission": "probe.py", "entry": "f", "framework": "torch", "seed": 0, "calls": []}, files, ex.limits)
    try:
        assert "zygote cuda False" in out.reply["output"]["head"]
    finally:
        out.cleanup()
