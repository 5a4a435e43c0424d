"""The Dask worker preload of ``dlgrade grade --cluster``.

Start every worker with it::

    dask worker tcp://scheduler:8786 --preload dlgrade.cluster [--nthreads N] [--resources GPU=1]

It installs :class:`DlgradeWorkerPlugin`, which keeps dlgrade's own warm
sandboxed pool on the worker for the worker's life (one grading pool per
worker thread, so ``--nthreads N`` grades N students at once), and closes it
with the worker. :func:`grade_task` is the function the client submits: it
grades one student on this worker and returns JSON text (see
dlgrade.graders.cluster_host). Needs the ``cluster`` extra:
``pip install "dlgrade[cluster]"``.
"""
from __future__ import annotations

import json

from distributed import WorkerPlugin, get_worker

from dlgrade.graders.cluster_host import PLUGIN_NAME, ClusterHost

NOT_PRELOADED = ("this worker was started without dlgrade's preload; start it with "
                 "`dask worker ADDRESS --preload dlgrade.cluster`")


class DlgradeWorkerPlugin(WorkerPlugin):
    """Hosts a :class:`~dlgrade.graders.cluster_host.ClusterHost` on a Dask worker."""

    name = PLUGIN_NAME

    def __init__(self):
        self.host: ClusterHost | None = None

    def setup(self, worker) -> None:
        self.host = ClusterHost(address=worker.address, local_directory=worker.local_directory)

    def teardown(self, worker) -> None:
        if self.host is not None:
            self.host.close()
            self.host = None


async def dask_setup(worker) -> None:
    """Called by ``dask worker --preload dlgrade.cluster`` once the worker has started."""
    await worker.plugin_add(DlgradeWorkerPlugin(), name=PLUGIN_NAME, catch_errors=False)


def describe(task: dict, dask_worker=None) -> str:
    """Whether this worker may grade for a client (``task``: its ``client`` identity and
    ``isolation``), run by the client on every worker before it sends anyone: JSON text,
    ``{"ok": true}`` or ``{"refused": why}``."""
    worker = dask_worker or get_worker()
    host = getattr(worker.plugins.get(PLUGIN_NAME), "host", None)
    if host is None:
        return json.dumps({"refused": NOT_PRELOADED, "worker": worker.address})
    why = host.check(task)
    return host.refused(why) if why else json.dumps({"ok": True, "worker": worker.address})


def grade_task(task: dict, bundles: list[dict]) -> str:
    """Grade one student (``task``, from dlgrade.graders.shipping.pack_student plus the
    batch's settings) against the shipped exercise ``bundles``; the reply is JSON text."""
    worker = get_worker()
    plugin = worker.plugins.get(PLUGIN_NAME)
    host = getattr(plugin, "host", None)
    if host is None:
        return json.dumps({"refused": NOT_PRELOADED, "worker": worker.address})
    return host.grade(task, bundles)


__all__ = ["DlgradeWorkerPlugin", "dask_setup", "describe", "grade_task", "NOT_PRELOADED"]
