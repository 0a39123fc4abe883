"""Downstream probes: a small MLP on frozen embeddings, for genre (multi-class) and tags (multi-label).

The paper's Experiments 2 and 3 ask whether contrastive training makes better representations
(RQ1) by training the same classifier on the six embeddings of `mvnb.embeddings` (`musicnn`,
`R(2+1)D`, `concat`; `CL_a`, `CL_v`, `CL_agg` of each training configuration).

**Probe.** The paper's three-layer perceptron: dense 512 → ReLU → dropout → dense 256 → ReLU →
dropout → dense to one output per label. Inputs are standardised with the training split's mean
and sd (`mvnb.standardise`, the code of the heads' `input_norm="standard"` too), so embeddings
of different scales (sigmoid outputs, pooled musicnn activations) meet the
same optimiser. Adam, mini-batches, early stopping on validation loss with the best weights
kept. The paper states none of dropout, optimiser or stopping: `ProbeConfig` holds our choices.

**Labels.** Segments inherit their video's labels (`genre_task`, `tag_task`): genre is one label
per video, softmax and cross-entropy over the genres of the training split; tags are split on
`;`, the `top_k` (10) most frequent among training videos kept, sigmoid and binary
cross-entropy. Videos without a label are left out of that task, and counted. With several
fold rotations (`probe_tasks`), the labels are chosen on the videos that train in every one of
them, so that no rotation's test video has a say in them, and every rotation's probe predicts
the same labels.

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

**Splits and rotations.** A run of the probes is one fold rotation of the corpus's video-level
split (`mvnb.corpus.manifest_split`) and one seed: it trains on the rotation's training
videos, stops on its validation fold and predicts its test fold, on the CL embeddings of the
contrastive run of the same rotation and seed, whose heads saw only the same training videos;
so the probes' test videos are unseen by both.

**Intervals** (`table2`). Each probe predicts its test fold once. A row pools the test
predictions of its healthy runs, over rotations and seeds, and scores AUC and F1 on them
together; a percentile bootstrap resamples test videos within each rotation (a video brings its
segments, and its predictions from every seed) and recomputes AUC and F1 on each resampled set,
with the videos' multiplicities as integer weights. All rows share the draws, so two rows are
compared paired, over the same resampled videos (`paper_findings`, `versus_references`).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from mvnb.corpus import SPLITS, manifest_split
from mvnb.device import default_device
from mvnb.embeddings import LEARNED, cl_embeddings
from mvnb.embeddings import NAMES as EMBEDDINGS
from mvnb.io import atomic_write
from mvnb.metrics import (
    BOOTSTRAP_DRAWS,
    INTERVAL_LEVEL,
    bootstrap_weights,
    is_collapsed,
    macro_f1,
    macro_roc_auc,
    per_label_f1,
    per_label_roc_auc,
    row_nanmean,
    weighted_per_label_f1,
    weighted_per_label_roc_auc,
)
from mvnb.results import format_interval, usable_seeds
from mvnb.results import run_dir as contrastive_run_dir
from mvnb.standardise import standardise
from mvnb.train import torch_threads

LEVELS = ("segment", "video")
TOP_TAGS = 10
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)
TASKS = ("tags", "genre")
METRICS = {
    "tags": ("auc", "f1@0.5", "f1@val"),
    "genre": ("auc", "f1"),
}  # per task, as in `ProbeResult.scores`
METRIC_NAMES = {"auc": "AUC", "f1@0.5": "F1@0.5", "f1@val": "F1@val", "f1": "F1"}  # column heads of table2.md
METRIC_LEGEND = {
    "auc": "macro ROC-AUC",
    "f1@0.5": "macro F1, tags predicted where their probability is ≥ 0.5",
    "f1@val": "macro F1 at the one threshold, shared by all tags, tuned on the validation split",
    "f1": "macro F1 of the arg-max genre",
}
FROZEN_CONFIG = "frozen"  # the `config` of the frozen-feature rows
REFERENCE_CONFIG = "reference"  # the `config` of the reference rows
REFERENCES = {
    "prior": TASKS,
    "all tags positive": ("tags",),
    "majority genre": ("genre",),
}  # name → tasks it scores
TABLE2_COLUMNS = [
    "row",
    "embedding",
    "config",
    "task",
    "level",
    "metric",
    "paper",
    "estimate",
    "low",
    "high",
    "test_videos",
    "test_segments",
    "labels_scored",
    "labels",
    "unscored",
    "rotations",
    "seeds",
    "collapsed",
]

# Table 2 of the paper: (AUC, F1) per embedding and task. The paper has one CL configuration, its baseline.
PAPER_TABLE2: dict[str, dict[str, tuple[float, float]]] = {
    "musicnn": {"tags": (0.78, 0.22), "genre": (0.79, 0.18)},
    "R(2+1)D": {"tags": (0.66, 0.09), "genre": (0.68, 0.05)},
    "concat": {"tags": (0.78, 0.24), "genre": (0.82, 0.21)},
    "CL_a": {"tags": (0.70, 0.10), "genre": (0.69, 0.08)},
    "CL_v": {"tags": (0.61, 0.09), "genre": (0.63, 0.04)},
    "CL_agg": {"tags": (0.71, 0.11), "genre": (0.68, 0.07)},
}
PAPER_CL_CONFIG = "paper_baseline"
PAPER_RESOLUTION = 0.01  # the paper prints two decimals: differences up to this are not resolved
EQUIVALENCE_MARGIN = 0.02  # "A ≈ B" holds for us when the whole interval of A − B lies within ± this
CEILING = 0.99  # scores this high leave no room for an order between embeddings


@dataclass(frozen=True)
class ProbeConfig:
    """The probe and its training; the hidden widths are the paper's, the rest our choices."""

    hidden: tuple[int, ...] = (512, 256)
    dropout: float = 0.3
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 256
    max_epochs: int = 200
    patience: int = 10  # epochs without a lower validation loss before stopping
    cpu_threads: int | None = 1  # torch threads while a probe trains on CPU; None keeps torch's setting


@dataclass(frozen=True)
class ProbeTask:
    """Targets of one task for every segment of a manifest.

    targets: `(n_segments, n_labels)` uint8 indicators (one-hot for genre); rows of unlabelled
        segments are all 0 and `labelled` is False there.
    labels: the label names, in column order. note: one line on what was left out.
    """

    name: str
    multilabel: bool
    targets: np.ndarray
    labelled: np.ndarray
    labels: tuple[str, ...]
    note: str


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


# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------


def genre_task(manifest: pd.DataFrame) -> ProbeTask:
    """Genre as one-hot targets over the genres of the training split.

    manifest: one row per segment with `video_id`, `split` and `genre`. Segments of videos with
    no genre, or with a genre no training video has, are left out. Raises ValueError with a
    one-line reason when the task cannot run (no column, fewer than two training genres).
    """
    genre = _label_column(manifest, "genre")
    classes = sorted(set(genre[(manifest["split"] == "train").to_numpy() & (genre != "")]))
    if len(classes) < 2:
        raise ValueError(
            f"genre probe skipped: the training split has {len(classes)} genre(s); it needs two or more"
        )
    index = {c: i for i, c in enumerate(classes)}
    codes = np.array([index.get(g, -1) for g in genre])
    labelled = codes >= 0
    targets = np.zeros((len(manifest), len(classes)), dtype=np.uint8)
    targets[labelled, codes[labelled]] = 1
    unseen = sorted(set(genre[~labelled]) - {""})
    why = "no genre" + (f", or one no training video has: {', '.join(unseen)}" if unseen else "")
    note = _left_out_note(manifest, labelled, why)
    return ProbeTask("genre", False, targets, labelled, tuple(classes), note)


def tag_task(manifest: pd.DataFrame, top_k: int = TOP_TAGS) -> ProbeTask:
    """The `top_k` most frequent tags among training videos, as multi-label targets.

    manifest: one row per segment with `video_id`, `split` and `tags` (`;`-separated). Ties in
    frequency go alphabetically. Videos with no tag at all are left out; a video whose tags are
    all outside the top k is kept, with every target 0. Raises ValueError when no training
    video has a tag.
    """
    tags = [
        tuple(sorted({t.strip() for t in text.split(";") if t.strip()}))
        for text in _label_column(manifest, "tags")
    ]
    videos = manifest.assign(tag_set=tags).drop_duplicates("video_id")
    counts = videos.loc[videos["split"] == "train", "tag_set"].explode().dropna().value_counts()
    if counts.empty:
        raise ValueError("tag probe skipped: no training video has a tag")
    top = sorted(counts.index, key=lambda t: (-counts[t], t))[:top_k]
    labelled = np.array([len(t) > 0 for t in tags])
    targets = np.array([[tag in t for tag in top] for t in tags], dtype=np.uint8).reshape(
        len(manifest), len(top)
    )
    note = _left_out_note(manifest, labelled, "no tag")
    return ProbeTask("tags", True, targets, labelled, tuple(top), note)


def label_basis(manifest: pd.DataFrame, rotations) -> np.ndarray:
    """`(n_segments,)` "train" for the segments of videos that train in every one of `rotations`, else "held
    out"."""
    train = np.logical_and.reduce([manifest_split(manifest, r) == "train" for r in rotations])
    return np.where(train, "train", "held out")


def probe_tasks(
    manifest: pd.DataFrame, rotations=(0,), top_k: int = TOP_TAGS
) -> tuple[dict[str, ProbeTask], list[str]]:
    """The tasks that can run on `manifest` (`{"tags": ..., "genre": ...}`) and one-line notes on the others.

    Their labels are chosen on the videos that train in every one of `rotations` (`label_basis`).
    """
    tasks, notes = {}, []
    basis = manifest.assign(split=label_basis(manifest, rotations))
    for name, make in (("tags", lambda m: tag_task(m, top_k)), ("genre", genre_task)):
        try:
            tasks[name] = make(basis)
            notes.append(f"{name}: {tasks[name].note}")
        except ValueError as err:
            notes.append(str(err))
    if not tasks:
        notes.append(
            "no probe can run on this corpus (it has no usable genre or tags): Table 2 and the probe figures "
            "are skipped; retrieval, browsing and the map do not need labels"
        )
    return tasks, notes


def label_counts(task: ProbeTask, manifest: pd.DataFrame, rotations=(0,)) -> pd.DataFrame:
    """Videos carrying each label: labels as rows; columns `label basis` (the videos that chose the
    labels, `label_basis`), `test · rotation r` per rotation, and `test · pooled` (their sum)."""
    first = ~manifest["video_id"].duplicated().to_numpy() & task.labelled
    targets = task.targets[first]
    counts = {"label basis": targets[label_basis(manifest, rotations)[first] == "train"].sum(0)}
    counts |= {
        f"test · rotation {r}": targets[manifest_split(manifest, r)[first] == "test"].sum(0)
        for r in rotations
    }
    counts["test · pooled"] = sum(counts[f"test · rotation {r}"] for r in rotations)
    return pd.DataFrame(counts, index=pd.Index(task.labels, name=task.name)).astype(int)


def _label_column(manifest: pd.DataFrame, column: str) -> np.ndarray:
    """`manifest[column]` as stripped strings, "" where missing; ValueError naming the column when absent."""
    if column not in manifest.columns:
        task = "genre" if column == "genre" else "tag"
        raise ValueError(f"{task} probe skipped: the metadata has no {column!r} column")
    return manifest[column].fillna("").astype(str).str.strip().to_numpy()


def _left_out_note(manifest: pd.DataFrame, labelled: np.ndarray, why: str) -> str:
    """'k of n videos left out (why)' or 'all n videos labelled'."""
    videos = manifest["video_id"].to_numpy()
    n, kept = len(set(videos)), len(set(videos[labelled]))
    return f"all {n} videos labelled" if kept == n else f"{n - kept} of {n} videos left out ({why})"


# ---------------------------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# The probe
# ---------------------------------------------------------------------------------------------


def build_probe(in_dim: int, n_labels: int, config: ProbeConfig = ProbeConfig()) -> nn.Sequential:
    """`(batch, in_dim)` → `(batch, n_labels)` logits: [dense → ReLU → dropout] per hidden width, then
    dense."""
    widths = (in_dim, *config.hidden)
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(config.dropout)]
    return nn.Sequential(*layers, nn.Linear(widths[-1], n_labels))


def train_probe(
    x: torch.Tensor,
    targets: torch.Tensor,
    multilabel: bool,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    seed: int,
    config: ProbeConfig = ProbeConfig(),
) -> tuple[nn.Sequential, dict]:
    """Train a probe with early stopping on validation loss; returns it (best weights, eval mode) and its
    history.

    x: `(n, dim)` float32 standardised inputs; targets: `(n, n_labels)` float32 indicators, both
    on the training device. The seed drives initialisation, dropout and batch order.
    History: `epochs` run, `best_epoch`, `val_loss` of the best epoch.
    """
    torch.manual_seed(seed)
    model = build_probe(x.shape[1], targets.shape[1], config).to(x.device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = _loss_fn(multilabel)
    generator = torch.Generator().manual_seed(seed)
    train_idx, val_idx = (
        torch.as_tensor(train_rows, device=x.device),
        torch.as_tensor(val_rows, device=x.device),
    )
    best = {"val_loss": float("inf"), "epoch": -1, "state": None}
    epoch = -1
    for epoch in range(config.max_epochs):
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=generator).to(x.device)]
        for lo in range(0, len(order), config.batch_size):
            batch = order[lo : lo + config.batch_size]
            loss = loss_fn(model(x[batch]), targets[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            val_loss = loss_fn(model(x[val_idx]), targets[val_idx]).item()
        if val_loss < best["val_loss"]:
            state = {k: v.clone() for k, v in model.state_dict().items()}
            best = {"val_loss": val_loss, "epoch": epoch, "state": state}
        elif epoch - best["epoch"] >= config.patience:
            break
    if best["state"] is None:
        raise RuntimeError("probe validation loss was never finite; check the embeddings for NaN")
    model.load_state_dict(best["state"])
    return model.eval(), {"epochs": epoch + 1, "best_epoch": best["epoch"], "val_loss": best["val_loss"]}


def _loss_fn(multilabel: bool):
    """Binary cross-entropy per tag, or cross-entropy over the classes of one-hot targets."""
    if multilabel:
        return nn.BCEWithLogitsLoss()
    cross_entropy = nn.CrossEntropyLoss()
    return lambda logits, targets: cross_entropy(logits, targets.argmax(1))


@torch.no_grad()
def predict_probs(model: nn.Sequential, x: torch.Tensor, rows: np.ndarray, multilabel: bool) -> np.ndarray:
    """`(len(rows), n_labels)` probabilities: sigmoid per tag, or softmax over classes."""
    logits = model(x[torch.as_tensor(rows, device=x.device)])
    return (torch.sigmoid(logits) if multilabel else torch.softmax(logits, 1)).cpu().numpy()


def video_means(values: np.ndarray, video_ids) -> tuple[np.ndarray, np.ndarray]:
    """Per-video mean of segment rows: `values` `(n, k)`, `video_ids` `(n,)` → (videos `(v,)`, means `(v,
    k)`)."""
    videos, codes = np.unique(np.asarray(video_ids), return_inverse=True)
    codes = codes.ravel()
    sums = np.zeros((len(videos), values.shape[1]))
    np.add.at(sums, codes, values)
    return videos, sums / np.bincount(codes)[:, None]


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


def task_rows(task: ProbeTask, split, finite: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Manifest rows of each split's labelled segments (with a finite embedding, where `finite` `(n,)` says);
    ValueError naming the splits that have none."""
    split = np.asarray(split)
    finite = np.ones(len(split), dtype=bool) if finite is None else finite
    rows = {s: np.flatnonzero((split == s) & task.labelled & finite) for s in SPLITS}
    empty = [s for s in SPLITS if not len(rows[s])]
    if empty:
        raise ValueError(
            f"{task.name} probe skipped: no labelled segment in the {' and '.join(empty)} split(s)"
        )
    return rows


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
            _at_level(task.targets[rows[s]], probs[s], video_ids[rows[s]], level) for s in ("val", "test")
        )
        threshold = choose_threshold(y_val, p_val) if task.multilabel else float("nan")
        for metric, output in metric_outputs(p_test, task.multilabel, threshold).items():
            per_label[f"{metric}_{level}"] = (per_label_roc_auc if metric == "auc" else per_label_f1)(
                y_test, output
            )
            scores[f"{metric}_{level}"] = (macro_roc_auc if metric == "auc" else macro_f1)(y_test, output)
        scores[f"threshold_{level}"] = threshold
        if level == "video":
            per_label["test_videos"] = y_test.sum(0).astype(int)
    scores["labels_absent"] = int((per_label["test_videos"] == 0).sum())
    return ProbeResult(task.name, scores, per_label, rows["test"], probs["test"])


def run_probe(
    x,
    task: ProbeTask,
    split,
    video_ids,
    seed: int,
    config: ProbeConfig = ProbeConfig(),
    device: str | torch.device | None = None,
) -> ProbeResult:
    """Train a probe for `task` on the labelled training segments of `x`, stop on validation, score on test.

    x: `(n_segments, dim)` embeddings in manifest order; split, video_ids: `(n_segments,)`.
    Segments whose embedding is not finite (features that failed) are left out and counted in
    `n_nonfinite`. Returns the scores at segment and video level (see the module docstring). Raises
    ValueError with a one-line reason when a split has no labelled segment.
    """
    x, split, video_ids = np.asarray(x, dtype=np.float32), np.asarray(split), np.asarray(video_ids)
    if not len(x) == len(split) == len(video_ids) == len(task.targets):
        raise ValueError(
            f"need one embedding, split and video id per segment of the task: {len(x)}, {len(split)}, "
            f"{len(video_ids)} and {len(task.targets)}"
        )
    finite = np.isfinite(x).all(1)
    rows = task_rows(task, split, finite)
    device = torch.device(device) if device else default_device()
    xs = torch.from_numpy(standardise(x, rows["train"])).to(device)
    targets = torch.from_numpy(task.targets.astype(np.float32)).to(device)
    with torch_threads(config.cpu_threads if device.type == "cpu" else None):
        model, history = train_probe(xs, targets, task.multilabel, rows["train"], rows["val"], seed, config)
        probs = {s: predict_probs(model, xs, rows[s], task.multilabel) for s in ("val", "test")}
    return score_predictions(
        task, rows, probs, video_ids, {"n_nonfinite": int((~finite & task.labelled).sum()), **history}
    )


def _at_level(
    targets: np.ndarray, probs: np.ndarray, video_ids: np.ndarray, level: str
) -> tuple[np.ndarray, np.ndarray]:
    """Targets and probabilities per segment, or averaged per video (targets are shared within a video)."""
    if level == "segment":
        return targets, probs
    _, mean_targets = video_means(targets.astype(np.float64), video_ids)
    return (mean_targets > 0.5).astype(np.uint8), video_means(probs, video_ids)[1]


# ---------------------------------------------------------------------------------------------
# Reference rows: constant predictors, scored by the same code
# ---------------------------------------------------------------------------------------------


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
    """Every reference × task it scores on one rotation's `split`, as `run_probes` returns probes
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


# ---------------------------------------------------------------------------------------------
# Table 2: every embedding × task × seed
# ---------------------------------------------------------------------------------------------


def embeddings_for_run(
    frozen: dict[str, np.ndarray],
    runs_dir: str | Path,
    cl_configs: list[str],
    rotation: int,
    seed: int,
    n_segments: int,
) -> tuple[dict[tuple[str, str], np.ndarray], list[str]]:
    """The embeddings that the probes of `rotation` and `seed` use, keyed by `(embedding, config)`, and
    notes on runs that are missing.

    frozen: `mvnb.embeddings.frozen_embeddings` (keyed with config `FROZEN_CONFIG`); CL
    embeddings come from the contrastive run of the same rotation and seed of each configuration
    (`mvnb.results.run_dir`).
    """
    embeddings = {(name, FROZEN_CONFIG): x for name, x in frozen.items()}
    notes = []
    for config in cl_configs:
        try:
            for name, x in cl_embeddings(
                contrastive_run_dir(runs_dir, config, seed, rotation=rotation), n_segments
            ).items():
                embeddings[(name, config)] = x
        except (FileNotFoundError, ValueError) as err:
            notes.append(f"{config} rotation {rotation} seed {seed} skipped: {err}")
    return embeddings, notes


def run_probes(
    embeddings: dict[tuple[str, str], np.ndarray],
    tasks: dict[str, ProbeTask],
    split,
    video_ids,
    seed: int,
    config: ProbeConfig = ProbeConfig(),
    device: str | torch.device | None = None,
    progress: bool = True,
    rotation: int = 0,
) -> tuple[pd.DataFrame, dict, list[str]]:
    """Every embedding × task with one seed, on the split of one rotation.

    Returns a table with one row per probe (`embedding, config, rotation, seed, task, collapsed`
    and the scores of `ProbeResult.scores`), the `ProbeResult`s keyed by `(embedding, config,
    task, rotation, seed)`, and one-line notes on probes that could not run (the others still
    do). An embedding whose test segments have collapsed (`metrics.is_collapsed`) is flagged, not
    probed: its row has `collapsed` True and no scores.
    """
    rows, results, notes = [], {}, []
    test = np.asarray(split) == "test"
    collapsed = {key: is_collapsed(x[test & np.isfinite(x).all(1)]) for key, x in embeddings.items()}
    jobs = [(key, task) for key in embeddings for task in tasks.values()]
    run = {"rotation": rotation, "seed": seed}
    for (name, cfg), task in tqdm(jobs, desc=f"probes rotation {rotation} seed {seed}", disable=not progress):
        if collapsed[(name, cfg)]:
            rows.append({"embedding": name, "config": cfg, **run, "task": task.name, "collapsed": True})
            continue
        try:
            result = run_probe(embeddings[(name, cfg)], task, split, video_ids, seed, config, device)
        except ValueError as err:
            notes.append(f"{name} ({cfg}) rotation {rotation} seed {seed}: {err}")
            continue
        results[(name, cfg, task.name, rotation, seed)] = result
        rows.append(
            {"embedding": name, "config": cfg, **run, "task": task.name, "collapsed": False, **result.scores}
        )
    return pd.DataFrame(rows), results, notes


def run_table2_probes(
    frozen: dict[str, np.ndarray],
    runs_dir: str | Path,
    cl_configs: list[str],
    rotations: list[int],
    seeds: list[int],
    tasks: dict[str, ProbeTask],
    manifest: pd.DataFrame,
    config: ProbeConfig = ProbeConfig(),
    device: str | torch.device | None = None,
) -> tuple[pd.DataFrame, dict, list[str]]:
    """All of Table 2: per rotation of `rotations`, on its split of `manifest` (`corpus.manifest_split`),
    the reference rows, then every embedding × task for each seed, probe seed s on the
    contrastive runs of the same rotation and seed s.

    Returns what `run_probes` does, over every rotation, the references and all seeds, with the
    notes on missing runs and skipped probes.
    """
    tables, results, notes = [], {}, []
    video_ids = manifest["video_id"].to_numpy()
    for rotation, seed in tqdm([(r, s) for r in rotations for s in seeds], desc="probe runs", unit="run"):
        split = manifest_split(manifest, rotation)
        if seed == seeds[0]:
            table, found, failed = run_references(tasks, split, video_ids, rotation)
            tables.append(table)
            results |= found
            notes += failed
        embeddings, missing = embeddings_for_run(frozen, runs_dir, cl_configs, rotation, seed, len(manifest))
        table, found, failed = run_probes(
            embeddings, tasks, split, video_ids, seed, config, device, progress=False, rotation=rotation
        )
        tables.append(table)
        results |= found
        notes += missing + failed
    return pd.concat(tables, ignore_index=True), results, notes


def probes_overview(scores: pd.DataFrame) -> pd.DataFrame:
    """Per embedding, configuration and task of `run_table2_probes`' scores: mean epochs, test segments and
    videos, and labels absent from the test fold; an empty table when no probe ran."""
    columns = ["epochs", "n_test", "n_test_videos", "labels_absent"]
    if scores.empty:
        return pd.DataFrame(columns=columns)
    return scores.groupby(["embedding", "config", "task"], sort=False)[columns].mean()


def row_label(embedding: str, config: str) -> str:
    """Name of a Table 2 row: the embedding (or reference), with its contrastive configuration for CL rows."""
    return embedding if config in (FROZEN_CONFIG, REFERENCE_CONFIG) else f"{embedding} · {config}"


# ---------------------------------------------------------------------------------------------
# Table 2 with intervals over test videos
# ---------------------------------------------------------------------------------------------


def level_predictions(
    result: ProbeResult, task: ProbeTask, video_ids, level: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A probe's test predictions at `level`: `(videos (n,), targets (n, k), probabilities (n, k))`, one row
    per
    test segment, or per test video (probabilities averaged over its segments, videos in sorted id order)."""
    videos = np.asarray(video_ids)[result.test_rows]
    targets, probs = _at_level(task.targets[result.test_rows], result.test_probs, videos, level)
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


def _item_index(videos: np.ndarray, item_videos: np.ndarray) -> np.ndarray:
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
    index = _item_index(videos, item_videos)
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


def table2(
    scores: pd.DataFrame,
    results: dict,
    tasks: dict[str, ProbeTask],
    tested,
    video_ids,
    n_draws: int = BOOTSTRAP_DRAWS,
    interval: float = INTERVAL_LEVEL,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict]:
    """Table 2: per row (reference, frozen embedding, CL embedding of a configuration), task, level
    and metric, the paper's value and ours with its 95 % interval over test videos.

    scores, results: `run_table2_probes`; tested, video_ids: `(n_segments,)` of the manifest, the
    rotation that tests each segment's video (`mvnb.corpus.rotation_tested`, −1 for none) and
    its id. A row pools the test predictions of its healthy runs, over rotations and seeds
    (`results.usable_seeds`): collapsed runs are left out and counted in `collapsed`; with too few
    healthy runs the row has no numbers. `test_videos`, `test_segments`: the distinct test items
    behind a row's numbers. Returns the table (`TABLE2_COLUMNS`; rows: references, frozen, then
    each configuration's CL rows, in the paper's order) and the draws
    `{(row, task, level, metric): (n_draws,)}` that every row shares, for paired comparisons.
    """
    if scores.empty:
        return pd.DataFrame(columns=TABLE2_COLUMNS), {}
    out, draws = [], {}
    shared = {
        name: resample_test_videos(task, tested, video_ids, n_draws, seed) for name, task in tasks.items()
    }
    for (embedding, config, task_name), group in scores.groupby(["embedding", "config", "task"], sort=False):
        task = tasks[task_name]
        usable, note = usable_seeds(group["collapsed"])
        keys = [
            (embedding, config, task_name, r, s)
            for r, s in zip(group.loc[usable, "rotation"], group.loc[usable, "seed"], strict=True)
        ]
        healthy = [results[key] for key in keys if key in results]
        base = {
            "row": row_label(embedding, config),
            "embedding": embedding,
            "config": config,
            "task": task_name,
            "rotations": group["rotation"].nunique(),
            "seeds": group["seed"].nunique(),
            "collapsed": note or "none",
            "labels": len(task.labels),
        }
        videos, weights = shared[task_name]
        for level in LEVELS:
            if healthy:
                item_videos, targets, outputs = pooled_outputs(healthy, task, video_ids, level)
                found = row_draws(targets, outputs, item_videos, videos, weights)
            for metric in METRICS[task_name]:
                row = base | {
                    "level": level,
                    "metric": metric,
                    "paper": _paper_value(embedding, config, task_name, metric),
                    "estimate": np.nan,
                    "low": np.nan,
                    "high": np.nan,
                    "test_videos": 0,
                    "test_segments": 0,
                    "labels_scored": 0,
                    "unscored": "",
                }
                if healthy:
                    estimate, values = found[metric]
                    low, high = _quantiles(values, interval)
                    scored = _labels_scored(metric, targets)
                    row |= {
                        "estimate": estimate,
                        "low": low,
                        "high": high,
                        "test_videos": len(np.unique(item_videos)),
                        "test_segments": len(np.unique(np.concatenate([r.test_rows for r in healthy]))),
                        "labels_scored": int(scored.sum()),
                        "unscored": "; ".join(np.asarray(task.labels)[~scored]),
                    }
                    draws[(base["row"], task_name, level, metric)] = values
                out.append(row)
    table = pd.DataFrame(out, columns=TABLE2_COLUMNS)
    config_order = [
        REFERENCE_CONFIG,
        FROZEN_CONFIG,
        *dict.fromkeys(c for c in table["config"] if c not in (FROZEN_CONFIG, REFERENCE_CONFIG)),
    ]
    order = [*REFERENCES, *EMBEDDINGS]
    table["_c"] = table["config"].map(config_order.index)
    table["_e"] = table["embedding"].map(order.index)
    table["_t"] = table["task"].map(TASKS.index)
    table["_l"] = table["level"].map(LEVELS.index)
    table["_m"] = [METRICS[t].index(m) for t, m in zip(table["task"], table["metric"], strict=True)]
    return table.sort_values(["_c", "_e", "_t", "_m", "_l"]).drop(
        columns=["_c", "_e", "_t", "_l", "_m"]
    ).reset_index(drop=True), draws


def _paper_value(embedding: str, config: str, task: str, metric: str) -> float:
    """The paper's Table 2 value for a row (NaN for references and configurations the paper did not have)."""
    if config not in (FROZEN_CONFIG, PAPER_CL_CONFIG) or embedding not in PAPER_TABLE2:
        return np.nan
    return PAPER_TABLE2[embedding][task][metric != "auc"]


def _labels_scored(metric: str, targets: np.ndarray) -> np.ndarray:
    """`(k,)` which labels have the metric defined on `targets` `(n, k)`: a positive (F1), and a negative too
    (AUC)."""
    positive = targets.any(0)
    return positive & (~targets.astype(bool)).any(0) if metric == "auc" else positive


def _quantiles(values: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile interval of the finite `values` at `level`; NaNs when none is finite."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return np.nan, np.nan
    low, high = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def table2_markdown(table: pd.DataFrame, weights, n_draws: int = BOOTSTRAP_DRAWS) -> str:
    """Table 2 as markdown under the weights' caption: a legend, then per task a line saying what it
    scored and a table with a line per row: the paper's value and ours per segment and per video,
    for each of the task's `METRICS` (the paper's F1 stands once, before both tag F1s).

    weights: `mvnb.provenance.Weights` of the features.
    """
    legend = "; ".join(f"{METRIC_NAMES[m]}: {METRIC_LEGEND[m]}" for m in METRIC_LEGEND)
    parts = [
        f"Test scores on the pooled test predictions of every healthy run (rotations and seeds), each with "
        f"its "
        f"95 % interval from {n_draws} bootstrap resamples of the test videos within each rotation. "
        f"Reference rows "
        f"are constant predictors, one per rotation's training split. {legend}. — : undefined."
    ]
    for task in [t for t in TASKS if t in set(table["task"])]:
        rows = table[table["task"] == task]
        parts.append(_scored_line(task, rows))
        header = ["row"]
        for metric in METRICS[task]:
            paper = (
                ["AUC · paper"] if metric == "auc" else ["F1 · paper"] if metric in ("f1@0.5", "f1") else []
            )
            header += paper + [f"{METRIC_NAMES[metric]} · {level}" for level in LEVELS]
        header += ["test videos", "rotations", "seeds", "collapsed"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for label, group in rows.groupby("row", sort=False):
            cells = [label]
            for metric in METRICS[task]:
                cell = group[group["metric"] == metric].set_index("level")
                if metric in ("auc", "f1@0.5", "f1"):
                    paper = cell["paper"].iloc[0]
                    cells.append("—" if not np.isfinite(paper) else f"{paper:.2f}")
                for level in LEVELS:
                    r = cell.loc[level]
                    cells.append(
                        ("collapsed" if r["collapsed"] != "none" else "—")
                        if not np.isfinite(r["estimate"])
                        else format_interval(r["estimate"], r["low"], r["high"], 3)
                    )
            first = group.iloc[0]
            cells += [
                str(group["test_videos"].max()),
                str(first["rotations"]),
                "constant" if first["config"] == REFERENCE_CONFIG else str(first["seeds"]),
                first["collapsed"],
            ]
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return weights.markdown("\n\n".join(parts))


def _scored_line(task: str, rows: pd.DataFrame) -> str:
    """'**tags**: 8 of 10 tags have a test video and are scored (none carries slow, ambient); 10 test videos
    (60 segments).'"""
    scored = rows[np.isfinite(rows["estimate"].astype(float))]
    if scored.empty:
        return f"**{task}**: nothing could be scored."
    f1 = scored[scored["metric"] != "auc"].iloc[0]
    auc = scored[scored["metric"] == "auc"]
    noun = "tag" if task == "tags" else "genre"
    line = (
        f"**{task}**: {_count(f1['labels_scored'], noun, f1['labels'])} a test video and "
        f"{'is' if f1['labels_scored'] == 1 else 'are'} scored"
        + (f" (none carries {', '.join(f1['unscored'].split('; '))})" if f1["unscored"] else "")
    )
    if len(auc) and auc["labels_scored"].iloc[0] != f1["labels_scored"]:
        line += f"; AUC needs a negative too, and scores {auc['labels_scored'].iloc[0]}"
    return line + f"; {_count(f1['test_videos'], 'test video')} ({_count(f1['test_segments'], 'segment')})."


def _count(n: int, noun: str, of: int | None = None) -> str:
    """'1 test video', '3 test videos', '1 of 6 genres has', '2 of 6 genres have'."""
    if of is None:
        return f"{n} {noun}{'' if n == 1 else 's'}"
    return f"{n} of {of} {noun}{'' if of == 1 else 's'} {'has' if n == 1 else 'have'}"


def write_table2(
    table: pd.DataFrame, figures_dir: str | Path, weights, n_draws: int = BOOTSTRAP_DRAWS
) -> tuple[Path, Path] | None:
    """Write `table2.md` (under the weights' caption) and `table2.csv` (with the weights' columns) into
    `figures_dir`,
    atomically; returns their paths, or None, writing nothing, when no probe ran (an empty table)."""
    if table.empty:
        return None
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    paths = figures_dir / "table2.md", figures_dir / "table2.csv"
    writers = (
        lambda p: p.write_text(table2_markdown(table, weights, n_draws)),
        lambda p: weights.stamp(table).to_csv(p, index=False),
    )
    for path, write in zip(paths, writers, strict=True):
        with atomic_write(path) as tmp:
            write(tmp)
    return paths


# ---------------------------------------------------------------------------------------------
# Claims, decided by paired intervals over the same test videos
# ---------------------------------------------------------------------------------------------


def paired_difference(
    table: pd.DataFrame,
    draws: dict,
    a: str,
    b: str,
    task: str,
    level: str,
    metric: str,
    interval: float = INTERVAL_LEVEL,
) -> tuple[float, float, float] | None:
    """`(A − B, low, high)` of rows `a` and `b`: the estimates' difference and the interval of the
    difference over the shared resamples; None when either row has no score there."""
    key_a, key_b = (a, task, level, metric), (b, task, level, metric)
    if key_a not in draws or key_b not in draws:
        return None
    cells = table.set_index(["row", "task", "level", "metric"])["estimate"]
    difference = float(cells.loc[key_a] - cells.loc[key_b])
    return (
        (difference, *_quantiles(draws[key_a] - draws[key_b], interval)) if np.isfinite(difference) else None
    )


def paper_findings(
    table: pd.DataFrame, draws: dict, level: str = "segment", metric: str = "auc"
) -> pd.DataFrame:
    """Each comparison the paper's Table 2 makes, and whether ours agrees, per task and CL configuration.

    Comparisons: audio vs video features, concat vs audio, and each CL embedding vs the frozen
    features it is built on, CL_a vs CL_v, CL_agg vs CL_a. The paper's claim is "A > B" when its
    values differ by more than `PAPER_RESOLUTION` (they are printed to two decimals), else
    "A ≈ B". Ours is decided by the 95 % interval of A − B over the same resampled test videos:
    - "A > B" is `reproduced` when the interval lies above 0, `contradicted` when below, else `not resolved`;
    - "A ≈ B" is `reproduced` when the interval lies within ±`EQUIVALENCE_MARGIN`, `contradicted`
      when it lies wholly outside, else `not resolved` (a wide interval proves no equality);
    - `not measured` when a row is missing or its score undefined.
    `at_ceiling` flags pairs where both of our scores are ≥ `CEILING`: there the order says little.
    Columns: `task, finding, paper, ours, difference, low, high, verdict, at_ceiling`.
    """
    out = []
    configs = [c for c in dict.fromkeys(table["config"]) if c not in (FROZEN_CONFIG, REFERENCE_CONFIG)]
    cells = table.set_index(["row", "task", "level", "metric"])["estimate"]
    for task in [t for t in TASKS if t in set(table["task"])]:
        pairs = [("musicnn", "R(2+1)D"), ("concat", "musicnn")]
        for config in configs:
            cl = {name: row_label(name, config) for name in LEARNED}
            pairs += [
                ("concat", cl["CL_agg"]),
                ("musicnn", cl["CL_a"]),
                ("R(2+1)D", cl["CL_v"]),
                (cl["CL_a"], cl["CL_v"]),
                (cl["CL_agg"], cl["CL_a"]),
            ]
        for a, b in pairs:
            paper_a, paper_b = (
                PAPER_TABLE2[label.split(" · ")[0]][task][metric != "auc"] for label in (a, b)
            )
            if paper_b > paper_a:
                (a, paper_a), (b, paper_b) = (b, paper_b), (a, paper_a)
            tie = paper_a - paper_b <= PAPER_RESOLUTION + 1e-9
            row = {
                "task": task,
                "finding": f"{a} {'≈' if tie else '>'} {b}",
                "paper": f"{paper_a:.2f} vs {paper_b:.2f}",
                "ours": "—",
                "difference": np.nan,
                "low": np.nan,
                "high": np.nan,
                "verdict": "not measured",
                "at_ceiling": False,
            }
            found = paired_difference(table, draws, a, b, task, level, metric)
            if found is not None:
                difference, low, high = found
                if tie:
                    verdict = (
                        "reproduced"
                        if -EQUIVALENCE_MARGIN <= low and high <= EQUIVALENCE_MARGIN
                        else "contradicted"
                        if low > EQUIVALENCE_MARGIN or high < -EQUIVALENCE_MARGIN
                        else "not resolved"
                    )
                else:
                    verdict = "reproduced" if low > 0 else "contradicted" if high < 0 else "not resolved"
                ours = cells.loc[(a, task, level, metric)], cells.loc[(b, task, level, metric)]
                row |= {
                    "ours": f"{ours[0]:.3f} vs {ours[1]:.3f}",
                    "difference": difference,
                    "low": low,
                    "high": high,
                    "verdict": verdict,
                    "at_ceiling": bool(min(ours) >= CEILING),
                }
            out.append(row)
    return pd.DataFrame(out)


def findings_summary(findings: pd.DataFrame) -> str:
    """A short markdown paragraph, generated from `paper_findings`, of what is reproduced and what is not."""
    if findings.empty:
        return "No probe could run, so none of the paper's findings could be checked."
    lines = []
    for verdict, words in (
        ("reproduced", "Reproduced"),
        ("contradicted", "Contradicted"),
        ("not resolved", "Not resolved (the interval of the difference allows either)"),
        ("not measured", "Not measured"),
    ):
        hits = findings[findings["verdict"] == verdict]
        if len(hits):
            items = "; ".join(
                f"{r.finding} on {r.task} ({r.ours}"
                + (
                    f", difference {format_interval(r.difference, r.low, r.high, 3)})"
                    if np.isfinite(r.difference)
                    else ")"
                )
                for r in hits.itertuples()
            )
            lines.append(f"- **{words}**, {len(hits)} of {len(findings)}: {items}.")
    ceiling = findings[findings["at_ceiling"]]
    if len(ceiling):
        items = "; ".join(f"{r.finding} on {r.task}" for r in ceiling.itertuples())
        lines.append(
            f"- Both scores are at the ceiling (≥ {CEILING}) in {len(ceiling)} comparison(s), where an order "
            f"between embeddings says little: {items}."
        )
    return "\n".join(lines)


def versus_references(table: pd.DataFrame, draws: dict, level: str = "segment") -> pd.DataFrame:
    """Every scored row against the best reference row of each task and metric, paired over the same
    resampled test videos.

    The reference is the prior for AUC (whose AUC is chance, 0.5), and for an F1 the one with
    the highest estimate (the task's own constant on ties: all tags positive, the majority genre). `verdict`:
    "above" when the
    95 % interval of row − reference lies above 0, "below" when below, else "indistinguishable".
    Columns: `row, task, metric, reference, ours, reference_score, difference, low, high, verdict`.
    """
    out = []
    scored = table[(table["level"] == level) & np.isfinite(table["estimate"].astype(float))]
    for (task, metric), group in scored.groupby(["task", "metric"], sort=False):
        refs = group[group["config"] == REFERENCE_CONFIG]
        if refs.empty:
            continue
        best = (
            refs[refs["embedding"] == "prior"].iloc[0]
            if metric == "auc"
            else refs.loc[refs["estimate"].astype(float)[::-1].idxmax()]
        )  # ties: the later, task-specific one
        for r in group[group["config"] != REFERENCE_CONFIG].itertuples():
            found = paired_difference(table, draws, r.row, best["row"], task, level, metric)
            if found is None:
                continue
            difference, low, high = found
            out.append(
                {
                    "row": r.row,
                    "task": task,
                    "metric": metric,
                    "reference": best["row"],
                    "ours": r.estimate,
                    "reference_score": best["estimate"],
                    "difference": difference,
                    "low": low,
                    "high": high,
                    "verdict": "above" if low > 0 else "below" if high < 0 else "indistinguishable",
                }
            )
    return pd.DataFrame(
        out,
        columns=[
            "row",
            "task",
            "metric",
            "reference",
            "ours",
            "reference_score",
            "difference",
            "low",
            "high",
            "verdict",
        ],
    )


def references_summary(versus: pd.DataFrame) -> str:
    """Markdown, generated from `versus_references`: per task and metric, which rows beat the best constant
    predictor."""
    if versus.empty:
        return "No row could be compared with a reference."
    lines = []
    for (task, metric), group in versus.groupby(["task", "metric"], sort=False):
        ref = group.iloc[0]
        parts = [
            f"{words}: {', '.join(f'`{r}`' for r in group.loc[group['verdict'] == verdict, 'row'])}"
            for verdict, words in (
                ("above", "above it"),
                ("indistinguishable", "indistinguishable from it"),
                ("below", "below it"),
            )
            if (group["verdict"] == verdict).any()
        ]
        lines.append(
            f"- **{task}, {METRIC_NAMES[metric]}** (best reference `{ref['reference']}`, "
            f"{ref['reference_score']:.3f}): " + "; ".join(parts) + "."
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


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
    index = _item_index(videos, item_videos)
    values = np.concatenate(
        [
            weighted_per_label_roc_auc(targets, outputs["auc"], weights[lo : lo + 256][:, index])
            for lo in range(0, len(weights), 256)
        ]
    )
    bounds = np.array([_quantiles(values[:, j], interval) for j in range(len(task.labels))]).reshape(-1, 2)
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


def probe_config(**overrides) -> ProbeConfig:
    """`ProbeConfig` with the given fields replaced (unknown names are an error naming the known ones)."""
    known = {f.name for f in dataclasses.fields(ProbeConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise KeyError(
            f"unknown probe parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
        )
    return ProbeConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
