"""The run's outputs: report.json (everything), report.md (for people), and two PNG charts."""

from __future__ import annotations

import json
from pathlib import Path

FAMILY_ORDER = ("direct", "paraphrase", "indirect", "translation", "roleplay", "prefix_injection", "prefill",
                "encoding", "multi_turn", "in_context", "prefill_named", "raw_completion", "top_logprobs", "n_choices",
                "structured")


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def leak_by_family(column: dict) -> dict:
    return {"direct": column["forget_leak"], **column["attack_leak"]}


def leak_at_k_by_family(column: dict) -> dict:
    sampled = column.get("sampled") or {}
    return {"direct": sampled.get("forget_leak_at_k"), **sampled.get("attack_leak_at_k", {})}


def markdown(report: dict) -> str:
    meta, cols, det = report["meta"], report["scores"]["columns"], report["scores"]["detection"]
    labels = list(cols)
    lethe = [label for label in labels if label != "base"]
    out = [f"# Lethe unlearning evaluation{' (quick)' if meta['quick'] else ''}", "",
           f"Model `{meta['model']}` at {meta['base_url']}, {meta['started']}; greedy, and k={meta.get('k')} draws at "
           f"temperature 1 of {meta.get('sampled_prompts')} forget/attack prompts; max_tokens {meta['max_tokens']}; "
           f"{meta['counts']['forget']} forget, {meta['counts']['attack']} attack, {meta['counts']['retain']} retain, "
           f"{meta['counts']['neighbour']} neighbour, {meta['counts'].get('followup', 0)} follow-up prompts; {meta['duration_s']:.0f} s.", "",
           "Columns: `base` is a tenant with no targets; each other column is a fresh tenant with the six targets "
           "registered under that response policy. Leak rate = share of answers that contain a gold fact, state it "
           "among top_logprobs alternatives, or failed (an error or 5xx counts as a leak); leak@k = share of prompts "
           "with any of k sampled answers leaking (lower is better for Lethe); accuracy = share that answer right "
           "(higher is better).", ""]
    for label in lethe:
        applied = cols[label].get("policy_applied") or {}
        out.append(f"- `{label}`: interventions {applied.get('interventions', cols[label]['policy'])}")
    out += ["", "## Headline", ""]
    rows = [["leak, direct forget questions (greedy)", *(_pct(cols[c]["forget_leak"]) for c in labels)],
            ["leak@k, direct forget questions (temperature 1)",
             *(_pct((cols[c].get("sampled") or {}).get("forget_leak_at_k")) for c in labels)],
            ["leak, attacks (mean / worst family, greedy)",
             *(f"{_pct(cols[c]['attack_leak_mean'])} / {_pct(cols[c]['attack_leak_max'])}" for c in labels)],
            ["leak@k, attacks (mean / worst family, temperature 1)",
             *(f"{_pct((cols[c].get('sampled') or {}).get('attack_leak_at_k_mean'))} / "
               f"{_pct((cols[c].get('sampled') or {}).get('attack_leak_at_k_max'))}" for c in labels)],
            ["failed requests (errors, 5xx)", *(f"{cols[c]['errors']} / {cols[c]['requests']} "
                                               f"({cols[c]['server_errors']} 5xx)" for c in labels)],
            ["structured answers out of shape (JSON that does not parse, a forced call missing)",
             *(_pct(cols[c].get("malformed_rate")) for c in labels)],
            ["retain accuracy", *(_pct(cols[c]["retain_acc"]) for c in labels)],
            ["neighbour accuracy", *(_pct(cols[c]["neighbour_acc"]) for c in labels)]]
    for kind in cols["base"]["neighbour_acc_by_kind"]:
        rows.append([f"neighbour accuracy, {kind}", *(_pct(cols[c]["neighbour_acc_by_kind"].get(kind)) for c in labels)])
    rows.append(["untriggered retain/neighbour answers identical to base", "–",
                 *(_pct(cols[c].get("untriggered_identical")) for c in lethe)])
    rows.append(["retain accuracy after a turn about a target", *(_pct(cols[c].get("followup_acc")) for c in labels)])
    rows.append(["those answers identical to base", "–", *(_pct(cols[c].get("followup_identical")) for c in lethe)])
    out += [_table(["metric", *labels], rows), "", "## Leak rate per attack family", ""]
    families = [f for f in FAMILY_ORDER if f in leak_by_family(cols["base"])]
    families += [f for f in leak_by_family(cols["base"]) if f not in families]
    out += ["Greedy leak, then leak@k at temperature 1 (– where the family was not sampled).", "",
            _table(["family", *labels, *(f"{c} @k" for c in labels), "detected"],
                   [[f, *(_pct(leak_by_family(cols[c]).get(f)) for c in labels),
                     *(_pct(leak_at_k_by_family(cols[c]).get(f)) for c in labels),
                     _pct(det.get("tpr_by_family", {}).get(f))] for f in families]), ""]
    variants = cols["base"]["attack_leak_by_variant"]
    out += ["<details><summary>per variant</summary>", "",
            _table(["variant", *labels], [[v, *(_pct(cols[c]["attack_leak_by_variant"].get(v)) for c in labels)]
                                          for v in variants]), "", "</details>", ""]
    if det:
        out += ["## Detection", "", _table(["metric", "value"], [
            ["true-positive rate, forget + attack prompts (the right target fires)", _pct(det["tpr"])],
            ["false-trigger rate, retain + neighbour prompts", _pct(det["false_trigger"])],
            ["false-trigger rate, retain", _pct(det["false_trigger_retain"])],
            ["false-trigger rate, neighbours", _pct(det["false_trigger_neighbour"])]]), ""]
        if det["false_triggers"]:
            out += ["False triggers: " + "; ".join(f"\"{f['prompt']}\" → {', '.join(f['fired'])}"
                                                   for f in det["false_triggers"][:15]), ""]
    out += ["## Answers where a target fired", "",
            "Greedy / temperature 1. Splice: a refusal glued into an unfinished sentence. Gibberish: perplexity "
            "under the base model above the bound, or too many non-words. Confabulation: a proper noun or number "
            "found neither in the prompt, the target's registration nor base's answers to the same prompt.", "",
            _table(["metric", *labels], [
                [name, *(f"{fmt(cols[c].get('quality', {}).get(key))} / {fmt(cols[c].get('quality_t1', {}).get(key))}"
                         for c in labels)] for name, key, fmt in (
                    ("answers", "n", _num), ("repetition ratio (3-grams)", "repetition", _num),
                    ("perplexity under the base model (median)", "perplexity_median", _num),
                    ("perplexity ratio to base (median)", "perplexity_ratio", _num),
                    ("perplexity of the answer alone (median)", "perplexity_alone_median", _num),
                    ("perplexity alone, ratio to base", "perplexity_alone_ratio", _num),
                    ("gibberish", "gibberish_rate", _pct), ("splices", "splice_rate", _pct),
                    ("confabulation", "confabulation_rate", _pct),
                    ("tells (reveals a registration)", "tell_rate", _pct),
                    ("finish_reason content_filter", "content_filter_rate", _pct),
                    ("empty answers", "empty_rate", _pct), ("mean completion tokens", "mean_tokens", _num))]), ""]
    for label in lethe:
        for key in ("quality", "quality_t1"):
            q = cols[label].get(key) or {}
            for kind in ("tells", "splices", "gibberish", "confabulations"):
                if q.get(kind):
                    out += [f"{kind.capitalize()} under `{label}` ({'greedy' if key == 'quality' else 'temperature 1'}): "
                            + "; ".join(f"\"{t['answer']}\"" + (f" ({', '.join(t['made_up'])})" if t.get("made_up") else "")
                                        for t in q[kind][:6]), ""]
    out += ["## Cost", "", "Added latency per request: median of paired differences (policy tenant minus base, "
            "same prompt, sequential, one new token), so it holds detection, planning and the longer prompt.", "",
            _table(["column", "untriggered (ms)", "triggered (ms)", "mean latency in the batched run (s)"],
                   [[c, _num(cols[c].get("added_latency_ms", {}).get("untriggered")),
                     _num(cols[c].get("added_latency_ms", {}).get("triggered")), _num(cols[c]["mean_latency_s"])]
                    for c in labels]), ""]
    out += ["## Per target", "", _table(["target", *(f"leak {c}" for c in labels), *(f"neighbours {c}" for c in labels)],
                                        [[t, *(_pct(cols[c]["forget_leak_by_target"].get(t)) for c in labels),
                                          *(_pct(cols[c]["neighbour_acc_by_target"].get(t)) for c in labels)]
                                         for t in cols["base"]["forget_leak_by_target"]]), ""]
    check = report.get("thresholds")
    if check:
        verdict = "passed" if not check["failures"] else "FAILED: " + "; ".join(check["failures"])
        out += ["## Regression thresholds", "", f"Column `{check['column']}` against `{check['file']}`: {verdict}", ""]
        if check.get("goal_misses"):
            out += ["Goals not met yet (reported, not failing): " + "; ".join(check["goal_misses"]), ""]
    out += ["Charts: `leak_by_family.png`, `accuracy.png`. Every answer is in `report.json` under `records`.", ""]
    return "\n".join(out)


def _num(value) -> str:
    return "–" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)


def charts(report: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt
    import numpy as np

    cols = report["scores"]["columns"]
    labels = list(cols)
    families = [f for f in FAMILY_ORDER if f in leak_by_family(cols["base"])]
    families += [f for f in leak_by_family(cols["base"]) if f not in families]
    paths = []

    def bars(names, values_of, title, ylabel, path):
        fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(names) + 2), 4.2))
        width = 0.8 / len(labels)
        x = np.arange(len(names))
        for k, label in enumerate(labels):
            values = [values_of(label, n) for n in names]
            ax.bar(x + k * width - 0.4 + width / 2, [np.nan if v is None else 100 * v for v in values], width, label=label)
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_ylim(0, 122)  # headroom for the legend
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(ncol=len(labels), loc="upper center", fontsize="small")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    bars(families, lambda c, f: leak_by_family(cols[c]).get(f), "Leak rate per attack family (lower is better)",
         "answers containing the gold fact (%)", out / "leak_by_family.png")
    kinds = list(cols["base"]["neighbour_acc_by_kind"])
    bars(["retain", *(f"neighbour: {k}" for k in kinds)],
         lambda c, n: cols[c]["retain_acc"] if n == "retain" else cols[c]["neighbour_acc_by_kind"].get(n.split(": ")[1]),
         "Retain and neighbour accuracy (higher is better)", "answers containing the gold (%)", out / "accuracy.png")
    return paths


def write(report: dict, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "markdown": out / "report.md"}
    paths["json"].write_text(json.dumps(report, indent=1, ensure_ascii=False))
    paths["markdown"].write_text(markdown(report))
    for path in charts(report, out):
        paths[path.stem] = path
    return paths
