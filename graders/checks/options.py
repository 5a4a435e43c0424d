"""Typed options of a check kind: a kind declares ``Options``, a dataclass whose fields are
the keys its checks may carry in a spec (name, type, default); the spec loader builds one
for every check, so an author's typo or a wrong type is one line naming the file and the
key before any student is graded.

Field types are plain: ``str``, ``int``, ``float`` (an int is accepted), ``bool``,
``list`` and ``dict`` (TOML arrays and tables), or one of those ``| None``. A field without
a default is required.
"""
from __future__ import annotations

from dlgrade.graders.errors import UserError

import dataclasses
import types
import typing
from typing import Any

# keys every check has, handled by the loader itself (see dlgrade.graders.spec.load_exercise)
COMMON_KEYS = ("name", "kind", "points", "hidden", "cases", "label")


class OptionError(UserError, ValueError):
    """A check's options do not fit its kind's ``Options`` (the message names the key)."""


def _accepts(tp, value) -> bool:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(t, value) for t in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is not None:
        tp = origin
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is Any:
        return True
    return isinstance(value, tp)


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(t) for t in typing.get_args(tp))
    if tp is type(None):
        return "nothing"
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "a table"}
    return names.get(origin or tp, getattr(tp, "__name__", str(tp)))


def parse(cls, options: dict[str, Any]):
    """An instance of the dataclass ``cls`` from a check's options. Raises OptionError."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    extra = sorted(k for k in options if k not in fields and k not in COMMON_KEYS)
    if extra:
        raise OptionError(f"unknown option {extra[0]!r} (known: {', '.join(sorted(fields))})")
    values = {}
    for name, f in fields.items():
        if name in options:
            value = options[name]
            if not _accepts(hints[name], value):
                raise OptionError(f"option {name!r} must be {_type_name(hints[name])} (got {value!r})")
            values[name] = float(value) if hints[name] is float else value
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise OptionError(f"option {name!r} is required")
    made = cls(**values)
    check = getattr(made, "validate", None)
    if check is not None:
        problem = check()
        if problem:
            raise OptionError(problem)
    return made


def of(check, cls):
    """The parsed options of a CheckSpec (checked when the spec loaded, so this cannot fail
    for a spec that loaded)."""
    return parse(cls, check.options)
