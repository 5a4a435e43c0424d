"""`dlgrade doctor`: what this machine will do when it grades, and one grading end to end."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dlgrade.graders import doctor, sandbox
from dlgrade.graders.cli import main
from dlgrade.graders.sandbox import remove_tree, sandbox_status

from test_cli import BROKEN_BWRAP

SANDBOX_OK = sandbox_status()[0]
needs_sandbox = pytest.mark.skipif(not SANDBOX_OK, reason=sandbox_status()[1] or "no sandbox")


def fake_bwrap(tmp_path, kind: str) -> str:
    import shutil

    path = tmp_path / f"bwrap-{kind}"
    path.write_text(BROKEN_BWRAP[kind].format(real=shutil.which("bwrap") or "false"))
    path.chmod(0o755)
    return str(path)


def lines_of(output: str) -> dict[str, str]:
    """topic -> the marked line of the doctor's terminal output (marks kept)."""
    out = {}
    for line in output.splitlines()[2:]:
        parts = line.split()
        if line.startswith("  ") and len(parts) >= 2:
            topic = parts[1] if parts[0] in ("ok", "FAIL") else parts[0]
            out.setdefault(topic, line.strip())
    return out


@needs_sandbox
def test_on_a_working_machine_it_grades_in_the_sandbox_and_exits_0():
    r = CliRunner().invoke(main, ["doctor"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == "dlgrade doctor: what this machine does when it grades, and why"
    assert lines[-1] == "OK: dlgrade grades on this machine, with student code in the sandbox"
    by = lines_of(r.output)
    assert by["isolation"] == ("ok    isolation   sandbox: bubblewrap creates a sandbox here (no network, read-only "
                               "system, dlgrade's code and references hidden)")
    assert by["dlgrade"].startswith("dlgrade     0.1.0: an editable install of the source tree ")
    assert by["python"].startswith(f"python      {sys.version.split()[0]} at {sys.executable} ")
    assert by["grading"].startswith("ok    grading     stable-softmax, a correct answer: 10 / 10 in ")
    assert by["grading"].endswith(" s (isolation: sandbox)")
    assert by["hidden"].startswith("ok    hidden      dlgrade's code, references and exercises are hidden from "
                                   "student code (")
    for topic in ("bubblewrap", "namespaces", "torch", "libraries", "scratch", "limits"):
        assert topic in by


@needs_sandbox
def test_json_findings():
    r = CliRunner().invoke(main, ["doctor", "--json"])
    assert r.exit_code == 0
    d = json.loads(r.output)
    assert (d["works"], d["isolation"]) == (True, "sandbox")
    topics = [f["topic"] for f in d["findings"]]
    assert topics == ["dlgrade", "python", "isolation", "bubblewrap", "namespaces", "torch", "libraries",
                      "scratch", "limits", "grading", "hidden"]
    grading = d["findings"][topics.index("grading")]["details"]
    assert (grading["status"], grading["score"], grading["max_score"]) == ("graded", 10, 10)
    limits = d["findings"][topics.index("limits")]["details"]
    assert limits["default"]["wall_s"] == 10.0 and limits["caps"]["memory_mb"] == 8192


def test_a_bwrap_that_cannot_create_a_sandbox_fails_and_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("DLGRADE_BWRAP", fake_bwrap(tmp_path, "probe-fails"))
    monkeypatch.setattr(doctor, "_in_container", lambda: False)
    monkeypatch.setattr(doctor, "_is_root", lambda: True)
    r = CliRunner().invoke(main, ["doctor"])
    assert r.exit_code == 3
    by = lines_of(r.output)
    assert by["isolation"] == ("FAIL  isolation   none: bubblewrap is installed but cannot create a sandbox here "
                               "(bwrap: setting up uid map: Permission denied)")
    assert by["bubblewrap"] == f"bubblewrap  {tmp_path}/bwrap-probe-fails (version unknown), from DLGRADE_BWRAP"
    assert by["grading"] == "FAIL  grading     not possible: bubblewrap cannot create a sandbox here (see isolation)"
    assert r.output.splitlines()[-1] == (
        "FAIL: dlgrade cannot grade on this machine: bubblewrap is installed but cannot create a sandbox here "
        f"(bwrap: setting up uid map: Permission denied); to fix: {doctor.FIX_UNKNOWN}; {doctor.FIX_OPT_OUT}")


@needs_sandbox
def test_a_sandbox_that_passes_the_probe_but_does_not_start_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("DLGRADE_BWRAP", fake_bwrap(tmp_path, "worker-fails"))
    r = CliRunner().invoke(main, ["doctor"])
    assert r.exit_code == 3
    by = lines_of(r.output)
    assert by["isolation"].startswith("ok    isolation   sandbox: ")  # the probe passed...
    assert by["grading"] == ("FAIL  grading     failed: the sandbox worker did not start: bwrap: Can't mkdir "
                             "parents for /x/exercises/stable-softmax: Read-only file system")  # ...the real one not
    assert r.output.splitlines()[-1] == (
        "FAIL: dlgrade cannot grade on this machine: failed: the sandbox worker did not start: bwrap: Can't mkdir "
        f"parents for /x/exercises/stable-softmax: Read-only file system; to fix: {doctor.FIX_WORKER}")


def test_without_bubblewrap_it_grades_in_basic_isolation_and_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("DLGRADE_BWRAP", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    r = CliRunner().invoke(main, ["doctor"])
    assert r.exit_code == 0, r.output
    by = lines_of(r.output)
    assert by["isolation"] == ("FAIL  isolation   basic: bubblewrap (bwrap) is not installed; student code runs "
                               "with resource limits only")
    assert f"to fix: {doctor.FIX_MISSING}" in r.output
    assert by["grading"].endswith(" s (isolation: basic)") and by["grading"].startswith("ok    grading     ")
    assert by["hidden"].startswith("hidden      nothing is hidden in basic isolation: student code can read "
                                   "dlgrade's references (")
    assert r.output.splitlines()[-1] == ("OK, without the sandbox: dlgrade grades on this machine in basic "
                                         "isolation (student code can read your files and use the network)")
    r = CliRunner().invoke(main, ["doctor", "--require-sandbox"])
    assert r.exit_code == 3


@pytest.mark.parametrize("userns, container, fixes", [
    ({"unprivileged_userns_clone": 0}, False, [doctor.FIX_USERNS_CLONE]),
    ({"max_user_namespaces": 0}, False, [doctor.FIX_MAX_USERNS]),
    ({"apparmor_restrict_unprivileged_userns": 1}, False, [doctor.FIX_APPARMOR]),
    ({}, True, [doctor.FIX_CONTAINER]),
])
def test_each_reason_for_a_broken_sandbox_has_its_fix(monkeypatch, userns, container, fixes):
    monkeypatch.setattr(sandbox, "sandbox_probe", lambda: ("broken", "bubblewrap is installed but cannot create "
                                                                     "a sandbox here (bwrap: No permissions)"))
    monkeypatch.setattr(doctor, "_is_root", lambda: False)
    monkeypatch.setattr(doctor, "_is_setuid", lambda path: False)
    monkeypatch.setattr(doctor, "_in_container", lambda: container)
    values = {"unprivileged_userns_clone": 1, "max_user_namespaces": 1000,
              "apparmor_restrict_unprivileged_userns": 0, **userns}
    monkeypatch.setattr(doctor, "_read_int", lambda path: values[next(k for k, p in doctor.USERNS_FILES.items()
                                                                       if p == path)])
    iso = doctor.bubblewrap()[0]
    assert (iso.topic, iso.ok) == ("isolation", False)
    assert iso.fix == "; ".join([*fixes, doctor.FIX_OPT_OUT])


@needs_sandbox
def test_it_notices_a_secret_that_student_code_can_read(monkeypatch, tmp_path):
    """The doctor's own probe looks from inside the sandbox: a secret the sandbox
    does not hide (simulated: a file it was never told about) fails the doctor."""
    leak = Path(sys.prefix) / f"dlgrade_doctor_leak_{os.getpid()}.txt"
    try:
        leak.write_text("the answers\n")
    except OSError:
        pytest.skip("the interpreter's prefix is not writable here")
    try:
        real = doctor.secret_paths
        monkeypatch.setattr(doctor, "secret_paths", lambda: [*real(), str(leak)])
        ex = doctor.examine()
        assert not ex.works
        assert ex.finding("hidden").value == f"student code can read 1 of dlgrade's secret paths: {leak}"
        assert ex.verdict.startswith("FAIL: dlgrade cannot grade on this machine: student code can read 1 of ")
    finally:
        remove_tree(leak)


def test_the_probe_checks_files_of_every_package_the_tree_and_the_exercise():
    paths = doctor.secret_paths()
    root = sandbox.PACKAGES_DIR
    for package in ("graders", "reference", "exercises", "reports"):
        assert any(p.startswith(f"{root / package}/") for p in paths), package
    assert str(root / "reference" / "softmax.py") in paths
    assert str(root / "exercises" / "stable-softmax" / "spec.toml") in paths
    assert all(os.path.isfile(p) for p in paths)
