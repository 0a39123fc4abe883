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

import hashlib
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import features, probes, synth, train
from .metrics import argsort_diagonal_rank, median_rank
from .results import run_dir
from .segments import load_manifest, preprocess

CONFIGS = ("paper_baseline", "corrected")
# The diagnosis at full coupling: {sigmoid, none} x {tau = 1, learnable tau}, all in the paper's loss form.
DIAGNOSIS = {
    ("sigmoid", "τ = 1"): ("paper_baseline", {}),
    ("sigmoid", "learnable τ"): ("learnable_tau", {}),
    ("no sigmoid", "τ = 1"): ("no_sigmoid", {}),
    ("no sigmoid", "learnable τ"): ("no_sigmoid", {"learnable_temperature": True}),
}
COLUMNS = ["coupling", "style_coupling", "config", "seed", "pool", "median_rank_a2v", "median_rank_v2a", "r_at_10",
           "genre_auc_cl_agg", "genre_auc_concat"]


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

    @property
    def seconds(self) -> tuple[float, float]:
        """Video length range: just enough for `segments` non-overlapping 5 s segments."""
        return 5.0 * self.segments + 0.5, 5.0 * self.segments + 2.5


def point_name(coupling: float, style_coupling: float) -> str:
    return f"c{coupling:.2f}_s{style_coupling:.2f}"


def prepare_point(root: Path, coupling: float, style_coupling: float, s: SweepSettings,
                  modalities: tuple[str, ...], workers: int, audio_from: Path | None = None) -> Path:
    """Render, segment and encode one sweep point; returns its store folder (DATA_DIR).

    audio_from: the corpus of an earlier point, whose audio streams are copied rather than
    rendered again (the songs are the same at every point).
    """
    corpus = root / point_name(coupling, style_coupling)
    lo, hi = s.seconds
    spec = synth.SynthSpec(s.n_videos, s.seed, coupling, style_coupling, lo, hi, s.size)
    metadata = synth.make_corpus(corpus, spec, workers=workers, audio_from=audio_from)
    store = corpus / "store"
    preprocess(None, metadata, store, segments=s.segments, size=s.size, seed=s.seed, workers=workers, progress=False)
    features.extract_features(store, views=1, frames=s.frames, video_weights="kinetics400", workers=1,
                              seed=s.seed, modalities=modalities, progress=False)
    return store


def prepare_sweep(root: Path, points: list[tuple[float, float]], s: SweepSettings, workers: int) -> dict[tuple[float, float], Path]:
    """Every point's store, with a progress bar: the first point renders the songs and gets
    audio and video features; the others copy its audio and get video features only."""
    from tqdm.auto import tqdm

    stores = {}
    for i, (coupling, style_coupling) in enumerate(tqdm(points, desc="sweep points", unit="point")):
        first = i == 0
        stores[coupling, style_coupling] = prepare_point(
            root, coupling, style_coupling, s, ("audio", "video") if first else ("video",), workers,
            audio_from=None if first else root / point_name(*points[0]))
    return stores


def audio_digests(store: Path) -> pd.Series:
    """sha256 of every segment's wav, indexed by segment id: equal digests, equal audio inputs."""
    manifest = load_manifest(store, absolute_paths=True)
    return pd.Series([hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in manifest["audio_path"]],
                     index=manifest["segment_id"])


def train_point(store: Path, audio_store: Path, runs: Path, name: str, overrides: dict, seed: int,
                s: SweepSettings) -> dict:
    """Train configuration `name` (+ `overrides`) on the point's video features and the shared audio features."""
    manifest = load_manifest(store)
    audio, audio_meta = features.load_features(audio_store, "audio")
    video, video_meta = features.load_features(store, "video")
    features.check_views_aligned(audio_meta, video_meta)
    config = train.make_config(name, {"batch_size": s.batch_size, "max_epochs": s.max_epochs, **overrides})
    provenance = {m: {k: v for k, v in meta.items() if k != "valid"} for m, meta in (("audio", audio_meta), ("video", video_meta))}
    return train.train(audio, video, manifest["video_id"].to_numpy(), manifest["split"].to_numpy(), config, seed, runs,
                       name=name, provenance=provenance, valid=audio_meta["valid"] & video_meta["valid"], progress=False)


def genre_auc(x: np.ndarray, store: Path, seed: int) -> float:
    """Test macro ROC-AUC (video level) of the genre probe on embeddings `x` `(n_segments, dim)`."""
    manifest = load_manifest(store)
    task = probes.genre_task(manifest)
    return probes.run_probe(x, task, manifest["split"], manifest["video_id"], seed).scores["auc_video"]


def sweep_rows(store: Path, audio_store: Path, runs: Path, coupling: float, style_coupling: float,
               seeds: list[int], s: SweepSettings) -> list[dict]:
    """Rows of gap_study.csv for one point: both configurations, every seed."""
    audio = features.load_features(audio_store, "audio")[0]
    video = features.load_features(store, "video")[0]
    concat = probes.frozen_embeddings(audio, video)["musicnn+R(2+1)D"]
    rows = []
    for seed in seeds:
        auc_concat = genre_auc(concat, store, seed)
        for name in CONFIGS:
            folder = run_dir(runs / point_name(coupling, style_coupling), name, seed)
            main = train_point(store, audio_store, folder, name, {}, seed, s)["test"]["main"]
            cl = probes.cl_embeddings(folder, len(audio))
            rows.append(dict(coupling=coupling, style_coupling=style_coupling, config=name, seed=seed, pool=main["pool"],
                             median_rank_a2v=main["median_rank_a2v"], median_rank_v2a=main["median_rank_v2a"],
                             r_at_10=(main["r10_a2v"] + main["r10_v2a"]) / 2,
                             genre_auc_cl_agg=genre_auc(cl["CL_agg"], store, seed),
                             genre_auc_concat=auc_concat))
    return rows


def gap_figure(table: pd.DataFrame) -> plt.Figure:
    """Median rank / pool (both directions) and genre probe AUC against coupling, per configuration.

    The independent point (both knobs 0) is drawn apart, at coupling -0.15. Error bars: sd over seeds.
    """
    t = table.assign(mr=(table["median_rank_a2v"] + table["median_rank_v2a"]) / 2 / table["pool"],
                     x=np.where(table["style_coupling"] == 0, -0.15, table["coupling"]))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    for name, runs in t.groupby("config", sort=False):
        g = runs.groupby("x")
        axes[0].errorbar(g["mr"].mean().index, g["mr"].mean(), g["mr"].std().fillna(0), marker="o", capsize=3, label=name)
        axes[1].errorbar(g["genre_auc_cl_agg"].mean().index, g["genre_auc_cl_agg"].mean(),
                         g["genre_auc_cl_agg"].std().fillna(0), marker="o", capsize=3, label=f"CL_agg, {name}")
    g = t.groupby("x")["genre_auc_concat"]
    axes[1].errorbar(g.mean().index, g.mean(), g.std().fillna(0), marker="s", color="k", capsize=3, label="musicnn+R(2+1)D")
    pool = t["pool"].mean()
    axes[0].axhline((pool + 1) / (2 * pool), color="k", ls=":", lw=1, label="chance (P+1)/2P")
    axes[0].set(xlabel="coupling (point at -0.15: coupling 0 and style coupling 0)", ylabel="test median rank / pool",
                title="cross-modal retrieval (mean of a→v and v→a)", ylim=(0, 0.65))
    axes[1].set(xlabel="coupling (point at -0.15: both knobs 0)", ylabel="genre macro ROC-AUC (video level)",
                title="genre probe on the test split")
    for ax in axes:
        ax.legend(fontsize=8)
    return fig


def diagnosis_rows(store: Path, audio_store: Path, runs: Path, seeds: list[int], s: SweepSettings) -> pd.DataFrame:
    """The 2x2 at one point: median rank / pool, true and argsort-diagonal, for each cell and seed."""
    rows = []
    manifest = load_manifest(store)
    test = (manifest["split"] == "test").to_numpy()
    for (output, tau), (name, overrides) in DIAGNOSIS.items():
        for seed in seeds:
            folder = run_dir(runs / "diagnosis", f"{output}_{tau}".replace(" ", "_"), seed)
            summary = train_point(store, audio_store, folder, name, overrides, seed, s)
            main = summary["test"]["main"]
            cl = probes.cl_embeddings(folder, len(manifest))
            rows.append(dict(output=output, tau=tau, seed=seed, pool=main["pool"], final_tau=summary["tau"],
                             median_rank=(main["median_rank_a2v"] + main["median_rank_v2a"]) / 2,
                             argsort_diagonal=argsort_diagonal_rank(cl["CL_a"][test], cl["CL_v"][test]),
                             n_test=int(test.sum())))
    return pd.DataFrame(rows)


def metric_pitfall(diagnosis: pd.DataFrame, seed: int = 0) -> str:
    """The argsort-diagonal number beside the true median rank: on perfect embeddings of the test
    set's size, and on the paper configuration trained at full coupling (Markdown)."""
    n = int(diagnosis["n_test"].iloc[0])
    perfect = np.random.default_rng(seed).normal(size=(n, 16))
    paper = diagnosis[(diagnosis["output"] == "sigmoid") & (diagnosis["tau"] == "τ = 1")]
    return (f"- Perfect embeddings (audio = video), N = {n}: true median rank **{median_rank(perfect, perfect):g}**, "
            f"argsort-diagonal **{argsort_diagonal_rank(perfect, perfect):g}** (N/2 = {n / 2:g}).\n"
            f"- The paper configuration at full coupling: true median rank **{paper['median_rank'].mean():.1f}**, "
            f"argsort-diagonal **{paper['argsort_diagonal'].mean():.1f}**. A number that reads about N/2 for any "
            f"embedding would have printed the paper's Table 1 whether or not its model had learned anything.")


def conclusion(table: pd.DataFrame) -> str:
    """RQ1 in plain words, from the measured table (Markdown)."""
    t = table.assign(mr=(table["median_rank_a2v"] + table["median_rank_v2a"]) / 2 / table["pool"])
    chance = ((t["pool"] + 1) / (2 * t["pool"])).mean()
    coupled = t[t["style_coupling"] > 0]
    by = coupled.groupby(["config", "coupling"])[["mr", "genre_auc_cl_agg", "genre_auc_concat"]].mean()
    independent = t[(t["coupling"] == 0) & (t["style_coupling"] == 0)].groupby("config")["mr"].mean()
    lines = [f"Chance is a median rank of {chance:.2f} of the pool."]
    for name in CONFIGS:
        curve = by.loc[name]
        lo, hi = curve.index.min(), curve.index.max()
        beats = curve.index[curve["mr"] < 0.8 * chance]
        lines.append(
            f"- **{name}**: median rank / pool {curve.loc[lo, 'mr']:.2f} at coupling {lo:g} and {curve.loc[hi, 'mr']:.2f} "
            f"at coupling {hi:g}" + (f" (independent modalities: {independent[name]:.2f})" if name in independent else "")
            + (f"; clearly below chance from coupling {beats.min():g} on." if len(beats) else "; never clearly below chance."))
        better = curve.index[curve["genre_auc_cl_agg"] > curve["genre_auc_concat"]]
        lines.append(f"  Genre AUC of CL_agg {curve['genre_auc_cl_agg'].min():.2f}–{curve['genre_auc_cl_agg'].max():.2f} "
                     f"against {curve['genre_auc_concat'].min():.2f}–{curve['genre_auc_concat'].max():.2f} for the frozen "
                     f"musicnn+R(2+1)D; " + (f"better at coupling {', '.join(f'{c:g}' for c in better)}." if len(better)
                                              else "never better (RQ1: no, for this configuration)."))
    return "\n".join(lines)
