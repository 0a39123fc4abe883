"""The bootstrap over videos: whole videos per draw, strata kept, weighted medians, coverage."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvnb.metrics import bootstrap_interval, bootstrap_weights, weighted_median


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5), min_size=1, max_size=12),
    n_strata=st.integers(1, 3),
    seed=st.integers(0, 999),
)
def test_bootstrap_never_splits_a_video_and_keeps_each_strata_size(sizes, n_strata, seed):
    groups = np.repeat([f"v{i}" for i in range(len(sizes))], sizes)
    strata = np.repeat(np.arange(len(sizes)) % n_strata, sizes)
    w = bootstrap_weights(groups, 20, seed, strata)
    assert w.shape == (20, len(groups))
    for g in np.unique(groups):
        block = w[:, groups == g]
        assert (block == block[:, :1]).all()  # a video comes whole, or not at all
    for s in np.unique(strata):
        videos = np.unique(groups[strata == s])
        first = np.array([np.flatnonzero(groups == v)[0] for v in videos])
        assert (w[:, first].sum(1) == len(videos)).all()  # as many videos drawn as the stratum has


def test_bootstrap_refuses_a_video_in_two_strata():
    with pytest.raises(ValueError, match="single stratum"):
        bootstrap_weights(["a", "a", "b"], 5, 0, [0, 1, 1])


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.integers(-5, 5), min_size=1, max_size=20), seed=st.integers(0, 999))
def test_weighted_median_is_the_median_of_the_repeated_values(values, seed):
    values = np.array(values, dtype=float)
    weights = np.random.default_rng(seed).integers(0, 3, size=(6, len(values)))
    weights[:, 0] += 1  # every draw keeps at least one value
    expected = [np.median(np.repeat(values, w)) for w in weights]
    np.testing.assert_array_equal(weighted_median(values, weights), expected)


def test_bootstrap_interval_covers_the_true_median_about_95_percent_of_the_time():
    """Videos of 1-6 segments, a random effect per video (so segments of a video are correlated):
    over 300 repeated test sets the 95 % interval must hold the population median (0) in
    90-99 % of them; an interval that ignored the grouping would cover too rarely."""
    rng = np.random.default_rng(0)
    covered = []
    for _ in range(300):
        sizes = rng.integers(1, 7, size=40)
        groups = np.repeat(np.arange(40), sizes)
        values = np.repeat(rng.normal(size=40), sizes) + 0.5 * rng.normal(size=len(groups))
        _, low, high = bootstrap_interval(values, groups, n_draws=400, seed=int(rng.integers(1 << 30)))
        covered.append(low <= 0 <= high)
    assert 0.90 <= np.mean(covered) <= 0.99, np.mean(covered)


def test_bootstrap_interval_of_identical_values_is_a_point():
    assert bootstrap_interval(np.full(12, 3.0), np.repeat(np.arange(4), 3)) == (3.0, 3.0, 3.0)
    assert bootstrap_interval(np.arange(6.0), np.arange(6), "mean")[0] == 2.5
