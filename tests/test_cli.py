"""The command line: thin commands, one-line usage errors with exit code 2."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dlgrade.graders.cli import main

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
    # the last cell checks the notebook from its own kernel
    assert nb["cells"][-1]["cell_type"] == "code"
    assert "".join(nb["cells"][-1]["source"]) == "%load_ext dlgrade\n%dlgrade check stable-softmax"
    assert "".join(nb["cells"][-2]["source"]) == (
        "Run the cells above, then the next one to check your answer here "
        "(from a terminal: `dlgrade check stable_softmax.ipynb`).")


@pytest.mark.parametrize("args, message", [
    (["check", "does/not/exist.py"], "Error: does/not/exist.py: no such file or folder"),
    (["check", str(FIX / "softmax/correct_shift_max.py"), "--exercise", "nope"], "Error: unknown exercise 'nope'"),
    (["check", str(FIX / "notebooks/malformed.ipynb")], "malformed notebook (not valid JSON"),
    (["show", "nope"], "Error: unknown exercise 'nope'"),
    (["init", "nope"], "Error: unknown exercise 'nope'"),
])
def test_usage_errors_are_one_line_and_exit_2(args, message):
    r = subprocess.run([sys.executable, "-m", "dlgrade", *args], cwd=ROOT, capture_output=True, text=True)
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
    r = subprocess.run([sys.executable, "-m", "dlgrade", "check", str(p)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "no exercise entry found" in r.stderr


def test_prestarted_workers_survive_and_grade(runner):
    """Workers launched ahead (overlapping the grader's imports) must not die when
    the launching code returns (bwrap's --die-with-parent follows the thread)."""
    from dlgrade.graders.api import check
    from dlgrade.graders.runner import Runner
    from dlgrade.graders.spec import get_exercise

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


def test_a_grader_failure_is_one_line_exit_3_not_a_traceback(monkeypatch):
    from dlgrade.graders import api
    from dlgrade.graders.engine import GraderError
    from dlgrade.graders.sandbox import SandboxError

    def boom(*a, **k):
        raise GraderError("the worker could not build inputs for call values-1")

    monkeypatch.setattr(api, "check", boom)
    good = str(FIX / "softmax/correct_shift_max.py")
    r = CliRunner().invoke(main, ["check", good])
    assert r.exit_code == 3
    assert r.output == f"Error: dlgrade could not grade {good}: the worker could not build inputs for call values-1\n"

    def sandbox_boom(*a, **k):  # a failure of the sandbox, wrapped by the engine: the doctor says why
        try:
            raise SandboxError("the sandbox worker did not start: bwrap: no permission", sandbox=True)
        except SandboxError as exc:
            raise GraderError(str(exc)) from exc

    monkeypatch.setattr(api, "check", sandbox_boom)
    r = CliRunner().invoke(main, ["check", good])
    assert r.exit_code == 3
    assert r.output == (f"Error: dlgrade could not grade {good}: the sandbox worker did not start: "
                        "bwrap: no permission; run `dlgrade doctor` to see why\n")


def _internal(exc):
    def raiser(*a, **k):
        raise exc
    return raiser


COMMANDS_AND_THEIR_INSIDES = [
    (["list"], "dlgrade.graders.cli.survey"),
    (["show", "stable-softmax"], "dlgrade.graders.cli.get_exercise"),
    (["init", "stable-softmax", "{tmp}/s.py"], "dlgrade.graders.starter.write_starter"),
    (["check", str(FIX / "softmax/correct_shift_max.py")], "dlgrade.graders.api.check"),
    (["grade", str(FIX / "softmax"), "--out", "{tmp}/out"], "dlgrade.graders.batch.grade_class"),
    (["autograder", "-e", "stable-softmax", "--out", "{tmp}/a.zip"], "dlgrade.graders.autograder.build_autograder"),
    (["doctor"], "dlgrade.graders.doctor.examine"),
    (["wheel", "--out", "{tmp}"], "dlgrade.graders.wheelfile.build_wheel"),
]


@pytest.mark.parametrize("args, inside", COMMANDS_AND_THEIR_INSIDES, ids=lambda x: x[0] if isinstance(x, list) else "")
def test_no_traceback_ever_escapes(args, inside, tmp_path, monkeypatch):
    """Whatever goes wrong inside a command, the person typing it reads one line (exit 3)."""
    monkeypatch.delenv("DLGRADE_DEBUG", raising=False)
    monkeypatch.setattr(inside, _internal(RuntimeError("unexpected\nstate")))
    r = CliRunner().invoke(main, [a.format(tmp=tmp_path) for a in args])
    assert r.exit_code == 3, r.output
    assert r.output == ("Error: dlgrade failed with an internal error (RuntimeError: unexpected state); this is a "
                        "bug in dlgrade: please report it with the output of the same command run with "
                        "DLGRADE_DEBUG=1\n")
    monkeypatch.setenv("DLGRADE_DEBUG", "1")
    r = CliRunner().invoke(main, [a.format(tmp=tmp_path) for a in args])
    assert isinstance(r.exception, RuntimeError)  # for whoever debugs it


def test_a_missing_dependency_is_one_line_exit_3(tmp_path):
    """A real process whose numpy cannot be imported (a broken installation)."""
    code = "import sys; sys.modules['numpy'] = None; from dlgrade.graders.cli import main; main()"
    r = subprocess.run([sys.executable, "-c", code, "check", str(FIX / "softmax/correct_shift_max.py")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 3
    assert r.stderr == (f"Error: dlgrade cannot run: the Python package 'numpy' is missing from {sys.executable} "
                        "(reinstall dlgrade there: python -m pip install dlgrade)\n")
    assert r.stdout == ""


BROKEN_BWRAP = {
    # bubblewrap that cannot create namespaces here (Ubuntu 24.04's AppArmor, a container)
    "probe-fails": '#!/bin/sh\necho "bwrap: setting up uid map: Permission denied" >&2\nexit 1\n',
    # bubblewrap that passes dlgrade's probe but cannot start the real sandbox (the wheel bug)
    "worker-fails": '#!/bin/sh\nfor last; do :; done\n[ "$last" = true ] && exec {real} "$@"\n'
                    'echo "bwrap: Can\'t mkdir parents for /x/exercises/stable-softmax: Read-only file system" >&2\n'
                    'exit 1\n',
}
BROKEN_LINES = {
    "probe-fails": "bubblewrap is installed but cannot create a sandbox here (bwrap: setting up uid map: "
                   "Permission denied); run `dlgrade doctor` to see why, or set DLGRADE_NO_SANDBOX=1 to grade "
                   "without the sandbox",
    "worker-fails": "the sandbox worker did not start: bwrap: Can't mkdir parents for /x/exercises/stable-softmax: "
                    "Read-only file system; run `dlgrade doctor` to see why",
}


def broken_bwrap_env(tmp_path, kind: str) -> dict:
    """The environment of a process that finds a failing ``bwrap`` first on PATH."""
    import os
    import shutil

    real = shutil.which("bwrap")
    if kind == "worker-fails" and not real:
        pytest.skip("needs a working bubblewrap to pass the probe")
    bin_dir = tmp_path / f"bin-{kind}"
    bin_dir.mkdir()
    (bin_dir / "bwrap").write_text(BROKEN_BWRAP[kind].format(real=real))
    (bin_dir / "bwrap").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("DLGRADE_BWRAP", "DLGRADE_NO_SANDBOX", "GITHUB_ACTIONS")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.parametrize("kind", sorted(BROKEN_BWRAP))
def test_a_broken_sandbox_is_exit_3_in_one_line_for_check(tmp_path, kind):
    env = broken_bwrap_env(tmp_path, kind)
    sub = FIX / "softmax/correct_shift_max.py"
    outs = {flag: tmp_path / name for flag, name in
            [("--junit", "j.xml"), ("--html", "r.html"), ("--gradescope", "results.json")]}
    r = subprocess.run([sys.executable, "-m", "dlgrade", "check", str(sub), "--json",
                        *[a for flag, path in outs.items() for a in (flag, str(path))]],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 3
    assert r.stderr == f"Error: dlgrade could not grade {sub}: {BROKEN_LINES[kind]}\n"
    assert r.stdout == ""
    assert [p for p in outs.values() if p.exists()] == []  # nothing that reads as a grade


@pytest.mark.parametrize("kind", sorted(BROKEN_BWRAP))
def test_a_broken_sandbox_is_exit_3_in_one_line_for_grade(tmp_path, make_class, kind):
    env = broken_bwrap_env(tmp_path, kind)
    subs = make_class({"alice.py": "softmax/correct_shift_max.py", "bob.py": "softmax/softmax_wrong_axis.py"})
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "dlgrade", "grade", str(subs), "--out", str(out), "-j", "2"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 3
    last = r.stderr.splitlines()[-1]
    if kind == "probe-fails":  # refused before anything is written
        assert r.stderr == f"Error: dlgrade could not grade {subs}: {BROKEN_LINES[kind]}\n"
        assert not out.exists()
    else:
        assert re.fullmatch(re.escape("Error: dlgrade itself failed while grading ") + "(alice|bob)"
                            + re.escape(f" (stable-softmax): {BROKEN_LINES[kind]}; the batch stopped with 0 of 2 "
                                        f"students graded (kept in {out}), no grade written for ") + "(alice|bob)"
                            + re.escape(" or the 1 others not graded yet; fix this and run the same command "
                                        "again to grade them"), last), last
        assert list((out / "students").iterdir()) == []
        assert json.loads((out / "results.json").read_text()) == []
        assert (out / "grades.csv").read_text().count("\n") == 1  # the header only
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_wheel_writes_this_dlgrade_as_a_wheel(tmp_path):
    import zipfile

    r = run("wheel", "--out", str(tmp_path / "whl"))
    path = tmp_path / "whl" / "dlgrade-0.1.0-py3-none-any.whl"
    assert r.output == f"wrote {path}; install it with: python -m pip install {path}\n"
    names = zipfile.ZipFile(path).namelist()
    assert "dlgrade/graders/cli.py" in names and "dlgrade/__main__.py" in names
    assert not any(n.startswith(("graders/", "reference/", "reports/", "exercises/")) for n in names)
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = CliRunner().invoke(main, ["wheel", "--out", str(blocker / "sub")])
    assert r.exit_code == 2 and r.output.startswith(f"Error: {blocker / 'sub' / path.name}: cannot be written")
