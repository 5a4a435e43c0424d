"""Where student code runs: warm, sandboxed worker processes.

One :class:`Worker` owns one zygote (``graders/worker.py``) started either
inside bubblewrap (isolation ``"sandbox"``: no network, read-only system,
private PID namespace, only the worker file and a per-worker jobs directory
visible) or, where bubblewrap is missing or unusable, as a plain child process
with resource limits only (isolation ``"basic"``), with a warning that says so.

The zygote forks a fresh child for every job, so each grading still gets its
own process, limits and scratch directory, but pays neither for an interpreter
start nor for importing numpy/torch again. Batch grading keeps several workers;
``dlgrade check`` keeps one.

Everything the child produced is read back by :mod:`graders.outputs` as plain
data; nothing here interprets it.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

WORKER_FILE = Path(__file__).with_name("worker.py")
SANDBOX_WORKER = "/dlgrade/worker.py"
SANDBOX_JOBS = "/jobs"
NOBODY = (65534, 65534)
OUR_PACKAGES = ("graders", "reference", "exercises", "reports")
# how long a worker may take to import numpy/torch/sympy before we give up on it
START_TIMEOUT_S = 120.0


class SandboxError(Exception):
    """The execution layer itself failed (a dlgrade problem, not the student's)."""


class SandboxRequired(SandboxError):
    """``--require-sandbox`` was given but bubblewrap cannot be used here."""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one job. :meth:`capped` enforces dlgrade's hard caps."""

    wall_s: float = 10.0
    cpu_s: float = 10.0
    memory_mb: int = 1024
    nproc: int = 32
    fsize_mb: int = 256
    nofile: int = 256

    HARD_CAPS = {"wall_s": 300.0, "cpu_s": 300.0, "memory_mb": 8192, "nproc": 256,
                 "fsize_mb": 2048, "nofile": 1024}

    def capped(self) -> "Limits":
        vals = {k: min(getattr(self, k), cap) for k, cap in self.HARD_CAPS.items()}
        vals = {k: max(v, 1) for k, v in vals.items()}
        return replace(self, **vals)

    def as_job(self) -> dict:
        c = self.capped()
        return {"wall_s": c.wall_s, "cpu_s": c.cpu_s, "memory_mb": c.memory_mb,
                "nproc": c.nproc, "fsize_mb": c.fsize_mb, "nofile": c.nofile}


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
        shutil.rmtree(self.job_dir, ignore_errors=True)


# --------------------------------------------------------------------------- probing


_probe_cache: dict[str, tuple[bool, str]] = {}


def bwrap_path() -> str | None:
    return os.environ.get("DLGRADE_BWRAP") or shutil.which("bwrap")


def sandbox_status() -> tuple[bool, str]:
    """Whether bubblewrap works here, and if not, why (one line for a human)."""
    if os.environ.get("DLGRADE_NO_SANDBOX") == "1":
        return False, "sandbox disabled by DLGRADE_NO_SANDBOX=1"
    path = bwrap_path()
    if not path:
        return False, "bubblewrap (bwrap) is not installed"
    if path in _probe_cache:
        return _probe_cache[path]
    cmd = [path, *_namespace_args(), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        ok, why = r.returncode == 0, (r.stderr.strip().splitlines() or ["bwrap failed"])[-1]
    except (OSError, subprocess.TimeoutExpired) as exc:
        ok, why = False, f"bwrap could not start: {exc}"
    result = (ok, "" if ok else f"bubblewrap is installed but cannot create a sandbox here ({why})")
    _probe_cache[path] = result
    return result


def _namespace_args() -> list[str]:
    args = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session"]
    if os.geteuid() != 0:
        args.insert(0, "--unshare-user")
    return args


def choose_isolation(require_sandbox: bool = False) -> tuple[str, list[str]]:
    """Return ``("sandbox"|"basic", warnings)``; raise SandboxRequired if asked to."""
    ok, why = sandbox_status()
    if ok:
        return "sandbox", []
    if require_sandbox:
        raise SandboxRequired(f"--require-sandbox was given but {why}")
    return "basic", [
        f"WARNING: {why}; student code runs with resource limits only (isolation: basic), "
        "without filesystem or network isolation. Install bubblewrap for the sandbox."
    ]


# --------------------------------------------------------------------------- launching


def _module_roots(names) -> list[str]:
    """Directories holding the given installed packages (their site-packages)."""
    roots = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin:
            continue
        pkg_dir = Path(spec.origin).parent
        roots.append(str(pkg_dir.parent if spec.submodule_search_locations else pkg_dir))
    return roots


def _python_binds(preload) -> list[str]:
    """Read-only binds that give the sandbox a working interpreter and its libraries."""
    paths = {sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths.update(_module_roots(["numpy", *preload]))
    repo = str(Path(__file__).resolve().parent.parent)
    binds = []
    for p in sorted(paths):
        rp = os.path.realpath(p)
        # never mount dlgrade's own tree (an editable install's root): it holds reference/
        if rp == repo or repo.startswith(rp + os.sep) and rp not in (sys.base_prefix, sys.prefix):
            continue
        if os.path.exists(rp):
            binds += ["--ro-bind", rp, rp]
            if rp != p and os.path.exists(p):
                binds += ["--ro-bind", p, p] if not os.path.islink(p) else ["--symlink", os.readlink(p), p]
    return binds


def _mask_our_packages(binds: list[str]) -> list[str]:
    """Hide dlgrade's own packages wherever a bound directory contains them."""
    masks = []
    roots = [binds[i + 1] for i in range(0, len(binds), 3) if binds[i] == "--ro-bind"]
    for root in roots:
        for name in OUR_PACKAGES:
            candidate = os.path.join(root, name)
            if os.path.isdir(os.path.join(candidate)) and (
                    os.path.exists(os.path.join(candidate, "worker.py"))
                    or os.path.exists(os.path.join(candidate, "__init__.py"))):
                masks += ["--tmpfs", candidate]
    return masks


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


def _prefix_traversable_by_others() -> bool:
    """Can an unprivileged user reach the interpreter? (/root is usually 0700.)"""
    for top in {sys.base_prefix, sys.prefix}:
        p = Path(top)
        for part in [p, *p.parents]:
            try:
                if not os.stat(part).st_mode & 0o001:
                    return False
            except OSError:
                return False
    return True


class Worker:
    """One warm zygote and the jobs directory it shares with the grader.

    ``run`` is not thread-safe; a pool gives each thread its own worker.
    """

    def __init__(self, isolation: str = "sandbox", preload=("numpy",), gpu: bool = False):
        self.isolation = isolation
        self.preload = tuple(preload)
        self.gpu = gpu
        self.root = Path(tempfile.mkdtemp(prefix="dlgrade-worker-"))
        self.jobs = self.root / "jobs"
        self.jobs.mkdir()
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self.run_as: tuple[int, int] | None = None
        self.jobs_run = 0
        self._stderr_lines: list[str] = []

    # -- lifecycle
    def start(self) -> None:
        env = _clean_env(self.isolation == "sandbox", self.gpu)
        if self.isolation == "sandbox":
            cmd = self._bwrap_cmd()
            cwd = None
        else:
            cmd = [sys.executable, "-I", "-B", str(WORKER_FILE)]
            cwd = str(self.jobs)
        cmd += ["--preload", ",".join(self.preload)]
        if os.geteuid() == 0 and (self.isolation == "sandbox" or _prefix_traversable_by_others()):
            self.run_as = NOBODY
            os.chown(self.jobs, 0, 0)
            os.chmod(self.jobs, 0o755)
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=cwd, start_new_session=True, text=True, bufsize=1,
        )
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        line = self._readline(START_TIMEOUT_S)
        if not line:
            self.kill()
            tail = "\n".join(self._stderr_lines[-5:])
            raise SandboxError(f"the {self.isolation} worker did not start: {tail or 'no output'}")
        self.info = json.loads(line)

    def _drain_stderr(self) -> None:
        proc = self.proc
        for line in proc.stderr:
            self._stderr_lines.append(line.rstrip())
            del self._stderr_lines[:-50]

    def _bwrap_cmd(self) -> list[str]:
        py = _python_binds(self.preload)
        cmd = [bwrap_path(), *_namespace_args(), "--clearenv"]
        for k, v in _clean_env(True, self.gpu).items():
            cmd += ["--setenv", k, v]
        binds = _system_binds() + py
        cmd += _traversable_parents(binds) + binds + _mask_our_packages(py)
        cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                "--ro-bind", str(WORKER_FILE), SANDBOX_WORKER,
                "--bind", str(self.jobs), SANDBOX_JOBS, "--chdir", SANDBOX_JOBS]
        if os.geteuid() == 0:
            # Privileged bwrap: the zygote stays root inside (with only the
            # rights to switch user and kill), and each job drops to nobody, so
            # RLIMIT_NPROC is enforced and the zygote is out of the job's reach.
            cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_KILL"]
        if self.gpu:
            cmd += gpu_device_binds()
        cmd += [os.path.realpath(sys.executable), "-I", "-B", SANDBOX_WORKER]
        return cmd

    def _readline(self, timeout: float) -> str:
        """One protocol line, or '' if the worker died or stayed silent too long."""
        assert self.proc is not None
        result: list[str] = []

        def read():
            try:
                result.append(self.proc.stdout.readline())
            except (OSError, ValueError):
                result.append("")

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        return result[0] if result else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None

    def close(self) -> None:
        if self.alive():
            try:
                self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

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
        student's code does is reported in the outcome.
        """
        if not self.alive():
            self.start()
        host, inside = self.new_job_dir()
        for name, data in files.items():
            (host / name).write_bytes(data)
        for name, arr in plan.pop("_arrays", {}).items():
            _save_array(host / name, arr)
        if self.run_as:
            for p in [host, *host.iterdir()]:
                os.chown(p, *self.run_as)
        token = uuid.uuid4().hex
        job = {"op": "run", "job_dir": inside, "plan": plan, "limits": limits.as_job(),
               "run_as": list(self.run_as) if self.run_as else None, "token": token, "id": token}
        try:
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError) as exc:
            self.kill()
            raise SandboxError(f"the worker stopped accepting jobs: {exc}") from exc
        line = self._readline(limits.capped().wall_s + 15)
        self.jobs_run += 1
        if not line:
            # The zygote itself died or hung (a job killed it, or it broke):
            # the job counts as crashed; the next job gets a fresh worker.
            self.kill()
            reply = {"status": "worker-died", "output": {"head": "", "tail": "", "total_bytes": 0,
                                                          "dropped_bytes": 0}}
        else:
            reply = json.loads(line)
            if reply.get("status") == "harness-error":
                raise SandboxError(f"the worker failed: {reply.get('error')}")
        from graders.outputs import read_journal

        return JobOutcome(reply=reply, job_dir=host, isolation=self.isolation,
                          journal=read_journal(host))


def _save_array(path: Path, arr) -> None:
    import numpy as np

    np.save(path, np.asarray(arr), allow_pickle=False)
