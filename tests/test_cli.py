"""The command line: thin commands, one-line usage errors with exit code 2."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from graders.cli import main

ROOT = Path(__file__).parent.parent
FIX = ROOT / "tests" / "fixtures"


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def all_commands(group=main, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if hasattr(cmd, "commands"):
            yield from all_commands(cmd, prefix + (name,))


@pytest.mark.parametrize("path, cmd", list(all_commands()), ids=lambda x: " ".join(x) if isinstance(x, tuple) else "")
def test_every_command_has_help_with_an_example(path, cmd):
    assert cmd.help and len(cmd.help.strip()) > 20
    assert "Example" in cmd.help
    r = run(*path, "--help")
    assert r.exit_code == 0


def test_list_and_show():
    r = run("list")
    assert r.exit_code == 0 and "stable-softmax" in r.output
    r = run("show", "stable-softmax")
    assert r.exit_code == 0
    assert "entry: softmax(z, axis=-1) -> numpy.ndarray" in r.output
    assert "3  values on random logits" in r.output


def test_init_writes_py_and_notebook(tmp_path):
    r = run("init", "stable-softmax", str(tmp_path / "s.py"))
    assert r.exit_code == 0 and (tmp_path / "s.py").read_text().startswith("import numpy")
    r = run("init", "stable-softmax", str(tmp_path / "s.py"))
    assert r.exit_code == 2 and "already exists (use --force to overwrite)" in r.output
    r = run("init", "stable-softmax", "--notebook", str(tmp_path))
    nb = json.loads((tmp_path / "stable_softmax.ipynb").read_text())
    assert nb["cells"][1]["cell_type"] == "code"


@pytest.mark.parametrize("args, message", [
    (["check", "does/not/exist.py"], "Error: does/not/exist.py: no such file or folder"),
    (["check", str(FIX / "softmax/correct_shift_max.py"), "--exercise", "nope"], "Error: unknown exercise 'nope'"),
    (["check", str(FIX / "notebooks/malformed.ipynb")], "malformed notebook (not valid JSON"),
    (["show", "nope"], "Error: unknown exercise 'nope'"),
    (["init", "nope"], "Error: unknown exercise 'nope'"),
])
def test_usage_errors_are_one_line_and_exit_2(args, message):
    r = subprocess.run([sys.executable, "-m", "graders", *args], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_check_prints_a_summary_and_json():
    good = str(FIX / "softmax/correct_shift_max.py")
    r = run("check", good)
    assert r.exit_code == 0
    assert "stable-softmax  Numerically stable softmax  10 / 10" in r.output
    assert "Total: 10 / 10" in r.output
    r = run("check", good, "--json")
    d = json.loads(r.output)
    assert d["exercise"] == "stable-softmax" and d["status"] == "graded" and d["score"] == 10
    assert {"student", "exercise", "status", "score", "max_score", "checks", "diagnoses"} <= set(d)
    assert {"name", "passed", "score", "max_score", "message", "details"} <= set(d["checks"][0])


def test_min_score_exit_codes():
    bad = str(FIX / "softmax/softmax_naive_overflow.py")
    assert run("check", bad, "--min-score", "7").exit_code == 0
    r = run("check", bad, "--min-score", "9.5")
    assert r.exit_code == 1
    crash = str(FIX / "softmax/softmax_syntax_error.py")
    assert run("check", crash).exit_code == 0


def test_nothing_to_grade_is_a_usage_error(tmp_path):
    p = tmp_path / "empty.py"
    p.write_text("x = 1\n")
    r = subprocess.run([sys.executable, "-m", "graders", "check", str(p)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "no exercise entry found" in r.stderr


def test_prestarted_workers_survive_and_grade(runner):
    """Workers launched ahead (overlapping the grader's imports) must not die when
    the launching code returns (bwrap's --die-with-parent follows the thread)."""
    from graders.api import check
    from graders.runner import Runner
    from graders.spec import get_exercise

    r = Runner(isolation=runner.isolation)
    try:
        r.prestart([get_exercise("stable-softmax")])
        assert len(r._launched) == 1
        for _ in range(3):
            rep = check(FIX / "softmax/correct_shift_max.py", runner=r)
            assert rep.results[0].status == "graded" and rep.score == 10
        assert not r._launched and len(r.workers) == 1
    finally:
        r.close()


def test_a_grader_failure_is_one_line_not_a_traceback(monkeypatch):
    from graders import api
    from graders.engine import GraderError

    def boom(*a, **k):
        raise GraderError("the sandbox worker did not start: bwrap: no permission")

    monkeypatch.setattr(api, "check", boom)
    good = str(FIX / "softmax/correct_shift_max.py")
    r = CliRunner().invoke(main, ["check", good])
    assert r.exit_code == 2
    assert r.output.strip() == (f"Error: dlgrade could not grade {good}: "
                                "the sandbox worker did not start: bwrap: no permission")
