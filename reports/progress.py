"""How `dlgrade grade` shows its progress: a bar with counts and ETA on a
terminal, one plain line per student otherwise (CI logs, redirected output)."""
from __future__ import annotations

import sys

import click

from dlgrade.graders.batch import Progress
from dlgrade.graders.results import Report
from dlgrade.graders.class_files import fmt_points


def student_line(report: Report) -> str:
    """``alice  17.5 / 40`` plus the exercises that did not grade normally."""
    line = f"{report.student}  {fmt_points(report.score)} / {fmt_points(report.max_score)}"
    odd = [f"{r.exercise} {r.status}" for r in report.results if r.status not in ("graded", "missing")]
    return line + (f"  ({', '.join(odd)})" if odd else "")


def start_line(total: int, unchanged: int, exercises: list[str], jobs: int, isolation: str) -> str:
    line = (f"grading {total} student{'s' if total != 1 else ''} on {', '.join(exercises)} "
            f"with {jobs} job{'s' if jobs != 1 else ''} (isolation: {isolation})")
    if unchanged:
        line += f"; {unchanged} unchanged, skipped (--force regrades them)"
    return line


class LogProgress(Progress):
    """``[3/200] alice  17.5 / 40`` lines on a stream (``  (on tcp://…)`` added on a cluster)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.total = 0
        self.done = 0
        self.worker = ""  # the cluster worker that graded the student advance() shows next

    def start(self, total, unchanged, exercises, jobs, isolation):
        self.total = total
        click.echo(start_line(total, unchanged, exercises, jobs, isolation), file=self.stream)

    def graded_on(self, worker, counts):
        self.worker = worker

    def advance(self, report):
        self.done += 1
        width = len(str(self.total))
        where, self.worker = (f"  (on {self.worker})" if self.worker else ""), ""
        click.echo(f"[{self.done:>{width}}/{self.total}] {student_line(report)}{where}", file=self.stream)


class BarProgress(Progress):
    """click's progress bar: position, percentage, ETA and the last student graded."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.bar = None

    def start(self, total, unchanged, exercises, jobs, isolation):
        click.echo(start_line(total, unchanged, exercises, jobs, isolation), file=self.stream)
        self.bar = click.progressbar(length=total, label="grading", show_eta=True, show_pos=True, show_percent=True,
                                     file=self.stream, item_show_func=lambda r: r.student if r else None)
        self.bar.__enter__()

    def graded_on(self, worker, counts):
        # per-worker counts next to the bar: "3 workers: 41 40 38"
        self.bar.label = f"grading ({len(counts)} worker{'s' if len(counts) != 1 else ''}: " \
                         f"{' '.join(str(n) for _, n in sorted(counts.items()))})"

    def advance(self, report):
        self.bar.update(1, report)

    def finish(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def progress_for(stream=None) -> Progress:
    """A bar when ``stream`` (default stderr) is a terminal, plain lines otherwise."""
    stream = stream or sys.stderr
    return BarProgress(stream) if stream.isatty() else LogProgress(stream)
