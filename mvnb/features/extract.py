"""Extraction: the frozen encoders as the store uses them (`audio_encoder`, `video_encoder`),
`extract_features`, which brings a segment store's feature stores up to date, and the command
`python -m mvnb features`.

Reruns are incremental: only rows not done are computed (a killed run resumes), new manifest
segments are appended, a segment whose files changed is recomputed, and a store made with other
settings is refused, not mixed (`rebuild=True` replaces it). With `shard="i/N"` a run encodes only
shard i's videos into a store of its own; a later plain run takes every finished shard's rows
instead of computing them: that is the merge.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mvnb.corpus import parse_shard, shard_of
from mvnb.device import default_device, resolve_precision
from mvnb.encoders import musicnn, musicnn_weights, r2plus1d
from mvnb.features.index import segment_index
from mvnb.features.pipeline import _run_pipeline
from mvnb.features.store import (
    DONE,
    FORMAT_VERSION,
    KEYS,
    STORE_DTYPE,
    Encoder,
    FeatureStoreStale,
    _commit_meta,
    _import_shards,
    _locked,
    _open,
    _open_store,
    _reconcile,
    _summed_timing,
    feature_dir,
    shard_dir,
)
from mvnb.features.views import ViewSpec
from mvnb.segments import load_manifest, load_params

log = logging.getLogger(__name__)

AUDIO_LAYER = "pooled (max_pool ‖ mean_pool)"


def audio_encoder(
    spec: ViewSpec, device: torch.device, precision: str, model_name: str = "MSD_musicnn"
) -> Encoder:
    """musicnn `model_name`, `max_pool ‖ mean_pool` of `(batch, 187, 96)` patches → `(batch, 1506)`."""
    model = musicnn.load_musicnn(model_name, device)
    resolved = resolve_precision(precision, device)
    provenance = {
        "encoder": "musicnn",
        "layer": AUDIO_LAYER,
        "weights": model_name,
        **musicnn_weights.musicnn_provenance(model_name),
    }
    settings = {
        "format_version": FORMAT_VERSION,
        "encoder": "musicnn",
        "model": model_name,
        "layer": AUDIO_LAYER,
        "dim": musicnn.LAYER_DIMS["pooled"],
        "dtype": STORE_DTYPE.name,
        "weights_sha256": provenance["sha256"],
        "precision": resolved,
        "views": spec.time_json(),
    }
    return Encoder(
        "audio",
        KEYS["audio"],
        settings["dim"],
        device.type,
        settings,
        provenance,
        lambda patches: musicnn.musicnn_features(model, patches, "pooled", precision=resolved),
    )


def video_encoder(
    spec: ViewSpec,
    device: torch.device,
    precision: str,
    weights: str | Path = "kinetics400",
    seed: int = 0,
    strict: bool = False,
) -> Encoder:
    """R(2+1)D-18 on `(batch, T, 112, 112, 3)` uint8 clips → `(batch, 512)` (see `load_r2plus1d`)."""
    model, provenance = r2plus1d.load_r2plus1d(weights, seed=seed, device=device, strict=strict)
    resolved = resolve_precision(precision, device)
    settings = {
        "format_version": FORMAT_VERSION,
        "encoder": r2plus1d.NAME,
        "layer": r2plus1d.LAYER,
        "dim": r2plus1d.FEATURE_DIM,
        "dtype": STORE_DTYPE.name,
        "weights": provenance["weights"],
        "weights_sha256": provenance["sha256"],
        "seed": provenance["seed"],
        "precision": resolved,
        "memory_format": "channels_last_3d",
        "views": spec.as_json(),
    }
    return Encoder(
        "video",
        KEYS["video"],
        settings["dim"],
        device.type,
        settings,
        provenance,
        lambda clips: r2plus1d.r2plus1d_features(model, clips, precision=resolved),
    )


def _manifest_of(
    data_dir: Path, shard: str | tuple[int, int] | None
) -> tuple[pd.DataFrame, tuple[int, int] | None]:
    """The manifest rows to encode, those of shard `shard`'s videos only when it is given, and the
    shard as `(i, n)` (None without one). Raises FeatureStoreStale when the store has no segments."""
    manifest = load_manifest(data_dir)
    shard = parse_shard(shard)
    if manifest.empty and shard is None:
        raise FeatureStoreStale(f"the manifest of {data_dir} has no segments; preprocess some videos first")
    if shard is not None:
        manifest = manifest[[shard_of(v, shard[1]) == shard[0] for v in manifest["video_id"]]].reset_index(
            drop=True
        )
    return manifest, shard


def _view_spec(data_dir: Path, views: int, frames: int, seed: int) -> ViewSpec:
    """The views of the segment store at `data_dir` (its fps, segment length and sample rate)."""
    params = load_params(data_dir)
    return ViewSpec(
        int(views),
        int(frames),
        fps=params.fps,
        seconds=params.seconds,
        sample_rate=params.sample_rate,
        seed=int(seed),
    )


def _make_encoders(
    spec: ViewSpec,
    device: torch.device,
    precision: str,
    modalities: tuple[str, ...],
    audio_model: str,
    video_weights: str | Path,
    seed: int,
    strict_weights: bool,
) -> dict[str, Encoder]:
    """`{modality: Encoder}` of the chosen `modalities` (a ValueError names unknown ones)."""
    unknown = set(modalities) - set(KEYS)
    if unknown:
        raise ValueError(f"unknown modalities {sorted(unknown)}; choose from {list(KEYS)}")
    encoders = {}
    if "audio" in modalities:
        encoders["audio"] = audio_encoder(spec, device, precision, audio_model)
    if "video" in modalities:
        encoders["video"] = video_encoder(spec, device, precision, video_weights, seed, strict_weights)
    return encoders


def _prepare_stores(
    data_dir: Path,
    manifest: pd.DataFrame,
    folders: dict[str, Path],
    encoders: dict[str, Encoder],
    rebuild: bool,
    progress: bool,
) -> tuple[dict[str, dict], pd.DataFrame]:
    """Open each (locked) store for its encoder and lay it out for `manifest`: `(metas, index)`, the
    committed meta per modality and the segment index (`segment_index`, its hashes reused from the
    stores' own indexes where the files are unchanged)."""
    metas = {m: _open_store(folders[m], e, rebuild) for m, e in encoders.items()}
    cached = [
        pd.read_csv(folders[m] / meta["files"]["segments"], dtype=str, keep_default_na=False)
        for m, meta in metas.items()
        if meta["n_segments"]
    ]
    index = segment_index(
        data_dir,
        manifest,
        pd.concat(cached).drop_duplicates(["segment_id", "stat"]) if cached else None,
        progress,
    )
    return {m: _reconcile(folders[m], meta, index) for m, meta in metas.items()}, index


def _jobs(manifest: pd.DataFrame, todo: dict[str, np.ndarray]) -> pd.DataFrame:
    """The segments some modality still lacks: `segment_id, video_path, audio_path, row` (their row
    in the store) and a bool per modality (`todo[m]`, `(n_segments,)`; False for a modality not run)."""
    jobs = manifest[["segment_id", "video_path", "audio_path"]].assign(
        row=np.arange(len(manifest)), **{m: todo.get(m, np.zeros(len(manifest), bool)) for m in KEYS}
    )
    return jobs[jobs["audio"] | jobs["video"]]


def _run_timing(
    computed: int,
    spec: ViewSpec,
    seconds: dict[str, float],
    modality: str,
    device: torch.device,
    workers: int,
    batch_size: int,
) -> dict:
    """The timing a store records of the run that computed `computed` of its segments."""
    return {
        "segments": computed,
        "clips": computed * spec.views,
        "encoder_s": seconds[modality],
        "wall_s": seconds["wall"],
        "device": str(device),
        "threads": torch.get_num_threads(),
        "workers": int(workers),
        "batch_size": int(batch_size),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _commit_run(
    folder: Path,
    meta: dict,
    status: np.ndarray,
    failed: dict[str, str],
    retried: set[str],
    timing: dict | None,
    imported: list[dict],
) -> None:
    """Record a run in a store's meta and commit it: its failures (this run's, and the earlier ones
    of segments it did not retry), whether every row of `status` `(n_segments,)` is done, and the
    timing of this run (`timing`, when it computed rows) or else of the shards it imported from."""
    meta["failed"] = {
        **{sid: why for sid, why in meta["failed"].items() if sid not in retried},
        **failed,
    }
    meta["complete"] = bool((status == DONE).all())
    if timing is not None:
        meta["timing"] = timing
    elif imported:
        meta["timing"] = _summed_timing(imported)
    _commit_meta(folder, meta)


def extract_features(
    data_dir: str | Path,
    *,
    views: int = 2,
    frames: int = 8,
    video_weights: str | Path = "kinetics400",
    precision: str = "auto",
    batch_size: int = 4,
    device: str | torch.device | None = None,
    workers: int = 1,
    seed: int = 0,
    audio_model: str = "MSD_musicnn",
    modalities: tuple[str, ...] = ("audio", "video"),
    strict_weights: bool = False,
    rebuild: bool = False,
    shard: str | tuple[int, int] | None = None,
    progress: bool = True,
) -> dict:
    """Encode every segment of the store at `data_dir` in `views` views; incremental.

    views, frames: V and T (see `ViewSpec`); video_weights: "kinetics400" (falls back to a
        seeded random init with a loud warning, unless `strict_weights`), "random" or a .pth
        path; precision: "auto" (bf16 autocast on a CPU with native bf16, AMP on CUDA), "fp32"
        or "bf16"; batch_size: segments per batch (each gives V clips; at most MAX_CLIPS clips
        per batch); device: None → cuda when present, else cpu; workers: decoding processes (0:
        decode in this process); seed: of the random views and of a random video init; rebuild:
        replace a store made with other settings instead of refusing; shard: "i/N" encodes only the
        videos of shard i of N
        (`mvnb.corpus.shard_of`) into `features/<key>/shards/i-of-N/`; a later run without
        `shard` takes the rows of every finished shard made with the same settings (merge).
    Returns a summary: `segments`, `wall_s`, and per modality `path, computed, reused,
    imported (from shards), failed ({segment_id: reason}), encoder_s, provenance, precision`.
    """
    data_dir = Path(data_dir)
    manifest, shard = _manifest_of(data_dir, shard)
    if manifest.empty:
        log.info("shard %d/%d of %s holds no videos", *shard, data_dir)
        return {"data_dir": str(data_dir), "segments": 0, "wall_s": 0.0}
    spec = _view_spec(data_dir, views, frames, seed)
    device = torch.device(device) if device else default_device()
    encoders = _make_encoders(
        spec, device, precision, modalities, audio_model, video_weights, seed, strict_weights
    )
    folders = {m: shard_dir(feature_dir(data_dir, m), shard) for m in encoders}
    with contextlib.ExitStack() as stack:
        for folder in folders.values():
            stack.enter_context(_locked(folder))
        return _update_stores(
            data_dir,
            manifest,
            spec,
            encoders,
            folders,
            device,
            merge=shard is None,
            rebuild=rebuild,
            batch_size=batch_size,
            workers=workers,
            progress=progress,
        )


def _encode_jobs(
    data_dir: Path,
    spec: ViewSpec,
    manifest: pd.DataFrame,
    jobs: pd.DataFrame,
    encoders: dict[str, Encoder],
    arrays: dict[str, tuple[np.ndarray, np.ndarray]],
    batch_size: int,
    workers: int,
    progress: bool,
) -> tuple[dict[str, dict[str, str]], dict[str, float]]:
    """Run the pipeline over `jobs` (see `_jobs`), if any: `(failed, seconds)` as `_run_pipeline`
    returns them (nothing failed and zero seconds when there is nothing to do)."""
    if not len(jobs):
        return {m: {} for m in encoders}, {m: 0.0 for m in encoders} | {"wall": 0.0}
    log.info(
        "encoding %d of %d segments (%s)",
        len(jobs),
        len(manifest),
        ", ".join(f"{m}: {int(jobs[m].sum())}" for m in encoders),
    )
    return _run_pipeline(data_dir, spec, jobs, encoders, arrays, int(batch_size), int(workers), progress)


def _update_stores(
    data_dir: Path,
    manifest: pd.DataFrame,
    spec: ViewSpec,
    encoders: dict[str, Encoder],
    folders: dict[str, Path],
    device: torch.device,
    *,
    merge: bool,
    rebuild: bool,
    batch_size: int,
    workers: int,
    progress: bool,
) -> dict:
    """Bring the (locked) stores in `folders` up to date for `manifest`: reconcile them, import the
    rows of finished shards when `merge`, encode what is still missing, and commit. Returns the
    summary of `extract_features`."""
    metas, index = _prepare_stores(data_dir, manifest, folders, encoders, rebuild, progress)
    arrays = {m: _open(folders[m], meta, "r+") for m, meta in metas.items()}
    reused = {m: int((arrays[m][1] == DONE).sum()) for m in encoders}
    imported = {m: _import_shards(folders[m], metas[m], index, *arrays[m]) if merge else [] for m in encoders}
    todo = {m: arrays[m][1] != DONE for m in encoders}
    jobs = _jobs(manifest, todo)
    failed, seconds = _encode_jobs(
        data_dir, spec, manifest, jobs, encoders, arrays, batch_size, workers, progress
    )
    summary = {"data_dir": str(data_dir), "segments": len(manifest), "wall_s": seconds["wall"]}
    retried = set(jobs["segment_id"])
    for m, meta in metas.items():
        computed = int(todo[m].sum())
        timing = _run_timing(computed, spec, seconds, m, device, workers, batch_size) if computed else None
        _commit_run(folders[m], meta, arrays[m][1], failed[m], retried, timing, imported[m])
        summary[m] = {
            "path": str(folders[m]),
            "computed": computed - len(failed[m]),
            "reused": reused[m],
            "imported": len(manifest) - reused[m] - computed,
            "failed": failed[m],
            "encoder_s": seconds[m],
            "precision": meta["settings"]["precision"],
            "provenance": meta["provenance"],
        }
    del arrays
    return summary
