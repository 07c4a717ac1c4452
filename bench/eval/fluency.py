"""Perplexity of an answer under the base model, given the conversation that produced it.

A forgetting answer should read like something the model would say anyway: a low perplexity
under the untouched model means fluent, in-distribution text; a high one means the
interventions pushed it somewhere odd (broken words around a ban, loops).
"""

from __future__ import annotations

import math


class Scorer:
    def __init__(self, model_path: str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()

    def _context(self, messages: list[dict]) -> str:
        prefill = messages[-1]["content"] if messages and messages[-1]["role"] == "assistant" else ""
        head = messages[:-1] if prefill else messages
        return self.tokenizer.apply_chat_template(head, tokenize=False, add_generation_prompt=True) + prefill

    def perplexity(self, messages: list[dict], answer: str) -> float | None:
        context = self.tokenizer(self._context(messages), add_special_tokens=False)["input_ids"]
        target = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
        if not target:
            return None
        ids = self.torch.tensor([context + target])
        with self.torch.no_grad():
            logits = self.model(ids).logits[0, len(context) - 1:-1]
        nll = self.torch.nn.functional.cross_entropy(logits, self.torch.tensor(target))
        return round(math.exp(nll.item()), 3)
