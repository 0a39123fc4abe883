"""The feature store on disk: its folders, files and meta, how it grows, merges shards and is locked,
and how it is read (`load_features`, `load_feature_pair`).

One store per encoder, in `DATA_DIR/features/<key>/` (`KEYS`: audio → musicnn, 1506-d
`max_pool ‖ mean_pool`; video → r2plus1d_18, 512-d):

- `meta.json`, the commit point: encoder, layer, weights provenance (sha256, seed), precision,
  view spec, dtype, shape, the data files below, the manifest fingerprint, versions, timing;
- `features.<g>.f16`: raw float16 `(n_segments, V, dim)` in manifest order (a file may be
  longer than that while it grows; only the first n rows count);
- `status.<g>.u8`: `(n_segments,)` 0 missing, 1 done, 2 failed (reasons in meta.json);
- `segments.<g>.csv`: segment_id, the size/mtime of its two files, the sha256 of their bytes
  (`mvnb.features.index`).

A store made with other settings (weights, precision, views, frames, …) is refused, not mixed
(`rebuild=True` replaces it). A shard's store lives in `features/<key>/shards/i-of-N/`; a plain
run takes every finished shard's rows made with the same settings, for the same segment content.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import logging
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pandas as pd
import torch
import torchvision

from mvnb.features.index import fingerprint
from mvnb.io import read_json, write_csv, write_json
from mvnb.segments import load_manifest

log = logging.getLogger(__name__)

KEYS = {"audio": "musicnn", "video": "r2plus1d_18"}
FORMAT_VERSION = 1
STORE_DTYPE = np.dtype("<f2")
MISSING, DONE, FAILED = 0, 1, 2


class FeatureStoreMismatch(ValueError):
    """A store was made with other settings; its features would be mixed with new ones."""


class FeatureStoreStale(ValueError):
    """A store does not (yet) hold features for the current manifest."""


@dataclass
class Encoder:
    """One frozen encoder as the store sees it: key, dimension, device type, settings, provenance, and
    `encode`, which maps a batch of view inputs to `(batch, dim)` float32 features."""

    modality: str
    key: str
    dim: int
    device: str
    settings: dict
    provenance: dict
    encode: Callable[[torch.Tensor], torch.Tensor]


def feature_dir(store: str | Path, modality: str) -> Path:
    """`DATA_DIR/features/<key>`, the feature store of a segment store `store` for a modality
    ("audio", "video") or an encoder key."""
    return Path(store) / "features" / KEYS.get(modality, modality)


def feature_keys(data_dir: str | Path) -> dict[str, str]:
    """`{modality: key}` of the stores present in `data_dir` (e.g. {"audio": "musicnn", "video":
    "r2plus1d_18"})."""
    return {m: k for m, k in KEYS.items() if (feature_dir(data_dir, k) / "meta.json").is_file()}


def read_meta(folder: Path) -> dict | None:
    """A store's meta.json, or None when there is no store."""
    return read_json(folder / "meta.json")


def _commit_meta(folder: Path, meta: dict) -> None:
    """Write meta.json atomically (the commit point), then delete data files it no longer names."""
    write_json(folder / "meta.json", meta)
    named = set(meta["files"].values()) | {"meta.json", ".lock"}
    for stale in folder.iterdir():
        if stale.is_file() and stale.name not in named:
            stale.unlink(missing_ok=True)


def _row_shape(meta: dict) -> tuple[int, int]:
    return meta["views"], meta["dim"]


def _open(folder: Path, meta: dict, mode: str = "r") -> tuple[np.ndarray, np.ndarray]:
    """`(features (n, V, dim) float16, status (n,) uint8)` memory maps of a committed store."""
    n = meta["n_segments"]
    if n == 0:
        return np.zeros((0, *_row_shape(meta)), STORE_DTYPE), np.zeros(0, np.uint8)
    features = np.memmap(
        folder / meta["files"]["features"], dtype=STORE_DTYPE, mode=mode, shape=(n, *_row_shape(meta))
    )
    status = np.memmap(folder / meta["files"]["status"], dtype=np.uint8, mode=mode, shape=(n,))
    return features, status


def _ensure_size(path: Path, n_bytes: int) -> None:
    """Create or grow `path` (zero-filled) to at least `n_bytes`."""
    with open(path, "ab") as handle:
        if handle.tell() < n_bytes:
            handle.truncate(n_bytes)


def shard_dir(folder: Path, shard: tuple[int, int] | None) -> Path:
    """Where shard `(i, n)` of a store in `folder` lives (`folder/shards/i-of-n`); `folder` itself for
    None."""
    return folder if shard is None else folder / "shards" / f"{shard[0]}-of-{shard[1]}"


def _import_shards(
    folder: Path, meta: dict, index: pd.DataFrame, features: np.ndarray, status: np.ndarray
) -> list[dict]:
    """Copy into the store the rows it lacks that a shard made with the same settings holds for
    the same segment content; returns the metas of the shards used."""
    used = []
    for shard_meta_path in sorted(folder.glob("shards/*/meta.json")):
        shard_folder = shard_meta_path.parent
        shard_meta = read_meta(shard_folder)
        if (
            shard_meta["settings"] != meta["settings"]
            or not shard_meta["n_segments"]
            or (status == DONE).all()
        ):
            continue
        shard_index = pd.read_csv(
            shard_folder / shard_meta["files"]["segments"], dtype=str, keep_default_na=False
        )
        shard_features, shard_status = _open(shard_folder, shard_meta, "r")
        where = dict(
            zip(
                zip(shard_index["segment_id"], shard_index["content"], strict=True),
                range(len(shard_index)),
                strict=True,
            )
        )
        source = np.array(
            [where.get(key, -1) for key in zip(index["segment_id"], index["content"], strict=True)],
            dtype=np.int64,
        )
        take = (source >= 0) & (status != DONE)
        take[take] = shard_status[source[take]] == DONE
        rows = np.flatnonzero(take)
        if len(rows):
            features[rows] = shard_features[source[rows]]
            features.flush()
            status[rows] = DONE
            status.flush()
            used.append(shard_meta)
    return used


def _summed_timing(metas: list[dict]) -> dict | None:
    """The timing of several shard runs added up (segments, clips and seconds)."""
    timings = [m["timing"] for m in metas if m.get("timing")]
    if not timings:
        return None
    total = {k: sum(t[k] for t in timings) for k in ("segments", "clips", "encoder_s", "wall_s")}
    return {**timings[0], **total, "shards": len(timings)}


def _write_index(folder: Path, index: pd.DataFrame, generation: int) -> str:
    """Write `segments.<generation>.csv` atomically; returns its name."""
    name = f"segments.{generation}.csv"
    write_csv(folder / name, index)
    return name


def _reconcile(folder: Path, meta: dict, index: pd.DataFrame) -> dict:
    """Lay the store out for `index` (the current manifest); returns the new, committed meta.

    Rows of segments whose content is unchanged keep their features and status; new or
    changed segments are marked missing. If the stored segments are a prefix of the new
    index, the files grow in place; otherwise the kept rows are copied into new files.
    """
    old = (
        pd.read_csv(folder / meta["files"]["segments"], dtype=str, keep_default_na=False)
        if meta["n_segments"]
        else index.iloc[:0]
    )
    generation = meta["generation"] + 1
    n_old, n_new = len(old), len(index)
    where = {sid: i for i, sid in enumerate(old["segment_id"])}
    source = np.array([where.get(sid, -1) for sid in index["segment_id"]], dtype=np.int64)
    keep = source >= 0
    keep[keep] = old["content"].to_numpy()[source[keep]] == index["content"].to_numpy()[keep]
    changed = int((source >= 0).sum() - keep.sum())
    if changed:
        log.warning(
            "%s: %d segment(s) changed content since they were encoded; recomputing them",
            folder.name,
            changed,
        )
    in_place = n_old <= n_new and (source[:n_old] == np.arange(n_old)).all()
    files = (
        dict(meta["files"])
        if in_place
        else {"features": f"features.{generation}.f16", "status": f"status.{generation}.u8"}
    )
    row_bytes = int(np.prod(_row_shape(meta))) * STORE_DTYPE.itemsize
    _ensure_size(folder / files["features"], n_new * row_bytes)
    _ensure_size(folder / files["status"], n_new)
    new_meta = {**meta, "generation": generation, "n_segments": n_new, "files": files}
    if n_new:
        features, status = _open(folder, new_meta, "r+")
        if not in_place and keep.any():
            old_features, old_status = _open(folder, meta, "r")
            targets = np.flatnonzero(keep)
            for chunk in np.array_split(targets, max(1, len(targets) // 4096)):
                features[chunk] = old_features[source[chunk]]
            status[targets] = old_status[source[targets]]
            features.flush()
        status[~keep] = MISSING
        status.flush()
        del features, status
    ids = set(index["segment_id"])
    new_meta["failed"] = {sid: why for sid, why in meta.get("failed", {}).items() if sid in ids}
    new_meta["files"]["segments"] = _write_index(folder, index, generation)
    new_meta["manifest_fingerprint"] = fingerprint(index)
    _commit_meta(folder, new_meta)
    return new_meta


def _versions() -> dict:
    """Versions of what produced the features."""
    return {
        "mvnb": importlib.metadata.version("mvnb"),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "av": av.__version__,
        "python": platform.python_version(),
    }


def _flatten(settings: dict, prefix: str = "") -> dict:
    """Nested settings as `{"views.frames": 8, …}`."""
    flat = {}
    for name, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _open_store(folder: Path, encoder: Encoder, rebuild: bool) -> dict:
    """The meta of `folder`'s store for `encoder`: the existing one when its settings match, a new
    empty one when there is none (or `rebuild` removed a mismatching one). Raises
    FeatureStoreMismatch naming the differing settings otherwise."""
    meta = read_meta(folder)
    if meta is not None and meta["settings"] != encoder.settings:
        old, new = _flatten(meta["settings"]), _flatten(encoder.settings)
        diff = ", ".join(
            f"{k}: {old.get(k)!r} → {new.get(k)!r}"
            for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k)
        )
        if not rebuild:
            raise FeatureStoreMismatch(
                f"{folder} holds features made with other settings ({diff}); refusing to mix them. "
                f"Rebuild it (--rebuild / rebuild=True) or use another store"
            )
        log.warning("rebuilding %s (%s)", folder, diff)
        for path in folder.iterdir():
            if path.is_file() and path.name != ".lock":
                path.unlink()
        meta = None
    if meta is None:
        meta = {
            "key": encoder.key,
            "modality": encoder.modality,
            "encoder": encoder.settings["encoder"],
            "layer": encoder.settings["layer"],
            "dim": encoder.dim,
            "views": encoder.settings["views"]["views"],
            "dtype": STORE_DTYPE.name,
            "settings": encoder.settings,
            "generation": 0,
            "n_segments": 0,
            "files": {"features": "features.0.f16", "status": "status.0.u8"},
            "failed": {},
        }
    return {**meta, "provenance": encoder.provenance, "versions": _versions()}


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on a store folder, or fail at once if another run holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another `features` run is writing {folder}; wait for it to finish") from None
        yield


def load_features(data_dir: str | Path, modality_or_key: str) -> tuple[np.ndarray, dict]:
    """The features of one encoder, `(n_segments, V, dim)` float16 memory-mapped (read-only), in
    the order of `load_manifest(data_dir)`, and the store's meta.

    The meta is meta.json (encoder, layer, provenance, settings, view spec, …) plus `path`
    and `valid`, a `(n_segments,)` bool array, False for segments that failed (their rows
    are NaN; reasons in `meta["failed"]`). Raises FileNotFoundError when there is no such
    store, FeatureStoreStale when it does not cover the current manifest.
    """
    folder = feature_dir(data_dir, modality_or_key)
    meta = read_meta(folder)
    if meta is None:
        raise FileNotFoundError(
            f"no {modality_or_key} features in {folder}; run `python -m mvnb features --data {data_dir}` "
            f"first"
        )
    ids = load_manifest(data_dir)["segment_id"].to_numpy()
    stored = (
        pd.read_csv(folder / meta["files"]["segments"], dtype=str, keep_default_na=False)[
            "segment_id"
        ].to_numpy()
        if meta["n_segments"]
        else np.array([], dtype=object)
    )
    hint = f"run `python -m mvnb features --data {data_dir}` to bring it up to date"
    if len(ids) != len(stored) or (ids != stored).any():
        raise FeatureStoreStale(
            f"{folder} holds {len(stored)} segments, the manifest has {len(ids)} (or another order); {hint}"
        )
    features, status = _open(folder, meta, "r")
    missing = int((status == MISSING).sum())
    if missing:
        raise FeatureStoreStale(
            f"{folder}: {missing} of {len(ids)} segments have no features yet (an interrupted run?); {hint}"
        )
    return features, {**meta, "path": str(folder), "valid": np.asarray(status) == DONE}


def check_views_aligned(audio_meta: dict, video_meta: dict) -> None:
    """Raise FeatureStoreMismatch unless view v of the audio and the video stores covers the same time
    span."""
    audio_views = audio_meta["settings"]["views"]
    video_views = {k: video_meta["settings"]["views"][k] for k in audio_views}
    if audio_views != video_views:
        raise FeatureStoreMismatch(
            f"audio and video views differ in time ({audio_views} vs {video_views}); "
            f"extract both with the same --views and --seed"
        )


def load_feature_pair(data_dir: str | Path) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, dict, dict]:
    """`(manifest, audio (n, V, 1506), video (n, V, 512), audio_meta, video_meta)`, checked to be
    aligned row by row (same manifest) and view by view (same time spans)."""
    audio, audio_meta = load_features(data_dir, "audio")
    video, video_meta = load_features(data_dir, "video")
    check_views_aligned(audio_meta, video_meta)
    return load_manifest(data_dir), audio, video, audio_meta, video_meta
