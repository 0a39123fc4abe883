"""The feature store: frozen musicnn and R(2+1)D-18 features of every segment, in cached views.

The encoders are frozen, so each 5 s segment is encoded once, in V **views** of a 3 s window:

- view 0 is for evaluation: the centred window and the Kinetics centre crop;
- views 1..V-1 are training augmentations: a random window offset and a random resized crop,
  drawn from `(seed, segment_id, view)` alone, so no result depends on batch order or shard.

A view's window starts on a video frame (multiples of 0.1 s at 10 fps), so its audio (48,000
samples, musicnn's 187-frame patch) and its T video frames (evenly spaced over the window's 30
frames) cover the same 3 s.

One store per encoder, in `DATA_DIR/features/<key>/` (`KEYS`: audio → musicnn, 1506-d
`max_pool ‖ mean_pool`; video → r2plus1d_18, 512-d):

- `meta.json`, the commit point: encoder, layer, weights provenance (sha256, seed), precision,
  view spec, dtype, shape, the data files below, the manifest fingerprint, versions, timing;
- `features.<g>.f16`: raw float16 `(n_segments, V, dim)` in manifest order (a file may be
  longer than that while it grows; only the first n rows count);
- `status.<g>.u8`: `(n_segments,)` 0 missing, 1 done, 2 failed (reasons in meta.json);
- `segments.<g>.csv`: segment_id, the size/mtime of its two files, the sha256 of their bytes.

Reruns are incremental: only rows not done are computed (a killed run resumes), new manifest
segments are appended, a segment whose files changed is recomputed, and a store made with
other settings (weights, precision, views, frames, …) is refused, not mixed (`rebuild=True`
replaces it). Decoding runs in DataLoader workers while the encoders run. With `shard="i/N"`
a run encodes only shard i's videos into `features/<key>/shards/i-of-N/` (a store of its
own); a later plain run takes every finished shard's rows (made with the same settings, for
the same segment content) instead of computing them: that is the merge.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import importlib.metadata
import json
import logging
import math
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import av
import numpy as np
import pandas as pd
import torch
import torchvision
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from mvnb import config
from mvnb.corpus import parse_shard, shard_of
from mvnb.device import PRECISIONS, default_device, resolve_precision
from mvnb.encoders import musicnn, musicnn_weights, r2plus1d
from mvnb.io import atomic_write
from mvnb.media import open_media, read_wav
from mvnb.metrics import unit_rows
from mvnb.segments import load_manifest, load_params
from mvnb.workers import exit_with_parent

log = logging.getLogger(__name__)

KEYS = {"audio": "musicnn", "video": "r2plus1d_18"}
FORMAT_VERSION = 1
STORE_DTYPE = np.dtype("<f2")
WINDOW_S = musicnn.WINDOW_SAMPLES / musicnn.SAMPLE_RATE
MISSING, DONE, FAILED = 0, 1, 2
MAX_CLIPS = {"cpu": 32, "cuda": 128}  # clips per batch and per encoder call, by device type
AUDIO_LAYER = "pooled (max_pool ‖ mean_pool)"


class FeatureStoreMismatch(ValueError):
    """A store was made with other settings; its features would be mixed with new ones."""


class FeatureStoreStale(ValueError):
    """A store does not (yet) hold features for the current manifest."""


# --------------------------------------------------------------------------- views


@dataclass(frozen=True)
class ViewSpec:
    """How the V views of a segment are cut; the same spec gives the same views everywhere.

    views: V; frames: T video frames per view, evenly spaced over the window (T = 30 at 10 fps
    is every frame); fps, seconds, sample_rate: those of the segment store; crop_scale: the
    area of a random crop as a fraction of the (Kinetics-resized) frame; crop_ratio: its
    aspect-ratio range there; seed: the seed of the random views.
    """

    views: int
    frames: int
    fps: int = 10
    seconds: float = 5.0
    sample_rate: int = musicnn.SAMPLE_RATE
    crop_scale: tuple[float, float] = (0.4, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    seed: int = 0

    def __post_init__(self):
        if self.views < 1:
            raise ValueError(f"views must be at least 1, got {self.views}")
        if not 1 <= self.frames <= self.window_frames:
            raise ValueError(
                f"frames must be in 1..{self.window_frames} (the frames of a {WINDOW_S:g} s window at "
                f"{self.fps} fps), got {self.frames}"
            )
        if self.segment_frames < self.window_frames:
            raise ValueError(f"segments of {self.seconds:g} s are shorter than the {WINDOW_S:g} s window")
        if self.sample_rate != musicnn.SAMPLE_RATE or self.sample_rate % self.fps:
            raise ValueError(
                f"audio must be {musicnn.SAMPLE_RATE} Hz with a whole number of samples per frame, got "
                f"{self.sample_rate} Hz at {self.fps} fps"
            )

    @property
    def window_frames(self) -> int:
        """Video frames in the 3 s window (30 at 10 fps)."""
        return round(WINDOW_S * self.fps)

    @property
    def segment_frames(self) -> int:
        """Video frames in a segment (50 for 5 s at 10 fps)."""
        return round(self.seconds * self.fps)

    def as_json(self) -> dict:
        """The spec as JSON-ready values (tuples as lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def time_json(self) -> dict:
        """The part of the spec that fixes each view's time span (all the audio store depends on)."""
        spec = self.as_json()
        return {name: spec[name] for name in ("views", "fps", "seconds", "sample_rate", "seed")}


@dataclass(frozen=True)
class View:
    """One view of a segment: its window and crop.

    start_frame: first video frame of the window; frame_indices: the T frames fed to R(2+1)D;
    audio_start, audio_stop: the window's samples `[start, stop)`; box: the crop as
    `(x0, y0, width, height)` fractions of the frame.
    """

    start_frame: int
    frame_indices: tuple[int, ...]
    audio_start: int
    audio_stop: int
    box: tuple[float, float, float, float]


def _segment_key(segment_id: str) -> int:
    """A 64-bit integer fixed by the segment id (first bytes of its sha256)."""
    return int.from_bytes(hashlib.sha256(segment_id.encode("utf-8")).digest()[:8], "big")


def random_box(
    rng: np.random.Generator, scale: tuple[float, float], ratio: tuple[float, float]
) -> tuple[float, float, float, float]:
    """A random resized crop `(x0, y0, width, height)` in fractions of the frame.

    Drawn in the Kinetics-resized frame (128×171): area uniform in `scale` of it, aspect ratio
    log-uniform in `ratio`, each side clipped to the frame, position uniform.
    """
    height, width = r2plus1d.KINETICS_RESIZE
    area = rng.uniform(*scale) * width * height
    aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
    w = min(1.0, math.sqrt(area * aspect) / width)
    h = min(1.0, math.sqrt(area / aspect) / height)
    return (float(rng.uniform(0, 1 - w)), float(rng.uniform(0, 1 - h)), w, h)


def segment_views(spec: ViewSpec, segment_id: str) -> list[View]:
    """The `spec.views` views of one segment, a pure function of `(spec, segment_id)`."""
    span = spec.segment_frames - spec.window_frames
    samples_per_frame = spec.sample_rate // spec.fps
    offsets = np.floor((np.arange(spec.frames) + 0.5) * spec.window_frames / spec.frames).astype(int)
    views = []
    for v in range(spec.views):
        if v == 0:
            start, box = span // 2, r2plus1d.centre_box()
        else:
            rng = np.random.default_rng([spec.seed, _segment_key(segment_id), v])
            start, box = int(rng.integers(0, span + 1)), random_box(rng, spec.crop_scale, spec.crop_ratio)
        audio_start = start * samples_per_frame
        views.append(
            View(
                start,
                tuple(int(i) for i in start + offsets),
                audio_start,
                audio_start + musicnn.WINDOW_SAMPLES,
                box,
            )
        )
    return views


def view_windows(waveform: np.ndarray, views: list[View]) -> np.ndarray:
    """The audio of each view, `(V, 48000)` float32, from a segment's `(samples,)` waveform."""
    need = max(v.audio_stop for v in views)
    if len(waveform) < need:
        raise ValueError(f"audio has {len(waveform)} samples, the views need {need}")
    return np.stack([waveform[v.audio_start : v.audio_stop] for v in views]).astype(np.float32)


def read_view_frames(path: Path, views: list[View]) -> dict[int, np.ndarray]:
    """The frames the views use, `{index: (H, W, 3) uint8 RGB}`, from a segment's mp4.

    Frames are decoded in order up to the last one needed (one thread: the worker processes
    are the parallelism), and only the needed ones are converted to RGB, the costly step.
    """
    wanted = {i for v in views for i in v.frame_indices}
    frames, seen = {}, 0
    with open_media(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        for seen, frame in enumerate(container.decode(stream), start=1):
            if seen - 1 in wanted:
                frames[seen - 1] = frame.to_ndarray(format="rgb24")
                if len(frames) == len(wanted):
                    break
    if len(frames) < len(wanted):
        raise ValueError(f"video has {seen} frames, the views need {max(wanted) + 1}")
    return frames


def view_clips(frames: dict[int, np.ndarray] | np.ndarray, views: list[View]) -> torch.Tensor:
    """The video of each view, `(V, T, 112, 112, 3)` uint8, from a segment's frames: a
    `(frames, H, W, 3)` uint8 array or `read_view_frames`' `{index: frame}`."""
    return torch.stack(
        [r2plus1d.crop_frames(np.stack([frames[i] for i in v.frame_indices]), v.box) for v in views]
    )


# --------------------------------------------------------------------------- encoders


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


# --------------------------------------------------------------------------- segment fingerprints


def _stat(path: Path) -> str:
    """`"size:mtime_ns"` of a file, or "" when it is missing."""
    try:
        st = path.stat()
    except OSError:
        return ""
    return f"{st.st_size}:{st.st_mtime_ns}"


def _content_sha256(paths: list[Path]) -> str:
    """sha256 over the sha256 of each file in `paths` ("" when one is missing)."""
    digest = hashlib.sha256()
    try:
        for path in paths:
            with open(path, "rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
    except OSError:
        return ""
    return digest.hexdigest()


def segment_index(
    data_dir: Path, manifest: pd.DataFrame, cached: pd.DataFrame | None = None, progress: bool = True
) -> pd.DataFrame:
    """What each manifest segment's files hold: `segment_id, stat, content`, in manifest order.

    `stat` is size:mtime of the mp4 and the wav; `content` the sha256 of their bytes, reused
    from `cached` (a previous index) where the stat is unchanged, else read and hashed.
    """
    paths = [
        (data_dir / v, data_dir / a)
        for v, a in zip(manifest["video_path"], manifest["audio_path"], strict=True)
    ]
    stats = ["|".join(_stat(p) for p in pair) for pair in paths]
    known = (
        {}
        if cached is None
        else dict(zip(zip(cached["segment_id"], cached["stat"], strict=True), cached["content"], strict=True))
    )
    contents = [known.get((sid, stat)) for sid, stat in zip(manifest["segment_id"], stats, strict=True)]
    todo = [i for i, c in enumerate(contents) if c is None]
    for i in tqdm(
        todo, desc="hashing segments", unit="seg", disable=not progress or len(todo) < 100, leave=False
    ):
        contents[i] = _content_sha256(list(paths[i]))
    return pd.DataFrame({"segment_id": manifest["segment_id"].to_numpy(), "stat": stats, "content": contents})


def fingerprint(index: pd.DataFrame) -> str:
    """sha256 of the ordered segment ids and contents: equal fingerprints, equal inputs."""
    digest = hashlib.sha256()
    for sid, content in zip(index["segment_id"], index["content"], strict=True):
        digest.update(f"{sid}\t{content}\n".encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------- the store on disk


def store_dir(data_dir: str | Path, modality_or_key: str) -> Path:
    """`DATA_DIR/features/<key>`, for a modality ("audio", "video") or an encoder key."""
    return Path(data_dir) / "features" / KEYS.get(modality_or_key, modality_or_key)


def feature_keys(data_dir: str | Path) -> dict[str, str]:
    """`{modality: key}` of the stores present in `data_dir` (e.g. {"audio": "musicnn", "video":
    "r2plus1d_18"})."""
    return {m: k for m, k in KEYS.items() if (store_dir(data_dir, k) / "meta.json").is_file()}


def read_meta(folder: Path) -> dict | None:
    """A store's meta.json, or None when there is no store."""
    path = folder / "meta.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _commit_meta(folder: Path, meta: dict) -> None:
    """Write meta.json atomically (the commit point), then delete data files it no longer names."""
    path = folder / "meta.json"
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
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
    with atomic_write(folder / name) as tmp:
        index.to_csv(tmp, index=False)
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


# --------------------------------------------------------------------------- the pipeline


class SegmentInputs(Dataset):
    """The decoded views of the segments to encode (runs in DataLoader workers).

    jobs: one row per segment with `row, segment_id, video_path, audio_path` (relative to
    `data_dir`) and booleans `audio`, `video` saying which inputs to build. Item i is a dict:
    `row`; `audio` `(V, 187, 96)` float32 log-mel patches or None; `video`
    `(V, T, 112, 112, 3)` uint8 clips or None; `errors`, {modality: one-line reason}.
    """

    def __init__(self, data_dir: Path, jobs: pd.DataFrame, spec: ViewSpec):
        self.data_dir, self.jobs, self.spec = Path(data_dir), jobs.reset_index(drop=True), spec

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: int) -> dict:
        job = self.jobs.iloc[i]
        item = {"row": int(job["row"]), "audio": None, "video": None, "errors": {}}
        views = segment_views(self.spec, job["segment_id"])
        for modality, read in (("audio", self._audio), ("video", self._video)):
            if job[modality]:
                try:
                    item[modality] = read(job, views)
                except Exception as error:  # one bad segment never stops the run
                    item["errors"][modality] = (
                        f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"
                    )
        return item

    def _audio(self, job: pd.Series, views: list[View]) -> torch.Tensor:
        """`(V, 187, 96)` log-mel patches of the segment's views."""
        waveform, rate = read_wav(self.data_dir / job["audio_path"])
        if rate != self.spec.sample_rate:
            raise ValueError(f"audio is {rate} Hz, not {self.spec.sample_rate}")
        return musicnn.musicnn_patches(view_windows(waveform, views))

    def _video(self, job: pd.Series, views: list[View]) -> torch.Tensor:
        """`(V, T, 112, 112, 3)` uint8 clips of the segment's views."""
        return view_clips(read_view_frames(self.data_dir / job["video_path"], views), views)


def _worker_init(_: int) -> None:
    """One thread per decoding worker (the cores belong to the encoders), gone with its parent."""
    torch.set_num_threads(1)
    exit_with_parent()


def _write_rows(features: np.ndarray, status: np.ndarray, rows: list[int], values: np.ndarray) -> list[int]:
    """Store `values (len(rows), V, dim)` as float16 and mark the rows done (features hit the
    file before the status); rows whose values are not finite in float16 are returned instead."""
    values = values.astype(STORE_DTYPE)
    finite = np.isfinite(values).all(axis=(1, 2))
    good = [r for r, ok in zip(rows, finite, strict=True) if ok]
    features[good] = values[finite]
    features.flush()
    status[good] = DONE
    status.flush()
    return [r for r, ok in zip(rows, finite, strict=True) if not ok]


def _mark_failed(features: np.ndarray, status: np.ndarray, rows: list[int]) -> None:
    """NaN features and FAILED status for rows that could not be encoded."""
    if rows:
        features[rows] = np.nan
        features.flush()
        status[rows] = FAILED
        status.flush()


def _run_pipeline(
    data_dir: Path,
    spec: ViewSpec,
    jobs: pd.DataFrame,
    encoders: dict[str, Encoder],
    arrays: dict[str, tuple[np.ndarray, np.ndarray]],
    batch_size: int,
    workers: int,
    progress: bool,
) -> tuple[dict[str, dict[str, str]], dict[str, float]]:
    """Decode `jobs` in `workers` processes while the encoders run; write rows as they come.

    A batch holds `batch_size` segments, but at most `MAX_CLIPS[device]` clips, which is also
    the most one encoder call sees: a training-sized batch (1000) can't exhaust memory.

    Returns `(failed, seconds)`: per modality {segment_id: reason}, and the encoder seconds per
    modality plus "wall".
    """
    device_type = next(iter(encoders.values())).device
    max_clips = MAX_CLIPS.get(device_type, MAX_CLIPS["cpu"])
    batch_size = max(1, min(batch_size, max_clips // spec.views))
    loader = DataLoader(
        SegmentInputs(data_dir, jobs, spec),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=list,
        worker_init_fn=_worker_init if workers else None,
        prefetch_factor=2 if workers else None,
        pin_memory=device_type == "cuda",
    )
    ids = dict(zip(jobs["row"], jobs["segment_id"], strict=True))
    wanted = {m: set(jobs.loc[jobs[m], "row"]) for m in encoders}
    failed = {m: {} for m in encoders}
    seconds = {m: 0.0 for m in encoders}
    start = time.perf_counter()
    with tqdm(total=len(jobs), unit="seg", desc="features", disable=not progress) as bar:
        for batch in loader:
            for modality, encoder in encoders.items():
                features, status = arrays[modality]
                mine = [item for item in batch if item["row"] in wanted[modality]]
                bad = [item for item in mine if modality in item["errors"]]
                good = [item for item in mine if modality not in item["errors"]]
                for item in bad:
                    failed[modality][ids[item["row"]]] = item["errors"][modality]
                _mark_failed(features, status, [item["row"] for item in bad])
                if not good:
                    continue
                inputs = torch.stack([torch.as_tensor(item[modality]) for item in good])
                t0 = time.perf_counter()
                values = torch.cat(
                    [encoder.encode(chunk).cpu() for chunk in inputs.flatten(0, 1).split(max_clips)]
                )
                values = values.view(len(good), spec.views, encoder.dim).numpy()
                seconds[modality] += time.perf_counter() - t0
                overflow = _write_rows(features, status, [item["row"] for item in good], values)
                for row in overflow:
                    failed[modality][ids[row]] = "features overflow float16"
                _mark_failed(features, status, overflow)
            bar.update(len(batch))
    seconds["wall"] = time.perf_counter() - start
    return failed, seconds


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
        per batch); device: None → cuda when
        present, else cpu; workers: decoding processes (0: decode in this process); seed: of
        the random views and of a random video init; rebuild: replace a store made with other
        settings instead of refusing; shard: "i/N" encodes only the videos of shard i of N
        (`mvnb.corpus.shard_of`) into `features/<key>/shards/i-of-N/`; a later run without
        `shard` takes the rows of every finished shard made with the same settings (merge).
    Returns a summary: `segments`, `wall_s`, and per modality `path, computed, reused,
    imported (from shards), failed ({segment_id: reason}), encoder_s, provenance, precision`.
    """
    data_dir = Path(data_dir)
    manifest = load_manifest(data_dir)
    shard = parse_shard(shard)
    if shard is not None:
        manifest = manifest[[shard_of(v, shard[1]) == shard[0] for v in manifest["video_id"]]].reset_index(
            drop=True
        )
    if manifest.empty:
        if shard is None:
            raise FeatureStoreStale(
                f"the manifest of {data_dir} has no segments; preprocess some videos first"
            )
        log.info("shard %d/%d of %s holds no videos", *shard, data_dir)
        return {"data_dir": str(data_dir), "segments": 0, "wall_s": 0.0}
    params = load_params(data_dir)
    spec = ViewSpec(
        int(views),
        int(frames),
        fps=params.fps,
        seconds=params.seconds,
        sample_rate=params.sample_rate,
        seed=int(seed),
    )
    device = torch.device(device) if device else default_device()
    unknown = set(modalities) - set(KEYS)
    if unknown:
        raise ValueError(f"unknown modalities {sorted(unknown)}; choose from {list(KEYS)}")
    encoders = {}
    if "audio" in modalities:
        encoders["audio"] = audio_encoder(spec, device, precision, audio_model)
    if "video" in modalities:
        encoders["video"] = video_encoder(spec, device, precision, video_weights, seed, strict_weights)
    folders = {m: shard_dir(store_dir(data_dir, m), shard) for m in encoders}
    with contextlib.ExitStack() as stack:
        for folder in folders.values():
            stack.enter_context(_locked(folder))
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
        metas = {m: _reconcile(folders[m], meta, index) for m, meta in metas.items()}
        arrays = {m: _open(folders[m], meta, "r+") for m, meta in metas.items()}
        reused = {m: int((arrays[m][1] == DONE).sum()) for m in encoders}
        imported = {
            m: _import_shards(folders[m], metas[m], index, *arrays[m]) if shard is None else []
            for m in encoders
        }
        todo = {m: arrays[m][1] != DONE for m in encoders}
        jobs = manifest[["segment_id", "video_path", "audio_path"]].assign(
            row=np.arange(len(manifest)), **{m: todo.get(m, np.zeros(len(manifest), bool)) for m in KEYS}
        )
        jobs = jobs[jobs["audio"] | jobs["video"]]
        failed, seconds = ({m: {} for m in encoders}, {m: 0.0 for m in encoders} | {"wall": 0.0})
        if len(jobs):
            log.info(
                "encoding %d of %d segments (%s)",
                len(jobs),
                len(manifest),
                ", ".join(f"{m}: {int(t.sum())}" for m, t in todo.items()),
            )
            failed, seconds = _run_pipeline(
                data_dir, spec, jobs, encoders, arrays, int(batch_size), int(workers), progress
            )
        summary = {"data_dir": str(data_dir), "segments": len(manifest), "wall_s": seconds["wall"]}
        retried = set(jobs["segment_id"])
        for m, meta in metas.items():
            status = arrays[m][1]
            computed = int(todo[m].sum())
            meta["failed"] = {
                **{sid: why for sid, why in meta["failed"].items() if sid not in retried},
                **failed[m],
            }
            meta["complete"] = bool((status == DONE).all())
            if computed:
                meta["timing"] = {
                    "segments": computed,
                    "clips": computed * spec.views,
                    "encoder_s": seconds[m],
                    "wall_s": seconds["wall"],
                    "device": str(device),
                    "threads": torch.get_num_threads(),
                    "workers": int(workers),
                    "batch_size": int(batch_size),
                    "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                }
            elif imported[m]:
                meta["timing"] = _summed_timing(imported[m])
            _commit_meta(folders[m], meta)
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


# --------------------------------------------------------------------------- reading


def load_features(data_dir: str | Path, modality_or_key: str) -> tuple[np.ndarray, dict]:
    """The features of one encoder, `(n_segments, V, dim)` float16 memory-mapped (read-only), in
    the order of `load_manifest(data_dir)`, and the store's meta.

    The meta is meta.json (encoder, layer, provenance, settings, view spec, …) plus `path`
    and `valid`, a `(n_segments,)` bool array, False for segments that failed (their rows
    are NaN; reasons in `meta["failed"]`). Raises FileNotFoundError when there is no such
    store, FeatureStoreStale when it does not cover the current manifest.
    """
    folder = store_dir(data_dir, modality_or_key)
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


# --------------------------------------------------------------------------- what notebook 02 shows


def provenance_table(data_dir: str | Path) -> pd.DataFrame:
    """One row per store: what produced its features (encoder, layer, weights, sha256, seed,
    precision, dtype, shape) and a plain-words `note` when the weights are random."""
    rows = []
    for modality, key in feature_keys(data_dir).items():
        meta = read_meta(store_dir(data_dir, key))
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
        meta = read_meta(store_dir(data_dir, key))
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


# --------------------------------------------------------------------------- CLI: python -m mvnb features


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m mvnb features`."""
    defaults = config.PROFILES["default"]
    parser.add_argument(
        "--data", type=Path, required=True, help="the segment store (DATA_DIR, holding manifest.csv)"
    )
    parser.add_argument(
        "--views",
        type=int,
        default=defaults["views"],
        help="views per segment (view 0: centred, centre crop)",
    )
    parser.add_argument(
        "--frames",
        type=int,
        default=defaults["frames"],
        help="video frames per view, evenly spaced over 3 s (30: all)",
    )
    parser.add_argument(
        "--video-weights",
        default=None,
        help="kinetics400 (strict: fail when unavailable), random, or a .pth path; "
        "default: kinetics400, falling back to seeded random with a warning",
    )
    parser.add_argument(
        "--audio-model", default="MSD_musicnn", choices=musicnn_weights.MODELS, help="musicnn weights"
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="auto: bf16 autocast on CPUs with native bf16, AMP on CUDA; "
        "fp32: full precision; fp16: CUDA only",
    )
    parser.add_argument("--device", default=None, help="cuda, cpu, cuda:1, … (default: cuda when present)")
    parser.add_argument("--batch-size", type=int, default=4, help="segments per batch (V clips each)")
    parser.add_argument(
        "--workers", type=int, default=1, help="decoding processes (0: decode in the main process)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the random views and of a random video init"
    )
    parser.add_argument("--only", choices=tuple(KEYS), help="extract one modality only")
    parser.add_argument(
        "--shard", help="i/N: encode only shard i of N of the videos; a final run without --shard merges"
    )
    parser.add_argument("--rebuild", action="store_true", help="replace a store made with other settings")


def run(args: argparse.Namespace) -> int:
    """Run `features` from parsed arguments; prints a summary. Exit code 2 on refusal."""
    try:
        summary = extract_features(
            args.data,
            views=args.views,
            frames=args.frames,
            video_weights=args.video_weights or "kinetics400",
            precision=args.precision,
            batch_size=args.batch_size,
            device=args.device,
            workers=args.workers,
            seed=args.seed,
            audio_model=args.audio_model,
            modalities=(args.only,) if args.only else tuple(KEYS),
            strict_weights=args.video_weights == "kinetics400",
            rebuild=args.rebuild,
            shard=args.shard,
        )
    except (
        FeatureStoreMismatch,
        FeatureStoreStale,
        r2plus1d.WeightsUnavailable,
        FileNotFoundError,
        ValueError,
        RuntimeError,
    ) as error:
        print(f"features: {error}")
        return 2
    for modality in KEYS:
        if modality in summary:
            part = summary[modality]
            print(
                f"features: {modality} ({part['provenance']['encoder']}, {part['provenance']['weights']}, "
                f"{part['precision']}): "
                f"{part['computed']} computed, {part['reused']} reused, {part['imported']} from shards, "
                f"{len(part['failed'])} failed -> {part['path']}"
            )
            for sid, reason in part["failed"].items():
                print(f"  skipped {sid}: {reason}")
    return 0
