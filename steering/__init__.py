"""Gated activation steering: per-target vectors computed from the served model, and per-row hooks."""

from .hooks import GatedSteering, Rotate, combine, find_decoder_layers

__all__ = ["GatedSteering", "Rotate", "combine", "find_decoder_layers"]
