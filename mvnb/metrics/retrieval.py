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
