"""The execution layer against hostile submissions, in both isolation modes.

Each hostile test grades one fixture of ``tests/fixtures/hostile/`` (all for
the ``stable-softmax`` exercise, with short limits), pins its status and
message, proves that nothing escaped where the mode promises it, and then
grades a correct submission with the same runner: the grader survives.

Basic isolation promises limits, statuses and a grader that survives; the
sandbox also promises no network, no writes outside the scratch directory, no
view of the reference solutions and no process that outlives its job.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dlgrade.graders import decoding as outputs, sandboxed_worker as worker
from dlgrade.graders.api import grade_one
from dlgrade.graders.engine import format_output
from dlgrade.graders.decoding import Leaf, Opaque, clean_text, decode, read_array, read_journal
from dlgrade.graders.runner import Runner
from dlgrade.graders.sandbox import Limits, Worker, basic_warning, remove_tree, sandbox_status
from dlgrade.graders.spec import get_exercise, load_exercise
from dlgrade.graders.submission import Submission

FIXTURES = Path(__file__).parent / "fixtures"
HOSTILE = FIXTURES / "hostile"
CORRECT = FIXTURES / "softmax" / "correct_shift_max.py"
ROOT = Path(__file__).parent.parent
SHORT = Limits(wall_s=2, cpu_s=1, nproc=8, disk_mb=64)


def exercise(**limits):
    """stable-softmax with the short limits (changed by ``limits``)."""
    return dataclasses.replace(get_exercise("stable-softmax"), limits=dataclasses.replace(SHORT, **limits))


def grade(runner, path, ex=None, student="student-1"):
    return grade_one(ex or exercise(), Submission(Path(path), student=student), runner)


def grades_next_normally(runner) -> None:
    r = grade(runner, CORRECT)
    assert (r.status, r.score, r.max_score, r.message) == ("graded", 10, 10, "")


def mode_of(runner) -> str:
    return runner.isolation


def the_worker(runner) -> Worker:
    return runner.worker_for(("numpy",))


def processes_with_arg(arg: str) -> list[int]:
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if arg.encode() in f.read().split(b"\0"):
                    found.append(int(p))
        except OSError:
            pass
    return found


def from_template(tmp_path, name: str, **values) -> Path:
    """A copy of a hostile fixture with ``NAME = ...`` lines set by the test."""
    text = (HOSTILE / name).read_text()
    for key, value in values.items():
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {value!r}", text, count=1, flags=re.M)
        assert n == 1, key
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- time


def test_infinite_loop_hits_the_cpu_limit(any_runner):
    r = grade(any_runner, HOSTILE / "infinite_loop.py", exercise(wall_s=60, cpu_s=1))
    assert (r.status, r.score) == ("timeout", 0)
    assert r.message == "the submission exceeded the 1 s CPU time limit while running softmax on case 'random'"
    assert r.error["kind"] == "cpu-limit"
    grades_next_normally(any_runner)


def test_long_sleep_hits_the_wall_clock_limit(any_runner):
    t0 = time.monotonic()
    r = grade(any_runner, HOSTILE / "long_sleep.py")
    assert (r.status, r.score) == ("timeout", 0)
    assert r.message == "the submission exceeded the 2 s time limit while running softmax on case 'random'"
    assert r.error["kind"] == "timeout"
    assert time.monotonic() - t0 < 30
    grades_next_normally(any_runner)


# --------------------------------------------------------------------------- memory


def test_8gb_allocation_in_the_function_is_out_of_memory(any_runner):
    r = grade(any_runner, HOSTILE / "allocate_8gb.py")
    assert (r.status, r.score) == ("graded", 0)
    assert r.checks[0].message == ("softmax(z) ran out of memory on random logits, shape (16, 10) "
                                   "(case 'random') (the limit is 1024 MB)")
    grades_next_normally(any_runner)


@pytest.mark.parametrize("name", ["allocate_8gb_at_import.py", "shared_memory_8gb.py"])
def test_8gb_allocation_at_import_is_out_of_memory(any_runner, name):
    r = grade(any_runner, HOSTILE / name)
    assert (r.status, r.score) == ("error", 0)
    assert r.message == "the submission ran out of memory while loading (the limit is 1024 MB)"
    assert r.error["kind"] == "memory"
    grades_next_normally(any_runner)


# --------------------------------------------------------------------------- processes


def _job_uid_sampler(runner):
    """Count, every few ms, the processes running as this worker's job uid (root only)."""
    w = the_worker(runner)
    if not w.run_as:
        return None, None
    uid = w.run_as[0]
    seen = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            n = 0
            for p in os.listdir("/proc"):
                try:
                    if p.isdigit() and os.stat(f"/proc/{p}").st_uid == uid:
                        n += 1
                except OSError:
                    pass
            seen[0] = max(seen[0], n)
            time.sleep(0.002)

    t = threading.Thread(target=sample, daemon=True)
    t.start()

    def finish():
        stop.set()
        t.join()
        left = sum(1 for p in os.listdir("/proc") if p.isdigit() and _uid_of(p) == uid)
        return seen[0], left

    return finish, uid


def _uid_of(pid: str):
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def test_many_children_stay_under_the_process_limit_and_die_with_the_job(any_runner):
    r = grade(any_runner, HOSTILE / "many_children.py")
    assert (r.status, r.score) == ("graded", 10)
    started = int(re.fullmatch(r"started (\d+) children\n", r.output).group(1))
    assert 0 < started < SHORT.nproc  # the job's own process counts too
    if the_worker(any_runner).run_as:  # a uid of its own: nothing else counts
        assert started == SHORT.nproc - 1
    assert processes_with_arg("4242.17") == []
    grades_next_normally(any_runner)


def test_fork_bomb_is_bounded_and_leaves_nothing(any_runner):
    finish, uid = _job_uid_sampler(any_runner)
    r = grade(any_runner, HOSTILE / "fork_bomb.py")
    assert (r.status, r.score) == ("timeout", 0)
    assert r.message in ("the submission exceeded the 2 s time limit while running softmax on case 'random'",
                         "the submission exceeded the 1 s CPU time limit while running softmax on case 'random'")
    if finish:
        most, left = finish()
        assert 1 <= most <= SHORT.nproc
        assert left == 0
    grades_next_normally(any_runner)


def test_background_process_in_its_own_session_is_killed(any_runner):
    r = grade(any_runner, HOSTILE / "background_process.py")
    assert (r.status, r.score) == ("graded", 10)
    assert processes_with_arg("4243.29") == []
    grades_next_normally(any_runner)


def test_killing_its_parent_is_an_error_for_that_job_only(any_runner):
    r = grade(any_runner, HOSTILE / "kill_parent.py")
    assert (r.status, r.score) == ("error", 0)
    if the_worker(any_runner).run_as:  # root grader: the job runs as another uid
        assert r.message == ("loading the submission raised PermissionError: "
                             "[Errno 1] Operation not permitted (line 4)")
    else:  # the same uid: the zygote dies, while its child may still run on for a moment
        assert re.fullmatch(re.escape("the grading process was killed ") +
                            "(while loading|while running softmax on case '[a-z0-9-]+'|after running softmax)" +
                            re.escape(" (did the submission kill its parent process?)"), r.message)
    grades_next_normally(any_runner)


def _wait_for_entry(w: Worker, timeout: float = 30) -> None:
    """Wait until the running job's journal says the entry was found."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for journal in w.jobs.glob("*/journal.jsonl"):
            try:
                if '"step": "entry"' in journal.read_text():
                    return
            except OSError:
                pass
        time.sleep(0.01)
    raise AssertionError("the job never started its calls")


def _zygote_host_pid(w: Worker) -> int:
    if w.isolation != "sandbox":
        return w.proc.pid
    parents = {}
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            parents[int(p)] = (int(fields["PPid"]), fields["NSpid"].split())
        except (OSError, ValueError, KeyError):
            continue
    for pid, (ppid, nspids) in parents.items():
        if nspids[-1] == str(w.info["pid"]) and parents.get(ppid, (0,))[0] == w.proc.pid:
            return pid
    raise AssertionError("zygote not found")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sandbox", "basic"])
def test_a_dead_zygote_fails_one_job_and_the_next_gets_a_fresh_worker(mode):
    if mode == "sandbox" and not sandbox_status()[0]:
        pytest.skip(sandbox_status()[1])
    with Runner(isolation=mode) as runner:
        w = the_worker(runner)
        results = []
        t = threading.Thread(target=lambda: results.append(
            grade(runner, HOSTILE / "long_sleep.py", exercise(wall_s=30))))
        t.start()
        _wait_for_entry(w)
        os.kill(w.proc.pid, signal.SIGKILL)  # bwrap, or the basic zygote itself
        t.join(60)
        (r,) = results
        assert (r.status, r.score) == ("error", 0)
        assert r.message == ("the grading process was killed while running softmax on case 'random' "
                             "(did the submission kill its parent process?)")
        assert r.error["kind"] == "worker-died"
        grades_next_normally(runner)
        assert w.starts == 2


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sandbox", "basic"])
def test_a_frozen_zygote_is_killed_by_the_outer_timeout(mode):
    if mode == "sandbox" and not sandbox_status()[0]:
        pytest.skip(sandbox_status()[1])
    with Runner(isolation=mode) as runner:
        w = the_worker(runner)
        w.reply_slack_s = 1.0
        results = []
        t = threading.Thread(target=lambda: results.append(grade(runner, HOSTILE / "long_sleep.py")))
        t.start()
        _wait_for_entry(w)
        os.kill(_zygote_host_pid(w), signal.SIGSTOP)
        t.join(60)
        (r,) = results
        assert (r.status, r.score) == ("timeout", 0)
        assert r.message == ("the grading process stopped responding while running softmax on case 'random' "
                             "and was killed")
        grades_next_normally(runner)
        assert w.starts == 2


# --------------------------------------------------------------------------- exits and crashes


@pytest.mark.parametrize("name, message", [
    ("sys_exit_at_import.py", "the submission called sys.exit(3) while loading"),
    ("os_exit_at_import.py", "the submission ended the process (exit code 4) while loading"),
    ("os_exit_in_call.py", "the submission ended the process (exit code 6) while running softmax on case 'random'"),
    ("segfault.py", "the submission crashed with SIGSEGV (segmentation fault) while running softmax on case 'random'"),
    ("import_error.py", "an import failed while loading the submission: "
                        "ModuleNotFoundError: No module named 'numpy_that_does_not_exist' (line 2)"),
    ("raises_at_import.py", "loading the submission raised ValueError: shapes do not match (line 2)"),
])
def test_each_way_to_fail_has_its_status_and_message(any_runner, name, message):
    r = grade(any_runner, HOSTILE / name)
    assert (r.status, r.score, r.message) == ("error", 0, message)
    grades_next_normally(any_runner)


def test_sys_exit_inside_the_function_fails_its_checks(any_runner):
    r = grade(any_runner, HOSTILE / "sys_exit_in_call.py")
    assert (r.status, r.score) == ("graded", 0)
    assert r.checks[0].message == "softmax(z) called sys.exit(5) on random logits, shape (16, 10) (case 'random')"
    grades_next_normally(any_runner)


def test_traceback_is_trimmed_to_the_students_file(any_runner):
    r = grade(any_runner, HOSTILE / "raises_at_import.py")
    assert [(f["function"], f["line"], f["file"]) for f in r.error["frames"]] == [
        ("<module>", 9, "raises_at_import.py"), ("check_shapes", 2, "raises_at_import.py")]
    assert r.error["kind"] == "exception"


def test_syntax_error_has_its_line(any_runner):
    r = grade(any_runner, FIXTURES / "softmax" / "softmax_syntax_error.py")
    assert (r.status, r.message, r.error["kind"], r.error["line"]) == (
        "error", "SyntaxError on line 3: expected ':'", "syntax-error", 3)


def test_syntax_error_in_a_notebook_names_the_cell(any_runner):
    r = grade(any_runner, HOSTILE / "notebook_syntax_error.ipynb")
    assert (r.status, r.message) == ("error", "SyntaxError on cell 3, line 1: expected ':'")
    assert (r.error["cell"], r.error["cell_line"]) == (3, 1)


def test_malformed_notebook_is_a_graded_error_or_one_line_when_no_exercise_is_found(tmp_path):
    from click.testing import CliRunner

    from dlgrade.graders.cli import main
    from dlgrade.graders.spec import catalogue

    bad = tmp_path / "hw1.ipynb"
    bad.write_text('{"cells": 5')
    entries = ", ".join(sorted(ex.entry for ex in catalogue().values()))
    why = f"{bad}: malformed notebook (not valid JSON: Expecting ',' delimiter: line 1 column 12 (char 11))"
    result = CliRunner().invoke(main, ["check", str(bad), "--json", "--junit", str(tmp_path / "j.xml")])
    assert result.exit_code == 2  # nothing says which exercise it is
    assert result.output == (f"Error: {why}; and no exercise entry found (looked for {entries}); "
                             "name one with --exercise\n")
    result = CliRunner().invoke(main, ["check", str(bad), "-e", "stable-softmax", "--json",
                                       "--junit", str(tmp_path / "j.xml")])
    assert result.exit_code == 0
    r = json.loads(result.stdout)
    assert (r["status"], r["score"], r["message"]) == ("error", 0, why)
    assert r["error"] == {"kind": "submission", "reason": "malformed-notebook", "file": str(bad)}
    assert (tmp_path / "j.xml").read_text().count("<error ") == 1


# --------------------------------------------------------------------------- output and disk


def test_50mb_of_output_is_cut_in_the_middle(any_runner):
    r = grade(any_runner, HOSTILE / "output_flood.py")
    assert (r.status, r.score) == ("graded", 10)
    total = len("FIRST LINE OF OUTPUT\n") + 50 * 2**20 + len("LAST LINE OF OUTPUT\n")
    cut = total - worker.OUTPUT_HEAD - worker.OUTPUT_TAIL
    head, marker, tail = r.output.split("\n", 2)[0], f"\n… [{cut:,} bytes of output cut] …\n", r.output[-40:]
    assert head == "FIRST LINE OF OUTPUT"
    assert marker in r.output
    assert tail.endswith("x\nLAST LINE OF OUTPUT\n")
    assert len(r.output) < worker.OUTPUT_HEAD + worker.OUTPUT_TAIL + 100
    grades_next_normally(any_runner)


@pytest.mark.parametrize("name, limits", [
    ("disk_flood.py", {}),
    pytest.param("many_files.py", {"cpu_s": 60, "wall_s": 60}, marks=pytest.mark.slow),
])
def test_filling_the_scratch_directory_is_stopped(any_runner, name, limits):
    r = grade(any_runner, HOSTILE / name, exercise(**limits))
    assert (r.status, r.score) == ("error", 0)
    assert r.message == ("the submission wrote more than its scratch directory may hold "
                         f"(64 MB, {worker.MAX_FILES} files) while loading")
    assert r.error["kind"] == "disk-limit"
    grades_next_normally(any_runner)


def test_terminal_escape_sequences_are_shown_not_sent(any_runner):
    r = grade(any_runner, HOSTILE / "terminal_escapes.py")
    assert r.output == "\\x1b[2J\\x1b[1;1HPASS all checks\n\\x1b]52;c;aGVsbG8=\\x07 done\\u202e\n"
    assert r.checks[0].message == ("softmax(z) raised ValueError: \\x1b[31mred\\x1b[0m (line 6) "
                                   "on random logits, shape (16, 10) (case 'random')")


def test_format_output_cuts_the_middle_and_escapes_controls():
    out = {"head": "a\x1bb\n", "tail": "/jobs/0123456789abcdef/sub.py\r\n", "dropped_bytes": 12345}
    assert format_output(out) == "a\\x1bb\n\n… [12,345 bytes of output cut] …\nsub.py\n"
    assert format_output({}) == ""
    assert format_output({"head": "x", "tail": "y", "dropped_bytes": 0}) == "xy"


# --------------------------------------------------------------------------- the sandbox's walls


def test_no_network(sandbox_runner, tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        listener.setblocking(False)
        path = from_template(tmp_path, "tcp_connect.py", PORT=listener.getsockname()[1])
        r = grade(sandbox_runner, path)
        assert (r.status, r.score) == ("graded", 10)
        assert r.output.startswith("no connection: ")
        with pytest.raises(BlockingIOError):
            listener.accept()
    grades_next_normally(sandbox_runner)


def test_no_write_outside_the_scratch_directory(sandbox_runner, tmp_path):
    mine = tmp_path / "owned_by_the_test" / "escaped.txt"
    mine.parent.mkdir()
    in_repo = ROOT / "escaped_by_student.txt"
    fixed = [Path("/tmp/dlgrade_escaped.txt"), Path("/usr/dlgrade_escaped.txt"), Path("/dev/shm/dlgrade_escaped.txt")]
    for p in fixed:
        p.unlink(missing_ok=True)
    path = from_template(tmp_path, "write_outside_scratch.py", TARGETS=[str(mine), str(in_repo)])
    w = the_worker(sandbox_runner)
    r = grade(sandbox_runner, path)
    assert (r.status, r.score) == ("graded", 10)
    wrote = [line for line in r.output.splitlines() if line.startswith("wrote")]
    # without root the jobs directory itself is the job's own (one more scratch
    # directory, emptied after every job); nothing else is writable
    assert wrote == ([] if w.run_as else ["wrote ../dlgrade_escaped.txt"])
    assert r.output.count("cannot write") == 6 - len(wrote)
    for p in [mine, in_repo, *fixed]:
        assert not p.exists(), p
    assert list(w.jobs.iterdir()) == [] and list(w.done.iterdir()) == []
    grades_next_normally(sandbox_runner)


def test_no_view_of_the_reference_solutions(sandbox_runner, tmp_path):
    path = from_template(tmp_path, "read_reference.py", REPO=str(ROOT))
    r = grade(sandbox_runner, path)
    assert (r.status, r.score) == ("graded", 1)  # returns z: only "argument left unmodified" passes
    assert r.output.splitlines() == [
        "cannot import dlgrade.reference.softmax: ModuleNotFoundError",
        "cannot import dlgrade: ModuleNotFoundError",
        "cannot import reference.softmax: ModuleNotFoundError",
        "cannot import graders.engine: ModuleNotFoundError",
        "cannot import exercises: ModuleNotFoundError",
        f"cannot read {ROOT}/reference/softmax.py: No such file or directory",
        f"cannot read {ROOT}/graders/spec.py: No such file or directory",
    ]
    grades_next_normally(sandbox_runner)


def test_hidden_paths_are_masked_even_under_bound_directories(tmp_path):
    if not sandbox_status()[0]:
        pytest.skip(sandbox_status()[1])
    secret = Path(sys.prefix) / "dlgrade_test_secret"  # inside the interpreter's bound prefix
    try:
        secret.mkdir()
    except OSError:
        pytest.skip("the interpreter's prefix is not writable here")
    try:
        (secret / "answers.txt").write_text("42")
        probe = tmp_path / "probe.py"
        probe.write_text(f"import os\nprint(os.listdir({str(secret)!r}))\ndef softmax(z, axis=-1):\n    return z\n")
        with Runner(isolation="sandbox") as runner:
            assert grade(runner, probe).output == "['answers.txt']\n"
            runner.worker_for(("numpy",)).ensure_hidden([secret])
            assert grade(runner, probe).output == "[]\n"
    finally:
        remove_tree(secret)


def test_a_course_reference_package_is_among_the_secret_paths(tmp_path, monkeypatch):
    from dlgrade.graders.runner import secret_paths

    (tmp_path / "mycourse").mkdir()
    (tmp_path / "mycourse" / "__init__.py").write_text("")
    (tmp_path / "mycourse" / "solutions.py").write_text("def softmax(z, axis=-1): ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ex = dataclasses.replace(get_exercise("stable-softmax"), folder=tmp_path / "course" / "softmax",
                             reference="mycourse.solutions:softmax", mistakes="numpy:MISTAKES")
    assert secret_paths(ex) == [str(tmp_path / "course" / "softmax"), str(tmp_path / "mycourse")]


def _tree(root: Path, *dirs: str) -> Path:
    for d in dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
    return root


def test_masks_compose(tmp_path):
    """A secret inside another is hidden by the outer mask; a directory bound at
    two places is masked at both; a secret no bind shows needs no mask."""
    from dlgrade.graders.sandbox import mask_args

    site = _tree(tmp_path / "venv" / "site", "graders", "exercises/stable-softmax", "numpy")
    (site / "exercises" / "stable-softmax" / "spec.toml").write_text("")
    (tmp_path / "venv" / "answers.txt").write_text("42")
    binds = ["--ro-bind", str(tmp_path / "venv"), str(tmp_path / "venv"),
             "--ro-bind", str(tmp_path / "venv"), "/opt/alias"]
    secrets = [site / "exercises" / "stable-softmax", site / "exercises", site / "graders",
               site / "exercises" / "stable-softmax" / "spec.toml", tmp_path / "venv" / "answers.txt",
               tmp_path / "elsewhere", "/no/such/dir"]
    empty = str(tmp_path / "empty")
    assert mask_args(secrets, binds, empty) == [
        "--ro-bind", os.devnull, "/opt/alias/answers.txt",  # outermost first
        "--ro-bind", empty, "/opt/alias/site/exercises",
        "--ro-bind", empty, "/opt/alias/site/graders",
        "--ro-bind", os.devnull, f"{tmp_path}/venv/answers.txt",
        "--ro-bind", empty, f"{site}/exercises",
        "--ro-bind", empty, f"{site}/graders",
    ]


def test_a_bound_directory_inside_a_secret_one_stays_visible_and_masked_inside(tmp_path):
    from dlgrade.graders.sandbox import mask_args

    course = _tree(tmp_path / "course", "solutions", "venv/site/graders", "venv/site/numpy")
    binds = ["--ro-bind", str(tmp_path), str(tmp_path),
             "--ro-bind", str(course / "venv"), str(course / "venv")]
    empty = str(tmp_path / "empty")
    assert mask_args([course, course / "solutions", course / "venv" / "site" / "graders"], binds, empty) == [
        "--tmpfs", str(course), "--ro-bind", str(course / "venv"), str(course / "venv"),
        "--remount-ro", str(course),
        "--ro-bind", empty, str(course / "venv" / "site" / "graders"),
    ]


@pytest.fixture
def in_the_prefix():
    """A fresh folder inside the interpreter's prefix (which the sandbox binds)."""
    if not sandbox_status()[0]:
        pytest.skip(sandbox_status()[1])
    folder = Path(sys.prefix) / f"dlgrade_test_{os.getpid()}_{threading.get_ident()}"
    try:
        folder.mkdir()
    except OSError:
        pytest.skip("the interpreter's prefix is not writable here")
    yield folder
    remove_tree(folder)


def _listing_probe(tmp_path, *dirs) -> Path:
    probe = tmp_path / "probe.py"
    probe.write_text("import os\n"
                     f"for d in {[str(d) for d in dirs]!r}:\n"
                     "    print(sorted(os.listdir(d)) if os.path.isdir(d) else 'absent')\n"
                     "def softmax(z, axis=-1):\n    return z\n")
    return probe


def test_an_exercise_inside_installed_packages_is_hidden_with_them(tmp_path, in_the_prefix, monkeypatch):
    """The wheel layout: site-packages/exercises/<id> is secret, and so is
    site-packages/exercises. bwrap could not mask the inner one inside the
    outer (read-only, empty) mask: "Can't mkdir parents"."""
    from dlgrade.graders import sandbox

    site = _tree(in_the_prefix / "site-packages", "exercises/stable-softmax", "graders", "reference")
    for name in ("exercises/__init__.py", "graders/__init__.py", "reference/softmax.py",
                 "exercises/stable-softmax/spec.toml"):
        (site / name).write_text("secret = 42\n")
    monkeypatch.setattr(sandbox, "PACKAGES_DIR", site)
    probe = _listing_probe(tmp_path, site, site / "exercises", site / "reference")
    with Worker("sandbox", hide=[site / "exercises" / "stable-softmax"]) as w:
        outcome = w.run({"submission": "probe.py", "entry": "softmax", "calls": []},
                        {"probe.py": probe.read_bytes()}, SHORT)
        assert outcome.reply["output"]["head"] == "['exercises', 'graders', 'reference']\n[]\n[]\n"
        outcome.cleanup()
        # another exercise of the installed packages is hidden already: no restart (a torch
        # zygote takes seconds to start); a folder the sandbox shows is another matter
        starts = w.starts
        w.ensure_hidden([site / "exercises" / "two-layer-backprop"])
        assert w.starts == starts
        (in_the_prefix / "visible").mkdir()
        w.ensure_hidden([in_the_prefix / "visible"])
        assert w.starts == starts + 1


def test_hidden_folders_compose_with_binds_inside_them(tmp_path, in_the_prefix, monkeypatch):
    """A hidden folder holding a bound one (a virtual environment inside a course
    folder, say): the bound one stays usable, the rest of the folder is hidden;
    a hidden folder that does not exist yet is created, and masked, first."""
    from dlgrade.graders import sandbox

    course = _tree(in_the_prefix / "course", "solutions", "venv/lib")
    (course / "solutions" / "answers.txt").write_text("42")
    (course / "venv" / "lib" / "tool.txt").write_text("needed")
    later = in_the_prefix / "out" / "grades"
    real_binds = sandbox._python_binds
    monkeypatch.setattr(sandbox, "_python_binds", lambda preload: real_binds(preload) + [
        "--ro-bind", str(course / "venv"), str(course / "venv")])
    probe = _listing_probe(tmp_path, course, course / "venv" / "lib", course / "solutions", later)
    with Worker("sandbox", hide=[course, course / "solutions", later]) as w:
        assert later.is_dir()
        (later / "alice.json").write_text("{}")  # written after the sandbox started
        outcome = w.run({"submission": "probe.py", "entry": "softmax", "calls": []},
                        {"probe.py": probe.read_bytes()}, SHORT)
        assert outcome.reply["output"]["head"] == "['venv']\n['tool.txt']\nabsent\n[]\n"
        outcome.cleanup()


def test_the_worker_finds_packages_outside_the_isolated_path(tmp_path, any_runner):
    """A user-site (or PYTHONPATH) install: ``python -I`` does not look there, so
    the worker is told where the grader found numpy and the preloaded modules."""
    from dlgrade.graders import sandbox

    extra = _tree(tmp_path / "user-site", "dlgrade_test_pkg")
    (extra / "dlgrade_test_pkg" / "__init__.py").write_text("VALUE = 'from the user site'\n")
    (extra / "dlgrade_test.pth").write_text(str(tmp_path / "by-pth") + "\n")
    _tree(tmp_path / "by-pth", "dlgrade_test_pth_pkg")
    (tmp_path / "by-pth" / "dlgrade_test_pth_pkg" / "__init__.py").write_text("")
    sys.path.insert(0, str(extra))
    importlib_cache = sys.path_importer_cache.copy()
    try:
        assert sandbox.worker_site_dirs(["dlgrade_test_pkg"]) == [str(extra)]
        assert sandbox.worker_site_dirs(["numpy"]) == []  # the interpreter's own site-packages
        binds = sandbox._python_binds(["dlgrade_test_pkg"]) + ["--ro-bind", str(tmp_path / "by-pth"),
                                                              str(tmp_path / "by-pth")]
        probe = tmp_path / "probe.py"
        probe.write_text("import dlgrade_test_pkg, dlgrade_test_pth_pkg\nprint(dlgrade_test_pkg.VALUE)\n")
        w = Worker(any_runner.isolation, preload=("numpy", "dlgrade_test_pkg"))
        if w.isolation == "sandbox":
            w._bwrap_cmd = (lambda cmd=w._bwrap_cmd: (lambda: _with_binds(cmd(), binds)))()
        with w:
            assert "dlgrade_test_pkg" in w.info["preloaded"]
            outcome = w.run({"submission": "probe.py", "entry": "f", "calls": []},
                            {"probe.py": probe.read_bytes()}, SHORT)
            assert outcome.reply["output"]["head"] == "from the user site\n"
            outcome.cleanup()
    finally:
        sys.path.remove(str(extra))
        sys.path_importer_cache.clear()
        sys.path_importer_cache.update(importlib_cache)


def _with_binds(cmd: list[str], binds: list[str]) -> list[str]:
    at = cmd.index("--proc")
    return cmd[:at] + binds + cmd[at:]


def test_a_worker_that_cannot_import_what_the_grader_imports_does_not_start(tmp_path, monkeypatch):
    """Else every student's ``import`` of it would fail and be scored as theirs."""
    from dlgrade.graders import sandbox
    from dlgrade.graders.sandbox import SandboxError

    _tree(tmp_path, "dlgrade_test_only_here")
    (tmp_path / "dlgrade_test_only_here" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sandbox, "worker_site_dirs", lambda preload: [])  # the worker is not told
    with Runner(isolation="basic") as runner:
        with pytest.raises(SandboxError) as info:
            runner.worker_for(("numpy", "dlgrade_test_only_here"))
    assert str(info.value) == (f"the basic worker cannot import dlgrade_test_only_here, which the grader imports "
                               f"from {tmp_path} (could not preload dlgrade_test_only_here: "
                               "No module named 'dlgrade_test_only_here')")


def test_escape_system_calls_are_refused(any_runner):
    w = the_worker(any_runner)
    if not w.info.get("seccomp"):
        pytest.skip("no seccomp filter on this platform")
    r = grade(any_runner, HOSTILE / "escape_namespaces.py")
    assert r.output.splitlines() == [
        "unshare(CLONE_NEWUSER): refused (EPERM)", "unshare(CLONE_NEWNS): refused (EPERM)",
        "mount(tmpfs): refused (EPERM)", "ptrace(PTRACE_ATTACH, 1): refused (EPERM)",
        "memfd_create: refused (ENOSYS)", "shmget(1 GB): refused (EPERM)", "kill(-1, SIGCONT): refused (EPERM)"]
    grades_next_normally(any_runner)


def test_seccomp_works_on_linux_pcs(any_runner):
    import platform

    if sys.platform.startswith("linux") and platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64"):
        assert the_worker(any_runner).info["seccomp"] is True
        assert the_worker(any_runner).info["subreaper"] is True


def test_seccomp_program_is_well_formed():
    assert worker.seccomp_program("sparc") == []
    for machine in ("x86_64", "aarch64"):
        prog = worker.seccomp_program(machine)
        assert 10 < len(prog) < 255
        for i, (code, jt, jf, k) in enumerate(prog):
            if code & 0x07 == 0x05:  # a jump stays inside the program
                assert i + 1 + max(jt, jf) < len(prog)
        assert prog[-1] == (0x06, 0, 0, 0x00050001)  # ... and ends refusing
    # run it: a tiny classic-BPF interpreter over (nr, arch, args[0])
    def verdict(machine, nr, arg0=0, arch=None):
        prog = worker.seccomp_program(machine)
        arch = arch if arch is not None else worker._ARCHES[machine][1]
        data = {0: nr, 4: arch, 16: arg0 & 0xFFFFFFFF}
        pc, acc = 0, 0
        while True:
            code, jt, jf, k = prog[pc]
            if code == 0x20:
                acc, pc = data[k], pc + 1
            elif code == 0x06:
                return {0x7FFF0000: "allow", 0x00050001: "EPERM", 0x00050026: "ENOSYS"}[k]
            else:
                hit = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
                pc += 1 + (jt if hit else jf)

    assert verdict("x86_64", 0) == "allow"  # read
    assert verdict("x86_64", 56, 0x11) == "allow"  # clone(SIGCHLD): fork
    assert verdict("x86_64", 56, 0x10000011) == "EPERM"  # clone(CLONE_NEWUSER)
    assert verdict("x86_64", 272, 0x20000) == "EPERM"  # unshare(CLONE_NEWNS)
    assert verdict("x86_64", 435) == "ENOSYS"  # clone3
    assert verdict("x86_64", 165) == "EPERM"  # mount
    assert verdict("x86_64", 62, 1234) == "allow"  # kill(pid)
    assert verdict("x86_64", 62, -1) == "EPERM"  # kill(-1)
    assert verdict("x86_64", 0x40000000 + 56) == "EPERM"  # x32
    assert verdict("x86_64", 0, arch=0x40000003) == "EPERM"  # i386
    assert verdict("aarch64", 220, 0x10000011) == "EPERM"
    assert verdict("aarch64", 129, -5) == "EPERM"
    assert verdict("aarch64", 63) == "allow"  # read


# --------------------------------------------------------------------------- lying data


def test_monkeypatching_numpy_comparisons_changes_nothing(any_runner):
    r = grade(any_runner, HOSTILE / "monkeypatch_numpy.py")
    assert (r.status, r.score) == ("graded", 1)
    assert r.checks[0].message.startswith("softmax(z) is wrong on random logits, shape (16, 10) (case 'random'): "
                                          "160 / 160 elements (100%) differ; worst at ")
    grades_next_normally(any_runner)


@pytest.mark.slow
def test_monkeypatching_torch_comparisons_changes_nothing(any_runner):
    pytest.importorskip("torch")
    r = grade(any_runner, HOSTILE / "monkeypatch_torch.py", exercise(wall_s=120, cpu_s=120, memory_mb=2048))
    assert (r.status, r.score) == ("graded", 1)
    assert "is wrong on random logits" in r.checks[0].message
    grades_next_normally(any_runner)


def test_lying_ndarray_subclass_gets_no_credit(any_runner):
    r = grade(any_runner, HOSTILE / "lying_ndarray.py")
    assert (r.status, r.score) == ("graded", 1)
    assert ": 160 / 160 elements (100%) differ; worst at " in r.checks[0].message
    assert ": got 0, expected " in r.checks[0].message
    grades_next_normally(any_runner)


@pytest.mark.parametrize("name, says", [
    ("fake_array.py", "returned a value of type FakeArray"),
    ("impostor_class.py", "returned a value of type Impostor"),
    ("recursive_return.py", "returned a tuple of 1"),
    ("huge_return.py", "returned a value of type list of 256 items"),
])
def test_objects_that_pretend_or_explode_get_no_credit(any_runner, name, says):
    r = grade(any_runner, HOSTILE / name)
    assert (r.status, r.score) == ("graded", 1)
    assert r.checks[0].message == (f"softmax(z) {says} on random logits, shape (16, 10) (case 'random'); "
                                   "expected an array of shape (16, 10)")
    grades_next_normally(any_runner)


def test_forged_journal_with_traps_earns_nothing_and_is_cleaned_up(any_runner):
    w = the_worker(any_runner)
    t0 = time.monotonic()
    r = grade(any_runner, HOSTILE / "forged_journal.py", exercise(disk_mb=1024))
    assert time.monotonic() - t0 < 30  # the FIFO was not waited on
    assert (r.status, r.score) == ("graded", 0)
    assert all("\x1b" not in c.message for c in r.checks)
    assert list(w.done.iterdir()) == []  # the locked directory too
    grades_next_normally(any_runner)


def test_inputs_are_read_before_the_students_code_runs(any_runner):
    r = grade(any_runner, HOSTILE / "deletes_its_inputs.py")
    assert (r.status, r.score) == ("graded", 10)
    grades_next_normally(any_runner)


def test_a_forged_harness_error_is_the_students_error_not_the_graders(any_runner):
    r = grade(any_runner, HOSTILE / "forged_harness_error.py")
    assert (r.status, r.score, r.error["kind"]) == ("error", 0, "tampering")
    assert r.message == "the submission interfered with the grading harness while running softmax on case 'vector'"
    grades_next_normally(any_runner)


def test_a_real_harness_failure_is_a_grader_error(any_runner):
    from dlgrade.graders.sandbox import SandboxError

    w = the_worker(any_runner)
    plan = {"submission": "s.py", "entry": "f", "calls": [{"id": "c", "n": 0, "args": [{"npy": "missing.npy"}]}]}
    with pytest.raises(SandboxError, match=r"^the worker failed before running the submission: "
                                           r"FileNotFoundError: .*missing\.npy"):
        w.run(plan, {"s.py": b"def f(x):\n    return x\n"}, SHORT)
    assert list(w.jobs.iterdir()) == [] and list(w.done.iterdir()) == []
    grades_next_normally(any_runner)


# --------------------------------------------------------------------------- reading job files


def test_read_array_accepts_plain_numeric_npy(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(6.0).reshape(2, 3))
    np.save(tmp_path / "f.npy", np.asfortranarray(np.arange(6).reshape(2, 3)))
    assert read_array(tmp_path, "a.npy").tolist() == [[0, 1, 2], [3, 4, 5]]
    assert read_array(tmp_path, "f.npy").tolist() == [[0, 1, 2], [3, 4, 5]]


def test_read_array_refuses_traps(tmp_path):
    os.mkfifo(tmp_path / "fifo.npy")
    np.save(tmp_path / "real.npy", np.ones(3))
    os.symlink(tmp_path / "real.npy", tmp_path / "link.npy")
    np.save(tmp_path / "obj.npy", np.array([{}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "text.npy", np.array(["a"]))
    np.save(tmp_path / "rec.npy", np.zeros(2, dtype=[("a", "f8")]))
    with open(tmp_path / "huge.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    with open(tmp_path / "short.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (4,)})
        f.write(b"\0" * 8)
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    for name in ("fifo.npy", "link.npy", "obj.npy", "text.npy", "rec.npy", "huge.npy", "short.npy",
                 "junk.npy", "missing.npy", "../real.npy", "real.py"):
        with pytest.raises(ValueError):
            read_array(tmp_path, name)
    os.symlink(tmp_path, tmp_path.parent / "dirlink")
    with pytest.raises(ValueError):
        read_array(tmp_path.parent / "dirlink", "real.npy")


def test_a_job_cannot_make_the_grader_read_too_much(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "MAX_JOB_READ_BYTES", 3 * 8000)
    np.save(tmp_path / "a.npy", np.zeros(1000))
    tree = {"t": "seq", "items": [{"t": "array", "file": "a.npy"}] * 5}
    got = decode(tree, tmp_path)
    assert [type(x).__name__ for x in got] == ["Leaf"] * 3 + ["Opaque"] * 2
    assert got[4] == Opaque("unreadable array")
    outputs.forget(tmp_path)
    assert isinstance(decode(tree["items"][0], tmp_path), Leaf)
    outputs.forget(tmp_path)


def test_decode_bounds_depth_and_size(tmp_path):
    deep = {"t": "none"}
    for _ in range(50):
        deep = {"t": "seq", "items": [deep]}
    flat = {"t": "seq", "items": [{"t": "none"}] * (outputs.MAX_NODES + 10)}
    d = decode(deep, tmp_path)
    for _ in range(outputs.MAX_DEPTH + 1):
        (d,) = d
    assert d == Opaque("nested too deeply")
    assert decode(flat, tmp_path)[-1] == Opaque("too large a structure")
    assert decode({"t": "array", "file": "x.npy", "torch": {"shape": ["a"]}}, tmp_path) == Opaque("unreadable array")
    assert decode({"t": "other", "type": "\x1b[2J"}, tmp_path) == Opaque("\\x1b[2J")
    assert decode("junk", tmp_path) == Opaque("malformed")


def test_read_journal_is_safe(tmp_path):
    lines = [json.dumps({"step": "load", "status": "ok", "seconds": "soon"}),
             json.dumps({"step": "call", "id": 3, "status": 5, "code": [1], "error": "x",
                         "seconds": float("inf")}),
             "[" * 50_000, json.dumps({"step": "entry"})]
    (tmp_path / "journal.jsonl").write_text("\n".join(lines) + "\n")
    load, call = read_journal(tmp_path)
    assert load == {"step": "load", "status": "ok", "seconds": 0.0}
    assert call == {"step": "call", "id": "3", "status": "malformed", "code": None, "error": {}, "seconds": 0.0}
    (tmp_path / "journal.jsonl").unlink()
    os.symlink("/etc/passwd", tmp_path / "journal.jsonl")
    assert read_journal(tmp_path) == []
    (tmp_path / "journal.jsonl").unlink()
    os.mkfifo(tmp_path / "journal.jsonl")
    assert read_journal(tmp_path) == []


def test_clean_text():
    assert clean_text("ok\tfine\n") == "ok\tfine\n"
    assert clean_text("a\x1b[31mb\x07c\x9bd\u202ee") == "a\\x1b[31mb\\x07c\\x9bd\\u202ee"
    assert clean_text('File "/jobs/0123456789abcdef/sub.py", line 3') == 'File "sub.py", line 3'
    assert clean_text("x" * 10, limit=4) == "xxxx…"


def test_remove_tree_handles_directories_made_unreadable_by_their_owner():
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="dlgrade-test-"))
    os.chmod(base, 0o777)  # as root, the tree is built and removed by an unprivileged uid

    def build_and_remove():
        top = base / "job"
        (top / "a" / "b").mkdir(parents=True)
        (top / "a" / "b" / "f").write_text("x")
        os.symlink("/etc", top / "a" / "etc")
        os.chmod(top / "a" / "b", 0)
        os.chmod(top / "a", 0o100)
        remove_tree(top)
        return not os.path.lexists(top)

    try:
        if os.geteuid() != 0:
            assert build_and_remove()
        else:
            pid = os.fork()
            if pid == 0:
                code = 2
                try:
                    os.setresgid(65534, 65534, 65534)
                    os.setresuid(65534, 65534, 65534)
                    code = 0 if build_and_remove() else 1
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            assert os.WEXITSTATUS(status) == 0
        assert Path("/etc/passwd").exists()
    finally:
        remove_tree(base)


# --------------------------------------------------------------------------- limits and modes


def test_limits_are_capped_and_sanitised():
    c = Limits(wall_s=1e9, cpu_s=float("nan"), memory_mb=10**9, nproc=0, fsize_mb=-5, nofile=2,
               disk_mb="lots").capped()
    assert c == Limits(wall_s=300.0, cpu_s=10.0, memory_mb=8192, nproc=32, fsize_mb=256, nofile=16, disk_mb=512)
    assert Limits().capped() == Limits()


def test_exercise_limits_cannot_exceed_the_hard_caps(tmp_path):
    folder = tmp_path / "greedy"
    folder.mkdir()
    (folder / "spec.toml").write_text(
        'id = "greedy"\ntitle = "Greedy"\nframework = "numpy"\nentry = "f"\ntime_limit = 100000\n'
        'reference = "dlgrade.reference.softmax:softmax"\nmemory_mb = 100000\n[limits]\nnproc = 5000\ncpu_s = 2\n'
        '[cases.a]\nargs = [1.0]\n[[checks]]\nkind = "values"\npoints = 1\ncases = ["a"]\n')
    ex = load_exercise(folder)
    assert (ex.limits.wall_s, ex.limits.cpu_s, ex.limits.memory_mb, ex.limits.nproc) == (300.0, 2.0, 8192, 256)


def test_results_say_which_isolation_ran(any_runner):
    r = grade(any_runner, CORRECT)
    assert r.isolation == mode_of(any_runner) and r.to_dict()["isolation"] == mode_of(any_runner)


def test_basic_mode_prints_a_plain_warning(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from dlgrade.graders.cli import main

    monkeypatch.setenv("DLGRADE_NO_SANDBOX", "1")
    warning = ("WARNING: the sandbox is disabled (DLGRADE_NO_SANDBOX=1): student code runs with resource "
               "limits only (isolation: basic), without filesystem or network isolation.")
    result = CliRunner().invoke(main, ["check", str(CORRECT)])
    assert result.exit_code == 0
    assert result.output.splitlines()[:2] == [warning, "dlgrade check: correct_shift_max  (isolation: basic)"]
    assert result.output.count("WARNING") == 1
    result = CliRunner().invoke(main, ["check", str(CORRECT), "--json"])
    assert json.loads(result.stdout)["isolation"] == "basic"
    assert result.stderr == warning + "\n"
    assert basic_warning("bubblewrap (bwrap) is not installed").endswith(
        "without filesystem or network isolation. Install bubblewrap (bwrap) to grade in a sandbox.")


def test_require_sandbox_refuses_basic_mode(monkeypatch):
    from click.testing import CliRunner

    from dlgrade.graders.cli import main

    monkeypatch.setenv("DLGRADE_NO_SANDBOX", "1")
    result = CliRunner().invoke(main, ["check", str(CORRECT), "--require-sandbox"])
    assert result.exit_code == 3  # dlgrade cannot grade as asked (CONTRACT §4)
    assert result.output == (f"Error: dlgrade could not grade {CORRECT}: --require-sandbox was given but the "
                             "sandbox is disabled (DLGRADE_NO_SANDBOX=1); run `dlgrade doctor` to see why\n")


def test_sandbox_is_used_where_bwrap_works(runner):
    ok, why = sandbox_status()
    if os.environ.get("CI"):
        assert ok, why
    assert runner.isolation == ("sandbox" if ok else "basic")
    assert runner.warnings == ([] if ok else [basic_warning(why)])


def test_job_directories_are_gone_after_grading(any_runner):
    w = the_worker(any_runner)
    grades_next_normally(any_runner)
    assert list(w.jobs.iterdir()) == [] and list(w.done.iterdir()) == []


def test_python_subprocess_still_works_in_a_job(any_runner, tmp_path):
    path = tmp_path / "uses_subprocess.py"
    path.write_text("import subprocess, sys\n"
                    "print(subprocess.run(['echo', 'hi'], capture_output=True, text=True).stdout.strip())\n"
                    "def softmax(z, axis=-1):\n    return z\n")
    assert grade(any_runner, path).output == "hi\n"


def test_worker_file_is_self_contained():
    text = (ROOT / "graders" / "sandboxed_worker.py").read_text()
    imports = set(re.findall(r"^\s*(?:import|from) (\w+)", text, re.M))
    assert imports <= {"__future__", "json", "os", "resource", "select", "signal", "sys", "time", "traceback", "io", "linecache", "site",
                       "ctypes", "platform", "errno", "fcntl", "importlib", "random", "numpy", "torch",
                       "builtins", "types", "runpy"}  # the last three: the notebook runtime


def test_bwrap_command_hides_the_repository():
    if not sandbox_status()[0]:
        pytest.skip(sandbox_status()[1])
    w = Worker("sandbox")
    try:
        cmd = w._bwrap_cmd()
    finally:
        w.close()
    binds = [cmd[i + 1] for i, a in enumerate(cmd) if a in ("--bind", "--ro-bind")]
    assert str(ROOT) not in binds
    assert "--unshare-net" in cmd and "--unshare-pid" in cmd and "--die-with-parent" in cmd
    if os.geteuid() == 0:
        assert cmd[cmd.index("--cap-drop") + 1] == "ALL"


def test_gpu_device_nodes_survive_the_read_only_dev(monkeypatch):
    if not sandbox_status()[0]:
        pytest.skip(sandbox_status()[1])
    monkeypatch.setattr("dlgrade.graders.sandbox.gpu_device_binds",
                        lambda: ["--dev-bind", "/dev/null", "/dev/nvidia0", "--ro-bind", "/sys", "/sys"])
    with Worker("sandbox", gpu=True) as w:
        src = (b"with open('/dev/nvidia0', 'w') as f:\n    f.write('x')\n"
               b"print(len(__import__('os').listdir('/sys')) > 0)\n")
        outcome = w.run({"submission": "s.py", "entry": "f", "calls": []}, {"s.py": src}, SHORT)
        assert outcome.reply["output"]["head"] == "True\n"
        assert outcome.journal[0]["status"] == "ok"
        outcome.cleanup()


def test_worker_start_failure_is_a_sandbox_error_and_leaves_nothing(monkeypatch):
    import tempfile

    from dlgrade.graders.sandbox import SandboxError

    roots = []
    mkdtemp = tempfile.mkdtemp
    monkeypatch.setattr("dlgrade.graders.sandbox.tempfile.mkdtemp", lambda **kw: roots.append(mkdtemp(**kw)) or roots[-1])
    monkeypatch.setattr("dlgrade.graders.sandbox.START_TIMEOUT_S", 0.001)
    with Runner(isolation="basic") as runner:
        with pytest.raises(SandboxError, match="^the basic worker did not start"):
            runner.worker_for(("numpy",))
        assert runner.workers == {}
    assert len(roots) == 1 and not os.path.exists(roots[0])


@pytest.mark.slow
def test_sandbox_runs_an_interpreter_from_a_venv_under_tmp(tmp_path):
    """A virtual environment under /tmp must stay visible: the sandbox's own /tmp
    is mounted before the interpreter's binds, not over them."""
    import json as _json
    import subprocess as _sp
    import sys as _sys

    from dlgrade.graders.sandbox import sandbox_status

    if not sandbox_status()[0]:
        pytest.skip("no sandbox here")
    venv = tmp_path / "venv"
    _sp.run([_sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    root = Path(__file__).parent.parent
    r = _sp.run([str(venv / "bin" / "python"), "-m", "dlgrade", "check",
                 "tests/fixtures/softmax/correct_shift_max.py", "--json"],
                cwd=root, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = _json.loads(r.stdout)
    assert (d["status"], d["score"], d["isolation"]) == ("graded", 10, "sandbox")


def test_job_folders_of_a_killed_grader_are_swept(tmp_path, monkeypatch):
    import subprocess as _sp

    from dlgrade.graders.sandbox import Worker

    monkeypatch.setenv("DLGRADE_SCRATCH", str(tmp_path))
    dead = _sp.Popen(["true"])
    dead.wait()
    stale = tmp_path / "dlgrade-worker-stale"
    (stale / "jobs").mkdir(parents=True)
    (stale / "owner.pid").write_text(str(dead.pid))
    alive = tmp_path / "dlgrade-worker-alive"
    alive.mkdir()
    (alive / "owner.pid").write_text(str(os.getpid()))
    w = Worker("basic")
    try:
        assert w.root.parent == tmp_path
        assert not stale.exists() and alive.exists()
    finally:
        w.close()
    assert not w.root.exists()
