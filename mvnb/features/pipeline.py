"""The extraction pipeline: segments decoded into their views in DataLoader workers while the
encoders run, each batch's rows written to the store's memory maps as they come.

A batch holds `batch_size` segments, but at most `MAX_CLIPS[device]` clips, which is also the most
one encoder call sees: a training-sized batch (1000) can't exhaust memory. One bad segment never
stops the run: its row is marked failed, with a one-line reason.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from mvnb.encoders import musicnn
from mvnb.features.store import DONE, FAILED, STORE_DTYPE, Encoder
from mvnb.features.views import View, ViewSpec, read_view_frames, segment_views, view_clips, view_windows
from mvnb.media import read_wav
from mvnb.workers import exit_with_parent

MAX_CLIPS = {"cpu": 32, "cuda": 128}  # clips per batch and per encoder call, by device type


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


def _loader(
    data_dir: Path, spec: ViewSpec, jobs: pd.DataFrame, batch_size: int, workers: int, device_type: str
) -> DataLoader:
    """Batches of `batch_size` `SegmentInputs` items (a list each), decoded in `workers` processes."""
    return DataLoader(
        SegmentInputs(data_dir, jobs, spec),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=list,
        worker_init_fn=_worker_init if workers else None,
        prefetch_factor=2 if workers else None,
        pin_memory=device_type == "cuda",
    )


def _encode(encoder: Encoder, inputs: torch.Tensor, max_clips: int) -> np.ndarray:
    """The features `(batch, V, dim)` float32 of `inputs` `(batch, V, …)`, in encoder calls of at
    most `max_clips` clips."""
    values = torch.cat([encoder.encode(chunk).cpu() for chunk in inputs.flatten(0, 1).split(max_clips)])
    return values.view(*inputs.shape[:2], encoder.dim).numpy()


def _store_batch(
    encoder: Encoder,
    batch: list[dict],
    arrays: tuple[np.ndarray, np.ndarray],
    ids: dict[int, str],
    failed: dict[str, str],
    max_clips: int,
) -> float:
    """Encode and write one modality's part of a batch (the items of the rows it wants); items that
    failed to decode, and rows whose features overflow float16, are marked failed with their reason in
    `failed` ({segment_id: reason}). Returns the encoder seconds."""
    features, status = arrays
    bad = [item for item in batch if encoder.modality in item["errors"]]
    good = [item for item in batch if encoder.modality not in item["errors"]]
    for item in bad:
        failed[ids[item["row"]]] = item["errors"][encoder.modality]
    _mark_failed(features, status, [item["row"] for item in bad])
    if not good:
        return 0.0
    inputs = torch.stack([torch.as_tensor(item[encoder.modality]) for item in good])
    t0 = time.perf_counter()
    values = _encode(encoder, inputs, max_clips)
    seconds = time.perf_counter() - t0
    overflow = _write_rows(features, status, [item["row"] for item in good], values)
    for row in overflow:
        failed[ids[row]] = "features overflow float16"
    _mark_failed(features, status, overflow)
    return seconds


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

    jobs: as for `SegmentInputs`; arrays: per modality the store's `(features (n, V, dim), status
    (n,))` memory maps, written at each job's `row`. Returns `(failed, seconds)`: per modality
    {segment_id: reason}, and the encoder seconds per modality plus "wall".
    """
    device_type = next(iter(encoders.values())).device
    max_clips = MAX_CLIPS.get(device_type, MAX_CLIPS["cpu"])
    batch_size = max(1, min(batch_size, max_clips // spec.views))
    loader = _loader(data_dir, spec, jobs, batch_size, workers, device_type)
    ids = dict(zip(jobs["row"], jobs["segment_id"], strict=True))
    wanted = {m: set(jobs.loc[jobs[m], "row"]) for m in encoders}
    failed = {m: {} for m in encoders}
    seconds = {m: 0.0 for m in encoders}
    start = time.perf_counter()
    with tqdm(total=len(jobs), unit="seg", desc="features", disable=not progress) as bar:
        for batch in loader:
            for modality, encoder in encoders.items():
                mine = [item for item in batch if item["row"] in wanted[modality]]
                seconds[modality] += _store_batch(
                    encoder, mine, arrays[modality], ids, failed[modality], max_clips
                )
            bar.update(len(batch))
    seconds["wall"] = time.perf_counter() - start
    return failed, seconds
