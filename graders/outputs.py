"""Reading what a student process wrote, as plain data and nothing more.

The job directory is writable by the student's code, so every read here is
defensive: names must look like ours, files must be regular files reached
without following links, sizes are capped, ``.npy`` files are loaded with
``allow_pickle=False`` and must hold numeric or boolean data. A value that
fails any of these becomes an :class:`Opaque` leaf, which earns no credit.
"""
from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_JOURNAL_BYTES = 4 * 2**20
MAX_ARRAY_BYTES = 512 * 2**20
_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}\.npy$")


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


def _open_regular(path: Path, limit: int):
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
        os.close(fd)
        raise ValueError("not a regular file of reasonable size")
    return os.fdopen(fd, "rb")


def read_array(job_dir: Path, name: str) -> np.ndarray:
    """Load one .npy the job wrote; raise ValueError if it is not plain numeric data."""
    if not _NAME.match(name):
        raise ValueError(f"unexpected file name {name!r}")
    with _open_regular(job_dir / name, MAX_ARRAY_BYTES) as f:
        arr = np.load(f, allow_pickle=False)
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise ValueError("not a numeric array")
    return arr


def read_journal(job_dir: Path) -> list[dict]:
    """The job's step records, in order; an unreadable journal reads as empty."""
    try:
        with _open_regular(job_dir / "journal.jsonl", MAX_JOURNAL_BYTES) as f:
            raw = f.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return []
    records = []
    for line in raw.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            break
        if isinstance(rec, dict):
            records.append(rec)
    return records


def decode(tree, job_dir: Path):
    """Turn the journal's description of a returned value into Python data.

    Arrays become :class:`Leaf`, sequences tuples, maps dicts, strings str;
    anything else an :class:`Opaque`.
    """
    if not isinstance(tree, dict):
        return Opaque("malformed")
    t = tree.get("t")
    if t == "array":
        try:
            arr = read_array(job_dir, str(tree.get("file", "")))
        except (OSError, ValueError):
            return Opaque("unreadable array")
        info = tree.get("torch")
        tinfo = None
        if isinstance(info, dict):
            tinfo = TensorInfo(device=str(info.get("device", "")), dtype=str(info.get("dtype", "")),
                               requires_grad=bool(info.get("requires_grad")),
                               grad_fn=bool(info.get("grad_fn")),
                               shape=tuple(int(x) for x in info.get("shape", [])))
        return Leaf(array=arr, python=str(tree.get("python", "")),
                    subclass=str(tree.get("subclass", "")), torch=tinfo)
    if t == "seq":
        items = tree.get("items", [])
        return tuple(decode(x, job_dir) for x in items) if isinstance(items, list) else Opaque("malformed")
    if t == "map":
        items = tree.get("items", {})
        if not isinstance(items, dict):
            return Opaque("malformed")
        return {str(k): decode(v, job_dir) for k, v in items.items()}
    if t == "str":
        return str(tree.get("value", ""))
    if t == "none":
        return None
    if t == "tensor-meta":
        return Opaque("tensor on the meta device")
    return Opaque(str(tree.get("type", "unknown"))[:80])
