"""Properties of the one-segment-per-video batch sampler."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvnb.samplers import OneSegmentPerVideoBatchSampler

# Segments per video (1–8) for 1–40 videos, labelled by strings, shuffled into segment order.
corpora = st.lists(st.integers(1, 8), min_size=1, max_size=40).flatmap(
    lambda counts: st.permutations([f"v{v}" for v, c in enumerate(counts) for _ in range(c)])
)


def epoch(video_ids, batch_size, seed=0, epoch=0, drop_last=False):
    """The sampler and its batches for one epoch; it warns exactly when it must cap the batch."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sampler = OneSegmentPerVideoBatchSampler(video_ids, batch_size, seed=seed, drop_last=drop_last)
    assert len(caught) == (batch_size > len(set(video_ids)))
    sampler.set_epoch(epoch)
    return sampler, list(sampler)


@settings(max_examples=150, deadline=None)
@given(video_ids=corpora, batch_size=st.integers(1, 50), seed=st.integers(0, 3), n_epoch=st.integers(0, 3))
def test_every_segment_once_and_no_video_twice_in_a_batch(video_ids, batch_size, seed, n_epoch):
    video_ids = np.array(video_ids)
    sampler, batches = epoch(video_ids, batch_size, seed, n_epoch)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(video_ids)))
    for batch in batches:
        assert len(set(video_ids[batch])) == len(batch)
    cap = min(batch_size, len(set(video_ids)))
    assert sampler.batch_size == cap
    assert [len(b) for b in batches] == sampler.batch_sizes() and len(sampler) == len(batches)
    assert all(0 < len(b) <= cap for b in batches)
    most = max(np.unique(video_ids, return_counts=True)[1])
    assert len(batches) == max(most, math.ceil(len(video_ids) / cap))


@settings(max_examples=100, deadline=None)
@given(video_ids=corpora, batch_size=st.integers(1, 50))
def test_drop_last_keeps_only_full_batches(video_ids, batch_size):
    video_ids = np.array(video_ids)
    sampler, batches = epoch(video_ids, batch_size, drop_last=True)
    assert all(len(b) == sampler.batch_size for b in batches)
    assert len(sampler) == len(batches)
    full = sum(1 for b in epoch(video_ids, batch_size)[1] if len(b) == sampler.batch_size)
    assert len(batches) == full


@settings(max_examples=50, deadline=None)
@given(video_ids=corpora, batch_size=st.integers(1, 50), seed=st.integers(0, 100))
def test_same_seed_and_epoch_same_batches(video_ids, batch_size, seed):
    assert epoch(video_ids, batch_size, seed, 2)[1] == epoch(video_ids, batch_size, seed, 2)[1]


def test_epochs_and_seeds_differ():
    video_ids = np.repeat(np.arange(200), 6)
    first = epoch(video_ids, 50, seed=0, epoch=0)[1]
    assert first != epoch(video_ids, 50, seed=0, epoch=1)[1]
    assert first != epoch(video_ids, 50, seed=1, epoch=0)[1]


def test_batches_mix_videos_across_rounds():
    """Within an epoch, one video's later segments meet different partners, not the same batch again."""
    video_ids = np.repeat(np.arange(100), 6)
    batches = epoch(video_ids, 10)[1]
    partners = {frozenset(video_ids[b]) for b in batches}
    assert len(partners) == len(batches)


def test_oversized_batch_warns_and_caps():
    with pytest.warns(UserWarning, match="capped at 3"):
        sampler = OneSegmentPerVideoBatchSampler(["a", "a", "b", "c"], batch_size=10)
    assert sampler.batch_size == 3
    assert sorted(len(b) for b in sampler) == [1, 3]


def test_empty_input_yields_nothing():
    assert list(OneSegmentPerVideoBatchSampler([], batch_size=4)) == []


def test_batch_size_below_one_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 1"):
        OneSegmentPerVideoBatchSampler(["a"], batch_size=0)


def test_each_segment_of_a_video_equally_likely_first():
    """Over 2000 epochs, the first batch holds each of a video's 4 segments about 500 times
    (binomial sd ≈ 19; allow 5 sd)."""
    video_ids = np.repeat(np.arange(3), 4)
    sampler = OneSegmentPerVideoBatchSampler(video_ids, 3)
    firsts = []
    for n in range(2000):
        sampler.set_epoch(n)
        firsts += next(iter(sampler))
    counts = np.bincount(firsts, minlength=12)
    assert np.all(np.abs(counts - 500) <= 5 * np.sqrt(2000 * 0.25 * 0.75))
