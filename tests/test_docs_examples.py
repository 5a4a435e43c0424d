"""docs/adding-an-exercise.md: its examples are run, so the page cannot drift from dlgrade.

A fenced block right after ``<!-- file: PATH -->`` is written to PATH in a fresh
folder; the commands (``$ dlgrade ...``) of a ``console`` block right after
``<!-- run -->`` are run there, and their output must match the lines shown: a
line ``…`` stands for any lines, a line ending in ``…`` for any line that starts
the same.
"""
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from dlgrade.graders.cli import main

DOC = Path(__file__).parent.parent / "docs" / "adding-an-exercise.md"
MARKED = re.compile(r"<!-- (file: (?P<path>\S+)|run) -->\n```(?P<lang>[a-z]*)\n(?P<body>.*?)\n```\n", re.S)


def blocks():
    text = DOC.read_text(encoding="utf-8")
    files, runs = {}, []
    for m in MARKED.finditer(text):
        if m.group("path"):
            files[m.group("path")] = m.group("body") + "\n"
        else:
            assert m.group("lang") == "console"
            runs.append(m.group("body"))
    return files, runs


def commands(body: str) -> list[tuple[list[str], list[str]]]:
    """``[(argv, expected lines), ...]`` of one console block."""
    out = []
    for line in body.splitlines():
        if line.startswith("$ "):
            argv = shlex.split(line[2:])
            assert argv[0] == "dlgrade", line
            out.append((argv[1:], []))
        else:
            out[-1][1].append(line)
    return out


def pattern(expected: list[str]) -> re.Pattern:
    parts = []
    for line in expected:
        if line == "…":
            parts.append(r"(?:[^\n]*\n)*?")
        elif line.endswith("…"):
            parts.append(re.escape(line[:-1]) + r"[^\n]*\n")
        else:
            parts.append(re.escape(line) + r"\n")
    return re.compile("".join(parts))


def test_the_page_marks_files_and_runs():
    files, runs = blocks()
    assert {p.split("/")[1] for p in files if p.startswith("course/")} == {
        "softplus-grad", "linear-regression-grad", "bce-logits", "logistic-margin-grad"}
    assert len(runs) == 3
    assert pattern(["a", "…", "c…"]).fullmatch("a\nb\nb\ncde\n")
    assert not pattern(["a", "c…"]).fullmatch("a\nb\ncde\n")


@pytest.mark.slow  # grades the page's four exercises in sandboxes
def test_every_example_of_the_page_runs_as_shown(tmp_path, monkeypatch):
    files, runs = blocks()
    for path, text in files.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for body in runs:
        for argv, expected in commands(body):
            r = CliRunner().invoke(main, argv, catch_exceptions=False)
            assert r.exit_code == 0, r.output
            assert pattern(expected).fullmatch(r.output), f"$ dlgrade {shlex.join(argv)}\n{r.output}"
