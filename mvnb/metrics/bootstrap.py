"""Intervals: a bootstrap over videos, so that no resample splits a video's segments.

`bootstrap_weights` draws the multiplicities of the rows in each resample (within strata, where
given); `bootstrap_interval` turns them into an estimate and its `INTERVAL_LEVEL` interval of a
mean or a (weighted) median.
"""

from __future__ import annotations

import numpy as np

BOOTSTRAP_DRAWS = 2000
INTERVAL_LEVEL = 0.95


def bootstrap_weights(groups, n_draws: int, seed: int | np.random.Generator = 0, strata=None) -> np.ndarray:
    """`(n_draws, n)` int multiplicities of the n rows in `n_draws` resamples of their groups.

    groups: `(n,)` labels (video ids): each draw picks, within each stratum, as many groups as
    the stratum has, with replacement, and a picked group brings all its rows, so a video's
    segments are never split. strata: `(n,)` labels (e.g. fold rotations), one stratum if None;
    a group must lie in one stratum. seed: an int or a numpy Generator.
    """
    codes = np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    strata = (
        np.zeros(len(codes), dtype=int)
        if strata is None
        else np.unique(np.asarray(strata), return_inverse=True)[1].ravel()
    )
    group_stratum = np.zeros(codes.max() + 1 if len(codes) else 0, dtype=np.int64)
    group_stratum[codes] = strata
    if not np.array_equal(group_stratum[codes], strata):
        raise ValueError("every group (video) must lie in a single stratum")
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_draws, len(group_stratum)), dtype=np.int64)
    for stratum in np.unique(group_stratum):
        members = np.flatnonzero(group_stratum == stratum)
        picks = members[rng.integers(0, len(members), size=(n_draws, len(members)))]
        np.add.at(counts, (np.arange(n_draws)[:, None], picks), 1)
    return counts[:, codes]


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Median of `values` `(n,)` repeated `weights` `(d, n)` times, per row of weights: `(d,)`.

    Equal to `np.median(np.repeat(values, w))` for each row w (the mean of the two middle
    values when the total weight is even).
    """
    order = np.argsort(values, kind="stable")
    sorted_values, cumulative = values[order], np.cumsum(weights[:, order], axis=1)
    total = cumulative[:, -1:]
    # the value at position p of the expanded, sorted array is the first whose cumulative weight exceeds p
    lower = (cumulative <= (total - 1) // 2).sum(1)
    upper = (cumulative <= total // 2).sum(1)
    return (sorted_values[lower] + sorted_values[upper]) / 2


def bootstrap_interval(
    values,
    groups,
    statistic: str = "median",
    strata=None,
    n_draws: int = BOOTSTRAP_DRAWS,
    level: float = INTERVAL_LEVEL,
    seed: int = 0,
) -> tuple[float, float, float]:
    """`(estimate, low, high)`: `statistic` ("median" or "mean") of `values` `(n,)` and its
    percentile interval from a bootstrap over `groups` (see `bootstrap_weights`).

    Each value is computed once, in its own fixed gallery (a query's rank, say); the bootstrap
    resamples whole groups (videos) of values, within each stratum. Rows for several training
    seeds of the same test video share its group: resampling the video takes its values from
    every seed, so the interval is pooled over seeds.
    """
    values = np.asarray(values, dtype=np.float64)
    if statistic not in ("median", "mean"):
        raise ValueError(f"statistic must be 'median' or 'mean', not {statistic!r}")
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    estimate = float(np.median(values) if statistic == "median" else values.mean())
    rng, draws = np.random.default_rng(seed), []
    for lo in range(0, n_draws, 256):  # blocks of draws keep memory at O(256 · n)
        w = bootstrap_weights(groups, min(256, n_draws - lo), rng, strata)
        draws.append(weighted_median(values, w) if statistic == "median" else (w @ values) / w.sum(1))
    low, high = np.quantile(np.concatenate(draws), [(1 - level) / 2, (1 + level) / 2])
    return estimate, float(low), float(high)
