"""The warm worker: the only dlgrade code that runs next to student code.

This file is deliberately self-contained (standard library and numpy; torch
only when a plan asks for it) because it is the one file mounted into the
sandbox: the rest of dlgrade, the reference solutions above all, stays
outside.

It runs as a *zygote*: started once per worker slot, it imports numpy (and
torch, sympy when asked) and then waits for jobs on its stdin, one JSON object
per line. For each job it forks a fresh child, which

* starts its own session (so the whole group can be killed),
* applies resource limits measured from the warm state (CPU seconds, memory
  beyond what the zygote already holds, processes, file size, open files),
* drops to the worker's own unprivileged user when the zygote is root,
* forbids itself new privileges and, by a seccomp filter, the system calls a
  grading never needs (new namespaces, mounts, ptrace, kernel keyrings, bpf,
  io_uring, and memory that escapes the memory limit: memfd, System V shm),
* loads the student's submission from the job directory and runs the plan's
  calls, writing every value it got back as ``.npy`` files (plain numeric
  arrays only) described by ``journal.jsonl``.

The zygote enforces the wall-clock and disk limits, keeps the head and tail of
the child's output, kills every process the job left behind (the zygote is a
child subreaper, so nothing the job starts can leave its process tree), and
replies with one JSON line. It never interprets what the child wrote: the
grader does, in its own process, reading plain arrays with
``allow_pickle=False``.
"""
from __future__ import annotations

import json
import os
import resource
import select
import signal
import sys
import time
import traceback

PROTOCOL_VERSION = 2
OUTPUT_HEAD = 8 * 1024
OUTPUT_TAIL = 8 * 1024
MAX_LEAVES = 128  # arrays saved per call
MAX_ITEMS = 64  # items of one list, tuple or dict
MAX_NODES = 1024  # values visited per call while encoding what it returned
MAX_DEPTH = 8
MAX_STR = 20_000
MAX_FILES = 5000  # entries a job may create in its scratch directory
DISK_CHECK_S = 0.2
_SUBREAPER = False  # set by the zygote once it is a child subreaper
JOB_MARK = "DLGRADE_JOB_TOKEN"
_real_exit = os._exit  # captured before any student code can replace it

# prctl(2) options and capability numbers (linux/prctl.h, linux/capability.h)
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_SECCOMP = 22
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
CAP_SETGID, CAP_SETUID = 6, 7


_LIBC = None
_FILTERS: dict = {}  # deny_shared_memory -> (a seccomp sock_fprog, the array it points to)


def _libc():
    global _LIBC
    if _LIBC is None:
        import ctypes

        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


# --------------------------------------------------------------------------- child side


class _Harness:
    """The child's one-way report to the zygote, closed before any student code runs.

    Whatever the journal says later may be the student's doing; what came
    through here was written by dlgrade alone. A failure reported here is
    dlgrade's own (the grader raises it); a "harness-error" in the journal
    can then only be the student's tampering.
    """

    def __init__(self, fd: int):
        self.fd = fd

    def report(self, text: str) -> None:
        if self.fd < 0:
            return
        try:
            os.write(self.fd, text.encode("utf-8", "replace")[:4000])
        except OSError:
            pass
        os.close(self.fd)
        self.fd = -1


def _child_main(job: dict, out_fd: int, status_fd: int) -> None:
    """Run one job in the freshly forked child. Never returns."""
    code = 0
    harness = _Harness(status_fd)
    try:
        os.setsid()
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        for fd in (out_fd, devnull):
            if fd > 2:
                os.close(fd)
        _close_other_fds(keep=status_fd)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        sys.stdin = open(os.devnull)
        os.chdir(job["job_dir"])
        os.environ[JOB_MARK] = job.get("token", "")
        for var in ("HOME", "TMPDIR", "TMP", "TEMP"):
            os.environ[var] = job["job_dir"]
        os.environ["USER"] = os.environ["LOGNAME"] = "student"
        run_as = job.get("run_as")
        _apply_limits(job.get("limits", {}), run_as, job.get("nproc_base"))
        _drop_privileges(run_as, bool(job.get("root_files")))
        _confine(job)
        _run_plan(job, harness)
    except BaseException:
        if harness.fd >= 0:  # dlgrade failed before the student's code ran
            harness.report("failed: " + traceback.format_exc()[-3000:])
        else:
            traceback.print_exc()
        code = 70
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    _real_exit(code)


def _close_other_fds(keep: int = -1) -> None:
    try:
        fds = [int(x) for x in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 256))
    for fd in fds:
        if fd > 2 and fd != keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _status_kb(*fields: str) -> list[int]:
    """Fields of /proc/self/status in kB (0 where missing)."""
    found = dict.fromkeys(fields, 0)
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in found:
                    found[key] = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return [found[k] for k in fields]


def _tasks_of(uid: int, exclude: int) -> int:
    """Threads (the unit RLIMIT_NPROC counts) of processes whose real uid is ``uid``."""
    count = 0
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != exclude]
    except OSError:
        return 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                real_uid, threads = None, 1
                for line in f:
                    if line.startswith("Uid:"):
                        real_uid = int(line.split()[1])
                    elif line.startswith("Threads:"):
                        threads = int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if real_uid == uid:
            count += threads
    return count


def _apply_limits(limits: dict, run_as, nproc_base) -> None:
    def setl(res, soft, hard=None):
        hard = soft if hard is None else hard
        try:
            cur_soft, cur_hard = resource.getrlimit(res)
            if cur_hard != resource.RLIM_INFINITY:
                soft, hard = min(soft, cur_hard), min(hard, cur_hard)
            resource.setrlimit(res, (soft, hard))
        except (ValueError, OSError):
            pass

    setl(resource.RLIMIT_CORE, 0)
    if "cpu_s" in limits:
        cpu = max(1, int(limits["cpu_s"]))
        # SIGXCPU at the soft limit; SIGKILL one second later if it is ignored
        setl(resource.RLIMIT_CPU, cpu, cpu + 1)
    if "memory_mb" in limits:
        budget = int(limits["memory_mb"]) * 2**20
        data_kb, size_kb = _status_kb("VmData", "VmSize")
        # RLIMIT_DATA counts private writable memory (heap, anonymous mmaps,
        # thread stacks): it stops numpy's 8 GB calloc, yet leaves room for
        # CUDA's huge PROT_NONE reservations. The budget is on top of what the
        # warm zygote already holds, which the forked child shares.
        setl(resource.RLIMIT_DATA, data_kb * 1024 + budget)
        if limits.get("address_space", True):
            # Shared anonymous mappings (mmap(-1, n), /dev/zero) escape
            # RLIMIT_DATA; the address-space limit bounds them too. The slack
            # covers libraries a submission imports lazily. Not for GPU jobs.
            slack = max(budget, 1024 * 2**20)
            setl(resource.RLIMIT_AS, size_kb * 1024 + budget + slack)
    if "fsize_mb" in limits:
        setl(resource.RLIMIT_FSIZE, int(limits["fsize_mb"]) * 2**20)
    if "nofile" in limits:
        setl(resource.RLIMIT_NOFILE, int(limits["nofile"]))
    if "nproc" in limits:
        # RLIMIT_NPROC caps the threads of *all* processes with the job's real
        # uid, and root ignores it; so the number we set is "what that uid
        # already runs" plus the job's budget (the job's child itself included):
        # - zygote is root: the job runs as the worker's own uid, which nothing
        #   else uses and whose leftovers were killed after the previous job:
        #   the base is 0;
        # - non-root, inside bubblewrap's user namespace: since Linux 5.14 the
        #   count is per user namespace, i.e. what /proc shows us here (the
        #   sandbox's init and the zygote); on older kernels it is the uid's
        #   count on the whole host, which the grader measures and sends;
        # - non-root without a sandbox: the uid's tasks on the host, as /proc
        #   shows them (the grader, the user's shell and editor...).
        if nproc_base is not None:
            base = int(nproc_base)
        elif run_as:
            base = 0
        else:
            base = _tasks_of(os.getuid(), exclude=os.getpid())
        setl(resource.RLIMIT_NPROC, base + int(limits["nproc"]))
    # A write past RLIMIT_FSIZE should fail with an exception, not kill silently.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _capset(caps: int) -> None:
    """Set the effective and permitted capability sets to ``caps`` (a bit mask)."""
    import ctypes

    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)(caps & 0xFFFFFFFF, caps & 0xFFFFFFFF, 0, caps >> 32, caps >> 32, 0)
    if _libc().capset(header, data) != 0:  # {effective, permitted, inheritable} x 2
        raise OSError(ctypes.get_errno(), "capset failed")


def _drop_privileges(run_as, root_files: bool) -> None:
    """Become the worker's unprivileged uid (only when the zygote is root).

    ``root_files``: basic isolation as root with an interpreter under a
    directory only root may enter (``/root/.pyenv``). The job's processes
    still get the unprivileged uid (so RLIMIT_NPROC holds and signals cannot
    reach the grader), but the file-system uid stays 0, without any
    capability, so that lazy imports keep working.
    """
    if not run_as:
        return
    uid, gid = int(run_as[0]), int(run_as[1])
    libc = _libc() if root_files else None
    if root_files:
        libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
    os.setgroups([])
    if hasattr(os, "setresgid"):
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    else:  # pragma: no cover (macOS)
        os.setgid(gid)
        os.setuid(uid)
    if root_files:
        _capset((1 << CAP_SETUID) | (1 << CAP_SETGID))
        libc.setfsuid(0)
        libc.setfsgid(0)
        _capset(0)
        libc.prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0)
    if os.getuid() != uid or os.geteuid() != uid:
        raise RuntimeError(f"could not switch to uid {uid}")


def _confine(job: dict) -> None:
    """Last steps before student code: die with the zygote, no new privileges, seccomp."""
    if not sys.platform.startswith("linux"):
        return
    libc = _libc()
    parent = os.getppid()
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the zygote died in between
        _real_exit(70)
    # The uid switch left us non-dumpable (our /proc entries owned by root);
    # the zygote stays non-dumpable, the job need not be.
    libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if job.get("seccomp", True):
        install_seccomp(deny_shared_memory=not job.get("gpu", False))


# --------------------------------------------------------------------------- seccomp

# System calls a grading job never needs. Each returns EPERM (ENOSYS where
# callers fall back to something else: clone3 -> clone, memfd -> temp files).
_DENY = {
    # name: (x86_64, aarch64)
    "setns": (308, 268), "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41),
    "chroot": (161, 51), "ptrace": (101, 117), "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271), "keyctl": (250, 219), "add_key": (248, 217),
    "request_key": (249, 218), "bpf": (321, 280), "perf_event_open": (298, 241),
    "userfaultfd": (323, 282), "io_uring_setup": (425, 425), "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427), "open_tree": (428, 428), "move_mount": (429, 429),
    "fsopen": (430, 430), "fsconfig": (431, 431), "fsmount": (432, 432), "fspick": (433, 433),
    "mount_setattr": (442, 442), "kexec_load": (246, 104), "kexec_file_load": (320, 294),
    "init_module": (175, 105), "finit_module": (313, 273), "delete_module": (176, 106),
    "reboot": (169, 142), "swapon": (167, 224), "swapoff": (168, 225), "acct": (163, 89),
    "quotactl": (179, 60), "name_to_handle_at": (303, 264), "open_by_handle_at": (304, 265),
    "syslog": (103, 116),
}
# Memory that RLIMIT_DATA/RLIMIT_AS do not see once it is unmapped.
_DENY_SHARED_MEMORY = {"shmget": (29, 194), "shmat": (30, 196)}
_ENOSYS = {"clone3": (435, 435)}
_ENOSYS_SHARED_MEMORY = {"memfd_create": (319, 279), "memfd_secret": (447, 447)}
# Only their namespace-creating forms are denied.
_NS_CALLS = {"clone": (56, 220), "unshare": (272, 97)}
# kill(-1, ...) and kill(-pgid, ...): whole process groups and "everything we may signal"
_KILL = (62, 129)
_NS_FLAGS = 0x7E020080  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME
_ARCHES = {"x86_64": (0, 0xC000003E), "amd64": (0, 0xC000003E),
           "aarch64": (1, 0xC00000B7), "arm64": (1, 0xC00000B7)}


def seccomp_program(machine: str, deny_shared_memory: bool = True) -> list[tuple[int, int, int, int]]:
    """The classic-BPF filter as ``(code, jt, jf, k)`` instructions; [] if the arch is unknown."""
    if machine not in _ARCHES:
        return []
    col, audit_arch = _ARCHES[machine]
    ld_abs, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    deny = dict(_DENY, **(_DENY_SHARED_MEMORY if deny_shared_memory else {}))
    enosys_calls = dict(_ENOSYS, **(_ENOSYS_SHARED_MEMORY if deny_shared_memory else {}))
    # body: one jeq per call, jumping to one of three shared tails
    checks = [(_KILL[col], "kill")]
    checks += [(nrs[col], "ns") for nrs in _NS_CALLS.values()]
    checks += [(nrs[col], "enosys") for nrs in enosys_calls.values()]
    checks += [(nrs[col], "eperm") for nrs in deny.values()]
    prog = [(ld_abs, 0, 0, 4)]  # seccomp_data.arch
    prog.append((jeq, 1, 0, audit_arch))
    prog.append((ret, 0, 0, eperm))  # another ABI (int 0x80 on x86_64): refuse everything
    prog.append((ld_abs, 0, 0, 0))  # seccomp_data.nr
    if col == 0:
        prog.append((jge, 0, 1, 0x40000000))  # the x32 ABI
        prog.append((ret, 0, 0, eperm))
    n = len(checks)
    # tails after the checks: [allow] [eperm] [enosys] [ns: ld args[0]; jset; allow; eperm]
    # [kill: ld args[0]; jge 2**31 (a negative pid); allow; eperm]
    for i, (nr, kind) in enumerate(checks):
        to_allow = n - i - 1
        target = {"eperm": to_allow + 1, "enosys": to_allow + 2, "ns": to_allow + 3, "kill": to_allow + 7}[kind]
        prog.append((jeq, target, 0, nr))
    prog.append((ret, 0, 0, allow))
    prog.append((ret, 0, 0, eperm))
    prog.append((ret, 0, 0, enosys))
    prog.append((ld_abs, 0, 0, 16))  # low 32 bits of args[0]: the clone/unshare flags
    prog.append((jset, 1, 0, _NS_FLAGS))
    prog.append((ret, 0, 0, allow))
    prog.append((ret, 0, 0, eperm))
    prog.append((ld_abs, 0, 0, 16))  # kill's pid, as an unsigned 32-bit number
    prog.append((jge, 1, 0, 0x80000000))
    prog.append((ret, 0, 0, allow))
    prog.append((ret, 0, 0, eperm))
    return prog


def _seccomp_filter(deny_shared_memory: bool):
    """The filter as a ``sock_fprog`` ready for prctl (built once, in the zygote); None if unsupported."""
    if deny_shared_memory not in _FILTERS:
        import ctypes
        import platform

        prog = seccomp_program(platform.machine().lower(), deny_shared_memory)
        if not prog:
            _FILTERS[deny_shared_memory] = None
        else:
            # struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}; struct sock_fprog {u16 len; *filter}
            raw = b"".join(code.to_bytes(2, sys.byteorder) + bytes([jt, jf]) + k.to_bytes(4, sys.byteorder)
                           for code, jt, jf, k in prog)
            array = ctypes.create_string_buffer(raw, len(raw))

            class SockFprog(ctypes.Structure):
                _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.c_void_p)]

            _FILTERS[deny_shared_memory] = (SockFprog(len(prog), ctypes.addressof(array)), array)
    entry = _FILTERS[deny_shared_memory]
    return entry[0] if entry else None


def install_seccomp(deny_shared_memory: bool = True) -> bool:
    """Install the filter on this process (needs no_new_privs); False if unsupported."""
    import ctypes

    fprog = _seccomp_filter(deny_shared_memory)
    if fprog is None:
        return False
    libc = _libc()
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return libc.prctl(PR_SET_SECCOMP, 2, ctypes.byref(fprog), 0, 0) == 0  # SECCOMP_MODE_FILTER


def _seccomp_works() -> bool:
    """Fork a child that installs the filter and checks that unshare(NEWUSER) is refused."""
    if not sys.platform.startswith("linux"):
        return False
    pid = os.fork()
    if pid == 0:
        ok = 2
        try:
            if install_seccomp():
                libc = _libc()
                ok = 0 if libc.unshare(0x10000000) != 0 else 1
        except BaseException:
            ok = 2
        _real_exit(ok)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


# --------------------------------------------------------------------------- the plan

_NUMPY_SCALARS: frozenset = frozenset()


def _numpy_scalar_types():
    global _NUMPY_SCALARS
    if not _NUMPY_SCALARS:
        import numpy as np

        _NUMPY_SCALARS = frozenset(t for t in np.sctypeDict.values() if issubclass(t, np.generic))
    return _NUMPY_SCALARS


class _Encoder:
    """Writes returned values as .npy leaves plus a JSON tree describing them.

    Only the data itself crosses: an ndarray subclass is read through
    ``ndarray``'s own C methods (its overrides of ``__array__``, ``tolist``,
    ``__eq__``... never run), containers are walked with the base types'
    methods, and anything else is described by its type name only.
    """

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.count = 0
        self.nodes = 0

    def encode(self, value, depth: int = 0):
        import numpy as np

        self.nodes += 1
        if self.nodes > MAX_NODES:
            return {"t": "other", "type": "too large a structure"}
        if depth > MAX_DEPTH:
            return {"t": "other", "type": "nested too deeply"}
        vtype = type(value)  # type(), unlike isinstance(), cannot be fooled by a __class__ property
        torch = sys.modules.get("torch")
        if torch is not None and issubclass(vtype, torch.Tensor):
            return self._tensor(value, torch)
        if issubclass(vtype, np.ndarray):
            base = np.ndarray.view(value, np.ndarray)
            arr = np.ndarray.copy(base, order="C")
            if arr.dtype.kind not in "biuf":
                return {"t": "other", "type": f"array of {arr.dtype.name}"}
            leaf = self._save(arr)
            if vtype is not np.ndarray:
                leaf["subclass"] = vtype.__name__[:80]
            return leaf
        if issubclass(vtype, np.generic):
            if vtype not in _numpy_scalar_types():
                return {"t": "other", "type": vtype.__name__[:80]}
            arr = np.array(value)
            if arr.dtype.kind not in "biuf":
                return {"t": "other", "type": f"{arr.dtype.name} value"}
            return self._save(arr)
        if vtype in (bool, int, float):
            try:
                arr = np.array(value)
            except OverflowError:
                return {"t": "other", "type": "int too large"}
            if arr.dtype.kind not in "biuf":
                return {"t": "other", "type": "int too large"}
            leaf = self._save(arr)
            leaf["python"] = vtype.__name__
            return leaf
        if vtype is str:
            return {"t": "str", "value": value[:MAX_STR], "truncated": len(value) > MAX_STR}
        if value is None:
            return {"t": "none"}
        if issubclass(vtype, (tuple, list)):
            base_t = tuple if issubclass(vtype, tuple) else list
            n = base_t.__len__(value)
            if n > MAX_ITEMS:
                return {"t": "other", "type": f"{base_t.__name__} of {n} items"}
            items = [self.encode(base_t.__getitem__(value, i), depth + 1) for i in range(n)]
            return {"t": "seq", "kind": base_t.__name__, "items": items}
        if issubclass(vtype, dict):
            pairs = list(dict.items(value))
            if len(pairs) > MAX_ITEMS:
                return {"t": "other", "type": f"dict of {len(pairs)} items"}
            items = {}
            for k, v in pairs:
                if type(k) is not str:
                    return {"t": "other", "type": "dict with non-string keys"}
                items[k[:200]] = self.encode(v, depth + 1)
            return {"t": "map", "items": items}
        return {"t": "other", "type": vtype.__name__[:80]}

    def _tensor(self, value, torch):
        import numpy as np

        T = torch.Tensor
        meta = {
            "device": str(T.device.__get__(value)),
            "dtype": str(T.dtype.__get__(value)).replace("torch.", ""),
            "requires_grad": bool(T.requires_grad.__get__(value)),
            "grad_fn": T.grad_fn.__get__(value) is not None,
            "shape": list(T.shape.__get__(value)),
        }
        disable = getattr(torch._C, "DisableTorchFunctionSubclass", None) or torch._C.DisableTorchFunction
        with disable():
            t = T.detach(value)
            if t.device.type == "meta":
                return {"t": "tensor-meta", "torch": meta}
            t = t.cpu()
            if t.dtype in (torch.bfloat16, torch.float16):
                t = t.float()
            if t.is_complex() or not (t.is_floating_point() or t.dtype in (
                    torch.int64, torch.int32, torch.bool, torch.uint8, torch.int16, torch.int8)):
                return {"t": "other", "type": f"tensor of {meta['dtype']}"}
            arr = np.array(t.numpy(), copy=True)
        leaf = self._save(arr)
        leaf["torch"] = meta
        if type(value) not in (torch.Tensor, torch.nn.Parameter):
            leaf["subclass"] = type(value).__name__[:80]
        return leaf

    def _save(self, arr):
        import numpy as np

        if self.count >= MAX_LEAVES:
            return {"t": "other", "type": "too many values"}
        self.count += 1
        name = f"{self.prefix}_{self.count:03d}.npy"
        np.save(name, arr, allow_pickle=False)
        return {"t": "array", "file": name, "dtype": arr.dtype.name, "shape": list(arr.shape)}


def _input_files(plan: dict) -> list[str]:
    names = []
    for call in plan.get("calls", []):
        for spec in [*call.get("args", []), *call.get("kwargs", {}).values()]:
            if "npy" in spec:
                names.append(spec["npy"])
            if "add" in spec:
                names.append(spec["add"]["npy"])
    return list(dict.fromkeys(names))


def _load_inputs(plan: dict) -> dict:
    """Every input array of the plan, read before the student's code can touch the files."""
    import numpy as np

    return {name: np.load(name, allow_pickle=False) for name in _input_files(plan)}


class _ChainBroken(Exception):
    """A chained argument's source call did not return an array there (the call is skipped)."""


def _build_arg(spec: dict, inputs: dict, kept: dict | None = None):
    import numpy as np

    if "json" in spec:
        return spec["json"]
    if "rng" in spec:  # a generator built here, in the student's process, from the grader's seed
        return np.random.default_rng(int(spec["rng"]))
    if "prev" in spec:  # an array an earlier call returned (copied when it returned)
        items = (kept or {}).get(spec["prev"])
        item = int(spec.get("item", 0))
        if items is None or not 0 <= item < len(items) or items[item] is None:
            raise _ChainBroken(spec["prev"])
        return np.array(items[item], copy=True)
    arr = np.array(inputs[spec["npy"]], copy=True)
    if "add" in spec:
        arr = arr + spec["add"]["scale"] * inputs[spec["add"]["npy"]]
    if "add_at" in spec:
        arr[tuple(spec["add_at"]["index"])] += spec["add_at"]["delta"]
    if spec.get("as") == "torch":
        import torch

        t = torch.from_numpy(np.ascontiguousarray(arr))
        if "dtype" in spec:
            t = t.to(getattr(torch, spec["dtype"]))
        t = t.to(spec.get("device", "cpu"))
        if spec.get("requires_grad"):
            t.requires_grad_(True)
        return t
    return arr


def _seed(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def _student_frames(tb, job_dir: str) -> list[dict]:
    """The traceback's frames that are in the student's own files (the job directory)."""
    frames = []
    for fs in traceback.extract_tb(tb):
        if os.path.dirname(fs.filename) == job_dir:
            frames.append({"line": fs.lineno, "function": fs.name[:200], "code": (fs.line or "")[:300],
                           "file": os.path.basename(fs.filename)[:200]})
    return frames[-20:]


def _describe_exception(exc: BaseException, job_dir: str) -> dict:
    info = {
        "type": type(exc).__name__[:80],
        "message": str(exc)[:2000] if not _is_memory_error(exc) else "out of memory",
        "frames": _student_frames(exc.__traceback__, job_dir),
    }
    if isinstance(exc, SyntaxError):
        info["line"] = exc.lineno
        info["offset"] = exc.offset
        info["text"] = (exc.text or "").rstrip()[:300]
        info["message"] = str(exc.msg)[:500]
        info["line_file"] = os.path.basename(str(exc.filename or ""))[:200]  # the file `line` is in
    elif info["frames"]:
        info["line"] = info["frames"][-1]["line"]
        info["line_file"] = info["frames"][-1]["file"]
    stray = getattr(exc, "__dict__", {}).get(_STRAY)
    if stray:
        info["stray"] = stray
    return info


_STRAY = "_dlgrade_stray"  # where a tensor off the call's device was made (see _DeviceTracker)


def _device_tracker(device: str, job_dir: str):
    """A torch function mode for calls on another device than the CPU.

    It notes, on every tensor an operation makes off ``device`` (a one-hot
    made on the CPU, say), the student's line that made it (or made the
    tensor it came from); when an operation fails, it attaches the origin of
    the first such tensor among its arguments to the exception. It never
    changes what an operation does.
    """
    import linecache

    import torch
    from torch.overrides import TorchFunctionMode

    want = torch.device(device).type
    student_dir = os.path.abspath(job_dir)

    def tensors(obj, depth=0):
        if isinstance(obj, torch.Tensor):
            yield obj
        elif depth < 3 and isinstance(obj, (list, tuple)):
            for o in obj:
                yield from tensors(o, depth + 1)
        elif depth < 3 and isinstance(obj, dict):
            for o in obj.values():
                yield from tensors(o, depth + 1)

    def student_line():
        f = sys._getframe(2)
        while f is not None:
            if os.path.dirname(os.path.abspath(f.f_code.co_filename)) == student_dir:
                code = linecache.getline(f.f_code.co_filename, f.f_lineno).strip()
                return {"line": f.f_lineno, "code": code[:300]}
            f = f.f_back
        return None

    def origin(t):
        return getattr(t, "__dict__", {}).get(_STRAY)

    def where(t):
        return {**(origin(t) or {"line": None, "code": ""}), "device": str(t.device)}

    class Tracker(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            try:
                out = func(*args, **kwargs)
            except Exception as exc:
                stray = next((t for t in tensors((args, kwargs)) if t.device.type != want), None)
                notes = getattr(exc, "__dict__", None)
                if stray is not None and notes is not None and _STRAY not in notes:
                    notes[_STRAY] = where(stray)
                raise
            made = [t for t in tensors(out) if t.device.type != want and origin(t) is None]
            if made:
                parent = next((origin(t) for t in tensors((args, kwargs))
                               if t.device.type != want and origin(t) is not None), None)
                note = dict(parent or student_line() or {"line": None, "code": ""})
                for t in made:
                    try:
                        t.__dict__[_STRAY] = note
                    except AttributeError:  # a tensor type without a __dict__: nothing to note
                        pass
            return out

        def origin_of(self, out):
            """Where the first tensor of ``out`` that is off the device was made, or None."""
            stray = next((t for t in tensors(out) if t.device.type != want), None)
            return None if stray is None else where(stray)

    return Tracker()


def _is_memory_error(exc: BaseException) -> bool:
    import errno

    return isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno == errno.ENOMEM)


class _Journal:
    """Appends one JSON line per finished step, so a timeout still says where it stopped."""

    def __init__(self, path: str):
        self.f = open(path, "w")

    def write(self, record: dict) -> None:
        self.f.write(json.dumps(record) + "\n")
        self.f.flush()


# --------------------------------------------------------------------------- notebooks

# A notebook arrives as one module (graders/notebook.py) named *_ipynb.py whose rewritten
# magics call this runtime: what Jupyter gives a notebook and a plain interpreter does not.
NOTEBOOK_SUFFIX = "_ipynb.py"  # dlgrade.graders.notebook.MODULE_SUFFIX
NOTEBOOK_RUNTIME = "_dlgrade_nb"  # dlgrade.graders.notebook.RUNTIME_NAME
_CAPTURES: list = []  # the streams each open %%capture replaced, innermost last


class _CapturedIO:
    """What ``%%capture name`` leaves in ``name``, as IPython's CapturedIO: the text
    written to stdout and stderr, the objects given to display(), ``show()``."""

    def __init__(self, stdout, stderr):
        self._stdout, self._stderr, self.outputs = stdout, stderr, []

    @property
    def stdout(self) -> str:
        return self._stdout.getvalue() if self._stdout is not None else ""

    @property
    def stderr(self) -> str:
        return self._stderr.getvalue() if self._stderr is not None else ""

    def show(self) -> None:
        sys.stdout.write(self.stdout)
        sys.stderr.write(self.stderr)
        for obj in self.outputs:
            print(repr(obj))

    __call__ = show

    def __repr__(self) -> str:
        return "<IPython.utils.capture.CapturedIO object>"


def _capture_start(stdout=True, stderr=True, display=True) -> _CapturedIO:
    import io

    cap = _CapturedIO(io.StringIO() if stdout else None, io.StringIO() if stderr else None)
    _CAPTURES.append((sys.stdout, sys.stderr, cap if display else None))
    if stdout:
        sys.stdout = cap._stdout
    if stderr:
        sys.stderr = cap._stderr
    return cap


def _capture_end() -> None:
    if _CAPTURES:
        sys.stdout, sys.stderr, _ = _CAPTURES.pop()


def _end_captures() -> None:
    """Give the job its streams back after a %%capture cell that raised."""
    while _CAPTURES:
        _capture_end()


def _display(*objs, **kwargs):
    """display() as a Jupyter kernel shows it in text: each object's repr on a line of its
    own (or kept by an enclosing %%capture)."""
    capturing = next((c for _, _, c in reversed(_CAPTURES) if c is not None), None)
    if capturing is not None:
        capturing.outputs.extend(objs)
    else:
        for obj in objs:
            print(repr(obj))
    return _DisplayHandle() if kwargs.get("display_id") else None


class _DisplayHandle:
    def display(self, obj, **kwargs):
        _display(obj)

    def update(self, obj, **kwargs):
        _display(obj)


def _writefile(name: str, text: str, append: bool = False) -> None:
    """%%writefile [-a] NAME: IPython's message, then the cell's text into NAME."""
    import importlib

    path = os.path.expanduser(name)
    if os.path.exists(path):
        print(("Appending to %s" if append else "Overwriting %s") % name)
    else:
        print("Writing %s" % name)
    with open(path, "a" if append else "w", encoding="utf-8") as f:
        f.write(text)
    importlib.invalidate_caches()  # a later import must see the new file


def _run_script(path: str, argv: list, namespace: dict, in_namespace: bool = False) -> None:
    """%run [-i] script.py args: run it as __main__ and keep the names it defined."""
    import runpy

    old = sys.argv
    sys.argv = [path, *argv]
    try:
        found = runpy.run_path(os.path.abspath(path), init_globals=namespace if in_namespace else None,
                               run_name="__main__")
    finally:
        sys.argv = old
    namespace.update({k: v for k, v in found.items() if not k.startswith("__")})


def _get_ipython():
    return None  # as IPython.get_ipython() outside a kernel


class _DisplayObject:
    """HTML(...), Markdown(...), Image(...): kept, shown as IPython shows them outside a kernel."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        self.data = args[0] if args else kwargs.get("data")

    def __repr__(self) -> str:
        return f"<IPython.core.display.{type(self).__name__} object>"


_DISPLAY_CLASSES = ("HTML", "Markdown", "Latex", "Math", "JSON", "Javascript", "SVG", "Image", "Pretty",
                    "Code", "Audio", "Video", "IFrame", "FileLink", "FileLinks", "YouTubeVideo",
                    "GeoJSON", "TextDisplayObject", "DisplayObject")
_DISPLAY_FUNCTIONS = ("display_html", "display_markdown", "display_latex", "display_json",
                      "display_javascript", "display_svg", "display_png", "display_jpeg", "display_pretty",
                      "display_pdf")


def _own_module(name: str) -> bool:
    """Whether ``name`` would be imported from the job's own folder (a student's file)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    origin = getattr(spec, "origin", None) or ""
    here = os.path.abspath(os.getcwd()) + os.sep
    return bool(origin) and os.path.abspath(origin).startswith(here)


def _display_name(name: str):
    """Any other public name of IPython.display: a display class for a capitalised
    name (``Audio``, ``ProgressBar``), else a function that displays its arguments."""
    if name.startswith("_"):
        raise AttributeError(name)
    if name[:1].isupper():
        return type(name, (_DisplayObject,), {"__module__": "IPython.core.display"})
    return lambda *objs, **kwargs: None


def _ipython_standin() -> dict:
    """Modules standing in for IPython, IPython.display and IPython.core.display."""
    import types

    disp = types.ModuleType("IPython.display", "dlgrade's stand-in for IPython.display")
    disp.__getattr__ = _display_name  # names this stand-in does not list still import
    disp.display = _display
    disp.clear_output = lambda wait=False: None
    disp.update_display = lambda obj, **kwargs: _display(obj)
    disp.set_matplotlib_formats = lambda *a, **k: None
    disp.DisplayHandle = _DisplayHandle
    for name in _DISPLAY_CLASSES:
        setattr(disp, name, type(name, (_DisplayObject,), {"__module__": "IPython.core.display"}))
    for name in _DISPLAY_FUNCTIONS:
        setattr(disp, name, lambda *objs, **kwargs: _display(*objs))
    core = types.ModuleType("IPython.core")
    core.__path__ = []
    core.display = disp
    pkg = types.ModuleType("IPython", "dlgrade's stand-in for IPython in a graded notebook")
    pkg.__path__ = []
    pkg.display, pkg.core, pkg.get_ipython = disp, core, _get_ipython
    return {"IPython": pkg, "IPython.display": disp, "IPython.core": core, "IPython.core.display": disp}


def _dlgrade_standin():
    """A module standing in for dlgrade in a graded notebook: the cell that checks the
    notebook from its kernel (``import dlgrade; dlgrade.check()``) is the grader's, not
    the answer's, so it does nothing here (``%dlgrade check`` is a magic: not run)."""
    import types

    mod = types.ModuleType("dlgrade", "dlgrade's stand-in in a graded notebook (checking does nothing here)")
    mod.check = lambda *args, **kwargs: None
    mod.load_ipython_extension = lambda ip=None: None
    mod.unload_ipython_extension = lambda ip=None: None
    return mod


def _notebook_runtime():
    """What a converted notebook gets before it runs: the runtime its rewritten magics
    call, ``display`` and ``get_ipython`` among the builtins (where Jupyter puts them, so
    helper modules see them too) and the IPython stand-in — always, even where IPython is
    installed: outside a kernel the real ``display`` prints ``str(x)`` where a kernel shows
    ``repr(x)``, and a notebook must run (and score) the same on every grading machine."""
    import builtins
    import types

    for name, value in (("display", _display), ("get_ipython", _get_ipython)):
        if not hasattr(builtins, name):
            setattr(builtins, name, value)
    if not _own_module("IPython"):  # a student's own IPython.py next to the notebook wins
        sys.modules.update(_ipython_standin())
    if not _own_module("dlgrade"):
        sys.modules["dlgrade"] = _dlgrade_standin()
    return types.SimpleNamespace(writefile=_writefile, run=_run_script, capture_start=_capture_start,
                                 capture_end=_capture_end, display=_display)


class _ImportGuard:
    """The child's guard for an exercise's ``forbid_imports`` (the grader decides the verdict).

    Installed before any student code runs, it watches every import twice: an
    audit hook (``import`` statements and ``__import__``; audit hooks cannot be
    removed) and a finder first on ``sys.meta_path`` (``importlib.import_module``
    too). Each import of a forbidden module that the student's code asked for is
    reported in the journal (``{"step": "import", "phase", "module", "file",
    "line"}``) with the student's line, the forbidden package's own imports
    walked past. While the submission loads, forbidden imports are allowed (a
    notebook's torch cell for another exercise needs them; the grader judges
    those from the source); once it has loaded, forbidden modules are purged
    from ``sys.modules`` and every further import of one is refused
    (``ModuleNotFoundError``): the entry cannot get one by any import path.
    """

    def __init__(self, forbidden: tuple, journal: "_Journal", job_dir: str):
        self.forbidden = forbidden
        self.journal = journal
        self.job_dir = job_dir
        self.phase = "load"
        self.reported: set = set()
        self.importlib_files = {getattr(sys.modules.get(m), "__file__", None)
                                for m in ("importlib", "importlib.util", "importlib.abc")} - {None}

    def root(self, name) -> str | None:
        if not isinstance(name, str):
            return None
        for m in self.forbidden:
            if name == m or name.startswith(m + "."):
                return m
        return None

    def install(self) -> None:
        guard = self

        class Finder:
            @staticmethod
            def find_spec(name, path=None, target=None):
                guard.seen(name)
                return None

        sys.meta_path.insert(0, Finder())
        sys.addaudithook(self._hook)

    def entry_runs(self) -> None:
        """From now on the entry runs: no forbidden module stays importable."""
        self.phase = "call"
        for name in list(sys.modules):
            if self.root(name):
                sys.modules.pop(name, None)

    def _hook(self, event, args) -> None:
        if event == "import" and args:
            self.seen(args[0])

    def seen(self, name) -> None:
        """An import of ``name`` is starting: report it if forbidden; refuse it once the entry runs."""
        root = self.root(name)
        if root is None:
            return
        try:
            where = self._student_line()
            key = (self.phase, root, where)
            if where is not None and key not in self.reported:
                self.reported.add(key)
                self.journal.write({"step": "import", "phase": self.phase, "module": name[:200],
                                    "file": where[0][:200], "line": where[1]})
        except Exception:  # the report must never break the import system itself
            pass
        if self.phase == "call":
            raise ModuleNotFoundError(f"No module named {name!r} (this exercise does not allow it)", name=name)

    def _in_job(self, filename: str) -> bool:
        return not filename.startswith("<") and os.path.dirname(os.path.abspath(filename)) == self.job_dir

    def _student_line(self):
        """(file, line) of the student's code that asked for the import, or None when a
        library did; code the student exec'd counts as the student's."""
        f = sys._getframe(2)
        while f is not None:
            name = f.f_code.co_filename
            if name.startswith("<frozen importlib") or name in self.importlib_files or name == _THIS_FILE \
                    or self.root(f.f_globals.get("__name__")):
                f = f.f_back  # the import system, this guard, or the forbidden package importing itself
                continue
            break
        if f is None:
            return None
        if self._in_job(f.f_code.co_filename):
            return os.path.basename(f.f_code.co_filename), f.f_lineno
        if f.f_code.co_filename.startswith("<"):  # exec/eval of a string: whose?
            g = f.f_back
            while g is not None:
                if self._in_job(g.f_code.co_filename):
                    return os.path.basename(g.f_code.co_filename), g.f_lineno
                g = g.f_back
        return None


_THIS_FILE = __file__


def _load_submission(path: str):
    import importlib.util

    name = "submission"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    if path.endswith(NOTEBOOK_SUFFIX):
        setattr(module, NOTEBOOK_RUNTIME, _notebook_runtime())
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _run_plan(job: dict, harness: _Harness) -> None:
    plan = job["plan"]
    journal = _Journal("journal.jsonl")
    job_dir = os.path.abspath(os.getcwd())
    filename = plan["submission"]
    sys.path.insert(0, job_dir)
    if plan.get("framework") == "torch":
        import torch  # noqa: F401  (seeded before the student's code runs)

        torch.set_num_threads(1)
    inputs = _load_inputs(plan)
    _seed(plan.get("seed", 0))
    forbidden = tuple(m for m in plan.get("forbid_imports") or () if isinstance(m, str))
    guard = _ImportGuard(forbidden, journal, job_dir) if forbidden else None
    if guard is not None:
        guard.install()
    harness.report("ok")  # from here on, the student's code runs
    t0 = time.perf_counter()
    try:
        try:
            module = _load_submission(os.path.join(job_dir, filename))
        finally:
            _end_captures()
    except SystemExit as exc:
        journal.write({"step": "load", "status": "exit", "code": _exit_code(exc)})
        return
    except BaseException as exc:  # the student's error: report it, never crash
        status = "syntax-error" if isinstance(exc, SyntaxError) else (
            "memory" if _is_memory_error(exc) else (
                "import-error" if isinstance(exc, ImportError) else "exception"))
        journal.write({"step": "load", "status": status, "error": _describe_exception(exc, job_dir)})
        return
    journal.write({"step": "load", "status": "ok", "seconds": time.perf_counter() - t0})
    if guard is not None:
        guard.entry_runs()

    entry = plan["entry"]
    try:
        found = entry in vars(module)
    except Exception:
        found = False
    if not found:
        journal.write({"step": "entry", "status": "missing",
                       "names": sorted(n for n in vars(module) if isinstance(n, str)
                                       and not n.startswith("_"))[:50]})
        return
    value = vars(module)[entry]
    if plan.get("want") == "value":
        try:
            journal.write({"step": "entry", "status": "ok", "value": _Encoder("value").encode(value)})
        except BaseException as exc:
            journal.write({"step": "entry", "status": "exception", "error": _describe_exception(exc, job_dir)})
        return
    if not callable(value):
        journal.write({"step": "entry", "status": "not-callable", "type": type(value).__name__[:80]})
        return
    journal.write({"step": "entry", "status": "ok"})

    run_calls(value, plan, job_dir, inputs, journal.write)


def run_calls(fn, plan: dict, job_dir: str, inputs: dict, write) -> None:
    """Run the plan's calls on ``fn`` in order, ``write(record)`` after each: the one loop
    both this worker and dlgrade's trusted in-process runner (graders/trusted_runner.py)
    run a plan with, so that chained arguments (``{"prev": id, "item": i}`` from a call
    marked ``keep``), generators (``{"rng": seed}``), per-call ``global_seed`` and
    ``report_global`` mean the same in both."""
    kept: dict = {}  # call id -> copies of the arrays it returned, for calls that chain
    for call in plan.get("calls", []):
        write(_run_call(fn, call, job_dir, inputs, kept))


def _keep(out) -> list:
    """Copies of the arrays a call returned, taken at once (a step may update its arguments
    in place and return them): the items of a tuple or list, or the value itself. Anything
    that is not a plain numeric ndarray is kept as None (a chained call from it is skipped)."""
    import numpy as np

    vtype = type(out)
    if issubclass(vtype, (tuple, list)):  # walked with the base types' methods, as _Encoder does
        base_t = tuple if issubclass(vtype, tuple) else list
        items = [base_t.__getitem__(out, i) for i in range(min(base_t.__len__(out), MAX_ITEMS))]
    else:
        items = [out]
    copies = []
    for item in items:
        if issubclass(type(item), np.ndarray):
            arr = np.ndarray.copy(np.ndarray.view(item, np.ndarray), order="C")
            copies.append(arr if arr.dtype.kind in "biuf" else None)
        else:
            copies.append(None)
    return copies


def _global_state():
    import numpy as np

    try:
        state = np.random.get_state()
        return (np.array(state[1], copy=True), int(state[2]))
    except Exception:
        return None


def _exit_code(exc: SystemExit):
    code = exc.code
    if code is None or type(code) is int:
        return code
    return str(code)[:200]


def _failed(record: dict, exc: BaseException, job_dir: str) -> dict:
    """The call's record for a call (or the encoding of its result) that raised: sys.exit
    is an ``exit`` with its code, a MemoryError ``memory``, anything else ``exception``."""
    if isinstance(exc, SystemExit):
        record.update(status="exit", code=_exit_code(exc))
    else:
        record.update(status="memory" if _is_memory_error(exc) else "exception",
                      error=_describe_exception(exc, job_dir))
    return record


def _run_call(fn, call: dict, job_dir: str, inputs: dict, kept: dict | None = None) -> dict:
    import numpy as np

    cid = call["id"]
    record = {"step": "call", "id": cid}
    try:
        args = [_build_arg(a, inputs, kept) for a in call.get("args", [])]
        kwargs = {k: _build_arg(v, inputs, kept) for k, v in call.get("kwargs", {}).items()}
    except _ChainBroken as exc:  # an earlier step returned no array to feed back: nothing to run
        record.update(status="skipped", error={"kind": "chain", "after": str(exc)})
        return record
    except Exception as exc:  # the inputs were fine before: the student's code broke them
        record.update(status="harness-error", error={"type": type(exc).__name__, "message": str(exc)})
        return record
    _seed(call.get("seed", 0))
    if "global_seed" in call:  # numpy's global generator set on purpose: is rng used, not it?
        np.random.seed(int(call["global_seed"]) % 2**32)
    global_before = _global_state() if call.get("report_global") else None
    watch = call.get("watch_args", False)
    before = None
    if watch:
        before = [_snapshot(a) for a in args]
    tracker = _device_tracker(call["device"], job_dir) if call.get("device", "cpu") != "cpu" else None
    t0 = time.perf_counter()
    try:
        if tracker is None:
            out = fn(*args, **kwargs)
        else:
            with tracker:
                out = fn(*args, **kwargs)
    except BaseException as exc:
        return _failed(record, exc, job_dir)
    record["seconds"] = time.perf_counter() - t0
    if call.get("report_global"):
        after = _global_state()
        record["global_changed"] = not (global_before is not None and after is not None
                                        and global_before[1] == after[1]
                                        and np.array_equal(global_before[0], after[0]))
    enc = _Encoder(f"c{call['n']:04d}")
    try:
        if "select" in call:
            out = _select(out, call["select"])
        if call.get("keep") and kept is not None:
            kept[cid] = _keep(out)
        record["output"] = enc.encode(out)
        if tracker is not None:
            record["output_origin"] = tracker.origin_of(out)
        if watch:
            record["args_after"] = [enc.encode(_snapshot(a)) if b is not None else {"t": "none"}
                                    for a, b in zip(args, before)]
        if call.get("backward"):
            record["backward"] = _backward(out, args, enc, job_dir)
    except BaseException as exc:
        return _failed(record, exc, job_dir)
    record["status"] = "ok"
    return record


def _select(out, path):
    for key in path:
        if isinstance(out, dict):
            out = out[key]
        elif isinstance(out, (tuple, list)):
            out = out[int(key)]
        else:
            raise TypeError(f"cannot select {key!r} from {type(out).__name__}")
    return out


def _snapshot(a):
    import numpy as np

    torch = sys.modules.get("torch")
    if isinstance(a, np.ndarray):
        return np.array(a, copy=True, subok=False)
    if torch is not None and isinstance(a, torch.Tensor):
        return a.detach().cpu().clone()
    return None


def _backward(out, args, enc: _Encoder, job_dir: str) -> dict:
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(out, torch.Tensor):
        return {"status": "not-a-tensor"}
    if out.grad_fn is None and not out.requires_grad:
        return {"status": "no-graph"}
    try:
        target = out if out.numel() == 1 else out.sum()
        target.backward()
    except Exception as exc:
        return {"status": "exception", "error": _describe_exception(exc, job_dir)}
    grads = []
    for a in args:
        if isinstance(a, torch.Tensor) and a.requires_grad:
            grads.append(enc.encode(a.grad) if a.grad is not None else {"t": "none"})
        else:
            grads.append({"t": "none"})
    return {"status": "ok", "grads": grads}


# --------------------------------------------------------------------------- zygote side


class _OutputTrap:
    """Keeps the first and last few kilobytes of a stream, counting what it drops."""

    def __init__(self):
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = OUTPUT_HEAD - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            if len(data) >= OUTPUT_TAIL:
                self.tail = bytearray(data[-OUTPUT_TAIL:])
            else:
                self.tail += data
                if len(self.tail) > OUTPUT_TAIL:
                    del self.tail[: len(self.tail) - OUTPUT_TAIL]

    def as_dict(self) -> dict:
        return {
            "head": self.head.decode("utf-8", "replace"),
            "tail": self.tail.decode("utf-8", "replace"),
            "total_bytes": self.total,
            "dropped_bytes": self.total - len(self.head) - len(self.tail),
        }


def _proc_table() -> dict[int, int]:
    """pid -> parent pid for every process this /proc shows."""
    table = {}
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return table
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            table[pid] = int(stat[stat.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return table


def _job_processes(in_own_pidns: bool) -> list[int]:
    """Every process the job may have left: our descendants (we are a subreaper,
    so orphans come back to us) and, in the sandbox's PID namespace, anything
    but us and our ancestors."""
    table = _proc_table()
    me = os.getpid()
    if in_own_pidns:
        keep = {me}
        p = os.getppid()
        while p and p not in keep:
            keep.add(p)
            p = table.get(p, 0)
        return [pid for pid in table if pid not in keep]
    children: dict[int, list[int]] = {}
    for pid, ppid in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(children.get(me, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _kill_uid(uid: int) -> None:
    """Kill every process of ``uid`` from a helper that takes that uid (root only).

    kill(-1) reaches all processes the sender may signal, and nothing else:
    with the worker's own uid, exactly the job's processes.
    """
    pid = os.fork()
    if pid == 0:
        try:
            os.setresuid(uid, uid, uid)
            for _ in range(1000):
                try:
                    os.kill(-1, signal.SIGKILL)
                except ProcessLookupError:
                    break
        finally:
            _real_exit(0)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _reap_all(main_pid: int, statuses: dict, deadline: float) -> None:
    """Collect exited children until none is left (or until ``deadline``)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.001)
            continue
        if pid == main_pid:
            statuses[main_pid] = status


def _has_children() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return False
    return True


def _kill_job(main_pid: int, job: dict, statuses: dict) -> int:
    """Kill everything the job left running; return how many processes that was.

    We are a child subreaper, so every process the job started is our
    descendant: once the main child is gone, no children left means nothing
    left at all (the common case costs one system call).
    """
    try:
        os.killpg(main_pid, signal.SIGKILL)
    except OSError:
        pass
    _reap_all(main_pid, statuses, time.monotonic() + (0.5 if main_pid not in statuses else 0.0))
    if not _has_children() and _SUBREAPER:
        return 0
    run_as = job.get("run_as")
    if run_as and os.geteuid() == 0:
        _kill_uid(int(run_as[0]))
    in_own_pidns = os.environ.get("DLGRADE_PIDNS") == "1"
    leftovers = 0
    for round_ in range(200):
        victims = _job_processes(in_own_pidns)
        if not victims:
            break
        if round_ == 0:
            leftovers = len(victims)
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        _reap_all(main_pid, statuses, time.monotonic() + 0.05)
    _reap_all(main_pid, statuses, time.monotonic() + 2.0)
    return leftovers


def _disk_usage(root: str, max_entries: int) -> tuple[int, int]:
    """Bytes allocated and entries under ``root`` (stops counting after ``max_entries``)."""
    total = entries = 0
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except PermissionError:  # a directory the job locked (as its owner): open it again
            try:
                os.chmod(d, 0o700)
                it = os.scandir(d)
            except OSError:
                continue
        except OSError:
            continue
        with it:
            for e in it:
                entries += 1
                if entries > max_entries:
                    return total, entries
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += st.st_blocks * 512
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
    return total, entries


def _oom_kills() -> int:
    try:
        with open("/proc/vmstat") as f:
            for line in f:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return -1


def _run_job(job: dict) -> dict:
    r, w = os.pipe()
    status_r, status_w = os.pipe()
    try:  # fewer wake-ups when a job floods its output
        import fcntl

        fcntl.fcntl(r, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (OSError, ImportError):
        pass
    limits = job.get("limits", {})
    t0 = time.monotonic()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    oom0 = _oom_kills()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.close(status_r)
        _child_main(job, w, status_w)
        _real_exit(70)
    os.close(w)
    os.close(status_w)
    trap = _OutputTrap()
    deadline = t0 + float(limits.get("wall_s", 10))
    disk_limit = int(limits.get("disk_mb", 0)) * 2**20
    scratch = os.path.dirname(os.path.abspath(job["job_dir"]))
    next_disk_check = t0 + DISK_CHECK_S
    status = None
    statuses: dict[int, int] = {}
    open_pipe = True
    while True:
        now = time.monotonic()
        if now >= deadline:
            status = "timeout"
            break
        if disk_limit and now >= next_disk_check:
            used, entries = _disk_usage(scratch, MAX_FILES)
            if used > disk_limit or entries > MAX_FILES:
                status = "disk-limit"
                break
            next_disk_check = now + DISK_CHECK_S
        wait = min(deadline - now, 0.05)
        if open_pipe:
            ready, _, _ = select.select([r], [], [], wait)
            if ready:
                data = os.read(r, 1 << 20)
                if data:
                    trap.feed(data)
                else:
                    open_pipe = False
        else:
            time.sleep(min(wait, 0.005))
        wpid, st = os.waitpid(pid, os.WNOHANG)
        if wpid:
            statuses[pid] = st
            break
    leftovers = _kill_job(pid, job, statuses)
    if status is None and disk_limit:  # a job may fill the disk between two checks
        used, entries = _disk_usage(scratch, MAX_FILES)
        if used > disk_limit or entries > MAX_FILES:
            status = "disk-limit"
    reaped = statuses.get(pid)
    # drain what is left in the pipe (every writer is dead, so this ends)
    os.set_blocking(r, False)
    try:
        while True:
            data = os.read(r, 1 << 20)
            if not data:
                break
            trap.feed(data)
    except (BlockingIOError, OSError):
        pass
    os.close(r)
    os.set_blocking(status_r, False)
    try:
        harness = os.read(status_r, 8192).decode("utf-8", "replace")
    except OSError:
        harness = ""
    os.close(status_r)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    reply = {
        "wall_s": round(time.monotonic() - t0, 4),
        "cpu_s": round((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime), 4),
        "max_rss_kb": ru1.ru_maxrss,
        "output": trap.as_dict(),
        "leftover_processes": leftovers,
        "harness": harness,  # "ok" once the student's code was about to run; "failed: ..." if dlgrade failed
    }
    oom1 = _oom_kills()
    if oom0 >= 0 and oom1 > oom0:
        reply["oom_kills"] = oom1 - oom0
    if status:
        reply["status"] = status
    elif reaped is not None and os.WIFSIGNALED(reaped):
        reply["status"] = "signaled"
        reply["signal"] = os.WTERMSIG(reaped)
    else:
        reply["status"] = "exited"
        reply["code"] = os.WEXITSTATUS(reaped) if reaped is not None else None
    return reply


def _warm_meta_device(torch) -> None:
    """Run one op on the meta device, so no job pays for importing its kernels.

    The first meta-device operation imports torch's Python meta kernels (about
    a second); device probes run there. Nothing here touches CUDA: the zygote
    must never initialise it, only a job's own child may.
    """
    try:
        (torch.empty(2, 3, device="meta").log_softmax(1) * torch.ones(2, 3, device="meta")).sum()
    except Exception as exc:
        print(f"dlgrade worker: could not warm the meta device: {exc}", file=sys.stderr)


def _warm_up() -> None:
    """Import and touch, once in the zygote, what every job's harness uses.

    A forked child inherits it all; left to the child, these imports (numpy's
    random module above all) would cost every job tens of milliseconds.
    """
    import ctypes  # noqa: F401
    import errno  # noqa: F401
    import importlib.util  # noqa: F401
    import io
    import platform
    import random  # noqa: F401

    platform.machine()
    traceback.extract_stack()
    if sys.platform.startswith("linux"):
        _libc()
        _seccomp_filter(True)
        _seccomp_filter(False)
    try:
        import numpy as np

        _numpy_scalar_types()
        _seed(0)
        buf = io.BytesIO()
        np.save(buf, np.zeros(2), allow_pickle=False)
        buf.seek(0)
        np.load(buf, allow_pickle=False)
    except ImportError:
        pass


def zygote_main(preload: list[str]) -> None:
    proto_out = os.fdopen(os.dup(1), "w", buffering=1)
    proto_in = os.fdopen(os.dup(0), "r")
    # Nothing we or our imports print may corrupt the protocol stream.
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    loaded = []
    for name in preload:
        try:
            __import__(name)
            loaded.append(name)
        except Exception as exc:
            print(f"dlgrade worker: could not preload {name}: {exc}", file=sys.stderr)
    if "torch" in loaded:
        sys.modules["torch"].set_num_threads(1)
        _warm_meta_device(sys.modules["torch"])
    _warm_up()
    global _SUBREAPER
    try:
        libc = _libc()
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no job may ptrace or read the zygote
        _SUBREAPER = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0  # orphans come back to us
    except (OSError, AttributeError):
        pass
    seccomp = _seccomp_works()
    proto_out.write(json.dumps({"ready": True, "protocol": PROTOCOL_VERSION, "preloaded": loaded,
                                "pid": os.getpid(), "uid": os.getuid(), "seccomp": seccomp,
                                "subreaper": _SUBREAPER}) + "\n")
    for line in proto_in:
        line = line.strip()
        if not line:
            continue
        try:
            job = json.loads(line)
        except ValueError:
            proto_out.write(json.dumps({"status": "bad-request"}) + "\n")
            continue
        if job.get("op") == "exit":
            proto_out.flush()
            os._exit(0)  # skip interpreter teardown (0.3 s with sympy loaded); nothing to clean
        job.setdefault("seccomp", seccomp)
        try:
            reply = _run_job(job)
        except Exception as exc:  # the harness failed: report it as ours
            reply = {"status": "harness-error", "error": f"{type(exc).__name__}: {exc}"}
        reply["id"] = job.get("id")
        proto_out.write(json.dumps(reply) + "\n")


def _add_site_dirs(dirs: list[str]) -> None:
    """Add the grader's site directories that ``python -I`` skips (a user site, say),
    with their .pth files, after the standard library as the grader has them."""
    import site

    before = list(sys.path)
    at = next((i for i, p in enumerate(before) if p.endswith(("site-packages", "dist-packages"))), len(before))
    for d in dirs:
        site.addsitedir(d)
    added = [p for p in sys.path if p not in before]
    sys.path[:] = before[:at] + added + before[at:]


if __name__ == "__main__":
    args = sys.argv[1:]
    pre = []
    if "--site-dirs" in args:
        _add_site_dirs(json.loads(args[args.index("--site-dirs") + 1]))
    if "--preload" in args:
        pre = [m for m in args[args.index("--preload") + 1].split(",") if m]
    zygote_main(pre)
