"""A corpus's videos and their names: ids and keys, folds, rotations and splits, shards, sizes, and
listing a video folder (with or without its metadata CSV).

A video's split hashes its id, so it belongs to the corpus: it is the same in every run, and
adding videos never moves another one. Each video's *fold* is `floor(10 u)`, u the hash of its
id in [0, 1); a *rotation* r tests fold (9 − r) mod 10, validates on (8 − r) mod 10 and trains
on the other eight (`rotation_split`); a report that runs several rotations tests each video in at
most one of them (`rotation_tested`). The manifest's `split` column is rotation 0: 80/10/10,
test u ≥ 0.9, validation 0.8 ≤ u < 0.9. A throwaway corpus may give each split several folds
(`folds_per_split`, e.g. 2 for 60/20/20). A video's *shard* (`shard_of`) is another hash of its
id, independent of the split, so that several processes can share the work of a corpus.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
FOLDS = 10
SKIPPED_COLUMNS = ["video_id", "path", "reason"]
# The columns preprocessing computes for each segment (the manifest's, but video_id): a metadata
# column of one of these names is not a label, and its values are ignored.
COMPUTED_COLUMNS = ("segment_id", "k", "start_s", "end_s", "video_path", "audio_path", "split", "fold")
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


@dataclass(frozen=True)
class VideoJob:
    """One video to preprocess: its id and the absolute path of its file."""

    video_id: str
    path: str


def hash64(text: str) -> int:
    """A 64-bit integer fixed by `text`: the first 8 bytes of its SHA-256 (ids seed everything derived
    from them: folds, segment starts, views)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def _hash_unit(text: str) -> float:
    """A number in [0, 1) fixed by `text` (`hash64` / 2**64)."""
    return hash64(text) / 2**64


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
    counts = dict.fromkeys(SPLITS, 0)
    for video_id in dict.fromkeys(video_ids):
        counts[split_of(video_id, rotation, folds_per_split)] += 1
    return counts


def shard_of(video_id: str, n_shards: int) -> int:
    """The shard in `range(n_shards)` that preprocesses a video (hash of its id, independent of the split)."""
    return int(_hash_unit(f"shard:{video_id}") * n_shards)


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


class SizeError(ValueError, argparse.ArgumentTypeError):
    """A size that is not WIDTHxHEIGHT of even numbers: a ValueError, whose message argparse shows."""


def parse_size(size: str | tuple[int, int], minimum: int = 1) -> tuple[int, int]:
    """`(width, height)` from "768x432" (also "768X432", "768×432"; a pair is checked and passed
    through): both even (H.264 yuv420p) and at least `minimum`. Raises SizeError otherwise, so
    that it also serves as an argparse `type`."""
    text = size
    if isinstance(size, str):
        match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", size)
        if not match:
            raise SizeError(f"size must look like 768x432, not {size!r}")
        size = (int(match[1]), int(match[2]))
    width, height = (int(v) for v in size)
    if width % 2 or height % 2 or min(width, height) < max(minimum, 1):
        if minimum > 1:  # the synth CLI's wording
            raise SizeError(f"size {text!r}: width and height must be even and at least {minimum}")
        raise SizeError(f"size {width}x{height} must be positive and even (H.264 yuv420p)")
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


def _resolve(path_text: str, csv_dir: Path | None, videos_dir: Path | None) -> Path | None:
    """The file a metadata path names: absolute, relative to the CSV's folder, or to --videos."""
    path = Path(path_text).expanduser()
    candidates = [path] if path.is_absolute() else [d / path for d in (csv_dir, videos_dir) if d is not None]
    return next((c for c in candidates if c.is_file()), None)


def video_files(folder: Path) -> list[Path]:
    """The video files directly in `folder` (by `VIDEO_EXTENSIONS`, hidden files left out), sorted."""
    return sorted(
        p
        for p in Path(folder).iterdir()
        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith(".")
    )


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """`--videos` and `--metadata`: where a command finds its videos, as `list_videos` reads them."""
    parser.add_argument(
        "--videos", type=Path, help="folder of video files (all of them are taken without --metadata)"
    )
    parser.add_argument(
        "--metadata",
        type=Path,
        help="CSV with video_id, path (absolute, or relative to the CSV or --videos), labels",
    )


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
    table, csv_dir, label_columns = _listing_table(videos_dir, metadata_csv)
    rows_of, used, skipped = _rows_by_id(table, csv_dir, videos_dir)
    jobs = []
    for video_id, rows in rows_of.items():
        job, reasons = _job_of(table, video_id, rows, label_columns)
        skipped += reasons
        if job is not None:
            jobs.append(job)
    if metadata_csv is not None and videos_dir is not None:
        skipped += [
            (
                p.stem,
                str(p),
                f"no row in {Path(metadata_csv).name}; add one or move the file out of {videos_dir}",
            )
            for p in video_files(videos_dir)
            if p.resolve() not in used
        ]
    labels = table[["video_id", *label_columns]].drop_duplicates("video_id").set_index("video_id")
    skipped_table = pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)
    return sorted(jobs, key=lambda j: j.video_id), skipped_table, labels


def _listing_table(
    videos_dir: Path | None, metadata_csv: Path | None
) -> tuple[pd.DataFrame, Path | None, list[str]]:
    """`(table, csv_dir, label_columns)`: the rows to take, `video_id, path` and labels, one per
    metadata row (or per video file of `videos_dir` without metadata); the folder metadata paths are
    relative to; and the label columns (metadata columns named in `COMPUTED_COLUMNS` are ignored)."""
    if metadata_csv is None:
        files = video_files(videos_dir)
        table = pd.DataFrame({"video_id": [p.stem for p in files], "path": [str(p) for p in files]})
        return table, None, []
    table = pd.read_csv(
        metadata_csv, dtype={"video_id": str, "path": str}, keep_default_na=False, na_values=[""]
    )
    missing = {"video_id", "path"} - set(table.columns)
    if missing:
        raise ValueError(
            f"{metadata_csv} lacks column(s) {', '.join(sorted(missing))}; it needs video_id and path"
        )
    clashes = [c for c in table.columns if c in COMPUTED_COLUMNS]
    if clashes:
        log.warning(
            "metadata columns %s are computed by preprocess; the metadata's values are ignored", clashes
        )
    label_columns = [c for c in table.columns if c not in ("video_id", "path", *clashes)]
    return table, Path(metadata_csv).resolve().parent, label_columns


def _rows_by_id(
    table: pd.DataFrame, csv_dir: Path | None, videos_dir: Path | None
) -> tuple[dict[str, list[tuple[int, str, Path | None]]], set[Path], list[tuple[str, str, str]]]:
    """`(rows_of, used, skipped)`: each id's rows `(row number, path text, file found or None)`, the
    resolved files some row names, and `(video_id, path, reason)` for rows without an id or a path."""
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
    return rows_of, used, skipped


def _job_of(
    table: pd.DataFrame, video_id: str, rows: list[tuple[int, str, Path | None]], label_columns: list[str]
) -> tuple[VideoJob | None, list[tuple[str, str, str]]]:
    """`(job or None, skipped rows)` for the metadata rows of one id: the job when they agree and
    name a file; a skipped row for each duplicate, for each row of a disagreeing id, or for a missing file."""
    (first, path_text, found), extra = rows[0], rows[1:]
    conflict = _disagreement(table, rows, label_columns) if extra else None
    if conflict:
        numbers = ", ".join(str(number) for number, _, _ in rows)
        reason = (
            f"video_id appears on {len(rows)} metadata rows ({numbers}) with {conflict}; "
            f"ids must be unique: keep one row"
        )
        return None, [(video_id, text, reason) for _, text, _ in rows]
    skipped = [
        (video_id, text, f"duplicate of metadata row {first} (same id, file and labels): kept once")
        for _, text, _ in extra
    ]
    if found is not None:
        return VideoJob(video_id, str(found.resolve())), skipped
    where = "relative to the metadata folder or --videos" if not Path(path_text).is_absolute() else "absolute"
    skipped.append((video_id, path_text, f"file not found ({where}); fix the path or remove the row"))
    return None, skipped


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


def synth_video_id(index: int) -> str:
    """The id of the synthetic corpus's video `index`, e.g. `mv00042`."""
    return f"mv{index:05d}"
