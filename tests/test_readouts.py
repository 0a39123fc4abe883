"""Read-outs of the music's ground truth: they recover what is linearly there, find nothing where nothing
is, score as sklearn does, and join the factor table to segments by overlap."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import r2_score, roc_auc_score

from mvnb import readouts
from mvnb.metrics import weighted_per_label_roc_auc


def planted(seed=0, n_videos=60, segments=3, dim=40, noise=0.1):
    """Features with a factor planted along one random direction (plus noise), constant within a video."""
    rng = np.random.default_rng(seed)
    factor = np.repeat(rng.normal(size=n_videos), segments)
    x = rng.normal(size=(n_videos * segments, dim)) + np.outer(factor, rng.normal(size=dim)) * 3
    groups = np.repeat([f"v{i}" for i in range(n_videos)], segments)
    return x + noise * rng.normal(size=x.shape), factor + noise * rng.normal(size=len(factor)), groups


def test_a_planted_factor_is_recovered_and_a_shuffled_one_is_not():
    x, y, groups = planted()
    found = readouts.readout(x, y, groups, "tempo_bpm", n_draws=200)
    assert found["score"] > 0.9 and found["low"] > 0.8 and found["metric"] == "R²"
    shuffled = np.random.default_rng(1).permutation(y)
    nothing = readouts.readout(x, shuffled, groups, "tempo_bpm", n_draws=200)
    assert nothing["score"] <= 0.05 and nothing["low"] <= 0 <= nothing["high"] + 0.05


def test_binary_and_categorical_read_outs_are_aucs():
    x, y, groups = planted(seed=2)
    minor = readouts.readout(x, (y > 0).astype(float), groups, "minor", n_draws=100)
    assert minor["metric"] == "AUC" and minor["chance"] == 0.5 and minor["score"] > 0.95
    leads = np.array(readouts.LEADS)[np.digitize(y, np.quantile(y, [0.25, 0.5, 0.75]))]
    lead = readouts.readout(x, leads, groups, "lead", n_draws=100)
    assert lead["score"] > 0.85
    noise = readouts.readout(x, np.random.default_rng(3).permutation(leads), groups, "lead", n_draws=100)
    assert abs(noise["score"] - 0.5) < 0.1


def test_held_out_predictions_never_see_their_own_video():
    """A factor that is pure per-video noise with a lookup-table feature: memorising training videos
    cannot predict held-out ones, so the held-out R² stays at or below 0."""
    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(50), 4)
    y = np.repeat(rng.normal(size=50), 4)
    x = np.eye(50)[groups]  # one-hot video identity
    assert readouts.readout(x, y, groups, "energy", n_draws=50)["score"] <= 0.05


@settings(max_examples=25, deadline=None)
@given(n=st.integers(4, 30), seed=st.integers(0, 999))
def test_weighted_scores_equal_sklearn_on_repeated_rows(n, seed):
    rng = np.random.default_rng(seed)
    y, pred = rng.normal(size=n), rng.normal(size=n)
    positive = (np.arange(n) % 2).astype(float)
    scores = np.round(rng.normal(size=n), 1)  # ties
    weights = rng.integers(0, 3, size=(5, n))
    weights[:, :2] += 1  # at least one positive and one negative in every draw
    for w, r2, auc in zip(
        weights,
        readouts.weighted_r2(y, pred, weights),
        weighted_per_label_roc_auc(positive[:, None], scores[:, None], weights)[:, 0],
        strict=True,
    ):
        rows = np.repeat(np.arange(n), w)
        if np.ptp(y[rows]) > 0:
            assert r2 == pytest.approx(r2_score(y[rows], pred[rows]))
        assert auc == pytest.approx(roc_auc_score(positive[rows], scores[rows]))


def test_segment_factors_weigh_each_step_by_its_overlap():
    factors = pd.DataFrame(
        {
            "video_id": "a",
            "source": "heard",
            "t_s": [0.0, 1.0, 2.0, 3.0],
            "energy": [0.0, 1.0, 2.0, 3.0],
            "onset_density": 4.0,
            "tempo_bpm": 120.0,
            "key_sin": 0.0,
            "key_cos": 1.0,
            "minor": 1.0,
            "distortion": 0.0,
            "lead": "pad",
        }
    )
    manifest = pd.DataFrame(
        {"video_id": ["a", "a", "b"], "start_s": [0.5, 1.0, 0.0], "end_s": [2.5, 3.0, 1.0]}
    )
    out = readouts.segment_factors(manifest, factors)
    assert out.loc[0, "energy"] == pytest.approx((0.5 * 0 + 1 * 1 + 0.5 * 2) / 2)
    assert (
        out.loc[1, "energy"] == pytest.approx(1.5)
        and out.loc[1, "lead"] == "pad"
        and out.loc[1, "minor"] == 1
    )
    assert out.loc[2].isna().all()  # no ground truth for video b
    assert readouts.segment_factors(manifest, factors, "phantom")["energy"].isna().all()
