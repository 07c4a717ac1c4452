"""Gated activation steering: per-target vectors computed from the served model, and per-row hooks.

    vectors = compute_steering_vectors(model, tokenizer, name, aliases, examples)  # at registration
    blob = vectors.to_bytes(); SteeringVectors.from_bytes(blob)                     # SQLite
    engine.steering = GatedSteering(model)                                          # once
    row_plan.steering = combine(v.plan(device, dtype) for v in fired_targets_vectors)
"""

from .hooks import GatedSteering, Rotate, combine, find_decoder_layers
from .vectors import (
    DEFAULT_IGNORANCE,
    DEFAULT_MODE,
    DEFAULT_SCALE,
    SteeringVectors,
    compute_steering_vectors,
    default_layers,
    model_identity,
)

__all__ = [
    "DEFAULT_IGNORANCE",
    "DEFAULT_MODE",
    "DEFAULT_SCALE",
    "GatedSteering",
    "Rotate",
    "SteeringVectors",
    "combine",
    "compute_steering_vectors",
    "default_layers",
    "find_decoder_layers",
    "model_identity",
]
