"""`dlgrade test-exercise`: an exercise's self-test, through the real grading path.

Each property is shown to hold on a good exercise and to fail on an exercise
written with that one flaw (a course folder built in tmp from the bundled
example), so none of these rows can pass by construction.
"""
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dlgrade.graders import selftest
from dlgrade.graders.cli import main
from dlgrade.graders.spec import get_exercise, load_exercise
from dlgrade.graders.trusted_runner import TrustedRunner

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "course-exercises" / "leaky-relu-grad"


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def rows_of(output: str) -> dict[str, tuple[str, str]]:
    """test name -> (result, detail), from the printed table (after any warning: lines)."""
    lines = [line for line in output.splitlines() if not line.startswith("warning: ")]
    head = lines[0]
    test_at, result_at, detail_at = head.index("test"), head.index("result"), head.index("detail")
    out = {}
    for line in lines[1:-1]:
        out[line[test_at:result_at].strip()] = (line[result_at:detail_at].strip(), line[detail_at:])
    return out


def course_copy(tmp_path, reference_py: str | None = None, spec_edit=None) -> Path:
    """The bundled leaky-relu-grad example copied to tmp, with its reference or spec changed."""
    folder = tmp_path / "course" / "leaky-relu-grad"
    shutil.copytree(EXAMPLE, folder)
    if reference_py is not None:
        (folder / "reference.py").write_text(reference_py)
    if spec_edit is not None:
        spec = folder / "spec.toml"
        spec.write_text(spec_edit(spec.read_text()))
    return folder


def test_the_bundled_example_passes_every_row():
    r = run("test-exercise", str(EXAMPLE))
    assert r.exit_code == 0, r.output
    rows = rows_of(r.output)
    assert rows["reference"] == ("ok", "full marks (3/3) under 10 student ids, no diagnosis")
    assert rows["mistake relu-slope-only"][0] == "ok"
    assert rows["check 'derivative values' can fail"] == (
        "ok", "fails for: every output shifted; every output replaced by zeros; "
              "the first argument added to every output of its shape")
    assert rows["check 'argument left unmodified' can fail"] == ("ok", "fails for: arguments modified in place")
    assert rows["deterministic"] == (
        "ok", "reference and mistake relu-slope-only: the same result twice as selftest-000")
    assert re.fullmatch(r"1 exercise, 5 tests, 0 failed; \d+\.\d s", r.output.splitlines()[-1])


def test_an_id_from_a_course_folder(tmp_path):
    folder = course_copy(tmp_path)
    r = run("test-exercise", "leaky-relu-grad", "--exercises-dir", str(folder.parent), "--seeds", "3")
    assert r.exit_code == 0, r.output
    assert rows_of(r.output)["reference"] == ("ok", "full marks (3/3) under 3 student ids, no diagnosis")


def test_a_wrong_reference_fails_its_row(tmp_path):
    # a reference left unwritten: graded as a student's submission, it earns nothing
    folder = course_copy(tmp_path, reference_py=(
        "import numpy as np\n\n"
        "def leaky_relu_grad(z, alpha=0.01):\n"
        "    raise ValueError('not written yet')\n\n"
        "def relu_grad(z, alpha=0.01):\n"
        "    return (np.asarray(z) > 0).astype(float)\n\n"
        "MISTAKES = {'relu-slope-only': relu_grad}\n"))
    r = run("test-exercise", str(folder), "--seeds", "2")
    assert r.exit_code == 2  # the spec is probed against its reference when it loads
    assert r.output == (f"Error: {folder / 'spec.toml'}: the reference raised ValueError: not written yet "
                        "on case 'alpha'\n")


def test_a_mistake_no_check_can_tell_from_the_truth_fails(tmp_path):
    folder = course_copy(tmp_path, reference_py=(
        "import numpy as np\n\n"
        "def leaky_relu_grad(z, alpha=0.01):\n"
        "    return np.where(z > 0, 1.0, alpha).astype(np.asarray(z).dtype)\n\n"
        "def same_thing(z, alpha=0.01):\n"
        "    return np.where(z > 0, 1.0, alpha)\n\n"
        "MISTAKES = {'relu-slope-only': same_thing}\n"))
    r = run("test-exercise", str(folder), "--seeds", "2")
    assert r.exit_code == 1
    assert rows_of(r.output)["mistake relu-slope-only"] == (
        "FAIL", "selftest-000: full marks (3/3): no check tells this mistake from the reference")
    assert r.output.splitlines()[-1].startswith("1 exercise, 5 tests, 1 failed (in leaky-relu-grad); ")
    assert r.output.splitlines()[0] == (  # the spec probe saw it before any test ran
        f"warning: {folder / 'spec.toml'}: mistake 'relu-slope-only': no case tells it apart from the reference, "
        "so it can never be diagnosed (add a case on which it differs)")


def test_a_mistake_that_loses_points_but_is_not_diagnosed_fails(tmp_path):
    # a buggy reference that returns no array: the submission (the same function) loses
    # points, but there is no array of the buggy reference to match it against
    folder = course_copy(tmp_path, reference_py=(
        "import numpy as np\n\n"
        "def leaky_relu_grad(z, alpha=0.01):\n"
        "    return np.where(z > 0, 1.0, alpha).astype(np.asarray(z).dtype)\n\n"
        "def broken(z, alpha=0.01):\n"
        "    return 'oops'\n\n"
        "MISTAKES = {'relu-slope-only': broken}\n"))
    r = run("test-exercise", str(folder), "--seeds", "2")
    assert r.exit_code == 1
    assert rows_of(r.output)["mistake relu-slope-only"] == (
        "FAIL", "selftest-000: 1/3 but not diagnosed relu-slope-only (diagnoses: none)")


def test_a_mistake_that_raises_on_every_case_is_a_spec_error(tmp_path):
    folder = course_copy(tmp_path, reference_py=(
        "import numpy as np\n\n"
        "def leaky_relu_grad(z, alpha=0.01):\n"
        "    return np.where(z > 0, 1.0, alpha).astype(np.asarray(z).dtype)\n\n"
        "def broken(z, alpha=0.01):\n"
        "    raise ZeroDivisionError('oops')\n\n"
        "MISTAKES = {'relu-slope-only': broken}\n"))
    r = run("test-exercise", str(folder), "--seeds", "2")
    assert r.exit_code == 2
    cases = ", ".join(sorted({c for chk in load_exercise(folder).checks for c in chk.cases}))
    assert r.output.strip().splitlines()[-1] == (
        f"Error: {folder / 'spec.toml'}: mistakes: 'relu-slope-only' raises on every case ({cases}), so it can "
        "never be diagnosed: ZeroDivisionError: oops")


def test_a_check_that_cannot_fail_fails_its_row(tmp_path):
    folder = course_copy(tmp_path, spec_edit=lambda s: s.replace(
        'label = "leaky_relu_grad(z)"\n\n', 'label = "leaky_relu_grad(z)"\natol = 1e9\n\n', 1))
    assert load_exercise(folder).checks[0].options["atol"] == 1e9
    r = run("test-exercise", str(folder), "--seeds", "2")
    assert r.exit_code == 1
    assert rows_of(r.output)["check 'derivative values' can fail"] == (
        "FAIL", "passes every perturbed reference (every output shifted; every output replaced by zeros; "
                "the first argument added to every output of its shape; arguments modified in place)")


def test_grading_twice_must_agree():
    ex = get_exercise("stable-softmax")
    calls = []

    def flaky(z, axis=-1):
        calls.append(1)
        e = np.exp(z - z.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True) * len(calls)  # a different answer each call

    row = selftest._determinism_row(ex, [selftest.Candidate("flaky", fn=flaky)], "selftest-000", None)
    assert not row.passed
    assert row.detail.startswith("flaky graded twice as selftest-000: checks differs (")
    good = selftest._determinism_row(ex, [selftest.Candidate("reference", fn=ex.reference_fn())],
                                     "selftest-000", None)
    assert good.passed and good.detail == "reference: the same result twice as selftest-000"


def test_symbolic_exercise_reference_and_mistakes_as_text_answers():
    r = run("test-exercise", "sigmoid-bce-grad", "--seeds", "2")
    assert r.exit_code == 0, r.output
    rows = rows_of(r.output)
    assert rows["mistake missing-chain-rule"][0] == "ok"
    assert rows["check 'parses' can fail"] == ("ok", "fails for: an unreadable answer")
    assert rows["check 'equivalent to dL/dz' can fail"] == (
        "ok", "fails for: an unreadable answer; the expression shifted")


def test_torch_exercise_every_check_can_fail():
    import torch

    threads = torch.get_num_threads()
    t = selftest.self_test(get_exercise("label-smoothing"), seeds=2)
    assert torch.get_num_threads() == threads  # one thread while it ran, restored after
    rows = {r.test: r for r in t.rows}
    assert t.passed, [r for r in t.rows if not r.passed]
    assert rows["check 'gradient w.r.t. logits (autograd)' can fail"].detail == (
        "fails for: every output shifted; every output replaced by zeros; arguments modified in place; "
        "result detached from autograd")
    assert rows["check 'runs on any device (probe)' can fail"].detail == (
        "fails for: result combined with a tensor made on the CPU")


def test_each_output_leaf_is_perturbed_in_turn():
    t = selftest.self_test(get_exercise("two-layer-backprop"), seeds=1)
    rows = {r.test: r for r in t.rows}
    assert t.passed, [r for r in t.rows if not r.passed]
    assert rows["check 'gradients of your own loss' can fail"].detail == (
        "fails for: every output shifted; output [0] shifted; output [1, 'W1'] shifted; "
        "output [1, 'b1'] shifted; output [1, 'W2'] shifted; output [1, 'b2'] shifted; "
        "every 2-D output transposed; output [1] key 'W1' dropped")


def test_tuple_output_mistakes_are_diagnosed():
    t = selftest.self_test(get_exercise("batchnorm-backward"), seeds=1)
    assert t.passed, [r for r in t.rows if not r.passed]


def test_the_trusted_runner_restores_the_process_state():
    ex = get_exercise("stable-softmax")
    random.seed(7)
    np.random.seed(7)
    expected = (random.random(), np.random.random())
    random.seed(7)
    np.random.seed(7)
    here = os.getcwd()
    r = selftest.grade_candidate(ex, selftest.Candidate("reference", fn=ex.reference_fn()), "someone")
    assert r.status == "graded" and r.score == r.max_score
    assert r.isolation == "trusted (in-process)"
    assert os.getcwd() == here
    assert (random.random(), np.random.random()) == expected


def test_the_trusted_runner_reports_a_raising_function_as_the_worker_does():
    ex = get_exercise("stable-softmax")

    def raises(z, axis=-1):
        raise KeyError("nope")

    r = selftest.grade_candidate(ex, selftest.Candidate("raises", fn=raises), "someone")
    assert r.status == "graded" and r.score == 0
    assert r.checks[0].message == "softmax(z) raised KeyError: 'nope' on random logits, shape (16, 10) (case 'random')"
    assert isinstance(TrustedRunner(raises).isolation, str)


@pytest.mark.parametrize("args, message", [
    (["test-exercise"], "Error: name one exercise (an id or a folder) or give --all"),
    (["test-exercise", "stable-softmax", "--all"], "Error: name one exercise (an id or a folder) or give --all"),
    (["test-exercise", "nope"], "Error: unknown exercise 'nope'; known: "),
    (["test-exercise", "no/such/folder"], "Error: no/such/folder: no such exercise folder"),
    (["test-exercise", "--all", "--exercises-dir", "no/such/dir"], "Error: exercises folder no/such/dir does not exist"),
])
def test_usage_errors_are_one_line_and_exit_2(args, message):
    r = run(*args)
    assert r.exit_code == 2
    assert r.output.strip().splitlines()[-1].startswith(message)


def test_a_folder_without_a_spec_is_exit_2(tmp_path):
    r = run("test-exercise", str(tmp_path))
    assert r.exit_code == 2
    assert r.output.strip() == (f"Error: {tmp_path}: no spec.toml in this folder (an exercise folder holds "
                                "spec.toml, statement.md and starter.py)")


def test_all_with_a_folder_tests_only_that_folders_exercises(tmp_path):
    folder = course_copy(tmp_path)
    r = run("test-exercise", "--all", "--exercises-dir", str(folder.parent), "--seeds", "2")
    assert r.exit_code == 0, r.output
    assert {line.split()[0] for line in r.output.splitlines()[1:-1]} == {"leaky-relu-grad"}


COURSE = ROOT / "examples" / "course-exercises"


@pytest.mark.parametrize("exercise", [
    "leaky-relu-grad",
    "mse-sigmoid-grad",
    "adam-update",
    "batchnorm-grad",
])
def test_the_course_examples_pass_test_exercise(exercise):
    """The example course folder: every mistake diagnosed, every check able to fail."""
    r = run("test-exercise", exercise, "--exercises-dir", str(COURSE), "--seeds", "3")
    assert r.output.splitlines()[-1].startswith("1 exercise, ") and " 0 failed; " in r.output, r.output
    assert r.exit_code == 0
    spec_mistakes = get_exercise(exercise, (str(COURSE),)).mistake_fns()
    rows = rows_of(r.output)
    assert {t.removeprefix("mistake ") for t in rows if t.startswith("mistake ")} == set(spec_mistakes)


def test_the_tuple_examples_already_pass_everything_but_mistake_matching():
    """Until mistake matching reads tuple outputs, their mistake rows fail (loses points, not
    diagnosed); every other row passes already."""
    for exercise in ("adam-update", "batchnorm-grad"):
        t = selftest.self_test(get_exercise(exercise, (str(COURSE),)), seeds=2)
        failing = [r for r in t.rows if not r.passed]
        assert all(r.test.startswith("mistake ") and "but not diagnosed" in r.detail for r in failing), failing


def test_a_broken_spec_is_one_line_and_exit_2(tmp_path):
    folder = course_copy(tmp_path, spec_edit=lambda s: s.replace('framework = "numpy"', 'framework = "jax"'))
    r = run("test-exercise", str(folder))
    assert r.exit_code == 2
    assert r.output.strip() == f"Error: {folder / 'spec.toml'}: framework must be one of numpy, torch, symbolic"


def test_without_the_sandbox_the_symbolic_self_test_warns_and_still_runs(monkeypatch):
    monkeypatch.setenv("DLGRADE_NO_SANDBOX", "1")
    r = CliRunner().invoke(main, ["test-exercise", "sigmoid-bce-grad", "--seeds", "1"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert r.stderr.startswith("WARNING: ") and "(isolation: basic)" in r.stderr


@pytest.mark.skipif(__import__("dlgrade.graders.devices", fromlist=["x"]).accelerator() is not None,
                    reason="this machine has a GPU")
def test_an_exercise_that_requires_a_gpu_is_not_tested_without_one(tmp_path):
    r = run("new", "mse-gpu", "--framework", "torch", "--dir", str(tmp_path))
    spec = tmp_path / "mse-gpu" / "spec.toml"
    spec.write_text(spec.read_text() + "\n[gpu]\nrequired = true\n")
    r = run("test-exercise", str(tmp_path / "mse-gpu"))
    assert r.exit_code == 1
    assert rows_of(r.output) == {"needs a GPU": (
        "FAIL", "[gpu] required = true and this machine has no CUDA GPU: not tested")}


def test_a_misspelled_check_kind_is_one_line_and_exit_2_not_a_crash(tmp_path):
    folder = course_copy(tmp_path, spec_edit=lambda s: s.replace('kind = "values"', 'kind = "valuse"'))
    r = run("test-exercise", str(folder), "--seeds", "2")
    assert r.exit_code == 2
    assert len(r.output.splitlines()) == 1
    assert r.output.startswith(f"Error: {folder / 'spec.toml'}: check 'derivative values': unknown check kind "
                               "'valuse'; did you mean 'values'?")


def test_json_rows(tmp_path):
    import json

    folder = course_copy(tmp_path, spec_edit=lambda s: s.replace(
        'label = "leaky_relu_grad(z)"\n\n', 'label = "leaky_relu_grad(z)"\natol = 1e9\n\n', 1))
    r = run("test-exercise", str(folder), "--seeds", "2", "--json")
    assert r.exit_code == 1
    d = json.loads(r.output)
    assert d["passed"] is False
    [ex] = d["exercises"]
    assert (ex["exercise"], ex["passed"]) == ("leaky-relu-grad", False)
    assert [row["test"] for row in ex["rows"]] == [
        "reference", "mistake relu-slope-only", "check 'derivative values' can fail",
        "check 'argument left unmodified' can fail", "deterministic"]
    assert [row["passed"] for row in ex["rows"]] == [True, False, False, True, True]


# --------------------------------------------------------------------------- chained calls


def test_the_trusted_runner_runs_a_chained_plan_as_the_worker_does():
    """prev/keep, rng, global_seed and report_global: the worker's own call loop."""
    def step(w, g, rng):
        draw = np.random.random()  # numpy's global generator: seeded by global_seed, reported
        return (w - g + rng.integers(0, 1) + 0 * draw,)

    w, g = np.arange(3.0), np.ones(3)
    plan = {"seed": 0, "_arrays": {"w.npy": w, "g.npy": g}, "calls": [
        {"id": "a", "n": 0, "keep": True, "args": [{"npy": "w.npy"}, {"npy": "g.npy"}, {"rng": 5}]},
        {"id": "b", "n": 1, "keep": True, "global_seed": 3, "report_global": True,
         "args": [{"prev": "a", "item": 0}, {"npy": "g.npy"}, {"rng": 5}]},
        {"id": "c", "n": 2, "args": [{"prev": "b", "item": 1}, {"npy": "g.npy"}, {"rng": 5}]},
    ]}
    outcome = TrustedRunner(step).run(None, plan, {})
    calls = {r["id"]: r for r in outcome.journal if r.get("step") == "call"}
    assert [calls[i]["status"] for i in "abc"] == ["ok", "ok", "skipped"]
    assert calls["b"]["global_changed"] is True and "global_changed" not in calls["a"]
    assert calls["c"]["error"] == {"kind": "chain", "after": "b"}  # b returned no item 1
    b_out = np.load(outcome.job_dir / calls["b"]["output"]["items"][0]["file"])
    np.testing.assert_array_equal(b_out, w - 2 * g)  # fed a's own returned w
    outcome.cleanup()


def test_the_worker_and_the_trusted_runner_share_one_call_loop():
    from dlgrade.graders import sandboxed_worker, trusted_runner

    src = Path(sandboxed_worker.__file__).read_text()
    assert "run_calls(value, plan, job_dir, inputs, journal.write)" in src
    assert "dlgrade" not in "".join(line for line in src.splitlines() if line.lstrip().startswith(("import", "from")))
    assert "worker.run_calls(" in Path(trusted_runner.__file__).read_text()


def test_a_sequences_exercise_passes_every_row():
    t = selftest.self_test(get_exercise("momentum-step"), seeds=2)
    rows = {r.test: r for r in t.rows}
    assert t.passed, [r for r in t.rows if not r.passed]
    assert rows["reference"].detail == "full marks (10/10) under 2 student ids, no diagnosis"
    assert rows["mistake ema-velocity"].detail.startswith(
        "loses points and is diagnosed ema-velocity under 2 student ids (last: ")


def test_a_chained_mistake_is_graded_in_process_as_in_the_sandbox():
    """As tests/test_sequences.py's sandboxed velocity_not_decayed.py: right first step,
    wrong from step 2 (it is fed its own returned velocity)."""
    ex = get_exercise("momentum-step")
    fn = ex.mistake_fns()["velocity-not-decayed"]
    fn = fn[0] if isinstance(fn, (list, tuple)) else fn
    r = selftest.grade_candidate(ex, selftest.Candidate("mistake", fn=fn), "s-7")
    checks = {c.name: c for c in r.checks}
    assert checks["first step from zero velocity"].message == (
        "w follows the reference over 1 step on 1 input (max abs error 0)")
    msg = checks["six steps"].message
    assert re.fullmatch(re.escape("w after step 2 is wrong on six steps from zero velocity (w of shape 3 x 4) "
                                  "(case 'trajectory'): 12 / 12 elements (100%) differ; worst at ") + r".*", msg), msg
    assert r.diagnoses == ("velocity-not-decayed",)


# --------------------------------------------------------------------------- perturbations a shift cannot stand in for


def test_a_statistical_exercise_passes_every_row_and_each_check_fails_for_what_it_tests():
    t = selftest.self_test(get_exercise("xavier-init"), seeds=2)
    rows = {r.test: r.detail for r in t.rows}
    assert t.passed, [r for r in t.rows if not r.passed]
    assert rows["reference"] == "full marks (10/10) under 2 student ids, no diagnosis"
    assert rows["check 'shape (n_in, n_out)' can fail"] == "fails for: every 2-D output transposed"
    assert rows["check 'not constant' can fail"] == (
        "fails for: every 2-D output transposed; every output replaced by zeros")
    assert rows["check 'uses its generator' can fail"] == (
        "fails for: the rng argument ignored (numpy's global generator used)")


def test_a_training_exercise_fails_for_a_dropped_key_and_a_zero_network():
    t = selftest.self_test(get_exercise("xor-training"), seeds=1)
    rows = {r.test: r.detail for r in t.rows}
    assert t.passed, [r for r in t.rows if not r.passed]
    assert rows["check \"returns the network's parameters\" can fail"] == (
        "fails for: every 2-D output transposed; output key 'W1' dropped")
    assert "every output replaced by zeros" in rows["check 'held-out accuracy at least 95%' can fail"]


def test_an_invariance_check_fails_when_the_input_is_added_to_the_output():
    r = run("test-exercise", "log-softmax", "--exercises-dir", str(ROOT / "examples" / "course-exercises"),
            "--seeds", "1")
    assert r.exit_code == 0, r.output
    assert rows_of(r.output)["check 'adding a constant to every logit changes nothing' can fail"] == (
        "ok", "fails for: the first argument added to every output of its shape")


def test_perturbations_are_offered_only_where_they_change_something():
    ex = get_exercise("stable-softmax")
    labels = [label for label, _ in selftest._perturbations(
        ex, selftest.Candidate("reference", fn=ex.reference_fn()), "selftest-000")]
    assert "the rng argument ignored (numpy's global generator used)" not in labels  # no generator handed
    assert not any("dropped" in label for label in labels)  # no dict returned
    assert "every output replaced by zeros" in labels


def test_each_new_perturbation_does_what_its_name_says():
    ref = lambda x, rng: {"W": x + rng.random(), "b": np.ones(2)}  # noqa: E731
    x = np.zeros((2, 3))
    assert selftest._mapped(ref, selftest._transpose)(x, np.random.default_rng(0))["W"].shape == (3, 2)
    zeros = selftest._mapped(ref, selftest._zeros)(x, np.random.default_rng(0))
    assert not zeros["W"].any() and not zeros["b"].any()
    assert set(selftest._dropped(ref, (), "W")(x, np.random.default_rng(0))) == {"b"}
    np.random.seed(1)
    a = selftest._ignoring_rng(ref)(x, np.random.default_rng(0))["W"]
    np.random.seed(1)
    assert np.array_equal(a, selftest._ignoring_rng(ref)(x, np.random.default_rng(99))["W"])  # the given one unused
    assert not np.array_equal(a, ref(x, np.random.default_rng(0))["W"])
    plus = selftest._plus_first_argument(lambda z: z * 0)(np.full((2, 3), 4.0))
    np.testing.assert_array_equal(plus, np.full((2, 3), 4.0))
