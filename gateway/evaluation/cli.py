"""`lethe eval` (or `python -m bench.eval`): forgetting, utility, attacks, detection, answer quality and cost.

    lethe eval                       # full run; starts its own gateway
    lethe eval --quick               # CI subset (< 5 min); exits 1 on a regression
    lethe eval --heldout             # the held-out targets (bench/data/heldout) instead of the main suite
    lethe eval --policy instruction --policy filters
    lethe eval --base-url http://127.0.0.1:8000 --admin-key $LETHE_ADMIN_KEY
    lethe eval --check-only bench/results/eval-…/report.json

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

RESULTS = suite_mod.DEFAULT_DIR.parent / "results"
# Quick mode: one forget and neighbour prompt per (target, kind), one attack per family, 10
# retain questions, short answers (most facts are answered within the first dozen tokens, so 32 is
# enough to see a leak). At temperature 1: k=5 draws of 3 forget prompts and of the attack of each
# family (base draws once: its sampled answers are only the fluency reference). Fluency is scored on
# 6 triggered prompts.
QUICK = {"per_group": 1, "attack_per_group": None, "retain": 10, "attacks_per_family": 1, "max_tokens": 32,
         "latency_prompts": 6, "fluency_prompts": 6, "k": 5, "base_k": 1, "sample_forget": 3,
         "sample_attacks_per_family": 1}
# Full: every forget, retain and neighbour prompt; templated attacks capped at 3 per (target, family),
# so each family weighs the same whatever the number of variants. k=5 draws at temperature 1 of every
# forget prompt and up to 6 attacks per family, base included. Fluency is a forward pass per answer
# (the prompt included), so it is scored on a fixed sample of 40 triggered prompts.
FULL = {"per_group": None, "attack_per_group": 3, "retain": None, "attacks_per_family": None, "max_tokens": 40,
        "latency_prompts": 24, "fluency_prompts": 40, "k": 5, "base_k": None, "sample_forget": None,
        "sample_attacks_per_family": 6}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lethe eval", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="CI subset; checks thresholds and exits 1 on a regression")
    p.add_argument("--suite", type=Path, default=suite_mod.DEFAULT_DIR, help="directory with the suite's JSONL files")
    p.add_argument("--heldout", action="store_true",
                   help="the held-out suite (targets registered by name and description only): SUITE/heldout")
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
    p.add_argument("-k", "--samples", type=int, help="draws per prompt at temperature 1 for leak@k (default 5; 0: greedy only)")
    p.add_argument("--no-perplexity", action="store_true", help="skip scoring answers under the base model")
    p.add_argument("--perplexity-sample", type=int, help="triggered prompts whose answers are scored (default: 40, quick: 10)")
    p.add_argument("--model", default="embedded", help="model for perplexity (the one the gateway serves)")
    p.add_argument("--check-only", type=Path, metavar="REPORT_JSON", help="only check an existing report.json")
    return p


def _records(items, result: runner.RunResult) -> list[dict]:
    rows = []
    for item in items:
        row = {"id": item.id, "split": item.split, "target": item.target, "family": item.family,
               "variant": item.variant, "endpoint": item.endpoint, "messages": item.messages, "prompt": item.prompt,
               "params": item.params, "golds": item.golds, "fired": result.fired.get(item.id), "answers": {}}
        for label, answers in result.answers.items():
            a = answers.get(item.id)
            if a is not None:
                row["answers"][label] = _answer_record(a, item)
            draws = result.samples.get(label, {}).get(item.id)
            if draws:
                row.setdefault("samples", {})[label] = [_answer_record(d, item) for d in draws]
        rows.append(row)
    return rows


def _answer_record(a: runner.Answer, item) -> dict:
    out = {"text": a.text, "finish_reason": a.finish_reason, "error": a.error, "status": a.status}
    if len(a.choices) > 1:
        out["choices"] = a.choices
    if a.malformed is not None:
        out["malformed"] = a.malformed
    if item.split in ("forget", "attack"):
        out["leaks"] = metrics.answer_leaks(a, item)
    else:
        out["correct"] = metrics.answer_correct(a, item)
    return out


def _sampled_items(suite: suite_mod.Suite, forget: int | None, attacks_per_family: int | None) -> list:
    """The forget and attack prompts drawn k times at temperature 1: the same ones on every run."""
    rng = random.Random(1)
    chosen = suite.by_split("forget")
    if forget is not None and len(chosen) > forget:
        chosen = rng.sample(chosen, forget)
    by_family: dict[str, list] = {}
    for item in suite.by_split("attack"):
        by_family.setdefault(item.family, []).append(item)
    for members in by_family.values():
        cap = attacks_per_family
        chosen += members if cap is None or len(members) <= cap else rng.sample(members, cap)
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.check_only:
        verdict = thresholds.check(json.loads(args.check_only.read_text()), args.thresholds)
        print(json.dumps(verdict, indent=1))
        return 1 if verdict["failures"] else 0

    mode = QUICK if args.quick else FULL
    suite_dir = args.suite / "heldout" if args.heldout else args.suite
    suite = suite_mod.load(suite_dir).subset(args.per_group or mode["per_group"], mode["retain"],
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
        from .launcher import launch

        print("starting a gateway…", file=sys.stderr)
        server = launch(Path(tempfile.mkdtemp(prefix="lethe-eval-")))
        base_url, admin_key = server.base_url, server.admin_key
    k = mode["k"] if args.samples is None else args.samples
    sampled = _sampled_items(suite, mode["sample_forget"], mode["sample_attacks_per_family"]) if k else []
    sampling = runner.Sampling(1.0, k) if k else None
    try:
        result = runner.run(base_url, admin_key, suite, names, max_tokens, args.concurrency, mode["latency_prompts"],
                            sampled, sampling, mode["base_k"])
    finally:
        if server is not None:
            server.stop()  # frees the CPU for perplexity scoring

    cap = 0 if args.no_perplexity else args.perplexity_sample if args.perplexity_sample is not None \
        else mode["fluency_prompts"]
    fluency = {}
    if cap:
        from gateway.model_loader import resolve_model

        from .fluency import score_answers

        fluency = score_answers(str(resolve_model(args.model).path), suite, result, cap)
    counts = {s: len(suite.by_split(s)) for s in suite_mod.SPLITS}
    rep = {
        "meta": {"model": result.model, "base_url": base_url, "quick": args.quick, "max_tokens": max_tokens,
                 "started": started.isoformat(timespec="seconds"), "duration_s": round(time.monotonic() - clock, 1),
                 "counts": counts, "suite": str(suite_dir), "policies": names, "k": k,
                 "sampled_prompts": len(sampled), "fluency_prompts": cap,
                 "columns": [c.label for c in result.columns]},
        "scores": metrics.score(suite, result, fluency),
        "records": _records(suite.items, result),
    }
    if args.check if args.check is not None else args.quick:
        rep["thresholds"] = thresholds.check(rep, args.thresholds)
    paths = report.write(rep, out)
    _summary(rep)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    if rep.get("thresholds", {}).get("goal_misses"):
        print("goals not met yet: " + "; ".join(rep["thresholds"]["goal_misses"]), file=sys.stderr)
    failures = rep.get("thresholds", {}).get("failures")
    if failures:
        print("REGRESSION: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


def _summary(rep: dict) -> None:
    cols = rep["scores"]["columns"]
    det = rep["scores"]["detection"]
    for label, col in cols.items():
        sampled = col.get("sampled") or {}
        q, q1 = col.get("quality") or {}, col.get("quality_t1") or {}
        print(f"{label:>16}: forget leak {col['forget_leak']} (leak@{sampled.get('k')} {sampled.get('forget_leak_at_k')}), "
              f"attack leak mean {col['attack_leak_mean']} worst {col['attack_leak_max']} "
              f"(leak@k worst {sampled.get('attack_leak_at_k_max')}), retain {col['retain_acc']}, "
              f"neighbours {col['neighbour_acc']}, after a target turn {col.get('followup_acc')}, errors {col['errors']}/{col['requests']}; "
              f"splices {q.get('splice_rate')}/{q1.get('splice_rate')}, gibberish {q.get('gibberish_rate')}/"
              f"{q1.get('gibberish_rate')}, confabulation {q.get('confabulation_rate')}/{q1.get('confabulation_rate')}, "
              f"tells {q.get('tell_rate')}/{q1.get('tell_rate')} (greedy/T=1)")
    if det:
        print(f"detection: TPR {det['tpr']}, false-trigger {det['false_trigger']}")
    print(f"took {rep['meta']['duration_s']:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
