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

The split hashes the video id, so it belongs to the corpus: it is the same in every run, and
adding videos never moves another one. Each video's *fold* is `floor(10 u)`, u the hash of its
id in [0, 1); a *rotation* r tests fold (9 − r) mod 10, validates on (8 − r) mod 10 and trains
on the other eight (`rotation_split`); a report that runs several rotations tests each video in at
most one of them (`rotation_tested`). The manifest's `split` column is rotation 0: 80/10/10,
test u ≥ 0.9, validation 0.8 ≤ u < 0.9. A throwaway corpus may give each split several folds
(`folds_per_split`, e.g. 2 for 60/20/20).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import re
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .media import MediaError, SegmentReader, atomic_write, read_video_frames, read_wav, write_mp4, write_wav
from .workers import exit_with_parent

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = [
    "segment_id",
    "video_id",
    "k",
    "start_s",
    "end_s",
    "video_path",
    "audio_path",
    "split",
    "fold",
]
SKIPPED_COLUMNS = ["video_id", "path", "reason"]
FOLDS = 10
VIDEO_EXTENSIONS = {
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".mpg",
    ".mpeg",
    ".ts",
    ".flv",
    ".wmv",
    ".3gp",
    ".ogv",
}
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


@dataclass(frozen=True)
class VideoJob:
    """One video to preprocess: its id and the absolute path of its file."""

    video_id: str
    path: str


# ---------------------------------------------------------------------------------------------
# Pure functions: sampling, split, names.
# ---------------------------------------------------------------------------------------------


def _hash_unit(text: str) -> float:
    """A number in [0, 1) fixed by `text` (first 64 bits of its SHA-256)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2**64


def fold_of(video_id: str) -> int:
    """The fold in `range(FOLDS)` of a video: `floor(FOLDS * u)`, u the hash of its id (a corpus property)."""
    return min(FOLDS - 1, int(FOLDS * _hash_unit(video_id)))


def rotation_split(folds, rotation: int = 0, folds_per_split: int = 1) -> np.ndarray:
    """'train', 'val' or 'test' for each fold in `folds` `(n,)` under `rotation`.

    With k = `folds_per_split`, rotation r tests the k folds (FOLDS − k(r + 1) + i) mod FOLDS,
    i < k, validates on the k folds below them, and trains on the rest. k = 1, r = 0 is the
    80/10/10 split (test fold 9, validation fold 8).
    """
    k = int(folds_per_split)
    if not 1 <= k <= FOLDS // 3:
        raise ValueError(f"folds_per_split must be 1..{FOLDS // 3}, not {folds_per_split}")
    offset = (np.asarray(folds, dtype=int) - (FOLDS - k * (rotation + 1))) % FOLDS  # 0..k-1: test, then val
    return np.where(offset < k, "test", np.where(offset >= FOLDS - k, "val", "train"))


def rotation_tested(folds, rotations, folds_per_split: int = 1) -> np.ndarray:
    """`(n,)` int: the rotation among `rotations` whose test split holds each fold in `folds` `(n,)`, −1
    where none does.

    This is what pools rotations: a video is tested in one rotation, and its test predictions,
    ranks and neighbours come from that rotation's runs. Raises ValueError when two of
    `rotations` test the same fold (a rotation given twice, or r and r + FOLDS / k), which
    would count a video twice.
    """
    folds = np.asarray(folds, dtype=int)
    tested = np.full(len(folds), -1, dtype=int)
    everything = np.arange(FOLDS)
    owner = np.full(FOLDS, -1, dtype=int)
    for rotation in rotations:
        mine = everything[rotation_split(everything, rotation, folds_per_split) == "test"]
        if (owner[mine] >= 0).any():
            raise ValueError(
                f"rotations {owner[mine][owner[mine] >= 0][0]} and {rotation} test the same fold; "
                f"give each rotation once, fewer than {FOLDS // int(folds_per_split)} of them"
            )
        owner[mine] = rotation
        tested[np.isin(folds, mine)] = rotation
    return tested


def manifest_split(manifest: pd.DataFrame, rotation: int = 0) -> np.ndarray:
    """`(n_segments,)` 'train', 'val' or 'test' of each manifest row under `rotation`, from its `fold` column.

    Raises ValueError, asking for the store to be rebuilt, when the manifest predates folds.
    """
    if "fold" not in manifest:
        raise ValueError(
            "the manifest has no fold column (it predates rotations); rerun preprocessing (notebook 01)"
        )
    return rotation_split(manifest["fold"].to_numpy(), rotation)


def split_of(video_id: str, rotation: int = 0, folds_per_split: int = 1) -> str:
    """'train', 'val' or 'test' for a video under `rotation` (see `rotation_split`); rotation 0 is
    80/10/10."""
    return str(rotation_split([fold_of(video_id)], rotation, folds_per_split)[0])


def split_counts(video_ids, rotation: int = 0, folds_per_split: int = 1) -> dict[str, int]:
    """How many of the distinct `video_ids` fall in each split: `{"train": n, "val": n, "test": n}`.

    The one place that counts a corpus's split; a video's split comes from `split_of`.
    """
    counts = {"train": 0, "val": 0, "test": 0}
    for video_id in dict.fromkeys(video_ids):
        counts[split_of(video_id, rotation, folds_per_split)] += 1
    return counts


def shard_of(video_id: str, n_shards: int) -> int:
    """The shard in `range(n_shards)` that preprocesses a video (hash of its id, independent of the split)."""
    return int(_hash_unit(f"shard:{video_id}") * n_shards)


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
    key = int.from_bytes(hashlib.sha256(video_id.encode("utf-8")).digest()[:8], "big")
    u = np.random.default_rng([seed, key]).random(n)
    slack = max(0.0, section - seconds)
    return [max(0.0, min(k * section + float(u[k]) * slack, duration_s - seconds)) for k in range(n)]


def segment_id(video_id: str, k: int) -> str:
    """The id of segment k of a video: `<video_id>_<k:02d>` (unique: k is always the last field)."""
    return f"{video_id}_{k:02d}"


def video_key(video_id: str) -> str:
    """A file-system-safe, case-insensitively unique name for a video's folder and record.

    Ids of lowercase letters, digits, '.', '_' and '-' are kept as they are; any other id is
    reduced to those characters and suffixed with a hash of the original.
    """
    if re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,99}", video_id):
        return video_id
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", video_id).strip("._-")[:60]
    return f"{readable}-{hashlib.sha256(video_id.encode('utf-8')).hexdigest()[:10]}"


def parse_size(size: str | tuple[int, int]) -> tuple[int, int]:
    """`(width, height)` from "768x432" (or a pair, passed through)."""
    if isinstance(size, str):
        match = re.fullmatch(r"\s*(\d+)\s*[x×]\s*(\d+)\s*", size)
        if not match:
            raise ValueError(f"size must look like 768x432, not {size!r}")
        size = (int(match[1]), int(match[2]))
    width, height = (int(v) for v in size)
    if width % 2 or height % 2 or width <= 0 or height <= 0:
        raise ValueError(f"size {width}x{height} must be positive and even (H.264 yuv420p)")
    return width, height


SHARD_ENV = (
    ("RANK", "WORLD_SIZE"),
    ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"),
)  # torchrun, SLURM arrays


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """`(i, n)` from "i/N" with 0 <= i < N (or None for the whole corpus).

    "auto" takes i and N from the launcher: torchrun's RANK/WORLD_SIZE, or a SLURM array's
    SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT (an array numbered from 0).
    """
    if shard == "auto":
        found = next(
            ((os.environ[i], os.environ[n]) for i, n in SHARD_ENV if i in os.environ and n in os.environ),
            None,
        )
        if found is None:
            raise ValueError(
                "--shard auto needs torchrun (RANK, WORLD_SIZE) or a SLURM array (SLURM_ARRAY_TASK_ID, "
                "SLURM_ARRAY_TASK_COUNT); give --shard i/N otherwise"
            )
        shard = "/".join(found)
    if shard is None or isinstance(shard, tuple):
        pair = shard
    else:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", shard)
        if not match:
            raise ValueError(f"shard must look like i/N (e.g. 0/4), not {shard!r}")
        pair = (int(match[1]), int(match[2]))
    if pair is not None and not 0 <= pair[0] < pair[1]:
        raise ValueError(f"shard {pair[0]}/{pair[1]} is out of range: i must be in 0..N-1")
    return pair


# ---------------------------------------------------------------------------------------------
# Which videos: the metadata CSV and the folder.
# ---------------------------------------------------------------------------------------------


def _resolve(path_text: str, csv_dir: Path | None, videos_dir: Path | None) -> Path | None:
    """The file a metadata path names: absolute, relative to the CSV's folder, or to --videos."""
    path = Path(path_text).expanduser()
    candidates = [path] if path.is_absolute() else [d / path for d in (csv_dir, videos_dir) if d is not None]
    return next((c for c in candidates if c.is_file()), None)


def list_videos(
    videos_dir: Path | None, metadata_csv: Path | None
) -> tuple[list[VideoJob], pd.DataFrame, pd.DataFrame]:
    """The videos to preprocess, the ones left out, and the label columns.

    Returns `(jobs, skipped, labels)`: `jobs` sorted by video_id; `skipped` with
    `video_id, path, reason` (missing files, files without a metadata row, duplicate rows);
    `labels` indexed by video_id with the metadata's other columns (empty without metadata).
    Without `metadata_csv`, every video file directly in `videos_dir` is taken, its stem as id.
    An id on several rows is kept once when the rows agree (same file, same labels), the
    extra rows being reported as duplicates; rows that disagree leave the id out, naming the
    files or labels they disagree on.
    """
    if metadata_csv is None:
        files = sorted(
            p
            for p in Path(videos_dir).iterdir()
            if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith(".")
        )
        table = pd.DataFrame({"video_id": [p.stem for p in files], "path": [str(p) for p in files]})
        csv_dir, label_columns = None, []
    else:
        table = pd.read_csv(
            metadata_csv, dtype={"video_id": str, "path": str}, keep_default_na=False, na_values=[""]
        )
        missing = {"video_id", "path"} - set(table.columns)
        if missing:
            raise ValueError(
                f"{metadata_csv} lacks column(s) {', '.join(sorted(missing))}; it needs video_id and path"
            )
        csv_dir = Path(metadata_csv).resolve().parent
        clashes = [c for c in table.columns if c in MANIFEST_COLUMNS and c != "video_id"]
        if clashes:
            log.warning(
                "metadata columns %s are computed by preprocess; the metadata's values are ignored", clashes
            )
        label_columns = [c for c in table.columns if c not in ("video_id", "path", *clashes)]
    skipped, used, rows_of = [], set(), {}
    for row_number, (video_id, path_text) in enumerate(
        zip(table["video_id"], table["path"], strict=True), start=2
    ):
        if not isinstance(video_id, str) or not video_id.strip():
            skipped.append(
                (str(path_text), str(path_text), f"metadata row {row_number} has no video_id; fill it in")
            )
        elif not isinstance(path_text, str) or not path_text.strip():
            skipped.append((video_id, "", f"metadata row {row_number} has no path; fill it in"))
        else:
            found = _resolve(path_text, csv_dir, videos_dir)
            if found is not None:
                used.add(found.resolve())
            rows_of.setdefault(video_id, []).append((row_number, path_text, found))
    jobs = []
    for video_id, rows in rows_of.items():
        (first, path_text, found), extra = rows[0], rows[1:]
        conflict = _disagreement(table, rows, label_columns) if extra else None
        if conflict:
            numbers = ", ".join(str(number) for number, _, _ in rows)
            skipped += [
                (
                    video_id,
                    text,
                    f"video_id appears on {len(rows)} metadata rows ({numbers}) with {conflict}; "
                    f"ids must be unique: keep one row",
                )
                for _, text, _ in rows
            ]
            continue
        skipped += [
            (video_id, text, f"duplicate of metadata row {first} (same id, file and labels): kept once")
            for number, text, _ in extra
        ]
        if found is None:
            where = (
                "relative to the metadata folder or --videos"
                if not Path(path_text).is_absolute()
                else "absolute"
            )
            skipped.append((video_id, path_text, f"file not found ({where}); fix the path or remove the row"))
        else:
            jobs.append(VideoJob(video_id, str(found.resolve())))
    if metadata_csv is not None and videos_dir is not None:
        for p in sorted(Path(videos_dir).iterdir()):
            if (
                p.is_file()
                and p.suffix.lower() in VIDEO_EXTENSIONS
                and p.resolve() not in used
                and not p.name.startswith(".")
            ):
                skipped.append(
                    (
                        p.stem,
                        str(p),
                        f"no row in {Path(metadata_csv).name}; add one or move the file out of {videos_dir}",
                    )
                )
    labels = table[["video_id", *label_columns]].drop_duplicates("video_id").set_index("video_id")
    skipped_table = pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)
    return sorted(jobs, key=lambda j: j.video_id), skipped_table, labels


def _disagreement(
    table: pd.DataFrame, rows: list[tuple[int, str, Path | None]], label_columns: list[str]
) -> str | None:
    """What the metadata rows of one id disagree on ("different files (…)" or "different
    labels (…)", naming each row's value), or None when they are the same video.

    rows: `(row number, path text, resolved file or None)`; row n is `table.iloc[n - 2]`.
    """
    files = [str(found.resolve()) if found is not None else text for _, text, found in rows]
    if len(set(files)) > 1:
        return (
            "different files ("
            + "; ".join(f"row {n}: {text}" for (n, text, _), f in zip(rows, files, strict=True))
            + ")"
        )
    values = table.iloc[[n - 2 for n, _, _ in rows]][label_columns].astype(object)
    values = values.where(values.notna(), "")
    differ = [c for c in label_columns if values[c].nunique() > 1]
    if differ:
        return (
            "different labels ("
            + "; ".join(
                f"row {n}: " + ", ".join(f"{c}={values.iloc[i][c]}" for c in differ)
                for i, (n, _, _) in enumerate(rows)
            )
            + ")"
        )
    return None


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
    _write_json(_record_file(out_dir, job.video_id), {**record, "status": "running"})  # replaced when done
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
    _write_json(_record_file(out_dir, job.video_id), record)
    return record


def _write_text(path: Path, text: str) -> None:
    """Write `text` (UTF-8) atomically; a file that already holds it is left alone."""
    data = text.encode("utf-8")
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)


def _write_json(path: Path, obj: dict) -> None:
    """Write `obj` as JSON, atomically."""
    _write_text(path, json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


def _write_csv(path: Path, table: pd.DataFrame) -> None:
    """Write a table as CSV (no index), atomically."""
    _write_text(path, table.to_csv(index=False))


def _read_json(path: Path) -> dict | None:
    """A JSON file's content, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_record(out_dir: Path, job: VideoJob) -> dict | None:
    """The finished record of a video, or None when it must be (re)processed: no record yet, the
    source file changed size, one of its segment files is gone, or it failed for a reason other
    than the file itself."""
    record = _read_json(_record_file(Path(out_dir), job.video_id))
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
    _write_json(saved_file, params.as_json())


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
            j
            for j in lost
            if (_read_json(_record_file(out_dir, j.video_id)) or {}).get("status") == "running"
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
                _write_json(_record_file(out_dir, job.video_id), record)
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
        jobs = [j for j in jobs if shard_of(j.video_id, shard[1]) == shard[0]]
        mine = np.array([shard_of(v, shard[1]) == shard[0] for v in listing_skips["video_id"]], dtype=bool)
        listing_skips = listing_skips.loc[mine]
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
        _write_csv(table_path(out_dir, name, shard), table)
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
    parser.add_argument(
        "--videos", type=Path, help="folder of video files (all of them are taken without --metadata)"
    )
    parser.add_argument(
        "--metadata",
        type=Path,
        help="CSV with video_id, path (absolute, or relative to the CSV or --videos), labels",
    )
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
