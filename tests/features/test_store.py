"""`mvnb.features.store`: every segment in manifest order with its meta, growth by appending,
refusal of other settings, the loader's checks, and the merge of shards."""

import numpy as np
import pandas as pd
import pytest

from features.tiny_store import FAST, write_store
from mvnb import features as fs
from mvnb.corpus import shard_of


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
                if fs.read_meta(fs.feature_dir(tmp_path, "audio"))["settings"]["precision"] == "bf16"
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


def test_loader_refuses_features_that_do_not_cover_the_manifest(tmp_path):
    write_store(tmp_path, {"vid_a": 1})
    with pytest.raises(FileNotFoundError, match="python -m mvnb features"):
        fs.load_features(tmp_path, "audio")
    fs.extract_features(tmp_path, **FAST)
    write_store(tmp_path, {"vid_a": 1, "vid_b": 1})
    with pytest.raises(fs.FeatureStoreStale, match="1 segments, the manifest has 2"):
        fs.load_features(tmp_path, "audio")


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
