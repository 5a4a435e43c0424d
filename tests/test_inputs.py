"""graders/inputs.py: seeded cases, and the options that keep them fair (bound, list
scale, condition, shared), with spec errors for each option misused."""
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dlgrade.graders.inputs import CaseError, build_case, case_problem, make_arg, make_cases
from dlgrade.graders.spec import SpecError, get_exercise, load_exercise


def _ex(cases, dims=None):
    return replace(get_exercise("stable-softmax"), cases=cases, dims=dims or {})


def test_bound_truncates_a_normal_draw_and_keeps_it_a_normal_draw():
    rng = np.random.default_rng(0)
    arg = make_arg({"normal": [20000], "scale": 2.0, "loc": 1.0, "bound": 3.0}, rng, {})
    v = arg.value
    assert np.all(np.abs(v - 1.0) <= 3.0)
    assert v.max() > 3.9 and v.min() < -1.9  # the whole allowed range is used
    assert abs(v.mean() - 1.0) < 0.05  # truncation is symmetric: the mean stays


def test_a_list_scale_broadcasts_rows_at_different_scales():
    rng = np.random.default_rng(1)
    v = make_arg({"normal": [3, 400], "scale": [[0.001], [1.0], [1000.0]]}, rng, {}).value
    stds = v.std(axis=1)
    assert stds[0] < 0.01 and 0.5 < stds[1] < 2 and stds[2] > 500


def test_shared_cases_ignore_the_student_and_others_do_not():
    ex = _ex({"mine": {"args": [{"normal": [4]}]}, "ours": {"shared": True, "args": [{"normal": [4]}]}})
    a, b = make_cases(ex, "alice", ["mine", "ours"]), make_cases(ex, "bob", ["mine", "ours"])
    assert np.array_equal(a["ours"].args[0].value, b["ours"].args[0].value)
    assert not np.array_equal(a["mine"].args[0].value, b["mine"].args[0].value)
    assert a["ours"].seed == b["ours"].seed


def test_a_condition_redraws_until_it_holds_deterministically():
    ex = _ex({"c": {"args": [{"normal": [3]}]}})
    seen = []

    def positive_first(z):
        seen.append(z.copy())
        return z[0] > 1.5

    case = build_case(ex, "alice", "c", positive_first)
    assert case.args[0].value[0] > 1.5 and len(seen) > 1  # refused draws were drawn again
    again = build_case(ex, "alice", "c", lambda z: z[0] > 1.5)
    assert np.array_equal(case.args[0].value, again.args[0].value)  # a regrade sees the same inputs


def test_a_condition_no_draw_satisfies_is_a_case_error():
    ex = _ex({"c": {"args": [{"normal": [3]}], "condition": "x:y"}})
    with pytest.raises(CaseError, match="case 'c': no inputs satisfied its condition 'x:y' in 64 draws"):
        build_case(ex, "alice", "c", lambda z: False)


def test_spec_conditions_resolve_to_the_reference_predicates():
    from dlgrade.reference import conditioning

    ex = get_exercise("two-layer-backprop")
    assert ex.case_conditions() == {"random": conditioning.two_layer_scores, "square": conditioning.two_layer_scores}


def test_the_conditioning_predicates_refuse_what_made_grades_depend_on_the_id():
    from dlgrade.reference.conditioning import logits, softmax_floor, two_layer_scores

    assert softmax_floor(np.zeros((2, 4))) == pytest.approx(1.0)
    assert logits(np.zeros((3, 5)))
    assert not logits(np.array([[0.0, 0.0, 0.0, -20.0]]))  # p = 2e-9 for the last class
    rng = np.random.default_rng(3)
    X, W1, b1, b2 = rng.normal(size=(8, 5)), rng.normal(size=(5, 7)), rng.normal(size=7), rng.normal(size=4)
    W2 = rng.normal(size=(7, 4))
    assert not two_layer_scores(X, None, W1, b1, 100 * W2, b2)


@pytest.mark.parametrize("case,problem", [
    ({"args": [{"normal": [3], "bound": 0.1}]}, "case 'c': argument 1: bound must be a number of at least half the scale (0.5)"),
    ({"args": [{"uniform": [3], "bound": 1.0}]}, "case 'c': argument 1: bound is only for a normal argument"),
    ({"args": [{"normal": [3], "bound": "3"}]}, "case 'c': argument 1: bound must be a number of at least half the scale (0.5)"),
    ({"shared": "yes", "args": []}, "case 'c': shared must be true or false"),
    ({"condition": "nocolon", "args": []}, "case 'c': condition must look like 'module:function'"),
    ({"sharde": True, "args": []}, "case 'c': unknown key 'sharde'; did you mean 'shared'? (known: args, condition, description, "
     "dims, kwargs, shared)"),
])
def test_misused_options_are_spec_errors(case, problem):
    assert case_problem("c", case) == problem


def test_a_spec_with_a_bad_case_option_fails_to_load_naming_file_and_case(tmp_path: Path):
    folder = tmp_path / "ex"
    folder.mkdir()
    (folder / "spec.toml").write_text(
        'id = "x"\ntitle = "t"\nframework = "numpy"\nentry = "f"\n'
        '[cases.r]\nargs = [{normal = [3], scale = 4.0, bound = 1.0}]\n'
        '[[checks]]\nkind = "values"\npoints = 1\ncases = ["r"]\n')
    with pytest.raises(SpecError) as exc:
        load_exercise(folder)
    assert str(exc.value) == (f"{folder / 'spec.toml'}: case 'r': argument 1: bound must be a number of at "
                              "least half the scale (2)")


def test_a_mistake_must_show_clearly_or_not_at_all():
    from dlgrade.reference.conditioning import decisive

    assert decisive(2.0, [2.0 + 1e-13, 2.5, -2.0, float("nan")], "float64")  # coincides, apart, apart, nan
    assert not decisive(2.0, [2.0 + 2e-6], "float64")  # one student's cancellation: drawn again
    assert decisive(2.0, [2.0 + 2e-6], "float32")  # within a tenth of float32's tolerance
    assert not decisive(2.0, [2.0 + 2e-4], "float32")


def test_label_smoothing_cases_show_every_smoothing_mistake_for_every_student():
    """Issue #16's invariance test found ε/(C − 1) passing the float32 case for one id in 20."""
    import torch

    from dlgrade.reference.label_smoothing import label_smoothing_ce, smoothing_over_c_minus_1

    ex = get_exercise("label-smoothing")
    for s in [f"id-{i}" for i in range(40)]:
        (z, t, eps), _ = make_cases(ex, s, ["float32"])["float32"].arrays()
        z, t = torch.from_numpy(z), torch.from_numpy(t)
        truth, bug = float(label_smoothing_ce(z, t, eps)), float(smoothing_over_c_minus_1(z, t, eps))
        assert abs(bug - truth) >= 1e-3 * abs(truth), s


def test_a_condition_nothing_satisfies_is_the_specs_problem_not_dlgrades():
    assert issubclass(CaseError, SpecError)  # exit 2 with one line, like any broken spec


def test_dlgrade_check_says_so_in_one_line_and_exits_2(tmp_path: Path):
    import subprocess
    import sys

    course = tmp_path / "course" / "imp"
    course.mkdir(parents=True)
    (course / "spec.toml").write_text(
        'id = "impossible-softmax"\ntitle = "t"\nframework = "numpy"\nentry = "softmax"\n'
        'reference = "dlgrade.reference.softmax:softmax"\n'
        '[cases.r]\ncondition = "dlgrade.reference.conditioning:logits"\n'
        'args = [{normal = [8, 10], scale = 100.0}]\n'
        '[[checks]]\nkind = "values"\npoints = 1\ncases = ["r"]\n')
    sub = Path(__file__).parent / "fixtures" / "softmax" / "correct_shift_max.py"
    proc = subprocess.run([sys.executable, "-m", "dlgrade", "check", str(sub), "--exercise", "impossible-softmax",
                           "--exercises-dir", str(course.parent)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"Error: {course / 'spec.toml'}: impossible-softmax: case 'r': no inputs satisfied its condition "
        "'dlgrade.reference.conditioning:logits' in 64 draws"]
