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

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import embeddings, features, probes, readouts, synth, train
from .corpus import rotation_split
from .io import format_interval, sha256_file
from .metrics import argsort_diagonal_rank, bootstrap_interval, median_rank
from .results import run_dir, usable_seeds, versus_chance
from .segments import load_manifest, preprocess

CONFIGS = ("paper_baseline", "paper_std", "corrected")
# The diagnosis: {sigmoid, none} x {tau = 1, learnable tau} x {raw, standardised inputs}, all in the
# paper's loss form (positive excluded), each cell the paper's baseline with these fields changed.
DIAGNOSIS = {
    (output, tau, inputs): {
        "output": "sigmoid" if output == "sigmoid" else "none",
        "learnable_temperature": tau == "learnable τ",
        "input_norm": "standard" if inputs == "standardised" else "none",
    }
    for output in ("sigmoid", "no sigmoid")
    for tau in ("τ = 1", "learnable τ")
    for inputs in ("raw", "standardised")
}
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
    seed: int
    batch_size: int
    max_epochs: int
    folds_per_split: int = (
        2  # 2: 60/20/20 by the hash of the id (a sweep corpus is throwaway; its test gallery must be large)
    )

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
    spec = synth.SynthSpec(s.n_videos, s.seed, coupling, style_coupling, lo, hi, s.size)
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
        ranks = pd.read_csv(folder / "test_ranks.csv", dtype={"video_id": str})
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


def gap_figure(summary: pd.DataFrame) -> plt.Figure:
    """Median rank / pool and genre probe AUC against coupling, from `sweep_summary`: one curve per
    configuration and style coupling (solid: style 0, the style independent of the genre; dashed:
    style 1). Error bars on the left: 95 % bootstrap intervals over test videos; the right shows
    means over seeds."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    styles = sorted(summary["style_coupling"].unique())
    for i, (name, rows) in enumerate(summary.groupby("config", sort=False)):
        for style in styles:
            curve = rows[rows["style_coupling"] == style].sort_values("coupling")
            x = curve["coupling"] + 0.012 * (i - 1)  # side by side, so the intervals do not hide each other
            err = np.abs(curve[["mr_pool_low", "mr_pool_high"]].to_numpy().T - curve["mr_pool"].to_numpy())
            ls = "-" if style == styles[0] else "--"
            label = f"{name}, style {style:g}"
            axes[0].errorbar(
                x, curve["mr_pool"], err, marker="o", capsize=3, ls=ls, color=f"C{i}", label=label
            )
            gone = curve["versus_chance"] == "collapsed"
            axes[0].scatter(x[gone], np.full(gone.sum(), 0.62), marker="x", color=f"C{i}")
            axes[1].plot(
                curve["coupling"],
                curve["genre_auc_cl_agg"],
                marker="o",
                ls=ls,
                color=f"C{i}",
                label=f"CL_agg, {label}",
            )
    for style in styles:
        frozen = (
            summary[summary["style_coupling"] == style].drop_duplicates("coupling").sort_values("coupling")
        )
        axes[1].plot(
            frozen["coupling"],
            frozen["genre_auc_concat"],
            marker="s",
            color="k",
            ls="-" if style == styles[0] else "--",
            label=f"concat (frozen), style {style:g}",
        )
    axes[0].axhline(summary["chance"].median(), color="k", ls=":", lw=1, label="chance (P+1)/2P")
    axes[0].text(
        0.01,
        0.625,
        "x: collapsed, not scored",
        transform=axes[0].get_yaxis_transform(),
        fontsize=7,
        va="bottom",
    )
    axes[0].set(
        xlabel="coupling",
        ylabel="test median rank / pool",
        ylim=(0, 0.65),
        title="cross-modal retrieval (both directions, 95 % CI over test videos)",
    )
    axes[1].set(
        xlabel="coupling",
        ylabel="genre macro ROC-AUC (video level)",
        title="genre probe on the test split (mean over seeds)",
    )
    for ax in axes:
        ax.legend(fontsize=7)
    return fig


def diagnosis_point(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Where the diagnosis runs: the positive control (1, style 0), where only the music links picture and
    sound; in a sweep without it, its most coupled point (style 0 first)."""
    return (1.0, 0.0) if (1.0, 0.0) in points else max(points, key=lambda p: (p[0], -p[1]))


def diagnosis_name(cell: tuple[str, str, str]) -> str:
    """Folder name of a diagnosis cell, e.g. `sigmoid_tau1_raw`."""
    output, tau, inputs = cell
    return f"{output.replace(' ', '_')}_{'tau1' if tau == 'τ = 1' else 'learnable_tau'}_{inputs}"


def diagnosis_rows(
    store: Path, audio_store: Path, runs: Path, seeds: list[int], s: SweepSettings
) -> pd.DataFrame:
    """The 2x2x2 at one point: per cell and seed, median rank (mean of a→v and v→a) and the
    argsort-diagonal number, with the run's collapse mark and final τ."""
    rows = []
    manifest = load_manifest(store)
    test = sweep_split(manifest, s) == "test"
    for cell, overrides in DIAGNOSIS.items():
        for seed in seeds:
            folder = run_dir(runs / "diagnosis", diagnosis_name(cell), seed)
            summary = train_point(store, audio_store, folder, "paper_baseline", overrides, seed, s)
            main = summary["test"]["main"]
            cl = embeddings.cl_embeddings(folder, len(manifest))
            rows.append(
                dict(
                    output=cell[0],
                    tau=cell[1],
                    inputs=cell[2],
                    seed=seed,
                    collapsed=any(summary["collapsed"].values()),
                    pool=main["pool"],
                    final_tau=summary["tau"],
                    median_rank=(main["median_rank_a2v"] + main["median_rank_v2a"]) / 2,
                    argsort_diagonal=argsort_diagonal_rank(cl["CL_a"][test], cl["CL_v"][test]),
                    n_test=int(test.sum()),
                )
            )
    return pd.DataFrame(rows)


def diagnosis_summary(diagnosis: pd.DataFrame, runs: Path) -> pd.DataFrame:
    """One row per cell of `diagnosis_rows`: median rank / pool with its interval, and the argsort-diagonal /
    pool."""
    out = []
    for (output, tau, inputs), group in diagnosis.groupby(["output", "tau", "inputs"], sort=False):
        folders = [
            run_dir(runs / "diagnosis", diagnosis_name((output, tau, inputs)), seed) for seed in group["seed"]
        ]
        out.append(
            {
                "output": output,
                "tau": tau,
                "inputs": inputs,
                **interval_row(group, folders),
                "argsort_diagonal_pool": (group["argsort_diagonal"] / group["n_test"]).mean(),
                "final_tau": group["final_tau"].mean(),
            }
        )
    return pd.DataFrame(out)


def diagnosis_figure(summary: pd.DataFrame) -> plt.Figure:
    """The 2x2x2 as bars: median rank / pool with 95 % intervals per cell, raw beside standardised,
    the argsort-diagonal number as a cross, chance dotted."""
    fig, ax = plt.subplots(figsize=(8, 3.6), constrained_layout=True)
    cells = summary.drop_duplicates(["output", "tau"])[["output", "tau"]].to_numpy().tolist()
    for j, (inputs, colour) in enumerate((("raw", "tab:grey"), ("standardised", "tab:blue"))):
        rows = (
            summary[summary["inputs"] == inputs].set_index(["output", "tau"]).loc[[tuple(c) for c in cells]]
        )
        x = np.arange(len(cells)) + 0.2 * (2 * j - 1)
        height = rows["mr_pool"].fillna(0).to_numpy()
        err = np.abs(rows[["mr_pool_low", "mr_pool_high"]].to_numpy().T - height)
        ax.bar(x, height, 0.38, yerr=np.nan_to_num(err), capsize=3, color=colour, label=f"{inputs} inputs")
        ax.scatter(
            x,
            rows["argsort_diagonal_pool"],
            marker="x",
            color="k",
            zorder=3,
            label="argsort-diagonal (the authors' metric) / N" if j == 0 else None,
        )
        for xi, note in zip(x, rows["versus_chance"], strict=True):
            if note == "collapsed":
                ax.text(xi, 0.02, "collapsed", rotation=90, ha="center", va="bottom", fontsize=7)
    ax.axhline(summary["chance"].median(), color="k", ls=":", lw=1, label="chance")
    ax.set_xticks(range(len(cells)), [f"{o}\n{t}" for o, t in cells])
    ax.set(ylabel="test median rank / pool", ylim=(0, 0.7), title="which choice decides? (paper loss form)")
    ax.legend(fontsize=7, loc="upper right")
    return fig


def metric_pitfall(diagnosis: pd.DataFrame, seed: int = 0) -> str:
    """The argsort-diagonal number beside the true median rank: on perfect embeddings of the test
    set's size, and on the paper configuration (raw inputs) trained at the diagnosis point (Markdown)."""
    n = int(diagnosis["n_test"].iloc[0])
    perfect = np.random.default_rng(seed).normal(size=(n, 16))
    paper = diagnosis[
        (diagnosis["output"] == "sigmoid") & (diagnosis["tau"] == "τ = 1") & (diagnosis["inputs"] == "raw")
    ]
    return (
        f"- Perfect embeddings (audio = video), N = {n}: true median rank "
        f"**{median_rank(perfect, perfect):g}**, "
        f"argsort-diagonal **{argsort_diagonal_rank(perfect, perfect):g}** (N/2 = {n / 2:g}).\n"
        f"- The paper configuration at the diagnosis point: true median rank "
        f"**{paper['median_rank'].mean():.1f}**, "
        f"argsort-diagonal **{paper['argsort_diagonal'].mean():.1f}**. A number that reads about N/2 for any "
        f"embedding would have printed the paper's Table 1 whether or not its model had learned anything."
    )


def _curve_text(rows: pd.DataFrame) -> str:
    """'coupling 0: 0.47 [0.40, 0.55]; coupling 1: …' for one configuration's points, in coupling order."""
    return "; ".join(
        f"coupling {r.coupling:g}: "
        + (
            "collapsed"
            if r.versus_chance == "collapsed"
            else format_interval(r.mr_pool, r.mr_pool_low, r.mr_pool_high, 2)
        )
        + (f" ({r.collapsed})" if r.collapsed != "none" else "")
        for r in rows.sort_values("coupling").itertuples()
    )


def conclusion(summary: pd.DataFrame, panel: pd.DataFrame | None = None) -> str:
    """RQ1 in plain words, from `sweep_summary` and the read-out `panel` (Markdown). Every claim is decided
    by an interval: "below chance" means the 95 % interval of median rank / pool lies under it."""
    lines = [
        f"Chance is a median rank of {summary['chance'].median():.2f} of the pool; "
        f"{int(summary['test_videos'].min())}–{int(summary['test_videos'].max())} test videos behind each "
        f"number."
    ]
    independent = summary[(summary["coupling"] == 0) & (summary["style_coupling"] == 0)]
    if len(independent):
        cells = "; ".join(
            f"{r.config} "
            + (
                "collapsed"
                if r.versus_chance == "collapsed"
                else f"{format_interval(r.mr_pool, r.mr_pool_low, r.mr_pool_high, 2)}, {r.versus_chance}"
            )
            for r in independent.itertuples()
        )
        lines.append(f"- **Independent modalities (0, 0)**: {cells}.")
    for style, words in (
        (0.0, "picture follows the music, style independent of the genre"),
        (1.0, "the genre's visual style as well"),
    ):
        part = summary[summary["style_coupling"] == style]
        for name, rows in part.groupby("config", sort=False):
            below = rows[rows["versus_chance"] == "below chance"]["coupling"]
            lines.append(
                f"- **{name}, style {style:g}** ({words}): {_curve_text(rows)}. "
                + (
                    f"Clearly below chance from coupling {below.min():g} on."
                    if len(below)
                    else "Never clearly below chance."
                )
            )
    style1 = summary[(summary["style_coupling"] == 1) & (summary["coupling"] == 0)]
    if len(style1):
        leak = [r.config for r in style1.itertuples() if r.versus_chance == "below chance"]
        lines.append(
            "- **What style adds**: at coupling 0 with the genre's style, "
            + (
                f"{', '.join(leak)} retrieve below chance: the genre's look alone pairs audio with video."
                if leak
                else "no configuration retrieves below chance: the genre's look alone does not pair them."
            )
        )
    raw = summary[summary["config"] == "paper_baseline"]
    if len(raw):
        scored = raw[raw["versus_chance"] != "collapsed"]
        fine = (scored["versus_chance"] == "at chance").all()
        lines.append(
            f"- **The paper's configuration on raw features** (paper_baseline): collapsed at "
            f"{int((raw['versus_chance'] == 'collapsed').sum())} of {len(raw)} points, at chance at "
            f"{int((scored['versus_chance'] == 'at chance').sum())}, below chance at "
            f"{int((scored['versus_chance'] == 'below chance').sum())}. "
            + (
                "It never learns, wherever the picture follows the sound: the paper's result, reproduced "
                "under "
                "control."
                if fine
                else "It is not at chance everywhere."
            )
        )
    if panel is not None:
        for name, rows in panel.groupby("input", sort=False):
            seen = [f"{r.factor} ({r.metric} {r.score:.2f})" for r in rows.itertuples() if r.low > r.chance]
            lines.append(
                f"- **{name} sees** (read-out interval above chance): {', '.join(seen) or 'nothing'}."
            )
    return "\n".join(lines)
