"""Where student code runs: warm, sandboxed worker processes.

One :class:`Worker` owns one zygote (``graders/sandboxed_worker.py``) started either
inside bubblewrap (isolation ``"sandbox"``: no network, read-only system,
private PID/IPC/UTS namespaces, only the worker file and a per-worker jobs
directory visible, dlgrade's own tree masked) or, where bubblewrap is missing
or unusable, as a plain child process with resource limits only (isolation
``"basic"``), with a warning that says so.

The zygote forks a fresh child for every job, so each grading still gets its
own process, limits and scratch directory, but pays neither for an interpreter
start nor for importing numpy/torch again. Batch grading keeps several workers;
``dlgrade check`` keeps one.

When the grader runs as root, every job runs as the worker's own unprivileged
uid (drawn at random from a range no account uses), so that RLIMIT_NPROC is
enforced, the job can signal nothing but its own processes, and two workers'
jobs share nothing. After each job its directory is moved out of the jobs
directory the sandbox sees, so no later job (another student's) can read it.

Everything the child produced is read back by :mod:`dlgrade.graders.decoding` as plain
data; nothing here interprets it.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

from dlgrade.graders.errors import GraderError

WORKER_FILE = Path(__file__).with_name("sandboxed_worker.py")
# the folder holding dlgrade's top-level packages: a checkout (or an unpacked
# sdist) for an editable install, a site-packages directory for a wheel
PACKAGES_DIR = Path(__file__).resolve().parent.parent
SANDBOX_WORKER = "/dlgrade/worker.py"
SANDBOX_JOBS = "/jobs"
OUR_PACKAGES = ("graders", "reference", "exercises", "reports", "dlgrade")
# how long a worker may take to import numpy/torch/sympy before we give up on it
START_TIMEOUT_S = 120.0
# how long past a job's wall-clock limit we wait for the zygote's reply
REPLY_SLACK_S = 10.0
# jobs of a root grader run as a uid drawn from here (no account uses these)
JOB_UID_BASE = 1_600_000_000
JOB_UID_SPAN = 100_000_000
# what the zygote keeps inside a root bubblewrap: switching to the job's uid,
# killing the job's processes, reading the job's (0700) directory
ZYGOTE_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_DAC_READ_SEARCH")
_EMPTY_OUTPUT = {"head": "", "tail": "", "total_bytes": 0, "dropped_bytes": 0}


class SandboxError(GraderError):
    """The execution layer itself failed (a dlgrade problem, not the student's).

    ``sandbox``: the failure is the sandbox's (bubblewrap would not start or
    hides what the worker needs), so ``dlgrade doctor`` can tell why.
    """

    def __init__(self, message: str, sandbox: bool = False):
        super().__init__(message)
        self.sandbox = sandbox


class SandboxRequired(SandboxError):
    """``--require-sandbox`` was given but bubblewrap cannot be used here."""

    def __init__(self, message: str, sandbox: bool = True):
        super().__init__(message, sandbox=sandbox)


class SandboxBroken(SandboxError):
    """bubblewrap is installed but cannot create a sandbox on this machine."""

    def __init__(self, message: str):
        super().__init__(message, sandbox=True)


DOCTOR_HINT = "run `dlgrade doctor` to see why"


def failure_line(exc: BaseException) -> str:
    """One line for a human about a failure of dlgrade itself; a failure of the
    sandbox (also when wrapped in another error) points to ``dlgrade doctor``."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, SandboxError) and cause.sandbox:
            return text if "dlgrade doctor" in text else f"{text}; {DOCTOR_HINT}"
        cause = cause.__cause__
    return text


def worker_error_line(error) -> str:
    """One line for an error record a job sent back (``{"type", "message", "frames",
    "line", "line_file"}`` from the worker), never the record itself:
    ``KeyError: 'y' (dlgrade_symbolic.py, line 663, in numeric_value)``."""
    if not isinstance(error, dict):
        return " ".join(str(error).split()) if error not in (None, "") else "no details"
    kind = " ".join(str(error.get("type") or error.get("kind") or "").split())
    message = " ".join(str(error.get("message") or "").split())
    text = f"{kind}: {message}" if kind and message else kind or message or "no details"
    frames = error.get("frames")
    last = frames[-1] if isinstance(frames, list) and frames and isinstance(frames[-1], dict) else {}
    where = [str(x) for x in (last.get("file") or error.get("line_file"),) if x]
    line = last.get("line", error.get("line"))
    if line is not None:
        where.append(f"line {line}")
    if last.get("function"):
        where.append(f"in {last['function']}")
    return f"{text} ({', '.join(where)})" if where else text


@dataclass(frozen=True)
class Limits:
    """Resource limits for one job. :meth:`capped` enforces dlgrade's hard caps.

    ``wall_s``: wall-clock seconds for the whole job (load and every call);
    ``cpu_s``: CPU seconds per process; ``memory_mb``: memory on top of the
    warm worker's; ``nproc``: processes and threads the job may run at once,
    itself included; ``fsize_mb``: the largest file it may write; ``nofile``:
    open files; ``disk_mb``: everything it may write into its scratch
    directory (at most ``worker.MAX_FILES`` entries).
    """

    wall_s: float = 10.0
    cpu_s: float = 10.0
    memory_mb: int = 1024
    nproc: int = 32
    fsize_mb: int = 256
    nofile: int = 256
    disk_mb: int = 512

    HARD_CAPS: ClassVar[dict] = {"wall_s": 300.0, "cpu_s": 300.0, "memory_mb": 8192, "nproc": 256,
                                 "fsize_mb": 2048, "nofile": 1024, "disk_mb": 4096}
    MINIMUMS: ClassVar[dict] = {"wall_s": 0.5, "cpu_s": 1.0, "memory_mb": 32, "nproc": 1,
                                "fsize_mb": 1, "nofile": 16, "disk_mb": 1}

    def capped(self) -> "Limits":
        """These limits within [minimum, hard cap]; a value that is not a positive
        finite number falls back to the default."""
        vals = {}
        for f in fields(self):
            v = getattr(self, f.name)
            try:
                v = float(v)
            except (TypeError, ValueError):
                v = float(f.default)
            if not math.isfinite(v) or v <= 0:
                v = float(f.default)
            v = max(min(v, self.HARD_CAPS[f.name]), self.MINIMUMS[f.name])
            vals[f.name] = int(v) if isinstance(f.default, int) else v
        return replace(self, **vals)

    def as_job(self) -> dict:
        c = self.capped()
        return {f.name: getattr(c, f.name) for f in fields(c)}


@dataclass
class JobOutcome:
    """What came back from one job: the zygote's reply and the job's directory."""

    reply: dict
    job_dir: Path
    isolation: str
    journal: list = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.reply.get("status", "harness-error")

    def cleanup(self) -> None:
        from dlgrade.graders.decoding import forget

        forget(self.job_dir)
        remove_tree(self.job_dir)


def remove_tree(path: Path | str) -> None:
    """Delete a directory a student's code wrote into, whatever modes it left.

    A job may leave directories without read or write permission (as its own
    uid); where a plain rmtree fails, open every directory up and try again.
    Never follows symbolic links.
    """
    path = str(path)
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isdir(path):
        try:
            os.unlink(path)
        except OSError:
            pass
        return
    for _ in range(3):
        try:
            shutil.rmtree(path)
            return
        except OSError:
            _open_up(path)
    shutil.rmtree(path, ignore_errors=True)


def _open_up(top: str) -> None:
    stack = [top]
    while stack:
        d = stack.pop()
        try:
            if stat.S_ISLNK(os.lstat(d).st_mode):
                continue
            os.chmod(d, 0o700)
            with os.scandir(d) as it:
                stack.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
        except OSError:
            continue


# --------------------------------------------------------------------------- probing


_probe_cache: dict[str, tuple[bool, str]] = {}


def bwrap_path() -> str | None:
    return os.environ.get("DLGRADE_BWRAP") or shutil.which("bwrap")


def sandbox_probe() -> tuple[str, str]:
    """Can bubblewrap create a sandbox here? ``(state, why)``: state ``"ok"``,
    ``"disabled"`` (DLGRADE_NO_SANDBOX=1), ``"missing"`` (no bwrap) or ``"broken"``
    (bwrap is there but fails); ``why`` is one line for a human ("" when ok)."""
    if os.environ.get("DLGRADE_NO_SANDBOX") == "1":
        return "disabled", "the sandbox is disabled (DLGRADE_NO_SANDBOX=1)"
    path = bwrap_path()
    if not path:
        return "missing", "bubblewrap (bwrap) is not installed"
    if path in _probe_cache:
        return _probe_cache[path]
    cmd = [path, *_namespace_args(), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
           "--tmpfs", "/tmp", "--remount-ro", "/tmp", "true"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        ok, why = r.returncode == 0, (r.stderr.strip().splitlines() or [f"bwrap exited with {r.returncode}"])[-1]
    except (OSError, subprocess.TimeoutExpired) as exc:
        ok, why = False, f"bwrap could not start: {exc}"
    result = ("ok", "") if ok else ("broken", f"bubblewrap is installed but cannot create a sandbox here ({why})")
    _probe_cache[path] = result
    return result


def sandbox_status() -> tuple[bool, str]:
    """Whether bubblewrap works here, and if not, why (one line for a human)."""
    state, why = sandbox_probe()
    return state == "ok", why


def _namespace_args() -> list[str]:
    args = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session"]
    if os.geteuid() != 0:
        args.insert(0, "--unshare-user")
    else:
        # Real root keeps every capability inside bwrap unless told otherwise.
        args += ["--cap-drop", "ALL"]
        for cap in ZYGOTE_CAPS:
            args += ["--cap-add", cap]
    return args


def choose_isolation(require_sandbox: bool = False) -> tuple[str, list[str]]:
    """Return ``("sandbox"|"basic", warnings)``.

    Without bubblewrap (or with DLGRADE_NO_SANDBOX=1) student code runs in basic
    isolation, with a warning. Raises SandboxBroken when bubblewrap is
    installed but fails (the machine must be fixed, or the sandbox explicitly
    turned off), and SandboxRequired when ``require_sandbox`` cannot be met.
    """
    state, why = sandbox_probe()
    if state == "ok":
        return "sandbox", []
    if state == "broken":
        raise SandboxBroken(f"{why}; {DOCTOR_HINT}, or set DLGRADE_NO_SANDBOX=1 to grade without the sandbox")
    if require_sandbox:
        raise SandboxRequired(f"--require-sandbox was given but {why}")
    return "basic", [basic_warning(why)]


def basic_warning(why: str) -> str:
    """The one-line warning printed whenever student code runs without the sandbox."""
    advice = "" if "DLGRADE_NO_SANDBOX" in why else " Install bubblewrap (bwrap) to grade in a sandbox."
    return (f"WARNING: {why}: student code runs with resource limits only (isolation: basic), "
            f"without filesystem or network isolation.{advice}")


# --------------------------------------------------------------------------- launching


def source_tree() -> Path | None:
    """dlgrade's own source tree (a checkout or an unpacked sdist, as an editable
    install runs from), or None when dlgrade is installed (a wheel in site-packages)."""
    root = PACKAGES_DIR
    if root.name in ("site-packages", "dist-packages") or not (root / "pyproject.toml").is_file():
        return None
    return root


def _module_roots(names) -> list[str]:
    """Directories holding the given installed packages (their site-packages)."""
    roots = []
    for name in dict.fromkeys(n.split(".")[0] for n in names):  # a submodule's spec would import its package
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin:
            continue
        pkg_dir = Path(spec.origin).parent
        roots.append(str(pkg_dir.parent if spec.submodule_search_locations else pkg_dir))
    return roots


@lru_cache(maxsize=8)
def _isolated_sys_path(executable: str) -> tuple[str, ...]:
    """``sys.path`` of ``executable -I`` (how workers start): without the user site,
    PYTHONPATH or the current directory."""
    try:
        r = subprocess.run([executable, "-I", "-c", "import json, sys; print(json.dumps(sys.path))"],
                           capture_output=True, text=True, timeout=60, env={"PATH": os.defpath})
        return tuple(os.path.realpath(p) for p in json.loads(r.stdout))
    except (OSError, ValueError, subprocess.SubprocessError):
        return ()


def worker_site_dirs(preload) -> list[str]:
    """Where the grader finds numpy and the preloaded modules, when ``python -I``
    would not look there (a user-site or PYTHONPATH install): the worker adds them."""
    default = _isolated_sys_path(sys.executable)
    return [r for r in _module_roots(["numpy", *preload]) if os.path.realpath(r) not in default]


def _python_binds(preload) -> list[str]:
    """Read-only binds that give the sandbox a working interpreter and its libraries."""
    paths = {sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths.update(_module_roots(["numpy", *preload]))
    tree = source_tree()
    binds = []
    for p in sorted(paths):
        rp = os.path.realpath(p)
        # never mount dlgrade's own source tree (an editable install's root): it holds reference/
        if tree is not None and (rp == str(tree) or str(tree).startswith(rp + os.sep)
                                 and rp not in (sys.base_prefix, sys.prefix)):
            continue
        if os.path.exists(rp):
            binds += ["--ro-bind", rp, rp]
            if rp != p and os.path.exists(p):
                binds += ["--ro-bind", p, p] if not os.path.islink(p) else ["--symlink", os.readlink(p), p]
    return binds


# bwrap options that take arguments, and how many (what _mounts must skip over)
_ARITY = {"--ro-bind": 2, "--bind": 2, "--dev-bind": 2, "--ro-bind-try": 2, "--bind-try": 2,
          "--dev-bind-try": 2, "--symlink": 2, "--perms": 1, "--dir": 1, "--tmpfs": 1,
          "--remount-ro": 1, "--proc": 1, "--dev": 1, "--chmod": 2, "--file": 2}
_BINDS = ("--ro-bind", "--bind", "--dev-bind", "--ro-bind-try", "--bind-try", "--dev-bind-try")


def _mounts(args: list[str]) -> list[tuple[str, list[str]]]:
    """A bwrap argument list as (destination, that option with its arguments) pairs."""
    out, i = [], 0
    while i < len(args):
        n = _ARITY.get(args[i], 0)
        group = args[i:i + 1 + n]
        out.append((group[-1] if n else "", group))
        i += 1 + n
    return out


def _bound_sources(binds: list[str]) -> list[str]:
    return [os.path.realpath(g[1]) for _, g in _mounts(binds) if g[0] in _BINDS]


def _bind_pairs(binds: list[str]) -> list[tuple[str, str]]:
    """(real source, destination in the sandbox) of every bind mount."""
    return [(os.path.realpath(g[1]), os.path.normpath(g[2])) for _, g in _mounts(binds) if g[0] in _BINDS]


def _is_under(path: str, roots) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def our_package_dirs(binds: list[str] = ()) -> list[str]:
    """dlgrade's own packages: where this grader imports them from, and any copy
    that a bound directory contains (another install of dlgrade)."""
    found = []
    for name in OUR_PACKAGES:
        candidate = PACKAGES_DIR / name
        if candidate.is_dir():
            found.append(str(candidate))
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            found += [str(p) for p in spec.submodule_search_locations]
    if source_tree() is None and PACKAGES_DIR.name == "dlgrade":
        found.append(str(PACKAGES_DIR))  # an installed dlgrade: the whole namespace package
    for root in _bound_sources(list(binds)):
        for name in OUR_PACKAGES:
            candidate = os.path.join(root, name)
            if os.path.isdir(candidate) and (
                    os.path.exists(os.path.join(candidate, "sandboxed_worker.py"))
                    or os.path.exists(os.path.join(candidate, "__init__.py"))):
                found.append(candidate)
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class MaskPlan:
    """What :func:`mask_args` decided: the bwrap arguments, the paths they mask
    and the bound directories they expose again inside a mask."""

    args: list[str]
    masked: list[str]
    exposed: list[str]

    def hides(self, path: str) -> bool:
        return any(_is_under(path, [m]) and not any(_is_under(path, [e]) and _is_under(e, [m])
                                                    for e in self.exposed) for m in self.masked)


def mask_args(secrets, binds: list[str], empty_dir: str) -> list[str]:
    """bwrap arguments that hide every secret path the ``binds`` would show (see mask_plan)."""
    return mask_plan(secrets, binds, empty_dir).args


def mask_plan(secrets, binds: list[str], empty_dir: str) -> MaskPlan:
    """How to hide every secret path the ``binds`` would show.

    Masks compose: each secret is hidden wherever a bind makes it visible (a
    directory bound at two places is masked at both); a secret inside another
    is hidden by the outer mask alone; a bound directory inside a secret one
    (a virtual environment inside a hidden folder, say) is bound again on top
    of the mask, and secrets inside it are masked after that. A secret that
    does not exist is not visible now; :meth:`Worker._masks` creates the
    directories it must hide before the sandbox starts. Directories are masked
    with ``empty_dir`` (read-only), files with an empty device.
    """
    mounts = _mounts(list(binds))
    pairs = _bind_pairs(list(binds))
    targets = set()
    for s in secrets:
        real = os.path.realpath(s)
        if not os.path.lexists(real):
            continue
        for src, dest in pairs:
            if _is_under(real, [src]):
                rel = os.path.relpath(real, src)
                targets.add(dest if rel == "." else os.path.join(dest, rel))
    plan = MaskPlan([], [], [])
    args, masked, exposed = plan.args, plan.masked, plan.exposed
    for t in sorted(targets, key=lambda p: (p.count(os.sep), p)):
        if plan.hides(t):  # inside a mask already, and not bound again there
            continue
        inner = [(dest, group) for dest, group in mounts
                 if dest and dest != t and _is_under(dest, [t]) and group[0] in (*_BINDS, "--symlink")]
        if inner:
            args += ["--tmpfs", t]
            for dest, group in inner:
                args += group
                exposed.append(dest)
            args += ["--remount-ro", t]
        else:
            real = next(os.path.join(src, os.path.relpath(t, dest)) for src, dest in pairs if _is_under(t, [dest]))
            args += ["--ro-bind", empty_dir if os.path.isdir(real) else os.devnull, t]
        masked.append(t)
    return plan


def _system_binds() -> list[str]:
    binds = []
    for d in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(d):
            binds += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            binds += ["--ro-bind", d, d]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/nsswitch.conf",
              "/etc/passwd", "/etc/group", "/etc/alternatives"):
        if os.path.exists(f):
            binds += ["--ro-bind", f, f]
    return binds


def _traversable_parents(binds: list[str]) -> list[str]:
    """Create bind targets' parent directories world-traversable.

    bwrap copies the mode of a source's parents (``/root`` is 0700), which would
    lock the unprivileged job out of an interpreter installed under ``/root``.
    """
    dests = [binds[i + 2] for i in range(len(binds)) if binds[i] in ("--ro-bind", "--bind")
             and i + 2 < len(binds)]
    parents = set()
    for d in dests:
        for parent in Path(d).parents:
            if str(parent) != "/":
                parents.add(str(parent))
    args = []
    for parent in sorted(parents, key=lambda p: (p.count("/"), p)):
        args += ["--perms", "0755", "--dir", parent]
    return args


def gpu_device_binds() -> list[str]:
    """Device nodes a CUDA program needs, and nothing more."""
    binds = []
    for name in sorted(os.listdir("/dev")) if os.path.isdir("/dev") else []:
        if name.startswith("nvidia"):
            binds += ["--dev-bind", f"/dev/{name}", f"/dev/{name}"]
    if binds and os.path.isdir("/sys"):
        binds += ["--ro-bind", "/sys", "/sys"]
    for extra in ("/usr/local/nvidia", "/usr/local/cuda", "/etc/ld.so.conf.d"):
        if os.path.exists(extra):
            binds += ["--ro-bind", extra, extra]
    return binds


# What starting CUDA costs a job on top of the exercise's own limits: the
# driver and context take seconds and a few hundred MB of host memory.
GPU_HEADROOM = {"wall_s": 30.0, "cpu_s": 30.0, "memory_mb": 2048}


def gpu_limits(limits: Limits) -> Limits:
    """The limits of a job that runs on the GPU: the exercise's, plus CUDA's start-up."""
    return replace(limits, **{k: getattr(limits, k) + v for k, v in GPU_HEADROOM.items()}).capped()


def _clean_env(inside: bool, gpu: bool = False) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "HOME": "/tmp" if inside else tempfile.gettempdir(),
    }
    for var in ("LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"):
        if var in os.environ:
            env[var] = os.environ[var]
    if not gpu:  # only GPU jobs see a GPU, so every other check scores the same on any machine
        env["CUDA_VISIBLE_DEVICES"] = ""
    if inside:
        env["DLGRADE_PIDNS"] = "1"
    return env


def _traversable_by_others(paths) -> bool:
    """Can an unprivileged user reach all of these? (/root is usually 0700.)"""
    for top in paths:
        p = Path(top)
        for part in [p, *p.parents]:
            try:
                if not os.stat(part).st_mode & 0o001:
                    return False
            except OSError:
                return False
    return True


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        parts = os.uname().release.split(".")
        return (int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)) >= (major, minor)
    except (ValueError, IndexError, AttributeError):
        return False


def host_tasks(uid: int) -> int:
    """Threads of every process whose real uid is ``uid`` (what RLIMIT_NPROC counts)."""
    count = 0
    for p in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/status") as f:
                text = f.read()
        except OSError:
            continue
        real_uid = threads = None
        for line in text.splitlines():
            if line.startswith("Uid:"):
                real_uid = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
        if real_uid == uid:
            count += threads or 1
    return count


def _pick_job_uid() -> int:
    import pwd

    while True:
        uid = JOB_UID_BASE + secrets.randbelow(JOB_UID_SPAN)
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid


def _kill_token_processes(token: str) -> None:
    """Basic isolation, after its zygote died: kill what the job left (same uid)."""
    mark = f"DLGRADE_JOB_TOKEN={token}".encode()
    for p in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open(f"/proc/{p}/environ", "rb") as f:
                if mark in f.read().split(b"\0"):
                    os.kill(int(p), signal.SIGKILL)
        except OSError:
            continue


def _kill_uid_processes(uid: int) -> None:
    """Root grader, basic isolation, after its zygote died: kill every process of the job uid."""
    for _ in range(3):
        try:
            subprocess.run(["kill", "-KILL", "--", "-1"], user=uid, group=uid, extra_groups=[],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return


_SAFE_NAME = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-. ")


def _check_name(name: str) -> None:
    if not name or name.startswith(".") or not set(name) <= _SAFE_NAME or len(name) > 200:
        raise SandboxError(f"refusing to ship a file named {name!r} to the worker")


# Jobs exchange arrays as .npy files: in memory (tmpfs) that costs ~15 % less per
# grading than on disk. A job's scratch is capped by Limits.disk_mb, so a
# tmpfs is used only when it has room for several jobs at their cap.
SHM = "/dev/shm"
SHM_MIN_FREE = 4 * 2**30


def scratch_root() -> str | None:
    """Where workers keep job folders: ``DLGRADE_SCRATCH``, else a roomy /dev/shm,
    else the system's temporary directory (``TMPDIR``)."""
    chosen = os.environ.get("DLGRADE_SCRATCH")
    if chosen:
        return chosen
    if "TMPDIR" in os.environ:
        return None
    try:
        st = os.statvfs(SHM)
        if os.access(SHM, os.W_OK | os.X_OK) and st.f_bavail * st.f_frsize >= SHM_MIN_FREE:
            return SHM
    except OSError:
        pass
    return None


def _sweep_stale(base: str | None) -> None:
    """Remove job folders left by graders that were killed (kill -9 skips cleanup;
    on a tmpfs they would hold memory until reboot)."""
    for d in Path(base or tempfile.gettempdir()).glob("dlgrade-worker-*"):
        try:
            pid = int((d / "owner.pid").read_text())
            os.kill(pid, 0)
            continue  # its grader is alive
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue  # not ours to judge (no pid yet, or another user's)
        shutil.rmtree(d, ignore_errors=True)


class Worker:
    """One warm zygote and the jobs directory it shares with the grader.

    ``hide``: more paths the sandbox must not show (an output folder, the
    students' submissions) where a bound system directory would contain them.
    ``run`` is not thread-safe; a pool gives each thread its own worker;
    ``kill`` may be called from another thread.
    """

    def __init__(self, isolation: str = "sandbox", preload=("numpy",), gpu: bool = False, hide=()):
        self.isolation = isolation
        self.preload = tuple(preload)
        self.gpu = gpu
        self.hidden: tuple[str, ...] = tuple(os.path.realpath(p) for p in hide)
        base = scratch_root()
        _sweep_stale(base)
        self.root = Path(tempfile.mkdtemp(prefix="dlgrade-worker-", dir=base))
        (self.root / "owner.pid").write_text(str(os.getpid()))
        self.jobs = self.root / "jobs"
        self.done = self.root / "done"
        self.jobs.mkdir()
        self.done.mkdir(mode=0o700)
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self.run_as: tuple[int, int] | None = None
        self.root_files = False
        self.reply_slack_s = REPLY_SLACK_S
        self.jobs_run = 0
        self.starts = 0
        self._bound: list[str] = []  # what the running sandbox binds, and masks (see _bwrap_cmd)
        self._mask_plan = MaskPlan([], [], [])
        self._stderr_lines: list[str] = []
        if os.geteuid() == 0:
            uid = _pick_job_uid()
            self.run_as = (uid, uid)
            if isolation != "sandbox":
                roots = {sys.base_prefix, sys.prefix, *_module_roots(["numpy", *self.preload])}
                self.root_files = not _traversable_by_others(roots)

    # -- lifecycle
    def start(self) -> None:
        """Launch the zygote and wait until it has imported its modules."""
        self.launch()
        self.await_ready()

    def launch(self) -> None:
        """Start the zygote without waiting for it (it imports numpy/torch meanwhile).

        Call it from a thread that outlives the worker: bwrap's --die-with-parent
        (PR_SET_PDEATHSIG) fires when the *thread* that started it exits.
        """
        env = _clean_env(self.isolation == "sandbox", self.gpu)
        if self.isolation == "sandbox":
            cmd = self._bwrap_cmd()
            cwd = None
        else:
            cmd = [sys.executable, "-I", "-B", str(WORKER_FILE)]
            cwd = str(self.jobs)
        cmd += ["--preload", ",".join(self.preload)]
        site_dirs = worker_site_dirs(self.preload)
        if site_dirs:
            cmd += ["--site-dirs", json.dumps(site_dirs)]
        if self.run_as:
            os.chown(self.jobs, 0, 0)
            os.chmod(self.jobs, 0o755)
        else:
            os.chmod(self.jobs, 0o700)
        self._stderr_lines = []
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=cwd, start_new_session=True, text=True, bufsize=1,
        )
        self.starts += 1
        self._stderr_thread = threading.Thread(target=self._drain_stderr, args=(self.proc,), daemon=True)
        self._stderr_thread.start()

    def await_ready(self) -> None:
        """Wait for a launched zygote's ready line; raise SandboxError if it never comes."""
        line = self._readline(START_TIMEOUT_S)
        try:
            info = json.loads(line) if line else None
        except ValueError:
            info = None
        if not isinstance(info, dict) or not info.get("ready"):
            self.kill()
            self._stderr_thread.join(timeout=2.0)  # its last words may still be in the pipe
            tail = "; ".join(line for line in self._stderr_lines[-5:] if line.strip())
            raise SandboxError(f"the {self.isolation} worker did not start: {tail or 'no output'}",
                               sandbox=self.isolation == "sandbox")
        missing = [m for m in self.preload if m not in info.get("preloaded", ()) and _importable(m)]
        if missing:
            # the grader imports it, the worker cannot: the worker's view of the
            # installation is broken (the sandbox hides it, a path is missing)
            self.kill()
            why = next((line for line in reversed(self._stderr_lines) if missing[0] in line), "")
            where = _module_roots([missing[0]])
            raise SandboxError(f"the {self.isolation} worker cannot import {missing[0]}, which the grader "
                               f"imports{' from ' + where[0] if where else ''}"
                               + (f" ({why.removeprefix('dlgrade worker: ')})" if why else ""),
                               sandbox=self.isolation == "sandbox")
        self.info = info

    def _drain_stderr(self, proc) -> None:
        try:
            for line in proc.stderr:
                self._stderr_lines.append(line.rstrip())
                del self._stderr_lines[:-50]
        except (OSError, ValueError):
            pass

    def _bwrap_cmd(self) -> list[str]:
        py = _python_binds(self.preload)
        cmd = [bwrap_path(), *_namespace_args(), "--clearenv"]
        for k, v in _clean_env(True, self.gpu).items():
            cmd += ["--setenv", k, v]
        gpu = gpu_device_binds() if self.gpu else []
        devices = [a for i in range(0, len(gpu), 3) if gpu[i] == "--dev-bind" for a in gpu[i:i + 3]]
        binds = _system_binds() + py + [a for i in range(0, len(gpu), 3) if gpu[i] != "--dev-bind"
                                        for a in gpu[i:i + 3]]
        self._bound, self._mask_plan = _bound_sources(binds), self._masks(binds)
        # /tmp first: an interpreter or virtual environment under /tmp is bound on top of it
        cmd += ["--tmpfs", "/tmp"] + _traversable_parents(binds) + binds + self._mask_plan.args
        # device nodes go into the fresh /dev before it becomes read-only
        cmd += ["--proc", "/proc", "--dev", "/dev", *devices, "--remount-ro", "/dev",
                "--remount-ro", "/tmp",
                "--ro-bind", str(WORKER_FILE), SANDBOX_WORKER,
                "--bind", str(self.jobs), SANDBOX_JOBS, "--chdir", SANDBOX_JOBS]
        # sys.executable, not its real path: a virtual environment's interpreter
        # finds its site-packages through the pyvenv.cfg next to it
        cmd += [sys.executable, "-I", "-B", SANDBOX_WORKER]
        return cmd

    def _masks(self, binds: list[str]) -> MaskPlan:
        """Mount an empty read-only directory (or file) over everything secret
        that a bound directory would otherwise show: dlgrade's source tree (the
        reference solutions), its installed packages, the hidden paths."""
        empty_dir = self.root / "empty"
        empty_dir.mkdir(mode=0o555, exist_ok=True)
        tree = source_tree()
        secret = [*([str(tree)] if tree else []), *our_package_dirs(binds), *self.hidden]
        bound = _bound_sources(binds)
        for path in self.hidden:
            # a folder that does not exist yet would appear through the bind once
            # created: create it now, so that it is masked from the start
            if not os.path.lexists(path) and _is_under(path, bound):
                try:
                    os.makedirs(path, mode=0o700)
                except OSError:
                    pass  # then nothing of ours will be written there either
        return mask_plan(secret, binds, str(empty_dir))

    def ensure_hidden(self, paths) -> None:
        """Hide more paths from the sandbox (restarting the zygote if it could see them)."""
        new = [p for p in dict.fromkeys(os.path.realpath(p) for p in paths) if p not in self.hidden]
        if not new:
            return
        self.hidden += tuple(new)
        # restart only if the running sandbox shows one of them (an exercise folder
        # inside dlgrade's installed, and already masked, packages does not count)
        if self.isolation == "sandbox" and self.proc is not None and any(
                _is_under(p, self._bound) and not self._mask_plan.hides(p) for p in new):
            self._stop()
            self.start()

    def _readline(self, timeout: float) -> str | None:
        """One protocol line; '' if the worker's output ended, None if it stayed silent too long."""
        proc = self.proc
        if proc is None:
            return ""
        result: list[str] = []

        def read():
            try:
                result.append(proc.stdout.readline())
            except (OSError, ValueError):
                result.append("")

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        return result[0] if result else None

    def alive(self) -> bool:
        proc = self.proc
        return proc is not None and proc.poll() is None

    def kill(self) -> None:
        """Kill the zygote (and, in a sandbox, everything in it). Safe from another thread."""
        proc = self.proc
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        if self.proc is proc:
            self.proc = None

    def _stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                proc.stdin.flush()
                proc.wait(timeout=2)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def close(self) -> None:
        self._stop()
        remove_tree(self.root)

    def __enter__(self) -> "Worker":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- jobs
    def new_job_dir(self) -> tuple[Path, str]:
        name = uuid.uuid4().hex[:16]
        host = self.jobs / name
        host.mkdir(mode=0o700)
        inside = f"{SANDBOX_JOBS}/{name}" if self.isolation == "sandbox" else str(host)
        return host, inside

    def run(self, plan: dict, files: dict[str, bytes], limits: Limits) -> JobOutcome:
        """Run one plan on the files given (name -> bytes) and wait for it.

        Raises SandboxError only for failures of dlgrade itself; anything the
        student's code does is reported in the outcome (a zygote the job killed
        or froze is ``worker-died``/``worker-hung``; the next job starts a fresh one).
        """
        if not self.alive():
            self.start()
        host, inside = self.new_job_dir()
        for name, data in files.items():
            _check_name(name)
            (host / name).write_bytes(data)
        for name, arr in plan.pop("_arrays", {}).items():
            _check_name(name)
            _save_array(host / name, arr)
        if self.run_as and not self.root_files:  # root_files: the job writes as fsuid 0
            for p in [host, *host.iterdir()]:
                os.chown(p, *self.run_as)
        token = uuid.uuid4().hex
        job_limits = {**limits.as_job(), "address_space": not self.gpu}
        job = {"op": "run", "job_dir": inside, "plan": plan, "limits": job_limits,
               "run_as": list(self.run_as) if self.run_as else None, "root_files": self.root_files,
               "gpu": self.gpu, "token": token, "id": token}
        if self.isolation == "sandbox" and os.geteuid() != 0 and not _kernel_at_least(5, 14):
            # before 5.14, RLIMIT_NPROC counted the uid's tasks host-wide even in a user namespace
            job["nproc_base"] = host_tasks(os.getuid())
        proc = self.proc
        try:
            proc.stdin.write(json.dumps(job) + "\n")
            proc.stdin.flush()
        except (OSError, ValueError, AttributeError) as exc:
            self.kill()
            raise SandboxError(f"the worker stopped accepting jobs: {exc}") from exc
        line = self._readline(limits.capped().wall_s + self.reply_slack_s)
        self.jobs_run += 1
        reply = None
        if line:
            try:
                reply = json.loads(line)
            except ValueError:
                reply = None
            if isinstance(reply, dict) and reply.get("status") == "harness-error":
                raise SandboxError(f"the worker failed: {worker_error_line(reply.get('error'))}")
            if isinstance(reply, dict) and str(reply.get("harness", "")).startswith("failed"):
                remove_tree(self._retire(host))
                raise SandboxError("the worker failed before running the submission: "
                                   + str(reply["harness"]).strip().splitlines()[-1])
        if not isinstance(reply, dict) or reply.get("id") != token:
            # The zygote died (a job killed it), froze (a job stopped it) or
            # broke its protocol: this job failed; the next gets a fresh worker.
            hung = line is None
            self.kill()
            if self.isolation != "sandbox":  # a sandbox's PID namespace died with it
                if self.run_as:
                    _kill_uid_processes(self.run_as[0])
                else:
                    _kill_token_processes(token)
            reply = {"status": "worker-hung" if hung else "worker-died", "output": dict(_EMPTY_OUTPUT)}
        job_dir = self._retire(host)
        from dlgrade.graders.decoding import read_journal

        return JobOutcome(reply=reply, job_dir=job_dir, isolation=self.isolation,
                          journal=read_journal(job_dir))

    def _retire(self, host: Path) -> Path:
        """Move a finished job's directory where no later job can see it; sweep the rest."""
        dest = self.done / host.name
        try:
            if not os.path.islink(host):
                os.chmod(host, 0o700)  # the job may have locked its own directory
            os.rename(host, dest)
        except OSError:
            dest = host
        try:
            leftovers = [e for e in os.scandir(self.jobs)]
        except OSError:
            leftovers = []
        for entry in leftovers:
            if entry.path != str(dest):
                remove_tree(entry.path)
        return dest


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _save_array(path: Path, arr) -> None:
    import numpy as np

    np.save(path, np.asarray(arr), allow_pickle=False)
