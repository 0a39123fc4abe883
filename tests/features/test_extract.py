"""`mvnb.features.extract`: the stored features are the encoders' on each view."""

import numpy as np
import pandas as pd
import torch

from mvnb import features as fs
from mvnb.encoders import musicnn, r2plus1d
from mvnb.media import read_video_frames, read_wav


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
