"""The `dlgrade` command: a thin layer over dlgrade.graders.api and friends.

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

from dlgrade.graders.errors import GRADER_EXIT, USAGE_EXIT, exit_code
from dlgrade.graders.spec import get_exercise, survey

EXERCISES_DIR = click.option(
    "--exercises-dir", "exercises_dirs", multiple=True, type=click.Path(file_okay=False),
    help="A folder of your course's own exercises (repeatable).")


class UsageFailure(click.UsageError):
    """One clear line and exit code 2."""

    def show(self, file=None) -> None:
        click.echo(_printable(f"Error: {self.format_message()}"), file=file, err=file is None)


def _printable(text: str) -> str:
    """Text for dlgrade's stdout/stderr: on GitHub Actions, no line of it can run as a
    workflow command (a student's file name or id may be in it)."""
    from dlgrade.reports.github import inert, on_github

    return inert(text) if on_github() else text


def _html_pages():
    """The pages an output folder gets from the CLI: HTML (dlgrade.graders.pages)."""
    from dlgrade.reports.class_pages import HTML_PAGES

    return HTML_PAGES


def _usage(msg: str) -> UsageFailure:
    return UsageFailure(msg)


class GraderFailure(click.ClickException):
    """dlgrade itself could not grade: one line and exit code 3."""

    exit_code = 3

    def show(self, file=None) -> None:
        click.echo(f"Error: {self.format_message()}", file=file, err=file is None)


def _failure(exc: BaseException, prefix: str = "") -> GraderFailure:
    from dlgrade.graders.sandbox import failure_line

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


def failure_for(exc: BaseException) -> click.ClickException:
    """The one line and exit code for any exception a command let through.

    This is where dlgrade's error branches (dlgrade.graders.errors) meet exit
    codes: a UserError is exit 2, a GraderError exit 3 (a sandbox failure
    points to ``dlgrade doctor``), anything else is a bug in dlgrade, exit 3.
    """
    code = exit_code(exc)
    if code == USAGE_EXIT:
        return UsageFailure(str(exc) or type(exc).__name__)
    if code == GRADER_EXIT:
        return _failure(exc)
    return GraderFailure(internal_error_line(exc))


class DlgradeGroup(click.Group):
    """The command group; a failure no command handled is one line and its exit code."""

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, **kwargs)
        except Exception as exc:  # click handled its own; these are dlgrade's
            if os.environ.get("DLGRADE_DEBUG") == "1" and exit_code(exc) is None:
                raise
            failure = failure_for(exc)
            failure.show()
            sys.exit(failure.exit_code)


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
    cat, broken = survey(exercises_dirs)
    width = max((len(i) for i in cat), default=10)
    for ex in cat.values():
        click.echo(f"{ex.id:<{width}}  {ex.framework:<8}  {ex.entry:<22}  {ex.title}")
    for exc in broken:  # listed, not graded: every other command refuses them
        click.echo(f"BROKEN  {exc}")
    if broken:
        sys.exit(USAGE_EXIT)


@main.command()
@click.argument("exercise")
@EXERCISES_DIR
def show(exercise, exercises_dirs):
    """Print one exercise's statement, signature and checks.

    \b
    Example:
      dlgrade show stable-softmax
    """
    from dlgrade.graders.spec_probe import verified

    ex = _exercise(exercise, exercises_dirs)
    warnings = verified(ex)
    click.echo(f"{ex.title}  ({ex.id})")
    if ex.signature:
        click.echo(f"entry: {ex.signature}")
    click.echo("")
    click.echo(ex.statement.rstrip())
    click.echo("")
    click.echo(f"Checks ({ex.max_score:g} points):")
    for c in ex.checks:
        click.echo(f"  {c.points:>4g}  {c.name}" + ("  (hidden)" if c.hidden else ""))
    if not (ex.folder / "statement.md").is_file():
        warnings = (*warnings, f"{ex.folder / 'statement.md'}: missing, so students get no statement")
    for w in warnings:
        click.echo(f"warning: {w}", err=True)


def _exercise(exercise_id, dirs):
    return get_exercise(exercise_id, dirs)


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
    from dlgrade.graders.starter import write_starter

    ex = _exercise(exercise, exercises_dirs)
    try:
        path = write_starter(ex, dest, notebook=notebook, force=force)
    except FileExistsError as exc:
        raise _usage(f"{exc.args[0]} already exists (use --force to overwrite)")
    click.echo(f"wrote {path}; check it with: {check_advice(ex, path, exercises_dirs)}")


def check_advice(ex, path, exercises_dirs=()) -> str:
    """The `dlgrade check` command that grades ``path`` for ``ex``: a course exercise
    needs its folder (as the user named it with --exercises-dir, else where it was found)."""
    import shlex

    from dlgrade.graders.spec import BUILTIN_DIR

    command = f"dlgrade check {shlex.quote(str(path))}"
    home = ex.folder.resolve().parent
    if home == BUILTIN_DIR.resolve():
        return command
    named = next((d for d in exercises_dirs if Path(d).resolve() == home), None)
    return f"{command} --exercises-dir {shlex.quote(str(named or home))}"


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
    from dlgrade.graders import api
    from dlgrade.graders.errors import GraderError

    if not os.path.lexists(submission):  # a dangling link exists: it is refused, graded as an error
        raise _usage(f"{submission}: no such file or folder")
    try:
        report = api.check(submission, exercise_ids, exercises_dirs, student=student,
                           require_sandbox=require_sandbox)
    except GraderError as exc:  # dlgrade's own failure (a user's error passes through): one line, exit 3
        if exit_code(exc) != GRADER_EXIT:
            raise
        raise _failure(exc, f"dlgrade could not grade {submission}: ")
    from dlgrade.graders.results import StudentReport
    from dlgrade.reports import report_files

    from dlgrade.reports import github

    view = StudentReport.of(report)  # every rendering the student reads; --json is the full record
    report_files.write_all(view, html_file=html_file, junit_file=junit_file, gradescope_file=gradescope_file)
    on_github = github.on_github()
    if as_json:
        text = json.dumps(report.to_dict()["results"] if len(report.results) != 1
                          else report.results[0].to_dict(), indent=2)
        click.echo(github.json_inert(text) if on_github else text)
    else:
        from dlgrade.reports.terminal import render_report

        text = render_report(view, color=sys.stdout.isatty())
        # the summary quotes what the student printed and raised: fenced, so none of it
        # runs as a workflow command; dlgrade's own annotations follow on the same stream
        for line in github.fenced(text) if on_github else [text]:
            click.echo(line)
    if as_json:  # the terminal summary already starts with them
        for w in report.warnings:
            click.echo(_printable(w), err=True)
    github.publish(view, echo=lambda line: click.echo(line, err=as_json), min_score=min_score)
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
    from dlgrade.graders.autograder import DEFAULT_TORCH_VERSION, TORCH_CPU_INDEX, build_autograder

    path = build_autograder(out, exercise_ids, exercises_dirs, torch_version or DEFAULT_TORCH_VERSION,
                            TORCH_CPU_INDEX if torch_index is None else torch_index)
    click.echo(f"wrote {path}: upload it as the autograder of a Gradescope programming assignment")


EXPORT_OPTIONS = [
    click.option("--export", "export_formats", multiple=True, type=click.Choice(["canvas", "moodle", "csv"]),
                 help="Also write the LMS's grade-import file (repeatable): canvas (gradebook CSV), moodle "
                      "(grading worksheet) or csv. Kept up to date after every regrade, override and review."),
    click.option("--export-file", type=click.Path(dir_okay=False),
                 help="Where the --export file goes (default: canvas-grades.csv, moodle-grades.csv or "
                      "grades-export.csv in the output folder)."),
    click.option("--points-possible", type=click.FloatRange(min=0, min_open=True), default=None,
                 help="The points the LMS assignment is worth: totals are scaled to it (default: unscaled)."),
    click.option("--assignment", default="",
                 help="The Canvas gradebook column, as Canvas's own export names it: 'Homework 1 (12345)'."),
]


def _export_options(f):
    for option in reversed(EXPORT_OPTIONS):
        f = option(f)
    return f


def _export_specs(export_formats, export_file, points_possible, assignment):
    """The --export options as gradebook.ExportSpec records (None when none was given)."""
    from dlgrade.graders.gradebook import ExportSpec

    if not export_formats:
        if export_file or points_possible is not None or assignment:
            raise _usage("--export-file, --points-possible and --assignment go with --export canvas|moodle|csv")
        return None
    formats = list(dict.fromkeys(export_formats))
    if export_file and len(formats) > 1:
        raise _usage("--export-file names one file: give a single --export with it")
    file = str(Path(export_file).resolve()) if export_file else ""
    return [ExportSpec(f, file, points_possible, assignment) for f in formats]


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
    from dlgrade.graders.wheelfile import write_wheel

    path = write_wheel(out_dir)
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
    from dlgrade.graders.doctor import examine, render

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
@click.option("--force", is_flag=True, help="Regrade every student, changed or not (overrides still apply).")
@click.option("--require-sandbox", is_flag=True, help="Refuse to run without bubblewrap.")
@click.option("--layout", type=click.Choice(["auto", "canvas", "moodle", "gradescope", "github-classroom", "folder"]),
              default="auto", show_default=True,
              help="What SUBMISSIONS_DIR is: a Canvas submissions zip, a Moodle download (zip or folder), a "
                   "Gradescope export, a folder of GitHub Classroom repositories, or a folder per student.")
@click.option("--roster", "roster_file", type=click.Path(dir_okay=False),
              help="A roster CSV (id, name, email, section; an LMS's own export works): names in the reports, "
                   "and who submitted nothing. Kept for later runs.")
@click.option("--cluster", "cluster", metavar="ADDRESS|local:N",
              help="Grade on a Dask cluster: a scheduler's address (tcp://host:8786, tls://host:8786) whose "
                   "workers run `dask worker ADDRESS --preload dlgrade.cluster`, or local:N for N worker "
                   "processes here. Needs pip install \"dlgrade[cluster]\"; see docs/cluster.md.")
@click.option("--cluster-security", "cluster_security", metavar="CA:CERT[:KEY]",
              help="TLS for --cluster (tls://): the CA file, this client's certificate and key (PEM). "
                   "Default: Dask's configuration (distributed.comm.tls.*).")
@_export_options
@EXERCISES_DIR
def grade(submissions_dir, out_dir, jobs, exercise_ids, force, require_sandbox, layout, roster_file,
          cluster, cluster_security, export_formats, export_file, points_possible, assignment, exercises_dirs):
    """Grade a class: SUBMISSIONS_DIR holds one sub-folder or file per student,
    or is an LMS download (Canvas, Moodle, Gradescope, GitHub Classroom; detected).

    Writes students/<id>.json (and .html), results.json, grades.csv and
    index.html to --out; a download is unpacked into --out/submissions/ first,
    with every file it skipped listed in intake.json. Students whose submission
    is unchanged since the last run are not graded again; an interrupted run
    resumes where it stopped. Overrides (dlgrade override) apply on top.

    \b
    Example:
      dlgrade grade submissions/ --out grades/ --jobs 4
      dlgrade grade "hw1 submissions.zip" --out hw1/ --roster roster.csv --export canvas --assignment "HW 1 (4567)"
      dlgrade grade moodle-download/ --layout moodle --out hw1/ --export moodle --points-possible 100
      dlgrade grade submissions/ --out grades/ --cluster tcp://scheduler:8786
    """
    import signal

    from dlgrade.graders import batch, lms
    from dlgrade.graders.sandbox import SandboxError
    from dlgrade.reports.progress import progress_for

    from dlgrade.reports.github import InertStream, on_github

    # Student ids (folder names) are printed: on GitHub none of them may run as a workflow command.
    stream = InertStream(sys.stderr) if on_github() else None
    specs = _export_specs(export_formats, export_file, points_possible, assignment)
    # A scheduler's SIGTERM stops the batch the way Ctrl-C does: the folder is left consistent.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        executor = _cluster_executor(cluster, cluster_security, jobs)
        done = lms.grade(submissions_dir, out_dir, layout=None if layout == "auto" else layout,
                         roster_file=roster_file, exports=specs, jobs=jobs, exercise_ids=exercise_ids,
                         exercises_dirs=exercises_dirs, force=force, require_sandbox=require_sandbox,
                         progress=progress_for(stream), executor=executor, pages=_html_pages())
        summary = done.batch
    except batch.ExecutorFailed as exc:  # the cluster cannot be used: before anyone was graded
        raise GraderFailure(f"dlgrade could not grade {submissions_dir}: {exc}")
    except batch.GradingFailed as exc:  # dlgrade's own failure: nothing was written as a grade
        if exit_code(exc.error) == USAGE_EXIT:  # a GPU the machine lacks, a spec's typo
            raise _usage(str(exc.error))
        raise GraderFailure(str(exc))
    except SandboxError as exc:  # before anyone was graded (a user's error passes through)
        if exit_code(exc) != GRADER_EXIT:
            raise
        raise _failure(exc, f"dlgrade could not grade {submissions_dir}: ")
    except batch.Interrupted as exc:
        s = exc.summary
        click.echo(f"interrupted: {len(s.students) - len(s.pending)} of {len(s.students)} students "
                   f"graded; run the same command again to grade the other {len(s.pending)}", err=True)
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if stream is not None:
            stream.flush()
    for w in summary.warnings:
        click.echo(_printable(w), err=True)
    if summary.ignored:
        click.echo(_printable(f"ignored (not a submission): {', '.join(summary.ignored)}"), err=True)
    _lms_lines(done, out_dir)
    if summary.workers:
        click.echo(_printable("graded per worker: " + ", ".join(
            f"{w} {n}" for w, n in sorted(summary.workers.items()))), err=True)
    click.echo(_printable(f"{len(summary.students)} students in {summary.seconds:.1f} s "
                          f"({len(summary.graded)} graded, {len(summary.unchanged)} unchanged): "
                          f"{Path(out_dir) / 'grades.csv'}"))


CLUSTER_AND_JOBS = ("--jobs is for grading on this machine; with --cluster each worker grades as many "
                    "students at once as it has threads (dask worker --nthreads N)")


def _cluster_executor(cluster, cluster_security, jobs):
    """The DaskExecutor for ``--cluster`` (None without it: the local pool, and no Dask import)."""
    if not cluster:
        if cluster_security:
            raise _usage("--cluster-security needs --cluster")
        return None
    if jobs:
        raise _usage(CLUSTER_AND_JOBS)
    from dlgrade.graders.distributed import DaskExecutor, security_from

    return DaskExecutor(cluster, security=security_from(cluster_security))


def _lms_lines(done, out_dir) -> None:
    """What the intake and the roster found, on stderr (the last line stays the grades)."""
    if done.intake is not None:
        click.echo(_printable(f"{done.intake.summary()} (every file taken or skipped: "
                              f"{Path(out_dir) / 'intake.json'})"), err=True)
        for w in done.intake.warnings:
            click.echo(_printable(w), err=True)
    if done.no_submission:
        n = len(done.no_submission)
        click.echo(_printable(f"{n} student{'s' if n != 1 else ''} on the roster submitted nothing: "
                              f"{', '.join(done.no_submission[:10])}{', ...' if n > 10 else ''}"), err=True)
    if done.not_on_roster:
        n = len(done.not_on_roster)
        click.echo(_printable(f"{n} graded student{'s are' if n != 1 else ' is'} not on the roster: "
                              f"{', '.join(done.not_on_roster[:10])}{', ...' if n > 10 else ''}"), err=True)
    for path in done.exports:
        click.echo(f"export: {path}", err=True)


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.argument("student")
@click.argument("exercise")
@click.option("--points", type=float, default=None, help="The score to give (0 up to the exercise's maximum).")
@click.option("--note", default="", help="Why: shown to the student with the score, and in the class summary.")
@click.option("--remove", is_flag=True, help="Remove the override: the automatic score stands again.")
def override(out_dir, student, exercise, points, note, remove):
    """Set one student's score on one exercise by hand, in a graded output folder.

    The override is kept in OUT_DIR/overrides.toml (a file you may also edit)
    and applied on top of every regrade, --force included; results.json keeps
    the automatic score beside it. The class's files and exports are rewritten.

    \b
    Example:
      dlgrade override grades/ 12345 stable-softmax --points 7 --note "masking handled in a helper"
      dlgrade override grades/ 12345 stable-softmax --remove
    """
    from dlgrade.graders import gradebook

    if remove:
        if points is not None or note:
            raise _usage("--remove takes no --points or --note")
        warnings = gradebook.remove_override(out_dir, student, exercise, pages=_html_pages())
        message = f"override removed: {student} {exercise} (the automatic score stands)"
    else:
        if points is None:
            raise _usage("give the score with --points (or --remove to undo an override)")
        o, warnings = gradebook.set_override(out_dir, student, exercise, points, note,
                                                pages=_html_pages())
        message = (f"override: {student} {exercise} {o.points:g} (automatic {o.automatic_score:g}); "
                   f"kept in {Path(out_dir) / 'overrides.toml'}")
    for w in warnings:
        click.echo(w, err=True)
    click.echo(message)


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.argument("student", required=False)
@click.argument("exercise", required=False)
@click.option("--accept", "decision", flag_value="accept", help="Accept the result (writes an override).")
@click.option("--reject", "decision", flag_value="reject", help="Keep the automatic score (writes an override).")
@click.option("--points", type=float, default=None,
              help="With --accept: the score to give (default for an undetermined answer: full credit).")
@click.option("--note", default="", help="Why (shown to the student with the score).")
@click.option("--open", "only_open", is_flag=True, help="List only the items still open.")
@click.option("--json", "as_json", is_flag=True, help="Print the queue as JSON.")
def review(out_dir, student, exercise, decision, points, note, only_open, as_json):
    """List what needs a person in a graded output folder, or decide one item.

    The queue holds undetermined symbolic answers, timeouts, errors and
    overrides. Accepting gives the points (--points, or full credit for an
    undetermined answer); rejecting keeps the automatic score. Either way an
    override is written, so the decision survives every regrade.

    \b
    Example:
      dlgrade review grades/
      dlgrade review grades/ 12345 sigmoid-bce-grad --accept
      dlgrade review grades/ 67890 stable-softmax --accept --points 4 --note "partial credit"
      dlgrade review grades/ 67890 two-layer-backprop --reject
    """
    from dlgrade.graders import gradebook

    if student is not None or exercise is not None:
        if student is None or exercise is None or decision is None:
            raise _usage("to decide an item give STUDENT EXERCISE and --accept or --reject")
        o, warnings = gradebook.decide(out_dir, student, exercise, decision == "accept",
                                      points, note, pages=_html_pages())
        for w in warnings:
            click.echo(w, err=True)
        click.echo(f"{'accepted' if decision == 'accept' else 'rejected'}: {student} {exercise} "
                   f"{o.points:g} (automatic {o.automatic_score:g}); kept in {Path(out_dir) / 'overrides.toml'}")
        return
    if decision is not None or points is not None or note:
        raise _usage("--accept, --reject, --points and --note need STUDENT EXERCISE")
    items = gradebook.review_items(out_dir)
    shown = [i for i in items if i.is_open] if only_open else items
    if as_json:
        click.echo(json.dumps([i.to_dict() for i in shown], indent=2, ensure_ascii=False))
        return
    from dlgrade.reports.review_text import render_queue

    click.echo(render_queue(items, out_dir, shown))


@main.command("new")
@click.argument("exercise_id", metavar="ID")
@click.option("--framework", type=click.Choice(["numpy", "torch", "symbolic"]), required=True,
              help="What the answer is: a numpy function, a torch function, or an expression.")
@click.option("--dir", "dest", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Where to write the exercise's folder (your course's exercises folder).")
def new(exercise_id, framework, dest):
    """Write a complete exercise folder to edit: a commented spec.toml, statement.md,
    starter.py, reference.py (with one buggy reference) and a correct and a wrong
    submission. It passes `dlgrade test-exercise` as written.

    \b
    Example:
      dlgrade new tanh-grad --framework numpy --dir course/exercises
      dlgrade test-exercise course/exercises/tanh-grad
    """
    import shlex

    from dlgrade.graders.scaffold import ScaffoldError, new_exercise
    from dlgrade.graders.spec import SpecError, catalogue

    try:
        folder = new_exercise(exercise_id, framework, dest)
    except ScaffoldError as exc:
        raise _usage(str(exc))
    q = shlex.quote
    click.echo(f"wrote {folder}/: spec.toml, statement.md, starter.py, reference.py, "
               "submissions/correct.py, submissions/wrong.py")
    try:
        builtin = exercise_id in catalogue()
    except SpecError:
        builtin = False
    if builtin:
        click.echo(f"note: {exercise_id} is also one of dlgrade's own exercises; with --exercises-dir "
                   f"{q(str(dest))} this folder's version replaces it")
    click.echo(f"test it:   dlgrade test-exercise {q(str(folder))}")
    click.echo(f"grade one: dlgrade check {q(str(folder / 'submissions' / 'wrong.py'))} "
               f"--exercises-dir {q(str(dest))}")


@main.command("test-exercise")
@click.argument("exercise", required=False)
@click.option("--all", "every", is_flag=True,
              help="Test every exercise of the --exercises-dir folders (without one: every exercise).")
@click.option("--seeds", type=click.IntRange(min=1), default=None,
              help="How many student ids the reference is graded under (default: 10).")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON instead of a table.")
@EXERCISES_DIR
def test_exercise(exercise, every, seeds, as_json, exercises_dirs):
    """Prove that EXERCISE (an id or a folder) grades right: its reference gets full
    marks under many student ids, each buggy reference loses points and gets its own
    diagnosis, every check fails for some perturbed reference, and grading is
    deterministic. Prints a table; exits 1 if anything fails.

    \b
    Example:
      dlgrade test-exercise stable-softmax
      dlgrade test-exercise course/exercises/adam-step
      dlgrade test-exercise --all --exercises-dir course/exercises
    """
    from dlgrade.graders import selftest
    from dlgrade.graders.errors import GraderError
    from dlgrade.graders.sandbox import SandboxError

    warnings: list[str] = []
    try:  # an unknown id or a broken spec is a UserError: exit 2 (DlgradeGroup)
        chosen = selftest.exercises_to_test(exercise, every, exercises_dirs, warnings)
    except ValueError as exc:
        raise _usage(str(exc))
    if not chosen:
        raise _usage(f"no exercises in {', '.join(exercises_dirs)}")
    progress = None
    if len(chosen) > 1 and sys.stderr.isatty():
        def progress(t, done=[]):  # noqa: B006  (counts the exercises tested so far)
            done.append(t)
            click.echo(f"tested {t.exercise} ({len(done)}/{len(chosen)}, {t.seconds:.1f} s)", err=True)
    try:
        tests = selftest.self_test_all(chosen, seeds or selftest.SEEDS, progress, warnings)
    except (GraderError, SandboxError) as exc:
        raise _failure(exc, "dlgrade could not test the exercise: ")
    for w in warnings:
        click.echo(_printable(w), err=True)
    table = selftest.Table(tests)
    if as_json:
        click.echo(json.dumps(table.to_dict(), indent=2))
    else:
        for line in table.lines():
            click.echo(_printable(line))
        click.echo(table.summary())
    if table.failed:
        sys.exit(1)


@main.command("export")
@click.argument("out_dir", type=click.Path(file_okay=False))
@_export_options
def export_cmd(out_dir, export_formats, export_file, points_possible, assignment):
    """Write the LMS grade-import file of a graded output folder (overrides included).

    Without --export, rewrites the exports the folder already keeps.

    \b
    Example:
      dlgrade export grades/ --export canvas --assignment "Homework 1 (4567)" --points-possible 20
      dlgrade export grades/ --export moodle --export-file worksheet.csv --points-possible 100
    """
    from dlgrade.graders import gradebook

    specs = _export_specs(export_formats, export_file, points_possible, assignment)
    paths, warnings = gradebook.export(out_dir, specs, pages=_html_pages())
    for w in warnings:
        click.echo(w, err=True)
    for p in paths:
        click.echo(f"wrote {p}")


if __name__ == "__main__":  # pragma: no cover
    main()
