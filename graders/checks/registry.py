"""The check kinds a spec may name: dlgrade's own, one entry each, and a course's.

A new built-in kind is a module of ``dlgrade.graders.checks`` keeping the
contract of :mod:`dlgrade.graders.checks.protocol` plus ONE line in
``BUILTIN_KINDS`` below. A course adds kinds for its own exercises only (see
:func:`course_kinds`): a :class:`Registry` is a value, built per exercise
folder, never a global that one course's kinds could leak into another's.
"""
from __future__ import annotations

from dataclasses import dataclass

from dlgrade.graders.checks.protocol import ALL_FRAMEWORKS, ModuleKind, NoOptions

TORCH = ("torch",)


@dataclass(frozen=True)
class SymbolicKind:
    """A check of a symbolic exercise: the answer is one expression, judged as a whole by
    dlgrade.graders.symbolic_grade (one evaluator job), which reads the verdict for each
    check by its kind; such a kind plans no calls of its own."""

    name: str
    Options: type = NoOptions
    frameworks: tuple[str, ...] = ("symbolic",)


BUILTIN_KINDS = (
    ModuleKind("values", "dlgrade.graders.checks.values"),
    ModuleKind("no-mutation", "dlgrade.graders.checks.no_mutation"),
    ModuleKind("gradients", "dlgrade.graders.checks.gradients"),
    ModuleKind("finite-difference", "dlgrade.graders.checks.finite_difference"),
    ModuleKind("autograd", "dlgrade.graders.checks.autograd", TORCH),
    ModuleKind("gpu", "dlgrade.graders.checks.gpu", TORCH),
    ModuleKind("device-probe", "dlgrade.graders.checks.device_probe", TORCH),
    ModuleKind("sequences", "dlgrade.graders.checks.sequences", ("numpy",)),
    ModuleKind("statistical", "dlgrade.graders.checks.statistical", ("numpy",)),
    ModuleKind("training", "dlgrade.graders.checks.training", ("numpy",)),
    SymbolicKind("symbolic-parse"),
    SymbolicKind("symbolic-equivalence"),
)


class Registry:
    """Check kinds by name (immutable: :meth:`with_kinds` returns a new registry)."""

    def __init__(self, kinds=()):
        self._kinds = {k.name: k for k in kinds}

    def __contains__(self, name: str) -> bool:
        return name in self._kinds

    def get(self, name: str):
        """The kind named ``name``; raises KeyError."""
        return self._kinds[name]

    def names(self, framework: str | None = None) -> list[str]:
        """Kind names (those an exercise of ``framework`` may use, when given), sorted."""
        return sorted(n for n, k in self._kinds.items() if framework is None or framework in k.frameworks)

    def with_kinds(self, kinds) -> "Registry":
        """This registry plus ``kinds`` (a course's), which may not reuse a built-in name."""
        return Registry([*self._kinds.values(), *kinds])

    def __repr__(self) -> str:
        return f"Registry({', '.join(self._kinds)})"


BUILTIN = Registry(BUILTIN_KINDS)


def kind_problem(kind) -> str | None:
    """What a course kind lacks of the contract, in words (None when it keeps it)."""
    missing = [a for a in ("name", "plan", "evaluate") if not hasattr(kind, a)]
    if missing:
        return f"lacks {', '.join(missing)} (see dlgrade.graders.checks.protocol.CheckKind)"
    if not isinstance(kind.name, str) or not kind.name:
        return "has no name (a class attribute name = \"my-kind\")"
    if not callable(kind.plan) or not callable(kind.evaluate):
        return "has plan/evaluate that are not methods"
    return None


class CourseKind:
    """A course's kind object, completed with the contract's defaults (no options, every
    framework that runs code, no compared values).

    The course's code is the course's: when it raises, that is a spec error (exit 2)
    naming the spec, the check, the kind and the line of the course's file, never
    "a bug in dlgrade".
    """

    def __init__(self, obj):
        self.obj = obj
        self.name = obj.name
        self.Options = getattr(obj, "Options", NoOptions)
        self.frameworks = tuple(getattr(obj, "frameworks", ALL_FRAMEWORKS))

    def plan(self, check, ctx):
        return self._run("plan", check, ctx.exercise, lambda: list(self.obj.plan(check, ctx)))

    def evaluate(self, check, ctx):
        return self._run("evaluate", check, ctx.exercise, lambda: self.obj.evaluate(check, ctx))

    def compared(self, check, ctx):
        fn = getattr(self.obj, "compared", None)
        return self._run("compared", check, ctx.exercise, lambda: list(fn(check, ctx))) if fn else []

    def validate(self, check, exercise):
        fn = getattr(self.obj, "validate", None)
        return self._run("validate", check, exercise, lambda: fn(check, exercise)) if fn else None

    def _run(self, method: str, check, exercise, call):
        from dlgrade.graders.errors import DlgradeError
        from dlgrade.graders.spec import SpecError

        try:
            return call()
        except DlgradeError:  # already one line with its exit code (an OptionError, a SpecError...)
            raise
        except Exception as exc:
            text = " ".join(str(exc).split())
            raise SpecError(f"{exercise.folder / 'spec.toml'}: check {check.name!r}: kind {self.name!r}: "
                            f"{method} raised {type(exc).__name__}{': ' + text if text else ''} "
                            f"({self._where(exc)})") from None

    def _where(self, exc: BaseException) -> str:
        """``kinds.py, line 42``: the deepest line of the course's own file in the traceback."""
        import inspect
        import traceback
        from pathlib import Path

        try:
            cls = self.obj if isinstance(self.obj, type) else type(self.obj)
            source = Path(inspect.getsourcefile(cls) or "").resolve()
        except TypeError:
            source = None
        frames = traceback.extract_tb(exc.__traceback__)
        own = [f for f in frames if source is not None and Path(f.filename).resolve() == source]
        frame = (own or frames)[-1]
        return f"{Path(frame.filename).name}, line {frame.lineno}"

