"""Input standardisation: per-dimension mean and sd of a training split, and the module that applies them.

Frozen features arrive at the scale their encoder gives them: musicnn's pooled vector has a
norm in the hundreds and, on a small corpus, most of its dimensions are constant. Heads and
probes alike see `(x - mean) / sd` instead, with the statistics of the training rows only (over
all their views), so nothing about validation or test segments leaks in. A dimension whose sd
is at most `MIN_SD` is constant: it is only centred, never divided by (almost) zero.

One implementation serves the contrastive heads (`Standardise`, saved in the heads' state),
the probes and the read-outs (`Stats.apply`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

MIN_SD = 1e-6
BLOCK_ROWS = 4096  # rows read at once, so memory stays O(block) however large the store


@dataclass(frozen=True)
class Stats:
    """Per-dimension `mean` and `scale` `(dim,)` float64; `scale` is the sd, or 1 where the sd ≤ `MIN_SD`."""

    mean: np.ndarray
    scale: np.ndarray

    def apply(self, x) -> np.ndarray:
        """`x` `(..., dim)` standardised, as float32."""
        return ((np.asarray(x, dtype=np.float64) - self.mean) / self.scale).astype(np.float32)


def fit(features, rows: np.ndarray | None = None, block_rows: int = BLOCK_ROWS) -> Stats:
    """Statistics of `features[rows]` over all views, read in blocks of `block_rows` rows.

    features: `(n, dim)` or `(n, views, dim)`, numpy or memmap, any float dtype;
    rows: the training rows (all rows when None). Blocks are combined with Chan's parallel
    update, in float64, so one pass suffices and memory does not grow with `len(rows)`.
    """
    rows = np.arange(features.shape[0]) if rows is None else np.sort(np.asarray(rows))
    if len(rows) == 0:
        raise ValueError("cannot standardise with no training rows")
    dim = features.shape[-1]
    count, mean, m2 = 0, np.zeros(dim), np.zeros(dim)
    for lo in range(0, len(rows), block_rows):
        block = np.asarray(features[rows[lo : lo + block_rows]], dtype=np.float64).reshape(-1, dim)
        n_b, mean_b = len(block), block.mean(0)
        m2_b = ((block - mean_b) ** 2).sum(0)
        delta, total = mean_b - mean, count + n_b
        mean = mean + delta * (n_b / total)
        m2 = m2 + m2_b + delta**2 * (count * n_b / total)
        count = total
    sd = np.sqrt(m2 / count)
    return Stats(mean, np.where(sd > MIN_SD, sd, 1.0))


def standardise(x, train_rows: np.ndarray) -> np.ndarray:
    """`x` `(n, dim)` as float32, standardised with the statistics of `x[train_rows]`."""
    return fit(x, train_rows).apply(x)


class Standardise(nn.Module):
    """`(batch, dim)` → `(x - mean) / scale`, with the statistics held as buffers (saved in the state
    dict)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def set_stats(self, stats: Stats) -> Standardise:
        """Load `stats` into the buffers (float32, on the buffers' device); returns self."""
        self.mean.copy_(torch.from_numpy(stats.mean))
        self.scale.copy_(torch.from_numpy(stats.scale))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale
