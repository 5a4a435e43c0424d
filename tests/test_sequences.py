"""The ``sequences`` kind (graders/checks/sequences.py): optimiser steps graded over several
calls in the sandbox, each fed the state the submission itself returned."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from dlgrade.graders.checks.protocol import OptionError, read_options, settings_of
from dlgrade.graders.checks.sequences import Options, trajectory
from dlgrade.graders.spec import SpecError, load_exercise
from dlgrade.reference import optimizers

PACK = Path(__file__).parent / "fixtures" / "pack"
ROOT = Path(__file__).parent.parent

CORRECT = {
    "momentum-step": ["correct_pytorch_convention.py", "correct_lr_inside.py", "correct_in_place.py",
                      "correct_class_based.py"],
    "adam-step": ["correct_vectorised.py", "correct_pytorch_style.py"],
    "rmsprop-step": ["correct_vectorised.py", "correct_in_place.py"],
}
WRONG = {
    "momentum-step": {"velocity_not_decayed.py": "velocity-not-decayed", "lr_applied_twice.py": "lr-applied-twice",
                      "sign_flipped.py": "sign-flipped", "ema_velocity.py": "ema-velocity"},
    "adam-step": {"no_bias_correction.py": "no-bias-correction", "eps_inside_sqrt.py": "eps-inside-sqrt",
                  "bias_correction_off_by_one.py": "bias-correction-off-by-one"},
    "rmsprop-step": {"no_sqrt.py": "no-sqrt", "rho_swapped.py": "rho-swapped"},
}


def by_name(r):
    return {c.name: c for c in r.checks}


@pytest.mark.parametrize("exercise_id, fixture", [(e, f) for e, fs in CORRECT.items() for f in fs])
def test_every_correct_style_gets_full_marks_and_no_diagnosis(grade, exercise_id, fixture):
    r = grade(exercise_id, PACK / exercise_id / fixture)
    assert (r.status, r.score, r.max_score, r.diagnoses) == ("graded", 10, 10, ()), [c.message for c in r.checks]


@pytest.mark.parametrize("exercise_id, fixture, diag", [(e, f, d) for e, fs in WRONG.items() for f, d in fs.items()])
def test_each_mistake_loses_points_and_is_named_alone(grade, exercise_id, fixture, diag):
    r = grade(exercise_id, PACK / exercise_id / fixture)
    assert r.status == "graded" and r.score < 10 and r.diagnoses == (diag,), (r.score, r.diagnoses)
    # the diagnosis sits on the failed checks that show it, never on a passed one
    assert all(diag not in c.diagnoses for c in r.checks if c.passed)
    assert any(diag in c.diagnoses for c in r.checks if not c.passed)


def test_a_mistake_invisible_after_one_step_keeps_the_first_step_points(grade):
    r = grade("momentum-step", PACK / "momentum-step" / "velocity_not_decayed.py", student="s-7")
    checks = by_name(r)
    assert checks["first step from zero velocity"].passed
    assert checks["first step from zero velocity"].message == (
        "w follows the reference over 1 step on 1 input (max abs error 0)")
    msg = checks["six steps"].message
    assert re.fullmatch(re.escape("w after step 2 is wrong on six steps from zero velocity (w of shape 3 x 4) "
                                  "(case 'trajectory'): 12 / 12 elements (100%) differ; worst at ") + r".*", msg), msg


def test_the_same_file_scores_the_same_under_other_student_ids(grade):
    for student in ("a", "b", "c"):
        r = grade("adam-step", PACK / "adam-step" / "correct_pytorch_style.py", student=student)
        assert r.score == 10 and r.diagnoses == ()
        r = grade("adam-step", PACK / "adam-step" / "eps_inside_sqrt.py", student=student)
        assert r.diagnoses == ("eps-inside-sqrt",) and not by_name(r)["tiny gradients"].passed


def test_a_step_that_updates_in_place_but_returns_nothing_fails_on_structure(grade):
    r = grade("momentum-step", Path(__file__).parent / "fixtures" / "sequences" / "momentum_in_place_returns_nothing.py")
    assert r.score == 0 and r.diagnoses == ()
    assert by_name(r)["first step from zero velocity"].message == (
        "momentum_step(...) returned None at step 1 on one step from zero velocity (w of shape 3 x 4) "
        "(case 'one-step'); expected a tuple (w, v) of arrays of shape (3, 4)")


def test_a_state_of_the_wrong_shape_is_named(grade):
    r = grade("momentum-step", Path(__file__).parent / "fixtures" / "sequences" / "momentum_velocity_transposed.py")
    assert by_name(r)["six steps"].message == (
        "momentum_step(...) returned v of shape (4, 3) at step 1 on six steps from zero velocity "
        "(w of shape 3 x 4) (case 'trajectory'); expected (3, 4)")
    assert by_name(r)["other lr and beta"].passed  # a vector's transpose is itself


def test_an_exception_at_a_later_step_names_the_step(grade):
    r = grade("momentum-step", Path(__file__).parent / "fixtures" / "sequences" / "momentum_raises_at_step_3.py")
    checks = by_name(r)
    assert checks["first step from zero velocity"].passed  # calls 1 (one-step), 2-7 (trajectory)...
    assert checks["six steps"].message == (
        "momentum_step(...) raised RuntimeError: the third step broke (line 9) at step 2 on six steps from "
        "zero velocity (w of shape 3 x 4) (case 'trajectory')")


def test_arrays_are_copied_when_a_step_returns_them(grade):
    """A step that later overwrites the arrays it returned does not change what was fed back."""
    r = grade("momentum-step", Path(__file__).parent / "fixtures" / "sequences" / "momentum_mutates_returned_later.py")
    assert r.score == 10, [c.message for c in r.checks]


def test_returning_bias_corrected_moments_breaks_the_trajectory_from_step_2(grade):
    r = grade("adam-step", Path(__file__).parent / "fixtures" / "sequences" / "adam_returns_corrected_moments.py")
    checks = by_name(r)
    assert checks["first step (t = 1)"].passed
    assert checks["six steps"].message.startswith("w after step 2 is wrong on six steps, t = 1 to 6 ")


def test_both_momentum_conventions_give_one_trajectory_in_the_trusted_harness():
    rng = np.random.default_rng(3)
    w0, grads = rng.normal(size=(3, 4)), rng.normal(size=(6, 3, 4))
    opts = Options(state=1)
    a = trajectory(optimizers.momentum_step, w0, grads, {}, opts)
    b = trajectory(optimizers.momentum_step_lr_inside, w0, grads, {}, opts)
    assert all(np.allclose(x, y, rtol=1e-12, atol=1e-15) for x, y in zip(a, b))
    c = trajectory(optimizers.momentum_not_decayed, w0, grads, {}, opts)
    assert np.allclose(a[0], c[0]) and not np.allclose(a[1], c[1])


def _spec_with(tmp_path, old: str, new: str) -> Path:
    folder = tmp_path / "momentum-step"
    folder.mkdir(parents=True)
    src = ROOT / "exercises" / "momentum-step"
    text = (src / "spec.toml").read_text()
    assert old in text
    (folder / "spec.toml").write_text(text.replace(old, new, 1))
    return folder


def test_a_typo_in_an_option_is_one_line_naming_the_file_and_key(tmp_path):
    folder = _spec_with(tmp_path, "state = 1\n", "states = 1\n")
    with pytest.raises(SpecError) as err:
        load_exercise(folder)
    assert str(err.value) == (
        f"{folder / 'spec.toml'}: check 'first step from zero velocity': unknown option "
        "'states'; did you mean 'state'? (known: atol, label, returns, rtol, state, step_number)")


def test_options_are_typed(tmp_path):
    folder = _spec_with(tmp_path, "state = 1\n", 'state = "one"\n')
    with pytest.raises(SpecError, match=re.escape('option state must be a whole number (got "one")')):
        load_exercise(folder)
    with pytest.raises(OptionError, match=re.escape(
            "option 'returns' must name 2 values, like \"(w, v)\" (got '(w, m, v)')")):
        read_options(Options, {"returns": "(w, m, v)"})
    opts, _ = read_options(Options, {"rtol": 1})
    assert opts.rtol == 1.0 and isinstance(opts.rtol, float)
    # what Options.validate says is a spec error too, when the spec loads
    folder = _spec_with(tmp_path / "returns", 'returns = "(w, v)"', 'returns = "(w, m, v)"')
    with pytest.raises(SpecError) as exc:
        load_exercise(folder)
    assert str(exc.value) == (f"{folder / 'spec.toml'}: check 'first step from zero velocity': option 'returns' "
                              "must name 2 values, like \"(w, v)\" (got '(w, m, v)')")


# --------------------------------------------------------------------------- every mistake, every student

from dlgrade.graders import engine  # noqa: E402
from dlgrade.graders.checks import sequences  # noqa: E402
from dlgrade.graders.inputs import make_cases  # noqa: E402
from dlgrade.graders.decoding import Leaf  # noqa: E402
from dlgrade.graders.spec import get_exercise  # noqa: E402

STUDENTS = [f"student-{i}" for i in range(20)] + ["alice", "李", "o'brien"]


def graded_in_process(exercise_id: str, student: str, fn):
    """The kind's own plan and evaluation, with the sandbox's calls replaced by ``fn`` run
    here through the same harness (fed its own returned state): (score, diagnoses)."""
    ex = get_exercise(exercise_id)
    ctx = engine.Context(ex, student, make_cases(ex, student, sorted({c for k in ex.checks for c in k.cases})))
    for check in ex.checks:
        for call in sequences.plan(check, ctx):
            ctx.planned.setdefault(call.id, call)
    opts = settings_of(ex.checks[0], Options)
    for case in ctx.cases:
        w0, grads = sequences.steps_of(ctx, case)
        w, state = w0.copy(), [np.zeros_like(w0) for _ in range(opts.state)]
        kwargs = ctx.cases[case].arrays()[1]
        for k in range(1, grads.shape[0] + 1):
            extra = (k,) if opts.step_number else ()
            with np.errstate(all="ignore"):
                ret = [np.array(r, dtype=np.float64) for r in fn(w.copy(), grads[k - 1].copy(),
                                                                  *[s.copy() for s in state], *extra, **kwargs)]
            ctx.calls[sequences.call_id(case, k)] = engine.CallResult(status="ok", output=tuple(Leaf(r) for r in ret))
            w, *state = ret
    checks = [sequences.evaluate(c, ctx) for c in ex.checks]
    return sum(c.score for c in checks), {d for c in checks for d in c.diagnoses}


@pytest.mark.parametrize("exercise_id", list(CORRECT))
def test_every_mistake_variant_is_named_alone_for_every_student(exercise_id):
    ex = get_exercise(exercise_id)
    for student in STUDENTS:
        assert graded_in_process(exercise_id, student, ex.reference_fn()) == (10, set())
        for diag in ex.mistake_fns():
            fns = ex.mistake_fns()[diag]
            for fn in (fns if isinstance(fns, tuple) else (fns,)):
                score, found = graded_in_process(exercise_id, student, fn)
                assert score < 10 and found == {diag}, (student, fn.__name__, score, found)
    if exercise_id == "momentum-step":
        assert graded_in_process(exercise_id, "x", optimizers.momentum_step_lr_inside) == (10, set())


def test_a_case_that_does_not_fit_the_kind_is_a_spec_error(tmp_path):
    folder = _spec_with(tmp_path, "args = [{normal = [3, 4]}, {normal = [6, 3, 4]}]",
                        "args = [{normal = [3, 4]}, {normal = [6, 4, 3]}]")
    with pytest.raises(SpecError) as err:
        load_exercise(folder)
    assert str(err.value) == (
        f"{folder / 'spec.toml'}: check 'six steps': case 'trajectory': the gradients must "
        "have shape (steps, *w0.shape) = (steps, 3, 4), got (6, 4, 3)")
