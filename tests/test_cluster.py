"""Grading on Dask (graders/distributed.py, graders/cluster_host.py, dlgrade/cluster.py).

The end-to-end tests start a real ``dask scheduler`` and ``dask worker --preload
dlgrade.cluster`` processes on loopback, as an instructor would, and compare
every output with a local run of the same class.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("distributed")

from dlgrade.graders import batch  # noqa: E402
from dlgrade.graders.batch import BatchError, GradingFailed, Progress, grade_class  # noqa: E402
from dlgrade.graders.cli import main  # noqa: E402
from dlgrade.graders.cluster_host import ClusterHost, identity  # noqa: E402
from dlgrade.graders.distributed import DaskExecutor, needs_gpu, parse_cluster, security_from  # noqa: E402
from dlgrade.graders.sandbox import sandbox_status  # noqa: E402
from dlgrade.graders.shipping import ShippingError, pack_exercise, unpack_exercise  # noqa: E402
from dlgrade.graders.spec import catalogue, get_exercise  # noqa: E402

from conftest import FIXTURES, ROOT  # noqa: E402

COURSE = FIXTURES / "batch" / "exercises"  # holds "relu", a course's own exercise
needs_sandbox = pytest.mark.skipif(not sandbox_status()[0], reason="a cluster worker grades in the sandbox only")


# --------------------------------------------------------------------------- a cluster on loopback


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra)
    return env


class Cluster:
    """A ``dask scheduler`` and its workers, each a process of its own."""

    def __init__(self, tmp: Path, tls: tuple[Path, Path, Path] | None = None):
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self.tls = tls
        self.tls_args = [] if tls is None else ["--tls-ca-file", str(tls[0]), "--tls-cert", str(tls[1]),
                                                "--tls-key", str(tls[2])]
        file = tmp / "scheduler.json"
        self.scheduler = self._spawn("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", "0",
                                                   "--no-dashboard", "--scheduler-file", str(file),
                                                   *(["--protocol", "tls"] if tls else []), *self.tls_args])
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.2)
        self.address = json.loads(file.read_text())["address"]

    def _spawn(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")
        p = subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log, stderr=subprocess.STDOUT,
                             env=env or _env(), cwd=self.tmp, start_new_session=True)
        self.procs[name] = p
        return p

    def worker(self, name: str, *extra: str, env: dict | None = None) -> subprocess.Popen:
        """Start ``dask worker ADDRESS --preload dlgrade.cluster`` (no nanny: a kill is final)."""
        return self._spawn(name, ["worker", self.address, "--preload", "dlgrade.cluster", "--nthreads", "1",
                                  "--no-nanny", "--no-dashboard", "--name", name, "--local-directory",
                                  str(self.tmp / name), *self.tls_args, *extra], env=env)

    def wait_for(self, n: int) -> dict:
        from distributed import Client, Security

        security = None if self.tls is None else Security(
            tls_ca_file=str(self.tls[0]), tls_client_cert=str(self.tls[1]), tls_client_key=str(self.tls[2]),
            require_encryption=True)
        with Client(self.address, timeout=30, set_as_default=False, security=security) as c:
            c.wait_for_workers(n, timeout=90)
            return c.scheduler_info(n_workers=-1)["workers"]

    def address_of(self, name: str) -> str:
        return next(a for a, w in self.wait_for(1).items() if w.get("name") == name)

    def close(self) -> None:
        # the workers first (each closes its grading pool), then the scheduler
        workers = [p for name, p in self.procs.items() if name != "scheduler"]
        for group in (workers, [self.scheduler]):
            for p in group:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGTERM)
            for p in group:
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two workers; ``gpu`` advertises a GPU resource (there is none)."""
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.worker("cpu")
        c.worker("gpu", "--resources", "GPU=1")
        c.wait_for(2)
        yield c
    finally:
        c.close()


@pytest.fixture
def a_class(make_class):
    return make_class({
        "alice/hw.py": "batch/softmax_and_relu.py",       # both exercises, correct
        "bob.py": "softmax/softmax_wrong_axis.py",        # softmax only, wrong axis
        "carol/": None,                                   # nothing at all
        "dan.py": "softmax/softmax_raises.py",            # softmax raises
        "erin.py": "softmax/softmax_mutates_input.py",
        "frank.ipynb": "notebooks/softmax_with_magics.ipynb",  # a notebook: cells, magics
    })


def _outputs(out: Path) -> tuple[bytes, bytes]:
    return (out / "grades.csv").read_bytes(), (out / "results.json").read_bytes()


def _counts(summary) -> int:
    return sum(summary.workers.values())


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
@needs_sandbox
def test_a_class_on_a_cluster_is_byte_identical_to_local_mode_and_resumes(cluster, a_class, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "remote"
    grade_class(a_class, local, jobs=2, exercises_dirs=[str(COURSE)])
    summary = grade_class(a_class, remote, exercises_dirs=[str(COURSE)], executor=DaskExecutor(cluster.address))
    assert sorted(summary.graded) == ["alice", "bob", "carol", "dan", "erin", "frank"]
    assert summary.isolation == "sandbox" and not summary.pending and not summary.warnings
    assert _counts(summary) == 6 and all(w.startswith("tcp://127.0.0.1:") for w in summary.workers)
    assert _outputs(remote) == _outputs(local)
    stored = json.loads((remote / "students" / "bob.json").read_text())
    assert stored["batch"]["fingerprint"] == json.loads((local / "students" / "bob.json").read_text())[
        "batch"]["fingerprint"]

    # a resumed run regrades nothing, on the cluster or here (the fingerprints are the same)
    again = grade_class(a_class, remote, exercises_dirs=[str(COURSE)], executor=DaskExecutor(cluster.address))
    assert again.graded == [] and sorted(again.unchanged) == sorted(summary.graded) and again.workers == {}
    assert grade_class(a_class, local, exercises_dirs=[str(COURSE)],
                       executor=DaskExecutor(cluster.address)).graded == []
    # a changed submission is the only one graded again
    (a_class / "bob.py").write_bytes((FIXTURES / "softmax/correct_shift_max.py").read_bytes())
    changed = grade_class(a_class, remote, exercises_dirs=[str(COURSE)], executor=DaskExecutor(cluster.address))
    assert changed.graded == ["bob"] and _counts(changed) == 1
    assert "bob,10,0,10,12" in (remote / "grades.csv").read_text()


class _KillVictim(Progress):
    """Kills the worker ``victim`` (SIGKILL) at the first student graded, once it holds a task."""

    def __init__(self, cluster: Cluster, victim: str):
        self.cluster, self.victim, self.killed_at = cluster, victim, None
        self.address = cluster.address_of(victim)
        self.done = 0

    def advance(self, report):
        from distributed import Client

        self.done += 1
        if self.killed_at is not None:
            return
        with Client(self.cluster.address, timeout=30, set_as_default=False) as c:
            deadline = time.monotonic() + 20
            while not c.processing(workers=[self.address]).get(self.address) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert c.processing(workers=[self.address]).get(self.address), "the victim holds no task"
        self.cluster.procs[self.victim].kill()
        self.killed_at = self.done


@pytest.mark.slow
@needs_sandbox
def test_a_worker_killed_mid_run_loses_nothing_and_doubles_nothing(cluster, make_class, tmp_path):
    # slow students (0.4 s per job) keep every worker busy when the victim dies
    root = make_class({f"s{i:02d}.py": "batch/slow_import_softmax.py" for i in range(9)})
    cluster.worker("victim")
    cluster.wait_for(3)
    kill = _KillVictim(cluster, "victim")
    summary = grade_class(root, tmp_path / "remote", executor=DaskExecutor(cluster.address), progress=kill)
    assert kill.killed_at is not None and kill.killed_at < 9
    assert sorted(summary.graded) == [f"s{i:02d}" for i in range(9)] and len(summary.graded) == 9
    assert _counts(summary) == 9 and summary.workers.get(kill.address, 0) < 9
    grade_class(root, tmp_path / "local", jobs=2)
    assert _outputs(tmp_path / "remote") == _outputs(tmp_path / "local")


@pytest.mark.slow
@needs_sandbox
def test_gpu_exercises_go_only_to_workers_with_a_gpu_resource(cluster, make_class, tmp_path):
    root = make_class({f"s{i}.py": "label_smoothing/correct_builtin.py" for i in range(2)})
    ex = get_exercise("label-smoothing")
    assert needs_gpu([ex]) and not needs_gpu([get_exercise("stable-softmax")])
    summary = grade_class(root, tmp_path / "remote", executor=DaskExecutor(cluster.address))
    assert list(summary.workers) == [cluster.address_of("gpu")] and _counts(summary) == 2
    grade_class(root, tmp_path / "local", jobs=2)
    assert _outputs(tmp_path / "remote") == _outputs(tmp_path / "local")  # no GPU there either


def _fake_version(tmp: Path, version: str) -> Path:
    """A folder that, first on PYTHONPATH, makes importlib.metadata see another dlgrade."""
    d = tmp / "other-dlgrade" / f"dlgrade-{version}.dist-info"
    d.mkdir(parents=True)
    (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: dlgrade\nVersion: {version}\n")
    return d.parent


def _broken_bwrap(tmp: Path) -> Path:
    p = tmp / "bwrap"
    p.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    p.chmod(0o755)
    return p


@pytest.mark.slow
@needs_sandbox
def test_workers_with_another_dlgrade_or_a_broken_sandbox_refuse_work(make_class, tmp_path):
    root = make_class({"alice.py": "softmax/correct_shift_max.py", "bob.py": "softmax/softmax_wrong_axis.py"})
    c = Cluster(tmp_path)
    try:
        other = _fake_version(tmp_path, "99.0")
        c.worker("old", env=_env(PYTHONPATH=os.pathsep.join([str(other), str(ROOT)])))
        c.worker("nobwrap", env=_env(DLGRADE_BWRAP=str(_broken_bwrap(tmp_path))))
        c.wait_for(2)
        old, nobwrap = c.address_of("old"), c.address_of("nobwrap")
        me = identity()["dlgrade"]
        result = CliRunner().invoke(main, ["grade", str(root), "--out", str(tmp_path / "out"), "--cluster", c.address])
        assert result.exit_code == 3, result.output
        version_line = (f"this worker runs dlgrade 99.0 and the client dlgrade {me}; install the client's "
                        f"dlgrade on every worker (pip install \"dlgrade[cluster]=={me}\") and restart it")
        sandbox_line = ("this worker cannot grade in a sandbox (bubblewrap is installed but cannot create a "
                        "sandbox here (bwrap: setting up uid map: Permission denied)); student code never runs "
                        "on a cluster machine without one: fix the sandbox there (dlgrade doctor) and restart "
                        "the worker")
        assert f"no worker of the Dask cluster at {c.address} may grade: " in result.output
        assert f"{old}: {version_line}" in result.output and f"{nobwrap}: {sandbox_line}" in result.output
        assert "0 of 2 students graded" in result.output
        assert not (tmp_path / "out" / "students" / "alice.json").exists()  # no error written as a grade

        # a good worker joins: it grades everyone; the refusals are said once each
        c.worker("good")
        c.wait_for(3)
        summary = grade_class(root, tmp_path / "out", executor=DaskExecutor(c.address))
        assert sorted(summary.graded) == ["alice", "bob"] and list(summary.workers) == [c.address_of("good")]
        assert sorted(summary.warnings) == sorted([f"Dask worker {old} refused work: {version_line}",
                                                   f"Dask worker {nobwrap} refused work: {sandbox_line}"])
    finally:
        c.close()


@pytest.mark.slow
@needs_sandbox
def test_cli_cluster_local_n_matches_jobs(a_class, tmp_path):
    a, b = tmp_path / "jobs", tmp_path / "local2"
    r1 = CliRunner().invoke(main, ["grade", str(a_class), "--out", str(a), "--jobs", "2",
                                   "--exercises-dir", str(COURSE)])
    assert r1.exit_code == 0, r1.output
    r2 = CliRunner().invoke(main, ["grade", str(a_class), "--out", str(b), "--cluster", "local:2",
                                   "--exercises-dir", str(COURSE)])
    assert r2.exit_code == 0, r2.output
    assert _outputs(a) == _outputs(b)
    assert "graded per worker: tcp://127.0.0.1:" in r2.output
    assert "[6/6] " in r2.output and "  (on tcp://127.0.0.1:" in r2.output


@pytest.mark.slow
def test_grade_without_cluster_never_imports_dask(make_class, tmp_path):
    root = make_class({"alice.py": "softmax/correct_shift_max.py"})
    code = ("import sys\nfrom dlgrade.graders.cli import main\n"
            f"try:\n    main(['grade', {str(root)!r}, '--out', {str(tmp_path / 'out')!r}, '--jobs', '1'])\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')\n"
            "             or m in ('dlgrade.cluster', 'dlgrade.graders.distributed'))\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), cwd=tmp_path,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "out" / "grades.csv").exists()


# --------------------------------------------------------------------------- options and pieces


def test_cluster_option_forms():
    assert parse_cluster("local:3") == ("local", 3)
    assert parse_cluster("tcp://10.0.0.5:8786") == ("address", "tcp://10.0.0.5:8786")
    assert parse_cluster("tls://sched.example.org:8786") == ("address", "tls://sched.example.org:8786")
    for bad in ("local:0", "local:x", "scheduler:8786", "", "http://x:1"):
        with pytest.raises(BatchError, match=r"expected a scheduler address \(tcp://host:8786"):
            parse_cluster(bad)


def test_cli_cluster_usage_errors(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    r = CliRunner().invoke(main, ["grade", str(subs), "--out", str(tmp_path / "o"), "--cluster", "local:2",
                                  "--jobs", "2"])
    assert r.exit_code == 2
    assert ("Error: --jobs is for grading on this machine; with --cluster each worker grades as many students at "
            "once as it has threads (dask worker --nthreads N)") in r.output
    r = CliRunner().invoke(main, ["grade", str(subs), "--out", str(tmp_path / "o"), "--cluster-security", "a:b"])
    assert r.exit_code == 2 and "Error: --cluster-security needs --cluster" in r.output
    r = CliRunner().invoke(main, ["grade", str(subs), "--out", str(tmp_path / "o"), "--cluster", "nowhere"])
    assert r.exit_code == 2 and "Error: --cluster 'nowhere': expected a scheduler address" in r.output


def test_cluster_security_from_pem_files(tmp_path):
    with pytest.raises(BatchError, match="expected CA_FILE:CERT_FILE:KEY_FILE"):
        security_from("only-one.pem")
    with pytest.raises(BatchError, match=r"^--cluster-security: .*ca.pem: no such file$"):
        security_from(f"{tmp_path / 'ca.pem'}:{tmp_path / 'c.pem'}")
    for n in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / n).write_text("x")
    sec = security_from(f"{tmp_path / 'ca.pem'}:{tmp_path / 'client.pem'}:{tmp_path / 'client.key'}")
    assert sec.require_encryption and sec.tls_ca_file == str(tmp_path / "ca.pem")
    assert sec.tls_client_cert == str(tmp_path / "client.pem") and sec.tls_client_key == str(tmp_path / "client.key")
    assert security_from(None) is None


def test_unreachable_scheduler_is_one_line_exit_3(tmp_path, make_class):
    root = make_class({"alice.py": "softmax/correct_shift_max.py"})
    ex = DaskExecutor("tcp://127.0.0.1:9", connect_timeout_s=1)
    with pytest.raises(batch.ExecutorFailed, match=r"^cannot reach the Dask scheduler at tcp://127.0.0.1:9 \("):
        grade_class(root, tmp_path / "out", executor=ex)
    assert not (tmp_path / "out").exists()


def test_an_exercise_is_checked_by_digest_on_the_worker(tmp_path):
    ex = catalogue([str(COURSE)])["relu"]
    digest = batch.exercise_digest(ex)
    bundle = pack_exercise(ex, digest)
    got = unpack_exercise(bundle, tmp_path / "cache")
    assert got.id == "relu" and batch.exercise_digest(got) == digest and got.folder.parent.name == digest
    tampered = dict(bundle, digest="0" * 64)
    with pytest.raises(ShippingError, match=r"^exercise 'relu' differs on this worker from the client's \(digest "
                                            rf"{digest[:12]} here, 000000000000 on the client\)"):
        unpack_exercise(tampered, tmp_path / "cache2")
    with pytest.raises(ShippingError, match="malformed exercise file name"):
        unpack_exercise(dict(bundle, files={"../evil.py": b""}), tmp_path / "cache3")


def test_host_refuses_another_version_or_code_without_grading(tmp_path):
    host = ClusterHost(address="tcp://w:1", local_directory=tmp_path)
    me = identity()
    reply = json.loads(host.grade({"client": {"dlgrade": "0.0.1", "code": me["code"]}, "isolation": "sandbox"}, []))
    assert reply == {"refused": f"this worker runs dlgrade {me['dlgrade']} and the client dlgrade 0.0.1; install "
                                f"the client's dlgrade on every worker (pip install \"dlgrade[cluster]==0.0.1\") "
                                "and restart it", "worker": "tcp://w:1"}
    reply = json.loads(host.grade({"client": {"dlgrade": me["dlgrade"], "code": "f" * 64}, "isolation": "sandbox"},
                                  []))
    assert reply["refused"].startswith(f"this worker runs dlgrade {me['dlgrade']} built from other source files "
                                       f"than the client's (code {me['code'][:12]} here, ffffffffffff on the client)")
    host.close()


def test_slurm_example_writes_a_job_script_with_the_preload(tmp_path):
    pytest.importorskip("dask_jobqueue")
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "cluster" / "slurm.py"), "subs", "--out", "graded",
                        "--job-script-only"], capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    script = r.stdout
    assert script.startswith("#!/usr/bin/env bash")
    for line in ("#SBATCH -J dlgrade", "#SBATCH -p cpu", "#SBATCH --cpus-per-task=16", "#SBATCH -t 01:00:00",
                 "source $HOME/dlgrade-venv/bin/activate"):
        assert line in script.splitlines()
    worker = next(line for line in script.splitlines() if "distributed.cli.dask_worker" in line)
    assert worker.endswith("--preload dlgrade.cluster") and "--nworkers 4" in worker and "--nthreads 4" in worker
    assert not (tmp_path / "graded").exists()  # nothing graded, nothing submitted


def test_cluster_docs_name_the_real_options():
    doc = (ROOT / "docs" / "cluster.md").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "(docs/cluster.md)" in readme and "--preload dlgrade.cluster" in readme
    r = CliRunner().invoke(main, ["grade", "--help"])
    for opt in ("--cluster", "--cluster-security"):
        assert opt in r.output and f"{opt} " in doc
    assert "--job-script-only" in doc and (ROOT / "examples" / "cluster" / "slurm.py").exists()
    import dlgrade.cluster as preload

    assert callable(preload.dask_setup) and preload.DlgradeWorkerPlugin.name == "dlgrade"


class _KillScheduler(Progress):
    def __init__(self, cluster: Cluster):
        self.cluster, self.killed_at, self.done = cluster, None, 0

    def advance(self, report):
        self.done += 1
        if self.killed_at is None:
            self.cluster.scheduler.kill()
            self.killed_at = self.done


@pytest.mark.slow
@needs_sandbox
def test_a_scheduler_that_dies_loses_what_was_graded_and_a_rerun_finishes(make_class, tmp_path):
    root = make_class({f"s{i:02d}.py": "batch/slow_import_softmax.py" for i in range(6)})
    first = Cluster(tmp_path / "first")
    try:
        first.worker("w")
        first.wait_for(1)
        kill = _KillScheduler(first)
        with pytest.raises(GradingFailed) as info:
            grade_class(root, tmp_path / "remote", executor=DaskExecutor(first.address), progress=kill)
    finally:
        first.close()
    assert str(info.value).startswith(f"lost the Dask scheduler at {first.address} (")
    kept = info.value.summary.graded
    assert kept and len(kept) < 6 and str(info.value).endswith(
        f"the batch stopped with {len(kept)} of 6 students graded (kept in {tmp_path / 'remote'}), no grade written "
        f"for the {6 - len(kept)} others; fix this and run the same command again to grade them")
    second = Cluster(tmp_path / "second")
    try:
        second.worker("w")
        second.wait_for(1)
        again = grade_class(root, tmp_path / "remote", executor=DaskExecutor(second.address))
    finally:
        second.close()
    assert sorted(again.unchanged) == sorted(kept) and sorted(again.graded + kept) == [f"s{i:02d}" for i in range(6)]
    grade_class(root, tmp_path / "local", jobs=2)
    assert _outputs(tmp_path / "remote") == _outputs(tmp_path / "local")


def _certificates(d: Path) -> tuple[Path, Path, Path]:
    """A CA and one certificate it signed for 127.0.0.1 (scheduler, workers and client share it)."""
    d.mkdir(parents=True)
    ext = d / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for cmd in (["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                 "-subj", "/CN=dlgrade-test-ca"],
                ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "node.key", "-out", "node.csr", "-subj",
                 "/CN=localhost"],
                ["x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", "node.pem", "-days", "2", "-extfile", "san.ext"]):
        subprocess.run(["openssl", *cmd], cwd=d, check=True, capture_output=True, timeout=60)
    return d / "ca.pem", d / "node.pem", d / "node.key"


@pytest.mark.slow
@needs_sandbox
@pytest.mark.skipif(not shutil.which("openssl"), reason="makes its certificates with openssl")
def test_a_tls_cluster_with_cluster_security(make_class, tmp_path):
    root = make_class({"alice.py": "softmax/correct_shift_max.py", "bob.py": "softmax/softmax_wrong_axis.py"})
    tls = _certificates(tmp_path / "certs")
    c = Cluster(tmp_path / "tls", tls=tls)
    try:
        c.worker("w")
        c.wait_for(1)
        assert c.address.startswith("tls://127.0.0.1:")
        r = CliRunner().invoke(main, ["grade", str(root), "--out", str(tmp_path / "remote"), "--cluster", c.address,
                                      "--cluster-security", ":".join(map(str, tls))])
        assert r.exit_code == 0, r.output
        assert f"graded per worker: {c.address_of('w')} 2" in r.output
    finally:
        c.close()
    grade_class(root, tmp_path / "local", jobs=2)
    assert _outputs(tmp_path / "remote") == _outputs(tmp_path / "local")


def test_tasks_that_need_a_gpu_never_wait_for_a_refused_gpu_worker(monkeypatch):
    ex = DaskExecutor("tcp://10.0.0.5:8786")
    workers = {"tcp://a:1": {"resources": {}}, "tcp://g:1": {"resources": {"GPU": 1}}}
    monkeypatch.setattr(ex, "_workers", lambda: workers)
    ex._resources = {"GPU": 1}
    assert ex._allowed() == ["tcp://a:1", "tcp://g:1"]
    with pytest.raises(batch.ExecutorFailed) as info:
        ex._refuse("tcp://g:1", "this worker runs dlgrade 9 and the client dlgrade 1")
    assert str(info.value) == ("no worker with a GPU resource of the Dask cluster at tcp://10.0.0.5:8786 may grade: "
                               "tcp://g:1: this worker runs dlgrade 9 and the client dlgrade 1")
    assert ex.warnings == ["Dask worker tcp://g:1 refused work: this worker runs dlgrade 9 and the client dlgrade 1"]


class _Future:
    def __init__(self, outcome):
        self.outcome = outcome

    def result(self):
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def test_replies_that_are_not_dlgrade_json_or_a_task_that_kills_workers_stop_the_batch():
    from distributed import KilledWorker

    ex = DaskExecutor("tcp://10.0.0.5:8786")
    bob = batch.Student("bob", Path("subs/bob.py"))
    with pytest.raises(batch.ExerciseFailed) as info:
        ex._reply(_Future(KilledWorker("dlgrade-x-0", "tcp://w:1", 3)), bob)
    assert (info.value.student, info.value.exercise) == ("bob", "every exercise")
    assert str(info.value.error) == ("grading bob killed 4 Dask workers in a row (out of memory?); the scheduler "
                                     "gave up on it")
    for outcome, message in ((b"{}", "a worker replied with a bytes, not dlgrade's JSON"),
                             ("{not json", "a worker's reply is not JSON (Expecting property name enclosed in double "
                                           "quotes: line 1 column 2 (char 1))"),
                             ('{"x": 1}', "a worker's reply is not dlgrade's")):
        with pytest.raises(batch.ExerciseFailed) as info:
            ex._reply(_Future(outcome), bob)
        assert str(info.value.error) == message
    assert ex._reply(_Future('{"graded": {}, "worker": "tcp://w:1"}'), bob) == {"graded": {}, "worker": "tcp://w:1"}


class _CtrlCAfter(Progress):
    def __init__(self, n: int):
        self.n, self.done = n, 0

    def advance(self, report):
        self.done += 1
        if self.done == self.n:
            raise KeyboardInterrupt


@pytest.mark.slow
@needs_sandbox
def test_ctrl_c_on_a_cluster_keeps_what_was_graded_and_the_rerun_grades_the_rest(cluster, make_class, tmp_path):
    root = make_class({f"s{i}.py": "softmax/correct_shift_max.py" for i in range(5)})
    with pytest.raises(batch.Interrupted) as info:
        grade_class(root, tmp_path / "out", executor=DaskExecutor(cluster.address), progress=_CtrlCAfter(2))
    kept = info.value.summary.graded
    assert len(kept) == 2 and len(info.value.summary.pending) == 3
    rest = grade_class(root, tmp_path / "out", executor=DaskExecutor(cluster.address))
    assert sorted(rest.unchanged) == sorted(kept) and len(rest.graded) == 3
    grade_class(root, tmp_path / "local", jobs=2)
    assert _outputs(tmp_path / "out") == _outputs(tmp_path / "local")
