"""A course author's typo is one line naming the file, the check and the key, exit 2,
before any student is graded (issue #12): the table below is the interface."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from dlgrade.graders.checks.protocol import OptionError, OutputPath, read_options
from dlgrade.graders.cli import main
from dlgrade.graders.spec import SpecError, load_exercise
from dlgrade.graders.spec_probe import probe_exercise

REFERENCE = '''
import numpy as np

def step(x, w):
    """(loss, grads): a tuple whose second element is a dict."""
    y = x @ w
    return float(np.mean(y ** 2)), {"w": 2 * x.T @ y / y.size}

def step_sign(x, w):
    loss, grads = step(x, w)
    return loss, {"w": -grads["w"]}

def step_same(x, w):  # the truth under another name: no case tells it apart
    return step(x, w)

MISTAKES = {"sign-flipped": step_sign}
'''

SPEC = '''id = "course-step"
title = "A step"
framework = "numpy"
entry = "step"
reference = "reference.py:step"
mistakes = "reference.py:MISTAKES"

[cases.random]
args = [{ normal = [4, 3] }, { normal = [3, 2] }]

[[checks]]
name = "the loss"
kind = "values"
points = 1
cases = ["random"]
output = [0]

[[checks]]
name = "the gradient"
kind = "values"
points = 2
cases = ["random"]
output = [1, "w"]
'''


def write(tmp_path: Path, spec: str = SPEC, reference: str = REFERENCE) -> Path:
    folder = tmp_path / "course" / "course-step"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.toml").write_text(spec)
    (folder / "reference.py").write_text(reference)
    return folder


def swap(old: str, new: str) -> str:
    assert old in SPEC, old
    return SPEC.replace(old, new, 1)


# (what the author wrote, the one line dlgrade says after "<file>: ")
BROKEN = [
    (swap('kind = "values"\npoints = 1', 'kind = "valeus"\npoints = 1'),
     "check 'the loss': unknown check kind 'valeus'; did you mean 'values'? (known: finite-difference, "
     "gradients, no-mutation, sequences, statistical, training, values)"),
    (swap('kind = "values"\npoints = 1', 'kind = "common"\npoints = 1'),
     "check 'the loss': unknown check kind 'common' (known: finite-difference, gradients, "
     "no-mutation, sequences, statistical, training, values)"),
    (swap('output = [0]', 'output = [0]\nrtoll = 0.5'),
     "check 'the loss': unknown option 'rtoll'; did you mean 'rtol'? (known: atol, dtype, "
     "nonfinite_diagnosis, output, rtol)"),
    (swap('output = [0]', 'output = 0'),
     'check \'the loss\': option output must be a list of indices and keys into the returned value, like [0] '
     'or [1, "W1"] (got 0)'),
    (swap('output = [0]', 'output = "[0]"'),
     'check \'the loss\': option output must be a list of indices and keys into the returned value, like [0] '
     'or [1, "W1"] (got "[0]")'),
    (swap('output = [0]', 'output = [0]\nrtol = "tight"'),
     "check 'the loss': option rtol must be a number (got \"tight\")"),
    (swap('output = [0]', 'output = [0]\ndtype = "float32"'),
     "check 'the loss': option dtype must be \"same\" (got \"float32\")"),
    (swap('cases = ["random"]\noutput = [0]', 'cases = ["randon"]\noutput = [0]'),
     "check 'the loss': uses undefined case 'randon'; did you mean 'random'? (cases defined: random)"),
    (swap('cases = ["random"]\noutput = [0]', 'cases = ["other"]\noutput = [0]'),
     "check 'the loss': uses undefined case 'other' (cases defined: random)"),
    (swap('cases = ["random"]\noutput = [0]', 'cases = "random"\noutput = [0]'),
     "check 'the loss': cases must be a list of case names, like [\"random\"] (got 'random')"),
    (swap('cases = ["random"]\noutput = [0]', 'output = [0]'),
     "check 'the loss': cases must name at least one case, like cases = [\"random\"]"),
    (swap('output = [0]', 'output = [0]\nlabel = 3'),
     "check 'the loss': label must be a non-empty string, like \"softmax(z)\" (got 3)"),
    (swap('points = 1', 'points = "1"'), "check 'the loss': points must be a number, 0 or more (got '1')"),
    (swap('points = 1', 'points = 1\nhidden = "yes"'), "check 'the loss': hidden must be true or false (got 'yes')"),
    (swap('name = "the gradient"', 'name = "the loss"'),
     "check 'the loss': two checks are named 'the loss' (give each its own name)"),
    (swap('points = 1\n', ''), "check 'the loss': missing required key 'points'"),
    (swap('entry = "step"', 'entry = "step"\nrefernce = "x"'),
     "unknown key 'refernce'; did you mean 'reference'? (known: cases, checks, diagnoses, dims, entry, "
     "framework, gpu, gradient, id, kinds, limits, memory_mb, mistakes, reference, rules, seed, signature, "
     "symbolic, time_limit, title)"),
    (swap('entry = "step"', 'entry = "my step"'), "entry must be a Python name, like \"softmax\" (got 'my step')"),
    (swap('framework = "numpy"', 'framework = "jax"'), "framework must be one of numpy, torch, symbolic"),
    (swap('reference = "reference.py:step"\n', ''),
     "missing required key 'reference' (module:function or file.py:function)"),
    (swap('reference = "reference.py:step"', 'reference = "reference.py"'),
     "reference = 'reference.py' must look like 'module:name' or 'file.py:name'"),
    (swap('kind = "values"\npoints = 1', 'kind = "symbolic-parse"\npoints = 1'),
     "check 'the loss' of kind 'symbolic-parse' needs framework = \"symbolic\""),
    (swap('kind = "values"\npoints = 1', 'kind = "autograd"\npoints = 1'),
     "check 'the loss' of kind 'autograd' needs framework = \"torch\""),
    (swap('[cases.random]', '[limits]\nwall = 3\n\n[cases.random]'),
     "[limits] unknown key 'wall'; did you mean 'wall_s'? (known: cpu_s, disk_mb, fsize_mb, memory_mb, nofile, "
     "nproc, wall_s)"),
    (swap('[cases.random]', '[diagnoses.sign-flipped]\ntitel = "x"\n\n[cases.random]'),
     "[diagnoses.sign-flipped] unknown key 'titel'; did you mean 'title'? (known: hint, title)"),
    (swap('[cases.random]', '[kinds]\nvalues = "kinds.py:Mine"\n\n[cases.random]'),
     "[kinds] 'values' is a built-in check kind: give yours another name"),
    (swap('checks]]', 'check]]'),
     "unknown key 'check'; did you mean 'checks'? (known: cases, checks, diagnoses, dims, entry, framework, gpu, "
     "gradient, id, kinds, limits, memory_mb, mistakes, reference, rules, seed, signature, symbolic, time_limit, "
     "title)"),
    (swap('title = "A step"\n', ''), "missing required key 'title'"),
]


def arg1(new: str) -> str:
    """The spec with its first case argument, ``{ normal = [4, 3] }``, written as ``new``."""
    return swap('{ normal = [4, 3] }', new)


def with_dims(first: str) -> str:
    """The spec with ``[dims] N = 4, D = 3`` and its first case argument written as ``first``."""
    return swap('[cases.random]\nargs = [{ normal = [4, 3] }',
                f'[dims]\nN = 4\nD = 3\n\n[cases.random]\nargs = [{first}')


GENERATORS_KNOWN = "(known: normal, randint, rng, uniform, value)"
NORMAL_KNOWN = "(known: bound, dtype, loc, requires_grad, scale, set, torch, where)"

# a case's arguments (issue #12's trial #5, #17, #21, #31-#33): static, so `dlgrade list` says them too
BROKEN += [
    (arg1('{ gaussian = [4, 3] }'),
     f"case 'random': argument 1: unknown generator 'gaussian'; did you mean 'normal'? {GENERATORS_KNOWN}"),
    (arg1('{ normall = [4, 3] }'),
     f"case 'random': argument 1: unknown generator 'normall'; did you mean 'normal'? {GENERATORS_KNOWN}"),
    (arg1('{ shape = [4, 3] }'), f"case 'random': argument 1: unknown generator 'shape' {GENERATORS_KNOWN}"),
    (arg1('{ scale = 2.0 }'),
     "case 'random': argument 1: no generator: a table argument needs one of normal, randint, rng, uniform, "
     "value (a literal table is written {value = {...}})"),
    (arg1('{ normal = [4, 3], uniform = [4, 3] }'),
     "case 'random': argument 1: two generators, 'normal' and 'uniform': give one"),
    (swap('args = [{ normal = [4, 3] }, { normal = [3, 2] }]',
          'args = [{ normal = [4, 3] }, { normal = [3, 2] }]\nkwargs = { eps = { gausian = [] } }'),
     f"case 'random': keyword argument 'eps': unknown generator 'gausian'; did you mean 'normal'? {GENERATORS_KNOWN}"),
    (arg1('{ normal = [4, 3], scael = 2.0 }'),
     f"case 'random': argument 1: unknown option 'scael' of normal; did you mean 'scale'? {NORMAL_KNOWN}"),
    (arg1('{ normal = [4, 3], lco = 1.0 }'),
     f"case 'random': argument 1: unknown option 'lco' of normal; did you mean 'loc'? {NORMAL_KNOWN}"),
    (arg1('{ normal = [4, 3], low = 1.0 }'),
     "case 'random': argument 1: low is only for a uniform or randint argument"),
    (arg1('{ uniform = [4, 3], bound = 1.0 }'), "case 'random': argument 1: bound is only for a normal argument"),
    (arg1('{ rng = true, seed = 3 }'), "case 'random': argument 1: unknown option 'seed' of rng (known: none)"),
    (arg1('{ normal = [4, 3], torch = true, requires_grad = "yes" }'),
     "case 'random': argument 1: requires_grad must be true or false (got \"yes\")"),
    (arg1('{ normal = [4, 3], torch = 1 }'), "case 'random': argument 1: torch must be true or false (got 1)"),
    (arg1('{ normal = [4, 3], scale = "2" }'),
     "case 'random': argument 1: scale must be a number or a list of numbers (got \"2\")"),
    (arg1('{ normal = [4, 3], loc = "0" }'), "case 'random': argument 1: loc must be a number (got \"0\")"),
    (arg1('{ uniform = [4, 3], high = "1" }'), "case 'random': argument 1: high must be a number (got \"1\")"),
    (arg1('{ normal = [4, 3], bound = "3" }'),
     "case 'random': argument 1: bound must be a number of at least half the scale (0.5)"),
    (arg1('{ randint = [4], high = 2.5 }'),
     "case 'random': argument 1: high must be a whole number or a [dims] name, like \"C\" (got 2.5)"),
    (arg1('{ randint = [4], high = 3, cover = "yes" }'),
     "case 'random': argument 1: cover must be true or false (got \"yes\")"),
    (arg1('{ rng = 1 }'), "case 'random': argument 1: rng must be true (got 1)"),
    (arg1('{ normal = 4 }'),
     "case 'random': argument 1: normal must be a shape, a list of sizes or [dims] names, like [4, \"N\"] (got 4)"),
    (arg1('{ value = [[1.0, 2.0], [3.0]] }'),
     "case 'random': argument 1: value must be a number, a list of numbers (the same length in every row) or a "
     "table (got [[1.0, 2.0], [3.0]])"),
    (arg1('{ value = { lr = 0.1 }, dtype = "float32" }'),
     "case 'random': argument 1: a table value is passed as it is and takes no options (got 'dtype')"),
    (arg1('{ normal = [4, 3], dtype = "float23" }'),
     "case 'random': argument 1: unknown dtype 'float23'; did you mean 'float32'?"),
    (arg1('{ normal = [4, 3], dtype = "quad" }'), "case 'random': argument 1: unknown dtype 'quad'"),
    (arg1('{ normal = [4, 3], dtype = 32 }'),
     "case 'random': argument 1: dtype must be a string, like \"float32\" (got 32)"),
    (with_dims('{ normal = ["M", "D"] }'), "case 'random': argument 1: unknown dimension 'M' (dims: N, D)"),
    (with_dims('{ normal = ["n", "D"] }'),
     "case 'random': argument 1: unknown dimension 'n'; did you mean 'N'? (dims: N, D)"),
    (arg1('{ normal = [4, "N"] }'), "case 'random': argument 1: unknown dimension 'N' (dims: none)"),
    (with_dims('{ randint = ["N"], high = "C" }'),
     "case 'random': argument 1: high: unknown dimension 'C' (dims: N, D)"),
    (arg1('{ randint = [4] }'),
     "case 'random': argument 1: randint needs high, the first value it never draws, like high = 10 or "
     "high = \"C\""),
    (arg1('{ randint = [4], low = 3, high = 3 }'),
     "case 'random': argument 1: high must be above low (got low = 3, high = 3)"),
    (arg1('{ normal = [4, 3], scale = -1.0 }'), "case 'random': argument 1: scale must not be negative (got -1.0)"),
    (arg1('{ normal = [4, 3], scale = [1.0, 2.0] }'),
     "case 'random': argument 1: scale of shape (2,) does not broadcast against the shape (4, 3)"),
    (arg1('{ normal = [4, 3], requires_grad = true }'),
     "case 'random': argument 1: requires_grad = true needs torch = true (only a tensor has a gradient)"),
    (arg1('{ randint = [4], high = 3, torch = true, requires_grad = true }'),
     "case 'random': argument 1: requires_grad = true needs a floating dtype (this argument is int64)"),
    (arg1('{ normal = [4, 3], where = [[0, 1]] }'),
     "case 'random': argument 1: where and set go together: where = [[0, 1]], set = inf puts inf at [0, 1]"),
    (arg1('{ normal = [4, 3], where = [0, 1], set = inf }'),
     "case 'random': argument 1: where must be a list of indices, like [[0, 1], [2, 3]] (got [0, 1])"),
    (arg1('{ normal = [4, 3], where = [[4, 0]], set = inf }'),
     "case 'random': argument 1: where: index [4, 0] is outside the shape (4, 3)"),
    (arg1('{ normal = [4, 3], where = [[0, 0]], set = "inf" }'),
     "case 'random': argument 1: set must be a number, like inf or -1e9 (got \"inf\")"),
    (swap('[cases.random]\n', '[cases.random]\nsharde = true\n'),
     "case 'random': unknown key 'sharde'; did you mean 'shared'? (known: args, condition, description, dims, "
     "kwargs, shared)"),
    (swap('[cases.random]\n', '[cases.random]\ndescription = 3\n'),
     "case 'random': description must be a non-empty string (got 3)"),
]

# broken only in how the spec fits its reference: found by running the reference here
PROBED = [
    (swap('output = [0]', 'output = [2]'),
     "check 'the loss': output = [2] does not fit what the reference returns: on case 'random' it leads to "
     "nothing there, not an array (the reference returns a tuple of 2)"),
    (swap('output = [1, "w"]', 'output = [1, "W"]'),
     "check 'the gradient': output = [1, \"W\"] does not fit what the reference returns: on case 'random' it "
     "leads to nothing there, not an array (the reference returns a tuple of 2)"),
    (swap('output = [1, "w"]', 'output = [1]'),
     "check 'the gradient': output = [1] does not fit what the reference returns: on case 'random' it leads "
     "to a dict with keys 'w', not an array (the reference returns a tuple of 2)"),
    (swap('reference = "reference.py:step"', 'reference = "reference.py:stepp"'),
     "reference: reference.py has no 'stepp'"),
    (swap('mistakes = "reference.py:MISTAKES"', 'mistakes = "reference.py:MISTAKES"\n\n[diagnoses.x]\n'
          'title = "t"\nhint = "h"').replace('MISTAKES"', 'MISTAKES"', 1),
     None),  # a course diagnosis nothing uses is legal
    (swap('{ normal = [4, 3] }', '{ randint = [4, 3], high = 3, where = [[0, 0]], set = inf }'),
     "case 'random': argument 1 cannot be built: cannot convert float infinity to integer"),
    (swap('args = [{ normal = [4, 3] }, { normal = [3, 2] }]', 'args = [{ normal = [4, 3] }, { normal = [4, 2] }]'),
     "the reference raised ValueError: matmul: Input operand 1 has a mismatch in its core dimension 0, with "
     "gufunc signature (n?,k),(k,m?)->(n?,m?) (size 4 is different from 3) on case 'random'"),
]


@pytest.mark.parametrize("spec, message", BROKEN, ids=[m[:40] for _, m in BROKEN])
def test_a_broken_spec_is_one_line_naming_the_file_the_check_and_the_key(tmp_path, spec, message):
    folder = write(tmp_path, spec)
    with pytest.raises(SpecError) as err:
        load_exercise(folder)
    assert str(err.value) == f"{folder / 'spec.toml'}: {message}"


@pytest.mark.parametrize("spec, message", PROBED, ids=[str(m)[:40] for _, m in PROBED])
def test_a_spec_that_does_not_fit_its_reference_is_one_line(tmp_path, spec, message):
    folder = write(tmp_path, spec)
    ex = load_exercise(folder)
    if message is None:
        assert probe_exercise(ex) == ()
        return
    with pytest.raises(SpecError) as err:
        probe_exercise(ex)
    assert str(err.value) == f"{folder / 'spec.toml'}: {message}"


def test_a_mistake_without_a_diagnosis_table_is_a_spec_error(tmp_path):
    folder = write(tmp_path, reference=REFERENCE.replace('{"sign-flipped": step_sign}',
                                                        '{"sign-flipped": step_sign, "wrong-sign": step_sign}'))
    with pytest.raises(SpecError) as err:
        probe_exercise(load_exercise(folder))
    assert str(err.value) == (f"{folder / 'spec.toml'}: mistakes: 'wrong-sign' is not one of dlgrade's diagnoses "
                              "and has no [diagnoses.wrong-sign] table (a title and a hint for students)")


@pytest.mark.parametrize("edit, message", [
    (("    return loss, {\"w\": -grads[\"w\"]}", "    return loss, {\"w\": -gradz[\"w\"]}"),
     "mistakes: 'sign-flipped' raises on every case (random), so it can never be diagnosed: "
     "NameError: name 'gradz' is not defined"),
    (("def step_sign(x, w):", "def step_sign(x, w)"),  # the reference's module: named as the reference
     "reference: importing 'reference.py:step' raised SyntaxError: expected ':' (reference.py, line 9)"),
])
def test_a_buggy_reference_that_cannot_run_is_a_spec_error(tmp_path, edit, message):
    assert edit[0] in REFERENCE
    folder = write(tmp_path, reference=REFERENCE.replace(*edit))
    with pytest.raises(SpecError) as err:
        probe_exercise(load_exercise(folder))
    assert str(err.value) == f"{folder / 'spec.toml'}: {message}"


def test_a_buggy_reference_failing_on_some_cases_only_is_legal(tmp_path):
    spec = SPEC.replace("[[checks]]", "[cases.tiny]\nargs = [{ normal = [1, 3] }, { normal = [3, 2] }]\n\n[[checks]]", 1)
    spec = spec.replace('cases = ["random"]', 'cases = ["random", "tiny"]')
    reference = REFERENCE.replace("    loss, grads = step(x, w)\n",
                                  "    loss, grads = step(x, w)\n    assert x.shape[0] > 1\n", 1)
    assert probe_exercise(load_exercise(write(tmp_path, spec, reference))) == ()


def test_a_mistake_no_case_tells_apart_is_a_warning(tmp_path):
    folder = write(tmp_path, reference=REFERENCE.replace('{"sign-flipped": step_sign}',
                                                        '{"sign-flipped": step_sign, "mse-gradient": step_same}'))
    assert probe_exercise(load_exercise(folder)) == (
        f"{folder / 'spec.toml'}: mistake 'mse-gradient': no case tells it apart from the reference, so it can "
        "never be diagnosed (add a case on which it differs)",)


def test_the_correct_spec_passes_the_probe(tmp_path):
    assert probe_exercise(load_exercise(write(tmp_path))) == ()


def test_every_builtin_exercise_passes_the_probe_without_warnings():
    from dlgrade.graders.spec import catalogue

    for ex in catalogue().values():
        assert probe_exercise(ex) == (), ex.id


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


ANSWER = "import numpy as np\n\ndef step(x, w):\n    y = x @ w\n    return float(np.mean(y ** 2)), {'w': 2 * x.T @ y / y.size}\n"


@pytest.mark.parametrize("command", ["check", "grade", "show", "autograder"])
def test_every_command_refuses_a_broken_spec_before_grading(tmp_path, command):
    folder = write(tmp_path, swap('output = [0]', 'output = [0]\nrtoll = 0.5'))
    course = folder.parent
    sub = tmp_path / "class" / "alice"
    sub.mkdir(parents=True)
    (sub / "step.py").write_text(ANSWER)
    args = {"check": ["check", sub / "step.py"], "grade": ["grade", tmp_path / "class", "--out", tmp_path / "out"],
            "show": ["show", "course-step"], "autograder": ["autograder", "-e", "course-step", "--out",
                                                             tmp_path / "a.zip"]}[command]
    r = _run(*args, "--exercises-dir", course)
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines()[-1] == (
        f"Error: {folder / 'spec.toml'}: check 'the loss': unknown option 'rtoll'; did you mean 'rtol'? "
        "(known: atol, dtype, nonfinite_diagnosis, output, rtol)")
    assert not (tmp_path / "out" / "grades.csv").exists() and not (tmp_path / "a.zip").exists()


def test_a_spec_that_does_not_fit_its_reference_stops_check_and_grade(tmp_path):
    folder = write(tmp_path, swap('output = [0]', 'output = [2]'))
    sub = tmp_path / "class" / "alice"
    sub.mkdir(parents=True)
    (sub / "step.py").write_text(ANSWER)
    line = (f"Error: {folder / 'spec.toml'}: check 'the loss': output = [2] does not fit what the reference "
            "returns: on case 'random' it leads to nothing there, not an array (the reference returns a tuple of 2)")
    for args in (["check", sub / "step.py"], ["grade", tmp_path / "class", "--out", tmp_path / "out"],
                 ["show", "course-step"]):
        r = _run(*args, "--exercises-dir", folder.parent)
        assert r.exit_code == 2, r.output
        assert r.output.strip().splitlines()[-1] == line
    assert not (tmp_path / "out" / "students").exists() or not any((tmp_path / "out" / "students").iterdir())


def test_list_marks_a_broken_course_spec_and_lists_the_rest(tmp_path):
    folder = write(tmp_path, swap('kind = "values"\npoints = 1', 'kind = "valeus"\npoints = 1'))
    good = folder.parent / "good-step"
    good.mkdir()
    (good / "spec.toml").write_text(SPEC.replace('id = "course-step"', 'id = "good-step"'))
    (good / "reference.py").write_text(REFERENCE)
    r = _run("list", "--exercises-dir", folder.parent)
    assert r.exit_code == 2
    lines = r.output.splitlines()
    assert any(line.startswith("stable-softmax ") for line in lines)
    assert any(line.startswith("good-step ") for line in lines)
    assert lines[-1] == (f"BROKEN  {folder / 'spec.toml'}: check 'the loss': unknown check kind 'valeus'; did you "
                         "mean 'values'? (known: finite-difference, gradients, no-mutation, sequences, statistical, training, values)")


def test_show_prints_the_probes_warnings(tmp_path):
    folder = write(tmp_path, reference=REFERENCE.replace('{"sign-flipped": step_sign}',
                                                        '{"sign-flipped": step_sign, "mse-gradient": step_same}'))
    r = _run("show", "course-step", "--exercises-dir", folder.parent)
    assert r.exit_code == 0
    assert (f"warning: {folder / 'spec.toml'}: mistake 'mse-gradient': no case tells it apart from the reference, "
            "so it can never be diagnosed (add a case on which it differs)") in r.output


def test_grade_and_test_exercise_print_the_probes_warnings_too(tmp_path):
    """The instructor sees them where they grade (`grade`) and where they test (`test-exercise`),
    once per run; the students' reports never carry them."""
    folder = write(tmp_path, reference=REFERENCE.replace('{"sign-flipped": step_sign}',
                                                        '{"sign-flipped": step_sign, "mse-gradient": step_same}'))
    line = (f"warning: {folder / 'spec.toml'}: mistake 'mse-gradient': no case tells it apart from the reference, "
            "so it can never be diagnosed (add a case on which it differs)")
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "ada.py").write_text(REFERENCE.split("def step_sign")[0])
    r = _run("grade", subs, "--out", tmp_path / "out", "--jobs", "1", "--exercises-dir", folder.parent)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines().count(line) == 1
    assert "mse-gradient" not in (tmp_path / "out" / "students" / "ada.json").read_text()
    assert "mse-gradient" not in (tmp_path / "out" / "students" / "ada.html").read_text()
    r = _run("test-exercise", folder)
    assert r.output.splitlines().count(line) == 1


def test_every_builtin_kind_is_registered_and_declares_typed_options():
    import dataclasses
    import importlib
    import pkgutil

    import dlgrade.graders.checks as checks_pkg
    from dlgrade.graders.checks.protocol import ModuleKind
    from dlgrade.graders.checks.registry import BUILTIN, BUILTIN_KINDS

    helpers = {"common", "protocol", "registry", "options", "bands"}  # shared code, not kinds
    modules = {m.name for m in pkgutil.iter_modules(checks_pkg.__path__)} - helpers
    registered = {k.module_name.rsplit(".", 1)[1] for k in BUILTIN_KINDS if isinstance(k, ModuleKind)}
    assert modules == registered
    for kind in BUILTIN_KINDS:
        if isinstance(kind, ModuleKind):
            assert dataclasses.is_dataclass(kind.Options), kind.name
            assert callable(importlib.import_module(kind.module_name).plan)
    assert BUILTIN.names("symbolic") == ["symbolic-equivalence", "symbolic-parse"]


def test_typed_options_read_toml_values_and_name_what_is_wrong():
    from dataclasses import dataclass, field

    @dataclass(frozen=True)
    class Options:
        steps: int                                  # required: no default
        rates: list = field(default_factory=list)
        path: OutputPath = ()
        scale: float | None = None

    settings, values = read_options(Options, {"steps": 3, "rates": [0.1], "path": [1, "W1"], "scale": 2})
    assert settings == Options(steps=3, rates=[0.1], path=(1, "W1"), scale=2.0)
    assert values == {"steps": 3, "rates": [0.1], "path": (1, "W1"), "scale": 2.0}
    for table, message in [({}, "missing required option 'steps'"),
                           ({"steps": 2.5}, "option steps must be a whole number (got 2.5)"),
                           ({"steps": True}, "option steps must be a whole number (got true)"),
                           ({"steps": 1, "rates": 0.1}, "option rates must be a list, like [1, 2] (got 0.1)"),
                           ({"steps": 1, "stpes": 2}, "unknown option 'stpes'; did you mean 'steps'? "
                                                      "(known: path, rates, scale, steps)")]:
        with pytest.raises(OptionError) as err:
            read_options(Options, table)
        assert str(err.value) == message


# --------------------------------------------------------------------------- typos an outside trial made

def test_an_entry_the_starter_does_not_define_is_a_spec_error(tmp_path):
    folder = write(tmp_path, SPEC.replace('entry = "step"', 'entry = "stpe"'))
    (folder / "starter.py").write_text("import numpy as np\n\ndef step(x, w):\n    raise NotImplementedError\n")
    with pytest.raises(SpecError) as err:
        load_exercise(folder)
    assert str(err.value) == (f"{folder / 'spec.toml'}: entry 'stpe' is not defined in starter.py; did you mean "
                              "entry = 'step'? (students would be graded \"missing\": the entry is the name their "
                              "code must define)")
    (folder / "starter.py").write_text("def step(x, w)\n    pass\n")
    with pytest.raises(SpecError, match=r"starter.py cannot be read as Python \(SyntaxError, line 1\)$"):
        load_exercise(folder)


def test_a_misspelt_forbidden_module_is_a_spec_error_not_a_rule_that_forbids_nothing(tmp_path):
    folder = write(tmp_path, SPEC.replace('[cases.random]', '[rules]\nforbid_imports = ["torhc"]\n\n[cases.random]'))
    with pytest.raises(SpecError) as err:
        load_exercise(folder)
    assert str(err.value) == (f"{folder / 'spec.toml'}: [rules] forbid_imports lists 'torhc', which is no module; "
                              "did you mean 'torch'? (a misspelt name forbids nothing)")
    for fine in ("torch", "tensorflow", "my_course_helpers"):  # known, or no likely typo: a rule as written
        write(tmp_path, SPEC.replace('[cases.random]', f'[rules]\nforbid_imports = ["{fine}"]\n\n[cases.random]'))
        assert load_exercise(folder).rules.forbid_imports == (fine,)


def test_a_misspelt_key_every_check_has_is_named_as_such(tmp_path):
    folder = write(tmp_path, swap('output = [0]', 'output = [0]\nhiden = true'))
    with pytest.raises(SpecError) as err:
        load_exercise(folder)
    assert str(err.value) == (f"{folder / 'spec.toml'}: check 'the loss': unknown key 'hiden'; did you mean "
                              "'hidden'? (keys every check has: name, kind, points, hidden, cases, label; options "
                              "of kind 'values': atol, dtype, nonfinite_diagnosis, output, rtol)")


def test_two_exercises_with_one_id_in_a_folder_are_refused_not_shadowed(tmp_path):
    folder = write(tmp_path)
    twin = folder.parent / "course-step-copy"
    shutil.copytree(folder, twin)
    r = _run("list", "--exercises-dir", folder.parent)
    assert r.exit_code == 2
    assert r.output.splitlines()[-1] == (f"BROKEN  {twin / 'spec.toml'}: id 'course-step' is also the id of "
                                         f"{folder / 'spec.toml'} (each exercise needs its own id)")


def test_init_without_a_starter_and_show_without_a_statement_say_so(tmp_path):
    folder = write(tmp_path)
    r = _run("init", "course-step", tmp_path / "hw.py", "--exercises-dir", folder.parent)
    assert r.exit_code == 2
    assert r.output.strip() == (f"Error: {folder / 'spec.toml'}: exercise 'course-step' has no starter.py to copy "
                                "(add one beside its spec.toml: it is what `dlgrade init course-step` gives students)")
    r = _run("show", "course-step", "--exercises-dir", folder.parent)
    assert r.exit_code == 0
    assert r.output.splitlines()[-1] == f"warning: {folder / 'statement.md'}: missing, so students get no statement"


def test_a_broken_spec_stops_only_what_needs_it(tmp_path):
    """One broken exercise in a course folder: the others can still be shown, checked and
    tested by id; the broken one's id (or a broken spec whose id cannot be read) gives its
    error; what needs the whole catalogue (grading without -e) stops on it."""
    folder = write(tmp_path, swap('kind = "values"\npoints = 1', 'kind = "valeus"\npoints = 1'))
    good = folder.parent / "good-step"
    good.mkdir()
    (good / "spec.toml").write_text(SPEC.replace('id = "course-step"', 'id = "good-step"'))
    (good / "reference.py").write_text(REFERENCE)
    (good / "starter.py").write_text(ANSWER)
    line = (f"{folder / 'spec.toml'}: check 'the loss': unknown check kind 'valeus'; did you mean 'values'? "
            "(known: finite-difference, gradients, no-mutation, sequences, statistical, training, values)")
    assert _run("show", "good-step", "--exercises-dir", folder.parent).exit_code == 0
    answer = tmp_path / "answer.py"
    answer.write_text(ANSWER)
    r = _run("check", answer, "-e", "good-step", "--exercises-dir", folder.parent)
    assert r.exit_code == 0 and "3/3" in r.output.replace(" ", ""), r.output
    r = _run("show", "course-step", "--exercises-dir", folder.parent)
    assert (r.exit_code, r.output.strip()) == (2, f"Error: {line}")
    r = _run("show", "no-such-step", "--exercises-dir", folder.parent)
    assert r.exit_code == 2
    assert r.output.strip().endswith("(1 more spec did not load: dlgrade list says why)")
    r = _run("check", answer, "--exercises-dir", folder.parent)  # which exercise? the whole catalogue
    assert (r.exit_code, r.output.strip()) == (2, f"Error: {line}")
    other = tmp_path / "other"
    shutil.copytree(folder.parent, other)
    (other / "course-step" / "spec.toml").write_text("id = \"course-step\n")  # no id to read: maybe anyone's
    r = _run("show", "good-step", "--exercises-dir", other)
    assert r.exit_code == 2 and str(other / "course-step" / "spec.toml") in r.output
