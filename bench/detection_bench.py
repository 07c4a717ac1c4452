"""Detection and write-to-live against 10^3, 10^5 and 10^6 registered forget targets, in one run.

    python -m bench.detection_bench [--quick]      # --quick: 10^3 and 10^4 (CI-sized)

Builds one registry (real SQLite store, real detector) in stages and measures each stage:

* 10^3: one tenant ("small") with 10^3 targets;
* 10^5: plus a tenant ("large") with 10^5 active targets;
* 10^6: plus nine more tenants of 10^5 targets each (10^6 registered in all).

The bulk targets are synthetic (documented here because it matters): one random unit vector and
one made-up one-word name each, since embedding 10^6 real targets with MiniLM on two cores would
take hours. Each tenant also holds a few real targets (real embeddings, generated aliases and probe
prompts), and everything measured goes through the real paths: detection over a tenant snapshot
(`Planner.detect`), and writes through `Registry.create` / `update` (embedding, SQLite commit,
snapshot swap). A tenant's base index of 10^5 synthetic targets (FAISS HNSW) is built once and
cached in ~/.cache/lethe/bench, so later runs load it; the nine extra tenants share one set of
synthetic vectors (with their own ids and names), so one cached index serves them all.

Per stage: detect p50/p99 for a new ~600-word conversation (never seen: nothing cached) and for a
cached one (the same conversation again, as each turn of a chat resends the earlier ones),
write-to-live (create or edit returns -> the next detection fires), index build time, resident
memory and memory per target. The 10^5-target and 10^3-target tenants are measured alternately,
request by request, so their p99 ratio survives a noisy machine.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import pct, table

CACHE = Path(os.environ.get("LETHE_BENCH_CACHE", Path.home() / ".cache" / "lethe" / "bench"))
REAL = [("Harry Potter", "the boy wizard of J.K. Rowling's novels"), ("Barack Obama", "the 44th US president"),
        ("Mount Everest", "the highest mountain on Earth"), ("Marie Curie", "the physicist who studied radioactivity")]
TOPICS = ["the harbour", "a village market", "the old railway", "a mountain lake", "the city library", "a small bakery",
          "the night train", "an orchard", "the winter fair", "a river crossing", "the lighthouse", "a garden party"]
VERBS = ["walked past", "talked about", "wrote to", "remembered", "painted", "visited", "described", "forgot"]


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def conversation(rng: random.Random, words: int = 600):
    """A ~600-word, never-seen-before conversation whose last turn names a real target."""
    from detectors.types import Message

    sentences, count = [], 0
    while count < words:
        s = (f"On day {rng.randrange(10**6)} we {rng.choice(VERBS)} {rng.choice(TOPICS)} and {rng.choice(TOPICS)}, "
             f"which {rng.choice(VERBS)} {rng.choice(TOPICS)} for a while.")
        sentences.append(s)
        count += len(s.split())
    half = len(sentences) // 2
    return [Message("system", " ".join(sentences[:half])), Message("user", " ".join(sentences[half:])),
            Message("user", "Given all that, who wrote the Harry Potter books?")]


def _word(i: int) -> str:
    letters = []
    for _ in range(5):
        i, r = divmod(i, 26)
        letters.append(chr(97 + r))
    return "qx" + "".join(letters)  # 7 letters: a unique made-up name per synthetic target


def synthetic(owner: str, start: int, count: int, seed: int):
    """`count` synthetic records and prepared targets: one random unit vector, one made-up name."""
    from detectors.index import PreparedTarget
    from detectors.types import TargetSpec
    from gateway.store import TargetRecord

    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors.astype(np.float16)
    empty: frozenset[str] = frozenset()
    out = []
    for k in range(count):
        target_id, name = f"syn_{start + k}", _word(start + k)
        spec = TargetSpec(target_id, owner, name, (name,))
        out.append((TargetRecord(target_id, owner, name, [name]),
                    PreparedTarget(spec, vectors[k:k + 1], 0.62, None, empty, empty)))
    return out


def base_layer(items, seed: int):
    """The owner's base layer; its FAISS index comes from the disk cache when built before."""
    import faiss

    from detectors.index import HNSW_ABOVE, Layer

    prepared = [p for _, p in items]
    if len(prepared) <= HNSW_ABOVE:
        return Layer(prepared)
    path = CACHE / f"hnsw-{len(prepared)}-{seed}.faiss"  # the vectors depend only on count and seed
    if path.exists():
        return Layer(prepared, index=faiss.read_index(str(path)))
    layer = Layer(prepared)
    CACHE.mkdir(parents=True, exist_ok=True)
    faiss.write_index(layer.index, str(path))
    return layer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^3 and 10^4 targets only (CI-sized)")
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    large, others = (10_000, 0) if args.quick else (100_000, 9)

    from detectors.detector import Detector
    from gateway.engines.cores import one_core_by_default
    from gateway.planner import Planner
    from gateway.policy import ResponsePolicy
    from gateway.registry import Caller, Registry
    from gateway.store import Store

    one_core_by_default()  # as in the server: detection and writes run beside the engine on one core
    tmp = tempfile.TemporaryDirectory()
    store = Store(Path(tmp.name) / "bench.db")
    detector = Detector()
    registry = Registry(store, detector)
    planner = Planner(registry, tokenizer=None, default_policy=ResponsePolicy())
    rng = random.Random(0)

    def add_real(owner: str) -> None:
        for name, description in REAL:
            record = registry.create(owner, name=name, aliases=[], description=description, examples=[], forbidden=[],
                                     negatives=[], mandatory=False)
            state.append((record, registry.snapshot(owner).view.eligible(record.id)))  # kept by later installs

    state: list = []  # (record, prepared) of every synthetic target installed so far
    layers: dict = {}

    def stage(owner: str, count: int, seed: int) -> float:
        """Installs `count` synthetic targets for `owner` next to everything so far; returns build seconds."""
        started = time.perf_counter()
        items = synthetic(owner, len(state), count, seed)
        layers[owner] = base_layer(items, seed)
        state.extend(items)
        registry.install(state, layers=layers)
        build = time.perf_counter() - started
        add_real(owner)  # real targets on top (they land in the owner's delta, as live writes do)
        return build

    def detect_times(tenants: list[str]) -> dict[str, dict[str, list[float]]]:
        """Detection latency per tenant, new and cached conversations, tenants alternating."""
        times = {t: {"new": [], "cached": []} for t in tenants}
        cached = conversation(random.Random(1))
        for t in tenants:  # warm the cached conversation once per tenant
            planner.detect(registry.snapshot(t), [m.__dict__ for m in cached])
        for _ in range(args.repeats):
            for t in tenants:
                for kind, messages in (("new", conversation(rng)), ("cached", cached)):
                    payload = [m.__dict__ for m in messages]
                    begun = time.perf_counter()
                    result = planner.detect(registry.snapshot(t), payload)
                    times[t][kind].append(time.perf_counter() - begun)
                    assert any(r.name == "Harry Potter" for r in result.targets), "the real target must fire"
        return times

    embed_times: list[float] = []
    prepare = detector.prepare

    def timed_prepare(spec):
        begun = time.perf_counter()
        try:
            return prepare(spec)
        finally:
            embed_times.append(time.perf_counter() - begun)

    detector.prepare = timed_prepare  # to split a write into embedding and commit -> live

    def write_to_live(owner: str, n: int = 8) -> tuple[list[float], list[float]]:
        """Seconds from a create or edit call to the next detection firing on it, whole and without
        the embedding of the target's texts (that part does not depend on the number of targets)."""
        out = []
        embed_times.clear()
        for k in range(n):
            name = f"Zorblax Quentaro{_word(rng.randrange(10**6))}"
            begun = time.perf_counter()
            record = registry.create(owner, name=name, aliases=[], description="a fictional explorer", examples=[],
                                     forbidden=[], negatives=[], mandatory=False)
            fired = planner.detect(registry.snapshot(owner), [{"role": "user", "content": f"Who is {name}?"}])
            assert record.id in {d.target_id for d in fired.detections}
            out.append(time.perf_counter() - begun)
            begun = time.perf_counter()
            renamed = f"Vintrel Moskavy{_word(rng.randrange(10**6))}"
            registry.update(Caller(owner), record.id, name=renamed)
            fired = planner.detect(registry.snapshot(owner), [{"role": "user", "content": f"Who is {renamed}?"}])
            assert record.id in {d.target_id for d in fired.detections}
            out.append(time.perf_counter() - begun)
        return out, [w - e for w, e in zip(out, embed_times)]

    ms = lambda xs, q: pct(xs, q) * 1000  # noqa: E731
    rows = []
    stages = [("10^3", "small", 1_000, 0)]
    stages.append((f"10^{len(str(large)) - 1}", "large", large, 1))
    if others:
        stages.append(("10^6", None, large, 2))
    ratio_lines = []
    for label, owner, count, seed in stages:
        before_rss, before_n = rss_mib(), len(state)
        if owner is None:  # nine more tenants of `large` targets each
            # The same synthetic vectors for all nine (their own ids and names): one cached index.
            build = sum(stage(f"other{i}", count, seed) for i in range(others))
            owner = "large"
        else:
            build = stage(owner, count, seed)
        registered = len(state)
        resident = rss_mib()
        per_target = (resident - before_rss) * 2**20 / max(1, registered - before_n)
        measured = [owner] if owner == "small" else ["small", owner]
        times = detect_times(measured)
        writes, commits = write_to_live(owner)
        t = times[owner]
        rows.append([label, registered, ms(t["new"], .5), ms(t["new"], .99), ms(t["cached"], .5), ms(t["cached"], .99),
                     ms(writes, .5), ms(writes, .99), ms(commits, .5), ms(commits, .99), build, resident, per_target])
        if owner != "small":
            s = times["small"]
            ratio_lines.append(
                f"{label} registered, side by side: p99 {owner} ({count} active) / small (1000 active): "
                f"new {pct(t['new'], .99) / pct(s['new'], .99):.2f}, cached {pct(t['cached'], .99) / pct(s['cached'], .99):.2f}")
    print(f"\nDetection over one tenant snapshot, ~600-word conversation ({args.repeats} repeats each), ms unless noted."
          "\nwrite->live: create/edit call until detection fires; 'w/o embed': the same minus embedding the"
          " target's texts.\nbytes/target: resident growth of the stage over the targets it added (synthetic bulk).")
    print(table(rows, ["registered", "targets", "new p50", "new p99", "cached p50", "cached p99", "write->live p50",
                       "write->live p99", "w/o embed p50", "w/o embed p99", "index build s", "RSS MiB", "bytes/target"]))
    first, last = rows[0], rows[-1]
    print(f"p99 ratio {last[0]}/{first[0]} registered: new {last[3] / first[3]:.2f}, cached {last[5] / first[5]:.2f} "
          f"(goal <= 1.5); write->live p99 {last[7]:.0f} ms, without embedding {last[9]:.0f} ms (goal <= 1000)")
    for line in ratio_lines:
        print(line)
    planner.shutdown()
    store.close()
    tmp.cleanup()


if __name__ == "__main__":
    main()
