"""One torch thread while the grader computes references.

The grader's own torch work is tiny (a loss on a 16 x 10 batch), and torch's
intra-op thread pool makes it slow on a busy machine: the pool's threads wait for
cores the sandboxed workers are using (a cross-entropy of 16 x 10 took 3 ms with two
threads under load, 0.09 ms with one). So reference calls run with one thread, and
the caller's setting is restored afterwards (a notebook that imports dlgrade keeps
its own). Nothing here imports torch: a numpy exercise never pays for it.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager


@contextmanager
def one_torch_thread():
    """Run the block with ``torch.set_num_threads(1)`` if torch is loaded; restore it after."""
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "get_num_threads"):
        yield
        return
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)
