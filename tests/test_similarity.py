"""graders/similarity.py: near-identical code flagged (winnowing, as MOSS), never a score change."""
from __future__ import annotations

import json
import random
from html.parser import HTMLParser

import pytest

import lms_downloads as L
from dlgrade.graders import similarity as sim
from dlgrade.graders.similarity import SourceFile, compare, fingerprint, normalized_tokens, winnow


def fp(student, text):
    return fingerprint(student, [SourceFile("hw.py", text)])


def test_names_comments_and_whitespace_do_not_count():
    a = [t.text for t in normalized_tokens(L.ADA_SOFTMAX)]
    b = [t.text for t in normalized_tokens(L.ELI_SOFTMAX)]
    assert a == b  # the docstring, the comments, the names and the spacing differ; nothing else
    assert "V" in a and "np" not in a and "max" in a  # identifiers go, attribute names stay


def test_a_copy_is_flagged_and_independent_solutions_are_not():
    subs = [fp("ada", L.ADA_SOFTMAX), fp("eli", L.ELI_SOFTMAX), fp("jose", L.LOOPS_SOFTMAX),
            fp("wei", L.LOGSUMEXP_SOFTMAX), fp("zoe", L.NAIVE_SOFTMAX)]
    pairs = compare(subs)
    assert [(p.a, p.b) for p in pairs] == [("ada", "eli")]
    (p,) = pairs
    assert p.similarity == 1.0 and p.shared >= sim.MIN_SHARED
    assert p.a_lines[0][0] == 4 and p.a_lines[0][-1] >= 14  # from "def softmax": the shared lines


def test_starter_code_and_code_the_whole_class_shares_are_ignored():
    starter = L.ADA_SOFTMAX
    subs = [fp("ada", L.ADA_SOFTMAX), fp("eli", L.ELI_SOFTMAX)]
    assert compare(subs, base=[starter]) == []
    # eight students handing in the course's sample solution: nobody copied anybody
    crowd = [fp(f"s{i}", L.ADA_SOFTMAX) for i in range(8)]
    assert sim.common_limit(8) == 4 and compare(crowd) == []
    assert (sim.common_limit(40), sim.common_limit(1000)) == (10, 25)


def test_a_shared_run_long_enough_is_always_found_whatever_surrounds_it():
    rng = random.Random(0)
    guaranteed = sim.K + sim.W - 1

    def filler(n):
        return "\n".join(f"v{rng.randrange(10**6)} = {rng.randrange(10)} {rng.choice('+-*/')} "
                         f"w{rng.randrange(10**6)}.attr{rng.randrange(50)}" for _ in range(n))

    shared = L.LOOPS_SOFTMAX
    assert len(normalized_tokens(shared)) >= guaranteed
    for _ in range(5):
        a = winnow(normalized_tokens(filler(rng.randrange(1, 30)) + "\n" + shared + "\n" + filler(5)))
        b = winnow(normalized_tokens(filler(rng.randrange(1, 30)) + "\n" + shared))
        assert set(a) & set(b)


def test_deterministic_and_safe_on_code_that_does_not_tokenize():
    broken = 'def softmax(z:\n    return """unterminated\n' + L.ADA_SOFTMAX
    first = fingerprint("x", [SourceFile("a.py", broken)]).prints
    assert first == fingerprint("x", [SourceFile("a.py", broken)]).prints and first
    assert winnow([]) == {} and winnow(normalized_tokens("x = 1")) == {}


@pytest.mark.slow
def test_pairs_in_the_class_summary_with_an_inert_side_by_side_page(make_class, tmp_path):
    from dlgrade.graders.batch import grade_class
    from dlgrade.reports.class_pages import HTML_PAGES

    hostile = L.ADA_SOFTMAX.replace('"""Numerically stable softmax along ``axis``."""',
                                    '"""</pre><script>alert(1)</script><img src=x onerror=alert(2)>"""')
    subs = make_class({"ben/softmax.py": "softmax/correct_loops.py"})
    (subs / "ada").mkdir()
    (subs / "ada" / "softmax.py").write_text(hostile)
    (subs / "eli").mkdir()
    (subs / "eli" / "softmax.py").write_text(L.ELI_SOFTMAX)
    out = tmp_path / "out"
    grade_class(subs, out, jobs=1, pages=HTML_PAGES)
    doc = json.loads((out / "similarity.json").read_text())
    assert [(p["a"], p["b"]) for p in doc["pairs"]] == [("ada", "eli")]
    assert doc["method"]["k"] == sim.K and doc["students"] == 3
    index = (out / "index.html").read_text()
    assert 'href="similarity/pair-001.html"' in index and "never a verdict" in index
    page = (out / "similarity" / "pair-001.html").read_text()

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags = []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)

    parser = Tags()
    parser.feed(page)
    assert "script" not in parser.tags and "img" not in parser.tags
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count('class="ln match"') >= 20  # both sides marked
    scores = {r["student"]: r["score"] for r in json.loads((out / "results.json").read_text())}
    assert scores == {"ada": 10, "ben": 10, "eli": 10}  # a flag, never a score change
    # nothing changed: the pairs are not computed again; a changed submission: they are
    stamp = (out / "similarity.json").stat().st_mtime_ns
    grade_class(subs, out, jobs=1, pages=HTML_PAGES)
    assert (out / "similarity.json").stat().st_mtime_ns == stamp
    (subs / "eli" / "softmax.py").write_text(L.NAIVE_SOFTMAX)
    grade_class(subs, out, jobs=1, pages=HTML_PAGES)
    assert json.loads((out / "similarity.json").read_text())["pairs"] == []
    assert not (out / "similarity").exists()
