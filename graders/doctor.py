"""`dlgrade doctor`: what this machine does when it grades, and why.

:func:`examine` gathers the facts (how dlgrade is installed, the interpreter,
the isolation mode and every reason behind it, torch and CUDA, where scratch
goes, the limits in force), then grades dlgrade's own correct answer to a
built-in exercise end to end, exactly as ``dlgrade check`` would, and checks
from inside the sandbox that none of dlgrade's secret paths can be seen.
Grading "works" only if that answer gets full marks and, in the sandbox, no
secret path is visible. :func:`render` turns the result into lines for a
terminal; ``to_dict`` into JSON.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import site
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dlgrade.graders import sandbox
from dlgrade.graders.sandbox import Limits

PROBE_EXERCISE = "stable-softmax"
PROBE_FILE = Path(__file__).with_name("data") / "doctor_softmax.py"
PROBE_STUDENT = "dlgrade-doctor"
VISIBLE, HIDDEN = "dlgrade-doctor: visible ", "dlgrade-doctor: hidden "
USERNS_FILES = {
    "unprivileged_userns_clone": "/proc/sys/kernel/unprivileged_userns_clone",
    "max_user_namespaces": "/proc/sys/user/max_user_namespaces",
    "apparmor_restrict_unprivileged_userns": "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
}
# what to do about each reason bubblewrap can fail for
FIX_MISSING = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap); "
               "without it student code runs with resource limits only")
FIX_USERNS_CLONE = "allow user namespaces: sysctl -w kernel.unprivileged_userns_clone=1"
FIX_MAX_USERNS = "allow user namespaces: sysctl -w user.max_user_namespaces=15000"
FIX_APPARMOR = ("AppArmor forbids unprivileged user namespaces (Ubuntu 23.10 and later): "
                "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or give bwrap an AppArmor profile "
                "that allows them")
FIX_CONTAINER = ("this looks like a container, which may forbid namespaces: run it with "
                 "--security-opt seccomp=unconfined --security-opt apparmor=unconfined (or --privileged)")
FIX_UNKNOWN = "bwrap's own message (in brackets) says what it lacks"
FIX_OPT_OUT = "or set DLGRADE_NO_SANDBOX=1 to grade without the sandbox"
FIX_WORKER = "the sandbox did not start as dlgrade needs it; the line above says why"


@dataclass(frozen=True)
class Finding:
    """One fact about this machine: ``ok`` is None for plain information."""

    topic: str
    value: str
    ok: bool | None = None
    fix: str = ""
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Examination:
    """Everything :func:`examine` found; ``works``: grading works here."""

    findings: tuple[Finding, ...]
    isolation: str  # "sandbox", "basic", or "none" (no grading possible)
    works: bool
    verdict: str

    def finding(self, topic: str) -> Finding:
        return next(f for f in self.findings if f.topic == topic)

    def to_dict(self) -> dict:
        return {"works": self.works, "isolation": self.isolation, "verdict": self.verdict,
                "findings": [asdict(f) for f in self.findings]}


# --------------------------------------------------------------------------- the facts


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def installation() -> Finding:
    """How dlgrade is installed: a wheel, an sdist, an editable checkout...; where."""
    tree = sandbox.source_tree()
    # where the distribution lies: the checkout, or the site directory holding dlgrade/
    pkg_dir = sandbox.PACKAGES_DIR if tree is not None else sandbox.PACKAGES_DIR.parent
    dists = []  # every installed dlgrade on the path, with its PEP 610 record of where it came from
    for dist in importlib.metadata.distributions(name="dlgrade"):
        try:
            direct = json.loads(dist.read_text("direct_url.json") or "null")
        except ValueError:
            direct = None
        dists.append((dist, direct if isinstance(direct, dict) else None))
    if tree is not None:  # the metadata that describes this tree, if pip installed it editable
        mine = [(d, u) for d, u in dists if u and u.get("dir_info", {}).get("editable")
                and os.path.realpath(u.get("url", "").removeprefix("file://")) == str(tree)]
    else:  # the metadata installed next to the packages this process imports
        mine = [(d, u) for d, u in dists if os.path.realpath(d.locate_file("")) == os.path.realpath(pkg_dir)]
    dist, direct = (mine or [(dists[0][0] if dists else None, None)])[0]
    url = (direct or {}).get("url", "")
    editable = bool((direct or {}).get("dir_info", {}).get("editable"))
    version = dist.version if dist is not None else "(not installed)"
    if tree is not None:
        how = f"an editable install of the source tree {tree}" if editable else f"the source tree {tree}"
    elif direct and "archive_info" in direct:
        how = ("a wheel" if url.endswith(".whl") else "an sdist" if url.endswith((".tar.gz", ".zip"))
               else "an archive") + f" ({url})"
    elif direct and "vcs_info" in direct:
        how = f"a wheel built from {url}"
    elif direct:
        how = f"a wheel built from the folder {url.removeprefix('file://')}"
    else:
        how = "a wheel from a package index"
    real = os.path.realpath(pkg_dir)
    sites = [os.path.realpath(p) for p in site.getsitepackages()] if hasattr(site, "getsitepackages") else []
    user = os.path.realpath(site.getusersitepackages())
    if tree is not None:
        where = ""
    elif real == user:
        where = f", in the user site {pkg_dir}"
    elif real in sites and sys.prefix != sys.base_prefix:
        where = f", in the virtual environment {sys.prefix} ({pkg_dir})"
    elif real in sites:
        where = f", in the interpreter's own site-packages {pkg_dir}"
    else:
        where = f", at {pkg_dir} (on the Python path)"
    return Finding("dlgrade", f"{version}: {how}{where}", details={
        "version": version, "packages": str(pkg_dir), "source_tree": str(tree) if tree else None,
        "editable": editable, "url": url or None})


def interpreter() -> Finding:
    venv = sys.prefix != sys.base_prefix
    v = sys.version.split()[0]
    where = f"a virtual environment of {sys.base_prefix}" if venv else "no virtual environment"
    return Finding("python", f"{v} at {sys.executable} ({where})",
                   details={"version": v, "executable": sys.executable, "prefix": sys.prefix,
                            "base_prefix": sys.base_prefix, "virtual_environment": venv})


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def _in_container() -> bool:
    return os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv")


def bubblewrap() -> list[Finding]:
    """The isolation mode and every fact behind it."""
    state, why = sandbox.sandbox_probe()
    path = sandbox.bwrap_path()
    source = "DLGRADE_BWRAP" if os.environ.get("DLGRADE_BWRAP") else "PATH"
    root = _is_root()
    userns = {k: _read_int(p) for k, p in USERNS_FILES.items()}
    findings = []
    if state == "ok":
        findings.append(Finding("isolation", "sandbox: bubblewrap creates a sandbox here (no network, read-only "
                                "system, dlgrade's code and references hidden)", True, details={"state": state}))
    elif state == "disabled":
        findings.append(Finding("isolation", f"basic: {why}; student code runs with resource limits only",
                                None, "unset DLGRADE_NO_SANDBOX to grade in the sandbox", {"state": state}))
    elif state == "missing":
        findings.append(Finding("isolation", f"basic: {why}; student code runs with resource limits only",
                                False, FIX_MISSING, {"state": state}))
    else:
        fixes = []
        if not root and not _is_setuid(path):
            if userns["unprivileged_userns_clone"] == 0:
                fixes.append(FIX_USERNS_CLONE)
            if userns["max_user_namespaces"] == 0:
                fixes.append(FIX_MAX_USERNS)
            if userns["apparmor_restrict_unprivileged_userns"] == 1:
                fixes.append(FIX_APPARMOR)
        if _in_container():
            fixes.append(FIX_CONTAINER)
        fixes = (fixes or [FIX_UNKNOWN]) + [FIX_OPT_OUT]
        findings.append(Finding("isolation", f"none: {why}", False, "; ".join(fixes), {"state": state}))
    if path:
        version = _bwrap_version(path)
        setuid = _is_setuid(path)
        findings.append(Finding("bubblewrap", f"{path} ({version or 'version unknown'}), from {source}"
                                + ("; setuid root" if setuid else ""),
                                details={"path": path, "from": source, "version": version, "setuid": setuid}))
    names = ", ".join(f"{k}={'absent' if v is None else v}" for k, v in userns.items())
    if root:
        ns = f"running as root: bubblewrap needs no user namespace; every job runs as its own unprivileged uid ({names})"
    else:
        ns = f"running as uid {os.geteuid()}: bubblewrap needs user namespaces ({names})"
    findings.append(Finding("namespaces", ns, details={"root": root, **userns, "container": _in_container()}))
    return findings


def _is_root() -> bool:
    return os.geteuid() == 0


def _is_setuid(path: str | None) -> bool:
    try:
        return bool(path) and bool(os.stat(path).st_mode & stat.S_ISUID)
    except OSError:
        return False


def _bwrap_version(path: str) -> str:
    try:
        r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return r.stdout.strip().splitlines()[0] if r.returncode == 0 and r.stdout.strip() else ""


def libraries() -> list[Finding]:
    from dlgrade.graders.devices import ENV, cuda_device_count

    torch_v = _version("torch")
    if torch_v is None:
        torch = Finding("torch", "not installed: torch exercises cannot be graded", False,
                        "python -m pip install torch --index-url https://download.pytorch.org/whl/cpu")
    else:
        try:
            import torch as _torch

            cuda_build = _torch.version.cuda
        except Exception as exc:  # noqa: BLE001 - a broken torch is a finding, not a crash
            return [Finding("torch", f"{torch_v}, but it does not import ({type(exc).__name__}: {exc})", False,
                            "reinstall torch")]
        count = cuda_device_count()
        choice = os.environ.get(ENV, "auto")
        if count:
            gpu = f"CUDA {cuda_build}, {count} GPU(s): GPU checks run on cuda:0"
        elif cuda_build:
            gpu = f"CUDA {cuda_build} build but no GPU visible: GPU checks are skipped (0 points)"
        else:
            gpu = "a CPU-only build: GPU checks are skipped (0 points)"
        torch = Finding("torch", f"{torch_v}, {gpu}" + (f" ({ENV}={choice})" if choice != "auto" else ""),
                        details={"version": torch_v, "cuda": cuda_build, "gpus": count, ENV: choice})
    others = {name: _version(name) for name in ("numpy", "sympy", "nbformat", "jinja2", "click")}
    missing = [n for n, v in others.items() if v is None]
    return [torch, Finding("libraries", ", ".join(f"{n} {v or 'MISSING'}" for n, v in others.items()),
                           False if missing else None,
                           f"python -m pip install {' '.join(missing)}" if missing else "", others)]


def scratch() -> Finding:
    chosen = sandbox.scratch_root()
    path = chosen or tempfile.gettempdir()
    if os.environ.get("DLGRADE_SCRATCH"):
        why = "set by DLGRADE_SCRATCH"
    elif chosen == sandbox.SHM:
        why = "a memory file system with room (DLGRADE_SCRATCH moves it)"
    elif "TMPDIR" in os.environ:
        why = "the system's temporary folder, from TMPDIR (DLGRADE_SCRATCH moves it)"
    else:
        why = "the system's temporary folder (DLGRADE_SCRATCH moves it)"
    try:
        st = os.statvfs(path)
        free = st.f_bavail * st.f_frsize
        writable = os.access(path, os.W_OK | os.X_OK)
    except OSError:
        free, writable = 0, False
    ok = writable and free > 64 * 2**20
    return Finding("scratch", f"{path}: {why}; {free / 2**30:.1f} GB free", None if ok else False,
                   "" if ok else f"make {path} writable with room, or point DLGRADE_SCRATCH at a folder that is",
                   {"path": path, "free_bytes": free, "writable": writable})


def limits() -> Finding:
    d, caps = Limits(), Limits.HARD_CAPS
    text = (f"per job unless an exercise sets its own: {d.wall_s:g} s wall clock, {d.cpu_s:g} s CPU, "
            f"{d.memory_mb} MB memory, {d.nproc} processes, {d.fsize_mb} MB per file, {d.nofile} open files, "
            f"{d.disk_mb} MB scratch; never more than {caps['wall_s']:g} s, {caps['memory_mb']} MB memory, "
            f"{caps['nproc']} processes, {caps['disk_mb']} MB scratch")
    return Finding("limits", text, details={"default": Limits().as_job(), "caps": dict(caps)})


# --------------------------------------------------------------------------- grading end to end


def secret_paths() -> list[str]:
    """Files student code must never read: some in each of dlgrade's packages,
    its source tree, the probe exercise's folder, and the reference module."""
    from dlgrade.graders.runner import secret_paths as exercise_secrets
    from dlgrade.graders.spec import get_exercise

    tree = sandbox.source_tree()
    places = [*sandbox.our_package_dirs(), *([str(tree)] if tree else []),
              *exercise_secrets(get_exercise(PROBE_EXERCISE)), str(sandbox.PACKAGES_DIR / "reference" / "softmax.py")]
    files = []
    for place in dict.fromkeys(os.path.realpath(p) for p in places):
        if os.path.isfile(place):
            files.append(place)
        elif os.path.isdir(place):  # a few files directly inside (a folder may hold a bound venv)
            try:
                names = sorted(e.name for e in os.scandir(place) if e.is_file(follow_symlinks=False))
            except OSError:
                names = []
            files += [os.path.join(place, n) for n in names[:3]]
    return list(dict.fromkeys(files))


def grade_probe() -> list[Finding]:
    """Grade the doctor's correct answer as ``dlgrade check`` does; see what it sees."""
    from dlgrade.graders import api
    from dlgrade.graders.errors import GraderError
    from dlgrade.graders.sandbox import SandboxBroken, SandboxError, failure_line

    secrets = secret_paths()
    text = PROBE_FILE.read_text(encoding="utf-8").replace("SECRET_PATHS = []", f"SECRET_PATHS = {secrets!r}", 1)
    with tempfile.TemporaryDirectory(prefix="dlgrade-doctor-") as tmp:
        sub = Path(tmp) / "doctor_softmax.py"
        sub.write_text(text, encoding="utf-8")
        t0 = time.perf_counter()
        try:
            report = api.check(sub, [PROBE_EXERCISE], student=PROBE_STUDENT)
        except SandboxBroken as exc:
            return [Finding("grading", "not possible: bubblewrap cannot create a sandbox here (see isolation)",
                            False, details={"error": str(exc)})]
        except (GraderError, SandboxError) as exc:
            line = failure_line(exc).replace(f"; {sandbox.DOCTOR_HINT}", "")  # this is the doctor
            return [Finding("grading", f"failed: {line}", False,
                            FIX_WORKER if "did not start" in line else "", {"error": str(exc)})]
        seconds = time.perf_counter() - t0
    r = report.results[0]
    lines = r.output.splitlines()
    visible = [ln[len(VISIBLE):] for ln in lines if ln.startswith(VISIBLE)]
    hidden = [ln[len(HIDDEN):] for ln in lines if ln.startswith(HIDDEN)]
    full = r.status == "graded" and r.score == r.max_score
    grading = Finding(
        "grading", f"{PROBE_EXERCISE}, a correct answer: {r.score:g} / {r.max_score:g} in {seconds:.1f} s "
        f"(isolation: {r.isolation})" + ("" if full else f"; expected full marks ({r.status}: {r.message})"),
        full, "" if full else "dlgrade cannot grade correctly here; the line above says why",
        {"status": r.status, "score": r.score, "max_score": r.max_score, "isolation": r.isolation,
         "seconds": round(seconds, 3), "message": r.message})
    checked = len(visible) + len(hidden)
    if r.isolation != "sandbox":
        seen = Finding("hidden", f"nothing is hidden in basic isolation: student code can read dlgrade's "
                       f"references ({len(visible)} of {len(secrets)} secret paths readable)", None,
                       details={"visible": visible})
    elif checked < len(secrets):
        seen = Finding("hidden", "could not check what student code sees (the probe did not report)", False,
                       "report this as a bug in dlgrade", {"visible": visible, "secrets": secrets})
    elif visible:
        seen = Finding("hidden", f"student code can read {len(visible)} of dlgrade's secret paths: "
                       f"{', '.join(visible)}", False, "report this as a bug in dlgrade: the sandbox must hide them",
                       {"visible": visible})
    else:
        seen = Finding("hidden", f"dlgrade's code, references and exercises are hidden from student code "
                       f"({checked} paths checked)", True, details={"hidden": hidden})
    return [grading, seen]


def examine(grade: bool = True) -> Examination:
    """Every fact :mod:`dlgrade.graders.doctor` reports, and (``grade``) one grading end to end."""
    findings = [installation(), interpreter(), *bubblewrap(), *libraries(), scratch(), limits()]
    state = next(f for f in findings if f.topic == "isolation").details.get("state")
    isolation = {"ok": "sandbox", "broken": "none"}.get(state, "basic")
    if grade:
        findings += grade_probe()
        g = next(f for f in findings if f.topic == "grading")
        works = bool(g.ok) and next(f for f in findings if f.topic == "hidden").ok is not False
        isolation = g.details.get("isolation", "none") if g.ok else "none"
    else:
        works = isolation != "none"
    if works and isolation == "sandbox":
        verdict = "OK: dlgrade grades on this machine, with student code in the sandbox"
    elif works:
        verdict = ("OK, without the sandbox: dlgrade grades on this machine in basic isolation (student code can "
                   "read your files and use the network)")
    else:
        order = ("isolation", "grading", "hidden") if state == "broken" else ("grading", "hidden", "isolation")
        problems = [f for t in order for f in findings if f.topic == t and f.ok is False]
        problem = (problems or [f for f in findings if f.ok is False] or [None])[0]
        verdict = "FAIL: dlgrade cannot grade on this machine"
        if problem is not None:
            verdict += f": {problem.value.removeprefix('none: ')}" + (f"; to fix: {problem.fix}" if problem.fix else "")
    return Examination(tuple(findings), isolation, works, verdict)


def render(ex: Examination) -> str:
    """The examination as lines for a terminal."""
    width = max(len(f.topic) for f in ex.findings)
    mark = {True: "ok  ", False: "FAIL", None: "    "}
    lines = ["dlgrade doctor: what this machine does when it grades, and why", ""]
    for f in ex.findings:
        lines.append(f"  {mark[f.ok]}  {f.topic:<{width}}  {f.value}")
        if f.fix and f.ok is False:
            lines.append(f"        {'':<{width}}  to fix: {f.fix}")
    lines += ["", ex.verdict]
    return "\n".join(lines)


__all__ = ["Examination", "Finding", "examine", "render"]
