"""dlgrade: an automated grader for deep-learning exercises.

Everything lives under this one namespace: ``dlgrade.graders`` (checking,
running, diagnosing), ``dlgrade.reference`` (the trusted reference maths),
``dlgrade.exercises`` (the built-in specs) and ``dlgrade.reports``
(rendering). In a checkout those are the folders at the top of the repository,
mapped here by ``pyproject.toml``'s ``package-dir``; an installed dlgrade holds
them inside this package.
"""
from __future__ import annotations

import os as _os

_here = _os.path.dirname(_os.path.abspath(__file__))
_root = _os.path.dirname(_here)
if not _os.path.isdir(_os.path.join(_here, "graders")) and _os.path.isfile(_os.path.join(_root, "graders", "__init__.py")):
    # a checkout used without installing it: the subpackages are its top-level folders
    __path__.append(_root)  # type: ignore[name-defined]


def __getattr__(name: str):
    if name == "__version__":
        from dlgrade.graders.batch import dlgrade_version

        return dlgrade_version()
    raise AttributeError(f"module 'dlgrade' has no attribute {name!r}")
