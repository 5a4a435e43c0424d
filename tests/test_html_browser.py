"""The HTML reports in a real browser: headless Chromium opens them from file://.

Each page must load with no console error (a Content Security Policy violation
is one) and no network request besides the page itself; the math and the
charts must be in the DOM; no payload from the XSS fixtures may run.
Screenshots (and a print-to-PDF of a student report) are kept in
``tests/artifacts/``. Skipped without Chromium, except under CI.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from chromium_cdp import Browser, find_chromium
from dlgrade.graders.results import Report, StudentReport
from dlgrade.reports.html import student_report_path, write_class_summary, write_student_report

pytestmark = pytest.mark.slow
FIX = Path(__file__).parent / "fixtures"
ARTIFACTS = Path(__file__).parent / "artifacts"
XSS_ID = "<svg onload=\"window.__xss='id'\">"


@pytest.fixture(scope="module")
def browser():
    binary = find_chromium()
    if not binary:
        if os.environ.get("CI"):
            pytest.fail("CI must open the HTML reports in Chromium, but chromium is not installed")
        pytest.skip("chromium is not installed")
    with Browser(binary) as b:
        yield b


@pytest.fixture(scope="module")
def site(tmp_path_factory, runner, load_report):
    """A batch output folder: ``students/<id>.html`` per student and ``index.html``."""
    from dataclasses import replace

    from dlgrade.graders.api import check

    out = tmp_path_factory.mktemp("site")
    wrong_axis = check(FIX / "softmax" / "softmax_wrong_axis.py", runner=runner, student="erin")
    xss_real = check(FIX / "html" / "xss_prints_markup.py", runner=runner, student=XSS_ID)
    hand = {n: load_report(n) for n in ("backprop_transposed", "symbolic_missing_chain_rule",
                                         "gpu_and_timeout", "xss_everywhere")}
    # one student with every kind of result on one page: arrays, gradients, math, GPU, timeout
    everything = [r for rep in (wrong_axis, hand["backprop_transposed"], hand["symbolic_missing_chain_rule"],
                                hand["gpu_and_timeout"]) for r in rep.results]
    erin = Report("erin", tuple(replace(r, student="erin") for r in everything),
                  warnings=hand["gpu_and_timeout"].warnings)
    reports = [erin, xss_real, *hand.values(),
               check(FIX / "softmax" / "correct_shift_max.py", runner=runner, student="frank"),
               check(FIX / "softmax" / "softmax_syntax_error.py", runner=runner, student="gina")]
    for rep in reports:
        write_student_report(StudentReport.of(rep), student_report_path(out, rep.student))
    write_class_summary(reports, out)
    return out, {rep.student: rep for rep in reports}


def load(browser, path: Path) -> str:
    url = path.as_uri()
    browser.open(url)
    return url


def assert_clean_load(browser, url: str) -> None:
    assert browser.console_errors() == []
    assert browser.requests() == [url]
    assert browser.evaluate("typeof window.__xss") == "undefined"
    assert browser.evaluate("document.title") != "pwned"


def test_student_report_shows_math_and_charts_offline(browser, site):
    out, reports = site
    url = load(browser, student_report_path(out, "erin"))
    assert_clean_load(browser, url)
    erin = reports["erin"]
    assert (erin.score, erin.max_score) == (10, 43)
    assert browser.evaluate("document.title") == "Feedback for erin: 10 / 43 · dlgrade"
    assert browser.evaluate("document.scripts.length") == 0
    assert browser.evaluate("document.querySelectorAll('math').length") == 2
    assert browser.evaluate("document.querySelector('math') instanceof MathMLElement") is True
    # laid out as mathematics: a stacked fraction is much taller than a letter
    ratio = browser.evaluate("document.querySelector('math mfrac').getBoundingClientRect().height / "
                             "document.querySelector('math mi').getBoundingClientRect().height")
    assert ratio > 1.5
    assert browser.evaluate("document.querySelectorAll('svg').length") >= 5
    assert browser.evaluate("document.querySelectorAll('svg rect[fill]').length") >= 16 * 20
    assert browser.evaluate("[...document.querySelectorAll('svg text')].some(t => t.textContent.includes('0.1837'))")
    shot = browser.screenshot(ARTIFACTS / "student_report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import base64

    pdf = browser.send("Page.printToPDF", {"printBackground": False}, session=True)["data"]
    (ARTIFACTS / "student_report.pdf").write_bytes(base64.b64decode(pdf))
    assert base64.b64decode(pdf)[:5] == b"%PDF-"


def test_class_summary_loads_links_students_and_sorts_with_script(browser, site):
    out, reports = site
    url = load(browser, out / "index.html")
    assert_clean_load(browser, url)
    assert browser.evaluate("document.querySelectorAll('svg').length") >= 2
    names = "[...document.querySelectorAll('#student-table tbody tr td:first-child')].map(td => td.textContent)"
    assert browser.evaluate(names) == sorted(reports)
    hrefs = browser.evaluate("[...document.querySelectorAll('a')].map(a => a.href)")
    assert (out / "grades.csv").as_uri() in hrefs and (out / "results.json").as_uri() in hrefs
    for student in reports:
        assert student_report_path(out, student).resolve().as_uri() in hrefs
    browser.screenshot(ARTIFACTS / "class_summary.png")
    # the inline script (allowed by its hash) sorts by total score
    browser.evaluate("[...document.querySelectorAll('#student-table th button')]"
                     ".find(b => b.textContent === 'Total').click()")
    by_score = sorted(sorted(reports), key=lambda s: reports[s].score)
    assert browser.evaluate(names) == by_score
    assert browser.console_errors() == []


def test_class_summary_works_without_javascript(browser, site):
    out, reports = site
    browser.send("Emulation.setScriptExecutionDisabled", {"value": True}, session=True)
    try:
        url = load(browser, out / "index.html")
        assert browser.console_errors() == [] and browser.requests() == [url]
        assert browser.evaluate("document.querySelectorAll('#student-table th button').length") == 0
        assert browser.evaluate(
            "[...document.querySelectorAll('#student-table tbody tr td:first-child')].map(td => td.textContent)"
        ) == sorted(reports)
    finally:
        browser.send("Emulation.setScriptExecutionDisabled", {"value": False}, session=True)


@pytest.mark.parametrize("student", [XSS_ID, "<img src=x onerror=\"window.__xss='student'\">"])
def test_xss_payloads_stay_inert_text(browser, site, student):
    out, reports = site
    url = load(browser, student_report_path(out, student))
    assert_clean_load(browser, url)
    assert browser.evaluate("document.querySelectorAll('script, img, iframe, a[href^=javascript]').length") == 0
    text = browser.evaluate("document.body.innerText")
    assert student in text
    if student == XSS_ID:
        assert "<script>window.__xss='printed'; document.title='pwned'</script>" in text
        assert "<img src=x onerror=\"window.__xss='exception'\">" in text
        browser.screenshot(ARTIFACTS / "xss_report.png")
    else:
        assert "<script>window.__xss='output'; document.title='pwned'</script>" in text
    # hovering and clicking everything runs nothing either
    browser.evaluate("for (const el of document.querySelectorAll('*')) {"
                     " for (const t of ['mouseover', 'click', 'focus']) el.dispatchEvent(new Event(t)); }")
    assert browser.evaluate("typeof window.__xss") == "undefined"
