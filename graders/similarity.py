"""Near-identical code between students: winnowed fingerprints, as MOSS computes them.

Each student's Python (``.py`` files and notebook code cells; expression
files are too short to tell anything) is tokenised and normalised so that
what a copier changes cheaply does not count: comments and whitespace are
dropped, every identifier becomes ``V`` (keywords, builtins and attribute
names stay, they carry the structure), every string ``S`` and every number
``N``. Hashes of the ``K``-token windows are *winnowed* (Schleimer, Wilkerson
and Aiken, SIGMOD 2003): of every ``W`` consecutive hashes the smallest is
kept, so any shared run of at least ``K + W - 1`` tokens is found, whatever
surrounds it.

Fingerprints of the exercises' starter code, and those found in more than
``common_limit(n)`` students' code (a quarter of the class, between 4 and 25:
MOSS's ``-m``; what much of the class writes, or what the course handed out,
proves nothing), are ignored. A pair
is listed when it shares at least ``MIN_SHARED`` fingerprints and they make
at least ``THRESHOLD`` of the smaller submission's fingerprints.

This is a flag for a person to look at, with the matching lines side by
side; it never changes a score and is never a verdict. Nothing here runs or
imports student code: the text is only tokenised.
"""
from __future__ import annotations

import builtins
import hashlib
import io
import keyword
import math
import re
import tokenize
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations
from pathlib import Path

K = 12  # tokens per hashed window
W = 8  # hashes per winnowing window
THRESHOLD = 0.6  # shared fingerprints / fingerprints of the smaller submission
MIN_SHARED = 6  # a pair shares at least this many fingerprints
COMMON_FRACTION = 0.25  # a fingerprint in more than this share of the class is ignored...
COMMON_FLOOR = 4  # ...the limit never below this many students...
COMMON_CAP = 25  # ...nor above this many (MOSS's -m defaults to 10)
MAX_PAIRS = 200  # pairs kept (the most similar)
MAX_SOURCE_CHARS = 400_000  # per student

KEEP_NAMES = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {"self", "cls"}
_FALLBACK_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\"[^\"\n]*\"|'[^'\n]*'|\S")


@dataclass(frozen=True)
class Token:
    text: str
    file: int  # index into the student's files
    line: int


@dataclass(frozen=True)
class SourceFile:
    """One file of a student's code as the side-by-side view shows it."""

    name: str
    text: str


@dataclass
class Fingerprinted:
    """A student's code and its winnowed fingerprints (hash -> where it occurs)."""

    student: str
    files: list[SourceFile]
    prints: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)  # hash -> [(file, first, last line)]


@dataclass(frozen=True)
class Pair:
    """Two students whose code is near-identical."""

    a: str
    b: str
    similarity: float  # shared / fingerprints of the smaller submission
    shared: int
    a_share: float  # of a's fingerprints, the share found in b
    b_share: float
    a_lines: dict[int, tuple[int, ...]]  # file index -> matching line numbers
    b_lines: dict[int, tuple[int, ...]]

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "similarity": round(self.similarity, 4), "shared": self.shared,
                "a_share": round(self.a_share, 4), "b_share": round(self.b_share, 4),
                "a_lines": {str(k): list(v) for k, v in self.a_lines.items()},
                "b_lines": {str(k): list(v) for k, v in self.b_lines.items()}}


def normalized_tokens(text: str, file: int = 0) -> list[Token]:
    """The tokens of a Python source, normalised (see the module doc). Never raises:
    code that does not tokenise is split by a plain regular expression instead."""
    out: list[Token] = []
    prev = ""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            t = tok.type
            if t in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                     tokenize.ENDMARKER, tokenize.ENCODING):
                continue
            out.append(Token(_norm(tok.string, t, prev), file, tok.start[0]))
            prev = tok.string
    except (tokenize.TokenError, IndentationError, SyntaxError, ValueError):
        out = []
        for n, line in enumerate(text.splitlines(), start=1):
            code = line.split("#", 1)[0]
            for m in _FALLBACK_TOKEN.finditer(code):
                s = m.group()
                kind = (tokenize.NAME if s[0].isalpha() or s[0] == "_" else
                        tokenize.NUMBER if s[0].isdigit() else
                        tokenize.STRING if s[0] in "\"'" else tokenize.OP)
                out.append(Token(_norm(s, kind, prev), file, n))
                prev = s
    return out


def _norm(s: str, kind: int, prev: str) -> str:
    if kind == tokenize.NAME:
        return s if s in KEEP_NAMES or prev == "." else "V"
    if kind == tokenize.STRING or (hasattr(tokenize, "FSTRING_START") and kind in (
            tokenize.FSTRING_START, tokenize.FSTRING_MIDDLE, tokenize.FSTRING_END)):
        return "S"
    if kind == tokenize.NUMBER:
        return "N"
    return s


_MOD = (1 << 61) - 1  # a Mersenne prime: the k-gram hashes are computed rolling, modulo it
_BASE = 1_000_003


@lru_cache(maxsize=4096)
def _code(text: str) -> int:
    # a stable code per normalised token (Python's hash() changes between runs)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=7).digest(), "big")


def winnow(tokens: list[Token], k: int = K, w: int = W) -> dict[int, list[tuple[int, int, int]]]:
    """The winnowed fingerprints of a token list: hash -> [(file, first line, last line)].

    Every ``w`` consecutive ``k``-gram hashes keep their minimum (the rightmost
    on ties); a sequence shorter than ``k`` tokens has no fingerprint.
    """
    prints: dict[int, list[tuple[int, int, int]]] = {}
    if len(tokens) < k:
        return prints
    codes = [_code(t.text) for t in tokens]
    top = pow(_BASE, k - 1, _MOD)
    hashes, h = [], 0
    for i, c in enumerate(codes):  # rolling hash of each k-gram
        if i >= k:
            h = (h - codes[i - k] * top) % _MOD
        h = (h * _BASE + c) % _MOD
        if i >= k - 1:
            hashes.append(h)
    window = min(w, len(hashes))
    queue: deque[int] = deque()  # positions of increasing hashes: the window's minimum first
    last = -1
    for i, hv in enumerate(hashes):
        while queue and hashes[queue[-1]] >= hv:  # ">=": the rightmost of equal minima wins
            queue.pop()
        queue.append(i)
        if queue[0] <= i - window:
            queue.popleft()
        if i >= window - 1 and queue[0] != last:
            last = queue[0]
            first, end = tokens[last], tokens[last + k - 1]
            span = (first.file, first.line, end.line if end.file == first.file else first.line)
            prints.setdefault(hashes[last], []).append(span)
    return prints


def fingerprint(student: str, files: list[SourceFile]) -> Fingerprinted:
    """A student's files (in order) fingerprinted together."""
    tokens: list[Token] = []
    for n, f in enumerate(files):
        tokens += normalized_tokens(f.text[:MAX_SOURCE_CHARS], n)
    return Fingerprinted(student, files, winnow(tokens))


def common_limit(n_students: int) -> int:
    """A fingerprint found in more students than this is ignored (the class's common code)."""
    return max(COMMON_FLOOR, min(COMMON_CAP, math.ceil(COMMON_FRACTION * n_students)))


def compare(subs: list[Fingerprinted], base: list[str] = (), threshold: float = THRESHOLD,
            min_shared: int = MIN_SHARED, max_pairs: int = MAX_PAIRS) -> list[Pair]:
    """Pairs of submissions whose code is near-identical, most similar first.

    ``base`` is code every student was given (the starters): its fingerprints
    never count. Deterministic: the same submissions give the same pairs.
    """
    ignored: set[int] = set()
    for text in base:
        ignored |= set(winnow(normalized_tokens(text)))
    postings: dict[int, list[int]] = {}
    for i, s in enumerate(subs):
        for h in s.prints:
            if h not in ignored:
                postings.setdefault(h, []).append(i)
    limit = common_limit(len(subs))
    kept = {h: ids for h, ids in postings.items() if len(ids) <= limit}
    sizes = [sum(1 for h in s.prints if h in kept) for s in subs]
    counts: dict[tuple[int, int], list[int]] = {}
    for h, ids in kept.items():
        for i, j in combinations(ids, 2):
            counts.setdefault((i, j), []).append(h)
    pairs = []
    for (i, j), hashes in counts.items():
        shared = len(hashes)
        smaller = min(sizes[i], sizes[j])
        if shared < min_shared or not smaller or shared / smaller < threshold:
            continue
        a, b = subs[i], subs[j]
        pairs.append(Pair(a.student, b.student, shared / smaller, shared, shared / sizes[i], shared / sizes[j],
                          _lines(a, hashes), _lines(b, hashes)))
    pairs.sort(key=lambda p: (-p.similarity, -p.shared, p.a, p.b))
    return pairs[:max_pairs]


def _lines(sub: Fingerprinted, hashes: list[int]) -> dict[int, tuple[int, ...]]:
    lines: dict[int, set[int]] = {}
    for h in hashes:
        for f, first, last in sub.prints.get(h, ()):
            lines.setdefault(f, set()).update(range(first, last + 1))
    return {f: tuple(sorted(v)) for f, v in sorted(lines.items())}


def student_sources(path: Path) -> list[SourceFile]:
    """The Python a student submitted (``.py`` files and notebooks' code cells), by file name.
    Unreadable files are left out: similarity is a flag, never a reason to fail a batch."""
    from dlgrade.graders.submission import Submission, SubmissionError

    try:
        sub = Submission(path)
        files = sub.files()
    except (SubmissionError, OSError):
        return []
    out = []
    for p in files:
        if p.suffix not in (".py", ".ipynb"):
            continue
        try:
            text, _ = sub.python_of(p)
        except (SubmissionError, OSError, ValueError):
            continue
        out.append(SourceFile(p.name, text))
    return out


__all__ = ["Pair", "SourceFile", "Fingerprinted", "normalized_tokens", "winnow", "fingerprint", "compare",
           "common_limit", "student_sources", "K", "W", "THRESHOLD", "MIN_SHARED"]
