"""New videos in: how a video the catalogue has never seen is cut into segments and encoded
exactly as a segment store's were, and embedded by a training run's heads.

Shared by the two ways new videos come in, `python -m mvnb similar` (`mvnb.coldstart`) and
`python -m mvnb embed` (`mvnb.embed`). `EncodeSettings` are a store's preprocessing parameters
and view-0 encoder settings (`store_settings`, or the default profile's, `default_settings`);
`encode_store` cuts and encodes videos with them; `encoding_differences` says how two stores'
view-0 features would differ. A run names the store it was trained on (`mvnb.runs.run_data_dir`), whose
encoders must still be the ones it was trained with (`check_run_store`); `heads_embeddings`
gives the learned embeddings of new segments' features as training computed them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvnb import config, corpus, features, segments
from mvnb.embeddings import learned_embeddings
from mvnb.runs import SUMMARY_FILE, read_summary

# --------------------------------------------------------------------------- how videos are encoded


@dataclass(frozen=True)
class EncodeSettings:
    """How videos are cut into segments and their view 0 encoded.

    preprocess: the segment store's parameters; frames: video frames per view; seed: of the
    view spec and of a random video initialisation; video_weights: "kinetics400", "random" or
    a .pth path (`strict_weights`: fail instead of falling back to a seeded random init);
    precision: of both encoders; audio_model: the musicnn weights.
    """

    preprocess: segments.PreprocessParams
    frames: int
    seed: int
    video_weights: str
    strict_weights: bool
    precision: str
    audio_model: str


def store_settings(data_dir: str | Path) -> EncodeSettings:
    """The settings a segment store and its two feature stores were made with.

    Raises FileNotFoundError when the store has no features yet.
    """
    data_dir = Path(data_dir)
    metas = {m: features.read_meta(features.feature_dir(data_dir, m)) for m in features.KEYS}
    missing = [m for m, meta in metas.items() if meta is None]
    if missing:
        raise FileNotFoundError(
            f"the store {data_dir} has no {' or '.join(missing)} features; run `python -m mvnb features` "
            f"first"
        )
    video, weights = metas["video"], metas["video"]["provenance"]["weights"]
    if weights not in ("kinetics400", "file"):
        weights = "random"  # asked for so, or what a missing Kinetics download fell back to
    elif weights == "file":
        weights = video["provenance"]["source"]
    return EncodeSettings(
        segments.load_params(data_dir),
        video["settings"]["views"]["frames"],
        video["settings"]["views"]["seed"],
        weights,
        weights == "kinetics400",
        video["settings"]["precision"],
        metas["audio"]["settings"]["model"],
    )


def default_settings() -> EncodeSettings:
    """The default profile's settings: its segments, seconds, fps, size, frames, weights and
    precision (Kinetics-400, falling back to a seeded random init where they cannot be had,
    as in the report)."""
    p = config.PROFILES["default"]
    preprocess = segments.PreprocessParams(
        segments=p["segments"],
        seconds=p["seconds"],
        fps=p["fps"],
        size=corpus.parse_size(p["size"]),
        seed=p["corpus_seed"],
    )
    return EncodeSettings(
        preprocess, p["frames"], 0, p["video_weights"], False, p["precision"], "MSD_musicnn"
    )


def encode_store(
    metadata_csv: str | Path,
    store: str | Path,
    settings: EncodeSettings,
    device: str | None = None,
    workers: int = 0,
    progress: bool = True,
) -> dict | None:
    """Cut the videos `metadata_csv` lists into the segment store `store` and encode view 0 of
    each segment as `settings` say; incremental, like both steps. Returns the feature summary
    (`mvnb.features.extract_features`), or None when no video gave a segment."""
    p = settings.preprocess
    manifest = segments.preprocess(
        None,
        metadata_csv,
        store,
        segments=p.segments,
        seconds=p.seconds,
        fps=p.fps,
        size=p.size,
        seed=p.seed,
        sample_rate=p.sample_rate,
        workers=max(1, workers),
        progress=progress,
    )
    if manifest.empty:
        return None
    return features.extract_features(
        store,
        views=1,
        frames=settings.frames,
        video_weights=settings.video_weights,
        precision=settings.precision,
        device=device,
        workers=workers,
        seed=settings.seed,
        audio_model=settings.audio_model,
        strict_weights=settings.strict_weights,
        progress=progress,
    )


def encoding_differences(store: str | Path, reference: str | Path) -> list[str]:
    """How the view-0 features of `store` would differ from those of `reference`: the
    preprocessing parameters and encoder settings (weights' sha256, precision, frames, …) that
    are not the same, as `name: theirs → ours`; empty when the two encode alike. The number of
    views is not compared: view 0 does not depend on it."""

    def spec(data_dir) -> dict:
        flat = {f"preprocess.{k}": v for k, v in segments.load_params(data_dir).as_json().items()}
        for modality in features.KEYS:
            settings = dict(features.read_meta(features.feature_dir(data_dir, modality))["settings"])
            settings["views"] = {k: v for k, v in settings["views"].items() if k != "views"}
            flat.update({f"{modality}.{k}": v for k, v in settings.items()})
        return flat

    ours, theirs = spec(store), spec(reference)
    return [
        f"{k}: {theirs.get(k)!r} → {ours.get(k)!r}"
        for k in sorted(set(ours) | set(theirs))
        if ours.get(k) != theirs.get(k)
    ]


# --------------------------------------------------------------------------- the run's store and heads


def check_run_store(run: Path, data_dir: Path) -> None:
    """Raise ValueError when the features a run was trained on came from other encoders than the store's."""
    recorded = (read_summary(run) if (run / SUMMARY_FILE).is_file() else {}).get("provenance", {})
    for modality in ("audio", "video"):
        then = recorded.get(modality, {}).get("provenance", {}).get("sha256")
        now = (
            (features.read_meta(features.feature_dir(data_dir, modality)) or {}).get("provenance") or {}
        ).get("sha256")
        if then and now and then != now:
            raise ValueError(
                f"{run} was trained on {modality} features of other weights ({then[:12]}…) than {data_dir} "
                f"holds now ({now[:12]}…); retrain it or point --data at its store"
            )


def heads_embeddings(run: str | Path, audio, video, device: str | None = None) -> dict[str, np.ndarray]:
    """`CL_a`, `CL_v` and `CL_agg` of segments, `(s, dim)` each, from their features `(s, views,
    audio_dim)`, `(s, views, video_dim)` by the heads of `run`, as training computed its
    embeddings.npz: view 0, the run's precision."""
    from mvnb.device import default_device
    from mvnb.projection import embed_segments
    from mvnb.train import load_heads

    device = device or default_device()
    heads, _, train_config = load_heads(run, device)
    cl_audio, cl_video = embed_segments(heads, audio, video, device=device, precision=train_config.precision)
    return learned_embeddings(cl_audio, cl_video)
