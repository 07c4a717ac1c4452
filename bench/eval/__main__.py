"""`python -m bench.eval` (or `lethe eval`): forgetting, utility, attacks, detection, answer quality and cost.

    python -m bench.eval                       # full run; starts its own gateway
    python -m bench.eval --quick               # CI subset (< 5 min); exits 1 on a regression
    python -m bench.eval --policy instruction --policy filters
    python -m bench.eval --base-url http://127.0.0.1:8000 --admin-key $LETHE_ADMIN_KEY
    python -m bench.eval --check-only bench/results/eval-…/report.json

Writes report.md, report.json, leak_by_family.png and accuracy.png to
bench/results/eval-<timestamp>/ (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from . import metrics, policies, report, runner, suite as suite_mod, thresholds  # noqa: E402
from .matching import contains_gold  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"
# Quick mode: one forget and neighbour prompt per (target, kind), two attacks per family, 10
# retain questions, short answers, no perplexity. Most facts are
# answered within the first dozen tokens, so 32 is enough to see a leak.
QUICK = {"per_group": 1, "attack_per_group": None, "retain": 10, "attacks_per_family": 2, "max_tokens": 32,
         "latency_prompts": 6, "perplexity_sample": 0}
# Full: every forget, retain and neighbour prompt; templated attacks capped at 3 per (target, family),
# so each family weighs the same whatever the number of variants. Perplexity is a forward pass
# over the whole conversation, seconds each on a small CPU, hence a fixed sample per column.
FULL = {"per_group": None, "attack_per_group": 3, "retain": None, "attacks_per_family": None, "max_tokens": 40,
        "latency_prompts": 24, "perplexity_sample": 40}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lethe eval", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="CI subset; checks thresholds and exits 1 on a regression")
    p.add_argument("--suite", type=Path, default=suite_mod.DEFAULT_DIR, help="directory with the suite's JSONL files")
    p.add_argument("--out", type=Path, help="output directory (default bench/results/eval-<timestamp>)")
    p.add_argument("--base-url", help="a running gateway (default: start one on a free port)")
    p.add_argument("--admin-key", default=os.environ.get("LETHE_ADMIN_KEY"), help="admin key of --base-url")
    p.add_argument("--policy", action="append", choices=sorted(policies.PRESETS),
                   help="response policy to evaluate, one column each (repeatable; default: the server's)")
    p.add_argument("--per-group", type=int, help="at most N prompts per (split, target, family)")
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--concurrency", type=int, default=12, help="requests in flight (the gateway batches them)")
    p.add_argument("--thresholds", type=Path, default=thresholds.DEFAULT_FILE)
    p.add_argument("--check", action=argparse.BooleanOptionalAction, default=None,
                   help="check thresholds (default: on with --quick)")
    p.add_argument("--no-perplexity", action="store_true", help="skip scoring answers under the base model")
    p.add_argument("--perplexity-sample", type=int, help="answers per column to score (default: 40, quick: 0)")
    p.add_argument("--model", default="embedded", help="model for perplexity (the one the gateway serves)")
    p.add_argument("--check-only", type=Path, metavar="REPORT_JSON", help="only check an existing report.json")
    return p


def _perplexities(model: str, items, result: runner.RunResult, sample: int) -> dict:
    """Perplexity of each column's answer on (a fixed sample of) the prompts where a target fired."""
    from tqdm import tqdm

    from gateway.model_loader import resolve_model

    from .fluency import Scorer

    scorer = Scorer(str(resolve_model(model).path))
    fired = [i for i in items if i.split in ("forget", "attack") and result.fired.get(i.id)]
    fired = random.Random(0).sample(fired, sample) if len(fired) > sample else fired
    out: dict = {}
    for label, answers in result.answers.items():
        for item in tqdm(fired, desc=f"perplexity {label}", unit="answer"):
            if item.id in answers and answers[item.id].text.strip():
                out.setdefault(label, {})[item.id] = scorer.perplexity(item.messages, answers[item.id].text)
    return out


def _records(items, result: runner.RunResult) -> list[dict]:
    rows = []
    for item in items:
        row = {"id": item.id, "split": item.split, "target": item.target, "family": item.family,
               "variant": item.variant, "messages": item.messages, "golds": item.golds,
               "fired": result.fired.get(item.id), "answers": {}}
        for label, answers in result.answers.items():
            a = answers.get(item.id)
            if a is not None:
                row["answers"][label] = {"text": a.text, "finish_reason": a.finish_reason, "error": a.error,
                                         "has_gold": contains_gold(a.text, item.golds)}
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.check_only:
        verdict = thresholds.check(json.loads(args.check_only.read_text()), args.thresholds)
        print(json.dumps(verdict, indent=1))
        return 1 if verdict["failures"] else 0

    mode = QUICK if args.quick else FULL
    suite = suite_mod.load(args.suite).subset(args.per_group or mode["per_group"], mode["retain"],
                                               mode["attacks_per_family"], mode["attack_per_group"])
    max_tokens = args.max_tokens or mode["max_tokens"]
    names = args.policy or [policies.DEFAULT]
    started = datetime.now(timezone.utc)
    out = args.out or RESULTS / f"eval-{started.strftime('%Y%m%d-%H%M%S')}"
    clock = time.monotonic()

    # A terminated run still stops the gateway it started and deletes its tenants (finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server = None
    if args.base_url:
        if not args.admin_key:
            print("--admin-key (or LETHE_ADMIN_KEY) is needed to create the eval's tenants", file=sys.stderr)
            return 2
        base_url, admin_key = args.base_url, args.admin_key
    else:
        from bench.common import start_gateway

        print("starting a gateway…", file=sys.stderr)
        server = start_gateway(Path(tempfile.mkdtemp(prefix="lethe-eval-")))
        base_url, admin_key = server.base_url, server.admin_key
    try:
        result = runner.run(base_url, admin_key, suite, names, max_tokens, args.concurrency, mode["latency_prompts"])
    finally:
        if server is not None:
            server.stop()  # frees the CPU for perplexity scoring

    sample = 0 if args.no_perplexity else args.perplexity_sample if args.perplexity_sample is not None \
        else mode["perplexity_sample"]
    ppl = _perplexities(args.model, suite.items, result, sample) if sample else {}
    counts = {s: len(suite.by_split(s)) for s in suite_mod.SPLITS}
    rep = {
        "meta": {"model": result.model, "base_url": base_url, "quick": args.quick, "max_tokens": max_tokens,
                 "started": started.isoformat(timespec="seconds"), "duration_s": round(time.monotonic() - clock, 1),
                 "counts": counts, "suite": str(args.suite), "policies": names,
                 "columns": [c.label for c in result.columns]},
        "scores": metrics.score(suite, result, ppl),
        "records": _records(suite.items, result),
    }
    if args.check if args.check is not None else args.quick:
        rep["thresholds"] = thresholds.check(rep, args.thresholds)
    paths = report.write(rep, out)
    _summary(rep)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    failures = rep.get("thresholds", {}).get("failures")
    if failures:
        print("REGRESSION: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


def _summary(rep: dict) -> None:
    cols = rep["scores"]["columns"]
    det = rep["scores"]["detection"]
    for label, col in cols.items():
        print(f"{label:>16}: forget leak {col['forget_leak']}, attack leak {col['attack_leak_mean']}, "
              f"retain {col['retain_acc']}, neighbours {col['neighbour_acc']}")
    if det:
        print(f"detection: TPR {det['tpr']}, false-trigger {det['false_trigger']}")
    print(f"took {rep['meta']['duration_s']:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
