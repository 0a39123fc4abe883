"""Classification metrics for the probes: macro ROC-AUC and macro F1, and both on resampled sets.

Both are computed per label (a genre one-vs-rest, or a tag), then averaged without weights
over the labels where they are defined. A label with no positive among the evaluated items
(a genre or tag absent from a small test split) has no AUC and no F1: it is left out of both
means, never scored 0 or 1, and `per_label_*` returns NaN for it so callers can count it.
AUC also needs a negative: a label carried by every item is left out of the AUC mean.
The `weighted_*` forms score items weighted by their integer multiplicities (bootstrap draws).
"""

from __future__ import annotations

import numpy as np


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
    return finite_mean(per_label_roc_auc(y_true, scores))


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
    return finite_mean(per_label_f1(y_true, y_pred))


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


def finite_mean(values: np.ndarray) -> float:
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
