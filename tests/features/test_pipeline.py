"""`mvnb.features.pipeline`: a killed run resumes, and a bad segment is skipped with its reason."""

import numpy as np
import pytest

from features.tiny_store import FAST, write_store
from mvnb import features as fs
from mvnb.features import pipeline


def test_a_killed_run_resumes_and_computes_only_what_is_missing(store, tmp_path, monkeypatch):
    write_store(tmp_path, {"vid_a": 2, "vid_b": 2, "vid_c": 1})
    real, calls = pipeline._write_rows, []

    def write_then_die(*args):
        out = real(*args)
        calls.append(1)
        if len(calls) == 3:  # after audio + video of batch 1 and audio of batch 2
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(pipeline, "_write_rows", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        fs.extract_features(tmp_path, **FAST)
    monkeypatch.setattr(pipeline, "_write_rows", real)
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


def test_a_bad_segment_is_skipped_with_a_reason_and_the_rest_kept(tmp_path):
    manifest = write_store(tmp_path, {"vid_a": 2, "vid_b": 1})
    (tmp_path / manifest.loc[1, "video_path"]).write_bytes(b"not an mp4")
    summary = fs.extract_features(tmp_path, **FAST)
    assert list(summary["video"]["failed"]) == ["vid_a_01"] and summary["video"]["computed"] == 2
    assert summary["audio"]["failed"] == {} and summary["audio"]["computed"] == 3
    video, meta = fs.load_features(tmp_path, "video")
    assert list(meta["valid"]) == [True, False, True] and np.isnan(np.asarray(video[1], np.float32)).all()
    assert "vid_a_01" in meta["failed"]
