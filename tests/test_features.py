"""The feature store: views, audio–video alignment, incremental and resumable extraction,
mismatch detection, and the loader. Tiny segments (160×90) with time codes keep it fast."""

import functools
import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mvnb import features as fs
from mvnb.corpus import shard_of
from mvnb.encoders import musicnn, musicnn_weights, r2plus1d
from mvnb.media import read_video_frames, read_wav, write_mp4, write_wav
from mvnb.segments import PreprocessParams, load_manifest

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


@pytest.fixture(scope="module", autouse=True)
def load_encoders_once():
    """Each extraction loads its encoders; here the loaded (frozen) models are reused to save time."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(r2plus1d, "load_r2plus1d", functools.lru_cache(r2plus1d.load_r2plus1d))
        patch.setattr(musicnn, "load_musicnn", functools.lru_cache(musicnn.load_musicnn))
        yield


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """Three videos, five segments, extracted once with FAST settings."""
    root = tmp_path_factory.mktemp("store")
    write_store(root, {"vid_a": 2, "vid_b": 2, "vid_c": 1})
    fs.extract_features(root, **FAST)
    return root


# --------------------------------------------------------------------------- views


@settings(max_examples=60, deadline=None)
@given(
    views=st.integers(1, 6),
    frames=st.integers(1, 30),
    seed=st.integers(0, 2**31),
    segment=st.text(min_size=1, max_size=12),
)
def test_each_view_has_audio_and_frames_of_the_same_3_s_inside_the_segment(views, frames, seed, segment):
    spec = fs.ViewSpec(views, frames, seed=seed)
    for view in fs.segment_views(spec, segment):
        start_s = view.start_frame / FPS
        assert view.audio_start / RATE == pytest.approx(start_s)
        assert view.audio_stop - view.audio_start == musicnn.WINDOW_SAMPLES
        assert 0 <= view.audio_start and view.audio_stop <= N_SAMPLES
        window = range(view.start_frame, view.start_frame + spec.window_frames)
        assert all(i in window for i in view.frame_indices) and len(view.frame_indices) == frames
        assert list(view.frame_indices) == sorted(set(view.frame_indices))  # distinct, in time order
        x0, y0, w, h = view.box
        assert 0 <= x0 and 0 <= y0 and 0 < w and 0 < h and x0 + w <= 1 + 1e-9 and y0 + h <= 1 + 1e-9


def test_view_0_is_the_centred_window_with_the_kinetics_centre_crop_and_all_frames_at_t_30():
    spec = fs.ViewSpec(3, 30)
    view0 = fs.segment_views(spec, "x")[0]
    assert view0.start_frame == 10 and view0.frame_indices == tuple(range(10, 40))
    assert view0.box == pytest.approx((30 / 171, 8 / 128, 112 / 171, 112 / 128))


def test_views_depend_on_segment_seed_and_view_only():
    spec = fs.ViewSpec(4, 8, seed=3)
    assert fs.segment_views(spec, "a") == fs.segment_views(spec, "a")
    assert fs.segment_views(spec, "a")[1:] != fs.segment_views(spec, "b")[1:]
    assert fs.segment_views(spec, "a")[1:] != fs.segment_views(fs.ViewSpec(4, 8, seed=4), "a")[1:]
    assert (
        fs.segment_views(fs.ViewSpec(2, 8, seed=3), "a") == fs.segment_views(spec, "a")[:2]
    )  # more views add, never move


def test_decoded_audio_and_video_of_every_view_cover_the_same_time_span(tmp_path):
    """Time codes in the files: gray level → frame index, audio level → 0.1-s bin."""
    manifest = write_store(tmp_path, {"tc": 1}, time_coded=True)
    row = manifest.iloc[0]
    frames = read_video_frames(tmp_path / row["video_path"])
    waveform, _ = read_wav(tmp_path / row["audio_path"])
    spec = fs.ViewSpec(8, 10)
    views = fs.segment_views(spec, row["segment_id"])
    clips = fs.view_clips(frames, views).numpy()
    windows = fs.view_windows(waveform, views)
    for view, clip, window in zip(views, clips, windows, strict=True):
        frame_index = np.round(clip.reshape(len(clip), -1).mean(axis=1) / GRAY_STEP).astype(int)
        bins = np.round(window.reshape(-1, SAMPLES_PER_FRAME).mean(axis=1) * 100).astype(int)
        assert list(frame_index) == list(view.frame_indices)
        assert list(bins) == list(range(view.start_frame, view.start_frame + spec.window_frames))
        assert bins[0] <= frame_index.min() and frame_index.max() <= bins[-1]


# --------------------------------------------------------------------------- the store


def test_store_holds_every_segment_in_manifest_order_with_its_meta(store):
    manifest = pd.read_csv(store / "manifest.csv")
    audio, audio_meta = fs.load_features(store, "audio")
    video, video_meta = fs.load_features(store, "r2plus1d_18")
    assert audio.shape == (5, 2, 1506) and video.shape == (5, 2, 512)
    assert audio.dtype == np.float16 and audio_meta["dtype"] == "float16"
    assert audio_meta["valid"].all() and np.isfinite(np.asarray(video, dtype=np.float32)).all()
    assert video_meta["provenance"]["weights"] == "random" and video_meta["provenance"]["seed"] == 0
    assert len(video_meta["provenance"]["sha256"]) == 64 and len(audio_meta["provenance"]["sha256"]) == 64
    assert video_meta["settings"]["views"]["frames"] == 2 and audio_meta["settings"]["precision"] in (
        "fp32",
        "bf16",
    )
    assert fs.feature_keys(store) == {"audio": "musicnn", "video": "r2plus1d_18"}
    fs.check_views_aligned(audio_meta, video_meta)
    pair = fs.load_feature_pair(store)
    assert list(pair[0]["segment_id"]) == list(manifest["segment_id"])


def test_features_match_the_encoders_run_directly_on_each_view(store):
    """Row i, view v of the store = the encoder on segment i's view v (independent of batching)."""
    manifest = pd.read_csv(store / "manifest.csv")
    audio, meta = fs.load_features(store, "audio")
    video, _ = fs.load_features(store, "video")
    spec = fs.ViewSpec(2, 2)
    model = musicnn.load_musicnn("MSD_musicnn", "cpu")
    net, _ = r2plus1d.load_r2plus1d("random", seed=0, device="cpu")
    i = 3
    row = manifest.iloc[i]
    views = fs.segment_views(spec, row["segment_id"])
    waveform, _ = read_wav(store / row["audio_path"])
    expect_audio = musicnn.musicnn_features(
        model, musicnn.musicnn_patches(fs.view_windows(waveform, views)), precision="fp32"
    )
    expect_video = r2plus1d.r2plus1d_features(
        net, fs.view_clips(read_video_frames(store / row["video_path"]), views), precision="fp32"
    )
    for stored, expected in ((audio[i], expect_audio), (video[i], expect_video)):
        cos = torch.nn.functional.cosine_similarity(
            torch.as_tensor(np.asarray(stored, np.float32)), expected, dim=1
        )
        assert cos.min() > 0.999


def test_a_killed_run_resumes_and_computes_only_what_is_missing(store, tmp_path, monkeypatch):
    write_store(tmp_path, {"vid_a": 2, "vid_b": 2, "vid_c": 1})
    real, calls = fs._write_rows, []

    def write_then_die(*args):
        out = real(*args)
        calls.append(1)
        if len(calls) == 3:  # after audio + video of batch 1 and audio of batch 2
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(fs, "_write_rows", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        fs.extract_features(tmp_path, **FAST)
    monkeypatch.setattr(fs, "_write_rows", real)
    summary = fs.extract_features(tmp_path, **FAST)
    assert summary["audio"]["reused"] == 4 and summary["audio"]["computed"] == 1
    assert summary["video"]["reused"] == 2 and summary["video"]["computed"] == 3
    for modality in ("audio", "video"):
        resumed, _ = fs.load_features(tmp_path, modality)
        whole, _ = fs.load_features(store, modality)
        np.testing.assert_allclose(
            np.asarray(resumed, np.float32), np.asarray(whole, np.float32), rtol=0.02, atol=0.02
        )
    again = fs.extract_features(tmp_path, **FAST)
    assert again["audio"]["computed"] == again["video"]["computed"] == 0


def test_new_videos_are_appended_and_only_they_are_computed(store, tmp_path):
    write_store(tmp_path, {"vid_a": 2, "vid_c": 1})
    fs.extract_features(tmp_path, **FAST)
    write_store(tmp_path, {"vid_a": 2, "vid_b": 2, "vid_c": 1})  # vid_b sorts into the middle
    summary = fs.extract_features(tmp_path, **FAST)
    assert summary["video"]["computed"] == 2 and summary["video"]["reused"] == 3
    for modality in ("audio", "video"):
        grown, meta = fs.load_features(tmp_path, modality)
        whole, _ = fs.load_features(store, modality)
        assert meta["valid"].all()
        np.testing.assert_allclose(
            np.asarray(grown, np.float32), np.asarray(whole, np.float32), rtol=0.02, atol=0.02
        )
    write_store(
        tmp_path, {"vid_a": 2, "vid_b": 2, "vid_c": 1, "vid_d": 1}
    )  # appended at the end: grows in place
    summary = fs.extract_features(tmp_path, **FAST)
    assert summary["audio"]["computed"] == 1 and summary["audio"]["reused"] == 5
    assert fs.load_features(tmp_path, "video")[0].shape == (6, 2, 512)


def test_changed_settings_are_refused_and_rebuild_replaces_the_store(store, tmp_path):
    write_store(tmp_path, {"vid_a": 1})
    fs.extract_features(tmp_path, **FAST)
    with pytest.raises(fs.FeatureStoreMismatch, match="views.frames: 2 → 3"):
        fs.extract_features(tmp_path, **{**FAST, "frames": 3})
    with pytest.raises(fs.FeatureStoreMismatch, match="precision"):
        fs.extract_features(
            tmp_path,
            **{
                **FAST,
                "precision": "fp32"
                if fs.read_meta(fs.store_dir(tmp_path, "audio"))["settings"]["precision"] == "bf16"
                else "bf16",
            },
        )
    with pytest.raises(fs.FeatureStoreMismatch, match="views.seed: 0 → 1"):
        fs.extract_features(tmp_path, **{**FAST, "seed": 1})
    with pytest.raises(fs.FeatureStoreMismatch, match="weights_sha256"):
        fs.extract_features(tmp_path, **{**FAST, "seed": 1, "modalities": ("video",)})
    assert fs.load_features(tmp_path, "video")[1]["settings"]["views"]["frames"] == 2  # untouched
    summary = fs.extract_features(
        tmp_path, **{**FAST, "frames": 3, "modalities": ("video",), "rebuild": True}
    )
    assert summary["video"]["computed"] == 1
    assert fs.load_features(tmp_path, "video")[1]["settings"]["views"]["frames"] == 3
    assert fs.load_features(tmp_path, "audio")[1]["settings"]["views"]["views"] == 2  # audio store kept


def test_changed_segment_content_is_recomputed_not_mixed(tmp_path):
    manifest = write_store(tmp_path, {"vid_a": 2})
    fs.extract_features(tmp_path, **FAST)
    before, _ = fs.load_features(tmp_path, "audio")
    before = np.array(before, np.float32)
    write_wav(
        tmp_path / manifest.loc[1, "audio_path"],
        0.3 * np.sin(np.arange(N_SAMPLES) * 2 * np.pi * 990 / RATE),
        RATE,
    )
    summary = fs.extract_features(tmp_path, **FAST)
    assert summary["audio"]["computed"] == 1 and summary["video"]["computed"] == 1
    after, _ = fs.load_features(tmp_path, "audio")
    np.testing.assert_array_equal(np.asarray(after[0], np.float32), before[0])
    assert not np.allclose(np.asarray(after[1], np.float32), before[1], atol=0.05)


def test_a_bad_segment_is_skipped_with_a_reason_and_the_rest_kept(tmp_path):
    manifest = write_store(tmp_path, {"vid_a": 2, "vid_b": 1})
    (tmp_path / manifest.loc[1, "video_path"]).write_bytes(b"not an mp4")
    summary = fs.extract_features(tmp_path, **FAST)
    assert list(summary["video"]["failed"]) == ["vid_a_01"] and summary["video"]["computed"] == 2
    assert summary["audio"]["failed"] == {} and summary["audio"]["computed"] == 3
    video, meta = fs.load_features(tmp_path, "video")
    assert list(meta["valid"]) == [True, False, True] and np.isnan(np.asarray(video[1], np.float32)).all()
    assert "vid_a_01" in meta["failed"]


def test_loader_refuses_features_that_do_not_cover_the_manifest(tmp_path):
    write_store(tmp_path, {"vid_a": 1})
    with pytest.raises(FileNotFoundError, match="python -m mvnb features"):
        fs.load_features(tmp_path, "audio")
    fs.extract_features(tmp_path, **FAST)
    write_store(tmp_path, {"vid_a": 1, "vid_b": 1})
    with pytest.raises(fs.FeatureStoreStale, match="1 segments, the manifest has 2"):
        fs.load_features(tmp_path, "audio")


def test_taggram_from_stored_features_equals_musicnn_taggram():
    model = musicnn.load_musicnn("MSD_musicnn", "cpu")
    t = np.arange(musicnn.WINDOW_SAMPLES) / RATE
    windows = np.stack(
        [0.4 * np.sin(2 * np.pi * f * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2 for f in (110, 440, 1500)]
    )
    patches = musicnn.musicnn_patches(windows.astype(np.float32))
    pooled = musicnn.musicnn_features(model, patches, "pooled", precision="fp32")
    expected = musicnn.musicnn_features(model, patches, "taggram", precision="fp32")
    torch.testing.assert_close(fs.taggram_from_pooled(model, pooled), expected, rtol=1e-4, atol=1e-5)


def test_notebook_tables(store):
    provenance = fs.provenance_table(store)
    assert list(provenance["modality"]) == ["audio", "video"]
    assert "RANDOMLY INITIALISED" in provenance.set_index("modality").loc["video", "note"]
    taggram = fs.genre_taggram(store)
    assert list(taggram.index) == ["g0", "g1"] and list(taggram.columns) == musicnn_weights.MSD_LABELS
    assert ((taggram.to_numpy() > 0) & (taggram.to_numpy() < 1)).all()
    overall = fs.genre_taggram(store, by="no_such_label")  # a corpus without genres: one row for all segments
    assert list(overall.index) == ["all segments"]
    counts = load_manifest(store)["genre"].value_counts()
    np.testing.assert_allclose(
        overall.iloc[0], (taggram.T * counts[taggram.index]).sum(1) / counts.sum(), rtol=1e-5
    )
    stats = fs.feature_statistics(store).set_index("modality")
    assert stats.loc["video", "dim"] == 512 and -1 <= stats.loc["audio", "cos other view"] <= 1
    timing = fs.timing_table(store)
    assert (timing["encoder s/segment"] > 0).all()


def test_cli_extracts_then_refuses_a_changed_setting(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    fs.add_arguments(parser)
    write_store(tmp_path, {"vid_a": 1})
    base = ["--data", str(tmp_path), "--views", "1", "--video-weights", "random", "--workers", "0"]
    assert fs.run(parser.parse_args(base + ["--frames", "2"])) == 0
    assert "1 computed" in capsys.readouterr().out
    assert fs.run(parser.parse_args(base + ["--frames", "3"])) == 2
    assert "refusing to mix" in capsys.readouterr().out


def test_three_shards_then_a_plain_run_equal_an_unsharded_run(store, tmp_path):
    write_store(tmp_path, {"vid_a": 2, "vid_b": 2, "vid_c": 1})
    shards = [fs.extract_features(tmp_path, **FAST, shard=f"{i}/3") for i in range(3)]
    assert sum(s["segments"] for s in shards) == 5
    assert all(s["video"]["computed"] == s["segments"] for s in shards if s["segments"])
    empty = next(i for i in range(9) if i not in {shard_of(v, 9) for v in ("vid_a", "vid_b", "vid_c")})
    assert fs.extract_features(tmp_path, **FAST, shard=(empty, 9))["segments"] == 0
    merged = fs.extract_features(tmp_path, **FAST)
    assert merged["video"]["imported"] == merged["audio"]["imported"] == 5
    assert merged["video"]["computed"] == merged["audio"]["computed"] == 0
    for modality in ("audio", "video"):
        got, meta = fs.load_features(tmp_path, modality)
        whole, _ = fs.load_features(store, modality)
        assert meta["valid"].all() and meta["timing"]["segments"] == 5
        np.testing.assert_allclose(
            np.asarray(got, np.float32), np.asarray(whole, np.float32), rtol=0.02, atol=0.02
        )
