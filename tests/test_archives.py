"""graders/archives.py: a download read without trusting it (zip archives and folders)."""
from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path

import pytest

from dlgrade.graders.archives import (ArchiveEntryError, ArchiveError, FolderSource, Limits, ZipSource, clean_path,
                              open_source)


def make_zip(files, **kw) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            z.writestr(name, data, **kw)
    return buf.getvalue()


def _central_records(data: bytes):
    """(offset, record) of each central-directory header in ``data``."""
    pos = 0
    while True:
        pos = data.find(b"PK\x01\x02", pos)
        if pos < 0:
            return
        yield pos
        pos += 4


def patch_central(data: bytes, field_offset: int, fmt: str, value) -> bytes:
    """Set one field of every central-directory record (offsets as in the zip spec)."""
    out = bytearray(data)
    for pos in _central_records(data):
        struct.pack_into(fmt, out, pos + field_offset, value)
    return bytes(out)


@pytest.mark.parametrize("name, clean", [
    ("a/b.py", "a/b.py"), ("./a//b.py", "a/b.py"), ("a\\b.py", "a/b.py"), ("Müller.py", "Müller.py"),
    ("../evil.py", None), ("a/../../evil.py", None), ("/etc/passwd", None), ("C:\\Windows\\x", None),
    ("a\\..\\..\\b", None), ("a\x00b", None), ("a\nb", None), ("", None), ("..", None),
])
def test_clean_path(name, clean):
    assert clean_path(name) == clean


@pytest.mark.parametrize("name", ["../evil.py", "sub/../../evil.py", "/abs/evil.py", "C:/evil.py",
                                  "..\\..\\evil.py"])
def test_a_zip_with_a_path_outside_itself_is_refused(name):
    data = make_zip([("ok.py", "x = 1\n"), (name, "import os\n")])
    with pytest.raises(ArchiveError) as exc:
        ZipSource(data, "class.zip")
    assert str(exc.value) == f"class.zip: refused: entry {name!r} points outside the archive (path traversal)"


def test_a_zip_with_a_symbolic_link_is_refused():
    info = zipfile.ZipInfo("answers/softmax.py")
    info.create_system = 3
    info.external_attr = (0o120777 << 16)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(info, "/etc/passwd")
    with pytest.raises(ArchiveError) as exc:
        ZipSource(buf.getvalue(), "class.zip")
    assert str(exc.value) == "class.zip: refused: entry 'answers/softmax.py' is a symbolic link"


def test_a_zip_bomb_is_refused_before_anything_is_inflated():
    data = make_zip([("softmax.py", b"0" * (40 * 2**20))])  # 40 MiB of one byte: about 40 KiB zipped
    assert len(data) < 200_000
    with pytest.raises(ArchiveError) as exc:
        ZipSource(data, "bomb.zip")
    assert str(exc.value).startswith("bomb.zip: refused: entry 'softmax.py' expands ")
    assert str(exc.value).endswith("x (to 41943040 bytes): a zip bomb?")


def test_overlapping_entries_are_refused():
    """The "better zip bomb": many central-directory entries over one compressed stream."""
    data = make_zip([("a.py", "x = 1\n" * 100), ("b.py", "y = 2\n" * 100), ("c.py", "z = 3\n" * 100)])
    overlapped = patch_central(data, 42, "<I", 0)  # every entry's local header at offset 0
    with pytest.raises(ArchiveError) as exc:
        ZipSource(overlapped, "overlap.zip")
    assert str(exc.value) == "overlap.zip: refused: entries 'a.py' and 'b.py' overlap inside the file: a zip bomb?"


def test_limits_on_count_and_declared_size():
    data = make_zip([(f"s{i}.py", "x = 1\n") for i in range(6)])
    with pytest.raises(ArchiveError) as exc:
        ZipSource(data, "many.zip", Limits(max_entries=5))
    assert str(exc.value) == "many.zip: refused: 6 entries (the limit is 5)"
    with pytest.raises(ArchiveError) as exc:
        ZipSource(data, "big.zip", Limits(max_declared_bytes=30))
    assert str(exc.value) == "big.zip: refused: it would expand to 36 bytes (the limit is 30): a zip bomb?"


def test_the_bytes_read_in_one_intake_are_capped():
    src = ZipSource(make_zip([("a.py", "a" * 60), ("b.py", "b" * 60)]), "class.zip", Limits(max_read_bytes=100))
    a, b = src.entries
    assert a.read() == b"a" * 60
    with pytest.raises(ArchiveError) as exc:
        b.read()
    assert str(exc.value) == "class.zip: refused: reading it would take more than 100 bytes (the limit for one download)"


def test_an_entry_that_lies_about_its_size_is_not_trusted():
    data = make_zip([("softmax.py", "import numpy as np\n" * 50)])
    lying = patch_central(data, 24, "<I", 10)  # the uncompressed size it declares
    src = ZipSource(lying, "class.zip")
    (entry,) = src.entries
    assert entry.size == 10
    with pytest.raises((ArchiveEntryError, ArchiveError)):
        entry.read()


def test_a_file_over_the_read_limit_is_an_entry_error():
    src = ZipSource(make_zip([("big.py", "x" * 500)]), "class.zip", Limits(max_file_bytes=100))
    with pytest.raises(ArchiveEntryError) as exc:
        src.entries[0].read()
    assert str(exc.value) == "big.py: too large (more than 100 bytes)"


def test_encrypted_entries_are_skipped_and_reported():
    data = make_zip([("secret.py", "x = 1\n"), ("open.py", "y = 2\n")])
    out = bytearray(data)
    first = next(_central_records(data))
    struct.pack_into("<H", out, first + 8, 0x1)  # general-purpose flag: encrypted
    src = ZipSource(bytes(out), "class.zip")
    assert [e.path for e in src.entries] == ["open.py"]
    assert [(s.path, s.reason) for s in src.skipped] == [("secret.py", "encrypted: not read")]


def test_utf8_names_without_the_utf8_flag_are_decoded():
    class NoFlag(zipfile.ZipInfo):
        __slots__ = ()

        def _encodeFilenameFlags(self):
            return self.filename.encode("utf-8"), self.flag_bits & ~0x800

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(NoFlag("müllerjosé_1002_50001_softmax.py"), "x = 1\n")
        z.writestr("ascii.py", "y = 2\n")
    src = ZipSource(buf.getvalue(), "class.zip")
    assert sorted(e.path for e in src.entries) == ["ascii.py", "müllerjosé_1002_50001_softmax.py"]


def test_not_a_zip_is_one_clear_error(tmp_path):
    p = tmp_path / "submissions.zip"
    p.write_bytes(b"this is not a zip archive")
    with pytest.raises(ArchiveError) as exc:
        open_source(p)
    assert str(exc.value).startswith(f"{p}: not a readable zip archive (")
    with pytest.raises(ArchiveError) as exc:
        open_source(tmp_path / "nope.zip")
    assert str(exc.value) == f"{tmp_path / 'nope.zip'}: no such file or folder"


def test_a_folder_is_walked_without_following_links(tmp_path):
    root = tmp_path / "download"
    (root / "ada").mkdir(parents=True)
    (root / "ada" / "softmax.py").write_text("x = 1\n")
    (root / "ada" / ".git").mkdir()
    (root / "ada" / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    secret = tmp_path / "secret.py"
    secret.write_text("TOKEN = 'do not read'\n")
    (root / "ada" / "link.py").symlink_to(secret)
    (root / "ada" / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(root / "ada" / "pipe.py")
    src = FolderSource(root)
    assert [e.path for e in src.entries] == ["ada/softmax.py"]
    assert sorted((s.path, s.reason) for s in src.skipped) == [
        ("ada/.git/", "the repository's version-control data, not a submission"),
        ("ada/link.py", "a symbolic link: not followed"),
        ("ada/linkdir/", "a symbolic link: not followed"),
        ("ada/pipe.py", "not a regular file"),
    ]
    assert src.pruned == ["ada/.git"]
    assert src.entries[0].read() == b"x = 1\n"


def test_a_file_swapped_for_a_link_after_the_walk_is_not_followed(tmp_path):
    root = tmp_path / "download"
    root.mkdir()
    (root / "softmax.py").write_text("x = 1\n")
    src = FolderSource(root)
    (root / "softmax.py").unlink()
    (root / "softmax.py").symlink_to(tmp_path / "elsewhere.py")
    (tmp_path / "elsewhere.py").write_text("TOKEN = 1\n")
    with pytest.raises(OSError):
        src.entries[0].read()


def test_a_folder_with_too_many_files_is_refused(tmp_path):
    for i in range(4):
        (tmp_path / f"s{i}.py").write_text("x\n")
    with pytest.raises(ArchiveError) as exc:
        FolderSource(tmp_path, "class", Limits(max_entries=3))
    assert str(exc.value) == "class: refused: more than 3 files"


def test_nothing_is_written_while_reading(tmp_path):
    data = make_zip([("a/b.py", "x = 1\n")])
    p = tmp_path / "class.zip"
    p.write_bytes(data)
    before = sorted(Path(tmp_path).rglob("*"))
    with open_source(p) as src:
        assert src.entries[0].read() == b"x = 1\n"
    assert sorted(Path(tmp_path).rglob("*")) == before
