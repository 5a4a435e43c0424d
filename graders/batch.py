"""Grading a whole class: the library behind ``dlgrade grade``.

Layout (CONTRACT §2): SUBMISSIONS_DIR holds one sub-folder or one file per
student; the student id is that folder's name or that file's stem. Hidden
entries (and ``__MACOSX``/``__pycache__``) are ignored.

The output folder::

    students/<id>.json   the student's Report.to_dict(), plus a "batch" entry
                         holding the fingerprint it was graded under
    students/<id>.html   the student's report (with pages=, see dlgrade.graders.pages)
    results.json         every ExerciseResult, sorted by (student, exercise)
    grades.csv           a row per student, a column per exercise, the total
    manifest.json        every student's fingerprint and state (graded/pending)
    index.html           the class summary (with pages=)

Loss-free and resumable: each student's file is written atomically (a
temporary file, then ``os.replace``) the moment that student is graded, and
it carries its own *fingerprint*: a hash of the submission's files, the
student id, the exercises graded (spec folders and reference code), dlgrade's
version and source, and the isolation. Result and fingerprint are committed by
one rename, so a kill at any instant loses at most the students in flight and
never makes a stale result look current. A re-run skips every student whose
file holds the fingerprint they would get now (unless ``force``); the
aggregate files are rebuilt from the per-student files at the end of every
run, Ctrl-C included, each with one atomic rename.

One bad submission never stops the batch: whatever a student's code does is a
graded result; an unreadable submission is an ``error`` result for that
student. A failure of dlgrade itself (the sandbox would not start, a bug) is
never recorded as a student's grade: the batch stops at once with
:class:`GradingFailed`, keeping every student graded before it; the next run
resumes there.
"""
from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Iterator, Protocol

from dlgrade.graders import api, gradebook
from dlgrade.graders.class_files import grades_csv, results_json
from dlgrade.graders.pages import Pages, check_pages
from dlgrade.graders.pool import GradingPool
from dlgrade.graders.results import ExerciseResult, Report, StudentReport
from dlgrade.graders.runner import Runner
from dlgrade.graders.sandbox import choose_isolation
from dlgrade.graders.spec import Exercise, catalogue, get_exercise
from dlgrade.graders.spec_probe import verified
from dlgrade.graders.submission import SUFFIXES, Submission, SubmissionError, printable_name
from dlgrade.graders.errors import GraderError, UserError

BATCH_FORMAT = 1
IGNORED_NAMES = frozenset({"__MACOSX", "__pycache__"})
LOCK_NAME = ".dlgrade-lock"
GRADING_FAILED = ("dlgrade itself failed while grading {student} ({exercise}): {error}; "
                  "the batch stopped with {graded} of {total} students graded (kept in {out}), "
                  "no grade written for {student} or the {pending} others not graded yet; "
                  "fix this and run the same command again to grade them")
DUPLICATE_STUDENT = ("more than one submission for student {student!r} ({names}); "
                     "keep one and grade again")
EXECUTOR_FAILED = ("{error}; the batch stopped with {graded} of {total} students graded (kept in {out}), "
                   "no grade written for the {pending} others; "
                   "fix this and run the same command again to grade them")
NO_ENTRY_IN_CLASS = ("{root}: no submission defines an exercise entry (looked for {entries}); "
                     "name one with --exercise")


class BatchError(UserError):
    """The batch as a whole cannot run (a usage error: no such folder, output folder busy)."""


class ExerciseFailed(GraderError):
    """dlgrade itself failed on one exercise of one student (``error`` is why)."""

    def __init__(self, student: str, exercise: str, error: BaseException):
        super().__init__(f"{student} ({exercise}): {error}")
        self.student, self.exercise, self.error = student, exercise, error


class ExecutorFailed(GraderError):
    """The executor itself can no longer grade anyone (a cluster lost its scheduler, or
    none of its workers may grade); ``str()`` is one line saying what to fix."""


class GradingFailed(GraderError):
    """dlgrade itself failed while grading (CONTRACT §4: exit 3); the batch stopped.

    ``summary`` says who was graded (and kept) before; ``student``/``exercise``
    where it failed (empty when the executor as a whole failed); ``error`` the
    failure itself.
    """

    def __init__(self, summary: "BatchSummary", failed: "ExerciseFailed | ExecutorFailed"):
        done = len(summary.graded) + len(summary.unchanged)
        if isinstance(failed, ExecutorFailed):
            self.summary, self.student, self.exercise, self.error = summary, "", "", failed
            super().__init__(EXECUTOR_FAILED.format(error=_one_line(failed), graded=done, total=len(summary.students),
                                                    out=summary.out_dir, pending=len(summary.pending)))
            return
        self.summary, self.student, self.exercise, self.error = summary, failed.student, failed.exercise, failed.error
        super().__init__(GRADING_FAILED.format(
            student=failed.student, exercise=failed.exercise, error=_one_line(failed.error), graded=done,
            total=len(summary.students), out=summary.out_dir, pending=max(len(summary.pending) - 1, 0)))


def _one_line(exc: BaseException) -> str:
    from dlgrade.graders.errors import GraderError
    from dlgrade.graders.sandbox import SandboxError, failure_line

    text = failure_line(exc)
    own = (GraderError, SandboxError, ExecutorFailed)
    return text if isinstance(exc, own) else f"{type(exc).__name__}: {text}"


@dataclass(frozen=True)
class Student:
    """One student's entry in the submissions folder."""

    id: str
    path: Path
    clashes: tuple[str, ...] = ()  # every entry sharing this id, when there is more than one


@dataclass
class BatchSummary:
    """What one ``grade_class`` run did."""

    out_dir: Path
    exercises: list[str]
    students: list[str]
    graded: list[str] = field(default_factory=list)  # graded in this run
    unchanged: list[str] = field(default_factory=list)  # skipped: already graded, nothing changed
    pending: list[str] = field(default_factory=list)  # not graded yet (the run was interrupted or failed)
    gradings: int = 0  # exercise results produced in this run
    isolation: str = ""
    warnings: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # entries of the folder that are no submission
    seconds: float = 0.0
    interrupted: bool = False
    workers: dict[str, int] = field(default_factory=dict)  # students graded per cluster worker (--cluster)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a batch, raised after the output folder was made consistent."""

    def __init__(self, summary: BatchSummary):
        super().__init__("interrupted")
        self.summary = summary


class Progress:
    """Hooks a caller gets as the batch goes; these do nothing (see dlgrade.reports.progress)."""

    def start(self, total: int, unchanged: int, exercises: list[str], jobs: int, isolation: str) -> None:
        pass

    def advance(self, report: Report) -> None:
        pass

    def graded_on(self, worker: str, counts: dict[str, int]) -> None:
        """Called before ``advance`` when a cluster worker graded the student (``counts``: so far, per worker)."""

    def finish(self) -> None:
        pass


# --------------------------------------------------------------------------- the class


def find_students(root: Path, exclude: Path | None = None) -> tuple[list[Student], list[str]]:
    """The students in ``root`` sorted by id, and the names of entries that are no submission.

    Raises BatchError when ``root`` is not a readable folder.
    """
    root = Path(root)
    if not root.exists():
        raise BatchError(f"{root}: no such folder")
    if not root.is_dir():
        raise BatchError(f"{root}: not a folder (expected one sub-folder or file per student)")
    try:
        entries = sorted(root.iterdir())
    except OSError as exc:
        raise BatchError(f"{root}: cannot be read ({exc.strerror or exc})") from None
    skip = exclude.resolve() if exclude is not None else None
    by_id: dict[str, list[Path]] = {}
    ignored = []
    for p in entries:
        if p.name.startswith(".") or p.name in IGNORED_NAMES:
            continue
        # the id is the folder's (or file's) name, shown with escapes for control characters
        # and undecodable bytes: it names output files and goes into every report
        if p.is_symlink():
            if exclude is not None and os.path.abspath(p) == os.path.abspath(exclude):
                continue  # the --out folder, named through a link
            # a student's entry that is a link is never followed, not even to see what it
            # is: it is that student's submission, graded as an error that says so
            by_id.setdefault(printable_name(p.stem if p.suffix in SUFFIXES else p.name), []).append(p)
            continue
        if skip is not None and p.resolve() == skip:
            continue
        if p.is_dir():
            by_id.setdefault(printable_name(p.name), []).append(p)
        elif p.is_file() and p.suffix in SUFFIXES:
            by_id.setdefault(printable_name(p.stem), []).append(p)
        else:
            ignored.append(printable_name(p.name))
    students = [Student(sid, paths[0], tuple(p.name for p in paths) if len(paths) > 1 else ())
                for sid, paths in sorted(by_id.items())]
    return students, ignored


def class_exercises(root: Path, students: list[Student], exercise_ids=(), exercises_dirs=()) -> list[Exercise]:
    """The exercises to grade: those named, else every catalogue exercise that at
    least one student's submission defines (in catalogue order).

    Raises UnknownExercise, SpecError, or BatchError when nothing is found.
    """
    if exercise_ids:
        return [get_exercise(e, exercises_dirs) for e in dict.fromkeys(exercise_ids)]
    cat = catalogue(exercises_dirs)
    found: set[str] = set()
    for s in students:
        if s.clashes:
            continue
        try:
            sub = Submission(s.path, student=s.id)
            found |= sub.entries() | sub.guessed_entries()
        except SubmissionError:
            continue  # graded as an error result for that student
    chosen = [ex for ex in cat.values() if ex.entry in found]
    if not chosen:
        entries = ", ".join(sorted(ex.entry for ex in cat.values()))
        raise BatchError(NO_ENTRY_IN_CLASS.format(root=root, entries=entries))
    return chosen


# --------------------------------------------------------------------------- fingerprints


def dlgrade_version() -> str:
    try:
        return importlib.metadata.version("dlgrade")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=1)
def code_digest() -> str:
    """A hash of dlgrade's grading code (every .py file under ``graders/``)."""
    h = hashlib.sha256()
    pkg = Path(__file__).resolve().parent
    for p in sorted(pkg.rglob("*.py")):
        if "__pycache__" not in p.parts:
            h.update(f"{p.relative_to(pkg).as_posix()}\0".encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _exercise_digest(ex_id: str, folder: Path, targets: tuple[str, ...]) -> str:
    h = hashlib.sha256(f"{ex_id}\0".encode())
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and "__pycache__" not in rel.parts and not rel.name.startswith("."):
            h.update(f"{rel.as_posix()}\0".encode())
            h.update(p.read_bytes())
    for target in targets:  # "module:name" references live outside the exercise folder
        module = target.rsplit(":", 1)[0]
        h.update(f"{target}\0".encode())
        if module and not module.endswith(".py"):
            try:
                spec = importlib.util.find_spec(module)
            except (ImportError, ValueError):
                spec = None
            if spec is not None and spec.origin and os.path.isfile(spec.origin):
                h.update(Path(spec.origin).read_bytes())
    return h.hexdigest()


def exercise_digest(ex: Exercise) -> str:
    """A hash of everything that decides an exercise's grades: its folder and reference code."""
    return _exercise_digest(ex.id, ex.folder, tuple(t for t in (ex.reference, ex.mistakes) if t))


def grading_key(exercises: list[Exercise], isolation: str) -> dict:
    """What every student's fingerprint in one batch shares: the exercises (read
    from disk now), dlgrade's version and code, and the isolation."""
    return {"format": BATCH_FORMAT, "dlgrade": dlgrade_version(), "code": code_digest(),
            "isolation": isolation, "exercises": [[ex.id, exercise_digest(ex)] for ex in exercises]}


def fingerprint(student: Student, key: dict, root: Path) -> str | None:
    """What a student's result depends on, as a hash: ``key`` (see grading_key),
    the student id and the submission's files. None when it cannot be computed
    (an unreadable or ambiguous submission, which is then graded on every run)."""
    if student.clashes:
        return None
    h = hashlib.sha256()
    h.update(json.dumps({**key, "student": student.id}, sort_keys=True).encode())
    try:
        sub = Submission(student.path, student=student.id, display_root=root)
        refusal = sub.refusal
        if refusal is not None:  # nothing was read: what was refused, and why
            h.update(f"\0refused\0{refusal.file}\0{refusal.kind}\0".encode())
        for f in sub.files():  # the bytes read by descriptor, never through a link
            h.update(f"\0{f.display}\0{f.refusal.kind if f.refusal else len(f.data)}\0".encode())
            h.update(f.data or b"")
    except (SubmissionError, OSError, ValueError):
        return None
    return h.hexdigest()


# --------------------------------------------------------------------------- grading


def open_submission(student: Student, root: Path) -> Submission:
    """The student's submission, named relative to the class folder ``root``.

    Raises SubmissionError (graded as an ``error`` result by grade_student)."""
    return Submission(student.path, student=student.id, display_root=root)


def grade_student(student: Student, runner: Runner, exercises: list[Exercise], root: Path,
                  warnings: tuple[str, ...] = (), direct_text: bool = False,
                  submission: "Submission | SubmissionError | None" = None) -> Report:
    """Every exercise of one student; never raises for anything the student did
    (that is a result). Raises ExerciseFailed when dlgrade itself fails.

    ``submission``: the submission as already read (a cluster worker gets its files
    shipped as bytes), or the SubmissionError opening it raised; default: opened here.
    """
    if student.clashes:
        msg = DUPLICATE_STUDENT.format(student=student.id, names=", ".join(student.clashes))
        results = [_error(ex, student.id, msg, {"kind": "submission"}) for ex in exercises]
        return Report(student.id, tuple(results), warnings)
    try:
        if isinstance(submission, SubmissionError):
            raise submission
        sub = submission if submission is not None else open_submission(student, root)
    except SubmissionError as exc:
        return Report(student.id, tuple(_error(ex, student.id, str(exc), {"kind": "submission"})
                                        for ex in exercises), warnings)
    direct = direct_text and sub.is_file
    return Report(student.id, tuple(_grade_exercise(ex, sub, runner, direct) for ex in exercises), warnings)


def _grade_exercise(ex: Exercise, sub: Submission, runner: Runner, direct: bool) -> ExerciseResult:
    try:
        return api.grade_one(ex, sub, runner, direct_text=direct)
    except SubmissionError as exc:  # the student's problem (grade_one grades unreadable files itself)
        return _error(ex, sub.student, str(exc), {"kind": "submission"})
    except Exception as exc:
        # GraderError, SandboxError, or a bug in dlgrade: never the student's
        # fault, so never their grade; the batch stops (see grade_class)
        raise ExerciseFailed(sub.student, ex.id, exc) from exc


def _error(ex: Exercise, student: str, message: str, error: dict) -> ExerciseResult:
    return ExerciseResult(student=student, exercise=ex.id, title=ex.title, status="error",
                          max_score=ex.max_score, message=message, error=error)


def report_from_dict(d: dict) -> Report:
    """Rebuild a Report from a per-student file (``Report.to_dict()`` output)."""
    return Report(student=d["student"], results=tuple(ExerciseResult.from_dict(r) for r in d["results"]),
                  warnings=tuple(d.get("warnings", ())))


# --------------------------------------------------------------------------- executors


@dataclass(frozen=True)
class BatchPlan:
    """What every student of one run is graded against: handed to an executor."""

    root: Path
    exercises: list[Exercise]
    isolation: str
    warnings: tuple[str, ...]  # put in every student's report (the isolation's warning)
    direct_text: bool  # a lone .txt/.tex file holds the one exercise named with --exercise
    fingerprints: dict[str, str | None]  # student id -> fingerprint (see fingerprint)


class Executor(Protocol):
    """Where the students of a batch are graded: this machine's pool (LocalExecutor) or a
    Dask cluster (dlgrade.graders.distributed.DaskExecutor). grade_class does the rest
    (fingerprints, commits, resume, the aggregate files) the same way for both."""

    def choose_isolation(self, require_sandbox: bool) -> tuple[str, list[str]]:
        """The isolation student code runs in, and warnings to show; raises SandboxError."""

    @property
    def slots(self) -> int:
        """How many students are graded at once (shown on the progress line)."""

    def grade(self, plan: BatchPlan, students: list[Student]) -> Iterator[tuple[Student, Report, str]]:
        """Yield ``(student, report, where)`` as each student is graded, in no set order
        (``where``: the worker that graded it, "" on this machine). Raises
        ExerciseFailed or ExecutorFailed; closing the iterator stops the grading."""

    def close(self) -> None:
        """Release what the executor holds (threads, a cluster connection)."""


class LocalExecutor:
    """``jobs`` grading threads on this machine, each with its own warm sandboxed workers."""

    def __init__(self, jobs: int | None = None):
        self.jobs = max(1, jobs or os.cpu_count() or 1)

    def choose_isolation(self, require_sandbox: bool) -> tuple[str, list[str]]:
        return choose_isolation(require_sandbox)

    @property
    def slots(self) -> int:
        return self.jobs

    def grade(self, plan: BatchPlan, students: list[Student]) -> Iterator[tuple[Student, Report, str]]:
        grade = partial(grade_student, exercises=plan.exercises, root=plan.root, warnings=plan.warnings,
                        direct_text=plan.direct_text)
        with GradingPool(self.jobs, plan.isolation) as pool:
            for student, report in pool.imap_unordered(grade, students):
                yield student, report, ""

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- the output folder


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``path`` so that it holds either its old or its new content, never a mix.

    No fsync: a killed process cannot leave a mix either way, and should the
    machine itself crash, a file that was not on disk yet reads as invalid
    JSON, which counts as "not graded" (the student is graded again).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class OutputFolder:
    """The ``--out`` folder: per-student files, aggregates, and a lock against a second run.
    ``pages`` (dlgrade.graders.pages.Pages) writes its pages; None writes none."""

    def __init__(self, path: Path, pages: Pages | None = None):
        self.path = Path(path)
        self.pages = check_pages(pages)
        self.students_dir = self.path / "students"
        try:
            self.students_dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BatchError(f"{self.path}: cannot be written ({exc.strerror or exc})") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise BatchError(f"{self.path}: another dlgrade grade is writing to this folder") from None
        for d in (self.path, self.students_dir):  # what a killed run was writing
            for tmp in d.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)

    def json_path(self, student: str) -> Path:
        return self.students_dir / f"{student}.json"

    def html_path(self, student: str) -> Path:
        return self.students_dir / f"{student}.html"

    def stored(self, student: str) -> dict | None:
        """The student's file as written by a previous run, or None if absent or unreadable."""
        try:
            d = json.loads(self.json_path(student).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return d if isinstance(d, dict) and isinstance(d.get("results"), list) else None

    def fingerprint_of(self, student: str) -> str | None:
        d = self.stored(student)
        return (d.get("batch") or {}).get("fingerprint") if d else None

    def commit(self, report: Report, fingerprint: str | None, exercises: list[str]) -> None:
        doc = report.to_dict()
        doc["batch"] = {"fingerprint": fingerprint, "exercises": exercises, "dlgrade": dlgrade_version()}
        atomic_write(self.json_path(report.student), _json_bytes(doc))

    def write_student_page(self, report: Report) -> None:
        """The student's page, written atomically (nothing without ``pages``)."""
        if self.pages is None:
            return
        path = self.html_path(report.student)
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        try:
            self.pages.student_page(StudentReport.of(gradebook.decorate_one(self.path, report)), tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def html_is_current(self, student: str) -> bool:
        """The page is newer than the student's results and than the overrides, roster and intake."""
        try:
            newest = max(self.json_path(student).stat().st_mtime_ns, gradebook.inputs_mtime(self.path))
            return self.html_path(student).stat().st_mtime_ns >= newest
        except OSError:
            return False

    def close(self) -> None:
        os.close(self._lock_fd)


def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_aggregates(folder: OutputFolder, students: list[Student], done: set[str],
                     exercises: list, complete: bool, fresh: bool = True) -> tuple[list[Report], list[str]]:
    """Rebuild results.json, grades.csv, manifest.json, the LMS exports and the folder's
    pages from the per-student files of the students in ``done``, with the instructor's
    overrides and names laid on (dlgrade.graders.gradebook). ``exercises``: Exercise
    records or ids; ``fresh``: the submissions are at hand (similarity is computed again).
    Returns the reports and warnings."""

    reports, warnings, fingerprints = [], [], {}
    for s in students:
        d = folder.stored(s.id) if s.id in done else None
        if d is not None:
            reports.append(report_from_dict(d))
            fingerprints[s.id] = (d.get("batch") or {}).get("fingerprint")
    ids = [getattr(ex, "id", ex) for ex in exercises]
    reports, lms_warnings = gradebook.decorate(folder.path, reports)
    warnings += lms_warnings
    atomic_write(folder.path / "results.json", results_json(reports).encode("utf-8"))
    atomic_write(folder.path / "grades.csv", grades_csv(reports, ids).encode("utf-8"))
    graded = {r.student: r for r in reports}
    manifest = {
        "dlgrade": dlgrade_version(), "format": BATCH_FORMAT, "complete": complete, "exercises": ids,
        "students": {s.id: ({"state": "graded", "fingerprint": fingerprints.get(s.id),
                             "score": round(graded[s.id].score, 6),
                             "max_score": round(graded[s.id].max_score, 6)}
                            if s.id in graded else {"state": "pending"}) for s in students},
    }
    atomic_write(folder.path / "manifest.json", _json_bytes(manifest))
    extras = None
    try:
        extras, lms_warnings = gradebook.finish(folder.path, reports, ids, students if fresh else None,
                                                [ex for ex in exercises if not isinstance(ex, str)],
                                                pages=folder.pages)
        warnings += lms_warnings
    except Exception as exc:  # the instructor's extras are renderings: the grades stand without them
        warnings.append(f"review, similarity or exports not written ({type(exc).__name__}: {exc})")
    if folder.pages is not None:
        for r in reports:
            if not folder.html_is_current(r.student):
                try:
                    folder.write_student_page(r)
                except Exception as exc:  # a report is a rendering: the grades stand without it
                    warnings.append(f"{r.student}: HTML report not written ({type(exc).__name__}: {exc})")
        try:
            folder.pages.class_summary(reports, folder.path, extras)
        except Exception as exc:
            warnings.append(f"class summary not written ({type(exc).__name__}: {exc})")
    return reports, warnings


def grade_class(submissions_dir, out_dir, jobs: int | None = None, exercise_ids=(), exercises_dirs=(),
                force: bool = False, require_sandbox: bool = False,
                progress: Progress | None = None, executor: Executor | None = None,
                pages: Pages | None = None) -> BatchSummary:
    """Grade every student in ``submissions_dir`` into ``out_dir`` (see the module doc).

    ``pages`` writes the folder's pages (dlgrade.graders.pages; the CLI passes the
    HTML ones); with None only the records are written.

    ``executor`` grades the students (default: a LocalExecutor of ``jobs``
    grading threads, default the number of CPUs, each keeping its own warm
    sandboxed workers; dlgrade.graders.distributed.DaskExecutor grades them on
    a Dask cluster); it is closed before this returns. Returns a BatchSummary.
    Raises BatchError, UnknownExercise, SpecError (usage errors) before grading
    anyone, and Interrupted (a KeyboardInterrupt carrying the summary) on
    Ctrl-C, after the output folder was made consistent. Raises SandboxError
    when the sandbox cannot be used (before grading anyone) and GradingFailed
    when dlgrade itself fails on a student or the executor fails (after keeping
    the students graded before; none of dlgrade's failures is written as a
    student's grade).
    """
    executor = executor if executor is not None else LocalExecutor(jobs)
    try:
        return _grade_class(executor, submissions_dir, out_dir, exercise_ids, exercises_dirs, force,
                            require_sandbox, progress or Progress(), pages)
    finally:
        executor.close()


def _grade_class(executor: Executor, submissions_dir, out_dir, exercise_ids, exercises_dirs, force: bool,
                 require_sandbox: bool, progress: Progress, pages: Pages | None) -> BatchSummary:
    t0 = time.perf_counter()
    root, out = Path(submissions_dir), Path(out_dir)
    if out.exists() and root.exists() and out.resolve() == root.resolve():
        raise BatchError(f"{out}: the output folder must not be the submissions folder")
    students, ignored = find_students(root, exclude=out)
    if not students:
        raise BatchError(f"{root}: no submissions (expected one sub-folder or file per student)")
    exercises = class_exercises(root, students, exercise_ids, exercises_dirs)
    # each spec against its reference: a broken one stops here, before anyone is graded;
    # what is legal but suspicious (a mistake no case tells apart) is for the instructor
    spec_warnings = [f"warning: {w}" for ex in exercises for w in verified(ex)]
    isolation, warnings = executor.choose_isolation(require_sandbox)
    ids = [ex.id for ex in exercises]
    summary = BatchSummary(out_dir=out, exercises=ids, students=[s.id for s in students],
                           isolation=isolation, warnings=[*spec_warnings, *warnings], ignored=ignored)
    folder = OutputFolder(out, pages)
    try:
        key = grading_key(exercises, isolation)
        fingerprints = {s.id: fingerprint(s, key, root) for s in students}
        todo = []
        for s in students:
            fp = fingerprints[s.id]
            if not force and fp is not None and folder.fingerprint_of(s.id) == fp:
                summary.unchanged.append(s.id)
            else:
                todo.append(s)
        progress.start(len(todo), len(summary.unchanged), ids, executor.slots, isolation)
        plan = BatchPlan(root=root, exercises=exercises, isolation=isolation, warnings=tuple(warnings),
                         direct_text=bool(exercise_ids) and len(exercises) == 1, fingerprints=fingerprints)
        failed: ExerciseFailed | ExecutorFailed | None = None
        try:
            with closing(executor.grade(plan, todo)) as graded:
                for student, report, where in graded:
                    folder.commit(report, fingerprints[student.id], ids)
                    summary.graded.append(student.id)
                    summary.gradings += len(report.results)
                    if pages is not None:
                        try:
                            folder.write_student_page(report)
                        except Exception:  # noqa: BLE001 - write_aggregates retries it and reports why
                            pass
                    if where:
                        summary.workers[where] = summary.workers.get(where, 0) + 1
                        progress.graded_on(where, dict(summary.workers))
                    progress.advance(report)
        except KeyboardInterrupt:
            summary.interrupted = True
        except (ExerciseFailed, ExecutorFailed) as exc:  # stop at once; students in flight are graded next run
            failed = exc
        finally:
            progress.finish()
            summary.warnings += getattr(executor, "warnings", [])
        done = set(summary.graded) | set(summary.unchanged)
        summary.pending = [s.id for s in students if s.id not in done]
        _, html_warnings = write_aggregates(folder, students, done, exercises,
                                            complete=not summary.pending)
        summary.warnings += html_warnings
    finally:
        folder.close()
    summary.seconds = time.perf_counter() - t0
    if failed is not None:
        raise GradingFailed(summary, failed) from getattr(failed, "error", failed)
    if summary.interrupted:
        raise Interrupted(summary)
    return summary


__all__ = ["grade_class", "grade_student", "open_submission", "find_students", "class_exercises", "fingerprint",
           "grading_key", "exercise_digest", "BatchError", "BatchPlan", "BatchSummary", "Executor", "ExecutorFailed",
           "ExerciseFailed", "GradingFailed", "Interrupted", "LocalExecutor", "Progress", "OutputFolder", "Student"]
