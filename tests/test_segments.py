"""mvnb.segments: sampling properties, output facts read back from the files, bad input,
kill-and-rerun identity, parameter changes, added videos, shards, and the CLI."""

from __future__ import annotations

import argparse
import faulthandler
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from test_media import read_index, tone, write_test_media

from mvnb.corpus import fold_of, split_of
from mvnb.segments import (
    MANIFEST_COLUMNS,
    StoreParamsError,
    add_arguments,
    load_manifest,
    preprocess,
    read_segment,
    run,
    sample_segment_starts,
)

SMALL = dict(segments=3, seconds=2.0, fps=10, size=(128, 72))  # fast settings for store mechanics


# ---------------------------------------------------------------------------------------------
# Pure functions
# ---------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    duration=st.floats(0.0, 3600.0),
    n_segments=st.integers(1, 12),
    seconds=st.floats(0.5, 30.0),
    seed=st.integers(0, 2**32 - 1),
    video_id=st.text(min_size=1, max_size=20),
)
def test_segments_lie_in_their_section_inside_the_file_without_overlap(
    duration, n_segments, seconds, seed, video_id
):
    starts = sample_segment_starts(duration, n_segments, seconds, seed, video_id)
    assert len(starts) == min(n_segments, int(np.floor(duration / seconds + 1e-9)))
    section = duration / max(len(starts), 1)
    for k, start in enumerate(starts):
        assert (
            k * section - 1e-9 <= start and start + seconds <= (k + 1) * section + 1e-9
        )  # inside its section
        assert 0.0 <= start and start + seconds <= duration + 1e-9  # inside the file
    assert all(b >= a + seconds - 1e-9 for a, b in itertools.pairwise(starts))  # no overlap
    assert starts == sample_segment_starts(duration, n_segments, seconds, seed, video_id)  # pure


def test_sampling_depends_on_seed_and_video_id():
    base = sample_segment_starts(120.0, 6, 5.0, 0, "a")
    assert base != sample_segment_starts(120.0, 6, 5.0, 1, "a")
    assert base != sample_segment_starts(120.0, 6, 5.0, 0, "b")


# ---------------------------------------------------------------------------------------------
# A small corpus, preprocessed once without interruption as the reference
# ---------------------------------------------------------------------------------------------


def write_corpus(root: Path, n: int, first: int = 0, seconds: float = 7.0) -> Path:
    """`n` videos `root/videos/v<i>.mp4` and `root/metadata.csv` (rows appended for added videos)."""
    (root / "videos").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(first, first + n):
        write_test_media(
            root / "videos" / f"v{i}.mp4",
            seconds=seconds + 0.5 * i,
            fps=(15, 24, 30)[i % 3],
            audio_rate=(44100, 48000)[i % 2],
        )
        rows.append(
            dict(video_id=f"v{i}", path=f"videos/v{i}.mp4", genre=("pop", "rock")[i % 2], tags="fast;loud")
        )
    metadata = root / "metadata.csv"
    old = pd.read_csv(metadata) if metadata.exists() else pd.DataFrame()
    pd.concat([old, pd.DataFrame(rows)], ignore_index=True).to_csv(metadata, index=False)
    return metadata


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root, 4)
    return root


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "store"
    preprocess(corpus / "videos", corpus / "metadata.csv", out, progress=False, **SMALL)
    return out


def store_files(store: Path) -> dict[str, bytes]:
    """Every file of a store (temporaries included, so leftovers show), by relative path."""
    return {p.relative_to(store).as_posix(): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------
# Output facts, read back from the files
# ---------------------------------------------------------------------------------------------


def test_default_segments_are_50_frames_768x432_at_10_fps_with_80000_samples_at_16k(tmp_path):
    write_test_media(tmp_path / "videos" / "clip.mp4", seconds=11.0, fps=30, size=(256, 144))
    out = tmp_path / "store"
    manifest = preprocess(tmp_path / "videos", None, out, segments=2, progress=False)
    assert list(manifest.columns) == MANIFEST_COLUMNS and len(manifest) == 2
    for _, row in manifest.iterrows():
        assert row.end_s - row.start_s == pytest.approx(5.0)
        with av.open(str(out / row.video_path)) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 768, 432)
            assert stream.average_rate == 10 and not container.streams.audio
            times = [f.time for f in container.decode(stream)]
        assert len(times) == 50 and np.allclose(np.diff(times), 0.1)
        info = sf.info(str(out / row.audio_path))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 80000, "PCM_16")
        frames, waveform = read_segment(out, row)
        assert frames.shape == (50, 432, 768, 3) and frames.dtype == np.uint8
        assert waveform.shape == (80000,) and waveform.dtype == np.float32
        # the stored picture and sound are the source's at start_s + i / 10 and start_s + j / 16000
        assert [read_index(f) for f in frames] == [
            int(np.floor((row.start_s + i / 10) * 30 + 1e-9)) % 100 for i in range(50)
        ]
        t = row.start_s + np.arange(80000) / 16000
        settled = t > 0.6  # the AAC encoder settles over the first half second of a file
        assert np.abs(waveform - tone(t))[settled].max() < 0.01


def test_manifest_order_paths_labels_and_split(reference, corpus):
    manifest = load_manifest(reference)
    assert list(manifest.columns[: len(MANIFEST_COLUMNS)]) == MANIFEST_COLUMNS and {"genre", "tags"} <= set(
        manifest.columns
    )
    assert manifest[["video_id", "k"]].equals(
        manifest.sort_values(["video_id", "k"])[["video_id", "k"]].reset_index(drop=True)
    )
    assert manifest.groupby("video_id").size().to_dict() == {"v0": 3, "v1": 3, "v2": 3, "v3": 3}
    assert (manifest.split == manifest.video_id.map(split_of)).all()
    assert (manifest.fold == manifest.video_id.map(fold_of)).all()
    assert manifest.segment_id.is_unique and not any(Path(p).is_absolute() for p in manifest.video_path)
    absolute = load_manifest(reference, absolute_paths=True)
    assert all(Path(p).is_file() for p in list(absolute.video_path) + list(absolute.audio_path))


# ---------------------------------------------------------------------------------------------
# Robustness: every kind of bad input, generated here
# ---------------------------------------------------------------------------------------------


def test_bad_inputs_are_skipped_with_reasons_and_good_ones_kept(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    good = dict(
        landscape=write_test_media(videos / "landscape.mp4", seconds=7.0),
        portrait=write_test_media(videos / "portrait.mp4", seconds=7.0, size=(72, 128)),
        surround=write_test_media(videos / "surround.mp4", seconds=7.0, layout="5.1"),
        hz44=write_test_media(videos / "hz44.mp4", seconds=7.0, audio_rate=44100),
        hz48=write_test_media(videos / "hz48.mp4", seconds=7.0, audio_rate=48000),
        vfr=write_test_media(
            videos / "vfr.mp4",
            seconds=7.0,
            frame_times=np.round(np.cumsum(np.r_[0, np.tile([0.02, 0.05, 0.13, 0.3], 17)]), 3),
        ),
        spaced=write_test_media(videos / "a name with spaces ünïcødé 音楽.mp4", seconds=7.0),
        rotated=write_test_media(videos / "rotated.mp4", seconds=7.0, rotation=90),
        fewer=write_test_media(videos / "fewer.mp4", seconds=5.0),  # room for 2 of 3 segments
    )
    (videos / "empty.mp4").touch()
    (videos / "text.mp4").write_text("this is not a video\n")
    whole = write_test_media(tmp_path / "whole.mp4", seconds=7.0).read_bytes()
    (videos / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    write_test_media(videos / "silent.mp4", seconds=7.0, layout=None)
    write_test_media(videos / "audio_only.mp4", seconds=7.0, video=False)
    write_test_media(videos / "short.mp4", seconds=1.5)
    write_test_media(videos / "orphan.mp4", seconds=7.0)
    write_test_media(videos / "dup_a.mp4", seconds=7.0)
    write_test_media(videos / "dup_b.mp4", seconds=7.0)
    (videos / "notes.txt").write_text("not a video, ignored\n")
    rows = [
        ("ünï code" if vid == "spaced" else vid, f"videos/{p.name}") for vid, p in good.items()
    ]  # non-ASCII id
    rows += [
        (name, f"videos/{name}.mp4")
        for name in ("empty", "text", "truncated", "silent", "audio_only", "short")
    ]
    rows += [("missing", "videos/missing.mp4"), ("dup", "videos/dup_a.mp4"), ("dup", "videos/dup_b.mp4")]
    rows += [("hz48_abs", str((videos / "hz48.mp4").resolve())), ("rel_to_videos", "landscape.mp4")]
    pd.DataFrame(rows, columns=["video_id", "path"]).assign(genre="pop").to_csv(
        tmp_path / "metadata.csv", index=False
    )

    manifest = preprocess(videos, tmp_path / "metadata.csv", tmp_path / "store", progress=False, **SMALL)
    skipped = pd.read_csv(tmp_path / "store" / "skipped.csv").set_index("video_id")["reason"]

    expected_reasons = {
        "empty": "empty file",
        "text": "not a readable media file",
        "truncated": "truncated",
        "silent": "no audio stream",
        "audio_only": "no video stream",
        "short": "too short: 1.5 s",
        "missing": "file not found",
        "dup": "appears on 2 metadata rows",
        "orphan": "no row in metadata.csv",
    }
    assert sorted(skipped.index) == sorted([*expected_reasons, "dup"])  # both rows of the duplicate id
    for vid, reason in expected_reasons.items():
        assert skipped[skipped.index == vid].str.contains(reason, regex=False).all(), (vid, skipped[vid])
    assert all("\n" not in r for r in skipped)
    kept = manifest.groupby("video_id").size()
    assert kept.to_dict() == {
        **{v: 3 for v in good if v not in ("spaced", "fewer")},
        "ünï code": 3,
        "fewer": 2,
        "hz48_abs": 3,
        "rel_to_videos": 3,
    }
    frames, waveform = read_segment(tmp_path / "store", manifest.set_index("video_id").loc["vfr"].iloc[0])
    assert frames.shape == (20, 72, 128, 3) and waveform.shape == (32000,)


def test_duplicate_rows_are_kept_once_and_disagreeing_rows_skipped_naming_both(tmp_path):
    videos = tmp_path / "videos"
    for name in ("a", "b1", "b2", "c", "d"):
        write_test_media(videos / f"{name}.mp4", seconds=4.5)
    rows = [
        ("a", "videos/a.mp4", "pop", "fast"),
        ("a", "videos/a.mp4", "pop", "fast"),  # identical rows
        ("a", str((videos / "a.mp4").resolve()), "pop", "fast"),  # the same file, named another way
        ("b", "videos/b1.mp4", "rock", ""),
        ("b", "videos/b2.mp4", "rock", ""),  # one id, two files
        ("c", "videos/c.mp4", "pop", "slow"),
        ("c", "videos/c.mp4", "jazz", "slow"),  # one id, two genres
        ("d", "videos/d.mp4", "pop", ""),
        ("d", "videos/d.mp4", "pop", ""),
    ]  # identical, without tags
    pd.DataFrame(rows, columns=["video_id", "path", "genre", "tags"]).to_csv(
        tmp_path / "metadata.csv", index=False
    )
    manifest = preprocess(videos, tmp_path / "metadata.csv", tmp_path / "store", progress=False, **SMALL)
    assert sorted(set(manifest.video_id)) == ["a", "d"]
    assert (manifest.set_index("video_id").loc["a", "genre"] == "pop").all()
    skipped = pd.read_csv(tmp_path / "store" / "skipped.csv", keep_default_na=False)
    reasons = skipped.groupby("video_id")["reason"].apply(list).to_dict()
    assert reasons["a"] == ["duplicate of metadata row 2 (same id, file and labels): kept once"] * 2
    assert reasons["d"] == ["duplicate of metadata row 9 (same id, file and labels): kept once"]
    assert len(reasons["b"]) == 2 and all(
        "different files (row 5: videos/b1.mp4; row 6: videos/b2.mp4)" in r for r in reasons["b"]
    )
    assert len(reasons["c"]) == 2 and all(
        "different labels (row 7: genre=pop; row 8: genre=jazz)" in r for r in reasons["c"]
    )
    assert sorted(skipped.video_id.unique()) == [
        "a",
        "b",
        "c",
        "d",
    ]  # no orphan warnings: every file has a row


# ---------------------------------------------------------------------------------------------
# Resumable, atomic, parameter-safe, incremental
# ---------------------------------------------------------------------------------------------


def start_preprocess(corpus: Path, out: Path) -> subprocess.Popen:
    code = (
        f"from mvnb.segments import preprocess; preprocess({str(corpus / 'videos')!r}, "
        f"{str(corpus / 'metadata.csv')!r}, "
        f"{str(out)!r}, progress=False, segments=3, seconds=2.0, fps=10, size=(128, 72))"
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent)


def test_kill_9_at_any_point_then_rerun_gives_identical_outputs(corpus, reference, tmp_path):
    out = tmp_path / "store"

    def made() -> int:  # files and temporaries under segments/ so far
        return sum(1 for _ in (out / "segments").rglob("*")) if (out / "segments").exists() else 0

    kills = 0
    for new_files in (0, 1, 3, 6):  # killed after the parameters, then after 1, 3, 6 more files
        before = made()
        process = start_preprocess(corpus, out)
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            if (out / "preprocess.json").exists() and made() >= before + new_files:
                os.kill(process.pid, signal.SIGKILL)
                break
            time.sleep(0.002)
        kills += process.wait() == -signal.SIGKILL
    assert kills >= 3  # the runs really were cut short (24 segment files in all)
    preprocess(corpus / "videos", corpus / "metadata.csv", out, progress=False, **SMALL)
    assert store_files(out) == store_files(reference)


def test_rerun_does_nothing_when_all_is_done(reference, corpus):
    before = {p: p.stat().st_mtime_ns for p in reference.rglob("*") if p.is_file()}
    preprocess(corpus / "videos", corpus / "metadata.csv", reference, progress=False, **SMALL)
    after = {p: p.stat().st_mtime_ns for p in reference.rglob("*") if p.is_file()}
    unchanged = [p for p in before if before[p] == after[p]]
    assert set(before) == set(after)
    assert all(p in unchanged for p in before if p.suffix in (".mp4", ".wav", ".json"))


def test_a_changed_parameter_is_refused_not_mixed(corpus, tmp_path):
    out = tmp_path / "store"
    preprocess(corpus / "videos", corpus / "metadata.csv", out, progress=False, **SMALL)
    files = store_files(out)
    with pytest.raises(StoreParamsError, match=r"fps=10 \(now 5\).*--rebuild"):
        preprocess(corpus / "videos", corpus / "metadata.csv", out, progress=False, **{**SMALL, "fps": 5})
    assert store_files(out) == files
    manifest = preprocess(
        corpus / "videos", corpus / "metadata.csv", out, progress=False, rebuild=True, **{**SMALL, "fps": 5}
    )
    frames, _ = read_segment(out, manifest.iloc[0])
    assert len(frames) == 10


def test_added_videos_are_processed_alone_and_keep_every_split(tmp_path):
    root = tmp_path / "corpus"
    write_corpus(root, 2)
    out = tmp_path / "store"
    first = preprocess(root / "videos", root / "metadata.csv", out, progress=False, **SMALL)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "segments").rglob("*")}
    write_corpus(root, 2, first=2)
    second = preprocess(root / "videos", root / "metadata.csv", out, progress=False, **SMALL)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # old segments untouched
    assert set(second.video_id) == {"v0", "v1", "v2", "v3"}
    assert second[second.video_id.isin(["v0", "v1"])].reset_index(drop=True).equals(first)


def test_shards_then_a_plain_run_equal_an_unsharded_run(corpus, reference, tmp_path):
    out = tmp_path / "store"
    shard_videos = []
    for i in range(3):
        part = preprocess(
            corpus / "videos", corpus / "metadata.csv", out, shard=f"{i}/3", progress=False, **SMALL
        )
        shard_videos += sorted(set(part.video_id))
        assert (out / "shards" / f"manifest-{i}-of-3.csv").exists() and not (out / "manifest.csv").exists()
    assert sorted(shard_videos) == ["v0", "v1", "v2", "v3"]
    preprocess(corpus / "videos", corpus / "metadata.csv", out, progress=False, **SMALL)
    merged = {k: v for k, v in store_files(out).items() if not k.startswith("shards/")}
    assert merged == store_files(reference)


def test_without_metadata_every_video_file_is_taken_with_its_stem_as_id(tmp_path):
    write_test_media(tmp_path / "one song.mp4", seconds=4.5)
    write_test_media(tmp_path / "zwei.mp4", seconds=4.5)
    (tmp_path / "cover.jpg").write_bytes(b"\xff\xd8")
    manifest = preprocess(tmp_path, None, tmp_path / "store", progress=False, **SMALL)
    assert manifest.groupby("video_id").size().to_dict() == {"one song": 2, "zwei": 2}


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def test_cli_runs_and_refuses_a_parameter_change(corpus, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = [
        "--videos",
        str(corpus / "videos"),
        "--metadata",
        str(corpus / "metadata.csv"),
        "--out",
        str(tmp_path / "s"),
        "--segments",
        "2",
        "--seconds",
        "2",
        "--size",
        "64x36",
    ]
    assert run(parser.parse_args(argv)) == 0
    assert "4 videos, 8 segments" in capsys.readouterr().out
    assert run(parser.parse_args(argv + ["--fps", "5"])) == 2
    assert "--rebuild" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# End to end: the store that the quick-profile report's notebook 01 built
# ---------------------------------------------------------------------------------------------


def test_quick_report_store_is_complete_and_consistent(quick_report):
    from mvnb.config import profile_params
    from mvnb.segments import load_params, load_videos

    params = profile_params("quick")
    data_dir = quick_report.root / "data" / params["corpus"] / "store"
    assert (data_dir / "manifest.csv").exists(), quick_report.log[-3000:]
    manifest, videos = load_manifest(data_dir, absolute_paths=True), load_videos(data_dir)
    stored = load_params(data_dir)
    assert (stored.segments, stored.seconds, stored.fps, stored.seed) == (
        params["segments"],
        params["seconds"],
        params["fps"],
        params["corpus_seed"],
    )
    assert len(videos) == params["n_videos"] and (videos["n_segments"] == params["segments"]).all()
    assert len(manifest) == videos["n_segments"].sum() and manifest.segment_id.is_unique
    assert all(Path(p).stat().st_size > 0 for p in list(manifest.video_path) + list(manifest.audio_path))
    for name in ("preprocess_durations.png", "preprocess_segments.png", "preprocess_split_by_genre.csv"):
        assert (quick_report.root / "figures" / name).exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_that_crashes_the_decoder_is_skipped_and_the_rest_kept(tmp_path, monkeypatch, workers):
    import mvnb.segments

    real_reader = mvnb.segments.SegmentReader

    def crashing_reader(path, threads=0):  # a segfault inside FFmpeg, as a damaged file may cause
        if "crash" in Path(path).name:
            faulthandler.disable()  # no traceback dump from the dying worker
            os.kill(os.getpid(), signal.SIGSEGV)
        return real_reader(path, threads)

    monkeypatch.setattr(mvnb.segments, "SegmentReader", crashing_reader)  # inherited by forked workers
    for name in ("a", "b", "crash", "c"):
        write_test_media(tmp_path / "videos" / f"{name}.mp4", seconds=4.5)
    manifest = preprocess(
        tmp_path / "videos", None, tmp_path / "store", workers=workers, progress=False, **SMALL
    )
    assert sorted(set(manifest.video_id)) == ["a", "b", "c"]
    skipped = pd.read_csv(tmp_path / "store" / "skipped.csv")
    assert list(skipped.video_id) == ["crash"] and "decoder crashed" in skipped.reason[0]
