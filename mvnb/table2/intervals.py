"""Table 2's intervals over test videos: a row's pooled test predictions, the test videos resampled
within rotations, a metric on every resample, and the percentile interval of the resampled values.

Each probe predicts its test fold once. A row pools the test predictions of its healthy runs,
over rotations and seeds, and scores AUC and F1 on them together (`pooled_outputs`); a
percentile bootstrap resamples test videos within each rotation (`resample_test_videos`: a video
brings its segments, and its predictions from every seed) and recomputes AUC and F1 on each
resampled set, with the videos' multiplicities as integer weights (`row_draws`). All rows share
the draws, so two rows are compared paired, over the same resampled videos (`mvnb.table2.findings`).
"""

from __future__ import annotations

import numpy as np

from mvnb.metrics import (
    BOOTSTRAP_DRAWS,
    bootstrap_weights,
    row_nanmean,
    weighted_per_label_f1,
    weighted_per_label_roc_auc,
)
from mvnb.probes.labels import ProbeTask
from mvnb.probes.scores import METRICS, ProbeResult, at_level, metric_outputs


def level_predictions(
    result: ProbeResult, task: ProbeTask, video_ids, level: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A probe's test predictions at `level`: `(videos (n,), targets (n, k), probabilities (n, k))`, one row
    per
    test segment, or per test video (probabilities averaged over its segments, videos in sorted id order)."""
    videos = np.asarray(video_ids)[result.test_rows]
    targets, probs = at_level(task.targets[result.test_rows], result.test_probs, videos, level)
    return (videos if level == "segment" else np.unique(videos)), targets, probs


def pooled_outputs(
    results: list[ProbeResult], task: ProbeTask, video_ids, level: str
) -> tuple[np.ndarray, np.ndarray, dict]:
    """The test predictions of several probes of one row (its healthy seeds), stacked:
    `(videos (n,), targets (n, k), {metric: (n, k)})`, the outputs that each of `METRICS[task]` scores."""
    parts = []
    for result in results:
        videos, targets, probs = level_predictions(result, task, video_ids, level)
        parts.append(
            (videos, targets, metric_outputs(probs, task.multilabel, result.scores[f"threshold_{level}"]))
        )
    outputs = {m: np.concatenate([p[2][m] for p in parts]) for m in METRICS[task.name]}
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), outputs


def metric_on_weights(
    metric: str, targets: np.ndarray, output: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """`(d,)` macro `metric` ("auc" or an F1) of items weighted by each row of `weights` `(d, n)`."""
    per_label = (weighted_per_label_roc_auc if metric == "auc" else weighted_per_label_f1)(
        targets, output, weights
    )
    return row_nanmean(per_label)


def resample_test_videos(
    task: ProbeTask, tested, video_ids, n_draws: int = BOOTSTRAP_DRAWS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The test videos labelled for `task` and the multiplicities of `n_draws` resamples of them.

    tested: `(n_segments,)` the rotation in which each segment's video is tested, −1 where none
    of the report's rotations tests it (`mvnb.corpus.rotation_tested`). Each resample draws, within
    each rotation, as many of its test videos as it has (`metrics.bootstrap_weights`). Returns
    `(videos (v,), weights (n_draws, v))`.
    """
    ids, tested = np.asarray(video_ids), np.asarray(tested)
    keep = (tested >= 0) & task.labelled
    videos, first = np.unique(ids[keep], return_index=True)
    return videos, bootstrap_weights(videos, n_draws, seed, tested[keep][first])


def item_index(videos: np.ndarray, item_videos: np.ndarray) -> np.ndarray:
    """`(n,)` the position in sorted `videos` of each item's video; ValueError when one is not there."""
    index = np.searchsorted(videos, item_videos)
    if (index >= len(videos)).any() or (videos[np.minimum(index, len(videos) - 1)] != item_videos).any():
        raise ValueError("a test prediction belongs to a video outside the task's test videos")
    return index


def row_draws(
    targets: np.ndarray, outputs: dict, item_videos: np.ndarray, videos: np.ndarray, weights: np.ndarray
) -> dict[str, tuple[float, np.ndarray]]:
    """Per metric, the estimate on the items as they are and its values on each resample: `{metric:
    (estimate, (d,))}`.

    item_videos: `(n,)` the video of each item; videos, weights: `resample_test_videos`.
    """
    index = item_index(videos, item_videos)
    out = {}
    for metric, output in outputs.items():
        estimate = float(metric_on_weights(metric, targets, output, np.ones((1, len(targets))))[0])
        draws = np.concatenate(
            [
                metric_on_weights(metric, targets, output, weights[lo : lo + 256][:, index])
                for lo in range(0, len(weights), 256)
            ]
        )
        out[metric] = estimate, draws
    return out


def percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile interval of the finite `values` at `level`; NaNs when none is finite."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return np.nan, np.nan
    low, high = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)
