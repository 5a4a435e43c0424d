"""Starter files and notebooks for `dlgrade init`."""
from __future__ import annotations

from pathlib import Path

from dlgrade.graders.errors import UserError
from dlgrade.graders.spec import Exercise


class NoStarter(UserError):
    """The exercise gives no starter.py to copy (exit 2)."""

# A starter notebook's last two cells: it checks itself from its kernel (graders/kernel_check.py)
CHECK_NOTE = ("Run the cells above, then the next one to check your answer here "
              "(from a terminal: `dlgrade check {name}`).")
CHECK_CELL = "%load_ext dlgrade\n%dlgrade check {id}"


def write_starter(ex: Exercise, dest: str | None, notebook: bool = False, force: bool = False) -> Path:
    """Write the exercise's starter as ``.py`` or ``.ipynb``; returns the path written.
    A notebook's last cell checks it from its kernel (``%dlgrade check ID``).

    Raises FileExistsError when ``dest`` exists and ``force`` is not set, NoStarter when
    the exercise has no starter.py.
    """
    try:
        code = ex.starter.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NoStarter(f"{ex.folder / 'spec.toml'}: exercise {ex.id!r} has no starter.py to copy (add one "
                        f"beside its spec.toml: it is what `dlgrade init {ex.id}` gives students)") from None
    stem = ex.id.replace("-", "_")
    path = Path(dest) if dest else Path(f"{stem}.ipynb" if notebook else f"{stem}.py")
    if path.is_dir():
        path = path / (f"{stem}.ipynb" if notebook else f"{stem}.py")
    if path.exists() and not force:
        raise FileExistsError(str(path))
    if notebook:
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_markdown_cell(ex.statement or f"# {ex.title}"),
            nbformat.v4.new_code_cell(code.rstrip()),
            nbformat.v4.new_markdown_cell(CHECK_NOTE.format(name=path.name)),
            nbformat.v4.new_code_cell(CHECK_CELL.format(id=ex.id)),
        ]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        path.write_text(nbformat.writes(nb), encoding="utf-8")
    else:
        path.write_text(code, encoding="utf-8")
    return path
