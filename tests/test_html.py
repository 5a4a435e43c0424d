"""reports/html.py: student reports and the class summary, rendered from results only.

Pages are parsed with the standard library's html.parser: structure, escaping,
hidden checks and the numbers on the page are checked against the result they
came from. Real graded softmax results and hand-built results (following the
shared details schema) for the exercises this branch does not grade.
"""
from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from dlgrade.graders.compare import fmt_index, fmt_num
from dlgrade.graders.diagnose import describe
from dlgrade.graders.results import CheckResult, ExerciseResult, Report, StudentReport, StudentResult, as_plain
from dlgrade.reports import html as H

FIX = Path(__file__).parent / "fixtures"
VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "embed", "source", "wbr"}
# Every element a report may contain: page structure, inline SVG, MathML.
PAGE_TAGS = {"html", "head", "meta", "title", "style", "body", "div", "header", "main", "footer",
             "section", "nav", "h1", "h2", "h3", "h4", "p", "span", "strong", "code", "pre", "a",
             "br", "table", "caption", "thead", "tbody", "tr", "th", "td", "ol", "ul", "li", "dl",
             "dt", "dd", "figure", "figcaption"}
BLOCK = {"p", "div", "li", "td", "th", "tr", "h1", "h2", "h3", "h4", "dt", "dd", "pre", "section",
         "header", "footer", "figcaption", "caption", "br", "table", "ul", "ol", "dl", "main", "figure"}
SVG_TAGS = {"svg", "g", "rect", "line", "text", "tspan", "title", "defs", "pattern"}


class Page(HTMLParser):
    """Elements with their attributes, visible text (outside <svg>, <math>, <style>,
    <script>, <title>), SVG text, table rows, and tag-nesting errors."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.texts: list[str] = []
        self.svg_texts: list[str] = []
        self.math_texts: list[str] = []  # MathML: the grader's SymPy rendering, checked on its own
        self.rows: list[list[str]] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.title = ""
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []
        if tag in BLOCK:
            self.texts.append(" ")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in BLOCK:
            self.texts.append(" ")
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()
            return
        self.errors.append(f"</{tag}> while {self.stack[-3:]} are open")
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if "script" in self.stack:
            self.scripts.append(data)
        elif "style" in self.stack:
            self.styles.append(data)
        elif "svg" in self.stack:
            self.svg_texts.append(data)
        elif "math" in self.stack:
            self.math_texts.append(data)
        elif self.stack and self.stack[-1] == "title":
            self.title += data
        else:
            self.texts.append(data)

    @property
    def text(self) -> str:
        """The visible text, with a space at block boundaries (roughly innerText)."""
        return " ".join("".join(self.texts).split())

    @property
    def svg_text(self) -> str:
        return " ".join(" ".join(self.svg_texts).split())

    def tags(self) -> set:
        return {t for t, _ in self.elements}

    def all(self, tag: str) -> list[dict]:
        return [a for t, a in self.elements if t == tag]


def flat(s: str) -> str:
    return " ".join(s.split())


@pytest.fixture(scope="module")
def softmax(runner):
    """Real graded results of the softmax fixtures, one Report each."""
    from dlgrade.graders.api import check

    names = ["softmax_wrong_axis", "softmax_naive_overflow", "softmax_raises", "softmax_syntax_error",
             "correct_shift_max", "softmax_mutates_input"]
    reports = {n: check(FIX / "softmax" / f"{n}.py", runner=runner) for n in names}
    reports["xss"] = check(FIX / "html" / "xss_prints_markup.py", runner=runner,
                           student="<svg onload=\"window.__xss='id'\">")
    return reports


@pytest.fixture(scope="module")
def hand(load_report):
    return {n: load_report(n) for n in ("backprop_transposed", "symbolic_missing_chain_rule",
                                         "gpu_and_timeout", "xss_everywhere")}


def page_of(report: Report) -> Page:
    return Page(H.render_student_report(StudentReport.of(report)))


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize("name", ["backprop_transposed", "symbolic_missing_chain_rule", "gpu_and_timeout",
                                  "xss_everywhere"])
def test_student_report_is_one_wellformed_page_that_fetches_nothing(hand, name):
    html = H.render_student_report(StudentReport.of(hand[name]))
    page = Page(html)
    assert html.startswith("<!DOCTYPE html>")
    assert page.errors == [] and page.stack == []
    assert page.tags() <= PAGE_TAGS | SVG_TAGS | set(H_MATHML_TAGS())
    assert page.scripts == [] and "script" not in page.tags()
    assert [a["content"] for a in page.all("meta") if a.get("http-equiv") == "Content-Security-Policy"] == [
        H.STUDENT_CSP]
    assert len(page.all("style")) == 1
    for tag, attrs in page.elements:
        assert "src" not in attrs, tag
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
        if tag == "a":
            assert attrs["href"].startswith("#"), attrs
    css = " ".join(page.styles)
    assert "@import" not in css and "url(" not in css
    assert re.findall(r"url\(([^)]*)\)", html) == re.findall(r"url\((#hatch-[\d-]+)\)", html)
    assert "@media print" in css
    ids = [a["id"] for _, a in page.elements if "id" in a]
    assert len(ids) == len(set(ids))


def test_an_exercise_graded_twice_keeps_element_ids_unique(hand):
    r = hand["backprop_transposed"].results[0]
    page = page_of(Report("bob", (r, r)))
    ids = [a["id"] for _, a in page.elements if "id" in a]
    assert ids.count("ex-two-layer-backprop") == 1 and "ex-two-layer-backprop-2" in ids
    assert len({a["id"] for a in page.all("pattern")}) == 2  # one hatch per chart


def H_MATHML_TAGS():
    from dlgrade.reports.mathml import ELEMENTS

    return ELEMENTS


def test_real_graded_softmax_pages_are_wellformed(softmax):
    for name, report in softmax.items():
        page = page_of(report)
        assert page.errors == [] and page.stack == [], name
        assert page.tags() <= PAGE_TAGS | SVG_TAGS, name
        assert f"{fmt_num(report.score)} / {fmt_num(report.max_score)}" in page.text


# --------------------------------------------------------------------------- arrays


def test_values_mismatch_shows_the_worst_element_the_examples_and_the_summary(softmax):
    report = softmax["softmax_wrong_axis"]
    page = page_of(report)
    c = report.results[0].checks[0]
    d = c.details
    assert c.message in page.text
    assert f"elements that differ {d['mismatched']} / {d['total']}" in page.text
    assert f"max abs error {fmt_num(d['max_abs'])}" in page.text
    assert f"max rel error {fmt_num(d['max_rel'])}" in page.text
    assert f"allowed |got − expected| {fmt_num(d['atol'])} + {fmt_num(d['rtol'])}·|expected|" in page.text
    table = page.rows[page.rows.index(["index", "expected", "got"]) + 1:][:1 + len(d["examples"])]
    assert table[0] == [fmt_index(tuple(d["worst_index"])) + " (worst)", fmt_num(d["worst_expected"]),
                        fmt_num(d["worst_got"])]
    assert table[1:] == [[fmt_index(tuple(e["index"])), fmt_num(e["expected"]), fmt_num(e["got"])]
                         for e in d["examples"] if e["index"] != d["worst_index"]]


def test_structural_failures_show_their_numbers(softmax):
    page = page_of(softmax["softmax_naive_overflow"])
    assert "non-finite values 4 first at (0, 2)" in page.text
    page = page_of(softmax["softmax_mutates_input"])
    assert "argument #1 elements changed 160 / 160" in page.text


def test_passed_checks_show_their_message_only(softmax):
    page = page_of(softmax["correct_shift_max"])
    r = softmax["correct_shift_max"].results[0]
    for c in r.checks:
        assert f"✓ PASS {c.name} {fmt_num(c.score)} / {fmt_num(c.max_score)} pts {c.message}" in page.text
    assert "elements that differ" not in page.text
    assert "6 of 6 checks passed" in page.text


# --------------------------------------------------------------------------- gradients


def test_gradients_have_a_log_bar_chart_with_tolerance_and_heatmaps(hand):
    report = hand["backprop_transposed"]
    page = page_of(report)
    params = next(c for c in report.results[0].checks if c.kind == "gradients" and not c.hidden).details["params"]
    for p in params:
        verdict = "✓ pass" if p["passed"] else "✗ fail"
        assert f"{fmt_num(float(p['rel_error']))} {verdict}" in page.svg_text
        assert [p["name"], fmt_index(tuple(p["shape"])), fmt_index(tuple(p["got_shape"])),
                fmt_num(float(p["rel_error"])), fmt_num(p["tolerance"]), verdict] in page.rows
    svgs = page.all("svg")
    assert any("log scale" in s.get("aria-label", "") for s in svgs)
    assert len([a for a in page.all("line") if a.get("class") == "tol"]) == len(params)
    assert page.all("pattern")  # W2's infinite error is a hatched bar
    heat_cells = [a for a in page.all("rect") if a.get("fill", "").startswith("#") and a.get("width") == a.get("height")]
    assert len(heat_cells) >= 16 * 20 + 20
    assert "block (5, 11): 0.1837" in page.svg_text  # the hottest block, from the heatmap values
    assert "W1 (32, 40): where the error sits, 16 × 20 blocks (max |error| per block). Darkest = 0.1837" in page.text
    assert len([a for a in page.all("rect") if a.get("class") == "hot"]) == 2


def test_finite_difference_directions_and_samples_are_tabled(hand):
    report = hand["backprop_transposed"]
    page = page_of(report)
    d = next(c for c in report.results[0].checks if c.kind == "finite-difference").details
    for i, x in enumerate(d["directions"], 1):
        assert [str(i), fmt_num(x["analytic"]), fmt_num(x["numeric"]), fmt_num(x["rel_error"])] in page.rows
    for s in d["samples"]:
        assert [s["param"], fmt_index(tuple(s["index"])), fmt_num(s["analytic"]), fmt_num(s["numeric"]),
                fmt_num(s["rel_error"])] in page.rows
    assert f"Random directions (tolerance {fmt_num(d['tolerance'])})" in page.text


# --------------------------------------------------------------------------- hidden checks


def test_hidden_checks_are_counted_and_never_revealed(hand):
    report = hand["backprop_transposed"]
    html = H.render_student_report(StudentReport.of(report))
    page = Page(html)
    assert "2 hidden checks: 1 passed, 1 failed" in page.text
    assert "✓ PASS loss on a hidden batch 1 / 1 pts" in page.text
    assert "✗ FAIL gradients on a hidden batch 0 / 1 pts" in page.text
    for c in report.results[0].checks:
        if c.hidden:
            for secret in (c.message, c.details["case"], "0.98765", "(97, 89)", "1.234e-15"):
                assert secret not in html, secret
    # a diagnosis only a hidden check found is withheld; the visible one is shown
    relu = describe("missing-relu-mask")
    assert relu.title not in html and relu.hint not in html and "missing-relu-mask" not in html
    assert describe("transposed").title in page.text


def test_hidden_summary_wording():
    def c(status, hidden=True):
        return CheckResult("x", status == "passed", 0.0, 1.0, "m", hidden=hidden, status=status)

    assert H.hidden_summary([c("passed"), c("failed"), c("skipped"), c("passed", hidden=False)]) == \
        "3 hidden checks: 1 passed, 1 failed, 1 skipped"
    assert H.hidden_summary([c("passed")]) == "1 hidden check: 1 passed"
    assert H.hidden_summary([c("passed", hidden=False)]) == ""


def test_hidden_check_of_a_real_result_shows_only_name_and_verdict(softmax):
    report = softmax["softmax_wrong_axis"]
    r = report.results[0]
    secret_check = r.checks[0]
    hidden = replace(r, checks=(replace(secret_check, hidden=True),) + r.checks[1:])
    html = H.render_student_report(StudentReport.of(replace(report, results=(hidden,))))
    assert secret_check.message not in html
    assert fmt_num(secret_check.details["max_rel"]) not in html
    assert "1 hidden check: 1 failed" in Page(html).text


# --------------------------------------------------------------------------- symbolic


def test_symbolic_answer_and_reference_are_mathml_with_the_counterexample(hand):
    report = hand["symbolic_missing_chain_rule"]
    page = page_of(report)
    sym = report.results[0].extra["symbolic"]
    maths = page.all("math")
    assert len(maths) == 2 and all(m == {"display": "block"} for m in maths)
    assert {"mfrac", "msup", "mi", "mo", "mn"} <= page.tags()
    assert f"as you wrote it: {sym['student_text']}" in page.text
    ce = sym["counterexample"]
    assert ["z", "y", "your expression", "reference"] in page.rows
    assert [fmt_num(ce["point"]["z"]), fmt_num(ce["point"]["y"]), fmt_num(ce["student"]),
            fmt_num(ce["expected"])] in page.rows
    assert "How this was checked: " + H.METHOD_TEXT["numeric"] + "." in page.text
    chain = describe("missing-chain-rule")
    assert f"{chain.title} missing-chain-rule {chain.hint}" in page.text


def test_symbolic_details_of_a_hidden_check_stay_hidden(hand):
    report = hand["symbolic_missing_chain_rule"]
    r = report.results[0]
    hidden = replace(r, checks=tuple(replace(c, hidden=True) for c in r.checks))
    html = H.render_student_report(StudentReport.of(replace(report, results=(hidden,))))
    page = Page(html)
    assert "math" not in page.tags()
    assert r.extra["symbolic"]["student_text"] not in html and "-1.60653" not in html
    assert describe("missing-chain-rule").title not in html
    assert "1 hidden check: 1 failed" in page.text


def test_symbolic_needs_review_is_flagged(hand):
    assert "needs review" in page_of(hand["xss_everywhere"]).text
    assert "needs review" not in page_of(hand["symbolic_missing_chain_rule"]).text


# --------------------------------------------------------------------------- gpu, skipped, statuses


def test_skipped_gpu_check_is_shown_as_skipped_and_not_counted(hand):
    page = page_of(hand["gpu_and_timeout"])
    assert "– SKIPPED float16 on the GPU not counted skipped: no GPU" in page.text
    assert "2 of 3 checks passed · 1 skipped" in page.text


def test_gpu_failure_shows_device_line_and_cpu_vs_gpu_numbers(hand):
    page = page_of(hand["gpu_and_timeout"])
    assert "device cuda:0 your line 7" in page.text
    assert ["scalar (worst)", "2.2239", "2.2551"] in page.rows
    hint = describe("device-mismatch").hint.replace("`", "")
    assert hint in page.text


def test_timeout_and_warnings(hand):
    report = hand["gpu_and_timeout"]
    page = page_of(report)
    timeout = report.results[1]
    assert f"TIMEOUT: {timeout.message}" in page.text
    assert report.warnings[0] in page.text
    assert "iteration 0 iteration 1" in page.text
    assert "✗ TIMEOUT" in page.text  # the word, not only a colour


def test_syntax_error_shows_the_line_and_a_caret(softmax):
    report = softmax["softmax_syntax_error"]
    html = H.render_student_report(StudentReport.of(report))
    assert "ERROR: SyntaxError on line 3: expected ':'" in Page(html).text
    src = re.search(r'<pre class="source">(.*?)</pre>', html, re.S).group(1)
    assert src == "line 3: def softmax(z, axis=-1)\n" + " " * 31 + "^"


def test_exception_in_a_check_shows_the_traceback_line(softmax):
    page = page_of(softmax["softmax_raises"])
    assert "ValueError : not done yet" in page.text or "ValueError: not done yet" in page.text
    assert 'line 5, in softmax: raise ValueError("not done yet")' in page.text


def test_notebook_error_names_the_cell_and_missing_lists_defined_names():
    nb = ExerciseResult("s", "stable-softmax", "error", max_score=10,
                        message="loading the submission raised NameError: name 'np' is not defined (line 7)",
                        error={"kind": "exception", "type": "NameError", "message": "name 'np' is not defined",
                               "line": 7, "cell": 3, "cell_line": 2,
                               "frames": [{"line": 7, "function": "<module>", "code": "x = np.zeros(3)"}]})
    names = [f"helper_{i}" for i in range(25)]
    missing = ExerciseResult("s", "two-layer-backprop", "missing", max_score=10,
                             message="no 'two_layer_backprop' found in the submission",
                             error={"kind": "missing", "names": names})
    page = page_of(Report("s", (nb, missing)))
    assert f"ERROR: {nb.message} in notebook cell 3, line 2" in page.text
    assert "line 7, in <module>: x = np.zeros(3)" in page.text
    assert f"MISSING: {missing.message}" in page.text
    shown = ", ".join(names[:H.MISSING_NAMES_SHOWN])
    assert f"Names your submission defines: {shown} and 5 more" in page.text


def test_isolation_mode_is_stated(softmax, hand):
    report = softmax["correct_shift_max"]
    iso = report.results[0].isolation
    assert f"isolation: {H.ISOLATION_TEXT[iso]}" in page_of(report).text
    assert f"isolation: {H.ISOLATION_TEXT['basic']}" in page_of(hand["gpu_and_timeout"]).text


def test_output_is_trimmed_to_head_and_tail():
    text = "\n".join(f"line {i}" for i in range(200)) + "\n" + "x" * 1000
    view = H.output_view(text)
    assert view.head[0] == "line 0" and view.head[-1] == f"line {H.OUTPUT_HEAD_LINES - 1}"
    assert view.cut_lines == 201 - H.OUTPUT_HEAD_LINES - H.OUTPUT_TAIL_LINES
    assert view.tail[-1] == "x" * H.OUTPUT_LINE_CHARS + " …"
    r = ExerciseResult("s", "stable-softmax", "graded", output=text)
    page = page_of(Report("s", (r,)))
    assert f"… {view.cut_lines} lines not shown …" in page.text
    assert "line 100" not in page.text and "line 199" in page.text
    assert H.output_view("  \n") is None


# --------------------------------------------------------------------------- escaping


def test_everything_from_a_student_stays_text(hand, softmax):
    for report in (hand["xss_everywhere"], softmax["xss"]):
        html = H.render_student_report(StudentReport.of(report))
        page = Page(html)
        assert page.errors == []
        assert page.tags() <= PAGE_TAGS | SVG_TAGS | set(H_MATHML_TAGS())
        assert "script" not in page.tags() and "img" not in page.tags() and "iframe" not in page.tags()
        for tag, attrs in page.elements:
            assert not any(k.startswith("on") or k == "src" for k in attrs), (tag, attrs)
            assert not any("javascript" in (v or "") for v in attrs.values())
        assert report.student in page.text and report.student in page.title
    page = page_of(hand["xss_everywhere"])
    assert "<script>window.__xss='output'; document.title='pwned'</script>" in page.text
    assert "<script>window.__xss='text'</script>sigmoid(z) - y" in page.text
    assert "equals dL/dz </li><script>window.__xss='check-name'</script>" in page.text
    assert "<script>window.__xss='warning'</script>" in page.text
    page = page_of(softmax["xss"])
    assert "<img src=x onerror=\"window.__xss='printed-img'\">" in page.text
    assert "raised ValueError: <img src=x onerror=\"window.__xss='exception'\"> (line 11)" in page.text


# --------------------------------------------------------------------------- traceability


NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _allowed_numbers(report: Report) -> set:
    allowed = {"0"}
    allowed |= {fmt_num(10.0 ** e) for e in range(-20, 10)}  # chart axis ticks

    def walk(x):
        if isinstance(x, str):
            allowed.update(NUMBER.findall(x))
            try:
                allowed.add(fmt_num(float(x)))
            except ValueError:
                pass
        elif isinstance(x, bool):
            pass
        elif isinstance(x, (int, float)):
            allowed.add(fmt_num(x))
            if isinstance(x, int):
                allowed.add(str(x))
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(k)
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)

    for r in report.results:
        shown = StudentResult.of(r)
        walk(as_plain(shown))
        walk([round(shown.duration_s, 4), round(shown.score, 6)])  # as the page rounds them
        for c in shown.checks:  # heatmap block coordinates
            for p in c.details.get("params", []):
                hm = p.get("heatmap") or {}
                allowed.update(str(i) for i in range(max(hm.get("rows", 0), hm.get("cols", 0))))
        for d in shown.diagnoses:
            walk(describe(d).title)
            walk(describe(d).hint)
        allowed.update(str(i) for i in range(len(r.checks) + 1))  # "1 of 3 checks passed"
    walk(list(report.warnings))
    walk(report.student)
    walk([report.score, report.max_score])
    return allowed


@pytest.mark.parametrize("which", ["softmax_wrong_axis", "softmax_naive_overflow", "softmax_raises",
                                   "backprop_transposed", "symbolic_missing_chain_rule", "gpu_and_timeout"])
def test_every_number_on_the_page_comes_from_the_result(which, softmax, hand):
    report = softmax.get(which) or hand[which]
    page = page_of(report)
    allowed = _allowed_numbers(report)
    shown = NUMBER.findall(page.text) + NUMBER.findall(page.svg_text) + NUMBER.findall(page.title)
    assert shown
    assert sorted(set(shown) - allowed) == []


# --------------------------------------------------------------------------- class summary


def _class(softmax, hand):
    return list(softmax.values()) + [hand[n] for n in ("backprop_transposed", "symbolic_missing_chain_rule",
                                                        "gpu_and_timeout", "xss_everywhere")]


def test_class_summary_is_wellformed_and_its_only_script_is_allowed_by_hash(softmax, hand):
    html = H.render_class_summary(_class(softmax, hand))
    page = Page(html)
    assert page.errors == [] and page.stack == []
    assert page.tags() <= PAGE_TAGS | SVG_TAGS | {"script"}
    assert len(page.scripts) == 1
    digest = base64.b64encode(hashlib.sha256(page.scripts[0].encode()).digest()).decode()
    csp = next(a["content"] for a in page.all("meta") if a.get("http-equiv") == "Content-Security-Policy")
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp
    for tag, attrs in page.elements:
        assert "src" not in attrs and not any(k.startswith("on") for k in attrs), (tag, attrs)
    hrefs = [a["href"] for a in page.all("a")]
    assert "grades.csv" in hrefs and "results.json" in hrefs
    assert all(h.startswith(("#", "students/")) or h in ("grades.csv", "results.json") for h in hrefs)


def test_class_summary_students_are_sorted_and_linked(softmax, hand):
    reports = _class(softmax, hand)
    page = Page(H.render_class_summary(reports))
    students = sorted(r.student for r in reports)
    header = next(i for i, row in enumerate(page.rows) if row and row[0] == "Student")
    names = [row[0] for row in page.rows[header + 1:header + 1 + len(students)]]
    assert names == students
    hrefs = [a["href"] for a in page.all("a")]
    for s in students:
        assert H.student_href(s) in hrefs
    assert H.student_href("<svg onload=\"window.__xss='id'\">") == \
        "students/%3Csvg%20onload%3D%22window.__xss%3D%27id%27%22%3E.html"


def test_class_summary_pass_rates_statuses_and_diagnoses(softmax, hand):
    reports = _class(softmax, hand)
    page = Page(H.render_class_summary(reports))
    graded = [r for rep in reports for r in rep.results if r.exercise == "stable-softmax" and r.status == "graded"]
    for name in [c.name for c in graded[0].checks]:
        passed = sum(1 for r in graded for c in r.checks if c.name == name and c.status == "passed")
        row = next(row for row in page.rows if row and row[0] == name)
        assert row[1] == f"{passed} / {len(graded)}"
        assert row[2] == f"{100 * passed / len(graded):.0f}%"
    hidden_row = next(row for row in page.rows if row and row[0].startswith("gradients on a hidden batch"))
    assert hidden_row[:2] == ["gradients on a hidden batch hidden", "0 / 1"]
    skipped_row = next(row for row in page.rows if row and row[0] == "float16 on the GPU")
    assert skipped_row == ["float16 on the GPU", "0 / 0", "—", "1"]
    errors = sorted(rep.student for rep in reports for r in rep.results if r.status == "error")
    assert f"ERROR ({len(errors)}): " + ", ".join(errors) in page.text
    assert "TIMEOUT (1): dave" in page.text
    timeouts = sum(1 for rep in reports for r in rep.results if r.status == "timeout")
    assert timeouts == 1 and f"{len(errors)} errors 1 timeout 0 missing" in page.text
    # diagnoses: the instructor sees every one, hidden-check ones included, with example links
    relu = describe("missing-relu-mask")
    row = next(row for row in page.rows if len(row) == 4 and relu.title in row[1])
    assert row == ["1", f"{relu.title} missing-relu-mask", "two-layer-backprop", "bob"]
    assert H.student_href("bob", "two-layer-backprop") in [a["href"] for a in page.all("a")]


def test_class_summary_histogram_counts_every_student(softmax, hand):
    reports = _class(softmax, hand)
    ctx = H.class_summary_context(reports)
    assert sum(b.count for b in ctx["histogram"].bars) == len(reports)
    page = Page(H.render_class_summary(reports))
    assert f"Total score of each of the {len(reports)} students" in page.text


def test_class_summary_lists_a_few_example_students_per_diagnosis():
    results = [Report(f"s{i:02d}", (ExerciseResult(f"s{i:02d}", "stable-softmax", "graded", max_score=10,
                                                   diagnoses=("overflow",)),)) for i in range(8)]
    page = Page(H.render_class_summary(results))
    row = next(row for row in page.rows if len(row) == 4 and "overflow" in row[1])
    assert row[0] == "8"
    assert row[3] == "s00, s01, s02, s03, s04 and 3 more"


# --------------------------------------------------------------------------- files and CLI


def test_write_functions_create_the_batch_layout(tmp_path, hand):
    reports = list(hand.values())
    for rep in reports:
        path = H.write_student_report(StudentReport.of(rep), H.student_report_path(tmp_path, rep.student))
        assert path.parent == tmp_path / "students" and path.read_text(encoding="utf-8").startswith("<!DOCTYPE")
    index = H.write_class_summary(reports, tmp_path)
    assert index == tmp_path / "index.html" and index.exists()
    page = Page(index.read_text(encoding="utf-8"))
    for rep in reports:  # every student link resolves to the file written
        href = H.student_href(rep.student)
        assert href in [a["href"] for a in page.all("a")]
        from urllib.parse import unquote

        assert (tmp_path / unquote(href)).is_file()
    assert H.student_report_path(tmp_path, "a/b\\c").name == "a_b_c.html"
    assert H.student_report_path(tmp_path, "..").name == "_...html"


def test_dlgrade_check_html_writes_the_report(tmp_path):
    from dlgrade.graders.cli import main

    out = tmp_path / "deep" / "report.html"
    res = CliRunner().invoke(main, ["check", str(FIX / "softmax" / "softmax_wrong_axis.py"), "--html", str(out)])
    assert res.exit_code == 0, res.output
    page = Page(out.read_text(encoding="utf-8"))
    assert page.title == "Feedback for softmax_wrong_axis: 1 / 10 · dlgrade"
    assert describe("wrong-axis").title in page.text
