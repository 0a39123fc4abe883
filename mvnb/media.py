"""Opening and writing media containers with PyAV.

Everything that touches an mp4 goes through here. moviepy is used only to compose previews
and reels; probing, decoding and encoding are done with PyAV, which bundles FFmpeg.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import av
import numpy as np


def atomic_path(path: Path) -> Path:
    """A temporary sibling of `path`, to be renamed onto it once written completely."""
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def write_mp4(
    path: Path,
    frames: Iterable[np.ndarray],
    fps: int,
    audio: np.ndarray | None,
    sample_rate: int,
    size: tuple[int, int] | None = None,
    crf: int = 23,
) -> Path:
    """Encode an H.264 + AAC mp4 (yuv420p, faststart), written atomically.

    frames: iterable of `(height, width, 3)` uint8 RGB arrays, `fps` per second. With `size`
        `(width, height)`, each frame is scaled there by FFmpeg (cheap way to render small).
    audio: `(channels, samples)` float32 in [-1, 1] at `sample_rate`, or None for no audio.
    """
    path = Path(path)
    tmp = atomic_path(path)
    with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        vstream = None
        astream = None
        if audio is not None:
            layout = {1: "mono", 2: "stereo", 6: "5.1"}[audio.shape[0]]
            astream = out.add_stream("aac", rate=sample_rate, layout=layout)
        for frame in frames:
            if vstream is None:
                height, width = frame.shape[:2]
                width, height = size or (width, height)
                vstream = out.add_stream("libx264", rate=fps, options={"preset": "veryfast", "crf": str(crf)})
                vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
                vstream.codec_context.thread_count = 1
            vframe = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vframe = vframe.reformat(width=vstream.width, height=vstream.height, format="yuv420p")
            out.mux(vstream.encode(vframe))
        if vstream is not None:
            out.mux(vstream.encode(None))
        if astream is not None:
            _encode_audio(out, astream, audio.astype(np.float32), sample_rate)
    tmp.replace(path)
    return path


def _encode_audio(out: av.container.OutputContainer, stream, audio: np.ndarray, sample_rate: int) -> None:
    """Feed `(channels, samples)` float32 audio to an AAC stream in 1024-sample planar frames."""
    chunk = 1024
    for start in range(0, audio.shape[1], chunk):
        block = np.ascontiguousarray(audio[:, start:start + chunk])
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=stream.layout.name)
        frame.sample_rate = sample_rate
        frame.pts = start
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
