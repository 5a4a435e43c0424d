"""Turning a notebook into one Python module that runs the way Jupyter runs its cells.

Nothing here runs student code: :func:`convert` rewrites the code cells, line for
line, into the source of a module that the sandboxed worker loads. Line ``n`` of
that module is line ``line_map[n - 1]`` of a cell, so every message can name the
notebook's own (cell, line). The rewriting never adds or removes a line inside a
cell; what IPython would do with a magic is written on the magic's own line:

* ``%%time``, ``%%timeit`` (its body runs once; setup code on the magic line runs
  first) and ``%%prun``: the body runs as ordinary code;
* ``%%capture [--no-stdout] [--no-stderr] [--no-display] [name]``: the body runs
  with its output captured, and ``name`` holds it (``.stdout``, ``.stderr``,
  ``.show()``), as IPython's ``CapturedIO`` does;
* ``%%writefile [-a] NAME`` (and its alias ``%%file``): the cell's text is written
  to ``NAME`` in the job's scratch folder at that point, so a later
  ``from helpers import relu`` finds it; IPython's "Writing NAME" is printed;
* any other cell magic (``%%bash``, ``%%html``, ``%%sql``...) is not run: a note in
  :attr:`Notebook.notes` says so, and the grader puts it in the result;
* line magics and shell lines (``%matplotlib inline``, ``!pip install``, ``%pip``,
  ``x?``) are not run either, except those that run Python: ``%time STMT``,
  ``%timeit STMT`` (once) and ``%prun STMT`` run ``STMT``; ``%run script.py``
  runs the script (shipped with the notebook) and keeps its names, as
  ``%run`` does; in an assignment, ``x = %time f(x)`` assigns ``f(x)``,
  ``files = !ls`` an empty list and any other magic None.

The worker (``graders/sandboxed_worker.py``) recognises such a module by its name (it ends
in :data:`MODULE_SUFFIX`) and gives it what Jupyter gives a notebook: the runtime
the rewritten magics call (``_dlgrade_nb``), ``display`` and ``get_ipython`` as
builtins, and a stand-in ``IPython.display`` where IPython is not installed. A
``from __future__`` import after the module's first statement cannot stay (Python
takes them only at the top): it becomes ``pass``.
"""
from __future__ import annotations

import io
import json
import re
import shlex
import tokenize
from dataclasses import dataclass, field

from dlgrade.graders.errors import SubmissionProblem

MODULE_SUFFIX = "_ipynb.py"  # a converted notebook's file name ends so (graders/sandboxed_worker.py relies on it)
RUNTIME_NAME = "_dlgrade_nb"  # the worker's notebook runtime, as the converted module calls it

# cell magics whose body is Python that runs in the notebook's namespace
RUN_BODY = ("time", "timeit", "prun")
WRITEFILE = ("writefile", "file")
RUNS = "%%time, %%timeit, %%capture and %%writefile cells"
SKIPPED_CELL = "cell {cell}: skipped the %%{magic} cell (dlgrade runs Python cells only, {runs} included)"

_LINE_MAGIC = re.compile(r"^(?P<indent>\s*)(?P<mark>%{1,2}|!)")
_STATEMENT_MAGIC = re.compile(r"^(?P<indent>\s*)%(?P<name>time|timeit|prun)\b(?P<rest>.*)$")
_RUN_MAGIC = re.compile(r"^(?P<indent>\s*)%run\b(?P<rest>.*)$")
# x = %time f(x), files = !ls: IPython assigns what the magic returns
_ASSIGN_MAGIC = re.compile(r"^(?P<indent>\s*)(?P<target>[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*)\s*=\s*"
                           r"(?P<mark>%{1,2}|!)(?P<rest>.*)$")
_HELP = re.compile(r"^\s*[\w.\[\]()]*\?{1,2}\s*$|^\s*\?{1,2}[\w.]+\s*$")
_FUTURE = re.compile(r"^from\s+__future__\s+import\s+(?P<names>[\w\s,()]+?)\s*(?:#.*)?$")
_MAGIC_NAME = re.compile(r"^%%(?P<name>[A-Za-z_][\w.-]*)(?P<rest>.*)$")
# options of %%timeit / %timeit that take a value (-n 10, -r3, -p 4)
_TIMEIT_VALUED = {"-n", "-r", "-p"}
_TIMEIT_FLAGS = {"-t", "-c", "-q", "-o"}
_PRUN_VALUED = {"-D", "-T", "-l", "-s"}
_PRUN_FLAGS = {"-r", "-q"}


class MalformedNotebook(SubmissionProblem, ValueError):
    """The file is not a notebook dlgrade can read; the message names it and says why."""


@dataclass
class Notebook:
    """A notebook as one module: its ``source``, the (cell, line) of each of its lines,
    the notes a student should see (cell magics not run) and, for each file a
    ``%%writefile`` cell writes, the (cell, line) of each of that file's lines."""

    source: str
    line_map: list[tuple[int, int]]
    notes: tuple[str, ...] = ()
    written: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def position(self, line: int, file: str | None = None) -> tuple[int, int] | None:
        """The (cell, line) of ``line`` in the module, or in a file a cell wrote; None if unknown."""
        table = self.line_map if file is None else self.written.get(file)
        if table is None or not isinstance(line, int) or not 0 < line <= len(table):
            return None
        return table[line - 1]


def read_cells(raw: bytes, name: str) -> list[tuple[int, list[str]]]:
    """``(cell number, lines)`` of every code cell (numbered among all cells, from 1).

    Raises MalformedNotebook for a file that is not a readable notebook.
    """
    try:
        nb = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedNotebook(f"{name}: malformed notebook (not valid JSON: {exc})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise MalformedNotebook(f"{name}: malformed notebook (no list of cells)")
    cells = []
    for ci, cell in enumerate(nb["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        if isinstance(src, list):
            if not all(isinstance(s, str) for s in src):
                raise MalformedNotebook(f"{name}: malformed notebook (cell {ci} has a bad source)")
            src = "".join(src)
        if not isinstance(src, str):
            raise MalformedNotebook(f"{name}: malformed notebook (cell {ci} has a bad source)")
        cells.append((ci, src.splitlines()))
    return cells


def convert(raw: bytes, name: str) -> Notebook:
    """The code cells of a notebook as one module that runs them as Jupyter would.

    Raises MalformedNotebook for a file that is not a readable notebook.
    """
    lines: list[str] = []
    line_map: list[tuple[int, int]] = []
    notes: list[str] = []
    written: dict[str, list[tuple[int, int]]] = {}
    top = [True]  # no statement yet: a __future__ import may stay
    for ci, cell_lines in read_cells(raw, name):
        lines += _convert_cell(ci, cell_lines, notes, top, written)
        line_map += [(ci, li) for li in range(1, len(cell_lines) + 2)]
    return Notebook("\n".join(lines) + "\n", line_map, tuple(notes), written)


def _convert_cell(ci: int, cell_lines: list[str], notes: list, top: list, written: dict) -> list[str]:
    """The cell's lines rewritten, plus one line after them (a blank, or the end of a
    ``%%capture``); as many lines as the cell has, plus one."""
    first = next((i for i, ln in enumerate(cell_lines) if ln.strip()), None)
    magic = _MAGIC_NAME.match(cell_lines[first].lstrip()) if first is not None else None
    if magic is None:
        return _python_lines(cell_lines, top) + [""]
    top[0] = False
    name, rest = magic.group("name"), magic.group("rest").strip()
    before, body = cell_lines[:first], cell_lines[first + 1:]
    shown = f"# %%{name}{' ' + rest if rest else ''}"
    if name in RUN_BODY:
        setup = _timeit_statement(rest) if name == "timeit" else ""
        head = f"{setup}  {shown}" if setup else f"pass  {shown}"
        return before + [head] + _python_lines(body, top) + [""]
    if name == "capture":
        target, kwargs = _capture_args(rest)
        call = f"{RUNTIME_NAME}.capture_start({kwargs})"
        head = f"{target} = {call}" if target else call
        return before + [f"{head}  {shown}"] + _python_lines(body, top) + [f"{RUNTIME_NAME}.capture_end()"]
    if name in WRITEFILE:
        target, append = _writefile_args(rest)
        if target is not None:
            text = "\n".join(body) + "\n"
            name_code = _expanded(target)
            head = f"{RUNTIME_NAME}.writefile({name_code}, {text!r}, append={append})  {shown}"
            key = _plain_file(target) if name_code == repr(target) else None
            if key is not None:
                start = first + 2  # the body's first line, in the cell
                rows = [(ci, start + k) for k in range(len(body))]
                written[key] = (written.get(key, []) if append else []) + rows
            return before + [head] + ["# " + ln for ln in body] + [""]
    notes.append(SKIPPED_CELL.format(cell=ci, magic=name, runs=RUNS))
    return before + [f"pass  {shown}  (not run)"] + ["# " + ln for ln in body] + [""]


def _python_lines(cell_lines: list[str], top: list) -> list[str]:
    """Python lines with line magics, shell lines and help queries made harmless (or run)."""
    out = []
    inside = _continuation_lines(cell_lines)
    continued = False  # the previous line was a magic ending in a backslash
    for i, line in enumerate(cell_lines):
        if continued:
            out.append("# " + line)
            continued = line.rstrip().endswith("\\")
            continue
        if i in inside:  # a string's or a bracket's continuation: not a magic
            out.append(line)
            continue
        out.append(_python_line(line, top))
        if out[-1] != line and _LINE_MAGIC.match(line):
            continued = line.rstrip().endswith("\\")
    return out


def _python_line(line: str, top: list) -> str:
    stripped = line.strip()
    indent = line[:len(line) - len(line.lstrip())]
    if _FUTURE.match(line):
        return line if top[0] else f"pass  # {line}  (Python takes it only at the top of a module)"
    if stripped and not stripped.startswith("#"):
        top[0] = False
    m = _STATEMENT_MAGIC.match(line)
    if m:
        stmt = m.group("rest").strip()
        if m.group("name") == "timeit":
            stmt = _timeit_statement(stmt)
        elif m.group("name") == "prun":
            stmt = _strip_options(stmt, _PRUN_VALUED, _PRUN_FLAGS)
        return f"{m.group('indent')}{stmt}  # %{m.group('name')}" if stmt else f"{indent}pass  # {stripped}"
    m = _ASSIGN_MAGIC.match(line)
    if m and not m.group("rest").startswith("="):  # not x == ...
        return _assigned_magic(m, stripped)
    m = _RUN_MAGIC.match(line)
    if m:
        call = _run_call(m.group("rest").strip())
        if call:
            return f"{m.group('indent')}{call}  # {stripped}"
    if _LINE_MAGIC.match(line) or (_HELP.match(line) and not stripped.startswith("#")):
        return f"{indent}pass  # {stripped}"
    return line


def _assigned_magic(m, stripped: str) -> str:
    """``x = %time f(x)`` runs ``x = f(x)`` (%time returns the value); ``files = !ls``
    assigns an empty list (IPython's list of output lines, here none); other magics None."""
    indent, target, rest = m.group("indent"), m.group("target"), m.group("rest").strip()
    if m.group("mark") == "!":
        return f"{indent}{target} = []  # {stripped}"
    name, _, stmt = rest.partition(" ")
    if m.group("mark") == "%" and name == "time" and stmt.strip():
        return f"{indent}{target} = {stmt.strip()}  # %time"
    return f"{indent}{target} = None  # {stripped}"


def _continuation_lines(cell_lines: list[str]) -> set[int]:
    """Indices of the lines that continue a logical line (inside brackets, a multi-line
    string, after a backslash): IPython only takes a magic at the start of a logical line."""
    inside: set[int] = set()
    start = None
    skip = (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING)
    try:
        for tok in tokenize.generate_tokens(io.StringIO("\n".join(cell_lines) + "\n").readline):
            if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                if start is not None:
                    inside.update(range(start, tok.start[0]))  # rows start+1.., 0-based
                start = None
            elif start is None and tok.type not in skip:
                start = tok.start[0]
    except (tokenize.TokenError, SyntaxError):
        pass  # an unclosed bracket or string: take every line as a logical line's start
    return inside


def _split(rest: str) -> list[str] | None:
    try:
        return shlex.split(rest, posix=True)
    except ValueError:
        return None


def _strip_options(rest: str, valued: set, flags: set) -> str:
    """The statement after a magic's options: ``-n 10 -r3 f(x)`` -> ``f(x)``."""
    s = rest.strip()
    while s.startswith("-"):
        opt, _, after = s.partition(" ")
        if opt in valued:  # -n 10
            s = after.lstrip().partition(" ")[2].lstrip()
        elif opt[:2] in valued or opt in flags:  # -n10, -q
            s = after.lstrip()
        else:
            break
    return s


def _timeit_statement(rest: str) -> str:
    return _strip_options(rest, _TIMEIT_VALUED, _TIMEIT_FLAGS)


def _capture_args(rest: str) -> tuple[str | None, str]:
    words = _split(rest) or []
    target = None
    kw = {"stdout": True, "stderr": True, "display": True}
    for w in words:
        if w in ("--no-stdout", "--no-stderr", "--no-display"):
            kw[w[5:]] = False
        elif w.isidentifier() and target is None:
            target = w
    return target, ", ".join(f"{k}={v}" for k, v in kw.items())


def _writefile_args(rest: str) -> tuple[str | None, bool]:
    words = _split(rest)
    if not words:
        return None, False
    append = False
    names = []
    for w in words:
        if w in ("-a", "--append"):
            append = True
        else:
            names.append(w)
    return (names[0] if len(names) == 1 else None), append


_VARIABLE = re.compile(r"\$(\w+)")


def _expanded(target: str) -> str:
    """The code for a magic's file name: IPython expands ``$name`` and ``{expression}``
    from the notebook's variables (``%%writefile $folder/train.py``), ``$$`` is a ``$``."""
    if "$" not in target and "{" not in target:
        return repr(target)
    fstring = _VARIABLE.sub(r"{\1}", target.replace("$$", "\0")).replace("\0", "$")
    return "f" + repr(fstring)


def _plain_file(target: str) -> str | None:
    """The file's name when it lands in the job folder itself (where tracebacks see it)."""
    t = target[2:] if target.startswith("./") else target
    return t if t and "/" not in t and t not in (".", "..") else None


def _run_call(rest: str) -> str | None:
    """``%run [-i] script.py args`` as a call of the worker's runner, or None (not run)."""
    words = _split(rest)
    if not words:
        return None
    in_namespace = False
    while words and words[0].startswith("-"):
        if words[0] != "-i":
            return None
        in_namespace = True
        words.pop(0)
    if not words or not words[0].endswith(".py"):
        return None
    return (f"{RUNTIME_NAME}.run({words[0]!r}, {words[1:]!r}, globals(), "
            f"in_namespace={in_namespace})")
