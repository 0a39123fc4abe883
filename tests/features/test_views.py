"""`mvnb.features.views`: views stay inside the segment, depend on (seed, segment, view) alone, and
their decoded audio and video cover the same time span."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.tiny_store import FPS, GRAY_STEP, N_SAMPLES, RATE, SAMPLES_PER_FRAME, write_store
from mvnb import features as fs
from mvnb.encoders import musicnn
from mvnb.media import read_video_frames, read_wav


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
