"""Scoring a probe's test predictions, and the reference predictors scored by the same code.

**Scores** (`METRICS`), on the test split, at two levels, since the paper does not say which
it used: per segment, and per video with segment probabilities averaged over the video's
segments. Macro ROC-AUC and macro F1 (`mvnb.metrics`): per label, then the unweighted mean over
the labels where they are defined (a label with no test video has neither; it is counted in
`labels_absent` and named in Table 2). Genre F1 takes the arg-max class. Tag F1 is reported
twice, each labelled: at the fixed threshold 0.5 (`f1@0.5`), and at one threshold shared by all
tags chosen on the validation split at the same level (`f1@val`: the value of `THRESHOLDS` with
the highest validation macro F1, the one nearest 0.5 on ties, 0.5 when validation has no
positive tag). The paper does not say which threshold its F1 used.

**Reference rows** (`REFERENCES`), scored by the same code, per rotation: the constant predictor
of the training priors (every label's share of the rotation's training videos, for every item:
AUC 0.5 within a rotation, near it pooled), every tag positive (tag F1), and the majority
training genre (genre F1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mvnb.embeddings import video_means
from mvnb.metrics import finite_mean, macro_f1, per_label_f1, per_label_roc_auc
from mvnb.probes.labels import TASKS, ProbeTask, task_rows

LEVELS = ("segment", "video")
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)
METRICS = {
    "tags": ("auc", "f1@0.5", "f1@val"),
    "genre": ("auc", "f1"),
}  # per task, as in `ProbeResult.scores`
REFERENCE_CONFIG = "reference"  # the `config` of the reference rows
REFERENCES = {
    "prior": TASKS,
    "all tags positive": ("tags",),
    "majority genre": ("genre",),
}  # name → tasks it scores


@dataclass
class ProbeResult:
    """One probe (or reference predictor) tested.

    scores: flat numbers: `<metric>_<level>` for each of the task's `METRICS`, `threshold_<level>`
        (tags: the validation-tuned one), epochs run and best epoch (probes), segments per split,
        test videos, labels absent from the test split.
    per_label: one row per label: `<metric>_<level>`, `test_videos` (positives).
    test_rows: `(n_test,)` manifest rows of the labelled test segments;
    test_probs: `(n_test, n_labels)` their predicted probabilities.
    """

    task: str
    scores: dict
    per_label: pd.DataFrame
    test_rows: np.ndarray
    test_probs: np.ndarray


def predicted_labels(probs: np.ndarray, multilabel: bool, threshold: float = 0.5) -> np.ndarray:
    """`(n, n_labels)` 0/1 predictions: probabilities ≥ threshold (tags), or the arg-max class one-hot
    (genre)."""
    if multilabel:
        return (probs >= threshold).astype(np.uint8)
    return np.eye(probs.shape[1], dtype=np.uint8)[probs.argmax(1)]


def metric_outputs(probs: np.ndarray, multilabel: bool, threshold: float) -> dict[str, np.ndarray]:
    """What each of the task's `METRICS` scores, `(n, n_labels)`: the probabilities for `auc`, 0/1
    predictions for each F1.

    threshold: the validation-tuned threshold of `f1@val` (tags).
    """
    if not multilabel:
        return {"auc": probs, "f1": predicted_labels(probs, False)}
    return {
        "auc": probs,
        "f1@0.5": predicted_labels(probs, True, 0.5),
        "f1@val": predicted_labels(probs, True, threshold),
    }


def choose_threshold(targets: np.ndarray, probs: np.ndarray) -> float:
    """The `THRESHOLDS` value t with the highest macro F1 of `probs` `(n, k)` ≥ t against `targets` `(n, k)`.

    Ties go to the t nearest 0.5; 0.5 when macro F1 is undefined for every t (no positive in `targets`).
    """
    candidates = sorted(THRESHOLDS, key=lambda t: (abs(t - 0.5), t))
    f1 = np.array([macro_f1(targets, probs >= t) for t in candidates])
    return 0.5 if np.isnan(f1).all() else float(candidates[int(np.nanargmax(f1))])


def score_predictions(
    task: ProbeTask,
    rows: dict[str, np.ndarray],
    probs: dict[str, np.ndarray],
    video_ids,
    scores: dict | None = None,
) -> ProbeResult:
    """Score the validation and test predictions of a probe or reference predictor on `task`.

    rows: manifest rows per split (`task_rows`); probs: `{"val": (n_val, k), "test": (n_test, k)}`
    probabilities of those rows; video_ids: `(n_segments,)`; scores: numbers to keep beside
    (epochs, …). At each level the tag threshold of `f1@val` is chosen on validation.
    """
    video_ids = np.asarray(video_ids)
    scores = {
        "n_train": len(rows["train"]),
        "n_val": len(rows["val"]),
        "n_test": len(rows["test"]),
        "n_test_videos": len(np.unique(video_ids[rows["test"]])),
        **(scores or {}),
    }
    per_label = pd.DataFrame({"label": task.labels})
    for level in LEVELS:
        (y_val, p_val), (y_test, p_test) = (
            at_level(task.targets[rows[s]], probs[s], video_ids[rows[s]], level) for s in ("val", "test")
        )
        threshold = choose_threshold(y_val, p_val) if task.multilabel else float("nan")
        for metric, output in metric_outputs(p_test, task.multilabel, threshold).items():
            by_label = (per_label_roc_auc if metric == "auc" else per_label_f1)(y_test, output)
            per_label[f"{metric}_{level}"] = by_label
            scores[f"{metric}_{level}"] = finite_mean(by_label)  # the macro mean, as macro_roc_auc/macro_f1
        scores[f"threshold_{level}"] = threshold
        if level == "video":
            per_label["test_videos"] = y_test.sum(0).astype(int)
    scores["labels_absent"] = int((per_label["test_videos"] == 0).sum())
    return ProbeResult(task.name, scores, per_label, rows["test"], probs["test"])


def at_level(
    targets: np.ndarray, probs: np.ndarray, video_ids: np.ndarray, level: str
) -> tuple[np.ndarray, np.ndarray]:
    """Targets and probabilities per segment, or averaged per video (targets are shared within a video)."""
    if level == "segment":
        return targets, probs
    _, mean_targets = video_means(targets.astype(np.float64), video_ids)
    return (mean_targets > 0.5).astype(np.uint8), video_means(probs, video_ids)[1]


def training_prior(task: ProbeTask, split, video_ids) -> np.ndarray:
    """`(n_labels,)` share of the labelled training videos carrying each label."""
    first = ~pd.Series(np.asarray(video_ids)).duplicated().to_numpy()
    train = first & task.labelled & (np.asarray(split) == "train")
    return task.targets[train].mean(0)


def reference_probs(name: str, task: ProbeTask, split, video_ids) -> np.ndarray:
    """`(n_labels,)` the constant output of reference `name` (`REFERENCES`) on `task`, for every item.

    "prior": the training prior (`training_prior`); "all tags positive": 1 for every tag;
    "majority genre": one-hot of the genre most training videos have (the first in label order
    among ties, as the arg-max of the prior picks it).
    """
    if task.name not in REFERENCES[name]:
        raise ValueError(f"reference {name!r} scores {' and '.join(REFERENCES[name])}, not {task.name}")
    prior = training_prior(task, split, video_ids)
    if name == "prior":
        return prior
    if name == "all tags positive":
        return np.ones_like(prior)
    return np.eye(len(prior))[prior.argmax()]


def run_references(
    tasks: dict[str, ProbeTask], split, video_ids, rotation: int = 0
) -> tuple[pd.DataFrame, dict, list[str]]:
    """Every reference × task it scores on one rotation's `split`, as `mvnb.probes.run_probes` returns probes
    (config `REFERENCE_CONFIG`, seed 0)."""
    rows, results, notes = [], {}, []
    for name, names_tasks in REFERENCES.items():
        for task in (tasks[t] for t in names_tasks if t in tasks):
            try:
                task_split = task_rows(task, split)
            except ValueError as err:
                notes.append(f"{name} (reference) rotation {rotation}: {err}")
                continue
            constant = reference_probs(name, task, split, video_ids)
            probs = {s: np.tile(constant, (len(task_split[s]), 1)) for s in ("val", "test")}
            result = score_predictions(task, task_split, probs, video_ids)
            results[(name, REFERENCE_CONFIG, task.name, rotation, 0)] = result
            rows.append(
                {
                    "embedding": name,
                    "config": REFERENCE_CONFIG,
                    "rotation": rotation,
                    "seed": 0,
                    "task": task.name,
                    "collapsed": False,
                    **result.scores,
                }
            )
    return pd.DataFrame(rows), results, notes
