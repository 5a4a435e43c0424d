"""Finding a student's answers: ``.py`` files, notebooks, ``.txt``/``.tex`` expressions, folders.

Nothing here runs student code. Entries are found by reading the source
(``ast`` for Python, cell sources for notebooks, file names for expressions);
notebooks are turned into a plain ``.py`` whose lines map back to cells
(dlgrade.graders.notebook: run as Jupyter runs them). Files are read by descriptor, never
through a symbolic link (see "reading files" below).
"""
from __future__ import annotations

import ast
import errno
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from dlgrade.graders.notebook import MODULE_SUFFIX, MalformedNotebook, Notebook, convert as convert_notebook
from dlgrade.graders.errors import SubmissionProblem, UserError

SUFFIXES = (".py", ".ipynb", ".txt", ".tex")
MAX_FILE_BYTES = 2 * 2**20  # a .py, .txt or .tex file
# A notebook as stored: Colab keeps every figure in it as base64, so the file may be
# large while its code is small. The limit that matters is on the code cells.
MAX_NOTEBOOK_BYTES = 64 * 2**20
MAX_CODE_BYTES = 2 * 2**20  # a notebook's code cells, as the Python module graded
MAX_FILES = 200  # candidate files read in one submission folder
MAX_TOTAL_BYTES = 256 * 2**20  # all of them together


class SubmissionError(UserError):
    """A path that is no submission at all (it does not exist, or is no .py/.ipynb/.txt/.tex
    file or folder): a usage error. A malformed notebook raises it from notebook_to_python."""


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
    """The code cells of a notebook as one module (see dlgrade.graders.notebook) and its line map.

    Raises SubmissionError for a file that is not a readable notebook.
    """
    nb = read_notebook(raw, name)
    return nb.source, nb.line_map


def read_notebook(raw: bytes, name: str) -> Notebook:
    """dlgrade.graders.notebook.convert, its refusal as a SubmissionError."""
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


# --------------------------------------------------------------------------- reading files
#
# A submission is the regular files inside it (CONTRACT §5). Every read goes
# through a descriptor: the submission's folder is opened once, each file in
# it is opened relative to that descriptor with O_NOFOLLOW (a symbolic link is
# refused, never followed, not even to look at what it points to), without
# blocking (a FIFO is refused, not waited on), checked to be a regular file
# with fstat, and read up to its limit and no further.

_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
          | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
_DIR_FLAGS = _FLAGS | getattr(os, "O_DIRECTORY", 0)


@dataclass(frozen=True)
class Refusal:
    """Why a file, or a whole submission, is not graded: a graded ``error`` for the student.

    ``kind`` is ``symlink``, ``not-regular``, ``too-large``, ``unreadable``,
    ``malformed-notebook`` or ``too-many-files``; ``message`` is the one line
    the student reads (it never holds anything read through a link).
    """

    file: str
    kind: str
    message: str


class LoadFailure(SubmissionProblem):
    """An exercise's files cannot be shipped: it is graded as an ``error`` carrying the refusal."""

    def __init__(self, refusal: Refusal):
        super().__init__(refusal.message)
        self.refusal = refusal


@dataclass
class SubmittedFile:
    """One candidate file of a submission, as read (or refused)."""

    name: str  # the file's name in its folder
    display: str  # how a person names it: the path given, or relative to the class folder
    data: bytes | None = None
    refusal: Refusal | None = None

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix

    @property
    def stem(self) -> str:
        return Path(self.name).stem


def _limit_for(name: str) -> int:
    return MAX_NOTEBOOK_BYTES if name.endswith(".ipynb") else MAX_FILE_BYTES


def _refuse_link(display: str, folder: bool) -> Refusal:
    return Refusal(display, "symlink",
                   f"{display} is a symbolic link; submit the {'folder' if folder else 'file'} itself")


def _too_large(display: str, size: int, limit: int) -> Refusal:
    return Refusal(display, "too-large", f"{display}: file too large ({size} bytes; the limit is {limit})")


def _read_fd(fd: int, display: str, limit: int) -> tuple[bytes | None, Refusal | None]:
    """At most ``limit`` bytes of an open regular file, or why not."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        return None, Refusal(display, "not-regular",
                             f"{display} is not a regular file; submit the file itself")
    if st.st_size > limit:
        return None, _too_large(display, st.st_size, limit)
    chunks, got = [], 0
    while got <= limit:
        chunk = os.read(fd, min(1 << 20, limit + 1 - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    if got > limit:  # it grew while we read it
        return None, _too_large(display, got, limit)
    return b"".join(chunks), None


def _unreadable(display: str, exc: OSError) -> Refusal:
    return Refusal(display, "unreadable", f"{display}: cannot be read ({exc.strerror or exc})")


def printable_name(name: str) -> str:
    """A file or folder name a student chose, safe to print and to write into any report:
    control characters, bidirectional overrides and undecodable bytes shown as escapes."""
    from dlgrade.graders.decoding import clean_text

    return clean_text(name, limit=None)


class _LinkInPath(Exception):
    """A component of a submission's path is a symbolic link."""

    def __init__(self, component: Path, last: bool):
        super().__init__(str(component))
        self.component, self.last = component, last


_LINK_ERRNOS = {errno.ELOOP, getattr(errno, "EMLINK", errno.ELOOP)}


def _open_submission(path: Path) -> int:
    """A descriptor for ``path``, opened without following a symbolic link in any part
    of it a student could have made: every component below the working directory
    (where CI checks the student's repository out), or the last one of a path
    outside it. Raises _LinkInPath, or OSError.
    """
    absolute = Path(os.path.abspath(path))
    cwd = Path(os.getcwd())
    try:
        if cwd.parent == cwd:  # run from "/": the system's own links (macOS's /tmp) are no student's
            raise ValueError
        parts, anchor = absolute.relative_to(cwd).parts, cwd
    except ValueError:
        parts, anchor = (absolute.name,), absolute.parent
    fd = os.open(anchor, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                nxt = os.open(part, _FLAGS if last else _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in _LINK_ERRNOS or (exc.errno == errno.ENOTDIR and os.path.islink(
                        anchor.joinpath(*parts[: i + 1]))):
                    raise _LinkInPath(anchor.joinpath(*parts[: i + 1]), last) from None
                raise
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


class Submission:
    """One student's submission: a file or a folder of files, read without following links.

    Raises SubmissionError only when the path does not exist or is a file that
    is no submission (a usage error). Anything else that keeps a file from
    being graded (a symbolic link, a FIFO, a file over a limit, a malformed
    notebook) is a :class:`Refusal`, graded as an ``error`` result.
    """

    def __init__(self, path: Path | str, student: str | None = None, display_root: Path | None = None):
        self.path = Path(path)
        try:
            st = os.lstat(self.path)
        except OSError:
            raise SubmissionError(f"{self.path}: no such file or folder") from None
        self.is_link = stat.S_ISLNK(st.st_mode)
        self.is_file = (self.path.suffix in SUFFIXES) if self.is_link else not stat.S_ISDIR(st.st_mode)
        if self.is_file and not self.is_link and self.path.suffix not in SUFFIXES:
            raise SubmissionError(
                f"{self.path}: not a submission (expected {', '.join(SUFFIXES)} or a folder)")
        self.student = student or printable_name(self.path.stem if self.is_file else self.path.name)
        self.display_root = display_root
        self._refusal: Refusal | None = None
        self._files: list[SubmittedFile] | None = None
        self._py_cache: dict[str, tuple[str, list] | Refusal] = {}
        self._notebooks: dict[str, Notebook] = {}  # a converted notebook: its notes and written files

    @property
    def refusal(self) -> Refusal | None:
        """Why the whole submission cannot be read (a link, an unreadable folder), or None."""
        self.files()
        return self._refusal

    def display(self, name: str | None = None) -> str:
        """A file of the submission (or the submission itself) as a person names it
        (control characters and undecodable bytes of a file name shown as escapes)."""
        p = self.path if name is None or self.is_file else self.path / name
        if self.display_root is not None:
            try:
                return printable_name(str(p.relative_to(self.display_root)))
            except ValueError:
                pass
        return printable_name(str(p))

    def files(self) -> list[SubmittedFile]:
        """The candidate files (``.py``, ``.ipynb``, ``.txt``, ``.tex``, not hidden), sorted
        by name, each read or refused; empty when the whole submission is refused."""
        if self._files is None:
            self._files = self._read_all()
        return self._files

    def _read_all(self) -> list[SubmittedFile]:
        me = self.display()
        try:
            fd = _open_submission(self.path)
        except _LinkInPath as exc:
            shown = me if exc.last else self._display_path(exc.component)
            self._refusal = _refuse_link(shown, folder=not (exc.last and self.is_file))
            return []
        except OSError as exc:
            self._refusal = _unreadable(me, exc)
            return []
        try:
            if self.is_file:
                data, refusal = _read_fd(fd, me, _limit_for(self.path.name))
                if refusal is not None:
                    self._refusal = refusal
                    return []
                return [SubmittedFile(self.path.name, me, data)]
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                self._refusal = Refusal(me, "not-regular", f"{me} is not a file or a folder")
                return []
            return self._read_folder(fd)
        finally:
            os.close(fd)

    def _display_path(self, absolute: Path) -> str:
        """A folder on the submission's path, named the way the submission was."""
        if self.display_root is not None:
            try:
                return printable_name(str(absolute.relative_to(Path(os.path.abspath(self.display_root)))))
            except ValueError:
                pass
        return printable_name(str(absolute) if self.path.is_absolute() else os.path.relpath(absolute))

    def _read_folder(self, dfd: int) -> list[SubmittedFile]:
        try:
            names = sorted(n for n in os.listdir(dfd)
                           if Path(n).suffix in SUFFIXES and not n.startswith("."))
        except OSError as exc:
            self._refusal = _unreadable(self.display(), exc)
            return []
        found, total = [], 0
        for i, name in enumerate(names):
            shown = self.display(name)
            if i >= MAX_FILES:
                found.append(SubmittedFile(name, shown, refusal=Refusal(
                    shown, "too-many-files",
                    f"{shown}: not read (a submission holds at most {MAX_FILES} files)")))
                continue
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except OSError as exc:
                found.append(SubmittedFile(name, shown, refusal=_unreadable(shown, exc)))
                continue
            if stat.S_ISLNK(st.st_mode):
                found.append(SubmittedFile(name, shown, refusal=_refuse_link(shown, folder=False)))
                continue
            if stat.S_ISDIR(st.st_mode):
                continue  # a folder named like a file is not one
            try:
                fd = os.open(name, _FLAGS, dir_fd=dfd)
            except OSError as exc:
                refusal = _refuse_link(shown, folder=False) if exc.errno == errno.ELOOP else _unreadable(shown, exc)
                found.append(SubmittedFile(name, shown, refusal=refusal))
                continue
            try:
                data, refusal = _read_fd(fd, shown, min(_limit_for(name), MAX_TOTAL_BYTES - total))
            except OSError as exc:
                data, refusal = None, _unreadable(shown, exc)
            finally:
                os.close(fd)
            if refusal is not None and refusal.kind == "too-large" and total:
                refusal = Refusal(shown, "too-large", f"{shown}: not read (the submission's files hold more "
                                                      f"than {MAX_TOTAL_BYTES} bytes in all)")
            total += len(data or b"")
            found.append(SubmittedFile(name, shown, data, refusal))
        return found

    def python_of(self, f: SubmittedFile) -> tuple[str, list]:
        """The file as Python source (notebooks converted) and its notebook line map.

        Raises LoadFailure for a file that was refused or is a malformed or oversized notebook.
        """
        got = self._conversion(f)
        if isinstance(got, Refusal):
            raise LoadFailure(got)
        return got

    def _conversion(self, f: SubmittedFile) -> tuple[str, list] | Refusal:
        if f.refusal is not None:
            return f.refusal
        if f.name not in self._py_cache:
            self._py_cache[f.name] = self._convert(f)
        return self._py_cache[f.name]

    def _convert(self, f: SubmittedFile) -> tuple[str, list] | Refusal:
        if f.suffix != ".ipynb":
            return f.data.decode("utf-8", "replace"), []
        try:
            nb = read_notebook(f.data, f.display)
        except SubmissionError as exc:
            return Refusal(f.display, "malformed-notebook", str(exc))
        self._notebooks[f.name] = nb
        source, line_map = nb.source, nb.line_map
        size = len(source.encode("utf-8"))
        if size > MAX_CODE_BYTES:
            return Refusal(f.display, "too-large", f"{f.display}: the notebook's code cells hold {size} bytes "
                                                   f"(the limit is {MAX_CODE_BYTES})")
        return source, line_map

    def _readable_python(self):
        for f in self.files():
            if f.suffix in (".py", ".ipynb"):
                got = self._conversion(f)
                if not isinstance(got, Refusal):
                    yield f, got

    def entries(self) -> set[str]:
        """Every entry name the readable files define (functions, strings, expression files)."""
        names: set[str] = set()
        for f in self.files():
            if f.suffix in (".txt", ".tex") and f.refusal is None:
                names.add(f.stem)
        for _, (source, _) in self._readable_python():
            names |= defined_names(source)
        return names

    def guessed_entries(self) -> set[str]:
        """Entry names the files that could not be read may hold: a refused file's stem
        (``softmax.py``), and the names a malformed notebook's raw text defines. They pick
        which exercises to report an error for; nothing is graded from them."""
        names: set[str] = set()
        if self.refusal is not None:
            names.add(self.path.stem)
        for f in self.files():
            if f.refusal is not None:
                names.add(f.stem)
            elif f.suffix == ".ipynb" and isinstance(self._conversion(f), Refusal):
                text = f.data.decode("utf-8", "replace")
                names |= set(re.findall(r"def\s+([A-Za-z_]\w*)\s*\(", text))
                names |= set(re.findall(r'(?:^|\\n|")([A-Za-z_]\w*)\s*=\s*[rRbBuUfF]*[\'"]', text))
        return names

    def refusals(self) -> list[Refusal]:
        """Every refusal: the whole submission's, or each refused file's (notebooks included)."""
        if self.refusal is not None:
            return [self.refusal]
        found = []
        for f in self.files():
            if f.suffix in (".py", ".ipynb"):
                got = self._conversion(f)
                if isinstance(got, Refusal):
                    found.append(got)
            elif f.refusal is not None:
                found.append(f.refusal)
        return found

    def source_for(self, entry: str, direct_text: bool = False) -> SubmissionSource | None:
        """The source that defines ``entry``, or None if the submission has none.

        ``direct_text``: a single .txt/.tex file passed with ``--exercise`` holds
        the expression whatever its name. Raises LoadFailure when the submission,
        the file that may define ``entry`` or a helper module shipped with it was
        refused (nothing read through a link is ever shipped).
        """
        if self.refusal is not None:
            raise LoadFailure(self.refusal)
        files = self.files()
        for f in files:
            if f.suffix in (".txt", ".tex") and (f.stem == entry or (direct_text and self.is_file)):
                if f.refusal is not None:
                    raise LoadFailure(f.refusal)
                return SubmissionSource(f.display, f.name, {}, "text", text=f.data.decode("utf-8", "replace"))
        for f, (source, line_map) in self._readable_python():
            if entry not in defined_names(source):
                continue
            main = f.name if f.suffix == ".py" else f.stem.replace(" ", "_") + MODULE_SUFFIX
            shipped = {main: source.encode("utf-8")}
            for other in files:  # helper modules next to it may be imported
                if other.suffix == ".py" and other.name != f.name:
                    if other.refusal is not None:
                        raise LoadFailure(other.refusal)
                    shipped.setdefault(other.name, other.data)
            return SubmissionSource(f.display, main, shipped,
                                    "ipynb" if f.suffix == ".ipynb" else "py", line_map=line_map,
                                    notebook=self._notebooks.get(f.name))
        refused = self.refusals()
        if refused:  # the entry may be in a file that could not be read
            raise LoadFailure(refused[0])
        return None
