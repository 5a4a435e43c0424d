"""Exercise specs: one folder per exercise holding ``spec.toml``, ``statement.md``
and ``starter.py``.

dlgrade's own exercises live in the top-level ``exercises/`` folder; a course
adds its own from a folder of the same form with ``--exercises-dir`` (or the
``DLGRADE_EXERCISES`` environment variable, ``os.pathsep``-separated). A course
exercise names its reference as ``reference.py:function`` (a file in its own
folder) and may list buggy references the same way.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from dlgrade.graders.sandbox import Limits

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "exercises"
FRAMEWORKS = ("numpy", "torch", "symbolic")
# the symbolic evaluator's worker (its MathML is written by dlgrade.graders.symbolic_text, not SymPy)
SYMBOLIC_PRELOAD = ("numpy", "sympy")


class SpecError(Exception):
    """An exercise spec is malformed (a course author's or dlgrade's mistake)."""


class UnknownExercise(KeyError):
    """No exercise has that id."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class CheckSpec:
    """One check as declared in a spec: its kind, points, visibility and options."""

    name: str
    kind: str
    points: float
    hidden: bool = False
    cases: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)

    def opt(self, key: str, default=None):
        return self.options.get(key, default)


@dataclass(frozen=True)
class Rules:
    """An exercise's ``[rules]``: what a submission may not do, decided by the grader.

    ``forbid_imports``: modules (a package covers its submodules) the submission
    may not import in the code its entry runs: ``["torch", "jax"]`` makes a
    numpy exercise numpy only. ``reason`` starts the message a student reads
    (default ``this exercise is <framework> only``).
    """

    forbid_imports: tuple[str, ...] = ()
    reason: str = ""

    def forbidden(self, module: str) -> str | None:
        """The ``forbid_imports`` entry that covers ``module`` (``torch.nn`` -> ``torch``), or None."""
        for root in self.forbid_imports:
            if module == root or module.startswith(root + "."):
                return root
        return None


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    framework: str
    entry: str
    folder: Path
    checks: tuple[CheckSpec, ...]
    cases: dict[str, dict]
    dims: dict[str, int]
    reference: str = ""
    mistakes: str = ""
    limits: Limits = Limits()
    seed: int = 0
    signature: str = ""
    gpu: dict[str, Any] = field(default_factory=dict)
    symbolic: dict[str, Any] = field(default_factory=dict)
    rules: Rules = Rules()
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def max_score(self) -> float:
        return float(sum(c.points for c in self.checks))

    @property
    def statement(self) -> str:
        p = self.folder / "statement.md"
        return p.read_text(encoding="utf-8") if p.exists() else ""

    @property
    def starter(self) -> Path:
        return self.folder / "starter.py"

    @property
    def preload(self) -> tuple[str, ...]:
        """Modules the worker should import before forking jobs for this exercise."""
        if self.framework == "torch":
            return ("numpy", "torch")
        if self.framework == "symbolic":
            return SYMBOLIC_PRELOAD
        return ("numpy",)

    def reference_fn(self) -> Callable:
        return _resolve(self.reference, self.folder)

    def case_conditions(self) -> dict[str, Callable]:
        """case name -> the predicate its inputs must satisfy (``condition = "module:function"``)."""
        return {n: _resolve(c["condition"], self.folder) for n, c in self.cases.items()
                if isinstance(c, dict) and c.get("condition")}

    def mistake_fns(self) -> dict[str, Callable]:
        if not self.mistakes:
            return {}
        found = _resolve(self.mistakes, self.folder)
        if not isinstance(found, dict):
            raise SpecError(f"{self.id}: mistakes must name a dict of diagnosis id -> function")
        return found


def _resolve(target: str, folder: Path):
    """``pkg.module:name`` or ``file.py:name`` (relative to the exercise folder)."""
    if ":" not in target:
        raise SpecError(f"reference {target!r} must look like 'module:function' or 'file.py:function'")
    mod_name, attr = target.rsplit(":", 1)
    if mod_name.endswith(".py"):
        path = (folder / mod_name).resolve()
        if not path.exists():
            raise SpecError(f"reference file {path} does not exist")
        key = f"dlgrade_course_{abs(hash(str(path)))}"
        module = sys.modules.get(key)
        if module is None:
            spec = importlib.util.spec_from_file_location(key, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[key] = module
            spec.loader.exec_module(module)
    else:
        module = importlib.import_module(mod_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise SpecError(f"{mod_name} has no {attr!r}") from None


def load_exercise(folder: Path) -> Exercise:
    """Parse one exercise folder. Raises SpecError with the file and the problem."""
    path = folder / "spec.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{path}: {exc}") from None
    for key in ("id", "title", "framework", "entry", "checks"):
        if key not in raw:
            raise SpecError(f"{path}: missing required key {key!r}")
    if raw["framework"] not in FRAMEWORKS:
        raise SpecError(f"{path}: framework must be one of {', '.join(FRAMEWORKS)}")
    checks = []
    known = {"name", "kind", "points", "hidden", "cases"}
    for i, c in enumerate(raw["checks"]):
        if "kind" not in c or "points" not in c:
            raise SpecError(f"{path}: check #{i + 1} needs 'kind' and 'points'")
        checks.append(CheckSpec(
            name=c.get("name", c["kind"]), kind=c["kind"], points=float(c["points"]),
            hidden=bool(c.get("hidden", False)), cases=tuple(c.get("cases", ())),
            options={k: v for k, v in c.items() if k not in known}))
    cases = raw.get("cases", {})
    from dlgrade.graders.inputs import case_problem

    for name, case in cases.items():
        problem = case_problem(name, case)
        if problem:
            raise SpecError(f"{path}: {problem}")
    for c in checks:
        for name in c.cases:
            if name not in cases:
                raise SpecError(f"{path}: check {c.name!r} uses undefined case {name!r}")
    for diag_id, d in raw.get("diagnoses", {}).items():
        from dlgrade.graders.diagnose import Diagnosis, register

        register(Diagnosis(diag_id, d.get("title", diag_id), d.get("hint", "")))
    _validate_gpu(path, raw.get("gpu", {}), raw["framework"], checks)
    _validate_symbolic(path, raw.get("symbolic"), raw["framework"])
    rules = _rules(path, raw.get("rules", {}), raw["framework"])
    lim = raw.get("limits", {})
    limits = Limits(
        wall_s=float(raw.get("time_limit", lim.get("wall_s", 10.0))),
        cpu_s=float(lim.get("cpu_s", raw.get("time_limit", 10.0))),
        memory_mb=int(raw.get("memory_mb", lim.get("memory_mb", 1024))),
        nproc=int(lim.get("nproc", 32)),
        fsize_mb=int(lim.get("fsize_mb", 256)),
        nofile=int(lim.get("nofile", 256)),
        disk_mb=int(lim.get("disk_mb", 512)),
    ).capped()
    return Exercise(
        id=raw["id"], title=raw["title"], framework=raw["framework"], entry=raw["entry"],
        folder=folder, checks=tuple(checks), cases=cases, dims=raw.get("dims", {}),
        reference=raw.get("reference", ""), mistakes=raw.get("mistakes", ""), limits=limits,
        seed=int(raw.get("seed", 0)), signature=raw.get("signature", ""),
        gpu=raw.get("gpu", {}), symbolic=raw.get("symbolic", {}), rules=rules, raw=raw,
    )


RULE_KEYS = ("forbid_imports", "reason")
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
FRAMEWORK_MODULES = {"numpy": ("numpy",), "torch": ("numpy", "torch")}  # what each framework's code needs


def _rules(path: Path, table, framework: str) -> Rules:
    """The ``[rules]`` table, checked: an author's typo is one line naming the file and key."""
    if not isinstance(table, dict):
        raise SpecError(f"{path}: [rules] must be a table")
    unknown = sorted(set(table) - set(RULE_KEYS))
    if unknown:
        raise SpecError(f"{path}: unknown key {unknown[0]!r} in [rules] (known: {', '.join(RULE_KEYS)})")
    modules = table.get("forbid_imports", [])
    if not isinstance(modules, list) or not all(isinstance(m, str) and _MODULE_NAME.match(m) for m in modules):
        raise SpecError(f"{path}: [rules] forbid_imports must be a list of module names, "
                        f"like [\"torch\", \"jax\"] (got {modules!r})")
    if modules and framework not in FRAMEWORK_MODULES:
        raise SpecError(f"{path}: [rules] forbid_imports needs framework = \"numpy\" or \"torch\" "
                        f"(a {framework} answer is never run as a program)")
    for m in modules:
        needed = [n for n in FRAMEWORK_MODULES.get(framework, ()) if n == m or n.startswith(m + ".")]
        if needed:
            raise SpecError(f"{path}: [rules] forbid_imports lists {m!r}, which a {framework} exercise needs")
    reason = table.get("reason", f"this exercise is {framework} only")
    if not isinstance(reason, str) or not reason.strip():
        raise SpecError(f"{path}: [rules] reason must be a non-empty string")
    return Rules(tuple(dict.fromkeys(modules)), reason.strip())


GPU_KINDS = ("gpu", "device-probe")
HALF_DTYPES = ("float16", "bfloat16")


def _validate_gpu(path: Path, gpu, framework: str, checks: list[CheckSpec]) -> None:
    """The ``[gpu]`` table and GPU checks: unscored unless ``required = true``.

    Without a GPU a GPU check is skipped (0 of 0); if it carried points, the
    same submission would score differently on a GPU machine and on a laptop.
    """
    if not isinstance(gpu, dict):
        raise SpecError(f"{path}: [gpu] must be a table")
    unknown = sorted(set(gpu) - {"required"})
    if unknown:
        raise SpecError(f"{path}: unknown key {unknown[0]!r} in [gpu] (known: required)")
    required = gpu.get("required", False)
    if not isinstance(required, bool):
        raise SpecError(f"{path}: [gpu] required must be true or false")
    if required and framework != "torch":
        raise SpecError(f"{path}: [gpu] required = true needs framework = \"torch\"")
    for c in checks:
        if c.kind in GPU_KINDS and framework != "torch":
            raise SpecError(f"{path}: check {c.name!r} of kind {c.kind!r} needs framework = \"torch\"")
        if c.kind != "gpu":
            continue
        if c.points and not required:
            raise SpecError(
                f"{path}: GPU check {c.name!r} has points = {c.points:g}, but GPU checks are skipped on "
                "machines without a GPU, so they must have points = 0 unless [gpu] required = true "
                "(the score must not depend on the machine)")
        half = c.opt("half", [])
        if not isinstance(half, list) or any(h not in HALF_DTYPES for h in half):
            raise SpecError(f"{path}: check {c.name!r}: half must be a list of {', '.join(HALF_DTYPES)}")
        hc = c.opt("half_cases", list(c.cases))
        if not isinstance(hc, list) or any(n not in c.cases for n in hc):
            raise SpecError(f"{path}: check {c.name!r}: half_cases must be among its cases "
                            f"({', '.join(c.cases)})")


SYMBOLIC_KEYS = ("variables", "discrete", "name", "hints", "aliases", "simplify_s", "numeric_s")


def _validate_symbolic(path: Path, table, framework: str) -> None:
    """The ``[symbolic]`` table: known keys of the right types; every alias a name an
    answer can use, standing for an expression in the variables (read as an answer is,
    by dlgrade.graders.symbolic_text, without SymPy)."""
    if table is None:
        return
    where = f"{path}: [symbolic]"
    if framework != "symbolic":
        raise SpecError(f"{where} is only for framework = \"symbolic\"")
    if not isinstance(table, dict):
        raise SpecError(f"{where} must be a table")
    unknown = sorted(set(table) - set(SYMBOLIC_KEYS))
    if unknown:
        raise SpecError(f"{where} unknown key {unknown[0]!r} (known: {', '.join(SYMBOLIC_KEYS)})")
    from dlgrade.graders import symbolic_text

    variables = table.get("variables", ["z", "y"])
    if not (isinstance(variables, list) and variables and all(isinstance(v, str) for v in variables)):
        raise SpecError(f"{where} variables must be a list of names, like [\"z\", \"y\"]")
    for v in variables:
        if not v.isidentifier() or v in symbolic_text.CONSTANTS or symbolic_text._py_function(v):
            raise SpecError(f"{where} variables: {v!r} cannot be a variable (not a name, or a function "
                            "or constant an answer may use)")
    discrete = table.get("discrete", {})
    if not isinstance(discrete, dict):
        raise SpecError(f"{where} discrete must be a table of variable = [values]")
    for k, values in discrete.items():
        if k not in variables:
            raise SpecError(f"{where} discrete.{k}: {k!r} is not one of the variables ({', '.join(variables)})")
        if not (isinstance(values, list) and values
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values)):
            raise SpecError(f"{where} discrete.{k} must be a list of numbers, like [0, 1]")
    for key in ("name",):
        if key in table and not isinstance(table[key], str):
            raise SpecError(f"{where} {key} must be a string")
    for key in ("simplify_s", "numeric_s"):
        if key in table and (isinstance(table[key], bool) or not isinstance(table[key], (int, float))
                             or table[key] <= 0):
            raise SpecError(f"{where} {key} must be a positive number of seconds")
    for key in ("hints", "aliases"):
        entries = table.get(key, {})
        if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
            raise SpecError(f"{where} {key} must be a table of name = \"expression\"")
    for name, meaning in table.get("aliases", {}).items():  # an alias that is also a hint: accepted
        problem = symbolic_text.alias_problem(name, variables)
        if problem is None:
            try:
                symbolic_text.parse(meaning, variables)
            except symbolic_text.ParseError as exc:
                problem = f"{meaning!r} cannot be read: {exc}"
        if problem:
            raise SpecError(f"{where} aliases.{name}: {problem}")


def exercise_dirs(extra: tuple[str, ...] | list[str] = ()) -> list[Path]:
    dirs = [BUILTIN_DIR]
    env = os.environ.get("DLGRADE_EXERCISES", "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs += [Path(p) for p in extra]
    return dirs


@lru_cache(maxsize=8)
def _catalogue(dirs: tuple[Path, ...]) -> dict[str, Exercise]:
    found: dict[str, Exercise] = {}
    for d in dirs:
        if not d.is_dir():
            raise SpecError(f"exercises folder {d} does not exist")
        for sub in sorted(d.iterdir()):
            if (sub / "spec.toml").is_file():
                ex = load_exercise(sub)
                found[ex.id] = ex  # a course's folder may override a built-in id
    return found


def catalogue(extra=()) -> dict[str, Exercise]:
    """All exercises by id, built-ins first, then course folders (which may override)."""
    return _catalogue(tuple(exercise_dirs(extra)))


def get_exercise(exercise_id: str, extra=()) -> Exercise:
    cat = catalogue(extra)
    if exercise_id not in cat:
        raise UnknownExercise(
            f"unknown exercise {exercise_id!r}; known: {', '.join(sorted(cat))}")
    return cat[exercise_id]
