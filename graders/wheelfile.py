"""This dlgrade as a wheel, written without a build backend.

The Gradescope autograder (``dlgrade.graders.autograder``) ships dlgrade inside its
zip as a wheel, the way pip installs it anywhere else; ``dlgrade autograder``
may itself run from an installed wheel, where there is no source tree to build
from. So the wheel is written here, from the files of dlgrade's packages as
they are installed (or checked out), following the binary distribution format
(PEP 427, the ``.dist-info`` metadata of PEP 566): pure Python, tag
``py3-none-any``, every file hashed in ``RECORD``. The same files and the same
version always give the same bytes.
"""
from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.metadata
import io
import os
import stat
import zipfile
from pathlib import Path

from dlgrade.graders.errors import UserError

NAME = "dlgrade"
NAMESPACE = "dlgrade"  # the one top-level package a wheel installs
PACKAGES = ("dlgrade.graders", "dlgrade.reference", "dlgrade.reports", "dlgrade.exercises")
ENTRY_POINTS = "[console_scripts]\ndlgrade = dlgrade.graders.cli:main\n"
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints"}
SKIP_SUFFIXES = (".pyc", ".pyo")
DATE_TIME = (2020, 1, 1, 0, 0, 0)  # fixed: the same files give the same wheel


class WheelError(UserError):
    """The wheel cannot be written (unknown version, an unwritable output)."""


def files_under(folder: Path):
    """Every file of a package folder a wheel carries, in a stable order (no caches, no hidden files)."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if not name.endswith(SKIP_SUFFIXES) and not name.startswith("."):
                yield Path(dirpath) / name


def package_dir(name: str) -> Path:
    return Path(importlib.import_module(name).__file__).resolve().parent


def package_files() -> dict[str, Path]:
    """Name in the wheel -> file, for each of dlgrade's packages."""
    files = {}
    top = package_dir(NAMESPACE)
    for path in sorted(top.iterdir()):  # the namespace's own modules (its subpackages follow)
        if path.is_file() and path.suffix == ".py":
            files[f"{NAMESPACE}/{path.name}"] = path
    for name in PACKAGES:
        root = package_dir(name)
        for path in files_under(root):
            files[f"{name.replace('.', '/')}/{path.relative_to(root).as_posix()}"] = path
    return files


def project_metadata() -> dict:
    """This dlgrade's name, version, summary and requirements: from its pyproject.toml
    in a source tree, else from the installed distribution."""
    pyproject = package_dir("dlgrade.graders").parent / "pyproject.toml"
    if pyproject.is_file():
        from dlgrade.graders.spec import tomllib

        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == NAME:
            return {"version": str(project.get("version", "0")), "summary": project.get("description", ""),
                    "requires_python": project.get("requires-python", ""),
                    "requires": list(project.get("dependencies", []))}
    try:
        meta = importlib.metadata.metadata(NAME)
        requires = importlib.metadata.requires(NAME) or []
    except importlib.metadata.PackageNotFoundError:
        raise WheelError("cannot tell which dlgrade this is (no pyproject.toml, not installed)") from None
    return {"version": meta["Version"], "summary": meta.get("Summary", ""),
            "requires_python": meta.get("Requires-Python", ""),
            "requires": [r for r in requires if "extra ==" not in r]}


def wheel_name(version: str) -> str:
    return f"{NAME}-{version}-py3-none-any.whl"


def _metadata_text(meta: dict) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {NAME}", f"Version: {meta['version']}"]
    if meta["summary"]:
        lines.append(f"Summary: {meta['summary']}")
    if meta["requires_python"]:
        lines.append(f"Requires-Python: {meta['requires_python']}")
    lines += [f"Requires-Dist: {r}" for r in meta["requires"]]
    return "\n".join(lines) + "\n"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=DATE_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    zf.writestr(info, data)


def build_wheel() -> tuple[str, bytes]:
    """This dlgrade as a wheel: ``(file name, bytes)``. Raises WheelError when its version is unknown."""
    meta = project_metadata()
    info_dir = f"{NAME}-{meta['version']}.dist-info"
    contents = [(arc, path.read_bytes()) for arc, path in sorted(package_files().items())]
    contents += [(f"{info_dir}/METADATA", _metadata_text(meta).encode()),
                 (f"{info_dir}/WHEEL", b"Wheel-Version: 1.0\nGenerator: dlgrade\nRoot-Is-Purelib: true\n"
                                       b"Tag: py3-none-any\n"),
                 (f"{info_dir}/entry_points.txt", ENTRY_POINTS.encode()),
                 (f"{info_dir}/top_level.txt", f"{NAMESPACE}\n".encode())]
    record = "".join(f"{arc},{_record_hash(data)},{len(data)}\n" for arc, data in contents)
    record += f"{info_dir}/RECORD,,\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for arc, data in contents:
            _add(zf, arc, data)
        _add(zf, f"{info_dir}/RECORD", record.encode())
    return wheel_name(meta["version"]), buf.getvalue()


def write_wheel(out_dir) -> Path:
    """Write ``dlgrade-<version>-py3-none-any.whl`` into ``out_dir``; returns its path.

    Raises WheelError when this dlgrade's version is unknown or the file cannot be written.
    """
    name, data = build_wheel()
    out = Path(out_dir) / name
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    except OSError as exc:
        raise WheelError(f"{out}: cannot be written ({exc.strerror or exc})") from None
    return out


__all__ = ["build_wheel", "write_wheel", "wheel_name", "project_metadata", "package_files", "WheelError"]
