"""The `dlgrade` command: a thin layer over graders.api and friends.

Exit codes (CONTRACT §4): 0 graded, 1 graded below --min-score, 2 usage error,
3 dlgrade itself could not grade (the sandbox would not start, a missing
dependency, an internal error): always one line, never a traceback
(``DLGRADE_DEBUG=1`` shows the traceback of an internal error).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import click

from graders.spec import SpecError, UnknownExercise, catalogue, get_exercise
from graders.submission import SubmissionError

EXERCISES_DIR = click.option(
    "--exercises-dir", "exercises_dirs", multiple=True, type=click.Path(file_okay=False),
    help="A folder of your course's own exercises (repeatable).")


class UsageFailure(click.UsageError):
    """One clear line and exit code 2."""

    def show(self, file=None) -> None:
        click.echo(f"Error: {self.format_message()}", file=file, err=file is None)


def _usage(msg: str) -> UsageFailure:
    return UsageFailure(msg)


class GraderFailure(click.ClickException):
    """dlgrade itself could not grade: one line and exit code 3."""

    exit_code = 3

    def show(self, file=None) -> None:
        click.echo(f"Error: {self.format_message()}", file=file, err=file is None)


def _failure(exc: BaseException, prefix: str = "") -> GraderFailure:
    from graders.sandbox import failure_line

    return GraderFailure(prefix + failure_line(exc))


def internal_error_line(exc: BaseException) -> str:
    """What an unexpected exception means to the person who typed the command."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return (f"dlgrade cannot run: the Python package {exc.name.split('.')[0]!r} is missing from "
                f"{sys.executable} (reinstall dlgrade there: python -m pip install dlgrade)")
    text = " ".join(str(exc).split())
    return (f"dlgrade failed with an internal error ({type(exc).__name__}{': ' + text if text else ''}); "
            "this is a bug in dlgrade: please report it with the output of the same command run with "
            "DLGRADE_DEBUG=1")


class DlgradeGroup(click.Group):
    """The command group; an exception no command expected is one line and exit 3."""

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, **kwargs)
        except Exception as exc:  # click handled its own; this is dlgrade failing
            if os.environ.get("DLGRADE_DEBUG") == "1":
                raise
            GraderFailure(internal_error_line(exc)).show()
            sys.exit(GraderFailure.exit_code)


@click.group(cls=DlgradeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dlgrade", message="dlgrade %(version)s")
def main():
    """dlgrade: grade deep-learning exercises (numeric, gradient, symbolic and
    stability checks), with student code in a sandbox.

    \b
    Example:
      dlgrade list
      dlgrade check my_softmax.py
    """


@main.command("list")
@EXERCISES_DIR
def list_cmd(exercises_dirs):
    """List the exercises dlgrade knows.

    \b
    Example:
      dlgrade list --exercises-dir course/exercises
    """
    try:
        cat = catalogue(exercises_dirs)
    except SpecError as exc:
        raise _usage(str(exc))
    width = max((len(i) for i in cat), default=10)
    for ex in cat.values():
        click.echo(f"{ex.id:<{width}}  {ex.framework:<8}  {ex.entry:<22}  {ex.title}")


@main.command()
@click.argument("exercise")
@EXERCISES_DIR
def show(exercise, exercises_dirs):
    """Print one exercise's statement, signature and checks.

    \b
    Example:
      dlgrade show stable-softmax
    """
    ex = _exercise(exercise, exercises_dirs)
    click.echo(f"{ex.title}  ({ex.id})")
    if ex.signature:
        click.echo(f"entry: {ex.signature}")
    click.echo("")
    click.echo(ex.statement.rstrip())
    click.echo("")
    click.echo(f"Checks ({ex.max_score:g} points):")
    for c in ex.checks:
        click.echo(f"  {c.points:>4g}  {c.name}" + ("  (hidden)" if c.hidden else ""))


def _exercise(exercise_id, dirs):
    try:
        return get_exercise(exercise_id, dirs)
    except UnknownExercise as exc:
        raise _usage(str(exc))
    except SpecError as exc:
        raise _usage(str(exc))


@main.command()
@click.argument("exercise")
@click.argument("dest", required=False, type=click.Path())
@click.option("--notebook", is_flag=True, help="Write a Jupyter notebook instead of a .py file.")
@click.option("--force", is_flag=True, help="Overwrite DEST if it exists.")
@EXERCISES_DIR
def init(exercise, dest, notebook, force, exercises_dirs):
    """Write a starter file (or notebook) for EXERCISE.

    \b
    Example:
      dlgrade init stable-softmax softmax.py
      dlgrade init two-layer-backprop --notebook
    """
    from graders.starter import write_starter

    ex = _exercise(exercise, exercises_dirs)
    try:
        path = write_starter(ex, dest, notebook=notebook, force=force)
    except FileExistsError as exc:
        raise _usage(f"{exc.args[0]} already exists (use --force to overwrite)")
    click.echo(f"wrote {path}; check it with: dlgrade check {path}")


@main.command()
@click.argument("submission", type=click.Path())
@click.option("--exercise", "-e", "exercise_ids", multiple=True,
              help="Grade only this exercise (repeatable). Default: every exercise found.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON (CONTRACT §3).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False), help="Write an HTML report here.")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False), help="Write JUnit XML here.")
@click.option("--gradescope", "gradescope_file", type=click.Path(dir_okay=False),
              help="Write Gradescope's results.json here.")
@click.option("--min-score", type=float, default=None, help="Exit 1 when the total is below this.")
@click.option("--student", default=None, help="Student id (default: the file or folder name).")
@click.option("--require-sandbox", is_flag=True, help="Refuse to run without bubblewrap.")
@EXERCISES_DIR
def check(submission, exercise_ids, as_json, html_file, junit_file, gradescope_file, min_score,
          student, require_sandbox, exercises_dirs):
    """Grade SUBMISSION (a .py, .ipynb, .txt/.tex file or a folder) and print a summary.

    Every check runs, hidden ones included, so the score shown is the score.
    On GitHub Actions (GITHUB_ACTIONS=true) failures are also printed as
    annotations on the student's file and a summary goes to $GITHUB_STEP_SUMMARY.

    \b
    Example:
      dlgrade check softmax.py
      dlgrade check hw1.ipynb --exercise stable-softmax --html report.html
      dlgrade check softmax.py --min-score 8 --junit dlgrade.xml
    """
    from graders import api
    from graders.devices import GpuUnavailable
    from graders.engine import GraderError
    from graders.sandbox import SandboxError

    if not Path(submission).exists():
        raise _usage(f"{submission}: no such file or folder")
    try:
        report = api.check(submission, exercise_ids, exercises_dirs, student=student,
                           require_sandbox=require_sandbox)
    except (SubmissionError, UnknownExercise, SpecError, api.NothingToGrade, GpuUnavailable) as exc:
        raise _usage(str(exc))
    except (GraderError, SandboxError) as exc:  # dlgrade's own failure: one line, exit 3
        raise _failure(exc, f"dlgrade could not grade {submission}: ")
    from reports import outputs

    outputs.write_all(report, html_file=html_file, junit_file=junit_file, gradescope_file=gradescope_file)
    if as_json:
        click.echo(json.dumps(report.to_dict()["results"] if len(report.results) != 1
                              else report.results[0].to_dict(), indent=2))
    else:
        from reports.terminal import render_report

        click.echo(render_report(report, color=sys.stdout.isatty()))
    if as_json:  # the terminal summary already starts with them
        for w in report.warnings:
            click.echo(w, err=True)
    from reports import github

    github.publish(report, echo=lambda line: click.echo(line, err=as_json), min_score=min_score)
    if min_score is not None and report.score < min_score:
        if not as_json:
            click.echo(f"score {report.score:g} is below --min-score {min_score:g}", err=True)
        sys.exit(1)


@main.command()
@click.option("--exercise", "-e", "exercise_ids", multiple=True, required=True,
              help="An exercise the autograder grades (repeatable).")
@click.option("--out", "-o", default="autograder.zip", show_default=True, type=click.Path(dir_okay=False),
              help="Where to write the zip.")
@click.option("--torch-version", default=None, help="The CPU-only PyTorch setup.sh installs (default: 2.13.0).")
@click.option("--torch-index", default=None,
              help="Where setup.sh gets PyTorch (default: PyTorch's CPU index; '' for pip's own configuration). "
                   "DLGRADE_TORCH_INDEX overrides it when setup.sh runs.")
@EXERCISES_DIR
def autograder(exercise_ids, out, torch_version, torch_index, exercises_dirs):
    """Build a Gradescope autograder zip (setup.sh, run_autograder, dlgrade as a
    wheel, your --exercises-dir folders) that grades the named exercises.

    \b
    Example:
      dlgrade autograder --exercise stable-softmax --out autograder.zip
    """
    from graders.autograder import DEFAULT_TORCH_VERSION, TORCH_CPU_INDEX, AutograderError, build_autograder

    try:
        path = build_autograder(out, exercise_ids, exercises_dirs, torch_version or DEFAULT_TORCH_VERSION,
                                TORCH_CPU_INDEX if torch_index is None else torch_index)
    except (UnknownExercise, SpecError, AutograderError) as exc:
        raise _usage(str(exc))
    click.echo(f"wrote {path}: upload it as the autograder of a Gradescope programming assignment")


@main.command()
@click.option("--out", "-o", "out_dir", default=".", show_default=True, type=click.Path(file_okay=False),
              help="The folder to write the wheel into.")
def wheel(out_dir):
    """Write this dlgrade as a wheel (dlgrade-VERSION-py3-none-any.whl), for
    a GitHub Classroom template repository or a course's own package index.

    \b
    Example:
      dlgrade wheel --out .github/dlgrade
    """
    from graders.wheelfile import WheelError, write_wheel

    try:
        path = write_wheel(out_dir)
    except WheelError as exc:
        raise _usage(str(exc))
    click.echo(f"wrote {path}; install it with: python -m pip install {path}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--require-sandbox", is_flag=True, help="Fail unless student code would run in the sandbox.")
def doctor(as_json, require_sandbox):
    """Say what this machine does when it grades, and why: how dlgrade is
    installed, the interpreter, the isolation mode (bubblewrap, user
    namespaces, AppArmor), torch and CUDA, scratch, limits; then grade a
    correct answer end to end. Exits 0 only if grading works (3 otherwise).

    \b
    Example:
      dlgrade doctor
      dlgrade doctor --require-sandbox --json
    """
    from graders.doctor import examine, render

    ex = examine()
    click.echo(json.dumps(ex.to_dict(), indent=2) if as_json else render(ex))
    if not ex.works or require_sandbox and ex.isolation != "sandbox":
        sys.exit(GraderFailure.exit_code)


@main.command()
@click.argument("submissions_dir", type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Where the grades go (created if needed; a re-run resumes there).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Students graded in parallel (default: the number of CPUs).")
@click.option("--exercise", "-e", "exercise_ids", multiple=True,
              help="Grade only this exercise (repeatable). Default: every exercise found.")
@click.option("--force", is_flag=True, help="Regrade every student, changed or not.")
@click.option("--require-sandbox", is_flag=True, help="Refuse to run without bubblewrap.")
@EXERCISES_DIR
def grade(submissions_dir, out_dir, jobs, exercise_ids, force, require_sandbox, exercises_dirs):
    """Grade a class: SUBMISSIONS_DIR holds one sub-folder or file per student.

    Writes students/<id>.json (and .html), results.json, grades.csv and
    index.html to --out. Students whose submission is unchanged since the last
    run are not graded again; an interrupted run resumes where it stopped.

    \b
    Example:
      dlgrade grade submissions/ --out grades/ --jobs 4
    """
    import signal

    from graders import batch
    from graders.devices import GpuUnavailable
    from graders.sandbox import SandboxError
    from reports.progress import progress_for

    # A scheduler's SIGTERM stops the batch the way Ctrl-C does: the folder is left consistent.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        summary = batch.grade_class(submissions_dir, out_dir, jobs=jobs, exercise_ids=exercise_ids,
                                    exercises_dirs=exercises_dirs, force=force,
                                    require_sandbox=require_sandbox, progress=progress_for())
    except (batch.BatchError, UnknownExercise, SpecError) as exc:
        raise _usage(str(exc))
    except batch.GradingFailed as exc:  # dlgrade's own failure: nothing was written as a grade
        if isinstance(exc.error, (GpuUnavailable, SpecError)):  # a GPU the machine lacks, a spec's typo
            raise _usage(str(exc.error))
        raise GraderFailure(str(exc))
    except SandboxError as exc:  # before anyone was graded
        raise _failure(exc, f"dlgrade could not grade {submissions_dir}: ")
    except batch.Interrupted as exc:
        s = exc.summary
        click.echo(f"interrupted: {len(s.students) - len(s.pending)} of {len(s.students)} students "
                   f"graded; run the same command again to grade the other {len(s.pending)}", err=True)
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    for w in summary.warnings:
        click.echo(w, err=True)
    if summary.ignored:
        click.echo(f"ignored (not a submission): {', '.join(summary.ignored)}", err=True)
    click.echo(f"{len(summary.students)} students in {summary.seconds:.1f} s "
               f"({len(summary.graded)} graded, {len(summary.unchanged)} unchanged): "
               f"{Path(out_dir) / 'grades.csv'}")


if __name__ == "__main__":  # pragma: no cover
    main()
