"""A stand-in segment store for the feature-store tests (and `tests/test_workers.py`): tiny
segments (160×90) with time codes keep it fast."""

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from mvnb.media import write_mp4, write_wav
from mvnb.segments import PreprocessParams

FPS, SECONDS, RATE = 10, 5.0, 16000
N_FRAMES, N_SAMPLES = int(FPS * SECONDS), int(RATE * SECONDS)
SIZE = (160, 90)  # width, height
GRAY_STEP = 5  # frame j is uniformly gray at level GRAY_STEP * j
SAMPLES_PER_FRAME = RATE // FPS


def time_coded_frames() -> np.ndarray:
    """`(50, 90, 160, 3)` uint8: frame j is gray GRAY_STEP·j, so a decoded frame tells its index."""
    levels = (np.arange(N_FRAMES) * GRAY_STEP).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (N_FRAMES, SIZE[1], SIZE[0], 3)).copy()


def time_coded_audio(seed: int) -> np.ndarray:
    """`(80000,)`: a quiet seeded noise riding on a level that steps every 0.1 s (bin b at b/100),
    so the mean of any 0.1-s bin tells its index."""
    bins = np.repeat(np.arange(N_FRAMES) / 100.0, SAMPLES_PER_FRAME)
    return (bins + 0.002 * np.random.default_rng(seed).standard_normal(N_SAMPLES)).astype(np.float32)


def segment_frames(seed: int) -> np.ndarray:
    """`(50, 90, 160, 3)` uint8 moving seeded texture, a little different in every segment."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (SIZE[1] // 10 + 1, SIZE[0] // 10 + 1, 3)).astype(np.float32)
    big = np.kron(base, np.ones((10, 10, 1)))[: SIZE[1], : SIZE[0]]
    return np.stack([np.roll(big, 2 * j, axis=1) for j in range(N_FRAMES)]).astype(np.uint8)


def write_segment(store: Path, video_id: str, k: int, seed: int, time_coded: bool = False) -> tuple[str, str]:
    """Write one segment's mp4 and wav under `store` (kept if already there, as preprocessing
    does); returns their relative paths."""
    folder = store / "segments" / video_id
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / f"{k:02d}.wav").exists():
        return f"segments/{video_id}/{k:02d}.mp4", f"segments/{video_id}/{k:02d}.wav"
    frames = time_coded_frames() if time_coded else segment_frames(seed)
    write_mp4(folder / f"{k:02d}.mp4", frames, FPS, None, RATE)
    write_wav(
        folder / f"{k:02d}.wav",
        time_coded_audio(seed)
        if time_coded
        else 0.3 * np.sin(np.arange(N_SAMPLES) * 2 * np.pi * (200 + 50 * seed) / RATE),
        RATE,
    )
    return f"segments/{video_id}/{k:02d}.mp4", f"segments/{video_id}/{k:02d}.wav"


def write_store(store: Path, videos: dict[str, int], time_coded: bool = False) -> pd.DataFrame:
    """A stand-in segment store: manifest.csv, preprocess.json and `videos[id]` segments per video."""
    store.mkdir(parents=True, exist_ok=True)
    (store / "preprocess.json").write_text(json.dumps(PreprocessParams(segments=6, size=SIZE).as_json()))
    rows = []
    for i, (video_id, n) in enumerate(sorted(videos.items())):
        for k in range(n):
            paths = write_segment(
                store, video_id, k, seed=zlib.crc32(video_id.encode()) % 97 + k, time_coded=time_coded
            )
            rows.append(
                (
                    f"{video_id}_{k:02d}",
                    video_id,
                    k,
                    10.0 * k,
                    10.0 * k + SECONDS,
                    *paths,
                    "train",
                    f"g{i % 2}",
                )
            )
    manifest = pd.DataFrame(
        rows,
        columns=[
            "segment_id",
            "video_id",
            "k",
            "start_s",
            "end_s",
            "video_path",
            "audio_path",
            "split",
            "genre",
        ],
    )
    manifest.to_csv(store / "manifest.csv", index=False)
    return manifest


FAST = dict(views=2, frames=2, video_weights="random", batch_size=2, workers=0, progress=False)
