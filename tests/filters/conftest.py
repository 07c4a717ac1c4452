"""Fixtures for the filters tests: the served model's tokenizer and weights, loaded once."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def model_path():
    from gateway.model_loader import resolve_model

    return resolve_model("embedded").path


@pytest.fixture(scope="session")
def tokenizer(model_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path)


@pytest.fixture(scope="session")
def model(model_path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
