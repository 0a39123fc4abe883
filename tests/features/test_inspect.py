"""`mvnb.features.inspect`: the taggram from stored features, and notebook 02's tables."""

import numpy as np
import torch

from features.tiny_store import RATE
from mvnb import features as fs
from mvnb.encoders import musicnn, musicnn_weights
from mvnb.segments import load_manifest


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
