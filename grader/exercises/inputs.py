"""Input makers shared by the exercises: shapes that hide no mistake.

Batch >= 3, every axis a different length (so a transpose or a swapped operand
shows up as a wrong shape or a wrong value), random values and random upstream
gradients (never all ones), all in float64.
"""
from __future__ import annotations

import numpy as np


def sizes(rng: np.random.Generator, count: int, low: int = 3, high: int = 7) -> list[int]:
    """``count`` distinct sizes in [low, high]: non-square by construction."""
    return [int(n) for n in rng.choice(np.arange(low, high + 1), size=count, replace=False)]


def away_from_zero(rng: np.random.Generator, shape, margin: float = 0.05) -> np.ndarray:
    """Normal values with |v| >= margin, so no numerical step crosses a kink at 0."""
    v = rng.standard_normal(shape)
    return np.where(np.abs(v) < margin, np.copysign(margin, v) * (1 + rng.random(shape)), v)


def probabilities(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def plausible(logits: np.ndarray, labels: np.ndarray, floor: float = 0.01) -> bool:
    """Every correct class keeps probability >= floor, so the book's +1e-7 inside log
    stays far below the numerical check's tolerance (it distorts tiny probabilities)."""
    return bool(np.min(probabilities(logits)[np.arange(len(labels)), labels]) >= floor)
