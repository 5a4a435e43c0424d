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
* drops to an unprivileged user when the zygote holds that right,
* loads the student's submission from the job directory and runs the plan's
  calls, writing every value it got back as ``.npy`` files (plain numeric
  arrays only) described by ``result.json``.

The zygote enforces the wall-clock limit, keeps the head and tail of the
child's output, kills every process the job left behind, and replies with one
JSON line. It never interprets what the child wrote: the grader does, in its
own process, reading plain arrays with ``allow_pickle=False``.
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

PROTOCOL_VERSION = 1
OUTPUT_HEAD = 8 * 1024
OUTPUT_TAIL = 8 * 1024
MAX_LEAVES = 256
MAX_STR = 20_000
JOB_MARK = "DLGRADE_JOB_TOKEN"


# --------------------------------------------------------------------------- child side


def _child_main(job: dict, out_fd: int) -> None:
    """Run one job in the freshly forked child. Never returns."""
    code = 0
    try:
        os.setsid()
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        for fd in (out_fd, devnull):
            if fd > 2:
                os.close(fd)
        _close_other_fds()
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        sys.stdin = open(os.devnull)
        os.chdir(job["job_dir"])
        os.environ[JOB_MARK] = job.get("token", "")
        for var in ("HOME", "TMPDIR", "TMP", "TEMP"):
            os.environ[var] = job["job_dir"]
        _apply_limits(job.get("limits", {}))
        _drop_privileges(job.get("run_as"))
        _run_plan(job)
    except BaseException:  # the harness itself failed: say so on the captured output
        traceback.print_exc()
        code = 70
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    os._exit(code)


def _close_other_fds() -> None:
    try:
        fds = [int(x) for x in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 256))
    for fd in fds:
        if fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass


def _status_kb(field: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _apply_limits(limits: dict) -> None:
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
        setl(resource.RLIMIT_CPU, cpu, cpu + 2)
    if "memory_mb" in limits:
        # RLIMIT_DATA counts private writable memory (heap and anonymous mmaps):
        # it stops numpy's 8 GB calloc like RLIMIT_AS would, yet leaves room for
        # CUDA's huge PROT_NONE address reservations. The budget is on top of
        # what the warm zygote already holds.
        base = _status_kb("VmData") * 1024
        setl(resource.RLIMIT_DATA, base + int(limits["memory_mb"]) * 2**20)
    if "fsize_mb" in limits:
        setl(resource.RLIMIT_FSIZE, int(limits["fsize_mb"]) * 2**20)
    if "nofile" in limits:
        setl(resource.RLIMIT_NOFILE, int(limits["nofile"]))
    if "nproc" in limits:
        setl(resource.RLIMIT_NPROC, int(limits["nproc"]))
    # A write past RLIMIT_FSIZE should fail with an exception, not kill silently.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _drop_privileges(run_as) -> None:
    if not run_as:
        return
    uid, gid = int(run_as[0]), int(run_as[1])
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


# --------------------------------------------------------------------------- the plan


class _Encoder:
    """Writes returned values as .npy leaves plus a JSON tree describing them."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.count = 0

    def encode(self, value, depth: int = 0):
        import numpy as np

        if depth > 6:
            return {"t": "other", "type": "nested too deeply"}
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(value, torch.Tensor):
            meta = {
                "device": str(value.device),
                "dtype": str(value.dtype).replace("torch.", ""),
                "requires_grad": bool(value.requires_grad),
                "grad_fn": value.grad_fn is not None,
                "shape": list(value.shape),
            }
            t = value.detach()
            if t.device.type == "meta":
                return {"t": "tensor-meta", "torch": meta}
            t = t.cpu()
            if t.dtype in (torch.bfloat16, torch.float16):
                t = t.float()
            if t.is_complex() or not (t.is_floating_point() or t.dtype in (torch.int64, torch.int32, torch.bool, torch.uint8, torch.int16, torch.int8)):
                return {"t": "other", "type": f"tensor of {meta['dtype']}"}
            leaf = self._save(np.array(t.numpy(), copy=True))
            leaf["torch"] = meta
            return leaf
        if isinstance(value, np.ndarray) or isinstance(value, np.generic):
            arr = np.array(value, copy=True, subok=False)
            if arr.dtype.kind not in "biuf":
                return {"t": "other", "type": f"array of {arr.dtype.name}"}
            leaf = self._save(arr)
            if type(value) not in (np.ndarray,) and not isinstance(value, np.generic):
                leaf["subclass"] = type(value).__name__[:80]
            return leaf
        if isinstance(value, bool) or isinstance(value, (int, float)):
            if type(value) not in (bool, int, float):
                return {"t": "other", "type": type(value).__name__[:80]}
            leaf = self._save(np.array(value))
            leaf["python"] = type(value).__name__
            return leaf
        if isinstance(value, str):
            if type(value) is not str:
                return {"t": "other", "type": type(value).__name__[:80]}
            return {"t": "str", "value": value[:MAX_STR], "truncated": len(value) > MAX_STR}
        if value is None:
            return {"t": "none"}
        if type(value) in (tuple, list):
            return {"t": "seq", "kind": type(value).__name__,
                    "items": [self.encode(v, depth + 1) for v in value[:MAX_LEAVES]]}
        if type(value) is dict:
            items = {}
            for k, v in list(value.items())[:MAX_LEAVES]:
                if type(k) is not str:
                    return {"t": "other", "type": "dict with non-string keys"}
                items[k[:200]] = self.encode(v, depth + 1)
            return {"t": "map", "items": items}
        return {"t": "other", "type": type(value).__name__[:80]}

    def _save(self, arr):
        import numpy as np

        if self.count >= MAX_LEAVES:
            return {"t": "other", "type": "too many values"}
        self.count += 1
        name = f"{self.prefix}_{self.count:03d}.npy"
        np.save(name, arr, allow_pickle=False)
        return {"t": "array", "file": name, "dtype": arr.dtype.name, "shape": list(arr.shape)}


def _build_arg(spec: dict, torch_needed: list):
    import numpy as np

    if "json" in spec:
        return spec["json"]
    arr = np.load(spec["npy"], allow_pickle=False)
    if "add" in spec:
        d = np.load(spec["add"]["npy"], allow_pickle=False)
        arr = arr + spec["add"]["scale"] * d
    if "add_at" in spec:
        arr = np.array(arr, copy=True)
        arr[tuple(spec["add_at"]["index"])] += spec["add_at"]["delta"]
    if spec.get("as") == "torch":
        import torch

        torch_needed.append(True)
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


def _student_frames(tb, filename: str) -> list[dict]:
    frames = []
    for fs in traceback.extract_tb(tb):
        if os.path.basename(fs.filename) == filename:
            frames.append({"line": fs.lineno, "function": fs.name, "code": (fs.line or "")[:300]})
    return frames


def _describe_exception(exc: BaseException, filename: str) -> dict:
    info = {
        "type": type(exc).__name__[:80],
        "message": str(exc)[:2000] if not isinstance(exc, MemoryError) else "out of memory",
        "frames": _student_frames(exc.__traceback__, filename),
    }
    if isinstance(exc, SyntaxError):
        info["line"] = exc.lineno
        info["offset"] = exc.offset
        info["text"] = (exc.text or "").rstrip()[:300]
        info["message"] = str(exc.msg)[:500]
    elif info["frames"]:
        info["line"] = info["frames"][-1]["line"]
    stray = getattr(exc, "__dict__", {}).get(_STRAY)
    if stray:
        info["stray"] = stray
    return info


_STRAY = "_dlgrade_stray"  # where a tensor off the call's device was made (see _DeviceTracker)


def _device_tracker(device: str, filename: str):
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
    path = os.path.abspath(filename)

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
            if os.path.abspath(f.f_code.co_filename) == path:
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


class _Journal:
    """Appends one JSON line per finished step, so a timeout still says where it stopped."""

    def __init__(self, path: str):
        self.f = open(path, "w")

    def write(self, record: dict) -> None:
        self.f.write(json.dumps(record) + "\n")
        self.f.flush()


def _load_submission(path: str):
    import importlib.util

    name = "submission"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _run_plan(job: dict) -> None:
    plan = job["plan"]
    journal = _Journal("journal.jsonl")
    filename = plan["submission"]
    sys.path.insert(0, os.getcwd())
    if plan.get("framework") == "torch":
        import torch  # noqa: F401  (seeded before the student's code runs)

        torch.set_num_threads(1)
    _seed(plan.get("seed", 0))
    t0 = time.perf_counter()
    try:
        module = _load_submission(filename)
    except SystemExit as exc:
        journal.write({"step": "load", "status": "exit", "code": _exit_code(exc)})
        return
    except BaseException as exc:  # the student's error: report it, never crash
        status = "syntax-error" if isinstance(exc, SyntaxError) else (
            "memory" if isinstance(exc, MemoryError) else (
                "import-error" if isinstance(exc, ImportError) else "exception"))
        journal.write({"step": "load", "status": status, "error": _describe_exception(exc, filename)})
        return
    journal.write({"step": "load", "status": "ok", "seconds": time.perf_counter() - t0})

    entry = plan["entry"]
    if not hasattr(module, entry):
        journal.write({"step": "entry", "status": "missing",
                       "names": sorted(n for n in vars(module) if not n.startswith("_"))[:50]})
        return
    value = getattr(module, entry)
    if plan.get("want") == "value":
        journal.write({"step": "entry", "status": "ok",
                       "value": _Encoder("value").encode(value)})
        return
    if not callable(value):
        journal.write({"step": "entry", "status": "not-callable", "type": type(value).__name__[:80]})
        return
    journal.write({"step": "entry", "status": "ok"})

    for call in plan.get("calls", []):
        record = _run_call(value, call, filename)
        journal.write(record)


def _exit_code(exc: SystemExit):
    code = exc.code
    if code is None or isinstance(code, int):
        return code
    return str(code)[:200]


def _run_call(fn, call: dict, filename: str) -> dict:
    cid = call["id"]
    record = {"step": "call", "id": cid}
    torch_needed: list = []
    try:
        args = [_build_arg(a, torch_needed) for a in call.get("args", [])]
        kwargs = {k: _build_arg(v, torch_needed) for k, v in call.get("kwargs", {}).items()}
    except Exception as exc:  # a grader bug, not the student's: say so distinctly
        record.update(status="harness-error", error={"type": type(exc).__name__, "message": str(exc)})
        return record
    _seed(call.get("seed", 0))
    watch = call.get("watch_args", False)
    before = None
    if watch:
        before = [_snapshot(a) for a in args]
    tracker = _device_tracker(call["device"], filename) if call.get("device", "cpu") != "cpu" else None
    t0 = time.perf_counter()
    try:
        if tracker is None:
            out = fn(*args, **kwargs)
        else:
            with tracker:
                out = fn(*args, **kwargs)
    except SystemExit as exc:
        record.update(status="exit", code=_exit_code(exc))
        return record
    except BaseException as exc:
        record.update(status="memory" if isinstance(exc, MemoryError) else "exception",
                      error=_describe_exception(exc, filename))
        return record
    record["seconds"] = time.perf_counter() - t0
    enc = _Encoder(f"c{call['n']:04d}")
    try:
        if "select" in call:
            out = _select(out, call["select"])
        record["output"] = enc.encode(out)
        if tracker is not None:
            record["output_origin"] = tracker.origin_of(out)
        if watch:
            record["args_after"] = [enc.encode(_snapshot(a)) if b is not None else {"t": "none"}
                                    for a, b in zip(args, before)]
        if call.get("backward"):
            record["backward"] = _backward(out, args, enc, filename)
    except SystemExit as exc:
        record.update(status="exit", code=_exit_code(exc))
        return record
    except BaseException as exc:
        record.update(status="exception", error=_describe_exception(exc, filename))
        return record
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


def _backward(out, args, enc: _Encoder, filename: str) -> dict:
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(out, torch.Tensor):
        return {"status": "not-a-tensor"}
    if out.grad_fn is None and not out.requires_grad:
        return {"status": "no-graph"}
    try:
        target = out if out.numel() == 1 else out.sum()
        target.backward()
    except Exception as exc:
        return {"status": "exception", "error": _describe_exception(exc, filename)}
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


def _kill_leftovers(pgid: int, token: str) -> None:
    """Kill the job's process group and anything else it left running.

    Inside the sandbox's own PID namespace every process but us and our
    ancestors belongs to the job. Outside it (basic isolation) we look for the
    job's token in each process's environment, which catches children that
    started a session of their own to escape the group kill.
    """
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
    me = os.getpid()
    keep = {me, os.getppid(), 1}
    in_own_pidns = os.environ.get("DLGRADE_PIDNS") == "1"
    for _ in range(3):
        found = False
        try:
            pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        except OSError:
            return
        for pid in pids:
            if pid in keep:
                continue
            if not in_own_pidns:
                try:
                    with open(f"/proc/{pid}/environ", "rb") as f:
                        env = f.read()
                except OSError:
                    continue
                if f"{JOB_MARK}={token}".encode() not in env.split(b"\0"):
                    continue
            try:
                os.kill(pid, signal.SIGKILL)
                found = True
            except OSError:
                pass
        if not found:
            break
        time.sleep(0.01)
    # reap anything that was our child
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break


def _run_job(job: dict) -> dict:
    r, w = os.pipe()
    t0 = time.monotonic()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _child_main(job, w)
    os.close(w)
    trap = _OutputTrap()
    wall = float(job.get("limits", {}).get("wall_s", 10))
    deadline = t0 + wall
    status = None
    reaped = None
    open_pipe = True
    while True:
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            status = "timeout"
            break
        if open_pipe:
            ready, _, _ = select.select([r], [], [], min(timeout, 0.05))
            if ready:
                data = os.read(r, 65536)
                if data:
                    trap.feed(data)
                else:
                    open_pipe = False
        else:
            time.sleep(min(timeout, 0.005))
        wpid, st = os.waitpid(pid, os.WNOHANG)
        if wpid:
            reaped = st
            break
    _kill_leftovers(pid, job.get("token", ""))
    if reaped is None:
        try:
            _, reaped = os.waitpid(pid, 0)
        except ChildProcessError:
            reaped = None
    # drain what is left in the pipe (grandchildren are dead, so this ends)
    os.set_blocking(r, False)
    try:
        while True:
            data = os.read(r, 65536)
            if not data:
                break
            trap.feed(data)
    except (BlockingIOError, OSError):
        pass
    os.close(r)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    reply = {
        "wall_s": round(time.monotonic() - t0, 4),
        "cpu_s": round((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime), 4),
        "max_rss_kb": ru1.ru_maxrss,
        "output": trap.as_dict(),
    }
    if status == "timeout":
        reply["status"] = "timeout"
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
    try:  # no other process of ours may ptrace the zygote
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:
        pass
    proto_out.write(json.dumps({"ready": True, "protocol": PROTOCOL_VERSION, "preloaded": loaded,
                                "pid": os.getpid(), "uid": os.getuid()}) + "\n")
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
            break
        try:
            reply = _run_job(job)
        except Exception as exc:  # the harness failed: report it as ours
            reply = {"status": "harness-error", "error": f"{type(exc).__name__}: {exc}"}
        reply["id"] = job.get("id")
        proto_out.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    pre = []
    if "--preload" in args:
        pre = [m for m in args[args.index("--preload") + 1].split(",") if m]
    zygote_main(pre)
