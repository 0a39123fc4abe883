"""Batches with at most one segment of a given video, as the paper trains.

Two segments of one music video are more alike than any other pair; in one batch, each would
be the other's hardest negative. `OneSegmentPerVideoBatchSampler` therefore builds batches of
distinct videos while still using every segment once per epoch (the authors' code used only
one segment per video).

Rule: each batch takes the `batch_size` videos with the most segments left this epoch, ties
broken at random, and one not yet used segment of each, chosen at random. Taking the fullest
videos first is what lets every batch but the last few be full: an epoch has exactly
max(most segments of one video, ⌈segments / batch_size⌉) batches, the fewest possible.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np


class OneSegmentPerVideoBatchSampler:
    """Yields lists of segment indices; no list holds two segments of one video.

    video_ids: `(n_segments,)` the video of each segment (any hashable labels numpy can sort).
    batch_size: capped, with a warning, at the number of distinct videos.
    seed, `set_epoch(epoch)`: the batches are a function of (seed, epoch) alone.
    drop_last: leave out the batches smaller than `batch_size` (the last few of the epoch).
    """

    def __init__(self, video_ids, batch_size: int, seed: int = 0, drop_last: bool = False) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        video_ids = np.asarray(video_ids)
        grouped = np.argsort(video_ids, kind="stable")  # segment indices, grouped by video
        labels = video_ids[grouped]
        starts = (
            np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]]) if len(labels) else np.zeros(0, np.int64)
        )
        counts = np.diff(np.r_[starts, len(labels)])
        n_videos = len(counts)
        if batch_size > n_videos > 0:
            warnings.warn(
                f"batch size {batch_size} exceeds the {n_videos} distinct videos; capped at {n_videos} "
                "so that no batch holds two segments of one video",
                stacklevel=2,
            )
            batch_size = n_videos
        self.batch_size = batch_size
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        # Index arrays are the sampler's only per-segment memory: int32 where it fits.
        self._grouped = grouped.astype(np.int32 if len(grouped) < 2**31 else np.int64)
        self._starts = starts.astype(np.int64)
        self._counts = counts

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose batches `__iter__` yields next."""
        self.epoch = epoch

    def batch_sizes(self) -> list[int]:
        """Sizes of the batches an epoch yields, in order (the same for every epoch)."""
        remaining = np.bincount(self._counts) if len(self._counts) else np.zeros(1, dtype=np.int64)
        sizes = []
        while remaining[1:].any():
            taken = np.zeros_like(remaining)
            need = self.batch_size
            for tier in range(len(remaining) - 1, 0, -1):
                taken[tier] = min(remaining[tier], need)
                need -= taken[tier]
            if need and self.drop_last:
                break
            remaining -= taken
            remaining[:-1] += taken[1:]
            sizes.append(self.batch_size - need)
        return sizes

    def __len__(self) -> int:
        return len(self.batch_sizes())

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        # Per video, its unused segments sit first in its range of `slots`; a pick draws one of
        # them at random and swaps it behind them (Fisher–Yates, one step per batch).
        slots = self._grouped.copy()
        remaining = self._counts.copy()
        tiers = _VideoTiers(self._counts, rng)
        while tiers.top:
            videos = tiers.take(self.batch_size)
            if len(videos) < self.batch_size and self.drop_last:
                return
            left = remaining[videos]
            pick = self._starts[videos] + (rng.random(len(videos)) * left).astype(np.int64)
            last = self._starts[videos] + left - 1
            chosen = slots[pick]
            slots[pick] = slots[last]
            slots[last] = chosen
            remaining[videos] -= 1
            yield chosen.tolist()


class _VideoTiers:
    """Videos grouped by how many segments they have left; takes the fullest first.

    Each tier is a list of index chunks; a tier that received chunks since it was last
    shuffled is shuffled (once) before it is next taken from, so every batch draws its ties
    at random in O(batch) time on average.
    """

    def __init__(self, counts: np.ndarray, rng: np.random.Generator) -> None:
        self.rng = rng
        self.chunks: dict[int, list[np.ndarray]] = {
            int(c): [np.flatnonzero(counts == c)] for c in np.unique(counts) if c > 0
        }
        self.unshuffled = set(self.chunks)
        self.top = max(self.chunks, default=0)

    def take(self, n: int) -> np.ndarray:
        """Up to `n` distinct videos, fullest first; each moves down one tier."""
        picked: list[tuple[int, np.ndarray]] = []
        need = n
        for tier in range(self.top, 0, -1):
            if not need:
                break
            if not self.chunks.get(tier):
                continue
            members = self._members(tier)
            picked.append((tier, members[:need]))
            self.chunks[tier] = [members[need:]] if len(members) > need else []
            need -= len(picked[-1][1])
        for tier, videos in picked:
            if tier > 1:
                self.chunks.setdefault(tier - 1, []).append(videos)
                self.unshuffled.add(tier - 1)
        while self.top and not self.chunks.get(self.top):
            self.top -= 1
        return np.concatenate([videos for _, videos in picked])

    def _members(self, tier: int) -> np.ndarray:
        if tier in self.unshuffled:
            self.chunks[tier] = [self.rng.permutation(np.concatenate(self.chunks[tier]))]
            self.unshuffled.discard(tier)
        return self.chunks[tier][0]
