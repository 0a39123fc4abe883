"""The heterogeneity-gap study: when does contrastive learning unite audio and video?

The paper blamed its chance-level retrieval on the loose relation between the sound and the
picture of music videos. The synthetic corpus has a knob for exactly that relation, so the
question can be asked under control: for each sweep point (coupling, style_coupling) the same
songs are rendered with pictures that follow them more or less, the pipeline runs on them
(segments, frozen features, contrastive heads, probes), and the result is one row per
(point, configuration, seed) in `gap_study.csv`.

Everything but the knobs is held fixed: the seed, hence the songs, the segment positions and
the split. The first point renders the songs; the others copy its audio streams. Audio
features are therefore computed once, on the first point, after checking that every point's
segment audio is byte-identical (`audio_digests`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import embeddings, features, probes, readouts, synth, train
from .corpus import rotation_split
from .io import sha256_file
from .metrics import bootstrap_interval
from .results import usable_seeds, versus_chance
from .runs import read_test_ranks, run_dir
from .segments import load_manifest, preprocess

CONFIGS = ("paper_baseline", "paper_std", "corrected")
COLUMNS = [
    "coupling",
    "style_coupling",
    "config",
    "seed",
    "collapsed",
    "pool",
    "test_videos",
    "median_rank_a2v",
    "median_rank_v2a",
    "r_at_10",
    "genre_auc_cl_agg",
    "genre_auc_concat",
]
SUMMARY_COLUMNS = [
    "coupling",
    "style_coupling",
    "config",
    "seeds",
    "collapsed",
    "test_videos",
    "chance",
    "mr_pool",
    "mr_pool_low",
    "mr_pool_high",
    "versus_chance",
    "genre_auc_cl_agg",
    "genre_auc_concat",
]


@dataclass(frozen=True)
class SweepSettings:
    """The sweep corpus: short videos so every point is cheap, with a test gallery still worth ranking."""

    n_videos: int
    segments: int
    size: tuple[int, int]
    frames: int
    # frames per second of the rendered videos: at 10, the rate preprocessing samples at, no frame
    # inside a segment is drawn, encoded and decoded only to be dropped (None: 15-30, drawn per video)
    fps: int | None
    seed: int
    batch_size: int
    max_epochs: int
    # 2: 60/20/20 by the hash of the id (a sweep corpus is throwaway; its test gallery must be large)
    folds_per_split: int = 2

    @property
    def seconds(self) -> tuple[float, float]:
        """Video length range: just enough for `segments` non-overlapping 5 s segments."""
        return 5.0 * self.segments + 0.5, 5.0 * self.segments + 2.5


def sweep_split(manifest: pd.DataFrame, s: SweepSettings) -> np.ndarray:
    """The sweep's train/val/test split of the manifest's segments `(n,)`: rotation 0 of its folds."""
    return rotation_split(manifest["fold"], 0, s.folds_per_split)


def point_name(coupling: float, style_coupling: float) -> str:
    return f"c{coupling:.2f}_s{style_coupling:.2f}"


def prepare_point(
    root: Path,
    coupling: float,
    style_coupling: float,
    s: SweepSettings,
    modalities: tuple[str, ...],
    workers: int,
    audio_from: Path | None = None,
) -> Path:
    """Render, segment and encode one sweep point; returns its store folder (DATA_DIR).

    audio_from: the corpus of an earlier point, whose audio streams are copied rather than
    rendered again (the songs are the same at every point).
    """
    corpus = root / point_name(coupling, style_coupling)
    lo, hi = s.seconds
    spec = synth.SynthSpec(s.n_videos, s.seed, coupling, style_coupling, lo, hi, s.size, s.fps)
    metadata = synth.make_corpus(corpus, spec, workers=workers, audio_from=audio_from)
    store = corpus / "store"
    preprocess(
        None, metadata, store, segments=s.segments, size=s.size, seed=s.seed, workers=workers, progress=False
    )
    features.extract_features(
        store,
        views=1,
        frames=s.frames,
        video_weights="kinetics400",
        workers=1,
        seed=s.seed,
        modalities=modalities,
        progress=False,
    )
    return store


def prepare_sweep(
    root: Path, points: list[tuple[float, float]], s: SweepSettings, workers: int
) -> dict[tuple[float, float], Path]:
    """Every point's store, with a progress bar: the first point renders the songs and gets
    audio and video features; the others copy its audio and get video features only."""
    from tqdm.auto import tqdm

    stores = {}
    for i, (coupling, style_coupling) in enumerate(tqdm(points, desc="sweep points", unit="point")):
        first = i == 0
        stores[coupling, style_coupling] = prepare_point(
            root,
            coupling,
            style_coupling,
            s,
            ("audio", "video") if first else ("video",),
            workers,
            audio_from=None if first else root / point_name(*points[0]),
        )
    return stores


def audio_digests(store: Path) -> pd.Series:
    """sha256 of every segment's wav, indexed by segment id: equal digests, equal audio inputs."""
    manifest = load_manifest(store, absolute_paths=True)
    return pd.Series(
        [sha256_file(p) for p in manifest["audio_path"]],
        index=manifest["segment_id"],
    )


def train_point(
    store: Path, audio_store: Path, runs: Path, name: str, overrides: dict, seed: int, s: SweepSettings
) -> dict:
    """Train configuration `name` (+ `overrides`) on the point's video features and the shared audio
    features."""
    manifest = load_manifest(store)
    audio, audio_meta = features.load_features(audio_store, "audio")
    video, video_meta = features.load_features(store, "video")
    features.check_views_aligned(audio_meta, video_meta)
    config = train.make_config(name, {"batch_size": s.batch_size, "max_epochs": s.max_epochs, **overrides})
    provenance = {
        m: {k: v for k, v in meta.items() if k != "valid"}
        for m, meta in (("audio", audio_meta), ("video", video_meta))
    }
    return train.train(
        audio,
        video,
        manifest["video_id"].to_numpy(),
        sweep_split(manifest, s),
        config,
        seed,
        runs,
        name=name,
        provenance=provenance,
        valid=audio_meta["valid"] & video_meta["valid"],
        progress=False,
    )


def genre_auc(x: np.ndarray, store: Path, seed: int, s: SweepSettings) -> float:
    """Test macro ROC-AUC (video level) of the genre probe on embeddings `x` `(n_segments, dim)`, on the
    sweep's split."""
    manifest = load_manifest(store).assign(split=lambda m: sweep_split(m, s))
    task = probes.genre_task(manifest)
    return probes.run_probe(x, task, manifest["split"], manifest["video_id"], seed).scores["auc_video"]


READOUT_POINTS = {"R(2+1)D at (0, style 0)": (0.0, 0.0), "R(2+1)D at (1, style 0)": (1.0, 0.0)}
PHANTOM_INPUT = "R(2+1)D at (0, style 0), phantom song"


def readout_panel(stores: dict[tuple[float, float], Path], audio_store: Path, seed: int = 0) -> pd.DataFrame:
    """What each frozen encoder can see (`mvnb.readouts`): every factor of the heard song read out from
    musicnn and from R(2+1)D at the style-0 points of `READOUT_POINTS` that the sweep has; and, as a
    control that the video encoder sees a factor at all, the phantom song's factors from R(2+1)D at
    (0, 0), whose picture follows the phantom. Features are view 0; folds and intervals keep videos whole."""
    manifest = load_manifest(audio_store)
    factors = readouts.load_factors(audio_store.parent)
    heard = readouts.segment_factors(
        manifest, factors, "heard"
    )  # the songs, hence these rows, are the same at every point
    inputs = {
        "musicnn": (
            np.asarray(features.load_features(audio_store, "audio")[0][:, 0], dtype=np.float32),
            heard,
        )
    }
    for label, point in READOUT_POINTS.items():
        if point in stores:
            if not load_manifest(stores[point])["segment_id"].equals(manifest["segment_id"]):
                raise ValueError(
                    f"the segments of {stores[point]} differ from {audio_store}'s; rebuild the sweep"
                )
            inputs[label] = (
                np.asarray(features.load_features(stores[point], "video")[0][:, 0], dtype=np.float32),
                heard,
            )
    if (0.0, 0.0) in stores:
        phantom = readouts.segment_factors(
            manifest, readouts.load_factors(stores[0.0, 0.0].parent), "phantom"
        )
        inputs[PHANTOM_INPUT] = (inputs["R(2+1)D at (0, style 0)"][0], phantom)
    return readouts.readout_panel(inputs, manifest["video_id"].to_numpy(), seed=seed)


def sweep_rows(
    store: Path,
    audio_store: Path,
    runs: Path,
    coupling: float,
    style_coupling: float,
    seeds: list[int],
    s: SweepSettings,
) -> list[dict]:
    """Rows of gap_study.csv for one point: every configuration of `CONFIGS`, every seed.

    The genre AUC of CL_agg is left out (NaN) where the run collapsed.
    """
    audio = features.load_features(audio_store, "audio")[0]
    video = features.load_features(store, "video")[0]
    concat = embeddings.frozen_embeddings(audio[:, 0], video[:, 0])["concat"]
    rows = []
    for seed in seeds:
        auc_concat = genre_auc(concat, store, seed, s)
        for name in CONFIGS:
            folder = run_dir(runs / point_name(coupling, style_coupling), name, seed)
            summary = train_point(store, audio_store, folder, name, {}, seed, s)
            main, collapsed = summary["test"]["main"], any(summary["collapsed"].values())
            cl = embeddings.cl_embeddings(folder, len(audio))
            rows.append(
                dict(
                    coupling=coupling,
                    style_coupling=style_coupling,
                    config=name,
                    seed=seed,
                    collapsed=collapsed,
                    pool=main["pool"],
                    test_videos=main["n_videos"],
                    median_rank_a2v=main["median_rank_a2v"],
                    median_rank_v2a=main["median_rank_v2a"],
                    r_at_10=(main["r10_a2v"] + main["r10_v2a"]) / 2,
                    genre_auc_cl_agg=np.nan if collapsed else genre_auc(cl["CL_agg"], store, seed, s),
                    genre_auc_concat=auc_concat,
                )
            )
    return rows


def pooled_rank_share(folders: list[Path]) -> pd.DataFrame:
    """Test queries of the runs in `folders`, both directions stacked: `video_id`, `share` = rank / pool,
    `chance`."""
    frames = []
    for folder in folders:
        ranks = read_test_ranks(folder)
        for d in ("a2v", "v2a"):
            frames.append(
                pd.DataFrame(
                    {
                        "video_id": ranks["video_id"],
                        "share": ranks[f"rank_{d}"] / ranks["pool"],
                        "chance": (ranks["pool"] + 1) / (2 * ranks["pool"]),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def interval_row(runs: pd.DataFrame, folders: list[Path]) -> dict:
    """Median rank / pool of a row's runs, pooled over both directions and its healthy seeds, with a 95 %
    bootstrap interval over test videos; `runs` has one row per seed (with `collapsed`), `folders` their run
    folders."""
    usable, note = usable_seeds(runs["collapsed"])
    queries = pooled_rank_share(folders)
    chance = float(queries["chance"].median())
    row = {
        "seeds": len(runs),
        "collapsed": note or "none",
        "test_videos": queries["video_id"].nunique(),
        "chance": chance,
    }
    if not usable.any():
        return row | {
            "mr_pool": np.nan,
            "mr_pool_low": np.nan,
            "mr_pool_high": np.nan,
            "versus_chance": "collapsed",
        }
    healthy = pooled_rank_share([f for f, ok in zip(folders, usable, strict=True) if ok])
    estimate, low, high = bootstrap_interval(healthy["share"], healthy["video_id"])
    return row | {
        "mr_pool": estimate,
        "mr_pool_low": low,
        "mr_pool_high": high,
        "versus_chance": versus_chance(low, high, chance),
    }


def sweep_summary(table: pd.DataFrame, runs: Path) -> pd.DataFrame:
    """One row per (point, configuration) of gap_study.csv's `table`: `SUMMARY_COLUMNS`, the runs read from
    `runs`."""
    out = []
    for (c, p, name), group in table.groupby(["coupling", "style_coupling", "config"], sort=False):
        folders = [run_dir(runs / point_name(c, p), name, seed) for seed in group["seed"]]
        healthy = group[~group["collapsed"].astype(bool)]
        out.append(
            {
                "coupling": c,
                "style_coupling": p,
                "config": name,
                **interval_row(group, folders),
                "genre_auc_cl_agg": healthy["genre_auc_cl_agg"].mean(),
                "genre_auc_concat": group["genre_auc_concat"].mean(),
            }
        )
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)
