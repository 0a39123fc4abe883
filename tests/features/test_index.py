"""`mvnb.features.index`: a segment whose files changed is recomputed, not mixed."""

import numpy as np

from features.tiny_store import FAST, N_SAMPLES, RATE, write_store
from mvnb import features as fs
from mvnb.media import write_wav


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
