"""Reading what a student process wrote, as plain data and nothing more.

The job directory is writable by the student's code, so every read here is
defensive:

* files are opened relative to the job directory's own descriptor, never
  following a symbolic link (for the directory or the file), without blocking
  (a FIFO is refused, not waited on), and only if they are regular files of a
  bounded size;
* ``.npy`` files are parsed header first (versions 1 and 2 only; numeric or
  boolean dtypes only; the data must be exactly as long as the header says)
  and then read as raw bytes: nothing is unpickled, memory-mapped or allocated
  from a size the student claimed;
* a job may not make the grader read more than :data:`MAX_JOB_READ_BYTES`
  in all, however often its journal names the same file;
* the journal is plain JSON lines; every string in it is cleaned of control
  characters (no terminal escape sequences reach an instructor's terminal)
  and of the job directory's path, every number checked, nesting bounded.

A value that fails any of these becomes an :class:`Opaque` leaf, which earns
no credit.
"""
from __future__ import annotations

import json
import math
import os
import re
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_JOURNAL_BYTES = 4 * 2**20
MAX_ARRAY_BYTES = 256 * 2**20
MAX_JOB_READ_BYTES = 512 * 2**20
MAX_NODES = 20_000  # values decoded from one journal tree
MAX_DEPTH = 12
MAX_TEXT = 20_000
_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}\.npy$")
_JOB_PATH = re.compile(r"[^\s'\"]*/jobs/[0-9a-f]{16}/")
# C0/C1 controls but tab and newline, zero-width and bidirectional overrides, and what no
# UTF-8 file or XML document can hold: lone surrogates (JSON escapes, undecodable file
# names), U+FFFE and U+FFFF
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff"
                      "\ud800-\udfff\ufffe\uffff]")

_budgets: dict[str, int] = {}
_budget_lock = threading.Lock()


@dataclass(frozen=True)
class Opaque:
    """A returned value dlgrade will not interpret (not a plain number or array)."""

    type: str

    def __repr__(self) -> str:
        return f"<{self.type}>"


@dataclass(frozen=True)
class TensorInfo:
    """What a returned torch tensor said about itself (device, dtype, autograd)."""

    device: str
    dtype: str
    requires_grad: bool
    grad_fn: bool
    shape: tuple


@dataclass(frozen=True)
class Leaf:
    """A numeric value the student returned, with where it came from."""

    array: np.ndarray
    python: str = ""  # "float"/"int"/"bool" when a Python scalar was returned
    subclass: str = ""  # the ndarray subclass it claimed to be, if any
    torch: TensorInfo | None = None


def clean_text(text: str, limit: int | None = MAX_TEXT) -> str:
    """Student-produced text made safe to print: private job paths removed,
    control characters shown as escapes, at most ``limit`` characters."""
    text = _JOB_PATH.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                        else f"\\u{ord(m.group()):04x}", text)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return text


# --------------------------------------------------------------------------- files


def _open_in(job_dir: Path, name: str) -> int:
    """A descriptor for ``job_dir/name``: no links followed, no FIFO waited on."""
    dfd = os.open(job_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0), dir_fd=dfd)
    finally:
        os.close(dfd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError("not a regular file")
    return fd


def _read_exactly(fd: int, n: int) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = os.readv(fd, [view[got:]])
        if k <= 0:
            raise ValueError("file shorter than its header says")
        got += k
    return buf


def _charge(job_dir: Path, nbytes: int) -> None:
    key = str(job_dir)
    with _budget_lock:
        used = _budgets.get(key, 0) + nbytes
        if used > MAX_JOB_READ_BYTES:
            raise ValueError("the job's outputs are too large")
        _budgets[key] = used


def forget(job_dir: Path) -> None:
    """Drop the read budget kept for a job directory (when it is deleted)."""
    with _budget_lock:
        _budgets.pop(str(job_dir), None)


def read_array(job_dir: Path, name: str) -> np.ndarray:
    """Load one .npy the job wrote; raise ValueError if it is not plain numeric data."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"unexpected file name {name!r}")
    try:
        fd = _open_in(job_dir, name)
    except OSError as exc:
        raise ValueError(f"cannot open {name}: {exc.strerror}") from None
    try:
        size = os.fstat(fd).st_size
        if size > MAX_ARRAY_BYTES:
            raise ValueError("array file too large")
        with os.fdopen(os.dup(fd), "rb") as f:
            try:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError("unsupported .npy version")
                offset = f.tell()
            except Exception as exc:  # numpy raises several types for a bad header
                raise ValueError(f"malformed .npy header: {type(exc).__name__}") from None
        if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf" or dtype.hasobject \
                or dtype.fields is not None or dtype.subdtype is not None:
            raise ValueError("not a numeric array")
        if not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape) \
                or len(shape) > 32:
            raise ValueError("malformed shape")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if nbytes != size - offset:
            raise ValueError("file length does not match its header")
        _charge(job_dir, nbytes)
        os.lseek(fd, offset, os.SEEK_SET)
        buf = _read_exactly(fd, nbytes)
    finally:
        os.close(fd)
    arr = np.frombuffer(buf, dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")
    return arr


def read_journal(job_dir: Path) -> list[dict]:
    """The job's step records, in order, cleaned; an unreadable journal reads as empty.

    Only the first :data:`MAX_JOURNAL_BYTES` are read; reading stops at the
    first line that is not a JSON object.
    """
    try:
        fd = _open_in(job_dir, "journal.jsonl")
    except (OSError, ValueError):
        return []
    try:
        raw = os.read(fd, MAX_JOURNAL_BYTES) if os.fstat(fd).st_size else b""
        while len(raw) < MAX_JOURNAL_BYTES:
            more = os.read(fd, MAX_JOURNAL_BYTES - len(raw))
            if not more:
                break
            raw += more
    except OSError:
        return []
    finally:
        os.close(fd)
    records = []
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):
            break
        if not isinstance(rec, dict):
            break
        records.append(_clean_record(rec))
    return records


# --------------------------------------------------------------------------- journal records


def _clean_json(value, depth: int = 0):
    """Any JSON value with its strings cleaned, numbers finite, nesting bounded."""
    if depth > MAX_DEPTH * 2:
        return None
    if isinstance(value, str):
        return clean_text(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_clean_json(v, depth + 1) for v in value[:MAX_NODES]]
    if isinstance(value, dict):
        return {clean_text(str(k), 200): _clean_json(v, depth + 1) for k, v in list(value.items())[:MAX_NODES]}
    return None


def _clean_error(err) -> dict:
    if not isinstance(err, dict):
        return {}
    out = _clean_json(err)
    for key in ("type", "message", "text"):
        if key in out and not isinstance(out[key], str):
            out[key] = str(out[key])
    for key in ("line", "offset"):
        if key in out and type(out[key]) is not int:
            out[key] = None
    frames = out.get("frames")
    if frames is not None:
        out["frames"] = [
            {"line": f.get("line") if type(f.get("line")) is int else None,
             "function": str(f.get("function", ""))[:200], "code": str(f.get("code", ""))[:300],
             **({"file": str(f["file"])[:200]} if "file" in f else {})}
            for f in (frames if isinstance(frames, list) else [])[-20:] if isinstance(f, dict)]
    return out


def _clean_record(rec: dict) -> dict:
    """One journal record with every field the grader reads of the right type."""
    out = _clean_json(rec)
    out["step"] = out.get("step") if isinstance(out.get("step"), str) else "malformed"
    if "status" in out and not isinstance(out["status"], str):
        out["status"] = "malformed"
    if "id" in out:
        out["id"] = str(out["id"]) if out["id"] is not None else ""
    if "seconds" in out:
        s = out["seconds"]
        out["seconds"] = float(s) if isinstance(s, (int, float)) and not isinstance(s, bool) and s >= 0 else 0.0
    if "code" in out and not (out["code"] is None or type(out["code"]) in (int, str)):
        out["code"] = None
    if "error" in out:
        out["error"] = _clean_error(out["error"])
    if "names" in out:
        names = out["names"] if isinstance(out["names"], list) else []
        out["names"] = [n for n in names if isinstance(n, str)][:50]
    if "type" in out and not isinstance(out["type"], str):
        out["type"] = "malformed"
    if "args_after" in out and not isinstance(out["args_after"], list):
        out["args_after"] = []
    if "backward" in out:
        bw = out["backward"] if isinstance(out["backward"], dict) else {}
        out["backward"] = {**bw, "status": bw.get("status") if isinstance(bw.get("status"), str) else "malformed",
                           "error": _clean_error(bw.get("error", {})),
                           "grads": bw.get("grads") if isinstance(bw.get("grads"), list) else []}
    return out


# --------------------------------------------------------------------------- values


def decode(tree, job_dir: Path):
    """Turn the journal's description of a returned value into Python data.

    Arrays become :class:`Leaf`, sequences tuples, maps dicts, strings str;
    anything else (or anything malformed, too large or too deep) an :class:`Opaque`.
    """
    return _Decoder(job_dir).decode(tree, 0)


class _Decoder:
    def __init__(self, job_dir: Path):
        self.job_dir = job_dir
        self.nodes = 0

    def decode(self, tree, depth: int):
        self.nodes += 1
        if self.nodes > MAX_NODES:
            return Opaque("too large a structure")
        if depth > MAX_DEPTH:
            return Opaque("nested too deeply")
        if not isinstance(tree, dict):
            return Opaque("malformed")
        try:
            return self._decode(tree, depth)
        except (ValueError, TypeError, OverflowError):
            return Opaque("malformed")

    def _decode(self, tree: dict, depth: int):
        t = tree.get("t")
        if t == "array":
            try:
                arr = read_array(self.job_dir, tree.get("file", ""))
            except (OSError, ValueError):
                return Opaque("unreadable array")
            info = tree.get("torch")
            tinfo = None
            if isinstance(info, dict):
                shape = info.get("shape", [])
                if not isinstance(shape, list) or not all(type(x) is int for x in shape):
                    return Opaque("malformed")
                tinfo = TensorInfo(device=_text(info.get("device")), dtype=_text(info.get("dtype")),
                                   requires_grad=info.get("requires_grad") is True,
                                   grad_fn=info.get("grad_fn") is True, shape=tuple(shape))
            return Leaf(array=arr, python=_text(tree.get("python")), subclass=_text(tree.get("subclass")),
                        torch=tinfo)
        if t == "seq":
            items = tree.get("items")
            if not isinstance(items, list):
                return Opaque("malformed")
            return tuple(self.decode(x, depth + 1) for x in items[:MAX_NODES])
        if t == "map":
            items = tree.get("items")
            if not isinstance(items, dict):
                return Opaque("malformed")
            return {clean_text(str(k), 200): self.decode(v, depth + 1) for k, v in list(items.items())[:MAX_NODES]}
        if t == "str":
            value = tree.get("value", "")
            return clean_text(value) if isinstance(value, str) else Opaque("malformed")
        if t == "none":
            return None
        if t == "tensor-meta":
            return Opaque("tensor on the meta device")
        return Opaque(_text(tree.get("type")) or "unknown")


def _text(value, limit: int = 80) -> str:
    return clean_text(value, limit) if isinstance(value, str) else ""
