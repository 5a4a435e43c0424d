"""graders/spec.py and graders/inputs.py: declarative exercises and seeded inputs."""
from pathlib import Path

import numpy as np
import pytest

from dlgrade.graders.inputs import derive_seed, make_case, make_cases
from dlgrade.graders.spec import SpecError, UnknownExercise, catalogue, get_exercise, load_exercise

ROOT = Path(__file__).parent.parent
COURSE = ROOT / "examples" / "course-exercises"


def test_builtin_catalogue_has_softmax():
    ex = get_exercise("stable-softmax")
    assert ex.entry == "softmax" and ex.framework == "numpy"
    assert ex.max_score == 10
    assert ex.reference_fn().__name__ == "softmax"
    assert "overflow" in ex.mistake_fns()
    assert ex.statement.startswith("# Numerically stable softmax")


def test_unknown_exercise_lists_the_known_ones():
    with pytest.raises(UnknownExercise, match=r"unknown exercise 'nope'; known: .*stable-softmax"):
        get_exercise("nope")


def test_course_exercise_from_its_own_folder():
    ex = get_exercise("leaky-relu-grad", (str(COURSE),))
    assert ex.reference_fn()(np.array([-1.0, 2.0])).tolist() == [0.01, 1.0]
    assert ex.checks[1].hidden
    assert "leaky-relu-grad" not in catalogue()


def test_course_diagnosis_belongs_to_its_exercise():
    from dlgrade.graders.diagnose import describe

    ex = get_exercise("leaky-relu-grad", (str(COURSE),))
    assert ex.diagnosis("relu-slope-only").title == "Plain ReLU derivative"
    # a course's words stay its own: nothing global is registered for other exercises
    assert describe("relu-slope-only").title == "Relu slope only"


def test_course_exercise_graded_with_its_own_diagnosis(runner):
    from dlgrade.graders.api import check

    rep = check(ROOT / "tests/fixtures/course/relu_slope_only.py", exercises_dirs=(str(COURSE),), runner=runner)
    (r,) = rep.results
    assert r.exercise == "leaky-relu-grad" and r.diagnoses == ("relu-slope-only",)
    assert r.score == 1 and r.max_score == 3


@pytest.mark.parametrize("text, message", [
    ('id = "x"\n', "missing required key 'title'"),
    ('id="x"\ntitle="t"\nframework="jax"\nentry="f"\nchecks=[]\n', "framework must be one of"),
    ('id="x"\ntitle="t"\nframework="numpy"\nentry="f"\nreference="m:f"\n[[checks]]\nkind="values"\npoints=1\n'
     'cases=["c"]\n', "uses undefined case 'c'"),
    ('id = [', "spec.toml"),
])
def test_malformed_specs_say_what_is_wrong(tmp_path, text, message):
    (tmp_path / "spec.toml").write_text(text)
    with pytest.raises(SpecError, match=message):
        load_exercise(tmp_path)


def test_limits_are_capped(tmp_path):
    (tmp_path / "spec.toml").write_text(
        'id="x"\ntitle="t"\nframework="numpy"\nentry="f"\nreference="m:f"\ntime_limit=100000\nmemory_mb=999999\n'
        '[cases.a]\nargs=[1]\n[[checks]]\nkind="values"\npoints=1\ncases=["a"]\n')
    ex = load_exercise(tmp_path)
    assert ex.limits.wall_s == 300 and ex.limits.memory_mb == 8192


def test_seeds_are_stable_and_per_student():
    assert derive_seed("a", 1) == derive_seed("a", 1)
    assert derive_seed("a", 1) != derive_seed("a", 2)
    ex = get_exercise("stable-softmax")
    a1 = make_cases(ex, "alice", ["random"])["random"].args[0].value
    a2 = make_cases(ex, "alice", ["random"])["random"].args[0].value
    b = make_cases(ex, "bob", ["random"])["random"].args[0].value
    assert np.array_equal(a1, a2) and not np.array_equal(a1, b)


def test_generators_shapes_dims_and_special_values():
    spec = {"args": [{"normal": ["N", 3], "dtype": "float32"},
                     {"randint": ["N"], "high": "C", "cover": True},
                     {"value": [[1.0, 2.0]], "where": [[0, 1]], "set": float("-inf")}],
            "kwargs": {"axis": 0, "eps": {"uniform": [2], "low": 5, "high": 6}}}
    case = make_case("c", spec, {"N": 8, "C": 4}, seed=3)
    x, y, v = (a.value for a in case.args)
    assert x.shape == (8, 3) and x.dtype == np.float32
    assert y.dtype == np.int64 and set(y.tolist()) == {0, 1, 2, 3}
    assert v.tolist() == [[1.0, float("-inf")]]
    assert case.kwargs["axis"].value == 0
    assert ((case.kwargs["eps"].value >= 5) & (case.kwargs["eps"].value < 6)).all()


RULES_SPEC = ('id="x"\ntitle="t"\nframework="{fw}"\nentry="f"\nreference="m:f"\n[cases.a]\nargs=[1]\n'
              '[[checks]]\nkind="{kind}"\npoints=1\ncases=["a"]\n[rules]\n{rules}\n')


@pytest.mark.parametrize("fw, rules, message", [
    ("numpy", 'forbid_import = ["torch"]', "unknown key 'forbid_import' in [rules] (known: forbid_imports, reason)"),
    ("numpy", 'forbid_imports = "torch"', "[rules] forbid_imports must be a list of module names, like "
                                          "[\"torch\", \"jax\"] (got 'torch')"),
    ("numpy", 'forbid_imports = ["torch nn"]', "[rules] forbid_imports must be a list of module names"),
    ("numpy", 'forbid_imports = ["numpy"]', "[rules] forbid_imports lists 'numpy', which a numpy exercise needs"),
    ("torch", 'forbid_imports = ["torch"]', "[rules] forbid_imports lists 'torch', which a torch exercise needs"),
    ("symbolic", 'forbid_imports = ["torch"]', "[rules] forbid_imports needs framework = \"numpy\" or \"torch\""),
    ("numpy", 'reason = ""', "[rules] reason must be a non-empty string"),
])
def test_a_typo_in_rules_is_one_line_naming_the_file_and_key(tmp_path, fw, rules, message):
    kind = "symbolic-equivalence" if fw == "symbolic" else "values"
    (tmp_path / "spec.toml").write_text(RULES_SPEC.format(fw=fw, rules=rules, kind=kind))
    with pytest.raises(SpecError) as err:
        load_exercise(tmp_path)
    assert str(err.value) == f"{tmp_path / 'spec.toml'}: {message}" or str(err.value).startswith(
        f"{tmp_path / 'spec.toml'}: {message}")


def test_rules_parse_and_match_submodules(tmp_path):
    (tmp_path / "spec.toml").write_text(RULES_SPEC.format(fw="numpy", kind="values", rules='forbid_imports = ["torch", "jax"]'))
    rules = load_exercise(tmp_path).rules
    assert (rules.forbid_imports, rules.reason) == (("torch", "jax"), "this exercise is numpy only")
    assert [rules.forbidden(m) for m in ("torch", "torch.autograd", "torchvision", "jaxlib", "jax.numpy")] == [
        "torch", "torch", None, None, "jax"]


def test_the_core_numpy_exercises_forbid_autograd_libraries():
    for ex_id in ("stable-softmax", "two-layer-backprop"):
        assert set(get_exercise(ex_id).rules.forbid_imports) >= {"torch", "jax", "tensorflow", "autograd"}
    assert get_exercise("label-smoothing").rules.forbid_imports == ()
