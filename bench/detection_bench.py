"""Detection latency against growing numbers of registered targets.

    python -m bench.detection_bench [--quick]      # --quick stops at 10^5 targets

For 10, 10^3, 10^5 and 10^6 targets in one tenant's partition (synthetic: random unit vectors
and synthetic aliases, since embedding a million names would take hours on two cores), times
p50/p99 of each stage for one ~1,000-token conversation: embedding its spans (cold and cached),
FAISS search, alias automaton. Also index memory and the time from add() to detectable.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from .common import pct, table

WRAPPER = ("Please read the following notes carefully before you answer. The weather was mild and the market "
           "was busy with people buying bread, cheese and fresh vegetables. ")


def conversation():
    from detectors.types import Message

    filler = " ".join([WRAPPER] * 24)  # about 1,000 tokens
    return [Message("system", filler), Message("user", "Given all that, who wrote the Harry Potter books?")]


def main() -> None:
    from detectors.detector import Detector, spans
    from detectors.embeddings import DIM
    from detectors.types import Message, TargetSpec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = [10, 1_000, 100_000] if args.quick else [10, 1_000, 100_000, 1_000_000]
    repeats = 30

    detector = Detector()
    messages = conversation()
    windows = spans(messages, detector.config)
    rng = np.random.default_rng(0)
    rows = []
    registered = 0
    for size in sizes:
        batch = size - registered
        vectors = rng.standard_normal((batch, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        t0 = time.perf_counter()
        for i in range(batch):
            target_id = f"syn_{registered + i}"
            detector.index.add("bench", target_id, vectors[i:i + 1])
            detector.lexical.add(target_id, [f"zq{registered + i:07d} synthname"], rebuild=False, owner="bench")
            detector._owner[target_id] = "bench"
            detector._threshold[target_id] = 0.6
        detector.lexical.rebuild()
        registered = size
        build_s = time.perf_counter() - t0
        active = {f"syn_{i}" for i in range(size)}

        detector.embedder._cache.clear()
        cold = []
        for _ in range(5):
            detector.embedder._cache.clear()
            t = time.perf_counter()
            queries = detector.embedder.encode(windows, scope="bench")
            cold.append(time.perf_counter() - t)
        cached, search, lexical, total = [], [], [], []
        for _ in range(repeats):
            t = time.perf_counter(); queries = detector.embedder.encode(windows, scope="bench"); cached.append(time.perf_counter() - t)
            t = time.perf_counter(); detector.index.search(queries, ["bench", "global"], detector.config.top_k); search.append(time.perf_counter() - t)
            t = time.perf_counter()
            for m in messages:
                detector.lexical.find(m.content, owners=["bench", "global"])
            lexical.append(time.perf_counter() - t)
            t = time.perf_counter(); detector.detect(messages, ["bench", "global"], active); total.append(time.perf_counter() - t)
        ms = lambda xs, q: pct(xs, q) * 1000  # noqa: E731
        rows.append([size, ms(cold, .5), ms(cached, .5), ms(search, .5), ms(search, .99), ms(lexical, .5), ms(lexical, .99),
                     ms(total, .5), ms(total, .99), detector.index.memory_bytes() / 2**20, build_s])

        t = time.perf_counter()
        detector.add(TargetSpec(f"new_{size}", "bench", "Zorblax Quentaro", ("Zorblax",), "a fictional explorer"))
        hit = detector.detect([Message("user", "Tell me about Zorblax Quentaro")], ["bench"], {f"new_{size}"})
        rows[-1].append((time.perf_counter() - t) * 1000 if hit else float("nan"))

    print(f"\nDetection on a {sum(len(m.content.split()) for m in messages)}-word conversation ({len(windows)} spans), ms unless noted")
    print(table(rows, ["targets", "embed cold p50", "embed cached p50", "faiss p50", "faiss p99", "lexical p50",
                       "lexical p99", "detect p50", "detect p99", "index MiB", "bulk load s", "add->detectable ms"]))


if __name__ == "__main__":
    main()
