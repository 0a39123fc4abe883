"""The segment store: six 5-second segments per music video, as the paper stores them.

Each video's duration is divided into `segments` equal sections and one `seconds`-long
segment is drawn at random inside each (`sample_segment_starts`); a video too short for
all of them keeps as many non-overlapping segments as fit. Per segment the store holds

- `segments/<video>/<k>.mp4`: H.264, `size` (768×432), exactly `fps` (10) frames per
  second, `seconds * fps` (50) frames, no audio;
- `segments/<video>/<k>.wav`: the same `seconds` as 16 kHz mono 16-bit PCM (80,000 samples).

Only what a segment needs is decoded: `mvnb.media.SegmentReader` seeks to the keyframe before
it. Frames of another aspect ratio are scaled to cover `size` and centre-cropped (see
`mvnb.media.fit_frame`); rotated phone videos are turned upright first.

The store (`DATA_DIR`) also holds

- `manifest.csv`: one row per segment, sorted by video_id then k: `segment_id, video_id, k,
  start_s, end_s, video_path, audio_path, split` and the label columns of the metadata;
  paths are relative to DATA_DIR;
- `videos.csv`: one row per stored video with its probed duration and number of segments;
- `skipped.csv`: `video_id, path, reason` for every video, or extra metadata row, left out;
- `preprocess.json`: the parameters; a run with other parameters is refused, not mixed;
- `videos/<video>.json`: one record per video, "running" while it is cut and final once all its
  segments are written, which is what makes reruns resumable (a kill -9 anywhere loses at most
  the unfinished files) and lets a crashing decoder be traced to its file.

Each video's fold, split and shard hash its id (`mvnb.corpus`); the manifest's `split` column is
rotation 0 (80/10/10) and its `fold` column lets any rotation be read off it (`corpus.manifest_split`).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .corpus import (
    COMPUTED_COLUMNS,
    SKIPPED_COLUMNS,
    VideoJob,
    add_source_arguments,
    fold_of,
    hash64,
    list_videos,
    parse_shard,
    parse_size,
    segment_id,
    shard_of,
    split_of,
    video_key,
)
from .io import read_json, write_csv, write_json
from .media import MediaError, SegmentReader, read_video_frames, read_wav, write_mp4, write_wav
from .workers import exit_with_parent

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ["segment_id", "video_id", *COMPUTED_COLUMNS[1:]]
FORMAT_VERSION = 1  # bump when the bytes written for the same parameters change
X264_PRESET = "ultrafast"  # 3.5x faster than veryfast for about 3x the bytes (~300 kB per segment)


@dataclass(frozen=True)
class PreprocessParams:
    """Everything that decides the bytes of a store; saved as DATA_DIR/preprocess.json."""

    segments: int = 6
    seconds: float = 5.0
    fps: int = 10
    size: tuple[int, int] = (768, 432)
    sample_rate: int = 16000
    seed: int = 0
    format_version: int = FORMAT_VERSION

    @property
    def n_frames(self) -> int:
        """Frames per segment."""
        return int(round(self.seconds * self.fps))

    @property
    def n_samples(self) -> int:
        """Audio samples per segment."""
        return int(round(self.seconds * self.sample_rate))

    def as_json(self) -> dict:
        """The parameters as JSON-ready values (size as [width, height])."""
        return {**asdict(self), "size": list(self.size)}


# ---------------------------------------------------------------------------------------------
# Where the segments of a video lie.
# ---------------------------------------------------------------------------------------------


def sample_segment_starts(
    duration_s: float, n_segments: int, seconds: float, seed: int, video_id: str
) -> list[float]:
    """Start times (s) of the segments of one video, in order; pure in its arguments.

    The video keeps `n = min(n_segments, floor(duration_s / seconds))` segments. Its duration is
    divided into n equal sections of length L >= seconds, and segment k starts uniformly at
    random in [k L, (k + 1) L - seconds], so it lies inside its section, inside the file, and
    no two overlap. The draw depends only on (seed, video_id), not on processing order.
    """
    n = min(n_segments, int(math.floor(duration_s / seconds + 1e-9)))
    if n <= 0:
        return []
    section = duration_s / n
    u = np.random.default_rng([seed, hash64(video_id)]).random(n)
    slack = max(0.0, section - seconds)
    return [max(0.0, min(k * section + float(u[k]) * slack, duration_s - seconds)) for k in range(n)]


# ---------------------------------------------------------------------------------------------
# One video: cut its segments (runs in a worker process).
# ---------------------------------------------------------------------------------------------


def _segment_files(out_dir: Path, video_id: str, k: int) -> tuple[Path, Path]:
    """`(mp4, wav)` paths of segment k of a video."""
    folder = out_dir / "segments" / video_key(video_id)
    return folder / f"{k:02d}.mp4", folder / f"{k:02d}.wav"


def _record_file(out_dir: Path, video_id: str) -> Path:
    """The per-video record: written last, it marks the video as done."""
    return out_dir / "videos" / f"{video_key(video_id)}.json"


def _remove_stale_temporaries(folder: Path, stem: str | None = None) -> None:
    """Delete temporary files a killed run left in `folder` (named by `atomic_path`): all of
    them, or only those for files named `stem` + suffix."""
    if folder.is_dir():
        for tmp in folder.glob(".*.tmp*"):
            match = re.fullmatch(r"\.(.+)\.\d+\.tmp(\.[^.]*)?", tmp.name)
            if match and (stem is None or match[1] == stem):
                tmp.unlink(missing_ok=True)


def process_video(job: VideoJob, params: PreprocessParams, out_dir: Path, threads: int = 1) -> dict:
    """Cut and store the segments of one video; never raises.

    Returns its record: `{video_id, source_bytes, status: "ok", duration_s, starts}` or
    `{video_id, source_bytes, status: "skipped", reason, final}` (`final`: the file itself is
    unusable, so a rerun need not try again). A "running" record stands in until then.
    Segments already on disk are kept, so a killed run resumes where it stopped.
    """
    out_dir = Path(out_dir)
    source_bytes = Path(job.path).stat().st_size if Path(job.path).is_file() else -1
    record = {"video_id": job.video_id, "source_bytes": source_bytes}
    folder = out_dir / "segments" / video_key(job.video_id)
    _remove_stale_temporaries(folder)
    _remove_stale_temporaries(out_dir / "videos", video_key(job.video_id))
    write_json(_record_file(out_dir, job.video_id), {**record, "status": "running"})  # replaced when done
    try:
        with SegmentReader(Path(job.path), threads=threads) as reader:
            duration = reader.info.duration_s
            starts = sample_segment_starts(
                duration, params.segments, params.seconds, params.seed, job.video_id
            )
            if not starts:
                raise MediaError(f"too short: {duration:.1f} s, one segment needs {params.seconds:g} s")
            folder.mkdir(parents=True, exist_ok=True)
            for k, start in enumerate(starts):
                mp4, wav = _segment_files(out_dir, job.video_id, k)
                if mp4.exists() and wav.exists():
                    continue
                frames = reader.video_frames(start, params.n_frames, params.fps, params.size)
                waveform = reader.waveform(start, params.n_samples, params.sample_rate)
                write_mp4(mp4, frames, params.fps, None, params.sample_rate, preset=X264_PRESET)
                write_wav(wav, waveform, params.sample_rate)
        record.update(status="ok", duration_s=duration, starts=starts)
    except MediaError as error:
        record.update(status="skipped", reason=str(error), final=True)
    except Exception as error:  # one bad file never stops the batch
        first_line = (str(error).splitlines() or [""])[0]
        record.update(
            status="skipped", reason=f"could not process ({type(error).__name__}: {first_line})", final=False
        )
    write_json(_record_file(out_dir, job.video_id), record)
    return record


def read_record(out_dir: Path, job: VideoJob) -> dict | None:
    """The finished record of a video, or None when it must be (re)processed: no record yet, the
    source file changed size, one of its segment files is gone, or it failed for a reason other
    than the file itself."""
    record = read_json(_record_file(Path(out_dir), job.video_id))
    if (
        record is None
        or record.get("video_id") != job.video_id
        or record.get("source_bytes") != Path(job.path).stat().st_size
    ):
        return None
    if record["status"] != "ok" and not record.get("final"):  # running when killed, or a passing failure
        return None
    if record["status"] == "ok" and not all(
        f.exists() for k in range(len(record["starts"])) for f in _segment_files(out_dir, job.video_id, k)
    ):
        return None
    return record


# ---------------------------------------------------------------------------------------------
# The whole store.
# ---------------------------------------------------------------------------------------------


class StoreParamsError(ValueError):
    """The store was made with other parameters; mixing old and new segments is refused."""


def check_params(out_dir: Path, params: PreprocessParams, rebuild: bool = False) -> None:
    """Make sure `out_dir` holds (or will hold) segments made with `params` only.

    A store made with other parameters raises StoreParamsError naming the differences, unless
    `rebuild`, which deletes its segments, records and tables first.
    """
    out_dir = Path(out_dir)
    saved_file = out_dir / "preprocess.json"
    if saved_file.exists():
        saved = json.loads(saved_file.read_text())
        wanted = params.as_json()
        changed = {k: (saved.get(k), v) for k, v in wanted.items() if saved.get(k) != v}
        if changed and not rebuild:
            what = ", ".join(f"{k}={old} (now {new})" for k, (old, new) in changed.items())
            raise StoreParamsError(
                f"{out_dir} was preprocessed with {what}; use another --out, or --rebuild to delete its "
                f"segments and start again"
            )
        if changed:
            _delete_store(out_dir)
    write_json(saved_file, params.as_json())


def _delete_store(out_dir: Path) -> None:
    """Remove what preprocess wrote into `out_dir` (segments, records, tables), nothing else."""
    for folder in ("segments", "videos", "shards"):
        shutil.rmtree(out_dir / folder, ignore_errors=True)
    for name in ("manifest.csv", "videos.csv", "skipped.csv", "preprocess.json"):
        (out_dir / name).unlink(missing_ok=True)


def _pool_round(
    jobs: list[VideoJob], params: PreprocessParams, out_dir: Path, workers: int, done
) -> list[VideoJob]:
    """Process `jobs` in a pool of `workers` processes, calling `done(record)` for each; returns
    the jobs lost because a worker process died (e.g. FFmpeg crashed on a file)."""
    lost = []
    with ProcessPoolExecutor(max_workers=workers, initializer=exit_with_parent) as pool:
        futures = {
            pool.submit(process_video, job, params, out_dir, 0 if workers == 1 else 1): job for job in jobs
        }
        for future in as_completed(futures):
            try:
                done(future.result())
            except BrokenProcessPool:
                lost.append(futures[future])
    return lost


def _run_jobs(
    jobs: list[VideoJob], params: PreprocessParams, out_dir: Path, workers: int, progress: bool
) -> list[dict]:
    """Process videos in `workers` processes, with a progress bar; records in job order.

    A worker that dies takes the pool with it. The videos it was working on still have a
    "running" record: each is retried alone and, if it kills its process again, skipped with
    a reason; the other unfinished videos go on in a fresh pool.
    """
    bar = tqdm(total=len(jobs), desc="preprocess", unit="video", disable=not progress or not jobs)
    records: dict[str, dict] = {}

    def done(record: dict) -> None:
        records[record["video_id"]] = record
        if record["status"] != "ok":
            log.warning("skipped %s: %s", record["video_id"], record["reason"])
        bar.update(1)

    pending = list(jobs)
    while pending:
        lost = _pool_round(pending, params, out_dir, max(1, workers), done)
        running = [
            j for j in lost if (read_json(_record_file(out_dir, j.video_id)) or {}).get("status") == "running"
        ]
        suspects = running or lost  # without a culprit in sight, retry every lost video alone
        for job in suspects:
            if _pool_round([job], params, out_dir, 1, done):
                record = {
                    "video_id": job.video_id,
                    "source_bytes": Path(job.path).stat().st_size,
                    "status": "skipped",
                    "reason": "the decoder crashed on this file (FFmpeg died); "
                    "it is probably damaged: re-encode or remove it",
                    "final": True,
                }
                write_json(_record_file(out_dir, job.video_id), record)
                done(record)
        pending = [j for j in lost if j not in suspects]
    bar.close()
    return [records[job.video_id] for job in jobs]


def build_tables(
    out_dir: Path,
    params: PreprocessParams,
    jobs: list[VideoJob],
    records: list[dict],
    listing_skips: pd.DataFrame,
    labels: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """`(manifest, videos, skipped)` from the per-video records, in video_id order (then k)."""
    rows, videos, skipped = [], [], [listing_skips]
    for job, record in zip(jobs, records, strict=True):
        if record["status"] != "ok":
            skipped.append(
                pd.DataFrame([(job.video_id, job.path, record["reason"])], columns=SKIPPED_COLUMNS)
            )
            continue
        split, fold = split_of(job.video_id), fold_of(job.video_id)
        starts = record["starts"]
        videos.append((job.video_id, record["duration_s"], len(starts), split))
        for k, start in enumerate(starts):
            mp4, wav = _segment_files(out_dir, job.video_id, k)
            rows.append(
                (
                    segment_id(job.video_id, k),
                    job.video_id,
                    k,
                    start,
                    start + params.seconds,
                    mp4.relative_to(out_dir).as_posix(),
                    wav.relative_to(out_dir).as_posix(),
                    split,
                    fold,
                )
            )
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    video_table = pd.DataFrame(videos, columns=["video_id", "media_duration_s", "n_segments", "split"])
    if len(labels.columns):
        manifest = manifest.join(labels, on="video_id")
        video_table = video_table.join(labels, on="video_id")
    skipped_table = pd.concat(skipped, ignore_index=True).sort_values(["video_id", "path"], kind="stable")
    return manifest, video_table, skipped_table.reset_index(drop=True)


def table_path(out_dir: str | Path, name: str, shard: str | tuple[int, int] | None = None) -> Path:
    """Where table `name` ("manifest", "videos", "skipped") of a store, or of one shard of it, is."""
    shard = parse_shard(shard)
    if shard is None:
        return Path(out_dir) / f"{name}.csv"
    return Path(out_dir) / "shards" / f"{name}-{shard[0]}-of-{shard[1]}.csv"


def _shard_part(
    jobs: list[VideoJob], listing_skips: pd.DataFrame, shard: tuple[int, int]
) -> tuple[list[VideoJob], pd.DataFrame]:
    """The jobs and the listing's skipped rows of shard `(i, N)`: those with `shard_of(id, N) == i`."""
    mine = np.array([shard_of(v, shard[1]) == shard[0] for v in listing_skips["video_id"]], dtype=bool)
    return [j for j in jobs if shard_of(j.video_id, shard[1]) == shard[0]], listing_skips.loc[mine]


def preprocess(
    videos_dir: str | Path | None,
    metadata_csv: str | Path | None,
    out_dir: str | Path,
    *,
    segments: int = 6,
    seconds: float = 5.0,
    fps: int = 10,
    size: tuple[int, int] | str = (768, 432),
    seed: int = 0,
    workers: int = 1,
    sample_rate: int = 16000,
    shard: str | tuple[int, int] | None = None,
    rebuild: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Build (or complete) the segment store in `out_dir` and return its manifest.

    `videos_dir` and/or `metadata_csv` say which videos (see `list_videos`). Videos whose
    record is already there are not touched, so a rerun after a kill, or after adding videos,
    does only the missing work. With `shard` ("i/N"), only the videos with `shard_of(id, N) == i`
    are processed and the tables go to `out_dir/shards/*-i-of-N.csv`; a later run without
    `shard` finds them done and writes the merged tables, identical to an unsharded run.
    Bad files are skipped with a reason (skipped.csv and the log). Returns the manifest
    (for a shard, that shard's rows).
    """
    if videos_dir is None and metadata_csv is None:
        raise ValueError("give a videos folder, a metadata CSV, or both")
    out_dir = Path(out_dir)
    params = PreprocessParams(
        segments=int(segments),
        seconds=float(seconds),
        fps=int(fps),
        size=parse_size(size),
        sample_rate=int(sample_rate),
        seed=int(seed),
    )
    shard = parse_shard(shard)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_params(out_dir, params, rebuild=rebuild)
    jobs, listing_skips, labels = list_videos(
        Path(videos_dir) if videos_dir else None, Path(metadata_csv) if metadata_csv else None
    )
    if shard is not None:
        jobs, listing_skips = _shard_part(jobs, listing_skips, shard)
    records = {j.video_id: read_record(out_dir, j) for j in jobs}
    todo = [j for j in jobs if records[j.video_id] is None]
    if todo:
        log.info("preprocessing %d of %d videos into %s", len(todo), len(jobs), out_dir)
    for record in _run_jobs(todo, params, out_dir, workers, progress):
        records[record["video_id"]] = record
    manifest, video_table, skipped = build_tables(
        out_dir, params, jobs, [records[j.video_id] for j in jobs], listing_skips, labels
    )
    for name, table in (("manifest", manifest), ("videos", video_table), ("skipped", skipped)):
        write_csv(table_path(out_dir, name, shard), table)
    if shard is None:
        for name in ("manifest", "videos", "skipped", "preprocess"):
            _remove_stale_temporaries(out_dir, name)
    return manifest


# ---------------------------------------------------------------------------------------------
# Reading the store.
# ---------------------------------------------------------------------------------------------


def load_manifest(data_dir: str | Path, absolute_paths: bool = False) -> pd.DataFrame:
    """The manifest of a store, in its stored order (video_id, then k).

    With `absolute_paths`, `video_path` and `audio_path` are absolute; otherwise relative to
    `data_dir`. Raises FileNotFoundError with a hint when the store has no manifest yet.
    """
    data_dir = Path(data_dir)
    path = data_dir / "manifest.csv"
    if not path.exists():
        raise FileNotFoundError(
            f"no manifest at {path}; run `python -m mvnb preprocess --out {data_dir} ...` first"
        )
    manifest = pd.read_csv(
        path,
        dtype={"segment_id": str, "video_id": str, "video_path": str, "audio_path": str, "split": str},
        keep_default_na=False,
        na_values=[""],
    )
    if absolute_paths:
        root = data_dir.resolve()
        for column in ("video_path", "audio_path"):
            manifest[column] = [str(root / p) for p in manifest[column]]
    return manifest


def load_videos(data_dir: str | Path) -> pd.DataFrame:
    """One row per stored video: `video_id, media_duration_s, n_segments, split` and its labels."""
    return pd.read_csv(
        Path(data_dir) / "videos.csv", dtype={"video_id": str}, keep_default_na=False, na_values=[""]
    )


def load_skipped(data_dir: str | Path) -> pd.DataFrame:
    """The videos left out of a store: `video_id, path, reason`."""
    return pd.read_csv(Path(data_dir) / "skipped.csv", dtype=str, keep_default_na=False)


def load_params(data_dir: str | Path) -> PreprocessParams:
    """The parameters a store was made with."""
    saved = json.loads((Path(data_dir) / "preprocess.json").read_text())
    return PreprocessParams(**{**saved, "size": tuple(saved["size"])})


def read_segment(data_dir: str | Path, row) -> tuple[np.ndarray, np.ndarray]:
    """`(frames (T, H, W, 3) uint8 RGB, waveform (samples,) float32)` of one manifest row."""
    data_dir = Path(data_dir)
    frames = read_video_frames(data_dir / row["video_path"])
    waveform, _ = read_wav(data_dir / row["audio_path"])
    return frames, waveform


# ---------------------------------------------------------------------------------------------
# CLI: python -m mvnb preprocess
# ---------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m mvnb preprocess`."""
    defaults = PreprocessParams()
    add_source_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="the store folder (DATA_DIR)")
    parser.add_argument(
        "--segments", type=int, default=defaults.segments, help="segments per video (one per equal section)"
    )
    parser.add_argument("--seconds", type=float, default=defaults.seconds, help="length of a segment")
    parser.add_argument("--fps", type=int, default=defaults.fps, help="frame rate of the stored segments")
    parser.add_argument(
        "--size", default="x".join(map(str, defaults.size)), help="WIDTHxHEIGHT of the stored frames"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the segment positions")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (one video each)")
    parser.add_argument("--shard", help="i/N: process only shard i of N; a final run without --shard merges")
    parser.add_argument(
        "--rebuild", action="store_true", help="delete a store made with other parameters and start again"
    )


def run(args: argparse.Namespace) -> int:
    """Run `preprocess` from parsed arguments; prints a one-line summary. Exit code 2 on refusal."""
    if args.videos is None and args.metadata is None:
        print("preprocess: give --videos, --metadata, or both")
        return 2
    try:
        manifest = preprocess(
            args.videos,
            args.metadata,
            args.out,
            segments=args.segments,
            seconds=args.seconds,
            fps=args.fps,
            size=args.size,
            seed=args.seed,
            workers=args.workers,
            shard=args.shard,
            rebuild=args.rebuild,
        )
    except (StoreParamsError, ValueError, FileNotFoundError) as error:
        print(f"preprocess: {error}")
        return 2
    skipped = table_path(args.out, "skipped", args.shard)
    print(
        f"preprocess: {manifest['video_id'].nunique()} videos, {len(manifest)} segments in {args.out}; "
        f"{len(pd.read_csv(skipped))} skipped (see {skipped})"
    )
    return 0
