"""Exercise specs: one folder per exercise holding ``spec.toml``, ``statement.md``
and ``starter.py``.

dlgrade's own exercises live in the top-level ``exercises/`` folder; a course
adds its own from a folder of the same form with ``--exercises-dir`` (or the
``DLGRADE_EXERCISES`` environment variable, ``os.pathsep``-separated). A course
exercise names its reference as ``reference.py:function`` (a file in its own
folder) and may list buggy references the same way.
"""
from __future__ import annotations

import difflib
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
from dlgrade.graders.errors import UserError

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "exercises"
FRAMEWORKS = ("numpy", "torch", "symbolic")
# the symbolic evaluator's worker (its MathML is written by dlgrade.graders.symbolic_text, not SymPy)
SYMBOLIC_PRELOAD = ("numpy", "sympy")


class SpecError(UserError):
    """An exercise spec is malformed (a course author's or dlgrade's mistake)."""

    exercise_id: str | None = None  # the id the broken spec gives itself, when that much can be read


class UnknownExercise(UserError, KeyError):
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
    settings: Any = None  # the options, typed: an instance of the kind's Options dataclass

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
    kinds: Any = None  # the check kinds its checks may name (dlgrade.graders.checks.registry.Registry)

    @property
    def max_score(self) -> float:
        return float(sum(c.points for c in self.checks))

    def diagnosis(self, diag_id: str):
        """The title and hint this exercise's students read for ``diag_id`` (its own
        ``[diagnoses.ID]`` table first, then dlgrade's; see dlgrade.graders.diagnose)."""
        from dlgrade.graders import diagnose

        return diagnose.of_exercise(self.raw.get("diagnoses", {}), diag_id) or diagnose.describe(diag_id)

    def explanations(self, diag_ids) -> dict[str, dict[str, str]]:
        """``{id: {"title", "hint"}}`` for those of ``diag_ids`` this exercise words itself."""
        from dlgrade.graders import diagnose

        out = {}
        for d in diag_ids:
            own = diagnose.of_exercise(self.raw.get("diagnoses", {}), d)
            if own is not None:
                out[d] = {"title": own.title, "hint": own.hint}
        return out

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


TOP_KEYS = {
    "id": "the exercise's id", "title": "its title", "framework": "numpy, torch or symbolic",
    "entry": "the name a submission defines", "checks": "the [[checks]] list", "cases": "[cases.NAME] tables",
    "dims": "[dims] names for shapes", "reference": "module:function", "mistakes": "module:DICT of buggy references",
    "limits": "[limits]", "time_limit": "seconds", "memory_mb": "megabytes", "seed": "a whole number",
    "signature": "the entry's signature, as shown", "gpu": "[gpu]", "symbolic": "[symbolic]", "rules": "[rules]",
    "diagnoses": "[diagnoses.ID] tables", "gradient": "[gradient]", "kinds": "[kinds] a course's own check kinds",
}
CHECK_KEYS = ("name", "kind", "points", "hidden", "cases", "label")  # label: how messages name the output
LIMIT_KEYS = ("wall_s", "cpu_s", "memory_mb", "nproc", "fsize_mb", "nofile", "disk_mb")
DIAGNOSIS_KEYS = ("title", "hint")
_ENTRY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _unknown(key: str, known) -> str:
    from dlgrade.graders.checks.protocol import unknown_word

    return f"unknown key {key!r}{unknown_word(key, known)}"


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _top_level(path: Path, raw: dict) -> None:
    """Known keys of the right types (one line naming the key)."""
    for key in raw:
        if key not in TOP_KEYS:
            raise SpecError(f"{path}: {_unknown(key, TOP_KEYS)}")
    for key in ("id", "title", "framework", "entry", "checks"):
        if key not in raw:
            raise SpecError(f"{path}: missing required key {key!r}")
    for key in ("id", "title", "entry", "reference", "mistakes", "signature"):
        if key in raw and not (isinstance(raw[key], str) and (raw[key].strip() or key == "signature")):
            raise SpecError(f"{path}: {key} must be a non-empty string (got {raw[key]!r})")
    if raw["framework"] not in FRAMEWORKS:
        raise SpecError(f"{path}: framework must be one of {', '.join(FRAMEWORKS)}")
    if not _ENTRY.match(raw["entry"]):
        raise SpecError(f"{path}: entry must be a Python name, like \"softmax\" (got {raw['entry']!r})")
    for key in ("reference", "mistakes"):
        if raw.get(key) and ":" not in raw[key]:
            raise SpecError(f"{path}: {key} = {raw[key]!r} must look like 'module:name' or 'file.py:name'")
    if not isinstance(raw["checks"], list) or not raw["checks"] or not all(isinstance(c, dict) for c in raw["checks"]):
        raise SpecError(f"{path}: checks must be one or more [[checks]] tables")
    for key in ("seed",):
        if key in raw and (isinstance(raw[key], bool) or not isinstance(raw[key], int)):
            raise SpecError(f"{path}: {key} must be a whole number (got {raw[key]!r})")
    for key in ("time_limit", "memory_mb"):
        if key in raw and (not _number(raw[key]) or raw[key] <= 0):
            raise SpecError(f"{path}: {key} must be a positive number (got {raw[key]!r})")
    limits = raw.get("limits", {})
    if not isinstance(limits, dict):
        raise SpecError(f"{path}: [limits] must be a table")
    for key, value in limits.items():
        if key not in LIMIT_KEYS:
            raise SpecError(f"{path}: [limits] {_unknown(key, LIMIT_KEYS)}")
        if not _number(value) or value <= 0:
            raise SpecError(f"{path}: [limits] {key} must be a positive number (got {value!r})")
    dims = raw.get("dims", {})
    if not isinstance(dims, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                             for v in dims.values()):
        raise SpecError(f"{path}: [dims] must be a table of names = positive whole numbers, like N = 8")
    cases = raw.get("cases", {})
    if not isinstance(cases, dict) or not all(isinstance(c, dict) for c in cases.values()):
        raise SpecError(f"{path}: cases must be [cases.NAME] tables")
    for name, case in cases.items():
        for key in ("args", "kwargs", "dims"):
            want = list if key == "args" else dict
            if key in case and not isinstance(case[key], want):
                raise SpecError(f"{path}: [cases.{name}] {key} must be a {'list' if want is list else 'table'}")
    from dlgrade.graders.case_specs import case_problem

    for name, case in cases.items():  # the generators, their options and the fairness ones (bound...)
        problem = case_problem(name, case, dims)
        if problem:
            raise SpecError(f"{path}: {problem}")
    diagnoses = raw.get("diagnoses", {})
    if not isinstance(diagnoses, dict) or not all(isinstance(d, dict) for d in diagnoses.values()):
        raise SpecError(f"{path}: diagnoses must be [diagnoses.ID] tables with a title and a hint")
    for diag_id, d in diagnoses.items():
        for key, value in d.items():
            if key not in DIAGNOSIS_KEYS:
                raise SpecError(f"{path}: [diagnoses.{diag_id}] {_unknown(key, DIAGNOSIS_KEYS)}")
            if not isinstance(value, str) or not value.strip():
                raise SpecError(f"{path}: [diagnoses.{diag_id}] {key} must be a non-empty string")


def _check_label(c: dict, i: int) -> str:
    name = c.get("name", c.get("kind"))
    return f"check {name!r}" if isinstance(name, str) and name else f"check #{i + 1}"


def _checks(path: Path, raw: dict, kinds) -> list[CheckSpec]:
    """Every [[checks]] table, its kind known and its options typed (one line naming the key)."""
    from dlgrade.graders.checks.protocol import OptionError, option_fields, read_options, unknown_word

    framework, cases = raw["framework"], raw.get("cases", {})
    checks, names = [], set()
    for i, c in enumerate(raw["checks"]):
        where = f"{path}: {_check_label(c, i)}"
        for key in ("kind", "points"):
            if key not in c:
                raise SpecError(f"{where}: missing required key {key!r}")
        kind_name = c["kind"]
        if not isinstance(kind_name, str) or kind_name not in kinds:
            usable = kinds.names(framework)
            raise SpecError(f"{where}: unknown check kind {kind_name!r}{unknown_word(str(kind_name), usable)}")
        kind = kinds.get(kind_name)
        name = c.get("name", kind_name)
        if framework not in kind.frameworks:
            needs = " or ".join(f'"{f}"' for f in kind.frameworks)
            raise SpecError(f"{path}: check {name!r} of kind {kind_name!r} needs framework = {needs}")
        if not isinstance(name, str) or not name.strip():
            raise SpecError(f"{where}: name must be a non-empty string")
        if name in names:
            raise SpecError(f"{where}: two checks are named {name!r} (give each its own name)")
        names.add(name)
        if not _number(c["points"]) or c["points"] < 0:
            raise SpecError(f"{where}: points must be a number, 0 or more (got {c['points']!r})")
        if "hidden" in c and not isinstance(c["hidden"], bool):
            raise SpecError(f"{where}: hidden must be true or false (got {c['hidden']!r})")
        case_names = c.get("cases", [])
        if not isinstance(case_names, list) or not all(isinstance(n, str) for n in case_names):
            raise SpecError(f"{where}: cases must be a list of case names, like [\"random\"] (got {case_names!r})")
        for n in case_names:
            if n not in cases:
                known = ", ".join(sorted(cases)) or "none"
                close = difflib.get_close_matches(n, sorted(cases), n=1)
                guess = f"; did you mean {close[0]!r}?" if close else ""
                raise SpecError(f"{where}: uses undefined case {n!r}{guess} (cases defined: {known})")
        if framework != "symbolic" and not case_names:
            raise SpecError(f"{where}: cases must name at least one case, like cases = [\"random\"]")
        if "label" in c and not (isinstance(c["label"], str) and c["label"].strip()):
            raise SpecError(f"{where}: label must be a non-empty string, like \"softmax(z)\" (got {c['label']!r})")
        table = {k: v for k, v in c.items() if k not in CHECK_KEYS}
        own = option_fields(kind.Options) if kind.Options is not None else {}
        for key in table:
            common = difflib.get_close_matches(key, CHECK_KEYS, n=1)
            if key not in own and common and not difflib.get_close_matches(key, own, n=1):
                raise SpecError(f"{where}: unknown key {key!r}; did you mean {common[0]!r}? (keys every check "
                                f"has: {', '.join(CHECK_KEYS)}; options of kind {kind_name!r}: "
                                f"{', '.join(sorted(own)) or 'none'})")
        try:
            if kind.Options is None:  # a kind module that declares no options yet: untyped
                settings, options = None, dict(table)
            else:
                if "label" in c and "label" in own:  # a kind that names its checks
                    table = {**table, "label": c["label"]}
                settings, options = read_options(kind.Options, table)
            if "label" in c:
                options = {**options, "label": c["label"]}
        except OptionError as exc:
            raise SpecError(f"{where}: {exc}") from None
        except Exception as exc:  # a course kind's Options that is no dataclass
            raise SpecError(f"{where}: kind {kind_name!r} declares Options that cannot be read ({exc})") from None
        checks.append(CheckSpec(name=name, kind=kind_name, points=float(c["points"]),
                                hidden=bool(c.get("hidden", False)), cases=tuple(case_names),
                                options=options, settings=settings))
    return checks


def _course_kinds(path: Path, table, folder: Path):
    """The registry for this exercise: dlgrade's kinds plus its own ``[kinds]``
    (``name = "kinds.py:MyKind"``), loaded here in the trusted grader."""
    from dlgrade.graders.checks.registry import BUILTIN, CourseKind, kind_problem

    if table is None:
        return BUILTIN
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise SpecError(f"{path}: [kinds] must be a table of name = \"file.py:Class\"")
    found = []
    for name, target in table.items():
        if name in BUILTIN:
            raise SpecError(f"{path}: [kinds] {name!r} is a built-in check kind: give yours another name")
        try:
            obj = _resolve(target, folder)
        except SpecError as exc:
            raise SpecError(f"{path}: [kinds] {name}: {exc}") from None
        except Exception as exc:  # the course's own module failed to import
            raise SpecError(f"{path}: [kinds] {name}: importing {target!r} raised "
                            f"{type(exc).__name__}: {exc}") from None
        if isinstance(obj, type):
            obj = obj()
        if not hasattr(obj, "name"):
            try:
                obj.name = name
            except AttributeError:
                pass
        problem = kind_problem(obj)
        if problem:
            raise SpecError(f"{path}: [kinds] {name}: {target} {problem}")
        if obj.name != name:
            raise SpecError(f"{path}: [kinds] {name}: {target} is named {obj.name!r}; use the same name")
        found.append(CourseKind(obj))
    return BUILTIN.with_kinds(found)


def load_exercise(folder: Path) -> Exercise:
    """Parse and check one exercise folder. Raises SpecError: one line naming the file,
    the check (if any) and the key."""
    path = folder / "spec.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: {' '.join(str(exc).split())}") from None
    _top_level(path, raw)
    _validate_gpu(path, raw.get("gpu", {}), raw["framework"], [])  # the tables first, then the checks
    _validate_symbolic(path, raw.get("symbolic"), raw["framework"])
    rules = _rules(path, raw.get("rules", {}), raw["framework"])
    if raw["framework"] != "symbolic" and not raw.get("reference"):
        raise SpecError(f"{path}: missing required key 'reference' (module:function or file.py:function)")
    kinds = _course_kinds(path, raw.get("kinds"), folder)
    checks = _checks(path, raw, kinds)
    _validate_gpu(path, raw.get("gpu", {}), raw["framework"], checks)
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
    ex = Exercise(
        id=raw["id"], title=raw["title"], framework=raw["framework"], entry=raw["entry"],
        folder=folder, checks=tuple(checks), cases=raw.get("cases", {}), dims=raw.get("dims", {}),
        reference=raw.get("reference", ""), mistakes=raw.get("mistakes", ""), limits=limits,
        seed=int(raw.get("seed", 0)), signature=raw.get("signature", ""),
        gpu=raw.get("gpu", {}), symbolic=raw.get("symbolic", {}), rules=rules, raw=raw, kinds=kinds,
    )
    for c in checks:
        validate = getattr(kinds.get(c.kind), "validate", None)
        problem = validate(c, ex) if validate else None
        if problem:
            raise SpecError(f"{path}: check {c.name!r}: {problem}")
    _check_starter(path, ex.starter, ex.entry)
    return ex


def _check_starter(path: Path, starter: Path, entry: str) -> None:
    """The starter students get must define the entry the grader calls (else every
    student who keeps its name is graded "missing")."""
    import ast

    try:
        tree = ast.parse(starter.read_bytes(), filename=starter.name)
    except FileNotFoundError:
        return  # a course may give no starter (dlgrade init then says so)
    except (OSError, SyntaxError, ValueError) as exc:
        where = f", line {exc.lineno}" if getattr(exc, "lineno", None) else ""
        raise SpecError(f"{path}: starter.py cannot be read as Python ({type(exc).__name__}{where})") from None
    defined = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined += [t.id for t in targets if isinstance(t, ast.Name)]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined += [(a.asname or a.name).split(".")[0] for a in node.names]
    if entry not in defined:
        close = difflib.get_close_matches(entry, defined, n=1)
        guess = f"; did you mean entry = {close[0]!r}?" if close else ""
        raise SpecError(f"{path}: entry {entry!r} is not defined in starter.py{guess} (students would be graded "
                        "\"missing\": the entry is the name their code must define)")


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
        misspelt = _misspelt_module(m)
        if misspelt:
            raise SpecError(f"{path}: [rules] forbid_imports lists {m!r}, which is no module; did you mean "
                            f"{misspelt!r}? (a misspelt name forbids nothing)")
    reason = table.get("reason", f"this exercise is {framework} only")
    if not isinstance(reason, str) or not reason.strip():
        raise SpecError(f"{path}: [rules] reason must be a non-empty string")
    return Rules(tuple(dict.fromkeys(modules)), reason.strip())


# Modules a course may forbid: a name that is none of these, close to one, and not installed is a typo.
WELL_KNOWN_MODULES = ("autograd", "chainer", "cupy", "flax", "jax", "jaxlib", "keras", "mxnet", "numba", "numpy",
                      "optax", "paddle", "pandas", "scipy", "sklearn", "sympy", "tensorflow", "theano", "torch",
                      "torchvision", "tinygrad", "mlx")


def _misspelt_module(name: str) -> str | None:
    """The well-known module ``name`` is likely a typo of, when it is not installed here."""
    top = name.split(".")[0]
    if top in WELL_KNOWN_MODULES:
        return None
    try:
        if importlib.util.find_spec(top) is not None:
            return None
    except (ImportError, ValueError):
        pass
    close = difflib.get_close_matches(top, WELL_KNOWN_MODULES, n=1, cutoff=0.75)
    return close[0] + name[len(top):] if close else None


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
        half = c.opt("half", ())
        if not isinstance(half, (list, tuple)) or any(h not in HALF_DTYPES for h in half):
            raise SpecError(f"{path}: check {c.name!r}: half must be a list of {', '.join(HALF_DTYPES)}")
        hc = c.opt("half_cases", c.cases)
        if not isinstance(hc, (list, tuple)) or any(n not in c.cases for n in hc):
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
        raise SpecError(f"{where} {_unknown(unknown[0], SYMBOLIC_KEYS)}")
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
def _survey(dirs: tuple[Path, ...]) -> tuple[dict[str, Exercise], tuple[SpecError, ...]]:
    found: dict[str, Exercise] = {}
    broken: list[SpecError] = []
    for d in dirs:
        if not d.is_dir():
            raise SpecError(f"exercises folder {d} does not exist")
        here: dict[str, Path] = {}
        for sub in sorted(d.iterdir()):
            if (sub / "spec.toml").is_file():
                try:
                    ex = load_exercise(sub)
                except SpecError as exc:
                    exc.exercise_id = _raw_id(sub / "spec.toml")
                    broken.append(exc)
                    continue
                if ex.id in here:  # two in one folder: neither may silently shadow the other
                    twin = SpecError(f"{sub / 'spec.toml'}: id {ex.id!r} is also the id of "
                                     f"{here[ex.id] / 'spec.toml'} (each exercise needs its own id)")
                    twin.exercise_id = ex.id
                    broken.append(twin)
                    continue
                here[ex.id] = sub
                found[ex.id] = ex  # a course's folder may override a built-in id
    return found, tuple(broken)


def _raw_id(path: Path) -> str | None:
    """The id a spec that does not load says it has, when that much can be read."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    return raw.get("id") if isinstance(raw.get("id"), str) else None


def survey(extra=()) -> tuple[dict[str, Exercise], tuple[SpecError, ...]]:
    """The exercises that load, by id, and the SpecError of each spec that does not
    (``dlgrade list`` shows both)."""
    return _survey(tuple(exercise_dirs(extra)))


def _catalogue(dirs: tuple[Path, ...]) -> dict[str, Exercise]:
    found, broken = _survey(dirs)
    if broken:  # grading with a broken spec around: stop before anyone is graded
        raise broken[0]
    return found


def catalogue(extra=()) -> dict[str, Exercise]:
    """All exercises by id, built-ins first, then course folders (which may override).
    Raises the SpecError of the first spec that does not load."""
    return _catalogue(tuple(exercise_dirs(extra)))


def get_exercise(exercise_id: str, extra=()) -> Exercise:
    """The exercise ``exercise_id``. A broken spec elsewhere in the folders does not stop
    it (``dlgrade list`` reports that one), unless the broken spec may be this id's own:
    it names this id, or its id cannot be read. Raises UnknownExercise, SpecError."""
    found, broken = _survey(tuple(exercise_dirs(extra)))
    mine = [exc for exc in broken if exc.exercise_id in (exercise_id, None)]
    if mine:
        raise mine[0]
    cat = found
    if exercise_id not in cat:
        also = (f" ({len(broken)} more spec{'s' if len(broken) > 1 else ''} did not load: dlgrade list "
                "says why)") if broken else ""
        raise UnknownExercise(
            f"unknown exercise {exercise_id!r}; known: {', '.join(sorted(cat))}{also}")
    return cat[exercise_id]
