"""Table 2's figures: the per-label AUC of the best tagging row with its intervals, and the genre
confusion matrix of the best genre row (`best_row` picks them); the notebook saves them.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mvnb.metrics import BOOTSTRAP_DRAWS, INTERVAL_LEVEL, per_label_roc_auc, weighted_per_label_roc_auc
from mvnb.probes.labels import ProbeTask
from mvnb.probes.scores import REFERENCE_CONFIG
from mvnb.table2.intervals import item_index, percentile_interval, pooled_outputs, resample_test_videos


def best_row(
    table: pd.DataFrame, task: str, level: str = "segment", metric: str = "auc"
) -> tuple[str, str] | None:
    """`(embedding, config)` of the probed row (not a reference) with the highest `metric` on `task`, or
    None."""
    rows = table[
        (table["task"] == task)
        & (table["metric"] == metric)
        & (table["level"] == level)
        & (table["config"] != REFERENCE_CONFIG)
    ]
    rows = rows[np.isfinite(rows["estimate"].astype(float))]
    if rows.empty:
        return None
    best = rows.loc[rows["estimate"].astype(float).idxmax()]
    return best["embedding"], best["config"]


def per_label_auc(
    results: dict,
    task: ProbeTask,
    embedding: str,
    config: str,
    tested,
    video_ids,
    level: str = "segment",
    n_draws: int = BOOTSTRAP_DRAWS,
    interval: float = INTERVAL_LEVEL,
    seed: int = 0,
) -> pd.DataFrame:
    """Per-label test AUC of one row on its pooled test predictions (every run of it in `results`),
    with the 95 % interval of `table2`'s bootstrap (test videos resampled within rotations).

    tested, video_ids: as for `table2`. Returns `label, estimate, low, high, test_videos` (the
    test videos carrying the label); NaN where a label has no positive or no negative.
    """
    runs = [r for k, r in results.items() if k[:3] == (embedding, config, task.name)]
    if not runs:
        return pd.DataFrame(columns=["label", "estimate", "low", "high", "test_videos"])
    item_videos, targets, outputs = pooled_outputs(runs, task, video_ids, level)
    videos, weights = resample_test_videos(task, tested, video_ids, n_draws, seed)
    index = item_index(videos, item_videos)
    values = np.concatenate(
        [
            weighted_per_label_roc_auc(targets, outputs["auc"], weights[lo : lo + 256][:, index])
            for lo in range(0, len(weights), 256)
        ]
    )
    bounds = np.array([percentile_interval(values[:, j], interval) for j in range(len(task.labels))]).reshape(
        -1, 2
    )
    positives = pd.DataFrame(targets.astype(bool), columns=list(task.labels)).groupby(item_videos).any().sum()
    return pd.DataFrame(
        {
            "label": task.labels,
            "estimate": per_label_roc_auc(targets, outputs["auc"]),
            "low": bounds[:, 0],
            "high": bounds[:, 1],
            "test_videos": positives.loc[list(task.labels)].to_numpy(),
        }
    )


def per_label_auc_figure(frame: pd.DataFrame, title: str) -> plt.Figure:
    """Bar chart of per-label AUC with its 95 % interval, the chance line at 0.5; labels without an AUC say
    why.

    frame: `per_label_auc`'s table (`label, estimate, low, high, test_videos`).
    """
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(frame) + 2), 3.4))
    positions = np.arange(len(frame))
    estimate = frame["estimate"].astype(float)
    spread = np.vstack([estimate - frame["low"].astype(float), frame["high"].astype(float) - estimate])
    ax.bar(positions, estimate.fillna(0), yerr=np.nan_to_num(spread), color="tab:blue", capsize=3)
    for i in np.flatnonzero(estimate.isna().to_numpy()):
        why = "absent\nfrom test" if frame["test_videos"].iloc[i] == 0 else "no negative\nin test"
        ax.text(i, 0.02, why, ha="center", va="bottom", fontsize=7, rotation=90)
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="chance")
    ticks = [f"{label} ({n:g})" for label, n in zip(frame["label"], frame["test_videos"], strict=True)]
    ax.set_xticks(positions, ticks, rotation=45, ha="right")
    ax.set(ylim=(0, 1), ylabel="test ROC-AUC", xlabel="tag (test videos carrying it)", title=title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def genre_confusion(results: dict, embedding: str, config: str, task: ProbeTask) -> pd.DataFrame:
    """Test-segment counts, summed over runs (rotations and seeds), of true genre (rows) × predicted genre
    (columns)."""
    counts = np.zeros((len(task.labels), len(task.labels)), dtype=int)
    for key, result in results.items():
        if key[:3] == (embedding, config, task.name):
            true = task.targets[result.test_rows].argmax(1)
            np.add.at(counts, (true, result.test_probs.argmax(1)), 1)
    return pd.DataFrame(
        counts, index=pd.Index(task.labels, name="true"), columns=pd.Index(task.labels, name="predicted")
    )


def confusion_figure(counts: pd.DataFrame, title: str) -> plt.Figure:
    """Row-normalised confusion matrix with the counts written in each cell; empty rows stay blank."""
    values = counts.to_numpy(dtype=float)
    totals = values.sum(1, keepdims=True)
    share = np.divide(values, totals, out=np.full_like(values, np.nan), where=totals > 0)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(counts), 0.8 + 0.55 * len(counts)))
    image = ax.imshow(share, vmin=0, vmax=1, cmap="Blues")
    for (i, j), n in np.ndenumerate(values):
        if n:
            ax.text(
                j,
                i,
                int(n),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if share[i, j] > 0.6 else "black",
            )
    ax.set_xticks(range(len(counts)), counts.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(counts)), counts.index)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(image, ax=ax, label="share of the true genre's test segments")
    fig.tight_layout()
    return fig
