"""An exercise's ``[rules]``, decided in the grader: which forbidden imports a submission made.

``forbid_imports = ["torch", "jax"]`` makes a numpy exercise numpy only. The
verdict is this module's, from two kinds of evidence:

* **the source** (``ast``, nothing is run): every place the shipped files
  import a forbidden module (``import``/``from ... import`` anywhere, and
  ``importlib.import_module("...")``/``__import__("...")`` with a constant
  name). Such an import breaks the rule when the code the entry runs reaches
  it (the entry itself, the functions, classes and globals it uses, in the
  file and in helper modules, followed by name), or when nothing uses what it
  imports (a bare ``import torch``). An import that only *other* code uses (a
  notebook's label-smoothing cell next to its backprop cell) does not;
* **the worker's report** (``dlgrade.graders.sandboxed_worker``, the child's import guard): a
  forbidden import attempted while the entry ran (which the guard refused), or
  one made while the submission loaded from a line that holds no import
  statement (a computed ``importlib.import_module(name)``).

A broken rule is a graded result worth 0 with one check, ``allowed imports``,
whose message says which import and where: "this exercise is numpy only:
`import torch` at line 3".
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace
from typing import Any

from dlgrade.graders.results import CheckResult, ExerciseResult

CHECK_NAME = "allowed imports"
_DYNAMIC = ("import_module", "__import__")  # importlib.import_module, builtins.__import__


@dataclass(frozen=True)
class ImportSite:
    """One place the source imports a forbidden module."""

    module: str  # as written: "torch.autograd"
    root: str  # the forbid_imports entry it falls under: "torch"
    file: str  # the shipped file ("softmax.py", "hw1_ipynb.py", "helper.py")
    line: int
    statement: str  # "import torch", "from torch import autograd", "importlib.import_module('torch')"
    reachable: bool = False  # the entry's code reaches it
    used: bool = True  # something in the submission uses what it binds

    @property
    def breaks_rule(self) -> bool:
        return self.reachable or not self.used


@dataclass(frozen=True)
class Violation:
    """A forbidden import the verdict names: where, what, and how it was found."""

    module: str
    file: str
    line: int | None
    statement: str
    found: str  # "source" | "running" (refused while the entry ran) | "loading" (computed at load)

    def as_dict(self) -> dict[str, Any]:
        return {"module": self.module, "file": self.file, "line": self.line, "statement": self.statement,
                "found": self.found}


# --------------------------------------------------------------------------- the source


@dataclass
class _Module:
    name: str  # shipped file name
    tree: ast.Module
    bindings: dict[str, list] = field(default_factory=dict)  # name -> nodes (or (node, alias)) binding it
    top: list = field(default_factory=list)  # top-level statements, compound bodies flattened


def _statement_text(node, alias=None) -> str:
    if isinstance(node, ast.Import):
        a = alias or node.names[0]
        return f"import {a.name}" + (f" as {a.asname}" if a.asname else "")
    if isinstance(node, ast.ImportFrom):
        names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in node.names)
        return f"from {'.' * node.level}{node.module or ''} import {names}"
    text = ast.unparse(node)
    return text if len(text) <= 80 else text[:79] + "…"


def _dynamic_import(node) -> str | None:
    """The constant module name of ``importlib.import_module("x")`` / ``__import__("x")``."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    f = node.func
    name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
    arg = node.args[0]
    if name in _DYNAMIC and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    return None


def _flatten(body):
    """Top-level statements, with the bodies of top-level if/try/with/for/while inlined."""
    for node in body:
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for attr in ("body", "orelse", "finalbody", "handlers"):
            children = getattr(node, attr, None)
            if isinstance(children, list):
                yield from _flatten(children)
        if isinstance(node, ast.Match):
            for case in node.cases:
                yield from _flatten(case.body)


def _target_names(target):
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for t in target.elts:
            yield from _target_names(t)
    elif isinstance(target, ast.Starred):
        yield from _target_names(target.value)


def _module(name: str, source: bytes) -> _Module | None:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None  # the job reports the syntax error
    m = _Module(name, tree)
    m.top = list(_flatten(tree.body))
    for node in m.top:
        bound: list = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound = [(node.name, node)]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                key = a.asname or (a.name.split(".")[0] if isinstance(node, ast.Import) else a.name)
                bound.append((key, (node, a)))
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound = [(n, node) for t in targets for n in _target_names(t)]
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            bound = [(n, node) for n in _target_names(node.target)]
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            bound = [(n, node) for item in node.items if item.optional_vars is not None
                     for n in _target_names(item.optional_vars)]
        for key, what in bound:
            m.bindings.setdefault(key, []).append(what)
    return m


def _names_in(node) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _imported(node, alias) -> str | None:
    """The absolute module an import statement's alias names (None for a relative import)."""
    if isinstance(node, ast.Import):
        return alias.name
    return node.module if not node.level else None


class _Scan:
    """The forbidden imports of one submission's files, and which of them the entry reaches."""

    def __init__(self, modules: dict[str, _Module], main: str, rules):
        self.modules, self.main, self.rules = modules, main, rules
        self.helpers = {n[:-3]: m for n, m in modules.items() if n != main}  # "helper" -> helper.py
        self.sites: dict[tuple, ImportSite] = {}

    def _key(self, m: _Module, node, alias) -> tuple:
        return (m.name, id(node), alias.name if alias is not None else "")

    def _site(self, m: _Module, node, alias=None, module: str | None = None) -> tuple | None:
        """Record the site if it imports a forbidden module; its key, or None."""
        module = module or (_imported(node, alias) if alias is not None else None)
        root = self.rules.forbidden(module) if module else None
        if root is None:
            return None
        key = self._key(m, node, alias)
        self.sites.setdefault(key, ImportSite(module, root, m.name, node.lineno, _statement_text(node, alias)))
        return key

    def _set(self, key, **changes) -> None:
        self.sites[key] = replace(self.sites[key], **changes)

    def collect(self) -> None:
        """Every site in every file, and whether it is ``used``.

        A module-level import of a forbidden package is used when other code of
        its file uses that package (through this import or another one of it:
        ``import torch`` next to a used ``import torch.nn.functional as F``), or
        when its file is no module the entry's file imports (another exercise's
        file in the folder). Only an import nothing uses breaks the rule by itself.
        """
        relevant = self._imported_by_main()
        for m in self.modules.values():
            nested: set[str] = set()  # roots imported inside functions and classes: that code uses them
            for node in ast.walk(m.tree):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    for a in node.names:
                        key = self._site(m, node, a if a.name != "*" else None,
                                         module=_imported(node, a) if a.name == "*" else None)
                        if key is not None and a.name == "*":
                            self._set(key, reachable=True)  # binds names no one can follow
                elif (name := _dynamic_import(node)) is not None:
                    self._site(m, node, module=name)
            top_keys: dict[tuple, tuple[set, ast.stmt]] = {}
            for stmt in m.top:
                bound = self._bound_by(stmt)
                if bound is None:
                    continue
                for node in ast.walk(stmt):
                    for a in (getattr(node, "names", None) or [None]):
                        if self._key(m, node, a) in self.sites:
                            top_keys[self._key(m, node, a)] = (bound, stmt)
            for key, site in self.sites.items():
                if site.file == m.name and key not in top_keys:
                    nested.add(site.root)
            used_roots = set(nested)
            for key, (bound, stmt) in top_keys.items():
                others = [t for t in m.top if t is not stmt and not any(n is stmt for n in ast.walk(t))]
                if bound and any(bound & _names_in(t) for t in others):
                    used_roots.add(self.sites[key].root)
            for key in top_keys:
                site = self.sites[key]
                self._set(key, used=site.root in used_roots or m.name not in relevant)

    def _imported_by_main(self) -> set[str]:
        """The entry's file and every shipped module it imports, directly or through another."""
        found, work = {self.main}, [self.modules[self.main]]
        while work:
            m = work.pop()
            for node in ast.walk(m.tree):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    for a in node.names:
                        helper = self.helpers.get((_imported(node, a) or "").split(".")[0])
                        if helper is not None and helper.name not in found:
                            found.add(helper.name)
                            work.append(helper)
        return found

    @staticmethod
    def _bound_by(stmt) -> set[str] | None:
        """The names a top-level import or assignment binds (None for other statements)."""
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            return {a.asname or (a.name.split(".")[0] if isinstance(stmt, ast.Import) else a.name)
                    for a in stmt.names}
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            return {n for t in targets for n in _target_names(t)}
        if isinstance(stmt, ast.Expr):
            return set()
        return None

    def reach(self, entry: str) -> None:
        """Mark ``reachable`` every site the code ``entry`` runs gets to, followed by name
        through the file's globals and into helper modules."""
        main = self.modules[self.main]
        work = [(main, b) for b in main.bindings.get(entry, [])]
        seen: set[int] = set()
        while work:
            m, what = work.pop()
            if id(what) in seen:
                continue
            seen.add(id(what))
            if isinstance(what, tuple):  # (import statement, alias) that binds a name the code uses
                work += self._through_import(m, *what, attr=None)
                continue
            bases = {}  # Name nodes used as `name.attr`: a helper module's attribute, followed alone
            for node in ast.walk(what):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                    bases[id(node.value)] = node.attr
            for node in ast.walk(what):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    for a in node.names:
                        work += self._through_import(m, node, a, attr=None)
                elif (name := _dynamic_import(node)) is not None:
                    key = self._site(m, node, module=name)
                    if key is not None:
                        self._set(key, reachable=True)
                elif isinstance(node, ast.Name):
                    for b in m.bindings.get(node.id, []):
                        if isinstance(b, tuple) and id(node) in bases:
                            work += self._through_import(m, *b, attr=bases[id(node)])
                        else:
                            work.append((m, b))

    def _through_import(self, m: _Module, node, alias, attr: str | None) -> list:
        """Reaching an import: its site, if forbidden; else what it brings in from a helper module."""
        if alias is not None and alias.name == "*":
            helper = self.helpers.get((_imported(node, alias) or "").split(".")[0])
            return [(helper, b) for bs in helper.bindings.values() for b in bs] if helper else []
        key = self._site(m, node, alias)
        if key is not None:
            self._set(key, reachable=True)
            return []
        helper = self.helpers.get((_imported(node, alias) or "").split(".")[0])
        if helper is None:
            return []
        if isinstance(node, ast.ImportFrom):
            names = [alias.name]
        else:
            names = [attr] if attr is not None and attr in helper.bindings else list(helper.bindings)
        return [(helper, b) for n in names for b in helper.bindings.get(n, [])]


def import_sites(files: dict[str, bytes], main: str, entry: str, rules) -> list[ImportSite]:
    """Every forbidden import in the shipped Python files, marked ``reachable`` (the
    entry's code gets to it) and ``used`` (other code uses what it binds).

    ``files`` are the files shipped for the exercise (name -> bytes); ``main`` the
    one defining ``entry``; ``rules`` the exercise's :class:`~dlgrade.graders.spec.Rules`.
    Files that do not parse are skipped (the job reports their syntax error).
    """
    modules = {n: m for n, data in files.items() if n.endswith(".py") for m in [_module(n, data)] if m}
    if main not in modules or not rules.forbid_imports:
        return []
    scan = _Scan(modules, main, rules)
    scan.collect()
    scan.reach(entry)
    return sorted(scan.sites.values(), key=lambda s: (s.file != main, s.file, s.line, s.module))


# --------------------------------------------------------------------------- the verdict


def violations(sites: list[ImportSite], journal: list[dict] = (), files: dict[str, bytes] | None = None) -> list[Violation]:
    """The forbidden imports that break the rule: from the source (``sites``) and from
    the worker's ``import`` records in the job's ``journal``."""
    found = [Violation(s.module, s.file, s.line, s.statement, "source") for s in sites if s.breaks_rule]
    at_sites = {(s.file, s.line) for s in sites}
    for rec in journal:
        if rec.get("step") != "import" or not isinstance(rec.get("module"), str):
            continue
        phase = rec.get("phase")
        file, line = str(rec.get("file") or ""), rec.get("line") if type(rec.get("line")) is int else None
        if phase == "load" and (file, line) in at_sites:
            continue  # an import statement the source scan judged already
        if phase not in ("load", "call"):
            continue
        found.append(Violation(rec["module"], file, line, _line_text(files, file, line) or f"import {rec['module']}",
                               "running" if phase == "call" else "loading"))
    unique, keys = [], set()
    for v in found:
        if (v.file, v.line, v.module) not in keys:
            keys.add((v.file, v.line, v.module))
            unique.append(v)
    return unique


def _line_text(files, file: str, line: int | None) -> str:
    if not files or not line or file not in files:
        return ""
    lines = files[file].decode("utf-8", "replace").splitlines()
    text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    return text if len(text) <= 80 else text[:79] + "…"


def rule_message(reason: str, v: Violation, source) -> str:
    """``this exercise is numpy only: `import torch` at line 3`` (a notebook's cell, a helper's file)."""
    if v.line is None:
        where = f"while {source.main_name if v.file == source.main_name else v.file} ran" if v.file else "while it ran"
        return f"{reason}: `{v.statement}` {where}"
    if v.file == source.main_name:
        where = source.location(v.line) if hasattr(source, "location") else f"line {v.line}"
    else:
        where = f"line {v.line} of {v.file}"
    own = f"{v.module.split('.')[0]}.py"
    if own in getattr(source, "files", {}):  # the student's own module, named like the library
        return f"{reason}: `{v.statement}` at {where} (rename your {own}: {own[:-3]} is a library this exercise forbids)"
    return f"{reason}: `{v.statement}` at {where}"


def rules_result(ex, source, found: list[Violation], base: dict) -> ExerciseResult:
    """The graded result of a submission that broke the exercise's rules: 0 points, one
    failed check that names the first forbidden import (all of them in its details)."""
    first = found[0]
    details: dict[str, Any] = {"rule": "forbid_imports", **first.as_dict(),
                               "violations": [v.as_dict() for v in found]}
    if first.file != source.main_name:
        details.pop("line")  # an annotation's line is in the main file
    check = CheckResult(name=CHECK_NAME, passed=False, score=0.0, max_score=ex.max_score,
                        message=rule_message(ex.rules.reason, first, source), details=details, kind="rules")
    return ExerciseResult(status="graded", checks=(check,), **base)


__all__ = ["ImportSite", "Violation", "import_sites", "violations", "rules_result", "rule_message", "CHECK_NAME"]
