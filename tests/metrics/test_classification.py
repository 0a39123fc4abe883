"""Macro ROC-AUC and macro F1 against scikit-learn, including labels absent from the evaluated items; their
weighted forms against the same scores on explicitly repeated rows."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score, roc_auc_score

from mvnb.metrics import (
    bootstrap_weights,
    macro_f1,
    macro_roc_auc,
    per_label_f1,
    per_label_roc_auc,
    row_nanmean,
    weighted_per_label_f1,
    weighted_per_label_roc_auc,
)


def random_case(seed: int, n: int, n_labels: int, absent: int = 0, tied: bool = False):
    """Random 0/1 labels `(n, n_labels)`, scores and thresholded predictions; the first `absent` labels have
    no positive."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, n_labels)) < rng.uniform(0.1, 0.7, n_labels)).astype(int)
    y[:, :absent] = 0
    scores = rng.integers(0, 4, (n, n_labels)).astype(float) if tied else rng.normal(size=(n, n_labels)) + y
    return y, scores, (scores > np.median(scores)).astype(int)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 60), n_labels=st.integers(1, 12), tied=st.booleans())
def test_auc_agrees_with_sklearn_per_label(seed, n, n_labels, tied):
    y, scores, _ = random_case(seed, n, n_labels, tied=tied)
    ours = per_label_roc_auc(y, scores)
    for j in range(n_labels):
        if 0 < y[:, j].sum() < n:
            assert ours[j] == pytest.approx(roc_auc_score(y[:, j], scores[:, j]), abs=1e-12)
        else:
            assert np.isnan(ours[j])


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 60),
    n_labels=st.integers(2, 12),
    absent=st.integers(0, 2),
)
def test_macro_scores_agree_with_sklearn_over_present_labels(seed, n, n_labels, absent):
    """A label absent from the evaluated items is left out of both macro means: sklearn's per-label scores
    over the rest.

    (sklearn's own average="macro" would treat a single remaining column as binary and average
    classes 0 and 1, so the mean over columns is taken here.)
    """
    y, scores, pred = random_case(seed, n, n_labels, absent=min(absent, n_labels - 1))
    present = y.any(0)
    if present.any():
        expected_f1 = np.mean(
            [f1_score(y[:, j], pred[:, j], zero_division=0) for j in np.flatnonzero(present)]
        )
        assert macro_f1(y, pred) == pytest.approx(expected_f1, abs=1e-12)
    auc_defined = present & ~y.all(0)
    if auc_defined.any():
        expected_auc = np.mean([roc_auc_score(y[:, j], scores[:, j]) for j in np.flatnonzero(auc_defined)])
        assert macro_roc_auc(y, scores) == pytest.approx(expected_auc, abs=1e-12)
    assert np.isnan(per_label_f1(y, pred)[~present]).all()
    assert np.isnan(per_label_roc_auc(y, scores)[~present]).all()


def test_multiclass_f1_from_one_hot_rows_is_sklearn_macro_f1_over_present_classes():
    rng = np.random.default_rng(0)
    n_classes = 6
    true = rng.integers(0, n_classes - 1, 80)  # the last class never occurs
    pred = np.where(rng.random(80) < 0.5, true, rng.integers(0, n_classes, 80))
    eye = np.eye(n_classes, dtype=int)
    expected = f1_score(true, pred, labels=np.unique(true), average="macro", zero_division=0)
    assert macro_f1(eye[true], eye[pred]) == pytest.approx(expected, abs=1e-12)


def test_multiclass_auc_is_one_vs_rest_macro():
    rng = np.random.default_rng(1)
    true = np.repeat(np.arange(4), 10)
    scores = rng.normal(size=(40, 4)) + np.eye(4)[true]
    probs = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    expected = roc_auc_score(true, probs, multi_class="ovr", average="macro")
    assert macro_roc_auc(np.eye(4, dtype=int)[true], probs) == pytest.approx(expected, abs=1e-12)


def test_analytic_cases():
    y = np.array([[1], [1], [0], [0]])
    assert macro_roc_auc(y, np.array([[0.9], [0.8], [0.1], [0.2]])) == 1.0
    assert macro_roc_auc(y, np.array([[0.1], [0.2], [0.9], [0.8]])) == 0.0
    assert macro_roc_auc(y, np.full((4, 1), 0.5)) == 0.5  # constant scores: all ties, chance
    assert macro_f1(y, y) == 1.0
    assert macro_f1(y, 1 - y) == 0.0


def test_nothing_defined_gives_nan_not_an_error():
    y = np.zeros((3, 2), dtype=int)
    assert np.isnan(macro_roc_auc(y, np.random.default_rng(0).random((3, 2))))
    assert np.isnan(macro_f1(y, np.ones((3, 2), dtype=int)))


def test_bad_input_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="one shape"):
        macro_roc_auc(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="0/1"):
        macro_f1(np.full((3, 2), 2), np.zeros((3, 2)))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 40),
    n_labels=st.integers(1, 6),
    tied=st.booleans(),
    draws=st.integers(1, 5),
)
def test_weighted_scores_equal_the_scores_of_repeated_rows(seed, n, n_labels, tied, draws):
    """Integer weights, zeros included, are the rows repeated that many times: per label and per macro
    mean."""
    y, scores, pred = random_case(seed, n, n_labels, tied=tied)
    weights = np.random.default_rng(seed).integers(0, 4, (draws, n))
    auc, f1 = weighted_per_label_roc_auc(y, scores, weights), weighted_per_label_f1(y, pred, weights)
    for d, w in enumerate(weights):
        repeated = [np.repeat(a, w, axis=0) for a in (y, scores, pred)]
        np.testing.assert_allclose(auc[d], per_label_roc_auc(*repeated[:2]), atol=1e-12)
        np.testing.assert_allclose(f1[d], per_label_f1(repeated[0], repeated[2]), atol=1e-12)
        np.testing.assert_allclose(row_nanmean(auc)[d], macro_roc_auc(*repeated[:2]), atol=1e-12)
        np.testing.assert_allclose(row_nanmean(f1)[d], macro_f1(repeated[0], repeated[2]), atol=1e-12)


def test_weighted_scores_of_bootstrap_draws_over_groups_equal_the_resampled_sets():
    """The way Table 2 uses them: the weights of resampled videos, applied to the videos' segments."""
    y, scores, pred = random_case(3, 30, 4)
    videos = np.repeat(np.arange(10), 3)
    weights = bootstrap_weights(videos, 50, seed=1)
    auc = row_nanmean(weighted_per_label_roc_auc(y, scores, weights))
    for d, w in enumerate(weights):
        assert auc[d] == pytest.approx(
            macro_roc_auc(np.repeat(y, w, 0), np.repeat(scores, w, 0)), nan_ok=True
        )


def test_weights_must_cover_every_item():
    y, scores, pred = random_case(0, 5, 2)
    with pytest.raises(ValueError, match="one weight per item"):
        weighted_per_label_roc_auc(y, scores, np.ones((2, 4)))
    with pytest.raises(ValueError, match="one weight per item"):
        weighted_per_label_f1(y, pred, np.ones(6))
