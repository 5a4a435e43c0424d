"""The README is the front door: its exercise table is the catalogue, and its commands exist."""
import re
from pathlib import Path

from dlgrade.graders.spec import catalogue

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_the_exercise_table_lists_every_built_in_exercise_once():
    section = README[README.index("## The exercises"):]
    section = section[:section.index("\n## ", 3)]
    rows = re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.M)
    assert sorted(rows) == sorted(catalogue()), "README's table and `dlgrade list` disagree"
    assert len(rows) == len(set(rows))


def test_the_readme_gives_the_test_command_ci_runs():
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "python3 -m pytest -q" in README and "python3 -m pytest -q" in ci
