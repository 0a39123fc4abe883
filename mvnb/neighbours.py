"""Nearest neighbours of segments and videos in any embedding, and the Catalogue they are
searched in.

The paper judged its embeddings by looking at neighbours. At **video level**, each video's
segment embeddings are averaged per modality, then the two modalities are averaged; 25 seed
videos get their 3 nearest videos. At **segment level**, 20 seed segments get 3 neighbours.

Embeddings: the six of `mvnb.embeddings` (`EMBEDDINGS`), under its names, each `(n_segments, dim)`
on view 0, in manifest order.

Similarity is cosine. A seed's neighbours never include the seed itself, nor, at segment
level, any segment of its own video. Cross-modal queries (`CL_a` seeds against a `CL_v`
gallery) follow the same rule, so an audio query never finds its own video.

How well the neighbours agree with the metadata is `mvnb.agreement`'s; a video the catalogue
has never seen is queried by `mvnb.coldstart`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mvnb.embeddings import FROZEN, LEARNED, cl_embeddings, frozen_embeddings, video_means
from mvnb.embeddings import NAMES as EMBEDDINGS
from mvnb.metrics import unit_rows
from mvnb.runs import EMBEDDINGS_FILE, run_dir

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
    """`{(config, rotation, seed): run directory}` of the report's training runs under `runs_dir`
    (see `run_dir`), rotation by rotation.

    A missing run is skipped with a warning; a config without any run is an error naming the
    notebook that makes it.
    """
    found = {}
    for config in configs:
        for rotation in rotations:
            for seed in seeds:
                path = run_dir(runs_dir, config, seed, rotation=rotation)
                if (path / EMBEDDINGS_FILE).is_file():
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
