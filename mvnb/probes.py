"""Downstream probes: a small MLP on frozen embeddings, for genre (multi-class) and tags (multi-label).

The paper's Experiments 2 and 3 ask whether contrastive training makes better representations
(RQ1) by training the same classifier on six kinds of segment embedding:

- `musicnn`, `R(2+1)D`: view 0 of the frozen features; `musicnn+R(2+1)D`: both, concatenated;
- `CL_a`, `CL_v`: the contrastive audio and video embeddings of a training run;
- `CL_agg`: the mean of the L2-normalised `CL_a` and `CL_v` (`cl_agg`). The heads are trained on
  cosine similarity, so only directions carry meaning; normalising first keeps either modality
  from dominating by scale, and the mean stays in the shared space at the same dimension as
  `CL_a` and `CL_v`, so the probe has the same capacity. It is also how the paper aggregates
  modalities for its video-level neighbours. (Concatenating would instead make CL_agg another
  "both modalities" baseline, twice the width.)

**Probe.** The paper's three-layer perceptron: dense 512 → ReLU → dropout → dense 256 → ReLU →
dropout → dense to one output per label. Inputs are standardised with the training split's mean
and sd (`mvnb.standardise`, the code of the heads' `input_norm="standard"` too), so embeddings
of different scales (sigmoid outputs, pooled musicnn activations) meet the
same optimiser. Adam, mini-batches, early stopping on validation loss with the best weights
kept. The paper states none of dropout, optimiser or stopping: `ProbeConfig` holds our choices.

**Labels.** Segments inherit their video's labels (`genre_task`, `tag_task`): genre is one label
per video, softmax and cross-entropy over the genres of the training split; tags are split on
`;`, the `top_k` (10) most frequent among training videos kept, sigmoid and binary
cross-entropy. Videos without a label are left out of that task, and counted.

**Scores.** Macro ROC-AUC and macro F1 (`mvnb.metrics`) on the test split, at two levels, since
the paper does not say which it used: per segment, and per video with segment probabilities
averaged over the video's segments. The genre prediction is the arg-max class. For tags, one
threshold shared by all tags is chosen on the validation split, at the same level: the value of
`THRESHOLDS` (0.05 … 0.95) with the highest validation macro F1, the one nearest 0.5 on ties,
0.5 when validation has no positive tag. Labels absent from the test split have no AUC or F1
and are left out of the means (counted in `labels_absent`).

**Splits.** The corpus's video-level train/val/test split, the one the contrastive heads were
trained on (they saw only the training split), so the probes' test videos are unseen by both.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from mvnb.encoders.musicnn import default_device
from mvnb.media import atomic_write
from mvnb.metrics import is_collapsed, macro_f1, macro_roc_auc, per_label_f1, per_label_roc_auc, unit_rows
from mvnb.results import run_dir as contrastive_run_dir
from mvnb.results import usable_seeds
from mvnb.standardise import standardise
from mvnb.train import SPLITS, torch_threads

LEVELS = ("segment", "video")
TOP_TAGS = 10
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)
FROZEN = ("musicnn", "R(2+1)D", "musicnn+R(2+1)D")
CONTRASTIVE = ("CL_a", "CL_v", "CL_agg")
EMBEDDINGS = FROZEN + CONTRASTIVE
TASKS = ("tags", "genre")
FROZEN_CONFIG = "frozen"  # the `config` of the frozen-feature rows
TABLE2_COLUMNS = ["row", "embedding", "config", "task", "metric", "paper", "segment_mean", "segment_sd", "video_mean",
                  "video_sd", "seeds", "collapsed"]

# Table 2 of the paper: (AUC, F1) per embedding and task. The paper has one CL configuration, its baseline.
PAPER_TABLE2: dict[str, dict[str, tuple[float, float]]] = {
    "musicnn": {"tags": (0.78, 0.22), "genre": (0.79, 0.18)},
    "R(2+1)D": {"tags": (0.66, 0.09), "genre": (0.68, 0.05)},
    "musicnn+R(2+1)D": {"tags": (0.78, 0.24), "genre": (0.82, 0.21)},
    "CL_a": {"tags": (0.70, 0.10), "genre": (0.69, 0.08)},
    "CL_v": {"tags": (0.61, 0.09), "genre": (0.63, 0.04)},
    "CL_agg": {"tags": (0.71, 0.11), "genre": (0.68, 0.07)},
}
PAPER_CL_CONFIG = "paper_baseline"
PAPER_RESOLUTION = 0.01  # the paper prints two decimals: differences up to this are not resolved
EQUIVALENCE_MARGIN = 0.02  # "A ≈ B" holds for us when the whole difference ± noise lies within this
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
    """One probe trained and tested.

    scores: flat numbers: `auc_<level>`, `f1_<level>`, `threshold_<level>` (tags), epochs run,
        best epoch, segments per split, test videos, labels absent from the test split.
    per_label: one row per label: `auc_<level>`, `f1_<level>`, `test_videos` (positives).
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
        raise ValueError(f"genre probe skipped: the training split has {len(classes)} genre(s); it needs two or more")
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
    tags = [tuple(sorted({t.strip() for t in text.split(";") if t.strip()}))
            for text in _label_column(manifest, "tags")]
    videos = manifest.assign(tag_set=tags).drop_duplicates("video_id")
    counts = videos.loc[videos["split"] == "train", "tag_set"].explode().dropna().value_counts()
    if counts.empty:
        raise ValueError("tag probe skipped: no training video has a tag")
    top = sorted(counts.index, key=lambda t: (-counts[t], t))[:top_k]
    labelled = np.array([len(t) > 0 for t in tags])
    targets = np.array([[tag in t for tag in top] for t in tags], dtype=np.uint8).reshape(len(manifest), len(top))
    note = _left_out_note(manifest, labelled, "no tag")
    return ProbeTask("tags", True, targets, labelled, tuple(top), note)


def probe_tasks(manifest: pd.DataFrame, top_k: int = TOP_TAGS) -> tuple[dict[str, ProbeTask], list[str]]:
    """The tasks that can run on `manifest` (`{"tags": ..., "genre": ...}`) and one-line notes on the others."""
    tasks, notes = {}, []
    for name, make in (("tags", lambda m: tag_task(m, top_k)), ("genre", genre_task)):
        try:
            tasks[name] = make(manifest)
            notes.append(f"{name}: {tasks[name].note}")
        except ValueError as err:
            notes.append(str(err))
    return tasks, notes


def label_counts(task: ProbeTask, manifest: pd.DataFrame) -> pd.DataFrame:
    """Videos carrying each label, per split: `(n_labels, 3)` counts, labels as rows, train/val/test as columns."""
    first = ~manifest["video_id"].duplicated().to_numpy() & task.labelled
    splits = manifest["split"].to_numpy()[first]
    counts = {s: task.targets[first][splits == s].sum(0).astype(int) for s in SPLITS}
    return pd.DataFrame(counts, index=pd.Index(task.labels, name=task.name))


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


def cl_agg(audio, video) -> np.ndarray:
    """CL_agg: `(n, dim)` mean of the L2-normalised audio and video embeddings `(n, dim)` (zero rows stay zero)."""
    if np.shape(audio) != np.shape(video):
        raise ValueError(f"CL_agg needs audio and video embeddings of one shape; "
                         f"got {np.shape(audio)} and {np.shape(video)}")
    return (unit_rows(audio) + unit_rows(video)) / 2


def frozen_embeddings(audio_features, video_features, view: int = 0) -> dict[str, np.ndarray]:
    """musicnn, R(2+1)D and their concatenation: float32 `(n_segments, dim)` of one view.

    audio_features, video_features: `(n_segments, views, dim)` arrays or memmaps (feature store).
    """
    audio = np.asarray(audio_features[:, view], dtype=np.float32)
    video = np.asarray(video_features[:, view], dtype=np.float32)
    if len(audio) != len(video):
        raise ValueError(f"audio and video features cover {len(audio)} and {len(video)} segments; "
                         f"rebuild the feature store")
    return {"musicnn": audio, "R(2+1)D": video, "musicnn+R(2+1)D": np.concatenate([audio, video], axis=1)}


def cl_embeddings(run_folder: str | Path, n_segments: int) -> dict[str, np.ndarray]:
    """CL_a, CL_v and CL_agg `(n_segments, dim)` from a run's `embeddings.npz` (view 0, manifest order).

    Raises FileNotFoundError or ValueError with a one-line reason when the run is missing or
    does not cover the manifest's segments.
    """
    path = Path(run_folder) / "embeddings.npz"
    if not path.exists():
        raise FileNotFoundError(f"no embeddings at {path}; run notebook 03 (contrastive training) first")
    with np.load(path) as archive:
        audio, video, index = archive["audio"], archive["video"], archive["segment_index"]
    if len(index) != n_segments or not np.array_equal(index, np.arange(n_segments)):
        raise ValueError(f"{path} holds {len(index)} segments, not the manifest's {n_segments} in order; "
                         f"retrain this run")
    return {"CL_a": audio.astype(np.float32), "CL_v": video.astype(np.float32), "CL_agg": cl_agg(audio, video)}


# ---------------------------------------------------------------------------------------------
# The probe
# ---------------------------------------------------------------------------------------------


def build_probe(in_dim: int, n_labels: int, config: ProbeConfig = ProbeConfig()) -> nn.Sequential:
    """`(batch, in_dim)` → `(batch, n_labels)` logits: [dense → ReLU → dropout] per hidden width, then dense."""
    widths = (in_dim, *config.hidden)
    layers: list[nn.Module] = []
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(config.dropout)]
    return nn.Sequential(*layers, nn.Linear(widths[-1], n_labels))


def train_probe(x: torch.Tensor, targets: torch.Tensor, multilabel: bool, train_rows: np.ndarray, val_rows: np.ndarray,
                seed: int, config: ProbeConfig = ProbeConfig()) -> tuple[nn.Sequential, dict]:
    """Train a probe with early stopping on validation loss; returns it (best weights, eval mode) and its history.

    x: `(n, dim)` float32 standardised inputs; targets: `(n, n_labels)` float32 indicators, both
    on the training device. The seed drives initialisation, dropout and batch order.
    History: `epochs` run, `best_epoch`, `val_loss` of the best epoch.
    """
    torch.manual_seed(seed)
    model = build_probe(x.shape[1], targets.shape[1], config).to(x.device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = _loss_fn(multilabel)
    generator = torch.Generator().manual_seed(seed)
    train_idx, val_idx = torch.as_tensor(train_rows, device=x.device), torch.as_tensor(val_rows, device=x.device)
    best = {"val_loss": float("inf"), "epoch": -1, "state": None}
    epoch = -1
    for epoch in range(config.max_epochs):
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=generator).to(x.device)]
        for lo in range(0, len(order), config.batch_size):
            batch = order[lo:lo + config.batch_size]
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
    """Per-video mean of segment rows: `values` `(n, k)`, `video_ids` `(n,)` → (videos `(v,)`, means `(v, k)`)."""
    videos, codes = np.unique(np.asarray(video_ids), return_inverse=True)
    codes = codes.ravel()
    sums = np.zeros((len(videos), values.shape[1]))
    np.add.at(sums, codes, values)
    return videos, sums / np.bincount(codes)[:, None]


def predicted_labels(probs: np.ndarray, multilabel: bool, threshold: float = 0.5) -> np.ndarray:
    """`(n, n_labels)` 0/1 predictions: probabilities ≥ threshold (tags), or the arg-max class one-hot (genre)."""
    if multilabel:
        return (probs >= threshold).astype(np.uint8)
    return np.eye(probs.shape[1], dtype=np.uint8)[probs.argmax(1)]


def choose_threshold(targets: np.ndarray, probs: np.ndarray) -> float:
    """The `THRESHOLDS` value t with the highest macro F1 of `probs` `(n, k)` ≥ t against `targets` `(n, k)`.

    Ties go to the t nearest 0.5; 0.5 when macro F1 is undefined for every t (no positive in `targets`).
    """
    candidates = sorted(THRESHOLDS, key=lambda t: (abs(t - 0.5), t))
    f1 = np.array([macro_f1(targets, probs >= t) for t in candidates])
    return 0.5 if np.isnan(f1).all() else float(candidates[int(np.nanargmax(f1))])


def run_probe(x, task: ProbeTask, split, video_ids, seed: int, config: ProbeConfig = ProbeConfig(),
              device: str | torch.device | None = None) -> ProbeResult:
    """Train a probe for `task` on the labelled training segments of `x`, stop on validation, score on test.

    x: `(n_segments, dim)` embeddings in manifest order; split, video_ids: `(n_segments,)`.
    Segments whose embedding is not finite (features that failed) are left out and counted in
    `n_nonfinite`. Returns the scores at segment and video level (see the module docstring). Raises
    ValueError with a one-line reason when a split has no labelled segment.
    """
    x, split, video_ids = np.asarray(x, dtype=np.float32), np.asarray(split), np.asarray(video_ids)
    if not len(x) == len(split) == len(video_ids) == len(task.targets):
        raise ValueError(f"need one embedding, split and video id per segment of the task: {len(x)}, {len(split)}, "
                         f"{len(video_ids)} and {len(task.targets)}")
    finite = np.isfinite(x).all(1)
    rows = {s: np.flatnonzero((split == s) & task.labelled & finite) for s in SPLITS}
    empty = [s for s in SPLITS if not len(rows[s])]
    if empty:
        raise ValueError(f"{task.name} probe skipped: no labelled segment in the {' and '.join(empty)} split(s)")
    device = torch.device(device) if device else default_device()
    xs = torch.from_numpy(standardise(x, rows["train"])).to(device)
    targets = torch.from_numpy(task.targets.astype(np.float32)).to(device)
    with torch_threads(config.cpu_threads if device.type == "cpu" else None):
        model, history = train_probe(xs, targets, task.multilabel, rows["train"], rows["val"], seed, config)
        probs = {s: predict_probs(model, xs, rows[s], task.multilabel) for s in ("val", "test")}
    scores = {"n_train": len(rows["train"]), "n_val": len(rows["val"]), "n_test": len(rows["test"]),
              "n_test_videos": len(np.unique(video_ids[rows["test"]])),
              "n_nonfinite": int((~finite & task.labelled).sum()),
              **history}
    per_label = pd.DataFrame({"label": task.labels})
    for level in LEVELS:
        (y_val, p_val), (y_test, p_test) = (_at_level(task.targets[rows[s]], probs[s], video_ids[rows[s]], level)
                                            for s in ("val", "test"))
        threshold = choose_threshold(y_val, p_val) if task.multilabel else float("nan")
        predicted = predicted_labels(p_test, task.multilabel, threshold)
        per_label[f"auc_{level}"] = per_label_roc_auc(y_test, p_test)
        per_label[f"f1_{level}"] = per_label_f1(y_test, predicted)
        scores |= {f"auc_{level}": macro_roc_auc(y_test, p_test), f"f1_{level}": macro_f1(y_test, predicted),
                   f"threshold_{level}": threshold}
        if level == "video":
            per_label["test_videos"] = y_test.sum(0).astype(int)
    scores["labels_absent"] = int((per_label["test_videos"] == 0).sum())
    return ProbeResult(task.name, scores, per_label, rows["test"], probs["test"])


def _at_level(targets: np.ndarray, probs: np.ndarray, video_ids: np.ndarray,
              level: str) -> tuple[np.ndarray, np.ndarray]:
    """Targets and probabilities per segment, or averaged per video (targets are shared within a video)."""
    if level == "segment":
        return targets, probs
    _, mean_targets = video_means(targets.astype(np.float64), video_ids)
    return (mean_targets > 0.5).astype(np.uint8), video_means(probs, video_ids)[1]


# ---------------------------------------------------------------------------------------------
# Table 2: every embedding × task × seed
# ---------------------------------------------------------------------------------------------


def embeddings_for_seed(frozen: dict[str, np.ndarray], runs_dir: str | Path, cl_configs: list[str], seed: int,
                        n_segments: int) -> tuple[dict[tuple[str, str], np.ndarray], list[str]]:
    """The embeddings that probe seed `seed` uses, keyed by `(embedding, config)`, and notes on runs that are missing.

    Frozen features are keyed with config `FROZEN_CONFIG`; CL embeddings come from the
    contrastive run of the same seed of each configuration (`mvnb.results.run_dir`).
    """
    embeddings = {(name, FROZEN_CONFIG): x for name, x in frozen.items()}
    notes = []
    for config in cl_configs:
        try:
            for name, x in cl_embeddings(contrastive_run_dir(runs_dir, config, seed), n_segments).items():
                embeddings[(name, config)] = x
        except (FileNotFoundError, ValueError) as err:
            notes.append(f"{config} seed {seed} skipped: {err}")
    return embeddings, notes


def run_probes(embeddings: dict[tuple[str, str], np.ndarray], tasks: dict[str, ProbeTask], split, video_ids,
               seed: int, config: ProbeConfig = ProbeConfig(), device: str | torch.device | None = None,
               progress: bool = True) -> tuple[pd.DataFrame, dict, list[str]]:
    """Every embedding × task with one seed.

    Returns a table with one row per probe (`embedding, config, seed, task, collapsed` and the
    scores of `ProbeResult.scores`), the `ProbeResult`s keyed by `(embedding, config, task, seed)`,
    and one-line notes on probes that could not run (the others still do). An embedding whose
    test segments have collapsed (`metrics.is_collapsed`) is flagged, not probed: its row has
    `collapsed` True and no scores.
    """
    rows, results, notes = [], {}, []
    test = np.asarray(split) == "test"
    collapsed = {key: is_collapsed(x[test & np.isfinite(x).all(1)]) for key, x in embeddings.items()}
    jobs = [(key, task) for key in embeddings for task in tasks.values()]
    for (name, cfg), task in tqdm(jobs, desc=f"probes seed {seed}", disable=not progress):
        if collapsed[(name, cfg)]:
            rows.append({"embedding": name, "config": cfg, "seed": seed, "task": task.name, "collapsed": True})
            continue
        try:
            result = run_probe(embeddings[(name, cfg)], task, split, video_ids, seed, config, device)
        except ValueError as err:
            notes.append(f"{name} ({cfg}) seed {seed}: {err}")
            continue
        results[(name, cfg, task.name, seed)] = result
        rows.append({"embedding": name, "config": cfg, "seed": seed, "task": task.name, "collapsed": False,
                     **result.scores})
    return pd.DataFrame(rows), results, notes


def run_table2_probes(frozen: dict[str, np.ndarray], runs_dir: str | Path, cl_configs: list[str], seeds: list[int],
                      tasks: dict[str, ProbeTask], split, video_ids, config: ProbeConfig = ProbeConfig(),
                      device: str | torch.device | None = None) -> tuple[pd.DataFrame, dict, list[str]]:
    """All of Table 2: every embedding × task for each seed, probe seed s on the contrastive runs of seed s.

    Returns what `run_probes` does, over all seeds, with the notes on missing runs and skipped probes.
    """
    tables, results, notes = [], {}, []
    for seed in tqdm(seeds, desc="seeds"):
        embeddings, missing = embeddings_for_seed(frozen, runs_dir, cl_configs, seed, len(split))
        table, found, failed = run_probes(embeddings, tasks, split, video_ids, seed, config, device)
        tables.append(table)
        results |= found
        notes += missing + failed
    return pd.concat(tables, ignore_index=True), results, notes


def row_label(embedding: str, config: str) -> str:
    """Name of a Table 2 row: the embedding, with its contrastive configuration for CL rows."""
    return embedding if config == FROZEN_CONFIG else f"{embedding} · {config}"


def table2(scores: pd.DataFrame) -> pd.DataFrame:
    """Table 2: per embedding row, task and metric, the paper's value and ours (mean, sd, seeds) per level.

    scores: the concatenated tables of `run_probes`. Returns columns `row, embedding, config,
    task, metric, paper, segment_mean, segment_sd, video_mean, video_sd, seeds, collapsed`, rows
    in the paper's order, frozen rows first, then each configuration's CL rows. Seeds whose
    embedding collapsed are left out of mean and sd and counted in `collapsed`; where too few
    healthy seeds remain (`results.usable_seeds`), the row has no numbers.
    """
    if scores.empty:
        return pd.DataFrame(columns=TABLE2_COLUMNS)
    out = []
    for (embedding, config, task), group in scores.groupby(["embedding", "config", "task"], sort=False):
        for metric in ("auc", "f1"):
            paper = PAPER_TABLE2[embedding][task][metric == "f1"] if config in (FROZEN_CONFIG, PAPER_CL_CONFIG) else np.nan
            usable, note = usable_seeds(group["collapsed"])
            row = {"row": row_label(embedding, config), "embedding": embedding, "config": config, "task": task,
                   "metric": metric, "paper": paper, "seeds": group["seed"].nunique(), "collapsed": note or "none"}
            for level in LEVELS:
                values = group.loc[usable, f"{metric}_{level}"].to_numpy(dtype=float)
                finite = values[np.isfinite(values)]
                row[f"{level}_mean"] = finite.mean() if len(finite) else np.nan
                row[f"{level}_sd"] = finite.std(ddof=1) if len(finite) > 1 else np.nan
            out.append(row)
    table = pd.DataFrame(out, columns=TABLE2_COLUMNS)
    config_order = [FROZEN_CONFIG, *dict.fromkeys(c for c in table["config"] if c != FROZEN_CONFIG)]
    table["_c"] = table["config"].map(config_order.index)
    table["_e"] = table["embedding"].map(EMBEDDINGS.index)
    table["_t"] = table["task"].map(lambda t: TASKS.index(t) if t in TASKS else len(TASKS))
    return table.sort_values(["_c", "_e", "_t", "metric"]).drop(columns=["_c", "_e", "_t"]).reset_index(drop=True)


def _mean_sd(mean: float, sd: float, seeds: int, collapsed: str = "none") -> str:
    """'0.712 ± 0.015', '0.712' for one seed, '—' when undefined, 'collapsed' when no seed could be scored."""
    if not np.isfinite(mean):
        return "collapsed" if collapsed != "none" else "—"
    return f"{mean:.3f}" if seeds < 2 or not np.isfinite(sd) else f"{mean:.3f} ± {sd:.3f}"


def table2_markdown(table: pd.DataFrame) -> str:
    """Table 2 as markdown: a line per embedding row; per task and metric, the paper's value, then ours per segment and per video."""
    header = ["embedding"]
    for task in TASKS:
        for metric in ("AUC", "F1"):
            header += [f"{task} {metric} paper", "segment", "video"]
    header.append("collapsed")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, group in table.groupby("row", sort=False):
        cells = [label]
        for task in TASKS:
            for metric in ("auc", "f1"):
                match = group[(group["task"] == task) & (group["metric"] == metric)]
                if match.empty:
                    cells += ["—"] * 3
                    continue
                r = match.iloc[0]
                cells += ["—" if not np.isfinite(r["paper"]) else f"{r['paper']:.2f}",
                          _mean_sd(r["segment_mean"], r["segment_sd"], r["seeds"], r["collapsed"]),
                          _mean_sd(r["video_mean"], r["video_sd"], r["seeds"], r["collapsed"])]
        notes = sorted(set(group["collapsed"]) - {"none"})
        cells.append("; ".join(notes) or "none")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table2(table: pd.DataFrame, figures_dir: str | Path) -> tuple[Path, Path]:
    """Write `table2.md` and `table2.csv` into `figures_dir`, atomically."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    paths = figures_dir / "table2.md", figures_dir / "table2.csv"
    for path, write in zip(paths, (lambda p: p.write_text(table2_markdown(table)), lambda p: table.to_csv(p, index=False))):
        with atomic_write(path) as tmp:
            write(tmp)
    return paths


# ---------------------------------------------------------------------------------------------
# The paper's findings, checked against ours
# ---------------------------------------------------------------------------------------------


def paper_findings(table: pd.DataFrame, level: str = "segment", metric: str = "auc") -> pd.DataFrame:
    """Each comparison the paper's Table 2 makes, and whether ours agrees, per task and CL configuration.

    Comparisons: audio vs video features, concatenation vs audio, and each CL embedding vs the
    frozen features it is built on, CL_a vs CL_v, CL_agg vs CL_a. The paper's claim is "A > B"
    when its values differ by more than `PAPER_RESOLUTION` (they are printed to two decimals),
    else "A ≈ B". Ours, with `noise` = sqrt(sd_A² + sd_B²), the sds over seeds:
    - "A > B" is `reproduced` when our A − B > noise, `contradicted` when < −noise, else `not resolved`;
    - "A ≈ B" is `reproduced` when |A − B| + noise ≤ `EQUIVALENCE_MARGIN`, `contradicted` when
      |A − B| − noise > it, else `not resolved` (a noisy pair proves no equality);
    - `not resolved` whenever a row has fewer than two seeds (no sd to judge by);
    - `not measured` when a row is missing or its score undefined.
    `at_ceiling` flags pairs where both of our scores are ≥ `CEILING`: there the order says little.
    Columns: `task, finding, paper, ours, difference, noise, verdict, at_ceiling`.
    """
    out = []
    configs = [c for c in dict.fromkeys(table["config"]) if c != FROZEN_CONFIG]
    mine = table[table["metric"] == metric].set_index(["row", "task"])
    for task in [t for t in TASKS if t in set(table["task"])]:
        pairs = [("musicnn", "R(2+1)D"), ("musicnn+R(2+1)D", "musicnn")]
        for config in configs:
            cl = {name: row_label(name, config) for name in CONTRASTIVE}
            pairs += [("musicnn+R(2+1)D", cl["CL_agg"]), ("musicnn", cl["CL_a"]), ("R(2+1)D", cl["CL_v"]),
                      (cl["CL_a"], cl["CL_v"]), (cl["CL_agg"], cl["CL_a"])]
        for a, b in pairs:
            paper_a, paper_b = (PAPER_TABLE2[label.split(" · ")[0]][task][metric == "f1"] for label in (a, b))
            if paper_b > paper_a:
                (a, paper_a), (b, paper_b) = (b, paper_b), (a, paper_a)
            tie = paper_a - paper_b <= PAPER_RESOLUTION + 1e-9
            row = {"task": task, "finding": f"{a} {'≈' if tie else '>'} {b}", "paper": f"{paper_a:.2f} vs {paper_b:.2f}",
                   "ours": "—", "difference": np.nan, "noise": np.nan, "verdict": "not measured", "at_ceiling": False}
            if (a, task) in mine.index and (b, task) in mine.index:
                ma, mb = mine.loc[(a, task)], mine.loc[(b, task)]
                diff = ma[f"{level}_mean"] - mb[f"{level}_mean"]
                noise = float(np.sqrt(ma[f"{level}_sd"] ** 2 + mb[f"{level}_sd"] ** 2))
                if np.isfinite(diff):
                    verdict = ("not resolved" if not np.isfinite(noise) else
                               ("reproduced" if abs(diff) + noise <= EQUIVALENCE_MARGIN else "contradicted"
                                if abs(diff) - noise > EQUIVALENCE_MARGIN else "not resolved") if tie else
                               "reproduced" if diff > noise else "contradicted" if diff < -noise else "not resolved")
                    row |= {"ours": f"{ma[f'{level}_mean']:.3f} vs {mb[f'{level}_mean']:.3f}", "difference": diff,
                            "noise": noise, "verdict": verdict,
                            "at_ceiling": bool(min(ma[f"{level}_mean"], mb[f"{level}_mean"]) >= CEILING)}
            out.append(row)
    return pd.DataFrame(out)


def findings_summary(findings: pd.DataFrame) -> str:
    """A short markdown paragraph, generated from `paper_findings`, of what is reproduced and what is not."""
    if findings.empty:
        return "No probe could run, so none of the paper's findings could be checked."
    lines = []
    for verdict, words in (("reproduced", "Reproduced"), ("contradicted", "Contradicted"),
                           ("not resolved", "Not resolved (within the seed-to-seed noise, or one seed only)"),
                           ("not measured", "Not measured")):
        hits = findings[findings["verdict"] == verdict]
        if len(hits):
            items = "; ".join(f"{r.finding} on {r.task} ({r.ours})" for r in hits.itertuples())
            lines.append(f"- **{words}**, {len(hits)} of {len(findings)}: {items}.")
    ceiling = findings[findings["at_ceiling"]]
    if len(ceiling):
        items = "; ".join(f"{r.finding} on {r.task}" for r in ceiling.itertuples())
        lines.append(f"- Both scores are at the ceiling (≥ {CEILING}) in {len(ceiling)} comparison(s), where an order "
                     f"between embeddings says little: {items}.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def best_row(table: pd.DataFrame, task: str, level: str = "segment", metric: str = "auc") -> tuple[str, str] | None:
    """`(embedding, config)` of the row with the highest mean `metric` on `task`, or None."""
    rows = table[(table["task"] == task) & (table["metric"] == metric)].dropna(subset=[f"{level}_mean"])
    if rows.empty:
        return None
    best = rows.loc[rows[f"{level}_mean"].idxmax()]
    return best["embedding"], best["config"]


def per_label_auc(results: dict, embedding: str, config: str, task: str, level: str = "segment") -> pd.DataFrame:
    """Per-label test AUC of one embedding over seeds: `label, mean, sd, seeds, test_videos`."""
    frames = [r.per_label.assign(seed=k[3]) for k, r in results.items() if k[:3] == (embedding, config, task)]
    if not frames:
        return pd.DataFrame(columns=["label", "mean", "sd", "seeds", "test_videos"])
    stacked = pd.concat(frames)
    return (stacked.groupby("label", sort=False)
            .agg(mean=(f"auc_{level}", "mean"), sd=(f"auc_{level}", "std"), seeds=(f"auc_{level}", "count"),
                 test_videos=("test_videos", "mean"))
            .reset_index())


def per_label_auc_figure(frame: pd.DataFrame, title: str) -> plt.Figure:
    """Bar chart of per-label AUC (mean ± sd over seeds), the chance line at 0.5; labels without an AUC say why.

    frame: `per_label_auc`'s table (`label, mean, sd, test_videos`).
    """
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(frame) + 2), 3.4))
    positions = np.arange(len(frame))
    ax.bar(positions, frame["mean"].fillna(0), yerr=frame["sd"].fillna(0), color="tab:blue", capsize=3)
    for i in np.flatnonzero(frame["mean"].isna().to_numpy()):
        why = "absent\nfrom test" if frame["test_videos"].iloc[i] == 0 else "no negative\nin test"
        ax.text(i, 0.02, why, ha="center", va="bottom", fontsize=7, rotation=90)
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="chance")
    ticks = [f"{label} ({n:g})" for label, n in zip(frame["label"], frame["test_videos"])]
    ax.set_xticks(positions, ticks, rotation=45, ha="right")
    ax.set(ylim=(0, 1), ylabel="test ROC-AUC", xlabel="tag (test videos carrying it)", title=title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def genre_confusion(results: dict, embedding: str, config: str, task: ProbeTask) -> pd.DataFrame:
    """Test-segment counts, summed over seeds, of true genre (rows) × predicted genre (columns)."""
    counts = np.zeros((len(task.labels), len(task.labels)), dtype=int)
    for key, result in results.items():
        if key[:3] == (embedding, config, task.name):
            true = task.targets[result.test_rows].argmax(1)
            np.add.at(counts, (true, result.test_probs.argmax(1)), 1)
    return pd.DataFrame(counts, index=pd.Index(task.labels, name="true"), columns=pd.Index(task.labels, name="predicted"))


def confusion_figure(counts: pd.DataFrame, title: str) -> plt.Figure:
    """Row-normalised confusion matrix with the counts written in each cell; empty rows stay blank."""
    values = counts.to_numpy(dtype=float)
    totals = values.sum(1, keepdims=True)
    share = np.divide(values, totals, out=np.full_like(values, np.nan), where=totals > 0)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(counts), 0.8 + 0.55 * len(counts)))
    image = ax.imshow(share, vmin=0, vmax=1, cmap="Blues")
    for (i, j), n in np.ndenumerate(values):
        if n:
            ax.text(j, i, int(n), ha="center", va="center", fontsize=8, color="white" if share[i, j] > 0.6 else "black")
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
        raise KeyError(f"unknown probe parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    return ProbeConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
