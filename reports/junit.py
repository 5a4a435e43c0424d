"""JUnit XML for CI test reporters (Jenkins, GitLab, GitHub test-report actions).

One ``<testsuite>`` per exercise and one ``<testcase>`` per check
(``classname`` = exercise id, ``name`` = check name):

- a passed check is an empty testcase;
- a failed check carries ``<failure message="...">`` with the student-facing
  message, and in its body the points, diagnoses and a summary of the details;
- a skipped check carries ``<skipped message="..."/>``;
- an exercise that was not graded (error, timeout, missing) is one testcase,
  ``the submission could be graded``, with ``<error type="<status>">``.

Points live in the suite's ``<properties>``: ``score``/``max_score`` for the
exercise and ``check[<name>].score``/``check[<name>].max_score`` for each check
(the Jenkins/Surefire schema these reporters read allows properties on suites
only). It renders a :class:`~dlgrade.graders.results.StudentReport` only: hidden
checks are name and verdict, diagnoses only they found are absent. Characters
XML 1.0 cannot carry (controls, lone surrogates, U+FFFE/U+FFFF) are dropped
from every text and attribute. The document validates against
``tests/schemas/junit.xsd``.
"""
from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

from dlgrade.graders.results import CheckResult, StudentReport, StudentResult, student_view_only
from dlgrade.reports.plaintext import NOT_GRADED_CASE, check_text, cut_middle, failure_text, pts

SYSTEM_OUT_LIMIT = 20_000
# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(text) -> str:
    """Text safe for an XML 1.0 document (forbidden control characters dropped)."""
    return _NOT_XML.sub("", str(text))


def _counts(result: StudentResult) -> dict[str, int]:
    if result.status != "graded":
        return {"tests": 1, "failures": 0, "errors": 1, "skipped": 0}
    checks = result.checks
    return {
        "tests": len(checks),
        "failures": sum(c.status == "failed" for c in checks),
        "errors": 0,
        "skipped": sum(c.status not in ("passed", "failed") for c in checks),
    }


def _testcase(parent: ET.Element, result: StudentResult, check: CheckResult) -> None:
    case = ET.SubElement(parent, "testcase", classname=_x(result.exercise), name=_x(check.name))
    if check.status == "passed":
        return
    if check.status == "failed":
        kind = "hidden" if check.hidden else (check.diagnoses[0] if check.diagnoses else "failed")
        failure = ET.SubElement(case, "failure", message=_x(check.message), type=_x(kind))
        failure.text = _x(check_text(check))
    else:  # skipped, or any status that is neither a pass nor a failure
        ET.SubElement(case, "skipped", message=_x(check.message))


def _suite(parent: ET.Element, result: StudentResult, student: str, stamp: str, host: str) -> dict:
    counts = _counts(result)
    suite = ET.SubElement(parent, "testsuite", name=_x(result.exercise),
                          **{k: str(v) for k, v in counts.items()},
                          time=f"{result.duration_s:.3f}", timestamp=stamp, hostname=_x(host),
                          file=_x(result.submission))
    props = ET.SubElement(suite, "properties")
    values = [("student", student), ("exercise", result.exercise), ("title", result.title),
              ("status", result.status), ("score", pts(result.score)),
              ("max_score", pts(result.max_score)), ("diagnoses", ", ".join(result.diagnoses))]
    for c in result.checks:
        values += [(f"check[{c.name}].score", pts(c.score)), (f"check[{c.name}].max_score", pts(c.max_score))]
    for name, value in values:
        ET.SubElement(props, "property", name=_x(name), value=_x(value))
    if result.status == "graded":
        for c in result.checks:
            _testcase(suite, result, c)
    else:
        case = ET.SubElement(suite, "testcase", classname=_x(result.exercise), name=NOT_GRADED_CASE)
        err = ET.SubElement(case, "error", message=_x(result.message), type=_x(result.status))
        err.text = _x(failure_text(result) + f"\npoints: 0 / {pts(result.max_score)}")
    if result.output.strip():
        ET.SubElement(suite, "system-out").text = _x(cut_middle(result.output, SYSTEM_OUT_LIMIT))
    return counts


def junit_tree(report: StudentReport, timestamp: datetime | None = None) -> ET.ElementTree:
    """The JUnit document for one student's report (a ``<testsuites>`` root).

    Raises TypeError for anything but a StudentReport.
    """
    report = student_view_only(report, "JUnit XML")
    stamp = (timestamp or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S")
    root = ET.Element("testsuites", name=_x(f"dlgrade: {report.student}"))
    totals = {"tests": 0, "failures": 0, "errors": 0}
    host = socket.gethostname()
    for r in report.results:
        counts = _suite(root, r, report.student, stamp, host)
        for k in totals:
            totals[k] += counts[k]
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", f"{sum(r.duration_s for r in report.results):.3f}")
    return ET.ElementTree(root)


def junit_xml(report: StudentReport, timestamp: datetime | None = None) -> bytes:
    """The JUnit document as UTF-8 bytes with an XML declaration."""
    tree = junit_tree(report, timestamp)
    ET.indent(tree)
    return ET.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(report: StudentReport, path) -> Path:
    """Write the JUnit XML for ``report`` to ``path``; returns the path."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(junit_xml(report))
    return path
