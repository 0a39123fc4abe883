"""Preprocessing throughput: mvnb's seek-and-decode store against naive moviepy cuts, in one run.

Run: `.venv/bin/python benchmarks/bench_preprocess.py [--videos 2] [--min-seconds 180] [--max-seconds 240]
[--workers 2]`.

On the same synthetic videos (768×432, 15-30 fps, AAC; as long as real music videos by
default; rendered once into data/bench/) and the same segment starts, it times

- `mvnb preprocess`: `mvnb.segments.preprocess` into a fresh store, one process, then `--workers`;
- `moviepy subclip`: the whole file opened with moviepy, each segment cut with `subclipped`
  and written with `write_videofile` (10 fps, x264 ultrafast like mvnb) and `write_audiofile`
  (16 kHz mono);
- `moviepy whole decode`: every frame of the file read at 10 fps and the whole soundtrack at
  16 kHz, then the segments cut from those arrays and written (x264 ultrafast, PCM wav).

and prints segments per second (wall clock) and CPU seconds per segment (user + system, child
processes included: FFmpeg's for moviepy, the workers' for mvnb), and mvnb's speed-up over
each baseline in both. The baselines let FFmpeg use all cores; mvnb's single-process row uses
one encoder thread. CPU time is the fairer measure on a machine shared with other work.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd
import soundfile as sf

from mvnb.config import repo_path
from mvnb.corpus import list_videos
from mvnb.segments import X264_PRESET, PreprocessParams, preprocess
from mvnb.synth import SynthSpec, make_corpus


def bench_corpus(n_videos: int, min_seconds: float, max_seconds: float) -> Path:
    """A synthetic corpus of `n_videos` videos of `min_seconds`-`max_seconds`, rendered once and reused."""
    root = repo_path(f"data/bench/preprocess_{n_videos}x{min_seconds:g}-{max_seconds:g}s")
    make_corpus(
        root,
        SynthSpec(n_videos=n_videos, seed=7, min_seconds=min_seconds, max_seconds=max_seconds),
        workers=2,
    )
    return root


def video_starts(corpus: Path, manifest: pd.DataFrame) -> list[tuple[Path, str, list[float]]]:
    """`(file, video_id, segment starts)` per video, from mvnb's manifest (so every method cuts the same
    spans)."""
    jobs, _, _ = list_videos(corpus / "videos", corpus / "metadata.csv")
    starts = manifest.groupby("video_id")["start_s"].apply(list)
    return [(Path(j.path), j.video_id, starts[j.video_id]) for j in jobs]


def moviepy_subclip(videos, params: PreprocessParams, out: Path) -> int:
    """Cut each segment with moviepy's `subclipped` and write it; returns the number of segments."""
    from moviepy import VideoFileClip

    n = 0
    for path, video_id, starts in videos:
        with VideoFileClip(str(path)) as clip:
            for k, start in enumerate(starts):
                part = clip.subclipped(start, start + params.seconds).resized(new_size=params.size)
                part.write_videofile(
                    str(out / f"{video_id}_{k}.mp4"),
                    fps=params.fps,
                    codec="libx264",
                    audio=False,
                    preset=X264_PRESET,
                    logger=None,
                    ffmpeg_params=["-pix_fmt", "yuv420p"],
                )
                part.audio.write_audiofile(
                    str(out / f"{video_id}_{k}.wav"),
                    fps=params.sample_rate,
                    nbytes=2,
                    codec="pcm_s16le",
                    ffmpeg_params=["-ac", "1"],
                    logger=None,
                )
                n += 1
    return n


def moviepy_whole_decode(videos, params: PreprocessParams, out: Path) -> int:
    """Decode whole files with moviepy (frames at 10 fps, audio at 16 kHz), then cut and write."""
    from moviepy import ImageSequenceClip, VideoFileClip

    n = 0
    for path, video_id, starts in videos:
        with VideoFileClip(str(path), target_resolution=params.size[::-1]) as clip:
            frames = list(clip.iter_frames(fps=params.fps, dtype="uint8"))
            audio = clip.audio.to_soundarray(fps=params.sample_rate).mean(axis=1)
        for k, start in enumerate(starts):
            first = int(round(start * params.fps))
            segment = ImageSequenceClip(frames[first : first + params.n_frames], fps=params.fps)
            segment.write_videofile(
                str(out / f"{video_id}_{k}.mp4"),
                codec="libx264",
                audio=False,
                preset=X264_PRESET,
                logger=None,
                ffmpeg_params=["-pix_fmt", "yuv420p"],
            )
            a0 = int(round(start * params.sample_rate))
            sf.write(
                str(out / f"{video_id}_{k}.wav"),
                audio[a0 : a0 + params.n_samples],
                params.sample_rate,
                subtype="PCM_16",
            )
            n += 1
    return n


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children so far."""
    return sum(
        r.ru_utime + r.ru_stime
        for r in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def timed(fn, *args) -> tuple[int, float, float]:
    """`(segments, wall seconds, CPU seconds)` of one call into a fresh output folder."""
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = time.perf_counter(), cpu_seconds()
        n = fn(*args, Path(tmp))
        return n, time.perf_counter() - wall, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=2, help="videos in the benchmark corpus")
    parser.add_argument("--min-seconds", type=float, default=180.0, help="shortest video")
    parser.add_argument("--max-seconds", type=float, default=240.0, help="longest video")
    parser.add_argument("--workers", type=int, default=2, help="processes for mvnb's parallel row")
    args = parser.parse_args()
    params = PreprocessParams()
    corpus = bench_corpus(args.videos, args.min_seconds, args.max_seconds)
    manifests = []

    def ours(workers: int, out: Path) -> int:
        manifests.append(
            preprocess(corpus / "videos", corpus / "metadata.csv", out, workers=workers, progress=False)
        )
        return len(manifests[-1])

    rows = {
        "mvnb preprocess, 1 process": timed(ours, 1),
        f"mvnb preprocess, {args.workers} workers": timed(ours, args.workers),
    }
    videos = video_starts(corpus, manifests[0])
    rows["moviepy subclip"] = timed(moviepy_subclip, videos, params)
    rows["moviepy whole decode"] = timed(moviepy_whole_decode, videos, params)
    minutes = pd.read_csv(corpus / "metadata.csv")["duration_s"].sum() / 60
    print(
        f"preprocessing {len(videos)} videos ({minutes:.1f} min of 768x432 video) into {params.segments} x "
        f"{params.seconds:g} s segments of {params.size[0]}x{params.size[1]} at {params.fps} fps"
    )
    for name, (n, wall, cpu) in rows.items():
        print(
            f"  {name:<32} {n:>4} segments in {wall:6.1f} s = {n / wall:6.2f} segments/s; {cpu / n:5.2f} "
            f"CPU s per segment"
        )
    n, wall, cpu = rows["mvnb preprocess, 1 process"]
    for name in ("moviepy subclip", "moviepy whole decode"):
        other_n, other_wall, other_cpu = rows[name]
        print(
            f"  speed-up of mvnb (1 process) over {name}: {(n / wall) / (other_n / other_wall):.1f}x in "
            f"segments/s, "
            f"{(other_cpu / other_n) / (cpu / n):.1f}x in CPU time"
        )


if __name__ == "__main__":
    main()
