"""What a ``[cases.NAME]`` table may say (graders/case_specs.py). The one-line messages of
a broken case, path included, are pinned in tests/test_spec_validation.py's BROKEN table;
here: every spec dlgrade ships still loads, a literal table argument is a dict, and the
command line says a broken case in one line before any reference runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dlgrade.graders.case_specs import GENERATORS, OPTIONS, case_problem
from dlgrade.graders.cli import main
from dlgrade.graders.inputs import make_arg, make_case
from dlgrade.graders.spec import SpecError, load_exercise, survey
from dlgrade.graders.spec_probe import probe_exercise

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.parent for d in ("exercises", "examples") for p in (ROOT / d).rglob("spec.toml"))


def test_dlgrade_ships_specs_with_cases():
    assert len(SHIPPED) >= 20
    assert any(load_exercise(f).cases for f in SHIPPED)


@pytest.mark.parametrize("folder", SHIPPED, ids=[str(f.relative_to(ROOT)) for f in SHIPPED])
def test_every_builtin_and_example_spec_loads(folder):
    ex = load_exercise(folder)
    for name, case in ex.cases.items():
        assert case_problem(name, case, ex.dims) is None


def test_the_course_example_folder_lists_nothing_broken():
    found, broken = survey([str(ROOT / "examples" / "course-exercises")])
    assert broken == ()
    assert {"log-softmax", "leaky-relu-grad"} <= set(found)


def test_every_generator_has_its_options_and_nothing_else():
    assert set(OPTIONS) == set(GENERATORS)
    assert OPTIONS["rng"] == ()


def test_a_literal_table_is_a_dict_and_each_call_gets_a_fresh_copy():
    case = make_case("c", {"args": [{"value": {"lr": 0.1, "betas": [0.9, 0.99]}}, {"value": [1.0, 2.0]}, 3]},
                     {}, seed=0)
    (cfg, arr, three), _ = case.arrays()
    assert cfg == {"lr": 0.1, "betas": [0.9, 0.99]} and three == 3
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float64
    cfg["betas"].append(1.0)  # a reference that mutates what it is handed
    assert case.arrays()[0][0] == {"lr": 0.1, "betas": [0.9, 0.99]}
    assert make_arg({"value": {"k": 1}}, np.random.default_rng(0), {}).value == {"k": 1}


REFERENCE = "def scaled(x, cfg):\n    return x * cfg['k']\n"

SPEC = '''id = "scaled"
title = "Scaled"
framework = "numpy"
entry = "scaled"
reference = "reference.py:scaled"

[dims]
N = 5

[cases.random]
args = [{ normal = ["N"] }, { value = { k = 2.0 } }]

[[checks]]
name = "values"
kind = "values"
points = 1
cases = ["random"]
'''


def _course(tmp_path: Path, spec: str) -> Path:
    folder = tmp_path / "course" / "scaled"
    folder.mkdir(parents=True)
    (folder / "spec.toml").write_text(spec)
    (folder / "reference.py").write_text(REFERENCE)
    return folder


def test_a_literal_table_reaches_the_reference_and_the_submission_as_a_dict(tmp_path):
    folder = _course(tmp_path, SPEC)
    assert probe_exercise(load_exercise(folder)) == ()
    sub = tmp_path / "scaled.py"
    sub.write_text(REFERENCE)
    r = CliRunner().invoke(main, ["check", str(sub), "--exercise", "scaled", "--exercises-dir", str(folder.parent)])
    assert r.exit_code == 0, r.output
    assert "Total: 1 / 1" in r.output


@pytest.mark.parametrize("command", ["list", "show"])
def test_an_unknown_generator_is_one_line_before_the_reference_runs(tmp_path, command):
    """Trial #17: ``{ gaussian = [4, 3] }`` used to reach the reference as a dict."""
    folder = _course(tmp_path, SPEC.replace('{ normal = ["N"] }', '{ gaussian = ["N"], scale = 2.0 }'))
    (folder / "reference.py").write_text("raise RuntimeError('the reference must not be imported')\n")
    args = ["list"] if command == "list" else ["show", "scaled"]
    r = CliRunner().invoke(main, [*args, "--exercises-dir", str(folder.parent)])
    assert r.exit_code == 2, r.output
    why = (f"{folder / 'spec.toml'}: case 'random': argument 1: unknown generator 'gaussian'; did you mean "
           "'normal'? (known: normal, randint, rng, uniform, value)")
    assert r.output.strip().splitlines()[-1] == (f"BROKEN  {why}" if command == "list" else f"Error: {why}")


TRIAL_SPEC = '''id = "sigmoid-mse"
title = "Sigmoid + MSE"
framework = "numpy"
entry = "sigmoid_mse"
reference = "reference.py:scaled"

[dims]
N = 10
D = 3

[cases.random]
args = [{normal = ["N"], scale = 2.0, bound = 6.0}, {uniform = ["N"]}]

[cases.small]
args = [{value = [-1.0, 0.0, 2.0]}, {value = [0.0, 1.0, 0.5]}]

[[checks]]
name = "loss value"
kind = "values"
points = 2
cases = ["random", "small"]
'''
# the trial's typos (issue #12, #5 #17 #21 #31 #32 #33), each as the docs show what dlgrade says
TYPOS = [('{normal = ["N"], scale', '{gaussian = ["N"], scale'),
         ('scale = 2.0, bound', 'scael = 2.0, bound'),
         ('bound = 6.0}', 'bound = 6.0, torch = true, requires_grad = "yes"}'),
         ('{uniform = ["N"]}', '{uniform = ["M"]}'),
         ('{uniform = ["N"]}', '{uniform = ["N"], dtype = "float23"}'),
         ('cases = ["random", "small"]', 'cases = ["random", "smal"]')]


def test_the_docs_show_what_dlgrade_says_of_each_typo(tmp_path):
    doc = (ROOT / "docs" / "adding-an-exercise.md").read_text()
    block = doc.split("a `randint` without `high`:\n\n```\n", 1)[1].split("\n```", 1)[0].splitlines()
    said = []
    for n, (old, new) in enumerate(TYPOS):
        assert old in TRIAL_SPEC
        folder = tmp_path / str(n) / "sigmoid-mse"
        folder.mkdir(parents=True)
        (folder / "spec.toml").write_text(TRIAL_SPEC.replace(old, new, 1))
        with pytest.raises(SpecError) as err:
            load_exercise(folder)
        said.append(str(err.value).removeprefix(f"{folder / 'spec.toml'}: "))
    assert said == block


def test_what_only_a_draw_finds_names_the_case_and_the_argument():
    from dlgrade.graders.inputs import CaseError

    with pytest.raises(CaseError) as err:  # a case built by hand, never checked by the loader
        make_case("random", {"args": [1.0], "kwargs": {"z": {"normal": ["Q"]}}}, {}, seed=0)
    assert str(err.value) == "case 'random': keyword argument 'z' cannot be built: unknown dimension 'Q'"
