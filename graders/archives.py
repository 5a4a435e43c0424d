"""Reading an LMS download without trusting it: a zip archive or a folder as a list of regular files.

Both kinds of source give the same thing: :class:`Entry` records for regular
files, each with a clean relative POSIX path (never absolute, never ``..``,
no drive letter, no NUL or control character) and a bounded ``read()``; and
:class:`Skipped` records for everything that was not taken, with the reason.

A zip archive is checked as a whole before anything is read: an entry that
would land outside the archive, a symbolic link, too many entries, a declared
size beyond the limits, a compression ratio no source file has, or entries
that overlap inside the file (the "better zip bomb") refuse the archive with
one :class:`ArchiveError` line. Reading never trusts the declared sizes
either: an entry that inflates beyond what it declared stops the intake, and
the bytes actually inflated in one intake are capped.

A folder is walked without following links: a link, FIFO, socket or device
is reported as skipped and never opened; files are opened with
``O_NOFOLLOW`` and checked again on the open descriptor.

Nothing here interprets what it reads.
"""
from __future__ import annotations

import io
import os
import stat
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dlgrade.graders.submission import MAX_FILE_BYTES
from dlgrade.graders.errors import SubmissionProblem, UserError

# Entries whose first path component is one of these are an archiver's or an
# editor's, never a student's; they are reported once per folder, not per file.
JUNK_DIRS = frozenset({"__MACOSX", "__pycache__", ".git", ".ipynb_checkpoints", ".svn", ".hg"})
JUNK_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


@dataclass(frozen=True)
class Limits:
    """How much of a download dlgrade reads (module constants; tests shrink them)."""

    max_entries: int = 100_000  # entries in one archive or files in one folder tree
    max_declared_bytes: int = 8 * 2**30  # sum of the sizes an archive's entries declare
    max_read_bytes: int = 1 * 2**30  # bytes actually inflated or read in one intake
    max_file_bytes: int = MAX_FILE_BYTES  # one submission file (larger ones are skipped)
    max_nested_bytes: int = 64 * 2**20  # one zip a student uploaded inside the download
    max_ratio: int = 200  # inflated / compressed, for entries larger than ratio_floor
    ratio_floor: int = 2**20


DEFAULT_LIMITS = Limits()


class ArchiveError(UserError):
    """The download as a whole cannot be read safely (a usage error: one line, exit 2)."""


@dataclass(frozen=True)
class Skipped:
    """A file (or folder) of the download that was not taken, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Entry:
    """A regular file of the download: a clean relative path, its size, a bounded reader."""

    path: str
    size: int
    reader: Callable[[int | None], bytes] = field(repr=False, compare=False)
    mtime: float = 0.0  # seconds since the epoch, 0 when unknown

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split("/"))

    def read(self, limit: int | None = None) -> bytes:
        """The file's bytes, at most ``limit`` (default: the source's limit for a file of
        this kind). Raises ArchiveError when it inflates beyond its declared size or
        the intake's read budget, ArchiveEntryError/OSError when it cannot be read."""
        return self.reader(limit)


class ReadBudget:
    """Bytes one intake may still read (shared by an archive and the zips nested in it)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0

    def take(self, n: int, label: str) -> None:
        self.used += n
        if self.used > self.limit:
            raise ArchiveError(f"{label}: refused: reading it would take more than {self.limit} bytes "
                               "(the limit for one download)")


def clean_path(name: str) -> str | None:
    """``name`` as a clean relative POSIX path, or None when it is absolute, has a drive,
    climbs with ``..``, or holds a NUL or control character. Backslashes count as
    separators (archives made on Windows); ``.`` and empty components are dropped."""
    if not name or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return None
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) >= 2 and text[1] == ":"):
        return None
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return unicodedata.normalize("NFC", "/".join(parts))


def junk_reason(name: str) -> str:
    """Why a junk folder or file was not taken."""
    if name in (".git", ".svn", ".hg"):
        return "the repository's version-control data, not a submission"
    return "an archiver's or editor's file, not the student's"


def is_junk(parts: tuple[str, ...]) -> bool:
    return any(p in JUNK_DIRS for p in parts[:-1]) or parts[-1] in JUNK_FILES or parts[-1].startswith("._")


def junk_root(parts: tuple[str, ...]) -> str:
    """The path reported for a junk entry: its junk folder, or the file itself."""
    for i, p in enumerate(parts[:-1]):
        if p in JUNK_DIRS:
            return "/".join(parts[: i + 1]) + "/"
    return "/".join(parts)


# --------------------------------------------------------------------------- zip archives


def _decoded_name(info: zipfile.ZipInfo) -> str:
    # Without the UTF-8 flag, zipfile decodes names as cp437; archivers (rubyzip
    # among them) often write UTF-8 bytes without setting it. Undo that when the
    # bytes are valid UTF-8: "MÃ¼ller" would otherwise become a student's name.
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def _is_link(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_ISLNK(mode)


def _is_special(info: zipfile.ZipInfo) -> bool:
    kind = stat.S_IFMT(info.external_attr >> 16)
    return info.create_system == 3 and kind not in (0, stat.S_IFREG, stat.S_IFDIR)


class ZipSource:
    """The entries of one zip archive, validated as a whole when it is opened."""

    def __init__(self, data_or_path, label: str, limits: Limits = DEFAULT_LIMITS,
                 budget: ReadBudget | None = None):
        self.label = label
        self.limits = limits
        self.budget = budget or ReadBudget(limits.max_read_bytes)
        try:
            handle = io.BytesIO(data_or_path) if isinstance(data_or_path, (bytes, bytearray)) \
                else open(data_or_path, "rb")
        except OSError as exc:
            raise ArchiveError(f"{label}: cannot be read ({exc.strerror or exc})") from None
        try:
            self._zip = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
            handle.close()
            raise ArchiveError(f"{label}: not a readable zip archive ({exc})") from None
        try:
            self.entries, self.skipped = self._validate()
            self.pruned: list[str] = []
        except BaseException:
            self._zip.close()
            raise

    def __enter__(self) -> "ZipSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        fp = self._zip.fp
        self._zip.close()
        if fp is not None:
            fp.close()

    def _refuse(self, why: str) -> ArchiveError:
        return ArchiveError(f"{self.label}: refused: {why}")

    def _validate(self) -> tuple[list[Entry], list[Skipped]]:
        lim = self.limits
        infos = self._zip.infolist()
        if len(infos) > lim.max_entries:
            raise self._refuse(f"{len(infos)} entries (the limit is {lim.max_entries})")
        declared = sum(i.file_size for i in infos)
        if declared > lim.max_declared_bytes:
            raise self._refuse(f"it would expand to {declared} bytes (the limit is "
                               f"{lim.max_declared_bytes}): a zip bomb?")
        # Entries must not share bytes: the overlapping-entries bomb points
        # thousands of central-directory entries at one compressed stream.
        # An entry spans at least its 30-byte local header and its compressed data,
        # so a next entry starting before that end certainly overlaps it.
        spans = sorted(((i.header_offset, i.header_offset + 30 + i.compress_size), n)
                       for n, i in enumerate(infos))
        for ((_, end), a), ((next_start, _), b) in zip(spans, spans[1:]):
            if next_start < end:
                raise self._refuse(f"entries {_decoded_name(infos[a])!r} and {_decoded_name(infos[b])!r} "
                                   "overlap inside the file: a zip bomb?")
        entries: dict[str, Entry] = {}
        skipped: list[Skipped] = []
        for info in infos:
            raw = _decoded_name(info)
            path = clean_path(raw)
            if path is None:
                raise self._refuse(f"entry {raw!r} points outside the archive (path traversal)")
            if _is_link(info):
                raise self._refuse(f"entry {raw!r} is a symbolic link")
            if info.is_dir():
                continue
            if _is_special(info):
                raise self._refuse(f"entry {raw!r} is not a regular file")
            if (info.file_size > lim.ratio_floor
                    and info.file_size > lim.max_ratio * max(1, info.compress_size)):
                raise self._refuse(f"entry {raw!r} expands {info.file_size // max(1, info.compress_size)}x "
                                   f"(to {info.file_size} bytes): a zip bomb?")
            if info.flag_bits & 0x1:
                skipped.append(Skipped(path, "encrypted: not read"))
                continue
            if path in entries:
                skipped.append(Skipped(path, "a second entry with the same name: the last one is taken"))
            mtime = _zip_mtime(info)
            entries[path] = Entry(path, info.file_size, _ZipReader(self, info, path), mtime)
        return list(entries.values()), skipped

    def read(self, info: zipfile.ZipInfo, path: str, limit: int) -> bytes:
        """At most ``limit`` bytes of an entry; never more than it declared."""
        want = min(info.file_size, limit)
        try:
            with self._zip.open(info) as f:
                data = f.read(want + 1)
        except (zipfile.BadZipFile, EOFError, NotImplementedError, ValueError, OSError) as exc:
            raise ArchiveEntryError(f"{path}: cannot be read from the archive ({exc})") from None
        except RuntimeError as exc:  # zipfile's "encrypted" / "bad password"
            raise ArchiveEntryError(f"{path}: cannot be read from the archive ({exc})") from None
        if len(data) > info.file_size:
            raise self._refuse(f"entry {path!r} inflates beyond the {info.file_size} bytes it declares: "
                               "a zip bomb?")
        self.budget.take(len(data), self.label)
        if len(data) > limit:
            raise ArchiveEntryError(f"{path}: too large (more than {limit} bytes)")
        return data


class ArchiveEntryError(SubmissionProblem, OSError):
    """One entry of an otherwise sound archive cannot be read (corrupt data): it is skipped."""


class _ZipReader:
    def __init__(self, source: ZipSource, info: zipfile.ZipInfo, path: str):
        self.source, self.info, self.path = source, info, path

    def __call__(self, limit: int | None = None) -> bytes:
        return self.source.read(self.info, self.path, limit or _default_limit(self.source.limits, self.path))


def _default_limit(limits: Limits, path: str) -> int:
    return limits.max_nested_bytes if path.lower().endswith(".zip") else limits.max_file_bytes


def _zip_mtime(info: zipfile.ZipInfo) -> float:
    import datetime

    try:
        return datetime.datetime(*info.date_time).timestamp()
    except (ValueError, OverflowError, OSError):
        return 0.0


# --------------------------------------------------------------------------- folders


class FolderSource:
    """The regular files under a folder, walked without following links."""

    def __init__(self, root: Path, label: str | None = None, limits: Limits = DEFAULT_LIMITS,
                 budget: ReadBudget | None = None):
        self.root = Path(root)
        self.label = label or str(root)
        self.limits = limits
        self.budget = budget or ReadBudget(limits.max_read_bytes)
        self.entries: list[Entry] = []
        self.skipped: list[Skipped] = []
        self.pruned: list[str] = []  # junk folders seen but not walked (a repository's .git)
        self._walk()

    def __enter__(self) -> "FolderSource":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def close(self) -> None:
        pass

    def _walk(self) -> None:
        def onerror(exc: OSError) -> None:
            rel = os.path.relpath(exc.filename, self.root) if exc.filename else "."
            self.skipped.append(Skipped(Path(rel).as_posix(), f"cannot be read ({exc.strerror or exc})"))

        count = 0
        for dirpath, dirnames, filenames in os.walk(self.root, onerror=onerror, followlinks=False):
            rel_dir = Path(dirpath).relative_to(self.root)
            keep = []
            for d in sorted(dirnames):
                rel = (rel_dir / d).as_posix()
                if os.path.islink(os.path.join(dirpath, d)):
                    self.skipped.append(Skipped(rel + "/", "a symbolic link: not followed"))
                elif d in JUNK_DIRS:  # a repository's history, an archiver's leftovers: not walked
                    self.pruned.append(rel)
                    self.skipped.append(Skipped(rel + "/", junk_reason(d)))
                else:
                    keep.append(d)
            dirnames[:] = keep
            for name in sorted(filenames):
                count += 1
                if count > self.limits.max_entries:
                    raise ArchiveError(f"{self.label}: refused: more than {self.limits.max_entries} files")
                full = os.path.join(dirpath, name)
                rel = (rel_dir / name).as_posix()
                path = clean_path(rel)
                if path is None:
                    self.skipped.append(Skipped(rel, "a name that cannot be used safely"))
                    continue
                try:
                    st = os.lstat(full)
                except OSError as exc:
                    self.skipped.append(Skipped(path, f"cannot be read ({exc.strerror or exc})"))
                    continue
                if stat.S_ISLNK(st.st_mode):
                    self.skipped.append(Skipped(path, "a symbolic link: not followed"))
                elif not stat.S_ISREG(st.st_mode):
                    self.skipped.append(Skipped(path, "not a regular file"))
                else:
                    self.entries.append(Entry(path, st.st_size, _FileReader(self, full, path), st.st_mtime))


class _FileReader:
    def __init__(self, source: FolderSource, full: str, path: str):
        self.source, self.full, self.path = source, full, path

    def __call__(self, limit: int | None = None) -> bytes:
        limit = limit or _default_limit(self.source.limits, self.path)
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(self.full, flags)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ArchiveEntryError(f"{self.path}: not a regular file")
            with os.fdopen(fd, "rb", closefd=False) as f:
                data = f.read(limit + 1)
        finally:
            os.close(fd)
        self.source.budget.take(len(data), self.source.label)
        if len(data) > limit:
            raise ArchiveEntryError(f"{self.path}: too large (more than {limit} bytes)")
        return data


def open_source(path: Path, limits: Limits = DEFAULT_LIMITS, budget: ReadBudget | None = None):
    """A :class:`ZipSource` for a zip file, a :class:`FolderSource` for a folder.

    Raises ArchiveError when ``path`` is neither, or cannot be read safely.
    """
    path = Path(path)
    if path.is_dir():
        return FolderSource(path, str(path), limits, budget)
    if path.is_file():
        return ZipSource(path, str(path), limits, budget)
    if not path.exists():
        raise ArchiveError(f"{path}: no such file or folder")
    raise ArchiveError(f"{path}: neither a folder nor a zip archive")


__all__ = ["ArchiveError", "ArchiveEntryError", "Entry", "Skipped", "Limits", "DEFAULT_LIMITS", "ReadBudget",
           "ZipSource", "FolderSource", "open_source", "clean_path", "is_junk", "junk_root"]
