"""Only the engine thread computes on several cores; every other thread of the process uses one.

PyTorch's OpenMP runtime (libgomp) keeps a team of worker threads for every thread that has run a
multi-threaded op, for as long as that thread lives, and once the process holds more such workers
than it has CPUs, libgomp stops spin-waiting and parks them in the kernel after every parallel
region. The gateway embeds text (detection, target writes) and computes steering vectors in
threads beside the engine's, so a single multi-threaded embedding was enough to slow every later
forward pass of the engine: a batch-8 decode step of the embedded model went from 82 ms to 128 ms,
which was most of the gateway's cost against the bare engine (`bench/gateway_bench.py`). FAISS
has an OpenMP runtime of its own whose idle workers spin on the engine's cores; its searches are
a few vectors at a time here, so it gets one thread too.
"""

from __future__ import annotations

import torch

# torch's own default (the physical cores), read at import, before anything narrows it.
ENGINE_THREADS = torch.get_num_threads()


def one_core_by_default() -> None:
    """Makes one thread the count of every thread that has not claimed its own (call at start-up,
    before any torch or FAISS work, and again after the engine has claimed its cores)."""
    torch.set_num_threads(1)
    try:
        import faiss

        faiss.omp_set_num_threads(1)
    except ImportError:  # a vLLM-only deployment without the detector's index
        pass


def claim_cores(threads: int = ENGINE_THREADS) -> None:
    """Gives the calling thread `threads` cores for good. PyTorch takes a thread's count from the
    process-wide setting at its first parallel op, so one such op right away fixes it for this
    thread whatever the process-wide setting becomes afterwards."""
    torch.set_num_threads(threads)
    torch.ones(1 << 16).add_(1)  # large enough to run through the parallel path
