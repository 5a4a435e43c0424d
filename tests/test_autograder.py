"""`dlgrade autograder`: the Gradescope zip, and its run_autograder run for real on a fake /autograder."""
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from graders.autograder import COURSE, build_autograder, scripts, write_fallback
from graders.cli import main

from conftest import CI_EXERCISE, FIXTURES, ROOT

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "gradescope_results.schema.json").read_text())


@pytest.fixture(scope="module")
def builtin_zip(tmp_path_factory):
    return build_autograder(tmp_path_factory.mktemp("zip") / "autograder.zip", ["stable-softmax"])


@pytest.fixture(scope="module")
def course_zip(tmp_path_factory, ci_exercises_dir):
    return build_autograder(tmp_path_factory.mktemp("zip") / "course.zip", [CI_EXERCISE], [str(ci_exercises_dir)])


def test_zip_holds_the_scripts_dlgrade_and_the_course_exercises(course_zip, ci_exercises_dir):
    with zipfile.ZipFile(course_zip) as zf:
        names = set(zf.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
    for script in ("setup.sh", "run_autograder"):
        assert script in names and modes[script] & stat.S_IXUSR
    assert {"dlgrade/pyproject.toml", "dlgrade/graders/worker.py", "dlgrade/graders/cli.py",
            "dlgrade/reports/gradescope.py", "dlgrade/reference/softmax.py",
            "dlgrade/exercises/stable-softmax/spec.toml",
            f"{COURSE}/1-{ci_exercises_dir.name}/{CI_EXERCISE}/spec.toml"} <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") or n.startswith("tests/") for n in names)


def test_scripts_are_valid_bash_and_install_cpu_torch_first():
    s = scripts(["stable-softmax", "my ex"], ["1-course"], torch_version="2.13.0")
    for text in s.values():
        subprocess.run(["bash", "-n"], input=text, text=True, check=True)
    setup = s["setup.sh"]
    torch_at = setup.index("pip install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu")
    assert torch_at < setup.index('pip install -q "$SOURCE/dlgrade"')
    assert '-m graders show \'my ex\' --exercises-dir "$SOURCE"/course-exercises/1-course >/dev/null' in setup
    run = s["run_autograder"]
    assert ('"$PYTHON" -m graders check "$ROOT/submission" --exercise stable-softmax --exercise \'my ex\' '
            '--exercises-dir "$SOURCE"/course-exercises/1-course \\\n    --gradescope "$RESULTS"') in run
    assert 'ROOT="${DLGRADE_AUTOGRADER_ROOT:-/autograder}"' in run


def fake_autograder(tmp_path: Path, zip_path: Path, submission_files: dict) -> Path:
    """The layout Gradescope builds: source/ (the zip), run_autograder, submission/, results/."""
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    os.chmod(root / "run_autograder", 0o755)
    (root / "submission").mkdir()
    for name, src in submission_files.items():
        shutil.copy(src, root / "submission" / name)
    return root


def run_autograder(root: Path) -> tuple[dict, subprocess.CompletedProcess]:
    env = {k: v for k, v in os.environ.items() if k not in ("DLGRADE_EXERCISES", "GITHUB_ACTIONS")}
    # setup.sh's venv is skipped: this machine's Python with this checkout stands in for it
    env.update(DLGRADE_AUTOGRADER_ROOT=str(root), DLGRADE_PYTHON=sys.executable, PYTHONPATH=str(ROOT))
    proc = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(data, SCHEMA)
    return data, proc


@pytest.mark.slow
def test_run_autograder_grades_a_real_submission(tmp_path, builtin_zip):
    root = fake_autograder(tmp_path, builtin_zip, {"softmax.py": FIXTURES / "softmax/correct_logsumexp.py"})
    data, proc = run_autograder(root)
    assert data["score"] == 10
    assert [t["status"] for t in data["tests"]] == ["passed"] * 6
    assert data["tests"][0]["name"] == "stable-softmax: values on random logits"
    assert "Total: 10 / 10" in proc.stdout  # the terminal summary goes to Gradescope's stdout log


@pytest.mark.slow
def test_run_autograder_with_a_course_exercise_and_a_hidden_check(tmp_path, course_zip):
    root = fake_autograder(tmp_path, course_zip, {"hw1.py": FIXTURES / "softmax/softmax_naive_overflow.py",
                                                  "notes.txt": FIXTURES / "ci/no_softmax_here.py"})
    data, _ = run_autograder(root)
    assert data["score"] == 7
    hidden = next(t for t in data["tests"] if t["name"] == f"{CI_EXERCISE}: large and very negative logits")
    assert (hidden["visibility"], hidden["status"], hidden["output"]) == (
        "after_published", "failed", "hidden check failed\npoints: 0 / 2")


@pytest.mark.slow
def test_run_autograder_grades_an_unreadable_submission_as_zero(tmp_path, builtin_zip):
    # a malformed notebook, and a symbolic link an uploaded zip can carry: graded errors (CONTRACT §4)
    root = fake_autograder(tmp_path, builtin_zip, {"hw1.ipynb": FIXTURES / "ci/malformed.ipynb"})
    data, proc = run_autograder(root)
    (test,) = data["tests"]
    assert (data["score"], test["name"], test["status"]) == (0, "stable-softmax: the submission could be graded",
                                                             "failed")
    assert test["output"].startswith(f"{root / 'submission' / 'hw1.ipynb'}: malformed notebook (not valid JSON")
    (root / "submission" / "hw1.ipynb").unlink()
    (root / "submission" / "softmax.py").symlink_to(ROOT / "reference" / "softmax.py")
    data, proc = run_autograder(root)
    (test,) = data["tests"]
    assert (data["score"], test["status"]) == (0, "failed")
    assert test["output"] == f"{root / 'submission' / 'softmax.py'} is a symbolic link; submit the file itself"


def test_write_fallback_takes_the_last_error_line(tmp_path):
    errors = tmp_path / "err.txt"
    errors.write_text("Usage: dlgrade check ...\n\nError: hw1.ipynb: malformed notebook\n\n")
    write_fallback(tmp_path / "results" / "results.json", errors)
    data = json.loads((tmp_path / "results" / "results.json").read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["output"].splitlines()[0] == "dlgrade could not grade this submission: hw1.ipynb: malformed notebook"
    write_fallback(tmp_path / "r2.json", tmp_path / "missing.txt")
    assert "no reason was given" in json.loads((tmp_path / "r2.json").read_text())["output"]


@pytest.mark.slow
def test_the_bundled_dlgrade_builds_offline_with_its_data(tmp_path, builtin_zip):
    pytest.importorskip("setuptools")
    with zipfile.ZipFile(builtin_zip) as zf:
        zf.extractall(tmp_path / "source")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(tmp_path / "wheel"), str(tmp_path / "source" / "dlgrade")],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "wheel").glob("dlgrade-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"graders/worker.py", "graders/checks/values.py", "reports/junit.py", "reference/softmax.py",
            "exercises/stable-softmax/spec.toml", "exercises/stable-softmax/statement.md",
            "exercises/stable-softmax/starter.py"} <= names


def test_cli_builds_the_zip_and_refuses_unknown_exercises(tmp_path):
    out = tmp_path / "ag.zip"
    r = CliRunner().invoke(main, ["autograder", "--exercise", "stable-softmax", "--out", str(out),
                                  "--torch-version", "2.13.0"])
    assert r.exit_code == 0, r.output
    assert r.output == f"wrote {out}: upload it as the autograder of a Gradescope programming assignment\n"
    assert zipfile.is_zipfile(out)
    r = subprocess.run([sys.executable, "-m", "graders", "autograder", "--exercise", "nope", "--out",
                        str(tmp_path / "x.zip")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "Error: unknown exercise 'nope'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.zip").exists()
