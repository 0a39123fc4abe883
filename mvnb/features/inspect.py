"""What notebook 02 shows of the feature stores: where their features come from
(`provenance_table`), musicnn's tags by genre from the stored audio features (`genre_taggram`),
feature statistics and view similarities, and the extraction timing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mvnb.encoders import musicnn, musicnn_weights
from mvnb.features.store import feature_dir, feature_keys, load_features, read_meta
from mvnb.metrics import unit_rows
from mvnb.segments import load_manifest


def provenance_table(data_dir: str | Path) -> pd.DataFrame:
    """One row per store: what produced its features (encoder, layer, weights, sha256, seed,
    precision, dtype, shape) and a plain-words `note` when the weights are random."""
    rows = []
    for modality, key in feature_keys(data_dir).items():
        meta = read_meta(feature_dir(data_dir, key))
        prov, settings = meta["provenance"], meta["settings"]
        random = prov.get("weights") == "random"
        note = ""
        if random:
            note = f"RANDOMLY INITIALISED (seed {prov['seed']}), not pretrained" + (
                f": {prov['requested']} weights unavailable" if prov.get("fallback") else ""
            )
        rows.append(
            {
                "modality": modality,
                "encoder": meta["encoder"],
                "layer": meta["layer"],
                "weights": prov.get("weights"),
                "source": prov.get("source"),
                "sha256": prov.get("sha256", "")[:16],
                "seed": "" if prov.get("seed") is None else str(prov["seed"]),
                "precision": settings["precision"],
                "dtype": meta["dtype"],
                "shape": f"({meta['n_segments']}, {meta['views']}, {meta['dim']})",
                "complete": meta.get("complete"),
                "note": note,
            }
        )
    return pd.DataFrame(rows)


def taggram_from_pooled(model: musicnn.Musicnn, pooled: torch.Tensor | np.ndarray) -> torch.Tensor:
    """musicnn's taggram `(batch, n_tags)` from stored `max_pool ‖ mean_pool` features `(batch, 1506)`.

    Runs `musicnn.Musicnn.backend` on the two halves.
    """
    pooled = torch.as_tensor(np.asarray(pooled, dtype=np.float32)).to(next(model.parameters()).device)
    half = pooled.shape[1] // 2
    with torch.inference_mode():
        return model.backend(pooled[:, :half], pooled[:, half:])["taggram"].float()


def genre_taggram(data_dir: str | Path, by: str = "genre", view: int = 0) -> pd.DataFrame:
    """The mean musicnn taggram of the segments of each `by` value (rows) over the model's tags
    (columns), computed from the stored audio features of view `view`. A corpus without `by`
    labels (your own videos, say) gets one row, "all segments"; unlabelled segments are
    grouped as "(none)"."""
    features, meta = load_features(data_dir, "audio")
    manifest = load_manifest(data_dir)
    groups = (
        manifest[by].fillna("(none)")
        if by in manifest.columns
        else pd.Series("all segments", index=manifest.index)
    )
    name = meta["settings"]["model"]
    model = musicnn.load_musicnn(name, "cpu")
    valid = meta["valid"]
    tags = taggram_from_pooled(model, features[valid, view]).numpy()
    table = pd.DataFrame(tags, columns=musicnn_weights.LABELS[name]).assign(**{by: groups[valid].to_numpy()})
    return table.groupby(by).mean()


def plot_taggram(table: pd.DataFrame):
    """Heatmap of a `genre_taggram` table: groups × tags, with the tag names."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(8, 0.22 * table.shape[1] + 2), 0.45 * table.shape[0] + 1.8))
    image = ax.imshow(table.to_numpy(), aspect="auto", cmap="magma")
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=90, fontsize=8)
    ax.set_yticks(range(table.shape[0]), table.index)
    ax.set_xlabel("musicnn tag")
    ax.set_ylabel(table.index.name or "")
    fig.colorbar(image, ax=ax, label="mean tag probability", fraction=0.025)
    fig.tight_layout()
    return fig


def view_similarities(
    features: np.ndarray, valid: np.ndarray, max_segments: int = 2000, seed: int = 0
) -> dict[str, np.ndarray]:
    """Cosine similarities of centred features (the mean view-0 feature subtracted, so that
    unrelated segments score about 0): `other_view` (view 0 vs view 1 of the same segment, if
    V > 1) and `other_segment` (view 0 of two different random segments), over at most
    `max_segments` segments."""
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(valid)
    rows = np.sort(rng.choice(rows, size=min(len(rows), max_segments), replace=False))
    raw0 = np.asarray(features[rows, 0], dtype=np.float32)
    mean = raw0.mean(axis=0)
    view0 = unit_rows(raw0 - mean)
    result = {}
    if features.shape[1] > 1:
        result["other_view"] = (
            view0 * unit_rows(np.asarray(features[rows, 1], dtype=np.float32) - mean)
        ).sum(axis=1)
    if len(rows) > 1:
        partner = (np.arange(len(rows)) + rng.integers(1, len(rows), size=len(rows))) % len(rows)
        result["other_segment"] = (view0 * view0[partner]).sum(axis=1)
    return result


def feature_statistics(data_dir: str | Path) -> pd.DataFrame:
    """Per store: shape, mean and sd of the values, fraction of zeros, dimensions constant over
    segments, mean L2 norm, and the mean cosine (centred, see `view_similarities`) to another
    view of the same segment and to another segment (view 0)."""
    rows = []
    for modality in feature_keys(data_dir):
        features, meta = load_features(data_dir, modality)
        x = np.asarray(features[meta["valid"], 0], dtype=np.float32)
        sims = view_similarities(features, meta["valid"])
        rows.append(
            {
                "modality": modality,
                "encoder": meta["encoder"],
                "segments": int(meta["valid"].sum()),
                "views": meta["views"],
                "dim": meta["dim"],
                "mean": float(x.mean()),
                "sd": float(x.std()),
                "zeros": float((x == 0).mean()),
                "constant dims": int((x.std(axis=0) < 1e-6).sum()),
                "mean norm": float(np.linalg.norm(x, axis=1).mean()),
                "cos other view": float(sims["other_view"].mean()) if "other_view" in sims else float("nan"),
                "cos other segment": float(sims["other_segment"].mean())
                if "other_segment" in sims
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def plot_view_similarities(data_dir: str | Path):
    """Histograms, per store, of the (centred) cosine to another view of the same segment and to another
    segment."""
    import matplotlib.pyplot as plt

    keys = feature_keys(data_dir)
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.2), squeeze=False)
    for ax, modality in zip(axes[0], keys, strict=True):
        features, meta = load_features(data_dir, modality)
        for name, values in view_similarities(features, meta["valid"]).items():
            ax.hist(values, bins=40, range=(-1.0, 1.0), alpha=0.6, label=name.replace("_", " "))
        ax.set_title(f"{modality}: {meta['encoder']}")
        ax.set_xlabel("cosine similarity (centred features)")
        ax.legend()
    fig.tight_layout()
    return fig


def timing_table(data_dir: str | Path) -> pd.DataFrame:
    """Per store, the last run that computed features: device, precision, threads, segments,
    encoder seconds per segment and per clip, wall seconds per segment (decoding overlapped)."""
    rows = []
    for modality, key in feature_keys(data_dir).items():
        meta = read_meta(feature_dir(data_dir, key))
        timing = meta.get("timing")
        if not timing:
            continue
        rows.append(
            {
                "modality": modality,
                "encoder": meta["encoder"],
                "device": timing["device"],
                "precision": meta["settings"]["precision"],
                "threads": timing["threads"],
                "workers": timing["workers"],
                "segments": timing["segments"],
                "views": meta["views"],
                "encoder s/segment": timing["encoder_s"] / timing["segments"],
                "encoder s/clip": timing["encoder_s"] / timing["clips"],
                "wall s/segment (both encoders)": timing["wall_s"] / timing["segments"],
            }
        )
    return pd.DataFrame(rows)
