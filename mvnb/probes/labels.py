"""The probes' tasks: genre and tags from the metadata, as targets for every segment of a manifest.

Segments inherit their video's labels (`genre_task`, `tag_task`): genre is one label per video,
softmax and cross-entropy over the genres of the training split; tags are split on `;`, the
`top_k` (10) most frequent among training videos kept, sigmoid and binary cross-entropy. Videos
without a label are left out of that task, and counted. With several fold rotations
(`probe_tasks`), the labels are chosen on the videos that train in every one of them, so that no
rotation's test video has a say in them, and every rotation's probe predicts the same labels.
`task_rows` picks a split's labelled segments, for the probes (`mvnb.probes`) and the reference
predictors (`mvnb.probes.scores`) alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mvnb.corpus import SPLITS, manifest_split

TOP_TAGS = 10
TASKS = ("tags", "genre")


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
