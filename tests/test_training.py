"""The ``training`` kind (graders/checks/training.py): a trainer runs in the sandbox, its
returned parameters are evaluated here on held-out points the grader draws itself."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from dlgrade.graders.checks.protocol import OptionError, read_options, settings_of
from dlgrade.graders.checks import training
from dlgrade.graders.engine import Context, build_plan
from dlgrade.graders.inputs import make_cases
from dlgrade.graders.spec import SpecError, get_exercise, load_exercise
from dlgrade.reference import statistics as stats
from dlgrade.reference import xor

PACK = Path(__file__).parent / "fixtures" / "pack" / "xor-training"
HERE = Path(__file__).parent / "fixtures" / "training"
ROOT = Path(__file__).parent.parent


def by_name(r):
    return {c.name: c for c in r.checks}


@pytest.mark.parametrize("fixture", ["correct_full_batch_gd.py", "correct_adam_class.py", "correct_minibatch_sgd.py"])
def test_correct_trainers_get_full_marks(grade, fixture):
    r = grade("xor-training", PACK / fixture)
    assert (r.status, r.score, r.max_score, r.diagnoses) == ("graded", 10, 10, ()), [c.message for c in r.checks]
    msg = by_name(r)["held-out accuracy at least 95%"].message
    assert re.fullmatch(r"train_xor\(X, y, rng\) classifies 9\d{3} / 10000 held-out points correctly "
                        r"\(9\d\.\d%; at least 95% needed\)", msg), msg


def test_a_linear_model_is_named_and_so_is_a_network_left_in_tanhs_linear_regime(grade):
    r = grade("xor-training", PACK / "linear_model.py")
    assert r.score == 2 and r.diagnoses == ("linear-model",)
    msg = by_name(r)["held-out accuracy at least 95%"].message
    assert re.fullmatch(r"train_xor\(X, y, rng\) classifies \d{4} / 10000 held-out points correctly "
                        r"\(\d\d\.\d%\); at least 95% are needed", msg), msg
    r = grade("xor-training", PACK / "undertrained.py")  # 30 small steps: a straight boundary
    assert r.score == 2 and r.diagnoses == ("linear-model",)
    r = grade("xor-training", PACK / "forgot_tanh.py")
    assert r.score == 2 and r.diagnoses == ("linear-model",)


def test_structure_first(grade):
    r = by_name(grade("xor-training", PACK / "one_output_column.py"))
    assert r["returns the network's parameters"].message == (
        "train_xor returned W2 of shape (16, 1); expected (16, 2): one output column per class (class = argmax s)")
    assert r["held-out accuracy at least 95%"].message == r["returns the network's parameters"].message
    r = by_name(grade("xor-training", HERE / "returns_a_tuple.py"))
    assert r["returns the network's parameters"].message == (
        "train_xor returned a tuple of 4; expected a dict with W1, b1, W2, b2")
    r = by_name(grade("xor-training", HERE / "missing_b2.py"))
    assert r["returns the network's parameters"].message == (
        "train_xor returned no 'b2'; expected a dict with W1, b1, W2, b2")
    r = by_name(grade("xor-training", HERE / "diverged.py"))
    assert r["returns the network's parameters"].message == (
        "train_xor returned W1 with 1 non-finite value; expected finite values")


def test_only_the_training_set_is_shipped_and_the_held_out_points_are_fresh_and_shared():
    ex = get_exercise("xor-training")
    ctx = Context(ex, "s-1", make_cases(ex, "s-1", ["quadrants"]))
    for check in ex.checks:
        for call in training.plan(check, ctx):
            ctx.planned.setdefault(call.id, call)
    plan = build_plan(ctx, "answer.py", 0)
    arrays = plan.pop("_arrays")
    assert sorted(a.shape for a in arrays.values()) == [(1000,), (1000, 2)]
    (call,) = plan["calls"]
    assert call["args"][2] == {"rng": training.seeds(ctx, "quadrants")["rng"]}
    opts = settings_of(ex.checks[1], training.Options)
    Xh, yh = training.held_out_set(opts, ctx, "quadrants")
    X = next(a for a in arrays.values() if a.ndim == 2)
    assert Xh.shape == (10000, 2) and not np.isin(Xh[:, 0], X[:, 0]).any()
    assert np.array_equal(yh, xor.xor_labels(Xh))
    other = Context(ex, "s-2", make_cases(ex, "s-2", ["quadrants"]))
    # shared: every student trains and is judged on the same points (a score must not depend on the id)
    assert np.array_equal(training.training_set(opts, other, "quadrants")[0], X)
    assert np.array_equal(training.held_out_set(opts, other, "quadrants")[0], Xh)


def test_the_bar_and_the_time_limit():
    ex = get_exercise("xor-training")
    assert ex.limits.wall_s == 30 and ex.limits.cpu_s == 30
    opts = settings_of(ex.checks[1], training.Options)
    assert opts.train_points >= 1000 and opts.held_out == 10000 and opts.bar == 0.95
    # a trainer whose true accuracy is 96% fails the bar with probability below 1e-6
    assert stats.binomial_cdf(opts.held_out, 0.96, int(opts.bar * opts.held_out) - 1) < 1e-6


@pytest.mark.slow
def test_a_trainer_that_never_ends_is_stopped_by_the_time_limit(grade, tmp_path):
    folder = tmp_path / "xor-training"
    folder.mkdir()
    text = (ROOT / "exercises" / "xor-training" / "spec.toml").read_text()
    (folder / "spec.toml").write_text(text.replace("time_limit = 30", "time_limit = 2"))
    from dlgrade.graders.api import grade_one
    from dlgrade.graders.runner import Runner
    from dlgrade.graders.submission import Submission

    runner = Runner()
    try:
        r = grade_one(load_exercise(folder), Submission(HERE / "trains_forever.py", student="s"), runner)
    finally:
        runner.close()
    assert r.status == "timeout" and r.score == 0
    assert r.message.startswith("the submission exceeded the 2 s ")


def test_options_are_checked_when_the_spec_loads(tmp_path):
    folder = tmp_path / "xor-training"
    folder.mkdir()
    text = (ROOT / "exercises" / "xor-training" / "spec.toml").read_text()
    (folder / "spec.toml").write_text(text.replace('measure = "accuracy"', 'measure = "acuracy"'))
    with pytest.raises(SpecError, match=re.escape(
            "check 'held-out accuracy at least 95%': option 'measure' must be one of "
            "parameters, accuracy (got 'acuracy')")):
        load_exercise(folder)
    with pytest.raises(OptionError, match="option 'params': W1 must be a shape"):
        read_options(training.Options, {"measure": "parameters", "data": "m:f", "params": {"W1": [0, "H"]}})


def graded_in_process(student: str, train):
    """The kind's own plan and evaluation, the sandbox's call replaced by ``train`` run here
    on the same shipped arrays and generator seed: (score, diagnoses)."""
    from dlgrade.graders.engine import CallResult
    from dlgrade.graders.decoding import Leaf

    ex = get_exercise("xor-training")
    ctx = Context(ex, student, make_cases(ex, student, ["quadrants"]))
    for check in ex.checks:
        for call in training.plan(check, ctx):
            ctx.planned.setdefault(call.id, call)
    for cid, call in ctx.planned.items():
        X, y = (call.arrays[a["npy"]] for a in call.args[:2])
        params = train(X.copy(), y.copy(), np.random.default_rng(call.args[2]["rng"]))
        ctx.calls[cid] = CallResult(status="ok", output={k: Leaf(np.asarray(v)) for k, v in params.items()})
    results = [training.evaluate(c, ctx) for c in ex.checks]
    return sum(r.score for r in results), {d for r in results for d in r.diagnoses}


def test_the_reference_passes_and_the_linear_model_is_named_for_every_student():
    for student in [f"student-{i}" for i in range(6)] + ["李"]:
        assert graded_in_process(student, xor.train_xor) == (10, set()), student
        assert graded_in_process(student, xor.train_linear) == (2, {"linear-model"}), student


def test_a_trusted_function_that_does_not_resolve_is_a_spec_error(tmp_path):
    folder = tmp_path / "xor-training"
    folder.mkdir()
    text = (ROOT / "exercises" / "xor-training" / "spec.toml").read_text()
    (folder / "spec.toml").write_text(text.replace('predict = "dlgrade.reference.xor:predict"',
                                                   'predict = "dlgrade.reference.xor:predcit"'))
    with pytest.raises(SpecError, match=re.escape(
            "check 'held-out accuracy at least 95%': option 'predict': dlgrade.reference.xor "
            "has no 'predcit'")):
        load_exercise(folder)
