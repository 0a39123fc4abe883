"""View sampling: how each 5 s segment is cut into the V views of a 3 s window that the feature store
encodes.

- view 0 is for evaluation: the centred window and the Kinetics centre crop;
- views 1..V-1 are training augmentations: a random window offset and a random resized crop,
  drawn from `(seed, segment_id, view)` alone, so no result depends on batch order or shard.

A view's window starts on a video frame (multiples of 0.1 s at 10 fps), so its audio (48,000
samples, musicnn's 187-frame patch) and its T video frames (evenly spaced over the window's 30
frames) cover the same 3 s.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mvnb.corpus import hash64
from mvnb.encoders import musicnn, r2plus1d
from mvnb.media import open_media, to_rgb

WINDOW_S = musicnn.WINDOW_SAMPLES / musicnn.SAMPLE_RATE


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
            rng = np.random.default_rng([spec.seed, hash64(segment_id), v])
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
                frames[seen - 1] = to_rgb(frame)
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
