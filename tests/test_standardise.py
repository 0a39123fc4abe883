"""Input standardisation: block-wise statistics equal numpy's, constant dimensions are only centred,
and the module applies exactly what `Stats.apply` does."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mvnb.standardise import MIN_SD, Standardise, fit, standardise


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 60), views=st.integers(1, 3), block=st.integers(1, 17), seed=st.integers(0, 2**16))
def test_block_statistics_equal_numpy_over_all_views_of_the_rows(n, views, block, seed):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, views, 5)) * [1, 100, 1e-3, 7, 0] + [0, 300, 5, -2, 42]).astype(np.float16)
    rows = rng.choice(n, size=max(1, n // 2), replace=False)
    stats = fit(x, rows, block_rows=block)
    flat = x[np.sort(rows)].astype(np.float64).reshape(-1, 5)
    np.testing.assert_allclose(stats.mean, flat.mean(0), rtol=1e-9, atol=1e-9)
    sd = flat.std(0)
    np.testing.assert_allclose(stats.scale, np.where(sd > MIN_SD, sd, 1.0), rtol=1e-7)


def test_constant_dimensions_are_only_centred_and_others_get_unit_sd():
    x = np.stack([np.arange(10.0), np.full(10, 266.0)], axis=1)
    z = standardise(x, np.arange(10))
    assert (
        np.all(z[:, 1] == 0)
        and z[:, 0].std() == pytest.approx(1)
        and z[:, 0].mean() == pytest.approx(0, abs=1e-6)
    )


def test_only_training_rows_set_the_statistics():
    x = np.concatenate([np.zeros((5, 2)), np.full((5, 2), 1e6)])
    stats = fit(x, np.arange(5))
    assert np.all(stats.mean == 0) and np.all(stats.scale == 1)


def test_module_applies_the_same_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(5, 30, size=(50, 7)).astype(np.float32)
    stats = fit(x)
    module = Standardise(7).set_stats(stats)
    np.testing.assert_allclose(module(torch.from_numpy(x)).numpy(), stats.apply(x), rtol=1e-5, atol=1e-5)
    assert set(module.state_dict()) == {"mean", "scale"}


def test_no_training_rows_is_a_clear_error():
    with pytest.raises(ValueError, match="no training rows"):
        fit(np.ones((3, 2)), np.array([], dtype=int))
