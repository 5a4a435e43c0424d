"""One root for dlgrade's errors, two branches with their exit codes (issue #12)."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dlgrade.graders import errors
from dlgrade.graders.cli import failure_for, main

ROOT = Path(__file__).parent.parent

USER = [
    "spec.SpecError", "spec.UnknownExercise", "submission.SubmissionError", "api.NothingToGrade",
    "batch.BatchError", "layouts.LayoutError", "archives.ArchiveError", "roster.RosterError",
    "overrides.OverrideError", "gradebook.GradebookError", "autograder.AutograderError",
    "wheelfile.WheelError", "devices.GpuUnavailable", "symbolic_grade.SymbolicSpecError",
    "checks.protocol.OptionError", "scaffold.ScaffoldError", "starter.NoStarter",
    "selftest.SelfTestError", "inputs.CaseError",
]
GRADER = [
    "engine.GraderError", "sandbox.SandboxError", "sandbox.SandboxRequired", "sandbox.SandboxBroken",
    "batch.ExerciseFailed", "batch.GradingFailed", "pool.PoolStopped", "batch.ExecutorFailed",
    "distributed.WorkerError", "shipping.ShippingError",
]
SUBMISSION = [
    "submission.LoadFailure", "notebook.MalformedNotebook",
    "archives.ArchiveEntryError",
]
# not dlgrade's failures at all: control flow, or a KeyboardInterrupt that must stay one
OUTSIDE = {"symbolic._OutOfTime", "symbolic._Undefined", "symbolic._NotReal", "symbolic._Overflow",
           "submission._LinkInPath", "batch.Interrupted",
           "symbolic_text.ParseError",  # runs in the sandbox too, where dlgrade cannot be imported
           "cli.UsageFailure", "cli.GraderFailure",  # click's exceptions, how the CLI prints
           "kernel_check.NotebookCheckError"}  # how a kernel prints either branch (its kind says which)  # the last two: click's exceptions, how the CLI prints


def _cls(dotted: str):
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(f"dlgrade.graders.{module}"), name)


@pytest.mark.parametrize("dotted", USER)
def test_user_errors_are_exit_2(dotted):
    cls = _cls(dotted)
    assert issubclass(cls, errors.UserError) and errors.exit_code(cls.__new__(cls)) == 2


@pytest.mark.parametrize("dotted", GRADER)
def test_grader_errors_are_exit_3(dotted):
    cls = _cls(dotted)
    assert issubclass(cls, errors.GraderError) and not issubclass(cls, errors.UserError)


@pytest.mark.parametrize("dotted", SUBMISSION)
def test_submission_problems_are_no_exit_code(dotted):
    cls = _cls(dotted)
    assert issubclass(cls, errors.SubmissionProblem) and errors.exit_code(cls.__new__(cls)) is None


def test_the_grader_error_is_the_same_class_everywhere():
    from dlgrade.graders import engine

    assert engine.GraderError is errors.GraderError


def test_every_exception_class_of_the_library_is_on_a_branch():
    """A new exception class must choose its branch (or be listed as control flow)."""
    known = set(USER) | set(GRADER) | set(SUBMISSION) | OUTSIDE
    found = set()
    for path in sorted((ROOT / "graders").rglob("*.py")):
        if path.name == "sandboxed_worker.py":  # the standalone sandbox side imports nothing of dlgrade
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                    getattr(b, "id", getattr(b, "attr", "")).endswith(("Error", "Exception", "Interrupt", "Exit"))
                    or getattr(b, "id", "") in {n.rsplit(".", 1)[1] for n in known}
                    for b in node.bases):
                module = path.relative_to(ROOT / "graders").with_suffix("").as_posix().replace("/", ".")
                found.add(f"{module}.{node.name}")
    found.discard("errors.DlgradeError")
    found -= {f"errors.{n}" for n in ("UserError", "GraderError", "SubmissionProblem")}
    assert found - known == set()


def test_the_cli_maps_the_branches_in_one_place():
    assert failure_for(errors.UserError("bad thing")).exit_code == 2
    assert failure_for(errors.GraderError("broke")).exit_code == 3
    assert failure_for(RuntimeError("oops")).exit_code == 3
    assert isinstance(failure_for(errors.UserError("x")), click.UsageError)


def test_a_user_error_from_a_command_is_one_line_exit_2(tmp_path):
    r = CliRunner().invoke(main, ["show", "no-such-exercise"])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: unknown exercise 'no-such-exercise'; known: ")


def test_a_grader_error_from_a_command_is_one_line_exit_3(monkeypatch):
    from dlgrade.graders import doctor

    def broken():
        raise errors.GraderError("the worker would not start")

    monkeypatch.setattr(doctor, "examine", broken)
    r = CliRunner().invoke(main, ["doctor"])
    assert r.exit_code == 3
    assert r.output.strip() == "Error: the worker would not start"
