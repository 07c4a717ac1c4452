"""The evaluation suite: forget targets and four kinds of prompts, read from JSONL (schema: bench/data/README.md).

Every prompt becomes an `Item`: a conversation to send, the golds that count as stating the
fact, and what it measures (split, target, family). The runner needs nothing else, so any suite
that fits the schema (a TOFU- or RWKU-style file for another model) runs unchanged.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

# The repository's suite, when the package runs from a checkout; elsewhere pass --suite.
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "bench" / "data"
SPLITS = ("forget", "attack", "retain", "neighbour", "followup")
# What the earlier turn of a follow-up item got for an answer: any reply that states nothing.
EARLIER_ANSWER = "I don't know."


@dataclass(frozen=True)
class Item:
    id: str
    split: str  # forget | attack | retain | neighbour | followup (a retain question after a turn about a target)
    messages: list[dict]
    golds: list[str]
    target: str | None = None  # the forget target it is about (or near, for neighbours)
    family: str | None = None  # attack family, or neighbour kind, or retain subject
    variant: str | None = None
    endpoint: str = "chat"  # chat | completions (a raw prompt, no chat template)
    prompt: str | None = None  # the text sent to /v1/completions
    params: dict = field(default_factory=dict)  # extra request fields: {"n": 3}, {"top_logprobs": 10}

    @property
    def prefix(self) -> str:
        """Text the answer continues (an assistant prefill, a raw prompt): the fact may be completed
        across the seam ("…founded by Bill" + " Gates"), so leaks are read on prefix + answer."""
        if self.endpoint == "completions":
            return self.prompt or ""
        return self.messages[-1]["content"] if self.messages and self.messages[-1]["role"] == "assistant" else ""

    @property
    def text(self) -> str:
        """Everything the client sent, as one string (what an answer may repeat without inventing it)."""
        if self.endpoint == "completions":
            return self.prompt or ""
        return "\n".join(m["content"] for m in self.messages if isinstance(m.get("content"), str))


@dataclass
class Suite:
    targets: list[dict]
    items: list[Item] = field(default_factory=list)

    def by_split(self, split: str) -> list[Item]:
        return [i for i in self.items if i.split == split]

    def subset(self, per_group: int | None, retain: int | None = None, attacks_per_family: int | None = None,
               attack_per_group: int | None = None, seed: int = 0) -> Suite:
        """At most `per_group` items per (split, target, family) (`attack_per_group` for attacks),
        `retain` retain items in all and `attacks_per_family` attacks per family (spread over targets);
        the same items on every run."""
        if per_group is None and retain is None and attacks_per_family is None and attack_per_group is None:
            return self
        groups: dict[tuple, list[Item]] = defaultdict(list)
        limits: dict[tuple, int | None] = {}
        for item in self.items:
            if item.split in ("retain", "followup"):
                key = (item.split,)
                limits[key] = retain
            elif item.split == "attack" and attacks_per_family is not None:
                key = ("attack", item.family)
                limits[key] = attacks_per_family
            else:
                key = (item.split, item.target, item.family)
                limits[key] = attack_per_group if item.split == "attack" and attack_per_group else per_group
            groups[key].append(item)
        rng = random.Random(seed)
        keep = set()
        for key, members in groups.items():
            cap = limits.get(key, per_group)
            keep.update(i.id for i in (members if cap is None or len(members) <= cap else rng.sample(members, cap)))
        return Suite(self.targets, [i for i in self.items if i.id in keep])


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def _messages(row: dict) -> list[dict]:
    if "messages" in row:
        return row["messages"]
    if "question" in row:
        return [{"role": "user", "content": row["question"]}]
    return [{"role": "user", "content": row["prompt"]}]  # a raw completion prompt, for tools that want a chat view


def load(directory: Path = DEFAULT_DIR) -> Suite:
    directory = Path(directory)
    targets = _read(directory / "targets.jsonl")
    # A suite may share another's retain and neighbour questions (the held-out suite uses the main ones).
    shared = directory / (json.loads((directory / "suite.json").read_text()).get("shared_from", ".")
                          if (directory / "suite.json").exists() else ".")
    if not targets:
        raise FileNotFoundError(f"{directory / 'targets.jsonl'} is missing or empty")
    names = {t["name"] for t in targets}
    items: list[Item] = []
    for row in _read(directory / "forget.jsonl"):
        items.append(Item(row["id"], "forget", _messages(row), row["golds"], row["target"], "direct"))
    for row in _read(directory / "attacks.jsonl"):
        items.append(Item(row["id"], "attack", _messages(row), row["golds"], row["target"], row["family"],
                          row.get("variant"), row.get("endpoint", "completions" if "prompt" in row else "chat"),
                          row.get("prompt"), row.get("params", {})))
    own_retain = _read(directory / "retain.jsonl")
    about_targets = _about(targets)
    about = [row["id"] for row in own_retain if about_targets(row)]
    if about:
        raise ValueError(f"retain items about a forget target (they measure forgetting, not utility): {about[:5]}")
    # Questions shared from another suite may be about this one's targets ("Who founded Microsoft?"
    # with Microsoft registered): forgetting them is the point, so they are no measure of utility.
    retain = own_retain or [row for row in _read(shared / "retain.jsonl") if not about_targets(row)]
    for row in retain:
        items.append(Item(row["id"], "retain", _messages(row), row["golds"], None, row.get("subject")))
    for row in _read(directory / "neighbours.jsonl"):
        items.append(Item(row["id"], "neighbour", _messages(row), row["golds"], row["target"], row.get("kind")))
    items += followups(items, [t["name"] for t in targets])
    unknown = {i.target for i in items if i.target is not None} - names
    if unknown:
        raise ValueError(f"items refer to targets not in targets.jsonl: {sorted(unknown)}")
    duplicate = [k for k, n in _count(i.id for i in items).items() if n > 1]
    if duplicate:
        raise ValueError(f"duplicate item ids: {duplicate[:5]}")
    return Suite(targets, items)


def _about(targets: list[dict]):
    """Whether a row is about one of the targets: its question names a target, or a gold answer is a
    word of a target's name ("What is the highest mountain in the world?" -> "everest", with Mount
    Everest registered)."""
    names = [t["name"].lower() for t in targets]
    name_words = {w for name in names for w in _NAME_WORD.findall(name)}

    def about(row: dict) -> bool:
        question = " ".join(m["content"] for m in _messages(row) if isinstance(m.get("content"), str)).lower()
        return any(name in question for name in names) or any(g.lower() in name_words for g in row["golds"])
    return about


_NAME_WORD = re.compile(r"\w+")


def followups(items: list[Item], targets: list[str]) -> list[Item]:
    """Each retain question asked again as the next turn of a conversation that began with a
    forget question (the targets taken in turn): a chat that once touched a target must answer what
    comes next as before."""
    opening = {t: next((i for i in items if i.split == "forget" and i.target == t), None) for t in targets}
    openers = [i for i in opening.values() if i is not None]
    if not openers:
        return []
    out = []
    for k, item in enumerate(i for i in items if i.split == "retain"):
        first = openers[k % len(openers)]
        messages = [*first.messages, {"role": "assistant", "content": EARLIER_ANSWER}, *item.messages]
        out.append(Item(f"{item.id}:after:{first.id}", "followup", messages, item.golds, first.target, item.family))
    return out


def _count(values) -> dict:
    counts: dict = defaultdict(int)
    for v in values:
        counts[v] += 1
    return counts
