"""The result model: the instructor's full record, and the student's view of it.

A check computes its numbers first (a :class:`Mismatch`, a gradient error, a
counterexample) and stores them in ``details``; the one-line ``message`` a
student reads is formatted from those numbers. Renderers never recompute a
verdict: they only read these records.

:class:`Report` / :class:`ExerciseResult` hold everything (``--json``,
``results.json``, the class summary). What a student may see is a type of
its own, :class:`StudentReport` / :class:`StudentResult`: hidden checks
reduced to their name and verdict, diagnoses that only hidden checks found
left out. It is the only input the terminal, HTML, JUnit, Gradescope and
GitHub renderers accept (:func:`student_view_only`), so a renderer cannot
forget to hide something.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

STATUSES = ("graded", "error", "timeout", "missing")
HIDDEN_MESSAGE = {s: f"hidden check {s}" for s in ("passed", "failed", "skipped")}


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict and the numbers behind it.

    ``status`` is ``passed``, ``failed`` or ``skipped`` (a skipped check is worth
    nothing either way: a GPU check on a machine without a GPU, say).
    """

    name: str
    passed: bool
    score: float
    max_score: float
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    hidden: bool = False
    status: str = ""  # derived in __post_init__ when empty
    kind: str = ""
    diagnoses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.status:
            object.__setattr__(self, "status", "passed" if self.passed else "failed")

    def public(self) -> "CheckResult":
        """The check as a student may see it: hidden checks keep only name, points and verdict."""
        if not self.hidden:
            return self
        return replace(self, message=HIDDEN_MESSAGE.get(self.status, "hidden check"), details={}, diagnoses=())

    @property
    def is_public(self) -> bool:
        """True when the check holds nothing a student may not see."""
        return not self.hidden or (self.details == {} and not self.diagnoses
                                   and self.message == HIDDEN_MESSAGE.get(self.status, "hidden check"))

    def to_dict(self) -> dict[str, Any]:
        d = {
            "name": self.name,
            "passed": self.passed,
            "score": round(self.score, 6),
            "max_score": round(self.max_score, 6),
            "message": self.message,
            "details": self.details,
            "status": self.status,
            "kind": self.kind,
            "hidden": self.hidden,
        }
        if self.diagnoses:
            d["diagnoses"] = list(self.diagnoses)
        return d


@dataclass(frozen=True)
class ExerciseResult:
    """The grade of one student on one exercise."""

    student: str
    exercise: str
    status: str
    checks: tuple[CheckResult, ...] = ()
    diagnoses: tuple[str, ...] = ()
    max_score: float = 0.0
    message: str = ""  # for error/timeout/missing: what happened, in one line
    error: dict[str, Any] = field(default_factory=dict)  # kind, line, traceback...
    output: str = ""  # the student's captured stdout/stderr, already trimmed
    isolation: str = ""  # "sandbox" | "basic" | "" (nothing ran)
    submission: str = ""  # the file graded, as the user named it
    duration_s: float = 0.0
    title: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # symbolic renderings, gpu info...
    hidden_diagnoses: tuple[str, ...] = ()  # of ``diagnoses``, those only hidden checks' inputs showed
    override: dict[str, Any] = field(default_factory=dict)  # a person's score: points, note, by, at
    explanations: dict[str, Any] = field(default_factory=dict)  # id -> {title, hint}: the exercise's own words

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")

    @property
    def automatic_score(self) -> float:
        """The score dlgrade's checks gave (what ``score`` is unless a person overrode it)."""
        return float(sum(c.score for c in self.checks)) if self.status == "graded" else 0.0

    @property
    def score(self) -> float:
        if self.override:
            return float(self.override["points"])
        return self.automatic_score

    def withheld_diagnoses(self) -> frozenset[str]:
        """The diagnoses a student may not read: those only hidden checks found.

        The engine records them (``hidden_diagnoses``: evidence from hidden checks'
        inputs only); a diagnosis a hidden check reported and no visible one did
        counts too.
        """
        on_hidden = {d for c in self.checks if c.hidden for d in c.diagnoses}
        on_visible = {d for c in self.checks if not c.hidden for d in c.diagnoses}
        return frozenset(set(self.hidden_diagnoses) | (on_hidden - on_visible))

    def to_dict(self) -> dict[str, Any]:
        d = {
            "student": self.student,
            "exercise": self.exercise,
            "title": self.title,
            "status": self.status,
            "score": round(self.score, 6),
            "max_score": round(self.max_score, 6),
            "message": self.message,
            "checks": [c.to_dict() for c in self.checks],
            "diagnoses": list(self.diagnoses),
            "error": self.error,
            "output": self.output,
            "isolation": self.isolation,
            "submission": self.submission,
            "duration_s": round(self.duration_s, 4),
            "extra": self.extra,
        }
        if self.hidden_diagnoses:
            d["hidden_diagnoses"] = list(self.hidden_diagnoses)
        if self.explanations:
            d["explanations"] = self.explanations
        if self.override:
            d["automatic_score"] = round(self.automatic_score, 6)
            d["override"] = self.override
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ExerciseResult":
        """Rebuild a result from :meth:`to_dict` output (our own results.json)."""
        checks = tuple(
            CheckResult(
                name=c["name"], passed=c["passed"], score=c["score"], max_score=c["max_score"],
                message=c["message"], details=c.get("details", {}), hidden=c.get("hidden", False),
                status=c.get("status", ""), kind=c.get("kind", ""),
                diagnoses=tuple(c.get("diagnoses", ())),
            )
            for c in d.get("checks", ())
        )
        return cls(
            student=d["student"], exercise=d["exercise"], status=d["status"], checks=checks,
            diagnoses=tuple(d.get("diagnoses", ())), max_score=d.get("max_score", 0.0),
            message=d.get("message", ""), error=d.get("error", {}), output=d.get("output", ""),
            isolation=d.get("isolation", ""), submission=d.get("submission", ""),
            duration_s=d.get("duration_s", 0.0), title=d.get("title", ""), extra=d.get("extra", {}),
            hidden_diagnoses=tuple(d.get("hidden_diagnoses", ())),
            override=d.get("override") or {}, explanations=d.get("explanations") or {},
        )


@dataclass(frozen=True)
class Report:
    """All exercises graded for one student (one `dlgrade check` run)."""

    student: str
    results: tuple[ExerciseResult, ...]
    warnings: tuple[str, ...] = ()
    name: str = ""  # the student's name, from a roster or the LMS download (batch grading only)

    @property
    def score(self) -> float:
        return sum(r.score for r in self.results)

    @property
    def max_score(self) -> float:
        return sum(r.max_score for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "student": self.student,
            "score": round(self.score, 6),
            "max_score": round(self.max_score, 6),
            "results": [r.to_dict() for r in self.results],
            "warnings": list(self.warnings),
        } | ({"name": self.name} if self.name else {})


# --------------------------------------------------------------------------- the student's view


@dataclass(frozen=True)
class StudentResult:
    """One exercise as its student may see it: no hidden inputs, numbers, hints or diagnoses.

    Build it with :meth:`of`. Constructing one that holds a hidden check's
    details, message or diagnoses raises ValueError: the type cannot carry them.
    """

    student: str
    exercise: str
    status: str
    checks: tuple[CheckResult, ...] = ()
    diagnoses: tuple[str, ...] = ()
    max_score: float = 0.0
    message: str = ""
    error: dict[str, Any] = field(default_factory=dict)
    output: str = ""
    isolation: str = ""
    submission: str = ""
    duration_s: float = 0.0
    title: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    override: dict[str, Any] = field(default_factory=dict)  # a person's score and note (shown to the student)
    explanations: dict[str, Any] = field(default_factory=dict)  # the exercise's own words for its diagnoses

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        leaking = [c.name for c in self.checks if not c.is_public]
        if leaking:
            raise ValueError(f"a student view cannot hold hidden check details ({', '.join(leaking)})")

    @classmethod
    def of(cls, r: ExerciseResult) -> "StudentResult":
        """``r`` as its student may see it."""
        if not isinstance(r, ExerciseResult):
            raise TypeError(f"StudentResult.of takes an ExerciseResult, not {type(r).__name__}")
        withheld = r.withheld_diagnoses()
        # A symbolic counterexample is an input: when every check is hidden, so is it.
        extra = {} if r.checks and all(c.hidden for c in r.checks) else dict(r.extra)
        shown = tuple(d for d in r.diagnoses if d not in withheld)
        return cls(student=r.student, exercise=r.exercise, status=r.status,
                   checks=tuple(c.public() for c in r.checks),
                   diagnoses=shown, max_score=r.max_score,
                   message=r.message, error=r.error, output=r.output, isolation=r.isolation,
                   submission=r.submission, duration_s=r.duration_s, title=r.title, extra=extra,
                   override=dict(r.override),
                   explanations={d: t for d, t in r.explanations.items() if d in shown})

    @property
    def automatic_score(self) -> float:
        return float(sum(c.score for c in self.checks)) if self.status == "graded" else 0.0

    @property
    def score(self) -> float:
        return float(self.override["points"]) if self.override else self.automatic_score


@dataclass(frozen=True)
class StudentReport:
    """All exercises of one `dlgrade check` run as the student may see them."""

    student: str
    results: tuple[StudentResult, ...]
    warnings: tuple[str, ...] = ()
    name: str = ""  # from the roster

    def __post_init__(self) -> None:
        if not all(isinstance(r, StudentResult) for r in self.results):
            raise TypeError("a StudentReport holds StudentResult records only")

    @classmethod
    def of(cls, report: Report) -> "StudentReport":
        """``report`` as its student may see it."""
        if not isinstance(report, Report):
            raise TypeError(f"StudentReport.of takes a Report, not {type(report).__name__}")
        return cls(report.student, tuple(StudentResult.of(r) for r in report.results), report.warnings,
                   report.name)

    @property
    def score(self) -> float:
        return sum(r.score for r in self.results)

    @property
    def max_score(self) -> float:
        return sum(r.max_score for r in self.results)


def student_view_only(report, renderer: str) -> StudentReport:
    """``report`` itself when it is a StudentReport; TypeError for anything else.

    Every renderer a student reads calls this first: the full record (with its
    hidden checks' inputs and hints) is refused, not filtered.
    """
    if isinstance(report, StudentReport):
        return report
    raise TypeError(f"{renderer} renders what a student may see: pass StudentReport.of(report), "
                    f"not a {type(report).__name__}")


def student_result_only(result, renderer: str) -> StudentResult:
    """``result`` itself when it is a StudentResult; TypeError for anything else."""
    if isinstance(result, StudentResult):
        return result
    raise TypeError(f"{renderer} renders what a student may see: pass StudentResult.of(result), "
                    f"not a {type(result).__name__}")


def as_plain(obj: Any) -> Any:
    """Dataclasses, tuples and numpy scalars as JSON-ready Python values."""
    if hasattr(obj, "__dataclass_fields__"):
        return as_plain(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): as_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [as_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return obj.item()
    return obj
