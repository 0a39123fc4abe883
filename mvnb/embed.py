"""Embeddings of one's own videos: `python -m mvnb embed --videos DIR --out OUT`.

Every video is cut into segments and each segment's view 0 (the centred 3 s window, the centre
crop) is encoded with the frozen encoders, the same pipeline as the catalogue's
(`mvnb.intake.encode_store`); with a training run, its heads (which carry their input
standardisation) add the learned embeddings. OUT receives

- `segments.parquet`: one row per segment, `video_id, k, start_s, end_s`, and each embedding as
  a fixed-size float32 list column: `musicnn` (1506), `r2plus1d` (512) and, with a run, `CL_a`,
  `CL_v`, `CL_agg` (the mean of the two at unit length, `mvnb.embeddings.cl_agg`);
- `videos.parquet`: one row per video, `video_id, path, n_segments`, its metadata labels, and
  each embedding averaged over the video's segments, as browsing averages them
  (`mvnb.neighbours.video_embeddings`, "mean");
- `skipped.csv`: `video_id, path, reason` for every video (or segment, or metadata row) left out;
- `provenance.json`: the package version, the settings, both encoders' weights with their sha256,
  and the run with the sha256 of its heads;
- `store/`: the segment and feature store the new embeddings came from (`inputs.csv` lists its videos).

**Settings.** With a run, the segments and views are cut as the run's own store was cut and
encoded with the same weights (checked by sha256); without one, with the default profile's
settings (`default_settings`). **Reuse.** `store` names an existing segment store, such as the
run's own: a video it already holds (same id, same file size, all segments encoded) is taken
from it instead of being cut and encoded again. **Reruns** find the videos already done in
OUT/store and encode only the new ones; the tables are rewritten from the stores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mvnb import __version__, corpus, features, segments
from mvnb.embeddings import LEARNED
from mvnb.intake import (
    EncodeSettings,
    check_run_store,
    default_settings,
    encode_store,
    encoding_differences,
    heads_embeddings,
    store_settings,
)
from mvnb.io import atomic_write, sha256_file, write_csv, write_json
from mvnb.neighbours import video_embeddings
from mvnb.runs import HEADS_FILE, read_config, run_data_dir

FROZEN = {"musicnn": "audio", "r2plus1d": "video"}  # output column: the feature store it comes from


# --------------------------------------------------------------------------- embed


def embed_videos(
    videos_dir: str | Path | None,
    out: str | Path,
    metadata_csv: str | Path | None = None,
    run: str | Path | None = None,
    store: str | Path | None = None,
    device: str | None = None,
    workers: int = 1,
    progress: bool = True,
) -> dict:
    """Embed the videos of `videos_dir` (and/or `metadata_csv`, as `mvnb.corpus.list_videos`
    reads them) into OUT (see the module docstring); returns a summary.

    run: a training run directory, for its settings and the learned embeddings; store: a segment
        store to take already-encoded videos from (e.g. the run's own); workers: processes
        that cut videos and decode segments.
    Summary: `videos`, `segments`, `skipped` (rows of skipped.csv), `cut` (videos cut into
    segments by this call), `encoded` (segments encoded by this call), `reused` (segments
    taken from `store`), `seconds`. Raises ValueError (or FileNotFoundError) with a one-line
    reason on settings that do not fit together.
    """
    started = time.perf_counter()
    out, run = Path(out), (Path(run) if run is not None else None)
    store = Path(store) if store is not None else None
    reference = _run_store(run, store) if run is not None else None
    settings = store_settings(reference) if reference is not None else default_settings()
    jobs, skipped, labels = corpus.list_videos(
        Path(videos_dir) if videos_dir else None, Path(metadata_csv) if metadata_csv else None
    )
    paths = {job.video_id: job.path for job in jobs}
    reused = _reusable(store, jobs, settings, reference) if store is not None else set()
    todo = [job for job in jobs if job.video_id not in reused]
    cut, summary, new_skipped = _encode_new(out, todo, settings, device, workers, progress)
    skipped = pd.concat([skipped, new_skipped], ignore_index=True) if todo else skipped
    if summary and (reference or (store if reused else None)):  # new features must match those they join
        _check_comparable(out / "store", reference or store)
    sources = ([(store, reused)] if reused else []) + (
        [(out / "store", {j.video_id for j in todo})] if summary else []
    )
    table, failed = _segment_table(sources, paths)
    if run is not None:
        table = table.assign(**_learned(run, table, device))
    failed_all = pd.concat([skipped, failed], ignore_index=True)
    write_outputs(out, table, labels, paths, failed_all, _provenance(run, settings, sources))
    encoded = max(summary[m]["computed"] + len(summary[m]["failed"]) for m in features.KEYS) if summary else 0
    return {
        "videos": int(table["video_id"].nunique()),
        "segments": len(table),
        "skipped": len(skipped) + len(failed),
        "cut": cut,
        "encoded": encoded,
        "reused": int(table["video_id"].isin(reused).sum()),
        "seconds": time.perf_counter() - started,
    }


def _encode_new(
    out: Path,
    todo: list[corpus.VideoJob],
    settings: EncodeSettings,
    device: str | None,
    workers: int,
    progress: bool,
) -> tuple[int, dict | None, pd.DataFrame | None]:
    """Cut and encode the videos `todo` into OUT/store, listing them in OUT/inputs.csv (`video_id,
    path`). Returns `(cut, summary, skipped)`: how many videos were cut now, `encode_store`'s
    summary (None with nothing to do or no segment), and the store's skipped rows (`video_id,
    path, reason`; None with nothing to do)."""
    own = out / "store"
    out.mkdir(parents=True, exist_ok=True)
    write_csv(
        out / "inputs.csv", pd.DataFrame([(j.video_id, j.path) for j in todo], columns=["video_id", "path"])
    )
    cut = sum(segments.read_record(own, job) is None for job in todo)  # what preprocess will (re)do
    if not todo:
        return cut, None, None
    summary = encode_store(out / "inputs.csv", own, settings, device, workers, progress)
    return cut, summary, segments.load_skipped(own)


def _check_comparable(own: Path, against: Path) -> None:
    """Raise ValueError when the features just encoded into `own` would differ from those of the
    store `against` that they join (`encoding_differences`)."""
    if differ := encoding_differences(own, against):
        raise ValueError(
            f"the encoders here do not encode as {against} did ({'; '.join(differ)}); "
            f"their embeddings would not be comparable"
        )


def _run_store(run: Path, store: Path | None) -> Path:
    """The segment store `run` was trained on (`mvnb.runs.run_data_dir`; `store` where the run's
    own is not here), checked to hold the features the run was trained on."""
    try:
        reference = run_data_dir(run)
    except ValueError:
        if store is None:
            raise ValueError(
                f"the run {run} does not record a segment store that exists here; give it with --store"
            ) from None
        reference = store
    check_run_store(run, reference)
    return reference


def _reusable(
    store: Path, jobs: list[corpus.VideoJob], settings: EncodeSettings, reference: Path | None
) -> set[str]:
    """The ids of the videos `store` holds completely, cut from the same files, with features
    for every segment; `store` must have been cut with `settings` (and encode as `reference`)."""
    if segments.load_params(store) != settings.preprocess:
        raise ValueError(
            f"--store {store} was cut with {segments.load_params(store)}, not {settings.preprocess}; "
            f"its segments are not the ones embed makes"
        )
    if reference is not None and store != reference and (differ := encoding_differences(store, reference)):
        raise ValueError(
            f"--store {store} does not encode as the run's store {reference} did ({'; '.join(differ)})"
        )
    manifest, _, _, audio_meta, video_meta = features.load_feature_pair(store)
    valid = (
        pd.Series(audio_meta["valid"] & video_meta["valid"]).groupby(manifest["video_id"].to_numpy()).all()
    )
    return {
        job.video_id
        for job in jobs
        if valid.get(job.video_id, False) and (segments.read_record(store, job) or {}).get("status") == "ok"
    }


def _segment_table(
    sources: list[tuple[Path, set[str]]], paths: dict[str, str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`(segments, failed)`: the segments of each source store's chosen videos with valid
    features in both modalities, `video_id, k, start_s, end_s, musicnn (1506,), r2plus1d
    (512,)` as float32 row arrays, sorted by video_id then k; and `video_id, path, reason` of
    the segments whose features failed."""
    parts, failed = [], []
    for store, ids in sources:
        manifest, audio, video, audio_meta, video_meta = features.load_feature_pair(store)
        chosen = manifest["video_id"].isin(ids).to_numpy()
        for meta in (audio_meta, video_meta):
            for sid, reason in meta["failed"].items():
                row = manifest.loc[manifest["segment_id"] == sid].iloc[0]
                if row["video_id"] in ids:
                    failed.append(
                        (
                            row["video_id"],
                            paths[row["video_id"]],
                            f"segment {row['k']} could not be encoded ({reason})",
                        )
                    )
        rows = np.flatnonzero(chosen & audio_meta["valid"] & video_meta["valid"])
        part = manifest.iloc[rows][["video_id", "k", "start_s", "end_s"]].reset_index(drop=True)
        parts.append(
            part.assign(
                musicnn=list(np.asarray(audio[rows, 0], dtype=np.float32)),
                r2plus1d=list(np.asarray(video[rows, 0], dtype=np.float32)),
            )
        )
    columns = ["video_id", "k", "start_s", "end_s", *FROZEN]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return (
        table.sort_values(["video_id", "k"], kind="stable").reset_index(drop=True),
        pd.DataFrame(failed, columns=corpus.SKIPPED_COLUMNS).drop_duplicates(),
    )


def _learned(run: Path, table: pd.DataFrame, device: str | None) -> dict[str, list[np.ndarray]]:
    """`CL_a`, `CL_v` and `CL_agg` of the segments in `table` by the heads of `run`
    (`mvnb.intake.heads_embeddings`), one `(dim,)` array per row."""
    audio = np.stack(table["musicnn"])[:, None] if len(table) else np.zeros((0, 1, 1506), np.float32)
    video = np.stack(table["r2plus1d"])[:, None] if len(table) else np.zeros((0, 1, 512), np.float32)
    return {name: list(values) for name, values in heads_embeddings(run, audio, video, device).items()}


def _provenance(run: Path | None, settings: EncodeSettings, sources: list[tuple[Path, set[str]]]) -> dict:
    """What made the embeddings: package, settings, both encoders (from the stores used) and the run."""
    encoders = {}
    for store, _ in sources:
        for modality in features.KEYS:
            encoders[modality] = features.read_meta(features.feature_dir(store, modality))["provenance"]
    return {
        "mvnb": __version__,
        "view": 0,
        "segments": settings.preprocess.as_json(),
        "frames": settings.frames,
        "precision": settings.precision,
        "encoders": encoders,
        "run": None
        if run is None
        else {
            "path": str(run.resolve()),
            "heads_sha256": sha256_file(run / HEADS_FILE),
            "config": read_config(run).get("name"),
        },
        "stores": [str(store.resolve()) for store, _ in sources],
    }


def write_outputs(
    out: Path,
    table: pd.DataFrame,
    labels: pd.DataFrame,
    paths: dict[str, str],
    skipped: pd.DataFrame,
    provenance: dict,
) -> None:
    """Write segments.parquet, videos.parquet, skipped.csv and provenance.json into `out`, atomically."""
    vectors = [c for c in (*FROZEN, *LEARNED) if c in table]
    _write_parquet(out / "segments.parquet", table, vectors)
    ids = table["video_id"].to_numpy()
    videos = pd.DataFrame({"video_id": np.unique(ids).astype(object)})
    videos["path"] = videos["video_id"].map(paths)
    videos["n_segments"] = videos["video_id"].map(table["video_id"].value_counts()).astype(int)
    videos = videos.join(labels.drop(columns=[c for c in labels if c in videos]), on="video_id")
    for name in vectors:
        videos[name] = list(video_embeddings(np.stack(table[name]), ids)[1]) if len(table) else []
    _write_parquet(out / "videos.parquet", videos, vectors)
    write_csv(out / "skipped.csv", skipped.sort_values(["video_id", "path"], kind="stable"))
    write_json(out / "provenance.json", provenance)


def _write_parquet(path: Path, table: pd.DataFrame, vectors: list[str]) -> None:
    """`table` as parquet, each column of `vectors` as a fixed-size float32 list."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {}
    for name in table.columns:
        if name in vectors:
            values = np.stack(table[name]).astype(np.float32) if len(table) else np.zeros((0, 1), np.float32)
            columns[name] = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), values.shape[1])
        else:
            columns[name] = pa.array(table[name].tolist())
    with atomic_write(path) as tmp:
        pq.write_table(pa.table(columns), tmp)


# --------------------------------------------------------------------------- CLI: python -m mvnb embed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m mvnb embed`."""
    corpus.add_source_arguments(parser)
    parser.add_argument(
        "--run",
        type=Path,
        help="a training run directory: its settings, and CL_a, CL_v, CL_agg from its heads",
    )
    parser.add_argument(
        "--store", type=Path, help="a segment store (e.g. the run's own) whose videos are taken as they are"
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder for segments.parquet, videos.parquet, skipped.csv, provenance.json",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes cutting videos and decoding segments"
    )
    parser.add_argument("--device", help="cuda, cpu, … (default: cuda when present)")


def run(args: argparse.Namespace) -> int:
    """Run `embed`; prints a summary. Exit code 2 with a one-line reason on bad input."""
    if args.videos is None and args.metadata is None:
        print("embed: give --videos, --metadata, or both")
        return 2
    try:
        summary = embed_videos(
            args.videos, args.out, args.metadata, args.run, args.store, args.device, args.workers
        )
    except (
        FileNotFoundError,
        ValueError,
        KeyError,
        RuntimeError,
    ) as error:  # RuntimeError: weights unavailable, a locked store
        print(f"embed: {error}")
        return 2
    print(
        f"embed: {summary['videos']} videos, {summary['segments']} segments in "
        f"{args.out / 'segments.parquet'} "
        f"({summary['cut']} videos cut and {summary['encoded']} segments encoded now, {summary['reused']} "
        f"segments "
        f"taken from --store); {summary['skipped']} skipped (see {args.out / 'skipped.csv'}); "
        f"{summary['seconds']:.0f} s"
    )
    return 0
