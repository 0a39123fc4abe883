"""Frame scaling and conversion: mvnb's one cached swscale context against PyAV's per-frame one.

Run: `.venv/bin/python benchmarks/bench_media.py [--frames 300] [--repeats 5]`.

PyAV's `frame.reformat` and `frame.to_ndarray(format=...)` build a new scaling context, with a
thread pool, for every frame; `mvnb.media.reformat` keeps one per process and runs it on one
thread. For each conversion the pipeline makes, on `--frames` random frames, it prints ms per
frame of both, the speed-up, and whether their bytes are equal:

- synth, sweep: the renderer's 48x26 RGB picture to a 192x108 yuv420p frame for x264;
- synth, main corpus: 192x108 RGB to 768x432 yuv420p;
- preprocess: a decoded 768x432 yuv420p frame to 192x108 (area averaging, `fit_frame`);
- features: a 192x108 yuv420p segment frame to RGB for the video encoder.

Both are timed interleaved, best of `repeats`, so that load from other processes hits them alike.
Every pass converts new frame objects, as the pipeline does: PyAV caches a context on each frame,
so converting the same frames again would time a cache the pipeline never hits.
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import av
import numpy as np

from mvnb.media import reformat

# name: (source (height, width), source format, target (width, height) or None, format, interpolation)
CASES = {
    "synth, sweep": ((26, 48), "rgb24", (192, 108), "yuv420p", "BILINEAR"),
    "synth, main corpus": ((108, 192), "rgb24", (768, 432), "yuv420p", "BILINEAR"),
    "preprocess": ((432, 768), "yuv420p", (192, 108), "yuv420p", "AREA"),
    "features": ((108, 192), "yuv420p", None, "rgb24", None),
}


def source_frames(shape: tuple[int, int], fmt: str, n: int) -> list[av.VideoFrame]:
    """`n` frames of random RGB pixels of `shape` (height, width), converted to `fmt`."""
    rng = np.random.default_rng(0)
    frames = [av.VideoFrame.from_ndarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)) for _ in range(n)]
    return [f if fmt == "rgb24" else f.reformat(format=fmt) for f in frames]


def timed(convert, frames: list[av.VideoFrame]) -> tuple[float, list[av.VideoFrame]]:
    """`(seconds, outputs)` of one pass of `convert` over `frames`."""
    start = time.perf_counter()
    out = [convert(f) for f in frames]
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'conversion':<20} {'PyAV ms/frame':>14} {'mvnb ms/frame':>14} {'speed-up':>9}  same bytes")
    for name, (shape, fmt, size, target, interpolation) in CASES.items():
        width, height = size or (None, None)
        wanted = dict(width=width, height=height, format=target, interpolation=interpolation)
        modes = {"pyav": partial(av.VideoFrame.reformat, **wanted), "mvnb": partial(reformat, **wanted)}
        best = {mode: np.inf for mode in modes}
        outputs = {}
        for _ in range(args.repeats):
            for mode, convert in modes.items():
                seconds, outputs[mode] = timed(convert, source_frames(shape, fmt, args.frames))
                best[mode] = min(best[mode], seconds)
        same = all(
            [bytes(p) for p in a.planes] == [bytes(p) for p in b.planes]
            for a, b in zip(outputs["pyav"], outputs["mvnb"], strict=True)
        )
        pyav, ours = (1e3 * best[m] / args.frames for m in ("pyav", "mvnb"))
        print(f"{name:<20} {pyav:>14.3f} {ours:>14.3f} {pyav / ours:>8.1f}x  {same}")


if __name__ == "__main__":
    main()
