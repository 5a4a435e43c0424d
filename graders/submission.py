"""Finding a student's answers: ``.py`` files, notebooks, ``.txt``/``.tex`` expressions, folders.

Nothing here runs student code. Entries are found by reading the source
(``ast`` for Python, cell sources for notebooks, file names for expressions);
notebooks are turned into a plain ``.py`` whose lines map back to cells
(graders.notebook: run as Jupyter runs them).
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from graders.notebook import MODULE_SUFFIX, MalformedNotebook, Notebook, convert as convert_notebook

SUFFIXES = (".py", ".ipynb", ".txt", ".tex")
MAX_FILE_BYTES = 2 * 2**20


class SubmissionError(Exception):
    """A submission that cannot be read at all (bad path, malformed notebook)."""


@dataclass
class SubmissionSource:
    """What to ship to the worker for one exercise, and how to name it to a human."""

    display_name: str
    main_name: str
    files: dict[str, bytes]
    kind: str  # "py" | "ipynb" | "text"
    text: str | None = None  # the expression itself, for .txt/.tex
    line_map: list[tuple[int, int]] = field(default_factory=list)  # py line -> (cell, line)
    notebook: Notebook | None = None  # a converted notebook: its notes and written files

    @property
    def notes(self) -> tuple[str, ...]:
        """What a student should know about how the notebook was run (cell magics not run)."""
        return self.notebook.notes if self.notebook is not None else ()

    def _cell(self, line, line_file=None) -> tuple[int, int] | None:
        if self.kind != "ipynb":
            return None
        if self.notebook is None:  # built by hand with a bare line map
            ok = isinstance(line, int) and 0 < line <= len(self.line_map)
            return self.line_map[line - 1] if ok and line_file in (None, self.main_name) else None
        return self.notebook.position(line, None if line_file in (None, self.main_name) else line_file)

    def map_error(self, error: dict) -> None:
        """Add the notebook cell (1-based) and line in that cell to an error with a line
        (in the notebook, or in a file one of its %%writefile cells wrote)."""
        pos = self._cell(error.get("line"), error.get("line_file"))
        if pos is not None:
            error["cell"], error["cell_line"] = pos

    def location(self, line: int | None, line_file: str | None = None) -> str:
        """``cell 2, line 1`` in a notebook, else ``line 5`` (``helpers.py, line 5`` for
        another file of a notebook's job)."""
        pos = self._cell(line, line_file)
        if pos is not None:
            return f"cell {pos[0]}, line {pos[1]}"
        if self.kind == "ipynb" and line and line_file not in (None, self.main_name):
            return f"{line_file}, line {line}"
        return f"line {line}" if line else ""


def notebook_to_python(raw: bytes, name: str) -> tuple[str, list[tuple[int, int]]]:
    """The code cells of a notebook as one module (see graders.notebook) and its line map.

    Raises SubmissionError for a file that is not a readable notebook.
    """
    nb = read_notebook(raw, name)
    return nb.source, nb.line_map


def read_notebook(raw: bytes, name: str) -> Notebook:
    """graders.notebook.convert, its refusal as a SubmissionError."""
    try:
        return convert_notebook(raw, name)
    except MalformedNotebook as exc:
        raise SubmissionError(str(exc)) from None


def defined_names(source: str) -> set[str]:
    """Top-level functions and assignments; falls back to a regex on a syntax error."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        found = set(re.findall(r"^def\s+([A-Za-z_]\w*)", source, re.M))
        found |= set(re.findall(r"^([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)", source, re.M))
        return found
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    names.add(t.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
    return names


def literal_string(source: str, name: str) -> str | None:
    """The value of ``name = "..."`` at module level when it is a plain literal, else None.

    Only constant strings (and their implicit or ``+`` concatenation) count: this
    never evaluates anything.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    value = None
    for node in tree.body:
        targets = []
        if isinstance(node, ast.Assign):
            targets, expr = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, expr = [node.target], node.value
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            value = _const_str(expr)
    return value


def _const_str(node) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        a, b = _const_str(node.left), _const_str(node.right)
        return a + b if a is not None and b is not None else None
    return None


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SubmissionError(f"{path}: file too large ({size} bytes; the limit is {MAX_FILE_BYTES})")
        return path.read_bytes()
    except OSError as exc:
        raise SubmissionError(f"{path}: cannot be read ({exc.strerror or exc})") from None


class Submission:
    """One student's submission: a file or a folder of files."""

    def __init__(self, path: Path | str, student: str | None = None, display_root: Path | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise SubmissionError(f"{self.path}: no such file or folder")
        if self.path.is_file() and self.path.suffix not in SUFFIXES:
            raise SubmissionError(
                f"{self.path}: not a submission (expected {', '.join(SUFFIXES)} or a folder)")
        self.student = student or (self.path.stem if self.path.is_file() else self.path.name)
        self.display_root = display_root
        self._files: list[Path] | None = None
        self._py_cache: dict[Path, tuple[str, list]] = {}
        self._notebooks: dict[Path, Notebook] = {}

    def files(self) -> list[Path]:
        if self._files is None:
            if self.path.is_file():
                self._files = [self.path]
            else:
                try:
                    self._files = sorted(p for p in self.path.iterdir()
                                         if p.is_file() and p.suffix in SUFFIXES and not p.name.startswith("."))
                except OSError as exc:
                    raise SubmissionError(f"{self.path}: cannot be read ({exc.strerror})") from None
        return self._files

    def display(self, p: Path) -> str:
        if self.display_root is not None:
            try:
                return str(p.relative_to(self.display_root))
            except ValueError:
                pass
        return str(p)

    def python_of(self, p: Path) -> tuple[str, list]:
        """The file as Python source (notebooks converted) and its notebook line map."""
        if p not in self._py_cache:
            raw = _read(p)
            if p.suffix == ".ipynb":
                nb = self._notebooks[p] = read_notebook(raw, self.display(p))
                self._py_cache[p] = (nb.source, nb.line_map)
            else:
                self._py_cache[p] = (raw.decode("utf-8", "replace"), [])
        return self._py_cache[p]

    def entries(self) -> set[str]:
        """Every entry name this submission defines (functions, strings, expression files)."""
        names: set[str] = set()
        for p in self.files():
            if p.suffix in (".txt", ".tex"):
                names.add(p.stem)
            else:
                names |= defined_names(self.python_of(p)[0])
        return names

    def source_for(self, entry: str, direct_text: bool = False) -> SubmissionSource | None:
        """The source that defines ``entry``, or None if the submission has none.

        ``direct_text``: a single .txt/.tex file passed with ``--exercise`` holds
        the expression whatever its name.
        """
        files = self.files()
        for p in files:
            if p.suffix in (".txt", ".tex") and (p.stem == entry or (direct_text and self.path.is_file())):
                text = _read(p).decode("utf-8", "replace")
                return SubmissionSource(self.display(p), p.name, {}, "text", text=text)
        for p in files:
            if p.suffix not in (".py", ".ipynb"):
                continue
            source, line_map = self.python_of(p)
            if entry not in defined_names(source):
                continue
            main = p.name if p.suffix == ".py" else p.stem.replace(" ", "_") + MODULE_SUFFIX
            shipped = {main: source.encode("utf-8")}
            for other in files:  # helper modules next to it may be imported
                if other.suffix == ".py" and other != p:
                    shipped.setdefault(other.name, _read(other))
            return SubmissionSource(self.display(p), main, shipped,
                                    "ipynb" if p.suffix == ".ipynb" else "py", line_map=line_map,
                                    notebook=self._notebooks.get(p))
        return None
