"""Looking at the data: embedded video players, preview clips and overview figures.

Players embed small H.264/AAC previews as data URIs, so an executed notebook plays offline
in JupyterLab and in exported HTML. They have controls, start muted and preload only
metadata. Previews are composed with moviepy and cached next to the data they show.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .media import SegmentReader, atomic_path


def preview_clip(src: str | Path, dst: str | Path, start_s: float = 0.0, seconds: float = 8.0,
                 size: tuple[int, int] = (320, 180)) -> Path:
    """A small H.264 (yuv420p, faststart) + AAC excerpt of `src`, cached at `dst`."""
    from moviepy import VideoFileClip

    dst = Path(dst)
    if dst.exists():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(dst)
    with VideoFileClip(str(src)) as clip:
        part = clip.subclipped(start_s, min(clip.duration, start_s + seconds)).resized(new_size=size)
        part.write_videofile(str(tmp), codec="libx264", audio_codec="aac", preset="veryfast", logger=None,
                             ffmpeg_params=["-pix_fmt", "yuv420p", "-movflags", "+faststart"])
    tmp.replace(dst)
    return dst


def video_player(path: str | Path, caption: str = "", width: int = 320) -> str:
    """HTML of a muted `<video>` with controls, embedding the mp4 at `path` as a data URI."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    label = f"<figcaption style='font-size:11px'>{html.escape(caption)}</figcaption>" if caption else ""
    return (f"<figure style='display:inline-block;margin:4px;width:{width}px;vertical-align:top'>"
            f"<video controls muted preload='metadata' width='{width}' src='data:video/mp4;base64,{data}'></video>"
            f"{label}</figure>")


def label_distribution(metadata: pd.DataFrame) -> plt.Figure:
    """Bar charts of videos per genre and per tag (tags are `;`-separated)."""
    tags = metadata["tags"].fillna("").str.split(";").explode()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), constrained_layout=True)
    metadata["genre"].value_counts().sort_index().plot.bar(ax=axes[0], color="tab:blue")
    tags[tags != ""].value_counts().plot.bar(ax=axes[1], color="tab:orange")
    axes[0].set(title="videos per genre", ylabel="videos")
    axes[1].set(title="videos per tag", ylabel="videos")
    return fig


def corpus_gallery(corpus_dir: str | Path, metadata: pd.DataFrame, n_frames: int = 4,
                   seconds: float = 8.0) -> plt.Figure:
    """One row per genre: the spectrogram of a video's first seconds, then frames from them."""
    first = metadata.groupby("genre", sort=True).head(1)
    fig, axes = plt.subplots(len(first), n_frames + 1, figsize=(2.2 * (n_frames + 2), 1.5 * len(first)),
                             gridspec_kw=dict(width_ratios=[2] + [1] * n_frames), constrained_layout=True, squeeze=False)
    for row, (_, video) in zip(axes, first.iterrows()):
        with SegmentReader(Path(corpus_dir) / video["path"]) as reader:
            audio = reader.waveform(0.0, int(seconds * 16000), 16000)
            frames = reader.frames(0.5, n_frames, n_frames / (seconds - 1.0), (256, 144))
        row[0].specgram(audio, NFFT=512, Fs=16000, noverlap=256, cmap="magma")
        row[0].set_ylabel(video["genre"], rotation=0, ha="right", fontsize=9)
        row[0].set(xticks=[], yticks=[])
        for ax, frame in zip(row[1:], frames):
            ax.imshow(frame)
            ax.set_axis_off()
    axes[0, 0].set_title(f"spectrogram, first {seconds:.0f} s, 0-8 kHz", fontsize=9)
    return fig
