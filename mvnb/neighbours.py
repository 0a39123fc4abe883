"""Nearest neighbours of segments and videos in any embedding, their agreement with the
metadata, and cold-start queries for videos the catalogue has never seen.

The paper judged its embeddings by looking at neighbours. At **video level**, each video's
segment embeddings are averaged per modality, then the two modalities are averaged; 25 seed
videos get their 3 nearest videos. At **segment level**, 20 seed segments get 3 neighbours.

Embeddings: the six of `mvnb.embeddings` (`EMBEDDINGS`), under its names, each `(n_segments, dim)`
on view 0, in manifest order.

Similarity is cosine. A seed's neighbours never include the seed itself, nor, at segment
level, any segment of its own video. Cross-modal queries (`CL_a` seeds against a `CL_v`
gallery) follow the same rule, so an audio query never finds its own video.

**Metadata agreement** puts a number on "do the neighbours make sense": the fraction of a
seed's k neighbours that share its genre, and their mean tag Jaccard, each next to its exact
chance level (the same quantity averaged over every item the seed could have retrieved). The
agreement table's seeds are the **test** items, and the gallery is every other video of the
corpus, so a learned embedding is judged on videos its heads never saw: with several fold
rotations, a test item is scored with the runs of the rotation that tests it (its video's test
rotation, `mvnb.corpus.rotation_tested`), and the frozen rows take the same test items.
Training seeds (the first rotation's training split, scored with its runs) stand beside them,
labelled, since there a learned embedding may only have fitted. Means come with 95 % intervals
from a bootstrap over the seeds' videos, within rotations, pooled over healthy training runs.

**Cold start** (`similar_videos`, `python -m mvnb similar`): a new video is cut into segments
exactly as the catalogue was (`mvnb.segments`), encoded with the same frozen encoders
(`mvnb.features`, checked by sha256) and the run's heads, averaged to one video embedding and
compared with every catalogue video.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mvnb.corpus import rotation_split, rotation_tested
from mvnb.embeddings import FROZEN, LEARNED, cl_embeddings, frozen_embeddings, learned_embeddings
from mvnb.embeddings import NAMES as EMBEDDINGS
from mvnb.metrics import BOOTSTRAP_DRAWS, bootstrap_interval, is_collapsed, unit_rows
from mvnb.probes import video_means
from mvnb.results import format_interval, run_dir, usable_seeds, versus_chance

log = logging.getLogger(__name__)

CROSS_MODAL = (("CL_a", "CL_v"), ("CL_v", "CL_a"))  # (query embedding, gallery embedding)
LEVELS = ("segment", "video")
AGGREGATES = ("mean", "unit_mean")
CONFIGS = ("paper_baseline", "corrected")
_CHUNK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------- video level


def video_embeddings(segment_embeddings, video_ids, aggregate: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """One embedding per video from its segments' embeddings.

    segment_embeddings: `(n_segments, dim)`; video_ids: `(n_segments,)`.
    aggregate: "mean" (the paper's: the plain mean of the segments) or "unit_mean" (the mean of
        the segments scaled to unit length, so that no segment counts more for being longer).
    Returns `(ids (n_videos,), embeddings (n_videos, dim))`, videos in sorted id order.
    """
    if aggregate not in AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate!r}; choose one of {', '.join(AGGREGATES)}")
    x = (
        unit_rows(segment_embeddings)
        if aggregate == "unit_mean"
        else np.asarray(segment_embeddings, dtype=np.float32)
    )
    if len(video_ids) != len(x):
        raise ValueError(f"need one video id per segment: {len(video_ids)} ids for {len(x)} segments")
    ids, means = video_means(x, video_ids)
    return ids, means.astype(np.float32)


# --------------------------------------------------------------------------- search


def cosine_neighbours(
    queries, gallery, k: int, query_groups=None, gallery_groups=None
) -> tuple[np.ndarray, np.ndarray]:
    """The k gallery items most cosine-similar to each query, best first.

    queries: `(q, dim)`; gallery: `(g, dim)`.
    query_groups `(q,)`, gallery_groups `(g,)`: labels (video ids); gallery items in the query's
        group are left out. Pass both or neither; with neither, nothing is left out.
    Returns `(indices (q, k) int64, similarities (q, k) float32)`. Ties go to the earlier
    gallery item. Raises ValueError when a query has fewer than k items to choose from.
    """
    queries, gallery = unit_rows(queries), unit_rows(gallery)
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"queries and gallery must share a dimension, got {queries.shape} and {gallery.shape}"
        )
    if (query_groups is None) != (gallery_groups is None):
        raise ValueError("pass query_groups and gallery_groups together (or neither)")
    q, g = len(queries), len(gallery)
    if query_groups is not None:
        labels, codes = np.unique(
            np.concatenate([np.asarray(query_groups), np.asarray(gallery_groups)]), return_inverse=True
        )
        codes = codes.ravel()
        if len(codes) != q + g:
            raise ValueError(
                f"need one group per query and per gallery item: got {len(query_groups)} and "
                f"{len(gallery_groups)}"
            )
        query_codes, gallery_codes = codes[:q], codes[q:]
        eligible = g - np.bincount(gallery_codes, minlength=len(labels))[query_codes]
    else:
        eligible = np.full(q, g)
    if q and eligible.min() < k:
        raise ValueError(
            f"k = {k} neighbours asked, but a query has only {eligible.min()} gallery items to choose from"
        )
    indices, sims = np.empty((q, k), dtype=np.int64), np.empty((q, k), dtype=np.float32)
    step = max(1, _CHUNK_ELEMENTS // max(g, 1))
    for lo in range(0, q, step):
        rows = slice(lo, min(lo + step, q))
        block = queries[rows] @ gallery.T
        if query_groups is not None:
            block[query_codes[rows, None] == gallery_codes[None, :]] = -np.inf
        order = np.argsort(-block, axis=1, kind="stable")[:, :k]
        indices[rows], sims[rows] = order, np.take_along_axis(block, order, axis=1)
    return indices, sims


# --------------------------------------------------------------------------- metadata agreement


def tag_matrix(tags: Sequence) -> tuple[np.ndarray, list[str]]:
    """`(n, n_tags)` bool membership of `;`-separated tag strings (NaN or "" is no tag), and the
    vocabulary."""
    sets = [
        set(t for t in str(text).split(";") if t.strip()) if isinstance(text, str) else set() for text in tags
    ]
    vocabulary = sorted(set().union(*sets)) if sets else []
    column = {tag: j for j, tag in enumerate(vocabulary)}
    matrix = np.zeros((len(sets), len(vocabulary)), dtype=bool)
    for i, s in enumerate(sets):
        matrix[i, [column[t] for t in s]] = True
    return matrix, vocabulary


def jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`(p, q)` Jaccard similarity |A ∩ B| / |A ∪ B| between the rows of bool `(p, t)` and `(q, t)`;
    two empty sets count 0 (no shared evidence)."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def metadata_agreement(seeds, neighbours, genres, tags, groups) -> pd.DataFrame:
    """Per seed, how well its neighbours agree with its metadata, and the chance level of that.

    seeds: `(q,)` item index of each seed; neighbours: `(q, k)` item indices of its neighbours;
        genres, tags (`;`-separated), groups (video ids): `(n,)` per item. Seeds and neighbours
        index the same items (a cross-modal search indexes segments or videos on both sides).
    Returns q rows: `genre` (fraction of the k neighbours with the seed's genre), `tags` (their
    mean tag Jaccard with the seed), and `genre_chance`, `tags_chance`: the same averaged over
    every item outside the seed's group, what k neighbours drawn at random would score in
    expectation. Genre columns are NaN where a genre is missing.
    """
    seeds, neighbours = np.asarray(seeds, dtype=np.int64), np.asarray(neighbours, dtype=np.int64)
    genres = pd.Series(np.asarray(genres, dtype=object))
    known = genres.notna().to_numpy()
    codes = pd.factorize(genres)[0]
    tag_rows, _ = tag_matrix(tags)
    group_codes = pd.factorize(pd.Series(np.asarray(groups, dtype=object)))[0]
    columns = {name: np.empty(len(seeds)) for name in ("genre", "tags", "genre_chance", "tags_chance")}
    step = max(1, _CHUNK_ELEMENTS // max(len(codes), 1))  # seeds per block: memory O(n) per seed
    for lo in range(0, len(seeds), step):
        block, near = seeds[lo : lo + step], neighbours[lo : lo + step]
        rows = slice(lo, lo + len(block))
        eligible = group_codes[block][:, None] != group_codes[None, :]
        similarity = jaccard(tag_rows[block], tag_rows)
        n_eligible = eligible.sum(1)
        columns["genre"][rows] = (codes[near] == codes[block][:, None]).mean(1)
        columns["tags"][rows] = np.take_along_axis(similarity, near, axis=1).mean(1)
        columns["genre_chance"][rows] = ((codes[block][:, None] == codes[None, :]) & eligible).sum(
            1
        ) / n_eligible
        columns["tags_chance"][rows] = (similarity * eligible).sum(1) / n_eligible
    table = pd.DataFrame(columns)
    table.loc[~known[seeds], ["genre", "genre_chance"]] = np.nan
    return table


# --------------------------------------------------------------------------- the catalogue


@dataclass
class Catalogue:
    """A corpus's segments and every embedding of them, for browsing.

    data_dir: the segment store (DATA_DIR). segments: the manifest rows of the segments with
    valid features in both modalities, renumbered 0..n−1 (`video_id, k, segment_id, video_path,
    audio_path` relative to data_dir, `split` (rotation 0's), `fold`, and labels such as `genre`, `tags`).
    frozen: name → `(n, dim)` (`FROZEN`). runs: `(config, rotation, seed)` → {name: `(n, dim)`}
    (`LEARNED`). run_dirs: `(config, rotation, seed)` → the run directory.
    """

    data_dir: Path
    segments: pd.DataFrame
    frozen: dict[str, np.ndarray]
    runs: dict[tuple[str, int, int], dict[str, np.ndarray]]
    run_dirs: dict[tuple[str, int, int], Path]

    @property
    def configs(self) -> list[str]:
        """The configurations with at least one run, in load order."""
        return list(dict.fromkeys(config for config, _, _ in self.runs))

    @property
    def rotations(self) -> list[int]:
        """The fold rotations of the loaded runs, in load order; [0] (the manifest's split) with none."""
        return list(dict.fromkeys(rotation for _, rotation, _ in self.runs)) or [0]

    def run_keys(self, config: str) -> list[tuple[int, int]]:
        """The `(rotation, seed)` of every run loaded for `config`, in load order."""
        keys = [(rotation, seed) for c, rotation, seed in self.runs if c == config]
        if not keys:
            raise KeyError(
                f"no run of configuration {config!r} is loaded; loaded: {', '.join(self.configs) or 'none'}"
            )
        return keys

    @functools.cached_property
    def videos(self) -> pd.DataFrame:
        """One row per video, in sorted id order (the order of video-level embeddings): its labels,
        `n_segments`, and the `segment_id, k, video_path, audio_path` of its middle segment (its clip).
        Computed once: a map click or a query asks for it again."""
        segs = self.segments
        counts = segs.groupby("video_id", sort=True).size()
        size = counts.loc[segs["video_id"]].to_numpy()
        middle = segs[segs.groupby("video_id").cumcount().to_numpy() == size // 2]
        return (
            middle.assign(n_segments=counts.loc[middle["video_id"]].to_numpy())
            .sort_values("video_id")
            .reset_index(drop=True)
        )

    def groups(self, level: str) -> np.ndarray:
        """The video id of each item at `level` ("segment" or "video")."""
        _check_level(level)
        ids = self.segments["video_id"].to_numpy()
        return ids if level == "segment" else np.unique(ids)

    def items(self, level: str) -> pd.DataFrame:
        """The rows described by `level`: `segments` or `videos`."""
        _check_level(level)
        return self.segments if level == "segment" else self.videos

    def embedding(
        self,
        name: str,
        level: str = "segment",
        config: str | None = None,
        run: tuple[int, int] | None = None,
        aggregate: str = "mean",
    ) -> np.ndarray:
        """Embedding `name` (`EMBEDDINGS`) of every item at `level`, `(n_items, dim)` float32.

        config, run: the run's configuration and `(rotation, seed)`, for the learned embeddings
        (run None: the first loaded); aggregate: how segments make a video (see `video_embeddings`).
        """
        _check_level(level)
        if name in FROZEN:
            values = self.frozen[name]
        elif name in LEARNED:
            if config is None:
                raise ValueError(
                    f"{name} is learned: name the run's config (one of {', '.join(self.configs)})"
                )
            rotation, seed = self.run_keys(config)[0] if run is None else run
            if (config, rotation, seed) not in self.runs:
                raise KeyError(
                    f"run {config} rotation {rotation} seed {seed} is not loaded; (rotation, seed) loaded: "
                    f"{self.run_keys(config)}"
                )
            values = self.runs[config, rotation, seed][name]
        else:
            raise KeyError(f"unknown embedding {name!r}; choose one of {', '.join(EMBEDDINGS)}")
        if level == "segment":
            return values
        return video_embeddings(values, self.segments["video_id"].to_numpy(), aggregate)[1]


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")


def report_runs(
    runs_dir: str | Path,
    configs: Sequence[str] = CONFIGS,
    rotations: Sequence[int] = (0,),
    seeds: Sequence[int] = (0,),
) -> dict[tuple[str, int, int], Path]:
    """`{(config, rotation, seed): run directory}` of the report's training runs under `runs_dir` (see
    `run_dir`),
    rotation by rotation.

    A missing run is skipped with a warning; a config without any run is an error naming the
    notebook that makes it.
    """
    found = {}
    for config in configs:
        for rotation in rotations:
            for seed in seeds:
                path = run_dir(runs_dir, config, seed, rotation=rotation)
                if (path / "embeddings.npz").is_file():
                    found[config, int(rotation), int(seed)] = path
                else:
                    log.warning(
                        "no run %s rotation %d seed %d at %s; skipping it", config, rotation, seed, path
                    )
        if not any(c == config for c, _, _ in found):
            raise FileNotFoundError(
                f"no run of configuration {config!r} under {Path(runs_dir) / 'train' / config} "
                f"for rotations {list(rotations)} and seeds {list(seeds)}; run notebook 03 "
                f"(or `python -m mvnb train`) first"
            )
    return found


def load_catalogue(data_dir: str | Path, runs: dict[tuple[str, int], str | Path] | None = None) -> Catalogue:
    """The corpus at `data_dir` with its frozen features and the embeddings of `runs`.

    runs: `{(config, rotation, seed): run directory}` (e.g. `report_runs(runs_dir)`); None for frozen
        features only. Each run's embeddings.npz must cover the store's manifest.
    Segments whose features (or embeddings) are not finite are left out.
    """
    from mvnb.features import load_feature_pair

    data_dir = Path(data_dir)
    manifest, audio, video, audio_meta, video_meta = load_feature_pair(data_dir)
    keep = audio_meta["valid"] & video_meta["valid"]
    learned, dirs = {}, {}
    for key, path in (runs or {}).items():
        learned[key], dirs[key] = cl_embeddings(path, len(manifest)), Path(path)
        keep &= np.isfinite(learned[key]["CL_a"]).all(1) & np.isfinite(learned[key]["CL_v"]).all(1)
    if not keep.any():
        raise ValueError(f"no segment of {data_dir} has valid features in both modalities")
    rows = np.flatnonzero(keep)
    frozen = frozen_embeddings(
        np.asarray(audio[rows, 0], dtype=np.float32), np.asarray(video[rows, 0], dtype=np.float32)
    )
    learned = {key: {name: values[rows] for name, values in embs.items()} for key, embs in learned.items()}
    return Catalogue(data_dir, manifest.iloc[rows].reset_index(drop=True), frozen, learned, dirs)


# --------------------------------------------------------------------------- neighbours of seeds


def draw_seeds(n_items: int, n_seeds: int, seed: int = 0) -> np.ndarray:
    """`min(n_seeds, n_items)` distinct item indices drawn at random with `seed`, in draw order."""
    return np.random.default_rng(seed).permutation(n_items)[: min(n_seeds, n_items)]


def search(
    catalogue: Catalogue,
    name: str,
    level: str = "segment",
    k: int = 3,
    gallery: str | None = None,
    config: str | None = None,
    run: tuple[int, int] | None = None,
    seeds: np.ndarray | None = None,
    aggregate: str = "mean",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbours of seed items in one embedding; `gallery` names another embedding for a
    cross-modal search (e.g. name "CL_a", gallery "CL_v").

    config, run: the training run `(rotation, seed)` of learned embeddings (`Catalogue.embedding`);
    seeds: item indices (None: every item). Returns `(seeds (q,), indices (q, k), similarities (q, k))`.
    """
    queries = catalogue.embedding(name, level, config, run, aggregate)
    items = queries if gallery is None else catalogue.embedding(gallery, level, config, run, aggregate)
    seeds = np.arange(len(queries)) if seeds is None else np.asarray(seeds, dtype=np.int64)
    groups = catalogue.groups(level)
    indices, sims = cosine_neighbours(queries[seeds], items, k, groups[seeds], groups)
    return seeds, indices, sims


def neighbour_table(
    catalogue: Catalogue,
    name: str,
    level: str = "video",
    k: int = 3,
    n_seeds: int = 25,
    gallery: str | None = None,
    config: str | None = None,
    run: tuple[int, int] | None = None,
    draw: int = 0,
    aggregate: str = "mean",
    items: Sequence[int] | None = None,
) -> pd.DataFrame:
    """The neighbours of `n_seeds` random seed items (or of the given `items`), one row per tile of a grid.

    Rows come in groups of k + 1 per seed: `level`, `row` (the seed's number), `rank` (0 for the seed,
    then 1..k), `item` (index at `level`), `similarity` to the seed (NaN for the seed itself),
    and the item's `video_id, segment_id, k_segment, genre, tags, video_path, audio_path`; at
    video level, the segment columns name the video's middle segment, which is its clip.
    config, run: the training run `(rotation, seed)` of learned embeddings (`Catalogue.embedding`);
    draw: the random seed of the choice of seed items; items: seed item indices at `level`, in
        place of a random draw.
    """
    rows = catalogue.items(level)
    chosen = draw_seeds(len(rows), n_seeds, draw) if items is None else np.asarray(items, dtype=np.int64)
    seeds, indices, sims = search(catalogue, name, level, k, gallery, config, run, chosen, aggregate)
    tiles = np.column_stack([seeds, indices]).ravel()
    table = pd.DataFrame(
        {
            "level": level,
            "row": np.repeat(np.arange(len(seeds)), k + 1),
            "rank": np.tile(np.arange(k + 1), len(seeds)),
            "item": tiles,
            "similarity": np.column_stack([np.full(len(seeds), np.nan, np.float32), sims]).ravel(),
        }
    )
    columns = [
        c
        for c in ("video_id", "segment_id", "k", "genre", "tags", "split", "video_path", "audio_path")
        if c in rows
    ]
    labels = rows.iloc[tiles][columns].reset_index(drop=True).rename(columns={"k": "k_segment"})
    return pd.concat([table, labels], axis=1)


AGREEMENT_SPLITS = (
    "test",
    "train",
)  # the seeds of the agreement table: test items, and training items beside them


def agreement_rows(
    catalogue: Catalogue,
    name: str,
    level: str,
    k: int,
    gallery: str | None,
    config: str | None,
    run: tuple[int, int] | None,
    seeds: np.ndarray,
    aggregate: str = "mean",
) -> pd.DataFrame:
    """The seed items `seeds` at `level`, each against every other video's items: `metadata_agreement`'s
    columns plus the seed's `item` index and `video_id`, one row per seed."""
    items = catalogue.items(level)
    genres = items["genre"] if "genre" in items else pd.Series([np.nan] * len(items))
    tags = items["tags"] if "tags" in items else pd.Series([""] * len(items))
    seeds, indices, _ = search(catalogue, name, level, k, gallery, config, run, seeds, aggregate)
    table = metadata_agreement(seeds, indices, genres, tags, catalogue.groups(level))
    return table.assign(item=seeds, video_id=catalogue.groups(level)[seeds])


def agreement_seeds(catalogue: Catalogue, level: str) -> tuple[np.ndarray, np.ndarray]:
    """Per item at `level`: the rotation among `catalogue.rotations` that tests it (−1: none), and whether
    it trains in the first of them. `(tested (n,) int, train (n,) bool)`."""
    folds = catalogue.items(level)["fold"].to_numpy()
    return rotation_tested(folds, catalogue.rotations), rotation_split(
        folds, catalogue.rotations[0]
    ) == "train"


def agreement_table(
    catalogue: Catalogue,
    k: int = 3,
    levels: Sequence[str] = LEVELS,
    aggregate: str = "mean",
    n_draws: int = BOOTSTRAP_DRAWS,
    draw_seed: int = 0,
) -> pd.DataFrame:
    """Metadata agreement of every embedding at each level, test items as seeds, training items beside.

    One row per level and search (frozen embeddings; then per loaded config the learned ones and
    the cross-modal searches `CL_a→CL_v`, `CL_v→CL_a`). Each seed's gallery is every item of the
    other videos of the corpus. The `test` seeds are the items tested by one of the catalogue's
    rotations (`agreement_seeds`), each searched in the runs of its own rotation; the `train`
    seeds are the first rotation's training items, in that rotation's runs; frozen rows take the
    same seeds. For each of `AGREEMENT_SPLITS`, pooled over the config's healthy training runs:
    `<split>_genre`, `<split>_tags` (mean over the split's seeds) with `_low`, `_high` (95 %
    interval from a bootstrap over the seeds' videos within rotations, `metrics.bootstrap_interval`),
    `_chance` (the mean chance level) and `_versus_chance` ("above chance", "at chance", "below
    chance": the interval of agreement − chance, paired per seed, against 0); `<split>_seeds`,
    `<split>_videos` (distinct seed items and their videos). Also `level, embedding, config, runs`
    (training runs), `collapsed` ("k of n runs collapsed" or "none"). A run whose embedding (either
    one, for a cross-modal search) has collapsed (`metrics.is_collapsed`) is left out; with too few
    healthy runs left (`results.usable_seeds`) the row has no numbers.
    """
    rows = []
    searches = [(name, None, None) for name in FROZEN]
    for config in catalogue.configs:
        searches += [(name, None, config) for name in LEARNED] + [(q, g, config) for q, g in CROSS_MODAL]
    first = catalogue.rotations[0]
    for level in levels:
        tested, train = agreement_seeds(catalogue, level)
        for name, gallery, config in searches:
            runs = catalogue.run_keys(config) if config else [None]
            collapsed = pd.Series(
                [
                    any(
                        is_collapsed(catalogue.embedding(e, level, config, run, aggregate))
                        for e in {name, gallery or name}
                    )
                    for run in runs
                ]
            )
            usable, note = usable_seeds(collapsed)
            parts = {split: [] for split in AGREEMENT_SPLITS}
            for run in (run for run, ok in zip(runs, usable, strict=True) if ok):
                mine = tested >= 0 if run is None else tested == run[0]
                beside = train if run is None or run[0] == first else np.zeros_like(train)
                found = agreement_rows(
                    catalogue, name, level, k, gallery, config, run, np.flatnonzero(mine | beside), aggregate
                )
                seeds = found["item"].to_numpy()
                parts["test"].append(found[mine[seeds]].assign(rotation=tested[seeds[mine[seeds]]]))
                parts["train"].append(found[beside[seeds]].assign(rotation=first))
            row = {
                "level": level,
                "embedding": name if gallery is None else f"{name}→{gallery}",
                "config": config or "frozen",
                "runs": len(runs),
                "collapsed": note or "none",
            }
            for split in AGREEMENT_SPLITS:
                part = pd.concat(parts[split], ignore_index=True) if parts[split] else None
                row |= {
                    f"{split}_seeds": 0 if part is None else part["item"].nunique(),
                    f"{split}_videos": 0 if part is None else part["video_id"].nunique(),
                }
                for metric in ("genre", "tags"):
                    row |= _agreement_cells(part, metric, f"{split}_{metric}", n_draws, draw_seed)
            rows.append(row)
    return pd.DataFrame(rows)


def _agreement_cells(part: pd.DataFrame | None, metric: str, prefix: str, n_draws: int, seed: int) -> dict:
    """`prefix`, `_low`, `_high`, `_chance`, `_versus_chance` of one metric over the seeds in `part` (NaN
    when there
    are none); videos are resampled within `part`'s `rotation`s."""
    cells = {
        prefix: np.nan,
        f"{prefix}_low": np.nan,
        f"{prefix}_high": np.nan,
        f"{prefix}_chance": np.nan,
        f"{prefix}_versus_chance": "—",
    }
    if part is None:
        return cells | {f"{prefix}_versus_chance": "collapsed"}
    part = part[part[metric].notna()]
    if part.empty:
        return cells
    estimate, low, high = bootstrap_interval(
        part[metric], part["video_id"], "mean", part["rotation"], n_draws, seed=seed
    )
    _, above_low, above_high = bootstrap_interval(
        part[metric] - part[f"{metric}_chance"],
        part["video_id"],
        "mean",
        part["rotation"],
        n_draws,
        seed=seed,
    )
    return {
        prefix: estimate,
        f"{prefix}_low": low,
        f"{prefix}_high": high,
        f"{prefix}_chance": part[f"{metric}_chance"].mean(),
        f"{prefix}_versus_chance": versus_chance(above_low, above_high, 0.0),
    }


def format_agreement(table: pd.DataFrame) -> pd.DataFrame:
    """`agreement_table` for reading: test-split seeds first (mean [95 % interval], chance, verdict), then the
    train-split seeds' means with their intervals; per split the number of seed items and of their distinct
    videos (`test_videos`, `train_videos`)."""

    def cell(prefix: str) -> list[str]:
        return [
            "collapsed"
            if verdict == "collapsed"
            else "—"
            if not np.isfinite(m)
            else format_interval(m, lo, hi, 3)
            for m, lo, hi, verdict in zip(
                table[prefix],
                table[f"{prefix}_low"],
                table[f"{prefix}_high"],
                table[f"{prefix}_versus_chance"],
                strict=True,
            )
        ]

    out = {"level": table["level"], "embedding": table["embedding"], "config": table["config"]}
    for split in AGREEMENT_SPLITS:
        label = f"{split}-split seeds"
        for metric, words in (("genre", "genre@k"), ("tags", "tag Jaccard@k")):
            prefix = f"{split}_{metric}"
            out[f"{words}, {label}"] = cell(prefix)
            if split == "test":  # the result; the training seeds stand beside it, as means only
                out[f"{words} chance"] = table[f"{prefix}_chance"].map(
                    lambda x: "—" if not np.isfinite(x) else f"{x:.3f}"
                )
                out[f"{words} vs chance"] = table[f"{prefix}_versus_chance"]
        out[label] = table[f"{split}_seeds"]
        out[f"{split}_videos"] = table[f"{split}_videos"]
    out |= {"runs": table["runs"], "collapsed": table["collapsed"]}
    return pd.DataFrame(out)


def agreement_note(table: pd.DataFrame, k: int, rotations: Sequence[int]) -> str:
    """One markdown line on what the agreement table measured: its seeds, gallery, rotations and intervals.

    rotations: the catalogue's (`Catalogue.rotations`), the first giving the training seeds.
    """
    counts = table[table["config"] == "frozen"].drop_duplicates("level").set_index("level")
    seeds = "; ".join(
        f"{level} level: {r['test_seeds']} test seeds of {r['test_videos']} videos "
        f"({r['train_seeds']} training seeds of {r['train_videos']} videos beside)"
        for level, r in counts.iterrows()
    )
    plural = "s" if len(rotations) > 1 else ""
    return (
        f"k = {k} neighbours per seed; the gallery is every item of the other videos of the corpus. {seeds}. "
        f"Test seeds come from rotation{plural} {', '.join(map(str, rotations))}, each scored with the runs "
        f"of the "
        f"rotation that tests it; training seeds are rotation {rotations[0]}'s. Means with 95 % intervals "
        f"from a "
        f"bootstrap over the seeds' videos within rotations, pooled over healthy training runs; 'vs chance' "
        f"reads "
        f"the interval of agreement − chance."
    )


def agreement_findings(table: pd.DataFrame, split: str = "test") -> str:
    """Markdown, generated from `agreement_table`: per level and metric, which searches agree with the
    metadata above chance, at chance or below it on `split`'s seeds (the paired interval of agreement −
    chance)."""
    lines = []
    for level, part in table.groupby("level", sort=False):
        for metric, words in (("genre", "genre@k"), ("tags", "tag Jaccard@k")):
            verdicts = part[f"{split}_{metric}_versus_chance"]
            named = [
                f"{v}: "
                + ", ".join(
                    f"`{e}`" + ("" if c == "frozen" else f" ({c})")
                    for e, c in zip(
                        part.loc[verdicts == v, "embedding"], part.loc[verdicts == v, "config"], strict=True
                    )
                )
                for v in ("above chance", "at chance", "below chance", "collapsed", "—")
                if (verdicts == v).any()
            ]
            lines.append(f"- **{level} level, {words}, {split}-split seeds**: " + "; ".join(named) + ".")
    return "\n".join(lines)


def similarity_note(
    catalogue: Catalogue, name: str, level: str, configs: Sequence[str], run: tuple[int, int] | None = None
) -> str:
    """Markdown: the range of cosine similarity between items of different videos in embedding `name` at
    `level`, per training config in `configs` (run `(rotation, seed)` of each), so that a grid's similarities
    can be read against it."""
    parts = []
    for config in configs:
        x, groups = unit_rows(catalogue.embedding(name, level, config, run)), catalogue.groups(level)
        i, j = np.triu_indices(len(x), k=1)
        cosine = (x @ x.T)[i, j][groups[i] != groups[j]]  # n × n: meant for video level
        parts.append(f"{config}: {cosine.min():.4f} to {cosine.max():.4f} (median {np.median(cosine):.4f})")
    pair = "two different videos" if level == "video" else "two segments of different videos"
    return (
        f"Cosine similarity of `{name}` between {pair}, over all {len(catalogue.items(level))} {level}s: "
        + "; ".join(parts)
        + "."
    )


def plot_agreement(table: pd.DataFrame):
    """Bar charts of genre agreement and tag Jaccard of the test seeds per embedding and level, with their
    95 % intervals; chance as a tick, the training seeds' means as hollow circles."""
    import matplotlib.pyplot as plt

    levels = list(dict.fromkeys(table["level"]))
    fig, axes = plt.subplots(
        len(levels), 2, figsize=(12, 2.2 + 2.3 * len(levels)), squeeze=False, constrained_layout=True
    )
    for row, level in zip(axes, levels, strict=True):
        part = table[table["level"] == level].reset_index(drop=True)
        labels = [
            e if c == "frozen" else f"{e}\n{c}"
            for e, c in zip(part["embedding"], part["config"], strict=True)
        ]
        x = np.arange(len(part))
        configs = list(dict.fromkeys(part["config"]))
        colours = ["tab:gray" if c == "frozen" else f"C{configs.index(c)}" for c in part["config"]]
        for ax, metric, title in (
            (row[0], "genre", "same genre among k neighbours"),
            (row[1], "tags", "mean tag Jaccard"),
        ):
            mean = part[f"test_{metric}"].to_numpy(dtype=float)
            spread = np.vstack([mean - part[f"test_{metric}_low"], part[f"test_{metric}_high"] - mean])
            ax.bar(
                x,
                np.nan_to_num(mean),
                yerr=np.nan_to_num(spread),
                color=colours,
                capsize=2,
                label="test-split seeds",
            )
            ax.scatter(
                x, part[f"test_{metric}_chance"], marker="_", s=300, color="black", zorder=3, label="chance"
            )
            ax.scatter(
                x,
                part[f"train_{metric}"],
                marker="o",
                facecolors="none",
                edgecolors="black",
                zorder=3,
                label="train-split seeds",
            )
            ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
            ax.set_title(f"{level} level: {title}", fontsize=10)
            ax.set_ylim(0, 1)
        row[0].legend(loc="upper right", fontsize=8)
    return fig


# --------------------------------------------------------------------------- cold start


def run_data_dir(run: str | Path) -> Path:
    """The segment store a training run was trained on, as the run records it.

    Looked up as `data_dir` in config.json or summary.json, else derived from the feature
    store recorded in summary.json's provenance (`DATA_DIR/features/<key>`). Raises
    ValueError asking for it (`--data`) when the run does not say or the store is gone.
    """
    run = Path(run)
    records = [
        json.loads((run / name).read_text())
        for name in ("config.json", "summary.json")
        if (run / name).is_file()
    ]
    for record in records:
        if record.get("data_dir"):
            return Path(record["data_dir"])
    for record in records:
        store = record.get("provenance", {}).get("audio", {}).get("path")
        if store and (Path(store).parent.parent / "manifest.csv").is_file():
            return Path(store).parent.parent
    raise ValueError(
        f"the run {run} does not record a segment store that exists here; pass it with --data DATA_DIR"
    )


def encode_video(
    video: str | Path,
    data_dir: str | Path,
    work_dir: str | Path,
    device: str | None = None,
    video_id: str | None = None,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Segment and encode a new video exactly as the catalogue at `data_dir` was.

    The video is preprocessed with the catalogue's parameters into `work_dir/store` and its
    view 0 encoded with the catalogue's frozen encoders (`mvnb.embed.encode_store` with the
    catalogue's `store_settings`: same weights, seed, frames and precision; the sha256 of both
    encoders' weights is checked against the catalogue's).
    Returns `(segments, audio (s, 1, audio_dim), video (s, 1, video_dim))`: the manifest rows of
    its s segments that encoded, and their features. Raises ValueError with the reason when
    the video gives no usable segment.
    """
    from mvnb import features, segments
    from mvnb.embed import encode_store, store_settings

    data_dir, work_dir = Path(data_dir), Path(work_dir)
    video = Path(video).expanduser().resolve()
    if not video.is_file():
        raise FileNotFoundError(f"video {video} not found")
    settings = store_settings(data_dir)
    video_id = video_id or video.stem
    metadata = work_dir / "metadata.csv"
    work_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"video_id": [video_id], "path": [str(video)]}).to_csv(metadata, index=False)
    store = work_dir / "store"
    if encode_store(metadata, store, settings, device, progress=False) is None:
        reason = pd.read_csv(segments.table_path(store, "skipped"))["reason"].iloc[0]
        raise ValueError(f"{video.name}: {reason}")
    manifest, audio, video_features, audio_meta, video_meta = features.load_feature_pair(store)
    for modality, meta in (("audio", audio_meta), ("video", video_meta)):
        theirs = features.read_meta(features.store_dir(data_dir, modality))["provenance"]["sha256"]
        if meta["provenance"]["sha256"] != theirs:
            raise ValueError(
                f"the {modality} encoder here ({meta['provenance']['sha256'][:12]}…) is not the one the "
                f"catalogue "
                f"used ({theirs[:12]}…); its features would not be comparable"
            )
    keep = np.flatnonzero(audio_meta["valid"] & video_meta["valid"])
    if not len(keep):
        raise ValueError(
            f"{video.name}: none of its {len(manifest)} segments could be encoded "
            f"({audio_meta['failed'] or video_meta['failed']})"
        )
    return (
        manifest.iloc[keep].reset_index(drop=True),
        np.asarray(audio[keep], dtype=np.float32),
        np.asarray(video_features[keep], dtype=np.float32),
    )


def query_embeddings(run: str | Path, audio, video, device: str | None = None) -> dict[str, np.ndarray]:
    """Every embedding (`EMBEDDINGS`) of new segments, `(s, dim)` each, from their features
    `(s, views, audio_dim)`, `(s, views, video_dim)` (view 0) and the heads of `run`."""
    from mvnb.device import default_device
    from mvnb.train import embed_segments, load_heads

    device = device or default_device()
    heads, _, train_config = load_heads(run, device)
    cl_audio, cl_video = embed_segments(heads, audio, video, device=device, precision=train_config.precision)
    return {**frozen_embeddings(audio[:, 0], video[:, 0]), **learned_embeddings(cl_audio, cl_video)}


def similar_videos(
    run: str | Path,
    video: str | Path,
    k: int = 10,
    data_dir: str | Path | None = None,
    embedding: str = "CL_agg",
    aggregate: str = "mean",
    exclude: Sequence[str] = (),
    work_dir: str | Path | None = None,
    device: str | None = None,
) -> pd.DataFrame:
    """The k catalogue videos nearest to a video the catalogue has never seen.

    run: a training run directory (heads.pt, embeddings.npz); data_dir: its segment store
        (default: the one the run records, see `run_data_dir`); embedding: one of `EMBEDDINGS`;
        aggregate: how segments make a video (`video_embeddings`); exclude: catalogue video ids
        to leave out (to query with a catalogue video as if it were new); work_dir: where the
        query's segments and features go (default: a temporary folder, removed afterwards).
    Returns k rows, best first: `rank, video_id, similarity` and the catalogue's labels
    (`genre, tags, split`, where present). `attrs["query"]` holds the query's id and segments.
    """
    run = Path(run)
    data_dir = Path(data_dir) if data_dir is not None else run_data_dir(run)
    if embedding not in EMBEDDINGS:
        raise ValueError(f"unknown embedding {embedding!r}; choose one of {', '.join(EMBEDDINGS)}")
    check_run_store(run, data_dir)
    catalogue = load_catalogue(data_dir, {("run", 0, 0): run})
    with tempfile.TemporaryDirectory(prefix="mvnb-similar-") as scratch:
        segs, audio, video_features = encode_video(video, data_dir, work_dir or scratch, device)
        query = query_embeddings(run, audio, video_features, device)[embedding]
    _, query_video = video_embeddings(query, np.zeros(len(query), dtype=int), aggregate)
    videos = catalogue.videos
    gallery = catalogue.embedding(embedding, "video", "run", (0, 0), aggregate)
    allowed = np.flatnonzero(~videos["video_id"].isin(list(exclude)).to_numpy())
    indices, sims = cosine_neighbours(query_video, gallery[allowed], min(k, len(allowed)))
    columns = [c for c in ("video_id", "genre", "tags", "split") if c in videos]
    table = videos.iloc[allowed[indices[0]]][columns].reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table.insert(2, "similarity", sims[0])
    clip = segs.iloc[len(segs) // 2]
    table.attrs["query"] = {
        "video": str(video),
        "video_id": segs["video_id"].iloc[0],
        "segments": len(segs),
        "embedding": embedding,
        "run": str(run),
        "data_dir": str(data_dir),
        "store": str(Path(work_dir) / "store") if work_dir else None,
        "video_path": clip["video_path"],
        "audio_path": clip["audio_path"],
    }
    return table


def check_run_store(run: Path, data_dir: Path) -> None:
    """Raise ValueError when the features a run was trained on came from other encoders than the store's."""
    from mvnb.features import read_meta, store_dir

    summary = run / "summary.json"
    recorded = json.loads(summary.read_text()).get("provenance", {}) if summary.is_file() else {}
    for modality in ("audio", "video"):
        then = recorded.get(modality, {}).get("provenance", {}).get("sha256")
        now = ((read_meta(store_dir(data_dir, modality)) or {}).get("provenance") or {}).get("sha256")
        if then and now and then != now:
            raise ValueError(
                f"{run} was trained on {modality} features of other weights ({then[:12]}…) than {data_dir} "
                f"holds now ({now[:12]}…); retrain it or point --data at its store"
            )


def cold_start_table(found: pd.DataFrame, k: int | None = None, labels: dict | None = None) -> pd.DataFrame:
    """`similar_videos`' answer as one grid row for `mvnb.grids.neighbour_grid`: the query
    (rank 0, clip from its own store, captioned with `labels` such as genre and tags where
    known) and its first k catalogue videos (their middle segments).

    Needs the query's store, so `similar_videos` must have been given a `work_dir`.
    """
    query = found.attrs["query"]
    if query["store"] is None:
        raise ValueError("the query's segments were in a temporary folder; call similar_videos with work_dir")
    catalogue = load_catalogue(query["data_dir"]).videos.set_index("video_id")
    top = found.head(k) if k else found
    clips = catalogue.loc[top["video_id"]]
    rows = [
        {
            "rank": 0,
            "video_id": query["video_id"],
            "genre": (labels or {}).get("genre", ""),
            "tags": (labels or {}).get("tags", ""),
            "similarity": np.nan,
            "store": query["store"],
            "video_path": query["video_path"],
            "audio_path": query["audio_path"],
        }
    ]
    for (_, hit), (_, clip) in zip(top.iterrows(), clips.iterrows(), strict=True):
        rows.append(
            {
                "rank": int(hit["rank"]),
                "video_id": hit["video_id"],
                "genre": hit.get("genre", ""),
                "tags": hit.get("tags", ""),
                "similarity": hit["similarity"],
                "store": query["data_dir"],
                "video_path": clip["video_path"],
                "audio_path": clip["audio_path"],
            }
        )
    return pd.DataFrame(rows).assign(level="video", row=0)


def unseen_synth_video(corpus_dir: str | Path, out_dir: str | Path) -> tuple[Path, dict]:
    """A video of the synthetic corpus at `corpus_dir` that it does not contain.

    Renders the next index after the corpus's last (same generator settings, from synth.json)
    into `out_dir/videos/`, once. Returns `(path, its metadata row)` (genre, tags, ...).
    Raises FileNotFoundError when `corpus_dir` is not a synthetic corpus.
    """
    from mvnb import synth

    settings = Path(corpus_dir) / "synth.json"
    if not settings.is_file():
        raise FileNotFoundError(f"{corpus_dir} has no synth.json: it is not a synthetic corpus")
    values = json.loads(settings.read_text())
    spec = synth.SynthSpec(**{**values, "size": tuple(values["size"])})
    row = synth.video_plan(spec, spec.n_videos)["row"]
    path = Path(out_dir) / row["path"]
    if not path.is_file():
        synth.render_video(spec, spec.n_videos, Path(out_dir))
    return path, row


def held_out_video(
    corpus_dir: str | Path, catalogue: Catalogue, out_dir: str | Path, rotation: int = 0
) -> tuple[Path, dict, tuple[str, ...]]:
    """A video to query the catalogue with as if it were new: `(path, labels, exclude)`.

    For a synthetic corpus, the generator's next video, which no run has seen (`exclude` is
    empty); for another corpus, its first video in the test split of `rotation` (that of the
    run that will embed it, which never trained on it), which `exclude` leaves out of the
    catalogue. `labels` has its video_id, genre and tags where known.
    """
    corpus_dir = Path(corpus_dir)
    if (corpus_dir / "synth.json").is_file():
        path, row = unseen_synth_video(corpus_dir, out_dir)
        return path, row, ()
    videos = catalogue.videos
    tests = videos[rotation_split(videos["fold"].to_numpy(), rotation) == "test"]
    if tests.empty:
        raise ValueError(
            f"the catalogue of {corpus_dir} has no video in rotation {rotation}'s test split to hold out"
        )
    held = tests.iloc[0]
    metadata = pd.read_csv(corpus_dir / "metadata.csv", dtype={"video_id": str, "path": str})
    path = metadata.loc[metadata["video_id"] == held["video_id"], "path"].iloc[0]
    path = Path(path) if Path(path).is_absolute() else corpus_dir / path
    return (
        path,
        {"video_id": held["video_id"], **{c: held[c] for c in ("genre", "tags") if c in held}},
        (held["video_id"],),
    )


# --------------------------------------------------------------------------- CLI: python -m mvnb similar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m mvnb similar`."""
    parser.add_argument(
        "--run", type=Path, required=True, help="a training run directory (heads.pt, embeddings.npz)"
    )
    parser.add_argument("--video", type=Path, required=True, help="a video file the catalogue has never seen")
    parser.add_argument("--k", type=int, default=10, help="how many catalogue videos to list")
    parser.add_argument(
        "--data", type=Path, help="the run's segment store (default: the one the run records)"
    )
    parser.add_argument(
        "--embedding",
        default="CL_agg",
        choices=EMBEDDINGS,
        help="the embedding compared (default CL_agg, as the paper)",
    )
    parser.add_argument(
        "--aggregate", default="mean", choices=AGGREGATES, help="how a video's segments are averaged"
    )
    parser.add_argument("--device", help="cuda, cpu, … (default: cuda when present)")


def run(args: argparse.Namespace) -> int:
    """Print the catalogue videos nearest to `--video`; exit code 2 with a one-line reason on bad input."""
    try:
        table = similar_videos(
            args.run, args.video, args.k, args.data, args.embedding, args.aggregate, device=args.device
        )
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"similar: {error}")
        return 2
    query = table.attrs["query"]
    print(
        f"similar: {query['video_id']} ({query['segments']} segments) against the catalogue of {args.run}, "
        f"by {query['embedding']} (cosine):"
    )
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    return 0
