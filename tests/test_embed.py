"""`python -m mvnb embed`: a folder mixing good and damaged files, reruns that recompute nothing,
the parquet layout, and, against the quick report's run, CL embeddings equal to its
embeddings.npz (reused store) or cosine-equal to them (freshly encoded)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_media import write_test_media

from mvnb import embed
from mvnb.config import profile_params
from mvnb.runs import run_dir
from mvnb.segments import load_manifest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory) -> Path:
    """Three good videos (11-13 s: two 5 s segments each at the default settings) and five damaged files."""
    folder = tmp_path_factory.mktemp("mixed") / "videos"
    for i, (seconds, fps, size) in enumerate(
        ((11.0, 25, (128, 72)), (12.0, 30, (72, 128)), (13.0, 24, (160, 90)))
    ):
        write_test_media(folder / f"good{i}.mp4", seconds=seconds, fps=fps, size=size)
    (folder / "empty.mp4").touch()
    (folder / "text.mp4").write_text("this is not a video\n")
    whole = write_test_media(folder.parent / "whole.mp4", seconds=11.0).read_bytes()
    (folder / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    write_test_media(folder / "audio_only.mp4", seconds=11.0, video=False)
    write_test_media(folder / "short.mp4", seconds=3.0)
    return folder


def stamps(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_every_good_video_is_embedded_and_every_damaged_one_skipped_with_a_reason(mixed_folder, tmp_path):
    out = tmp_path / "out"
    summary = embed.embed_videos(mixed_folder, out, progress=False)
    segments = pd.read_parquet(out / "segments.parquet")
    assert sorted(segments["video_id"].unique()) == ["good0", "good1", "good2"]
    assert segments.groupby("video_id").size().to_dict() == {"good0": 2, "good1": 2, "good2": 2}
    assert ((segments["end_s"] - segments["start_s"]).round(6) == 5.0).all()
    assert list(segments.columns) == [
        "video_id",
        "k",
        "start_s",
        "end_s",
        "musicnn",
        "r2plus1d",
    ]  # no run, no CL
    schema = pq.read_schema(out / "segments.parquet")
    assert schema.field("musicnn").type == pa.list_(pa.float32(), 1506)
    assert schema.field("r2plus1d").type == pa.list_(pa.float32(), 512)
    assert np.isfinite(np.stack(segments["musicnn"])).all() and np.stack(segments["r2plus1d"]).std() > 0
    skipped = pd.read_csv(out / "skipped.csv").set_index("video_id")["reason"]
    expected = {
        "empty": "empty file",
        "text": "not a readable media file",
        "truncated": "truncated",
        "audio_only": "no video stream",
        "short": "too short: 3.0 s",
    }
    assert sorted(skipped.index) == sorted(expected)
    for video_id, reason in expected.items():
        assert reason in skipped[video_id], (video_id, skipped[video_id])
    videos = pd.read_parquet(out / "videos.parquet").set_index("video_id")
    assert videos["n_segments"].to_dict() == {"good0": 2, "good1": 2, "good2": 2}
    for video_id, rows in segments.groupby("video_id"):  # a video's embedding is the mean of its segments'
        assert np.allclose(videos.loc[video_id, "musicnn"], np.stack(rows["musicnn"]).mean(0), atol=1e-6)
    provenance = json.loads((out / "provenance.json").read_text())
    assert (
        provenance["run"] is None
        and provenance["segments"]["segments"] == profile_params("default")["segments"]
    )
    assert (
        len(provenance["encoders"]["video"]["sha256"]) == 64
        and provenance["frames"] == profile_params("default")["frames"]
    )
    assert (
        summary["videos"] == 3 and summary["cut"] == 8 and summary["encoded"] == 6 and summary["skipped"] == 5
    )

    before, tables = stamps(out / "store"), pd.read_parquet(out / "segments.parquet")
    again = embed.embed_videos(mixed_folder, out, progress=False)
    assert (again["cut"], again["encoded"]) == (0, 0)
    now = stamps(out / "store")
    assert {p: now[p] for p in before if p.suffix in (".mp4", ".wav", ".f16")} == {
        p: t for p, t in before.items() if p.suffix in (".mp4", ".wav", ".f16")
    }
    pd.testing.assert_frame_equal(pd.read_parquet(out / "segments.parquet"), tables)

    write_test_media(mixed_folder / "late.mp4", seconds=11.5)
    added = embed.embed_videos(mixed_folder, out, progress=False)
    assert (added["cut"], added["encoded"], added["videos"]) == (1, 2, 4)
    assert all(stamps(out / "store")[p] == t for p, t in before.items() if "segments/good" in str(p))
    grown = pd.read_parquet(out / "segments.parquet")
    pd.testing.assert_frame_equal(grown[grown["video_id"] != "late"].reset_index(drop=True), tables)
    (mixed_folder / "late.mp4").unlink()


def test_the_cli_refuses_bad_input_in_one_line(tmp_path, capsys):
    from mvnb.__main__ import main

    assert main(["embed", "--out", str(tmp_path / "o")]) == 2
    assert "give --videos" in capsys.readouterr().out
    assert (
        main(
            [
                "embed",
                "--videos",
                str(tmp_path),
                "--run",
                str(tmp_path / "no_run"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert re.search(r"^embed: .*no_run", capsys.readouterr().out, re.M)


# --------------------------------------------------------------------------- against a trained run


@pytest.fixture(scope="module")
def quick_run(quick_report):
    params = profile_params("quick")
    corpus = quick_report.root / "data" / params["corpus"]
    run = run_dir(
        quick_report.root / "runs", "corrected", params["seeds"][0], rotation=params["rotations"][0]
    )
    assert (run / "embeddings.npz").is_file(), quick_report.log[-3000:]
    return corpus, corpus / "store", run


def run_rows(store: Path, segments: pd.DataFrame) -> np.ndarray:
    """The manifest row (the run's embeddings.npz row) of each output segment."""
    manifest = load_manifest(store).reset_index().set_index(["video_id", "k"])
    return manifest.loc[list(zip(segments["video_id"], segments["k"], strict=True)), "index"].to_numpy()


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_with_the_runs_own_store_the_embeddings_are_the_runs(quick_run, tmp_path):
    corpus, store, run = quick_run
    summary = embed.embed_videos(
        corpus / "videos", tmp_path / "out", corpus / "metadata.csv", run, store, progress=False
    )
    segments = pd.read_parquet(tmp_path / "out" / "segments.parquet")
    assert summary["cut"] == summary["encoded"] == 0 and summary["reused"] == len(segments) == len(
        load_manifest(store)
    )
    rows = run_rows(store, segments)
    with np.load(run / "embeddings.npz") as saved:
        assert np.abs(np.stack(segments["CL_a"]) - saved["audio"][rows]).max() <= 1e-5
        assert np.abs(np.stack(segments["CL_v"]) - saved["video"][rows]).max() <= 1e-5
        agg = (unit(saved["audio"][rows]) + unit(saved["video"][rows])) / 2
    assert np.abs(np.stack(segments["CL_agg"]) - agg).max() <= 1e-5
    manifest = load_manifest(store)
    assert np.allclose(segments["start_s"], manifest["start_s"].to_numpy()[rows])
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert provenance["run"]["config"] == "corrected" and len(provenance["run"]["heads_sha256"]) == 64
    videos = pd.read_parquet(tmp_path / "out" / "videos.parquet")
    assert {"genre", "tags"} <= set(videos.columns)

    readme = (REPO / "README.md").read_text()
    snippet = re.search(r"## Embeddings of your own videos.*?```python\n(.*?)```", readme, re.S)[1]
    query = videos["video_id"].iloc[0]
    code = snippet.replace("my_embeddings/", f"{tmp_path / 'out'}/").replace('"abc123"', repr(query))
    scope = {}
    exec(code, scope)  # the README's own lines: load with pandas, five nearest videos by cosine
    nearest = scope["videos"].iloc[scope["nearest"]]["video_id"].tolist()
    x = unit(np.stack(videos["CL_agg"]))
    order = np.argsort(-(x @ x[0]), kind="stable")
    assert (
        len(nearest) == 5 and query not in nearest and set(nearest) <= set(videos["video_id"].iloc[order[:7]])
    )


def test_freshly_encoded_the_embeddings_match_the_runs(quick_run, tmp_path):
    corpus, store, run = quick_run
    summary = embed.embed_videos(
        corpus / "videos", tmp_path / "out", corpus / "metadata.csv", run, progress=False
    )
    segments = pd.read_parquet(tmp_path / "out" / "segments.parquet")
    assert summary["reused"] == 0 and summary["encoded"] == len(segments) == len(load_manifest(store))
    assert json.loads((tmp_path / "out" / "provenance.json").read_text())["segments"] == json.loads(
        (store / "preprocess.json").read_text()
    )
    rows = run_rows(store, segments)
    with np.load(run / "embeddings.npz") as saved:
        for name, key in (("CL_a", "audio"), ("CL_v", "video")):
            cosine = (unit(np.stack(segments[name])) * unit(saved[key][rows])).sum(1)
            assert cosine.min() >= 0.999, (name, cosine.min())


def test_a_store_cut_otherwise_is_refused(quick_run, mixed_folder, tmp_path):
    _, store, _ = quick_run
    with pytest.raises(ValueError, match="was cut with"):  # the quick store has 2 segments, embed's default 6
        embed.embed_videos(mixed_folder, tmp_path / "out", store=store, progress=False)


def test_cli_prints_what_it_did(quick_run, tmp_path, capsys):
    corpus, store, run = quick_run
    args = argparse.ArgumentParser()
    embed.add_arguments(args)
    parsed = args.parse_args(
        [
            "--videos",
            str(corpus / "videos"),
            "--run",
            str(run),
            "--store",
            str(store),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert embed.run(parsed) == 0
    assert re.search(
        r"embed: 14 videos, 28 segments .*\(0 videos cut and 0 segments encoded now, 28 segments taken from "
        r"--store",
        capsys.readouterr().out,
    )
