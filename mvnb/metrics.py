"""Cross-modal retrieval metrics: ranks, median rank and recall@k, and their evaluation on a split.

Rank of a query's true match among the gallery by cosine similarity, 1 = best. **Ties count
as mid-rank**: a match tied with t competitors gets the mean of the t + 1 ranks they share,
which is also its expected rank if ties were broken at random. Collapsed embeddings therefore
score chance, (P + 1) / 2 for a pool of P, never 1. (The authors' code took the diagonal of an
argsort instead, which gives about P / 2 whatever the embeddings.) Similarities within
`TIE_TOLERANCE` of each other count as tied: that is below what float32 resolves.

This module shares no code with `mvnb.loss`, so a bug in one cannot hide in the other.

Two forms of evaluation on a split of paired audio and video embeddings:
- **main form**: the gallery is every segment of the split; the other segments of the query's
  own video are left out of the competition, so each query competes in a pool of
  P = (segments of the split) − (its video's segments) + 1.
- **paper form**: pools of up to 1000 segments, at most one per video, as the paper reports;
  only where the split has enough videos for pools of at least 100.
"""

from __future__ import annotations

import numpy as np

from mvnb.samplers import OneSegmentPerVideoBatchSampler

TIE_TOLERANCE = 1e-6
RECALL_KS = (1, 5, 10)
PAPER_POOL_SIZE = 1000
PAPER_MIN_POOL_SIZE = 100
_CHUNK_ELEMENTS = 1 << 22


def retrieval_counts(
    queries, gallery, targets=None, groups=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each query, how many competitors beat its match, tie it, and the pool size.

    queries: `(n, dim)`; gallery: `(m, dim)`; targets: `(n,)` index of each query's match in
        the gallery, by default `arange(n)` (row i matches row i).
    groups: `(m,)` labels (video ids) of the gallery; gallery items that share the match's
        label, the match excepted, are left out of the competition. None leaves none out.
    Returns `greater`, `ties` (ties exclude the match itself) and `pool` (1 + competitors),
    each `(n,)` int64. Works in blocks of queries, so memory stays O(m) per block row.
    """
    queries, gallery = unit_rows(queries), unit_rows(gallery)
    n, m = len(queries), len(gallery)
    targets = np.arange(n) if targets is None else np.asarray(targets, dtype=np.int64)
    if queries.shape[1:] != gallery.shape[1:] or len(targets) != n or (n and targets.max() >= m):
        raise ValueError(
            f"need queries (n, dim), gallery (m, dim) and n targets < m; got {queries.shape}, "
            f"{gallery.shape}, {targets.shape}"
        )
    # Each gallery item's group; without groups every item is its own, so only the match drops out.
    codes = np.arange(m) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    if len(codes) != m:
        raise ValueError(f"need one group label per gallery item: {len(codes)} labels for {m} items")
    target_codes = codes[targets]
    greater, ties = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    step = max(1, _CHUNK_ELEMENTS // max(m, 1))
    for lo in range(0, n, step):
        rows = slice(lo, min(lo + step, n))
        sims = queries[rows] @ gallery.T
        match = np.take_along_axis(sims, targets[rows, None], axis=1)
        competing = codes[None, :] != target_codes[rows, None]
        greater[rows] = ((sims > match + TIE_TOLERANCE) & competing).sum(1)
        ties[rows] = ((np.abs(sims - match) <= TIE_TOLERANCE) & competing).sum(1)
    pool = m - np.bincount(codes, minlength=1)[target_codes] + 1
    return greater, ties, pool


def retrieval_ranks(queries, gallery, targets=None, groups=None) -> np.ndarray:
    """`(n,)` float mid-rank (1 = best) of each query's match among the gallery.

    Arguments as in `retrieval_counts`; by default the match of `queries[i]` is `gallery[i]`.
    """
    greater, ties, _ = retrieval_counts(queries, gallery, targets, groups)
    return ranks_from_counts(greater, ties)


def median_rank(queries, gallery, targets=None, groups=None) -> float:
    """Median over queries of `retrieval_ranks`."""
    return float(np.median(retrieval_ranks(queries, gallery, targets, groups)))


def recall_at_k(queries, gallery, k: int, targets=None, groups=None) -> float:
    """Fraction of queries whose match is among the k nearest, ties broken at random in expectation."""
    greater, ties, _ = retrieval_counts(queries, gallery, targets, groups)
    return float(recalls_from_counts(greater, ties, k).mean())


def ranks_from_counts(greater: np.ndarray, ties: np.ndarray) -> np.ndarray:
    """Mid-rank `1 + greater + ties / 2` of each query, `(n,)` float."""
    return 1.0 + greater + ties / 2.0


def recalls_from_counts(greater: np.ndarray, ties: np.ndarray, k: int) -> np.ndarray:
    """Probability, per query `(n,)`, that the match lands in the top k when ties are shuffled."""
    return np.clip((k - greater) / (ties + 1.0), 0.0, 1.0)


def argsort_diagonal_rank(queries, gallery) -> float:
    """The authors' defective "median rank", for demonstration only: the median of the diagonal of
    the argsort of the similarity matrix (most similar first), plus one.

    Entry i of that diagonal is the index of the i-th most similar gallery item to query i,
    not the rank of query i's match, so it is about N / 2 whatever the embeddings, perfect ones
    included. queries, gallery: `(n, dim)`.
    """
    order = np.argsort(-(unit_rows(queries) @ unit_rows(gallery).T), axis=1, kind="stable")
    return float(np.median(np.diagonal(order)) + 1)


def main_form_queries(audio, video, video_ids) -> dict[str, np.ndarray]:
    """Per query of a split, in the main form: its pool, and per direction its mid-rank and R@k.

    audio, video: `(n, dim)` paired embeddings of the split's segments; video_ids: `(n,)`.
    Returns `(n,)` arrays `pool`, `rank_a2v`, `rank_v2a` and `r<k>_a2v`, `r<k>_v2a` (the
    probability that the match is in the top k) for k in RECALL_KS; row i is segment i as query.
    These are what `bootstrap_interval` resamples by video.
    """
    video_ids = np.asarray(video_ids)
    if len(video_ids) == 0:
        raise ValueError("no segments to evaluate: the split is empty")
    queries = {}
    for direction, (q, g) in (("a2v", (audio, video)), ("v2a", (video, audio))):
        greater, ties, pool = retrieval_counts(q, g, groups=video_ids)
        queries["pool"] = pool
        queries[f"rank_{direction}"] = ranks_from_counts(greater, ties)
        for k in RECALL_KS:
            queries[f"r{k}_{direction}"] = recalls_from_counts(greater, ties, k)
    return queries


def summarise_queries(queries: dict[str, np.ndarray], video_ids) -> dict:
    """The main-form summary of `main_form_queries`' arrays: n_segments, n_videos, pool (median P
    over queries; min and max too), chance (pool + 1) / 2, and per direction the median rank and
    the mean R@1/5/10."""
    pool = float(np.median(queries["pool"]))
    summary = {
        "n_segments": len(queries["pool"]),
        "n_videos": len(np.unique(np.asarray(video_ids))),
        "pool": pool,
        "pool_min": int(queries["pool"].min()),
        "pool_max": int(queries["pool"].max()),
        "chance": (pool + 1) / 2,
    }
    for direction in ("a2v", "v2a"):
        summary[f"median_rank_{direction}"] = float(np.median(queries[f"rank_{direction}"]))
        summary |= {f"r{k}_{direction}": float(queries[f"r{k}_{direction}"].mean()) for k in RECALL_KS}
    return summary


def main_form(audio, video, video_ids) -> dict:
    """Retrieval a2v and v2a over a whole split, other segments of the query's video left out.

    audio, video: `(n, dim)` paired embeddings of the split's segments; video_ids: `(n,)`.
    Returns `summarise_queries` of `main_form_queries`.
    """
    return summarise_queries(main_form_queries(audio, video, video_ids), video_ids)


def paper_form(
    audio,
    video,
    video_ids,
    seed: int = 0,
    pool_size: int = PAPER_POOL_SIZE,
    min_pool_size: int = PAPER_MIN_POOL_SIZE,
) -> dict | None:
    """Retrieval in pools of `min(pool_size, videos)` segments, one per video; None when too few videos.

    audio, video: `(n, dim)`; video_ids: `(n,)`. Pools come from the one-segment-per-video
    sampler with `seed`, full pools only, so every pool has the same size P and chance is
    (P + 1) / 2. Ranks of all pools are pooled before taking the median.
    """
    video_ids = np.asarray(video_ids)
    size = min(pool_size, len(np.unique(video_ids)))
    if size < min_pool_size:
        return None
    audio, video = np.asarray(audio), np.asarray(video)
    pools = list(OneSegmentPerVideoBatchSampler(video_ids, size, seed=seed, drop_last=True))
    a2v = [retrieval_counts(audio[p], video[p])[:2] for p in pools]
    v2a = [retrieval_counts(video[p], audio[p])[:2] for p in pools]
    return {
        "n_pools": len(pools),
        "pool": size,
        "chance": (size + 1) / 2,
        **_direction_summary("a2v", *map(np.concatenate, zip(*a2v, strict=True))),
        **_direction_summary("v2a", *map(np.concatenate, zip(*v2a, strict=True))),
    }


def _direction_summary(direction: str, greater: np.ndarray, ties: np.ndarray) -> dict:
    """median_rank_<direction> and r<k>_<direction> for k in RECALL_KS."""
    summary = {f"median_rank_{direction}": float(np.median(ranks_from_counts(greater, ties)))}
    for k in RECALL_KS:
        summary[f"r{k}_{direction}"] = float(recalls_from_counts(greater, ties, k).mean())
    return summary


def unit_rows(x) -> np.ndarray:
    """`x` `(n, dim)` as float32 rows of unit length; all-zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"need a (n, dim) array of embeddings, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


# ---------------------------------------------------------------------------------------------
# Collapse: embeddings that no longer tell segments apart
# ---------------------------------------------------------------------------------------------

COLLAPSE_DISTANCE = 1e-4  # median cosine distance between test segments below this: collapsed
COLLAPSE_PAIRS = 20_000  # pairs sampled when there are more


def median_pair_distance(x, max_pairs: int = COLLAPSE_PAIRS, seed: int = 0) -> float:
    """Median over pairs of distinct rows of `x` `(n, dim)` of 1 − cosine similarity.

    Every pair when there are at most `max_pairs`, else `max_pairs` pairs drawn with `seed`.
    Two all-zero rows count as identical (distance 0); a zero row and another, as orthogonal.
    """
    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    if n < 2:
        raise ValueError(f"need at least 2 embeddings to compare, got {n}")
    if n * (n - 1) // 2 <= max_pairs:
        i, j = np.triu_indices(n, k=1)
    else:
        rng = np.random.default_rng(seed)
        i = rng.integers(0, n, max_pairs)
        j = (i + rng.integers(1, n, max_pairs)) % n  # never i itself
    u, zero = unit_rows(x), ~np.any(x != 0, axis=1)
    cosine = np.einsum("pd,pd->p", u[i], u[j])
    cosine[zero[i] & zero[j]] = 1.0
    return float(np.median(1.0 - cosine))


def is_collapsed(x, max_pairs: int = COLLAPSE_PAIRS, seed: int = 0) -> bool:
    """True when `x` `(n, dim)` has collapsed: its median pair distance is below `COLLAPSE_DISTANCE`.

    Such embeddings tie (nearly) every item with every other, so any score on them measures
    the tie-breaking rule, not the model: they are flagged, never scored.
    """
    return median_pair_distance(x, max_pairs, seed) < COLLAPSE_DISTANCE


# ---------------------------------------------------------------------------------------------
# Intervals: a bootstrap over videos
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# Classification metrics for the probes: macro ROC-AUC and macro F1.
#
# Both are computed per label (a genre one-vs-rest, or a tag), then averaged without weights
# over the labels where they are defined. A label with no positive among the evaluated items
# (a genre or tag absent from a small test split) has no AUC and no F1: it is left out of both
# means, never scored 0 or 1, and `per_label_*` returns NaN for it so callers can count it.
# AUC also needs a negative: a label carried by every item is left out of the AUC mean.
# ---------------------------------------------------------------------------------------------


def per_label_roc_auc(y_true, scores) -> np.ndarray:
    """`(n_labels,)` ROC-AUC of each column of `scores` against `y_true`; NaN where undefined.

    y_true: `(n, n_labels)` 0/1 indicators; scores: `(n, n_labels)` real, higher = more likely.
    AUC is the Mann-Whitney probability that a positive outscores a negative, tied scores
    counting one half (mid-ranks). NaN for a label with no positive or no negative.
    """
    y_true, scores = _label_matrices(y_true, scores)
    auc = np.full(y_true.shape[1], np.nan)
    for j in range(y_true.shape[1]):
        positive = y_true[:, j]
        n_pos = int(positive.sum())
        n_neg = len(positive) - n_pos
        if n_pos and n_neg:
            ranks = _mid_ranks(scores[:, j])
            auc[j] = (ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return auc


def macro_roc_auc(y_true, scores) -> float:
    """Unweighted mean of `per_label_roc_auc` over the labels where it is defined; NaN if none is."""
    return _nanmean(per_label_roc_auc(y_true, scores))


def per_label_f1(y_true, y_pred) -> np.ndarray:
    """`(n_labels,)` F1 = 2 TP / (2 TP + FP + FN) of each column; NaN for a label with no positive in
    `y_true`.

    y_true, y_pred: `(n, n_labels)` 0/1 indicators. For one label per item (genre), pass
    one-hot rows of the true and predicted classes: the columns are then the per-class F1 of
    multi-class classification.
    """
    y_true, y_pred = _label_matrices(y_true, y_pred)
    y_pred = y_pred.astype(bool)
    tp = (y_true & y_pred).sum(0)
    fp = (~y_true & y_pred).sum(0)
    fn = (y_true & ~y_pred).sum(0)
    present = y_true.any(0)
    return np.where(present, 2.0 * tp / np.maximum(2 * tp + fp + fn, 1), np.nan)


def macro_f1(y_true, y_pred) -> float:
    """Unweighted mean of `per_label_f1` over the labels present in `y_true`; NaN if none is."""
    return _nanmean(per_label_f1(y_true, y_pred))


def _label_matrices(y_true, other) -> tuple[np.ndarray, np.ndarray]:
    """`y_true` as a bool `(n, n_labels)` matrix and `other` as a float one of the same shape."""
    y_true, other = np.asarray(y_true), np.asarray(other, dtype=np.float64)
    if y_true.ndim != 2 or y_true.shape != other.shape:
        raise ValueError(
            f"need (n, n_labels) label and score/prediction matrices of one shape; "
            f"got {y_true.shape} and {other.shape}"
        )
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("labels must be 0/1 indicators (one column per label)")
    return y_true.astype(bool), other


def _mid_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of `x` `(n,)` in ascending order, tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2.0)[inverse.ravel()]


def _nanmean(values: np.ndarray) -> float:
    """Mean of the finite values, NaN (without a warning) when there are none."""
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


# ---------------------------------------------------------------------------------------------
# The same two scores on resampled sets: items weighted by their integer multiplicities
# ---------------------------------------------------------------------------------------------


def weighted_per_label_roc_auc(y_true, scores, weights) -> np.ndarray:
    """`(d, n_labels)` ROC-AUC of each label on `d` weighted copies of the items; NaN where undefined.

    y_true: `(n, n_labels)` 0/1; scores: `(n, n_labels)`; weights: `(d, n)` non-negative
    integer multiplicities (one resample per row, as from `bootstrap_weights`). Row i of the
    result equals `per_label_roc_auc` on the items repeated `weights[i]` times: the weighted
    Mann-Whitney probability that a positive outscores a negative, ties counting one half.
    """
    y_true, scores = _label_matrices(y_true, scores)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if weights.shape[1] != len(y_true):
        raise ValueError(f"need one weight per item: weights {weights.shape} for {len(y_true)} items")
    auc = np.full((len(weights), y_true.shape[1]), np.nan)
    for j in range(y_true.shape[1]):
        order = np.argsort(scores[:, j], kind="stable")
        values, positive = scores[order, j], y_true[order, j]
        starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])  # first item of each tied group
        w = weights[:, order]
        pos = np.add.reduceat(w * positive, starts, axis=1) if len(starts) else np.zeros((len(w), 0))
        neg = np.add.reduceat(w * ~positive, starts, axis=1) if len(starts) else np.zeros((len(w), 0))
        below = np.cumsum(neg, axis=1) - neg  # negative weight strictly below each group
        n_pos, n_neg = pos.sum(1), neg.sum(1)
        defined = (n_pos > 0) & (n_neg > 0)
        auc[defined, j] = (pos * (below + neg / 2)).sum(1)[defined] / (n_pos * n_neg)[defined]
    return auc


def weighted_per_label_f1(y_true, y_pred, weights) -> np.ndarray:
    """`(d, n_labels)` F1 of each label on `d` weighted copies of the items; NaN for a label with no
    (weighted) positive.

    y_true, y_pred: `(n, n_labels)` 0/1; weights: `(d, n)` integer multiplicities. Row i equals
    `per_label_f1` on the items repeated `weights[i]` times.
    """
    y_true, y_pred = _label_matrices(y_true, y_pred)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if weights.shape[1] != len(y_true):
        raise ValueError(f"need one weight per item: weights {weights.shape} for {len(y_true)} items")
    y_pred = y_pred.astype(bool)
    tp, fp, fn = (weights @ (a & b) for a, b in ((y_true, y_pred), (~y_true, y_pred), (y_true, ~y_pred)))
    present = weights @ y_true > 0
    return np.where(present, 2.0 * tp / np.maximum(2 * tp + fp + fn, 1), np.nan)


def row_nanmean(values: np.ndarray) -> np.ndarray:
    """`(d,)` mean of the finite values of each row of `values` `(d, k)`, NaN (without a warning) for a row
    with none."""
    finite = np.isfinite(values)
    counts = finite.sum(1)
    sums = np.where(finite, values, 0.0).sum(1)
    return np.divide(sums, counts, out=np.full(len(values), np.nan), where=counts > 0)
