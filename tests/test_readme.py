"""The README is the front door: it gives the test command CI runs (its exercise table is
tested against the catalogue in test_pack_grading.py)."""
from pathlib import Path

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_the_readme_gives_the_test_command_ci_runs():
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "python3 -m pytest -q" in README and "python3 -m pytest -q" in ci
