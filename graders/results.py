"""The one result model every output renders: terminal, JSON, HTML, JUnit, Gradescope.

A check computes its numbers first (a :class:`Mismatch`, a gradient error, a
counterexample) and stores them in ``details``; the one-line ``message`` a
student reads is formatted from those numbers. Renderers never recompute a
verdict: they only read these records.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

STATUSES = ("graded", "error", "timeout", "missing")


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
        """The check as a student may see it: hidden checks keep only name and verdict."""
        if not self.hidden:
            return self
        word = {"passed": "passed", "failed": "failed", "skipped": "skipped"}[self.status]
        return replace(self, message=f"hidden check {word}", details={}, diagnoses=())

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
    override: dict[str, Any] = field(default_factory=dict)  # a person's score: points, note, by, at

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

    def public(self) -> "ExerciseResult":
        """The result as a student may see it: hidden checks reduced to name and verdict,
        and diagnoses that only hidden checks found withheld."""
        hidden_only = {d for c in self.checks if c.hidden for d in c.diagnoses}
        hidden_only -= {d for c in self.checks if not c.hidden for d in c.diagnoses}
        return replace(self, checks=tuple(c.public() for c in self.checks),
                       diagnoses=tuple(d for d in self.diagnoses if d not in hidden_only))

    def to_dict(self) -> dict[str, Any]:
        return {
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
        } | ({"automatic_score": round(self.automatic_score, 6), "override": self.override}
             if self.override else {})

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
            override=d.get("override") or {},
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
