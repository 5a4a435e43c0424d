"""dlgrade as its users install it: built into an sdist and a wheel, installed into
fresh virtual environments outside the checkout (one under /tmp, one under $HOME),
into a user site, into a Gradescope autograder by its own setup.sh, and into a
GitHub Classroom runner by the commands examples/github-classroom.yml runs.
Every command runs from a folder outside the checkout, with nothing of the
checkout on the Python path.

One build and one installation per kind for the whole session (each costs
tens of seconds: torch is large); the tests share them.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT
from test_cli import BROKEN_BWRAP, BROKEN_LINES

pytestmark = pytest.mark.slow

TORCH = "torch==2.13.0"  # the CPU build the README installs
INSTALL_TIMEOUT = 1800
CORRECT = FIXTURES / "softmax" / "correct_shift_max.py"
WRONG = FIXTURES / "softmax" / "softmax_naive_overflow.py"  # 7 / 10, diagnosed "overflow"
CLASS = {"alice/hw.py": CORRECT, "bob.py": FIXTURES / "softmax" / "softmax_wrong_axis.py",
         "carol.py": FIXTURES / "softmax" / "softmax_syntax_error.py"}
CLASS_TOTALS = {"alice": "10", "bob": "1", "carol": "0"}
WORKFLOW = ROOT / "examples" / "github-classroom.yml"


def clean_env(bin_dir: Path | None = None, **extra) -> dict[str, str]:
    """This machine's environment without dlgrade's settings, the test run's own
    virtual environment or Python path, with ``bin_dir`` first on PATH. pip's
    configuration (PIP_*) stays: it says where this machine's packages come from."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DLGRADE_", "PYTHON", "GITHUB_")) and k not in ("VIRTUAL_ENV", "CI")}
    here = os.path.realpath(sys.prefix)
    path = [p for p in env.get("PATH", os.defpath).split(os.pathsep)
            if p and not os.path.realpath(p).startswith(here + os.sep)]
    env["PATH"] = os.pathsep.join(([str(bin_dir)] if bin_dir else []) + path)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def sh(args, cwd, env, timeout=600, expect: int | None = 0) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if expect is not None:
        assert r.returncode == expect, f"{args}: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


# --------------------------------------------------------------------------- building


def _source_files() -> list[str]:
    """The checkout's files as a fresh clone has them, plus new ones not ignored."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [f for f in out.decode().split("\0") if f and (ROOT / f).is_file()]


@pytest.fixture(scope="session")
def dists(tmp_path_factory) -> dict[str, Path]:
    """The sdist and the wheel, as `python -m build` makes them (the wheel from the sdist)."""
    pytest.importorskip("build", reason="python -m pip install build (in the [test] extra)")
    src = tmp_path_factory.mktemp("src") / "dlgrade"
    files = _source_files()
    if files:
        for f in files:
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    else:  # not a git checkout
        shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "artifacts"))
    out = tmp_path_factory.mktemp("dist")
    sh([sys.executable, "-m", "build", "--outdir", out, src], cwd=out, env=clean_env(), timeout=INSTALL_TIMEOUT)
    (wheel,) = out.glob("dlgrade-*-py3-none-any.whl")
    (sdist,) = out.glob("dlgrade-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


@pytest.fixture(scope="session")
def foreign(tmp_path_factory) -> Path:
    """A folder outside the checkout holding the submissions the tests grade."""
    d = tmp_path_factory.mktemp("foreign")
    shutil.copy(CORRECT, d / "correct.py")
    shutil.copy(WRONG, d / "wrong.py")
    for dest, src in CLASS.items():
        (d / "class" / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, d / "class" / dest)
    return d


def _venv(path: Path) -> Path:
    sh([sys.executable, "-m", "venv", path], cwd=path.parent, env=clean_env())
    return path


def _site_packages(python: Path, env) -> Path:
    out = sh([python, "-c", "import dlgrade, os; print(os.path.dirname(os.path.dirname(dlgrade.__file__)))"],
             cwd=tempfile.gettempdir(), env=env).stdout.strip()
    return Path(out)


# --------------------------------------------------------------------------- GitHub Classroom


def _workflow():
    yaml = pytest.importorskip("yaml")
    wf = yaml.safe_load(WORKFLOW.read_text())
    (job,) = wf["jobs"].values()
    return job


@pytest.fixture(scope="session")
def classroom(tmp_path_factory, dists) -> dict:
    """A template repository set up as the example workflow says (the wheel in
    .github/dlgrade/, a student's softmax.py), and a fresh Python under /tmp
    (actions/setup-python's stand-in) on which the workflow's own commands
    install torch and dlgrade and check the runner. Its steps run in order;
    ``ran``/``skipped`` record which."""
    job = _workflow()
    repo = tmp_path_factory.mktemp("classroom") / "assignment"
    (repo / ".github" / "dlgrade").mkdir(parents=True)
    shutil.copy(dists["wheel"], repo / ".github" / "dlgrade")
    shutil.copy(CORRECT, repo / "softmax.py")
    venv = _venv(repo.parent / "runner-python")
    summary = repo.parent / "step-summary.md"
    env = clean_env(venv / "bin", **{k: str(v) for k, v in job["env"].items()})
    env.update(DLGRADE_TORCH_INDEX="",  # this machine has no PyTorch index: pip's configuration has torch
               GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary), GITHUB_WORKSPACE=str(repo))
    ran, skipped, graded = [], [], {}
    for step in job["steps"]:
        name = step.get("name") or step.get("uses")
        uses = step.get("uses", "")
        if "run" in step and "apt-get" in step["run"]:
            assert shutil.which("bwrap"), "bubblewrap must be installed on this machine"
            skipped.append(name)  # the machine has bubblewrap; the tests do not run apt-get or sudo
        elif "run" in step:
            sh(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=repo, env=env,
               timeout=INSTALL_TIMEOUT)
            ran.append(name)
        elif uses.startswith("classroom-resources/autograding-command-grader"):
            graded[name] = sh(["bash", "-c", step["with"]["command"]], cwd=repo, env=env, expect=None,
                              timeout=60 * int(step["with"].get("timeout", 10)))
            ran.append(name)
        else:
            skipped.append(name)  # checkout, setup-python, the reporter, the artifact upload: GitHub's own
    return {"venv": venv, "repo": repo, "env": env, "ran": ran, "skipped": skipped, "graded": graded,
            "summary": summary, "job": job}


def test_the_classroom_workflow_runs_as_shipped(classroom):
    assert classroom["ran"] == ["Install CPU-only PyTorch (first, or dlgrade pulls the CUDA build)",
                                "Install dlgrade", "Check that this runner can grade", "stable-softmax"]
    assert classroom["skipped"] == ["actions/checkout@v4", "actions/setup-python@v5",
                                    "Install bubblewrap (dlgrade's sandbox)", "Autograding Reporter",
                                    "Keep the JUnit reports"]
    r = classroom["graded"]["stable-softmax"]
    assert r.returncode == 0, r.stderr  # full marks reach --min-score 10: Classroom awards the points
    assert "stable-softmax  Numerically stable softmax  10 / 10" in r.stdout
    assert "(isolation: sandbox)" in r.stdout
    junit = (classroom["repo"] / "junit-stable-softmax.xml").read_text()
    assert 'tests="6"' in junit and 'failures="0"' in junit
    assert "stable-softmax" in classroom["summary"].read_text()


def test_a_classroom_step_fails_below_min_score_and_annotates_the_file(classroom, tmp_path):
    job = classroom["job"]
    step = next(s for s in job["steps"] if s.get("id") == "stable-softmax")
    repo = tmp_path / "student-repo"
    repo.mkdir()
    shutil.copy(WRONG, repo / "softmax.py")
    r = sh(["bash", "-c", step["with"]["command"]], cwd=repo, env=classroom["env"], expect=1)
    assert "score 7 is below --min-score 10" in r.stderr
    assert "::error file=softmax.py," in r.stdout + r.stderr


# --------------------------------------------------------------------------- venvs outside the checkout


@pytest.fixture(scope="session")
def home_venv(dists):
    """A fresh virtual environment under $HOME (/opt or /var/tmp where $HOME is not writable)."""
    for base in (Path.home(), Path("/opt"), Path("/var/tmp")):
        try:
            top = Path(tempfile.mkdtemp(prefix=".dlgrade-test-", dir=base))
            break
        except OSError:
            continue
    else:
        pytest.skip("no writable folder outside /tmp")
    try:
        venv = _venv(top / "venv")
        sh([venv / "bin" / "python", "-m", "pip", "install", "-q", TORCH, dists["wheel"]], cwd=top,
           env=clean_env(venv / "bin"), timeout=INSTALL_TIMEOUT)
        yield venv
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(params=["tmp", "home"])
def venv(request, classroom, dists) -> tuple[Path, str]:
    """Each wheel install in turn, with the wheel pip installed it from: the
    Classroom runner's under /tmp, and the one under $HOME."""
    if request.param == "tmp":
        return classroom["venv"], (classroom["repo"] / ".github" / "dlgrade" / dists["wheel"].name).as_uri()
    return request.getfixturevalue("home_venv"), dists["wheel"].as_uri()


def test_the_venvs_are_outside_the_checkout(classroom, home_venv):
    """One under /tmp, one elsewhere; both hold dlgrade in their own site-packages."""
    assert str(classroom["venv"]).startswith(tempfile.gettempdir() + os.sep)
    assert not str(home_venv).startswith(tempfile.gettempdir() + os.sep)
    for v in (classroom["venv"], home_venv):
        assert not str(v).startswith(str(ROOT) + os.sep)
        site = _site_packages(v / "bin" / "python", clean_env(v / "bin"))
        assert site == Path(os.path.realpath(v)) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" \
            / "site-packages"


def test_check_a_correct_submission_in_the_sandbox(venv, foreign):
    venv, _ = venv
    env = clean_env(venv / "bin")
    r = sh(["dlgrade", "check", "correct.py", "--json"], cwd=foreign, env=env)
    d = json.loads(r.stdout)
    assert (d["status"], d["score"], d["max_score"], d["isolation"]) == ("graded", 10, 10, "sandbox")
    r = sh(["dlgrade", "check", "correct.py"], cwd=foreign, env=env)
    assert r.stdout.splitlines()[0] == "dlgrade check: correct  (isolation: sandbox)"
    assert "Total: 10 / 10" in r.stdout and r.stderr == ""


def test_check_a_wrong_submission_gets_its_diagnosis(venv, foreign):
    venv, _ = venv
    r = sh(["dlgrade", "check", "wrong.py", "--json"], cwd=foreign, env=clean_env(venv / "bin"))
    d = json.loads(r.stdout)
    assert (d["status"], d["score"], d["isolation"]) == ("graded", 7, "sandbox")
    assert d["diagnoses"] == ["overflow"]


def test_grade_a_small_class(venv, foreign, tmp_path):
    venv, _ = venv
    out = tmp_path / "graded"
    r = sh(["dlgrade", "grade", "class", "--out", out, "--jobs", "2"], cwd=foreign, env=clean_env(venv / "bin"))
    assert r.stdout.rstrip().endswith(f"(3 graded, 0 unchanged): {out / 'grades.csv'}")
    import csv

    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert {row["student"]: row["total"] for row in rows} == CLASS_TOTALS
    results = json.loads((out / "results.json").read_text())
    assert {r["isolation"] for r in results} == {"sandbox"}
    assert (out / "index.html").is_file() and (out / "students" / "alice.html").is_file()


def test_doctor_says_how_dlgrade_is_installed_and_that_grading_works(venv, foreign):
    venv, wheel_url = venv
    r = sh(["dlgrade", "doctor"], cwd=foreign, env=clean_env(venv / "bin"))
    lines = r.stdout.splitlines()
    site = _site_packages(venv / "bin" / "python", clean_env(venv / "bin"))
    assert f"        dlgrade     0.1.0: a wheel ({wheel_url}), in the virtual environment {venv} ({site})" in lines, \
        r.stdout
    assert any(line.startswith("  ok    grading     stable-softmax, a correct answer: 10 / 10 in ") for line in lines)
    assert any(line.startswith("  ok    hidden      ") for line in lines)
    assert lines[-1] == "OK: dlgrade grades on this machine, with student code in the sandbox"


def test_student_code_cannot_read_the_installed_packages(venv, foreign, tmp_path):
    venv, _ = venv
    env = clean_env(venv / "bin")
    site = _site_packages(venv / "bin" / "python", env)
    probe = tmp_path / "probe.py"
    targets = [site / "dlgrade" / "reference" / "softmax.py", site / "dlgrade" / "graders" / "engine.py",
               site / "dlgrade" / "exercises" / "stable-softmax" / "spec.toml", site / "dlgrade" / "reports" / "html.py"]
    assert not any((site / name).exists() for name in ("graders", "reference", "reports", "exercises"))
    assert all(t.is_file() for t in targets)
    probe.write_text("import importlib, importlib.util\n"
                     f"for path in {[str(t) for t in targets]!r}:\n"
                     "    try:\n        open(path).read(); print('READ', path)\n"
                     "    except OSError as exc:\n        print('no', type(exc).__name__)\n"
                     "for name in ('dlgrade.reference.softmax', 'dlgrade.graders.engine', 'dlgrade', 'reference', 'graders'):\n"
                     "    try:\n        m = importlib.import_module(name)\n"
                     "        if getattr(m, '__file__', None) or list(getattr(m, '__path__', [])) and "
                     "any(importlib.util.find_spec(name + '.' + s) for s in ('graders', 'reference')):\n"
                     "            print('IMPORTED', name)\n"
                     "        else:\n            print('no ModuleNotFoundError')  # a masked, empty folder\n"
                     "    except ImportError as exc:\n        print('no', type(exc).__name__)\n"
                     "def softmax(z, axis=-1):\n    return z\n")
    d = json.loads(sh(["dlgrade", "check", str(probe), "--json"], cwd=foreign, env=env).stdout)
    assert d["isolation"] == "sandbox"
    assert "READ" not in d["output"] and "IMPORTED" not in d["output"], d["output"]
    assert d["output"].count("no FileNotFoundError") == 4


def test_a_broken_sandbox_is_exit_3_for_a_wheel_install_too(classroom, foreign, tmp_path):
    fake = tmp_path / "bwrap"
    fake.write_text(BROKEN_BWRAP["worker-fails"].format(real=shutil.which("bwrap")))
    fake.chmod(0o755)
    env = clean_env(classroom["venv"] / "bin", DLGRADE_BWRAP=str(fake))
    r = sh(["dlgrade", "check", "correct.py"], cwd=foreign, env=env, expect=3)
    assert r.stderr == f"Error: dlgrade could not grade correct.py: {BROKEN_LINES['worker-fails']}\n"
    out = tmp_path / "graded"
    r = sh(["dlgrade", "grade", "class", "--out", out], cwd=foreign, env=env, expect=3)
    assert r.stderr.splitlines()[-1].startswith("Error: dlgrade itself failed while grading ")
    assert list((out / "students").iterdir()) == []


# --------------------------------------------------------------------------- the user site of a system Python


@pytest.fixture(scope="session")
def user_site(tmp_path_factory, dists):
    """The sdist installed with ``pip install --user`` into a system interpreter
    (a user base of its own), torch and all: ``python -I`` skips the user site."""
    system = shutil.which("python3", path="/usr/bin:/bin")
    if not system:
        pytest.skip("no system python3 in /usr/bin")
    probe = subprocess.run([system, "-c", "import sys, pip; print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != "%d.%d" % sys.version_info[:2]:
        pytest.skip(f"{system} has no pip, or is not Python {sys.version_info[0]}.{sys.version_info[1]} "
                    f"(the local {TORCH} wheel)")
    base = tmp_path_factory.mktemp("userbase")
    env = clean_env(base / "bin", PYTHONUSERBASE=str(base), PIP_BREAK_SYSTEM_PACKAGES="1")
    sh([system, "-m", "pip", "install", "-q", "--user", TORCH, dists["sdist"]], cwd=base, env=env,
       timeout=INSTALL_TIMEOUT)
    return {"python": system, "env": env, "base": base}


def test_a_user_site_install_from_the_sdist_grades_in_the_sandbox(user_site, foreign):
    py, env = user_site["python"], user_site["env"]
    d = json.loads(sh([py, "-m", "dlgrade", "check", "correct.py", "--json"], cwd=foreign, env=env).stdout)
    assert (d["status"], d["score"], d["isolation"]) == ("graded", 10, "sandbox")
    r = sh(["dlgrade", "doctor"], cwd=foreign, env=env)
    dl = next(line for line in r.stdout.splitlines() if line.startswith("        dlgrade "))
    assert dl.startswith("        dlgrade     0.1.0: an sdist (file://") and ", in the user site " in dl, dl
    assert r.stdout.splitlines()[-1] == "OK: dlgrade grades on this machine, with student code in the sandbox"


# --------------------------------------------------------------------------- packaging


def test_the_autograder_wheel_carries_what_the_built_wheel_carries(dists):
    """The wheel dlgrade writes itself (into a Gradescope zip) has the files setuptools packages."""
    from dlgrade.graders.wheelfile import build_wheel

    def files(names):
        return {n for n in names if ".dist-info/" not in n}

    name, data = build_wheel()
    import io

    assert name == dists["wheel"].name
    assert files(zipfile.ZipFile(io.BytesIO(data)).namelist()) == files(zipfile.ZipFile(dists["wheel"]).namelist())


# --------------------------------------------------------------------------- Gradescope


@pytest.fixture(scope="session")
def gradescope(tmp_path_factory, classroom) -> dict:
    """An autograder zip built by the wheel install, set up by its own setup.sh in a
    fresh autograder root (its own venv), with pip's configuration for torch."""
    work = tmp_path_factory.mktemp("gradescope")
    zip_path = work / "autograder.zip"
    r = sh(["dlgrade", "autograder", "--exercise", "stable-softmax", "--out", zip_path], cwd=work,
           env=clean_env(classroom["venv"] / "bin"))
    assert r.stdout == f"wrote {zip_path}: upload it as the autograder of a Gradescope programming assignment\n"
    root = work / "autograder"
    (root / "source").mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    for script in ("setup.sh", "run_autograder"):
        os.chmod(root / "source" / script, 0o755)
    env = clean_env(None, DLGRADE_AUTOGRADER_ROOT=str(root), DLGRADE_TORCH_INDEX="")
    setup = sh(["bash", root / "source" / "setup.sh"], cwd=root / "source", env=env, timeout=INSTALL_TIMEOUT)
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    return {"root": root, "env": env, "setup": setup}


def _submit(gs: dict, files: dict[str, Path], expect: int = 0, **env) -> tuple[dict, subprocess.CompletedProcess]:
    root = gs["root"]
    shutil.rmtree(root / "submission", ignore_errors=True)
    (root / "submission").mkdir()
    for name, src in files.items():
        shutil.copy(src, root / "submission" / name)
    r = sh([root / "run_autograder"], cwd=root, env={**gs["env"], **env}, expect=expect)
    return json.loads((root / "results" / "results.json").read_text()), r


def test_gradescope_setup_makes_its_own_venv_and_checks_the_machine(gradescope):
    root, setup = gradescope["root"], gradescope["setup"]
    assert (root / "dlgrade-venv" / "bin" / "dlgrade").is_file()
    assert setup.stdout.splitlines()[-1] == "OK: dlgrade grades on this machine, with student code in the sandbox"
    assert "in the virtual environment " + str(root / "dlgrade-venv") in setup.stdout
    assert not (root / "dlgrade-no-sandbox").exists()


def test_gradescope_grades_correct_wrong_and_unreadable_submissions(gradescope):
    data, r = _submit(gradescope, {"softmax.py": CORRECT})
    assert data["score"] == 10 and [t["status"] for t in data["tests"]] == ["passed"] * 6
    assert "(isolation: sandbox)" in r.stdout
    data, _ = _submit(gradescope, {"softmax.py": WRONG})
    assert data["score"] == 7
    assert {t["name"]: t["status"] for t in data["tests"]}["stable-softmax: large and very negative logits"] \
        == "failed"
    data, _ = _submit(gradescope, {"hw1.ipynb": FIXTURES / "ci" / "malformed.ipynb"})
    assert data["score"] == 0
    text = data["output"] + "".join(t.get("output", "") for t in data["tests"])
    assert "hw1.ipynb" in text and "notebook" in text, data  # the student learns why


def test_gradescope_says_when_the_autograder_is_broken_and_degrades_only_when_set_up_so(gradescope, tmp_path):
    fake = tmp_path / "bwrap"
    fake.write_text(BROKEN_BWRAP["probe-fails"])
    fake.chmod(0o755)
    root = gradescope["root"]
    data, r = _submit(gradescope, {"softmax.py": CORRECT}, expect=3, DLGRADE_BWRAP=str(fake))
    assert data["score"] == 0 and data["tests"] == []
    assert data["output"].startswith("The autograder could not grade this submission because of a problem with the "
                                     "autograder itself, not with your submission: ")
    # an image that cannot run the sandbox: setup.sh notices and says so, submissions are graded in basic mode
    try:
        setup = sh(["bash", root / "source" / "setup.sh"], cwd=root / "source",
                   env={**gradescope["env"], "DLGRADE_BWRAP": str(fake)}, timeout=INSTALL_TIMEOUT)
        assert "dlgrade: the sandbox cannot run in this image (see above): submissions will be graded with " \
               "resource limits only (isolation: basic)" in setup.stderr
        assert (root / "dlgrade-no-sandbox").exists()
        data, r = _submit(gradescope, {"softmax.py": CORRECT}, DLGRADE_BWRAP=str(fake))
        assert data["score"] == 10 and "(isolation: basic)" in r.stdout
    finally:
        (root / "dlgrade-no-sandbox").unlink(missing_ok=True)


NOTEBOOK_RUN = r'''
import json, sys
from pathlib import Path
import nbformat
from nbclient import NotebookClient

folder = Path(sys.argv[1])
nb = nbformat.read(folder / "hw.ipynb", as_version=4)
NotebookClient(nb, kernel_name="wheel-python", timeout=300, resources={"metadata": {"path": str(folder)}}).execute()
(shown,) = [o for o in nb.cells[-1].outputs if o.output_type == "display_data"]
print(json.dumps(shown["data"]))
'''


def test_a_wheel_install_checks_a_notebook_from_its_kernel(home_venv, foreign, tmp_path):
    """`%load_ext dlgrade` / `%dlgrade check` in a Jupyter kernel of the installed wheel,
    as a student's own environment has it: the same result as `dlgrade check` there."""
    python = home_venv / "bin" / "python"
    env = clean_env(home_venv / "bin")
    sh([python, "-m", "pip", "install", "-q", "ipykernel", "nbclient"], cwd=tmp_path, env=env,
       timeout=INSTALL_TIMEOUT)
    spec = tmp_path / "jupyter" / "kernels" / "wheel-python"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"], "language": "python",
        "display_name": "wheel"}))
    folder = tmp_path / "student"
    folder.mkdir()
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(WRONG.read_text()), nbformat.v4.new_code_cell("%load_ext dlgrade\n%dlgrade check")]
    nbformat.write(nb, folder / "hw.ipynb")
    run = sh([python, "-c", NOTEBOOK_RUN, folder], cwd=foreign, env={**env, "JUPYTER_PATH": str(tmp_path / "jupyter")},
             timeout=600)
    shown = json.loads(run.stdout)
    cli = sh(["dlgrade", "check", "hw.ipynb"], cwd=folder, env=env)
    assert shown["text/plain"] == cli.stdout.rstrip("\n")
    assert shown["text/plain"].splitlines()[0] == "dlgrade check: hw  (isolation: sandbox)"
    assert "diagnosis [overflow]" in shown["text/plain"] and "Total: 7 / 10" in shown["text/plain"]
    assert 'sandbox=""' in shown["text/html"] and "srcdoc=" in shown["text/html"]


def test_a_course_author_scaffolds_and_self_tests_with_the_installed_wheel(home_venv, tmp_path):
    """`dlgrade new` writes its files from the installed package (no data files needed),
    and `dlgrade test-exercise` runs trusted references in process with the installed
    worker, for a course exercise and a built-in one."""
    env = clean_env(home_venv / "bin")
    r = sh(["dlgrade", "new", "tanh-grad", "--framework", "numpy", "--dir", "course"], cwd=tmp_path, env=env)
    assert r.stdout.splitlines()[1] == "test it:   dlgrade test-exercise course/tanh-grad"
    r = sh(["dlgrade", "test-exercise", "course/tanh-grad", "--seeds", "2"], cwd=tmp_path, env=env)
    assert r.stdout.splitlines()[-1].startswith("1 exercise, 5 tests, 0 failed; ")
    r = sh(["dlgrade", "test-exercise", "stable-softmax", "--seeds", "2"], cwd=tmp_path, env=env)
    assert r.stdout.splitlines()[-1].startswith("1 exercise, 13 tests, 0 failed; ")


PACK_FROM_WHEEL = {  # (exercise, fixture) -> (score, diagnoses): the pack's new check kinds, installed
    ("momentum-step", "correct_lr_inside.py"): (10, []),
    ("adam-step", "no_bias_correction.py"): (0, ["no-bias-correction"]),
    ("dropout", "correct_binomial.py"): (10, []),
    ("xavier-init", "fan_out_used.py"): (6, ["fan-out-used"]),
    ("xor-training", "linear_model.py"): (2, ["linear-model"]),
}


def test_the_pack_kinds_grade_from_the_wheel(venv, tmp_path):
    """sequences, statistical and training exercises graded by the installed wheel, from a
    folder outside the checkout; the precomputed bands travel with it."""
    venv, _ = venv
    env = clean_env(venv / "bin")
    site = _site_packages(venv / "bin" / "python", env)
    assert (site / "dlgrade" / "graders" / "data" / "statistical_bands.json").is_file()
    for (ex, fixture), expected in PACK_FROM_WHEEL.items():
        path = tmp_path / f"{ex.replace('-', '_')}_{fixture}"
        shutil.copy(ROOT / "tests" / "fixtures" / "pack" / ex / fixture, path)
        d = json.loads(sh(["dlgrade", "check", path.name, "--exercise", ex, "--json"], cwd=tmp_path, env=env).stdout)
        assert (d["status"], d["isolation"]) == ("graded", "sandbox"), (ex, d.get("message"))
        assert (d["score"], d["diagnoses"]) == expected, (ex, fixture)
