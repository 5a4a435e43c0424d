"""The contract every check kind keeps, built-in or a course's own.

A check kind turns one ``[[checks]]`` table of a spec into a scored
:class:`~dlgrade.graders.results.CheckResult`, in two steps that never meet the
student's code directly:

1. ``plan(check, ctx) -> list[Call]``: the calls of the student's entry it needs
   (which case, whether to watch the arguments, run backward, perturb an
   argument...). The engine runs every planned call of every check in one
   sandboxed job; calls with the same id are run once and shared.
2. ``evaluate(check, ctx) -> CheckResult``: back in the trusted grader, read the
   calls' decoded outputs (``ctx.call(id)``), compare them with the reference
   (``ctx.reference(case)``, computed in this process) and return the verdict,
   the points, one line for the student and the numbers behind it
   (:func:`dlgrade.graders.checks.common.result` builds one).

and, for mistake matching:

3. ``compared(check, ctx) -> list[Compared]``: the (call, output path) pairs
   whose values the kind compares with the reference. The engine matches the
   exercise's buggy references on exactly those values (a tuple element, a
   dict key, a gradient), so a kind that compares values gets diagnoses for
   free. A kind that compares nothing returns ``[]``.

A kind declares its options as a frozen dataclass, ``Options``: each field is
one option, its annotation the type (``str``, ``int``, ``float``, ``bool``,
``list``, ``dict``, ``OutputPath``, ``Names`` (a list of strings), ``Table`` (a
TOML table), or one of them ``| None``), its default the default (a field
without one is required), ``field(metadata={"help": ...})`` what it means.
The dataclass may add ``validate(self) -> str``: a problem with the values
together (``test 'mean' needs option 'std'``), or "". ``name``, ``kind``,
``points``, ``hidden`` and ``cases`` are keys every check has; the loader
reads them itself (and ``label`` too, which it also gives to an ``Options``
with a ``label`` field). The spec loader reads a check's options into it
(``check.settings``; :func:`settings_of`) and refuses an unknown option, a
wrong type or what ``validate`` says with one line naming the file, the check
and the key, before anything is graded. ``frameworks`` says which exercises may
use the kind. An optional ``validate(check, exercise) -> str | None`` returns
a further problem with the check (one line, without the file and check,
which the caller adds), or None.
A module kind may give ``check_cases(options, cases, folder) -> str`` instead,
for the shape of its cases only. A kind whose cases are not the entry's
arguments (an optimiser trajectory, a trainer's data) sets
``cases_are_arguments = False``: the spec probe then leaves its cases to it.

Built-in kinds are modules of ``dlgrade.graders.checks`` listed in
:mod:`dlgrade.graders.checks.registry`; a course defines its own as a class
with these attributes (see docs/adding-an-exercise.md, "Your own check kinds").
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import typing
from dataclasses import dataclass
from typing import Any, NewType, Protocol, runtime_checkable

from dlgrade.graders.errors import UserError

OutputPath = NewType("OutputPath", tuple)  # a path into the returned value: [1, "W1"]
Names = NewType("Names", tuple)  # a list of strings: ["float16", "bfloat16"]
Table = NewType("Table", dict)  # a TOML table: { W1 = 2, b1 = 3 }

ALL_FRAMEWORKS = ("numpy", "torch")


@dataclass(frozen=True)
class Compared:
    """A value a check compares with the reference: the output of call ``call`` at ``path``."""

    call: str
    path: tuple = ()


@runtime_checkable
class CheckKind(Protocol):
    """What the engine needs of a check kind (see the module's docstring)."""

    name: str
    Options: type
    frameworks: tuple[str, ...]

    def plan(self, check, ctx) -> list: ...

    def evaluate(self, check, ctx): ...

    def compared(self, check, ctx) -> list[Compared]: ...


@dataclass(frozen=True)
class NoOptions:
    """A kind without options of its own."""


class ModuleKind:
    """A built-in kind implemented as a module with ``plan``/``evaluate`` (and
    optionally ``compared``, ``validate``) functions and an ``Options`` class.

    The module is imported the first time the kind is used, so a spec that
    never uses a torch-only kind never imports what that kind needs.
    """

    def __init__(self, name: str, module: str, frameworks: tuple[str, ...] = ALL_FRAMEWORKS):
        self.name, self.module_name, self.frameworks = name, module, tuple(frameworks)

    @property
    def module(self):
        return importlib.import_module(self.module_name)

    @property
    def Options(self) -> type | None:  # noqa: N802 (the protocol's name for it)
        """The module's Options dataclass; None for a module that declares none yet (its
        options are then passed through untyped: every built-in kind declares one, a test
        says so)."""
        return getattr(self.module, "Options", None)

    def plan(self, check, ctx) -> list:
        return self.module.plan(check, ctx)

    def evaluate(self, check, ctx):
        return self.module.evaluate(check, ctx)

    def compared(self, check, ctx) -> list[Compared] | None:
        """None when the module does not say: the engine then takes its calls marked ``compare``."""
        fn = getattr(self.module, "compared", None)
        return list(fn(check, ctx)) if fn else None

    def validate(self, check, exercise) -> str | None:
        fn = getattr(self.module, "validate", None)
        if fn:
            return fn(check, exercise)
        fits = getattr(self.module, "check_cases", None)  # a kind that checks only its cases' shape
        if fits is None:
            return None
        try:
            opts = settings_of(check, self.Options)
        except OptionError as exc:
            return str(exc)
        return fits(opts, {n: exercise.cases[n] for n in check.cases}, exercise.folder) or None

    def __getattr__(self, name: str):
        """The module's further hooks (``mistake_paths``, ``reference_problem``...), if any."""
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return getattr(self.module, name)
        except AttributeError:
            raise AttributeError(f"check kind {self.name!r} has no {name!r}") from None

    def __repr__(self) -> str:
        return f"ModuleKind({self.name!r}, {self.module_name!r})"


# --------------------------------------------------------------------------- typed options


class OptionError(UserError, ValueError):
    """An option's value does not fit its declared type (the message says what was expected);
    the spec loader turns it into a SpecError naming the file and the check."""


REQUIRED = object()  # the default of an option without one: the check must give it


def option_fields(options_cls: type) -> dict[str, tuple[Any, Any, str]]:
    """``{name: (type, default, help)}`` of a kind's Options dataclass (default REQUIRED
    for a field without one)."""
    hints = typing.get_type_hints(options_cls)
    out = {}
    for f in dataclasses.fields(options_cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else REQUIRED)
        out[f.name] = (hints[f.name], default, f.metadata.get("help", ""))
    return out


def _is_optional(tp) -> tuple[bool, Any]:
    args = typing.get_args(tp)
    if type(None) in args and len(args) == 2:
        return True, next(a for a in args if a is not type(None))
    return False, tp


def _plain(tp):
    """``list[str]`` -> list, ``dict[str, int]`` -> dict: what a TOML value is checked against."""
    origin = typing.get_origin(tp)
    return origin if origin in (list, dict, tuple) else tp


def type_word(tp) -> str:
    """How a message names an option's type."""
    _, tp = _is_optional(tp)
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
            OutputPath: 'a list of indices and keys into the returned value, like [0] or [1, "W1"]',
            Names: 'a list of strings, like ["a", "b"]', Table: "a table, like { key = value }",
            list: "a list, like [1, 2]", dict: "a table, like { key = value }"}.get(
                _plain(tp), getattr(tp, "__name__", str(tp)))


def convert(value, tp):
    """``value`` (as TOML gives it) as type ``tp``; raises OptionError."""
    _, tp = _is_optional(tp)
    ok = True
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    elif tp is OutputPath:
        ok = isinstance(value, list) and all(
            isinstance(k, str) or (isinstance(k, int) and not isinstance(k, bool)) for k in value)
        value = tuple(value) if ok else value
    elif tp is Names:
        ok = isinstance(value, list) and all(isinstance(k, str) for k in value)
        value = tuple(value) if ok else value
    elif tp is Table or _plain(tp) is dict:
        ok = isinstance(value, dict)
    elif _plain(tp) in (list, tuple):
        ok = isinstance(value, list)
    if not ok:
        raise OptionError(f"must be {type_word(tp)} (got {_shown(value)})")
    return value


def _shown(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return repr(value)


def unknown_word(key: str, known) -> str:
    """``unknown option 'rtoll'; did you mean 'rtol'? (known: atol, rtol)``."""
    known = sorted(known)
    close = difflib.get_close_matches(key, known, n=1)
    guess = f"; did you mean {close[0]!r}?" if close else ""
    return f"{guess} (known: {', '.join(known) if known else 'none'})"


def read_options(options_cls: type, table: dict, what: str = "option"):
    """The check's options as an ``options_cls`` instance, and the validated dict.

    Raises OptionError naming the key: ``unknown option 'rtoll'; did you mean
    'rtol'? (...)`` or ``option output must be ... (got 0)``.
    """
    fields = option_fields(options_cls)
    for key in table:
        if key not in fields:
            raise OptionError(f"unknown {what} {key!r}{unknown_word(key, fields)}")
    for key, (_, default, _) in fields.items():
        if default is REQUIRED and key not in table:
            raise OptionError(f"missing required {what} {key!r}")
    values = {}
    for key, value in table.items():
        try:
            values[key] = convert(value, fields[key][0])
        except OptionError as exc:
            raise OptionError(f"{what} {key} {exc}") from None
    made = options_cls(**values)
    problem = made.validate() if callable(getattr(made, "validate", None)) else ""
    if problem:
        raise OptionError(str(problem))
    return made, values


def settings_of(check, options_cls: type):
    """The check's options as an ``options_cls`` instance: ``check.settings``, read when
    the spec loaded; for a check built by hand (a test), read from ``check.options`` now
    (raises OptionError)."""
    if isinstance(check.settings, options_cls):
        return check.settings
    fields = option_fields(options_cls)
    return read_options(options_cls, {k: v for k, v in check.options.items() if k in fields})[0]
