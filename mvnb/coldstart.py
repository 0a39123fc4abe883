"""Cold start: the catalogue videos nearest to a video the catalogue has never seen, and
`python -m mvnb similar`.

A new video is cut into segments exactly as the catalogue was (`mvnb.segments`), encoded with
the same frozen encoders (`mvnb.features`, checked by sha256) and the run's heads
(`mvnb.intake`), averaged to one video embedding (`mvnb.neighbours.video_embeddings`) and
compared with every catalogue video (`similar_videos`). Notebook 05 queries with a video no run
has seen (`held_out_video`) and shows the answer as a neighbour grid (`cold_start_table`).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mvnb import features, segments, synth
from mvnb.corpus import rotation_split
from mvnb.embeddings import NAMES as EMBEDDINGS
from mvnb.embeddings import frozen_embeddings
from mvnb.intake import check_run_store, encode_store, heads_embeddings, store_settings
from mvnb.io import read_json
from mvnb.neighbours import AGGREGATES, Catalogue, cosine_neighbours, load_catalogue, video_embeddings
from mvnb.runs import run_data_dir


def encode_video(
    video: str | Path,
    data_dir: str | Path,
    work_dir: str | Path,
    device: str | None = None,
    video_id: str | None = None,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Segment and encode a new video exactly as the catalogue at `data_dir` was.

    The video is preprocessed with the catalogue's parameters into `work_dir/store` and its
    view 0 encoded with the catalogue's frozen encoders (`mvnb.intake.encode_store` with the
    catalogue's `store_settings`: same weights, seed, frames and precision; the sha256 of both
    encoders' weights is checked against the catalogue's).
    Returns `(segments, audio (s, 1, audio_dim), video (s, 1, video_dim))`: the manifest rows of
    its s segments that encoded, and their features. Raises ValueError with the reason when
    the video gives no usable segment.
    """
    data_dir, work_dir = Path(data_dir), Path(work_dir)
    video = Path(video).expanduser().resolve()
    if not video.is_file():
        raise FileNotFoundError(f"video {video} not found")
    settings = store_settings(data_dir)
    video_id = video_id or video.stem
    metadata = work_dir / "metadata.csv"
    work_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"video_id": [video_id], "path": [str(video)]}).to_csv(metadata, index=False)
    store = work_dir / "store"
    if encode_store(metadata, store, settings, device, progress=False) is None:
        reason = pd.read_csv(segments.table_path(store, "skipped"))["reason"].iloc[0]
        raise ValueError(f"{video.name}: {reason}")
    manifest, audio, video_features, audio_meta, video_meta = features.load_feature_pair(store)
    for modality, meta in (("audio", audio_meta), ("video", video_meta)):
        theirs = features.read_meta(features.feature_dir(data_dir, modality))["provenance"]["sha256"]
        if meta["provenance"]["sha256"] != theirs:
            raise ValueError(
                f"the {modality} encoder here ({meta['provenance']['sha256'][:12]}…) is not the one the "
                f"catalogue "
                f"used ({theirs[:12]}…); its features would not be comparable"
            )
    keep = np.flatnonzero(audio_meta["valid"] & video_meta["valid"])
    if not len(keep):
        raise ValueError(
            f"{video.name}: none of its {len(manifest)} segments could be encoded "
            f"({audio_meta['failed'] or video_meta['failed']})"
        )
    return (
        manifest.iloc[keep].reset_index(drop=True),
        np.asarray(audio[keep], dtype=np.float32),
        np.asarray(video_features[keep], dtype=np.float32),
    )


def query_embeddings(run: str | Path, audio, video, device: str | None = None) -> dict[str, np.ndarray]:
    """Every embedding (`EMBEDDINGS`) of new segments, `(s, dim)` each, from their features
    `(s, views, audio_dim)`, `(s, views, video_dim)` (view 0) and the heads of `run`."""
    return {**frozen_embeddings(audio[:, 0], video[:, 0]), **heads_embeddings(run, audio, video, device)}


def similar_videos(
    run: str | Path,
    video: str | Path,
    k: int = 10,
    data_dir: str | Path | None = None,
    embedding: str = "CL_agg",
    aggregate: str = "mean",
    exclude: Sequence[str] = (),
    work_dir: str | Path | None = None,
    device: str | None = None,
) -> pd.DataFrame:
    """The k catalogue videos nearest to a video the catalogue has never seen.

    run: a training run directory (heads.pt, embeddings.npz); data_dir: its segment store
        (default: the one the run records, see `mvnb.runs.run_data_dir`); embedding: one of `EMBEDDINGS`;
        aggregate: how segments make a video (`video_embeddings`); exclude: catalogue video ids
        to leave out (to query with a catalogue video as if it were new); work_dir: where the
        query's segments and features go (default: a temporary folder, removed afterwards).
    Returns k rows, best first: `rank, video_id, similarity` and the catalogue's labels
    (`genre, tags, split`, where present). `attrs["query"]` holds the query's id and segments.
    """
    run = Path(run)
    data_dir = Path(data_dir) if data_dir is not None else run_data_dir(run)
    if embedding not in EMBEDDINGS:
        raise ValueError(f"unknown embedding {embedding!r}; choose one of {', '.join(EMBEDDINGS)}")
    check_run_store(run, data_dir)
    catalogue = load_catalogue(data_dir, {("run", 0, 0): run})
    with tempfile.TemporaryDirectory(prefix="mvnb-similar-") as scratch:
        segs, audio, video_features = encode_video(video, data_dir, work_dir or scratch, device)
        query = query_embeddings(run, audio, video_features, device)[embedding]
    _, query_video = video_embeddings(query, np.zeros(len(query), dtype=int), aggregate)
    videos = catalogue.videos
    gallery = catalogue.embedding(embedding, "video", "run", (0, 0), aggregate)
    allowed = np.flatnonzero(~videos["video_id"].isin(list(exclude)).to_numpy())
    indices, sims = cosine_neighbours(query_video, gallery[allowed], min(k, len(allowed)))
    columns = [c for c in ("video_id", "genre", "tags", "split") if c in videos]
    table = videos.iloc[allowed[indices[0]]][columns].reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table.insert(2, "similarity", sims[0])
    clip = segs.iloc[len(segs) // 2]
    table.attrs["query"] = {
        "video": str(video),
        "video_id": segs["video_id"].iloc[0],
        "segments": len(segs),
        "embedding": embedding,
        "run": str(run),
        "data_dir": str(data_dir),
        "store": str(Path(work_dir) / "store") if work_dir else None,
        "video_path": clip["video_path"],
        "audio_path": clip["audio_path"],
    }
    return table


def cold_start_table(found: pd.DataFrame, k: int | None = None, labels: dict | None = None) -> pd.DataFrame:
    """`similar_videos`' answer as one grid row for `mvnb.grids.neighbour_grid`: the query
    (rank 0, clip from its own store, captioned with `labels` such as genre and tags where
    known) and its first k catalogue videos (their middle segments).

    Needs the query's store, so `similar_videos` must have been given a `work_dir`.
    """
    query = found.attrs["query"]
    if query["store"] is None:
        raise ValueError("the query's segments were in a temporary folder; call similar_videos with work_dir")
    catalogue = load_catalogue(query["data_dir"]).videos.set_index("video_id")
    top = found.head(k) if k else found
    clips = catalogue.loc[top["video_id"]]
    rows = [
        {
            "rank": 0,
            "video_id": query["video_id"],
            "genre": (labels or {}).get("genre", ""),
            "tags": (labels or {}).get("tags", ""),
            "similarity": np.nan,
            "store": query["store"],
            "video_path": query["video_path"],
            "audio_path": query["audio_path"],
        }
    ]
    for (_, hit), (_, clip) in zip(top.iterrows(), clips.iterrows(), strict=True):
        rows.append(
            {
                "rank": int(hit["rank"]),
                "video_id": hit["video_id"],
                "genre": hit.get("genre", ""),
                "tags": hit.get("tags", ""),
                "similarity": hit["similarity"],
                "store": query["data_dir"],
                "video_path": clip["video_path"],
                "audio_path": clip["audio_path"],
            }
        )
    return pd.DataFrame(rows).assign(level="video", row=0)


def unseen_synth_video(corpus_dir: str | Path, out_dir: str | Path) -> tuple[Path, dict]:
    """A video of the synthetic corpus at `corpus_dir` that it does not contain.

    Renders the next index after the corpus's last (same generator settings, from synth.json)
    into `out_dir/videos/`, once. Returns `(path, its metadata row)` (genre, tags, ...).
    Raises FileNotFoundError when `corpus_dir` is not a synthetic corpus.
    """
    settings = Path(corpus_dir) / "synth.json"
    if not settings.is_file():
        raise FileNotFoundError(f"{corpus_dir} has no synth.json: it is not a synthetic corpus")
    values = read_json(settings)
    spec = synth.SynthSpec(**{**values, "size": tuple(values["size"])})
    row = synth.video_plan(spec, spec.n_videos)["row"]
    path = Path(out_dir) / row["path"]
    if not path.is_file():
        synth.render_video(spec, spec.n_videos, Path(out_dir))
    return path, row


def held_out_video(
    corpus_dir: str | Path, catalogue: Catalogue, out_dir: str | Path, rotation: int = 0
) -> tuple[Path, dict, tuple[str, ...]]:
    """A video to query the catalogue with as if it were new: `(path, labels, exclude)`.

    For a synthetic corpus, the generator's next video, which no run has seen (`exclude` is
    empty); for another corpus, its first video in the test split of `rotation` (that of the
    run that will embed it, which never trained on it), which `exclude` leaves out of the
    catalogue. `labels` has its video_id, genre and tags where known.
    """
    corpus_dir = Path(corpus_dir)
    if (corpus_dir / "synth.json").is_file():
        path, row = unseen_synth_video(corpus_dir, out_dir)
        return path, row, ()
    videos = catalogue.videos
    tests = videos[rotation_split(videos["fold"].to_numpy(), rotation) == "test"]
    if tests.empty:
        raise ValueError(
            f"the catalogue of {corpus_dir} has no video in rotation {rotation}'s test split to hold out"
        )
    held = tests.iloc[0]
    metadata = pd.read_csv(corpus_dir / "metadata.csv", dtype={"video_id": str, "path": str})
    path = metadata.loc[metadata["video_id"] == held["video_id"], "path"].iloc[0]
    path = Path(path) if Path(path).is_absolute() else corpus_dir / path
    return (
        path,
        {"video_id": held["video_id"], **{c: held[c] for c in ("genre", "tags") if c in held}},
        (held["video_id"],),
    )


# --------------------------------------------------------------------------- CLI: python -m mvnb similar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m mvnb similar`."""
    parser.add_argument(
        "--run", type=Path, required=True, help="a training run directory (heads.pt, embeddings.npz)"
    )
    parser.add_argument("--video", type=Path, required=True, help="a video file the catalogue has never seen")
    parser.add_argument("--k", type=int, default=10, help="how many catalogue videos to list")
    parser.add_argument(
        "--data", type=Path, help="the run's segment store (default: the one the run records)"
    )
    parser.add_argument(
        "--embedding",
        default="CL_agg",
        choices=EMBEDDINGS,
        help="the embedding compared (default CL_agg, as the paper)",
    )
    parser.add_argument(
        "--aggregate", default="mean", choices=AGGREGATES, help="how a video's segments are averaged"
    )
    parser.add_argument("--device", help="cuda, cpu, … (default: cuda when present)")


def run(args: argparse.Namespace) -> int:
    """Print the catalogue videos nearest to `--video`; exit code 2 with a one-line reason on bad input."""
    try:
        table = similar_videos(
            args.run, args.video, args.k, args.data, args.embedding, args.aggregate, device=args.device
        )
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"similar: {error}")
        return 2
    query = table.attrs["query"]
    print(
        f"similar: {query['video_id']} ({query['segments']} segments) against the catalogue of {args.run}, "
        f"by {query['embedding']} (cosine):"
    )
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    return 0
