"""Opening and writing media containers with PyAV.

Everything that touches an mp4 goes through here. moviepy is used only to compose previews
and reels; probing, decoding and encoding are done with PyAV, which bundles FFmpeg.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf
from av.video.reformatter import VideoReformatter

from .io import atomic_write

_SCALER = VideoReformatter()  # this process's one swscale context (see `reformat`)


def open_media(path: Path | str, mode: str = "r", **options) -> av.container.Container:
    """`av.open`, with FFmpeg's log kept out of Python first.

    Importing torchvision routes FFmpeg's log through a Python callback that takes the GIL from
    FFmpeg's own threads (decoder frame threads, x264's workers). If one of them logs an error
    while the main thread, holding the GIL, waits for it (closing a threaded decoder mid-stream),
    the process hangs for good (PyAV issues 751 and 1849). Our errors carry their own reasons,
    so nothing a user needs is lost.
    """
    av.logging.set_level(None)
    return av.open(str(path), mode=mode, **options)


def reformat(
    frame: av.VideoFrame,
    width: int | None = None,
    height: int | None = None,
    format: str | None = None,
    interpolation: str | None = None,
) -> av.VideoFrame:
    """`frame.reformat(...)` through one cached swscale context, on one thread; the same bytes.

    PyAV's `frame.reformat` and `frame.to_ndarray(format=...)` build a scaling context, and a
    thread pool for it, for every new frame: 0.35 ms for the renderer's 48x26 frame against 0.016
    ms here, 4-16x elsewhere in the pipeline (benchmarks/bench_media.py). The context is rebuilt
    only when a shape or format changes. Not for use from several threads at once (mvnb's
    parallelism is processes).
    """
    return _SCALER.reformat(frame, width, height, format, interpolation=interpolation, threads=1)


def to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """`(height, width, 3)` uint8 RGB of a decoded frame, converted by `reformat`."""
    return reformat(frame, format="rgb24").to_ndarray()


def write_mp4(
    path: Path,
    frames: Iterable[np.ndarray],
    fps: int,
    audio: np.ndarray | Path | None,
    sample_rate: int,
    size: tuple[int, int] | None = None,
    crf: int = 23,
    preset: str = "veryfast",
) -> Path:
    """Encode an H.264 + AAC mp4 (yuv420p, faststart), written atomically.

    frames: iterable of `(height, width, 3)` uint8 RGB arrays (or `av.VideoFrame`s), `fps` per
        second. With `size` `(width, height)`, each frame is scaled there by FFmpeg (cheap way
        to render small). `preset` is x264's speed/size trade-off; one encoder thread keeps
        the bytes the same on every machine.
    audio: `(channels, samples)` float32 in [-1, 1] at `sample_rate`, encoded as AAC; or the
        path of an mp4 whose audio stream is copied packet for packet (no re-encoding, so the
        audio stays byte-identical); or None for no audio.
    """
    path = Path(path)
    with (
        atomic_write(path) as tmp,
        open_media(tmp, "w", format="mp4", options={"movflags": "+faststart"}) as out,
        contextlib.ExitStack() as sources,
    ):
        vstream = None
        astream = None
        if isinstance(audio, (str, Path)):
            source = sources.enter_context(open_media(audio))
            astream = out.add_stream_from_template(source.streams.audio[0])
        elif audio is not None:
            layout = {1: "mono", 2: "stereo", 6: "5.1"}[audio.shape[0]]
            astream = out.add_stream("aac", rate=sample_rate, layout=layout)
        for index, frame in enumerate(frames):
            if not isinstance(frame, av.VideoFrame):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            if vstream is None:
                width, height = size or (frame.width, frame.height)
                vstream = out.add_stream("libx264", rate=fps, options={"preset": preset, "crf": str(crf)})
                vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
                vstream.codec_context.thread_count = 1
            vframe = reformat(frame, vstream.width, vstream.height, "yuv420p", interpolation="BILINEAR")
            vframe.pts, vframe.time_base = index, 1 / Fraction(fps)
            out.mux(vstream.encode(vframe))
        if vstream is not None:
            out.mux(vstream.encode(None))
        if isinstance(audio, (str, Path)):
            for packet in source.demux(source.streams.audio[0]):
                if packet.dts is not None:
                    packet.stream = astream
                    out.mux(packet)
        elif astream is not None:
            _encode_audio(out, astream, audio.astype(np.float32), sample_rate)
    return path


def _encode_audio(out: av.container.OutputContainer, stream, audio: np.ndarray, sample_rate: int) -> None:
    """Feed `(channels, samples)` float32 audio to an AAC stream in 1024-sample planar frames."""
    chunk = 1024
    for start in range(0, audio.shape[1], chunk):
        block = np.ascontiguousarray(audio[:, start : start + chunk])
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=stream.layout.name)
        frame.sample_rate = sample_rate
        frame.pts = start
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


# ---------------------------------------------------------------------------------------------
# Probing and decoding just the parts of a file that a segment needs.
# ---------------------------------------------------------------------------------------------

AUDIO_PREROLL_S = 0.2  # decoded before a window so the AAC/MP3 decoder has settled
AUDIO_MARGIN_S = 0.05  # context kept around a window for the resampling filter
_EPS = 1e-6


class MediaError(Exception):
    """A media file that cannot be used; the message is a one-line reason a person can act on."""


@dataclass(frozen=True)
class MediaInfo:
    """What a segment extractor needs to know about a file.

    Times are in seconds on the file's own clock: `origin_s` is where the video stream starts and
    segment time t sits at `origin_s + t`. `duration_s` is the span from `origin_s` that both
    the video and the audio stream cover. `rotation` is the display rotation in degrees
    counter-clockwise (multiples of 90); `display_size` is `(width, height)` as shown, after
    the pixel aspect ratio and the rotation.
    """

    duration_s: float
    origin_s: float
    coded_size: tuple[int, int]
    display_size: tuple[int, int]
    rotation: int
    sample_aspect: float
    fps: float
    audio_rate: int
    audio_channels: int
    audio_layout: str


def _detail(error: Exception) -> str:
    """FFmpeg's own words for an error, on one line and without the file name."""
    return (getattr(error, "strerror", None) or str(error)).splitlines()[0]


def _open_reason(path: Path, error: Exception) -> str:
    """The one-line reason for a file FFmpeg refuses to open."""
    with open(path, "rb") as f:
        head = f.read(12)
    if head[4:8] == b"ftyp":  # an mp4/mov whose index (moov box, written last) never arrived
        return "truncated or unfinished mp4/mov (its index is missing); re-download or re-export it"
    return f"not a readable media file (FFmpeg: {_detail(error)}); check that it is a video and not damaged"


def _stream_span(stream) -> tuple[float, float | None]:
    """`(start_s, end_s)` of a stream from its header; end is None when the header doesn't say."""
    tb = float(stream.time_base)
    start = (stream.start_time or 0) * tb
    end = start + stream.duration * tb if stream.duration else None
    return start, end


def _indexed_end_s(stream, file_bytes: int) -> float | None:
    """For a container with a full index (mp4, mov), the time where the file's data runs out,
    or None when every indexed packet is inside the file (or there is no index)."""
    entries = stream.index_entries
    if len(entries) == 0 or max(e.pos + e.size for e in entries) <= file_bytes:
        return None
    present = [e.timestamp for e in entries if e.pos + e.size <= file_bytes]
    return (max(present) - (stream.start_time or 0)) * float(stream.time_base) if present else 0.0


def _demuxed_end_s(container, stream) -> float:
    """The end of a stream found by reading its packets (for containers without durations)."""
    tb = float(stream.time_base)
    end = 0.0
    container.seek(stream.start_time or 0, stream=stream)
    for packet in container.demux(stream):
        if packet.pts is not None:
            end = max(end, (packet.pts + (packet.duration or 0)) * tb)
    return end


class SegmentReader:
    """An open media file from which segments are read by seeking, decoding only what they need.

    Use as a context manager. Raises MediaError with a one-line reason for a file that can't be
    used: empty, unreadable, truncated, without a video or an audio stream.
    """

    def __init__(self, path: Path, threads: int = 0):
        self.path = Path(path)
        if not self.path.is_file():
            raise MediaError(f"file not found: {self.path}")
        file_bytes = self.path.stat().st_size
        if file_bytes == 0:
            raise MediaError("empty file (0 bytes); re-download or remove it")
        try:
            self.container = open_media(self.path, metadata_errors="ignore")
        except (av.error.FFmpegError, UnicodeDecodeError) as error:
            raise MediaError(_open_reason(self.path, error)) from None
        self._audio_container = None  # a second demuxer, so audio seeks leave the video decoder running
        # (last frame used, next frame, decoder) where the previous segment's video stopped
        self._resume = None
        try:
            self.info = self._probe(file_bytes, threads)
        except BaseException:
            self.container.close()
            raise

    def __enter__(self) -> SegmentReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()
        if self._audio_container is not None:
            self._audio_container.close()

    def _probe(self, file_bytes: int, threads: int) -> MediaInfo:
        c = self.container
        if not c.streams.video:
            raise MediaError(
                "no video stream (an audio-only file?); music videos need both picture and sound"
            )
        if not c.streams.audio:
            raise MediaError("no audio stream (a silent video?); music videos need both picture and sound")
        self.vstream, self.astream = c.streams.video[0], c.streams.audio[0]
        for stream in (self.vstream, self.astream):
            if stream.codec_context is None:
                raise MediaError(
                    f"{stream.type} stream has no decoder: the file is damaged or uses a codec FFmpeg lacks"
                )
        self.vstream.codec_context.thread_type = "AUTO"
        self.vstream.codec_context.thread_count = threads
        first = self._first_video_frame()
        origin, vend = _stream_span(self.vstream)
        _, aend = _stream_span(self.astream)
        container_end = c.duration / av.time_base + (c.start_time or 0) / av.time_base if c.duration else None
        vend = vend or container_end or _demuxed_end_s(c, self.vstream)
        aend = aend or container_end or _demuxed_end_s(c, self.astream)
        for stream, name in ((self.vstream, "video"), (self.astream, "audio")):
            cut = _indexed_end_s(stream, file_bytes)
            if cut is not None:
                raise MediaError(
                    f"truncated file: its {name} data stops at {cut:.1f} s of "
                    f"{min(vend, aend) - origin:.1f} s; re-download it"
                )
        sar = float(self.vstream.sample_aspect_ratio or 1) or 1.0
        rotation = int(round(first.rotation / 90.0)) * 90 % 360
        width, height = round(first.width * sar), first.height
        if rotation in (90, 270):
            width, height = height, width
        return MediaInfo(
            duration_s=max(0.0, min(vend, aend) - origin),
            origin_s=origin,
            coded_size=(first.width, first.height),
            display_size=(width, height),
            rotation=rotation,
            sample_aspect=sar,
            fps=float(self.vstream.average_rate or self.vstream.guessed_rate or 0),
            audio_rate=self.astream.rate,
            audio_channels=self.astream.layout.nb_channels,
            audio_layout=self.astream.layout.name,
        )

    def _first_video_frame(self) -> av.VideoFrame:
        """Decode the first video frame, proving the stream decodes (and giving its rotation)."""
        try:
            for frame in self.container.decode(self.vstream):
                return frame
        except av.error.FFmpegError as error:
            raise MediaError(
                f"video stream does not decode (FFmpeg: {_detail(error)}); the file is damaged"
            ) from None
        raise MediaError("video stream has no frames; the file is damaged or unfinished")

    def _decode(self, container, stream, seek_s: float):
        """Yield decoded frames of `stream` (of `container`) from the last keyframe at or before `seek_s`."""
        tb = float(stream.time_base)
        floor = stream.start_time or 0
        reached = seek_s
        try:
            container.seek(max(floor, int(math.floor(seek_s / tb))), stream=stream, backward=True)
            for packet in container.demux(stream):
                for frame in packet.decode():
                    reached = frame.time if frame.time is not None else reached
                    yield frame
        except av.error.FFmpegError as error:
            raise MediaError(
                f"truncated or corrupt: {stream.type} stops decoding at {reached - self.info.origin_s:.1f} s "
                f"(FFmpeg: {_detail(error)}); re-download the file"
            ) from None

    def frames(self, start_s: float, n_frames: int, fps: float, size: tuple[int, int]) -> np.ndarray:
        """`(n_frames, height, width, 3)` uint8 RGB: `video_frames` as an array."""
        return np.stack([to_rgb(f) for f in self.video_frames(start_s, n_frames, fps, size)])

    def video_frames(
        self, start_s: float, n_frames: int, fps: float, size: tuple[int, int]
    ) -> list[av.VideoFrame]:
        """`n_frames` yuv420p frames of `size = (width, height)`: those shown at `start_s + i / fps`.

        Each output frame is the source frame on screen at that instant (the last one whose
        timestamp is not later), so variable frame rates resample correctly. The frame is
        rotated upright, scaled to cover `size` and centre-cropped (`fit_frame`).
        """
        targets = self.info.origin_s + start_s + np.arange(n_frames) / fps
        return [
            fit_frame(f, size, self.info.rotation, self.info.sample_aspect)
            for f in self._pick_frames(targets)
        ]

    def _keyframe_before(self, t: float) -> float:
        """Time of the last video keyframe at or before `t`, from the container's index (without
        an index, `t - 5`: a guess that makes a decoder less than 5 s behind keep going)."""
        entries, tb = self.vstream.index_entries, self.vstream.time_base
        if len(entries) == 0:
            return t - 5.0
        i = entries.search_timestamp(int(math.floor(t / float(tb))), backward=True)
        return float(entries[i].timestamp * tb) if i >= 0 else -math.inf

    def _pick_frames(self, targets: np.ndarray, seek_s: float | None = None) -> list[av.VideoFrame]:
        """The decoded frame on screen at each target time (ascending times).

        Decoding goes on from where the previous call stopped when no keyframe lies in between
        (a seek would decode no less); otherwise it seeks to the keyframe before `targets[0]`
        (or before `seek_s`). A seek that lands after the first target is redone from the start.
        """
        previous = None
        if (
            seek_s is None
            and self._resume is not None
            and self._resume[0].time <= targets[0] + _EPS
            and self._keyframe_before(targets[0]) <= self._resume[0].time + _EPS
        ):
            previous, following, decoder = self._resume
            frames = itertools.chain([following], decoder)
        else:
            seek_s = targets[0] if seek_s is None else seek_s
            frames = decoder = self._decode(self.container, self.vstream, seek_s)
        self._resume = None
        picked: list[av.VideoFrame] = []
        for frame in frames:
            if frame.time is None:
                raise MediaError(
                    "video frames carry no timestamps; remux the file (e.g. ffmpeg -i in -c copy out.mp4)"
                )
            while len(picked) < len(targets) and frame.time > targets[len(picked)] + _EPS:
                if previous is None:
                    if seek_s > self.info.origin_s + _EPS:
                        return self._pick_frames(targets, seek_s=self.info.origin_s)
                    previous = frame  # before the very first frame: show the first one
                picked.append(previous)
            if len(picked) == len(targets):
                self._resume = (previous, frame, decoder)
                return picked
            previous = frame
        if previous is None:
            raise MediaError(
                f"no video frames after {targets[0] - self.info.origin_s:.1f} s; the file is truncated or "
                f"damaged"
            )
        last = previous.time + 1.0 / max(self.info.fps, 1.0)
        if targets[-1] > last + 1.0:
            raise MediaError(
                f"truncated or corrupt: video stops at {previous.time - self.info.origin_s:.1f} s "
                f"of {self.info.duration_s:.1f} s; re-download the file"
            )
        return picked + [previous] * (len(targets) - len(picked))

    def waveform(self, start_s: float, n_samples: int, sample_rate: int) -> np.ndarray:
        """`(n_samples,)` float32 mono at `sample_rate`: the audio from `start_s` on.

        Channels are averaged (without the LFE channel of a surround mix), then resampled with
        a polyphase filter. The first decoded block is placed by its timestamp, the sub-sample
        remainder of that placement undone by a band-limited fractional delay, and the blocks
        after it follow sample for sample unless their timestamps show a gap. Output sample j
        is thus the sound at `start_s + j / sample_rate`, to the precision of the container's
        timestamps (exact in mp4/mov, whose audio timestamps count samples; within about a
        millisecond in Matroska/WebM, which rounds them to ms). Parts the stream doesn't cover
        are silent.
        """
        rate = self.info.audio_rate
        window0 = self.info.origin_s + start_s - AUDIO_MARGIN_S
        span = int(math.ceil((n_samples / sample_rate + 2 * AUDIO_MARGIN_S) * rate))
        mono = np.zeros(span, np.float32)
        covered, anchor, following = 0, None, None
        if self._audio_container is None:
            self._audio_container = open_media(self.path, metadata_errors="ignore")
        container = self._audio_container
        for frame in self._decode(container, container.streams.audio[0], window0 - AUDIO_PREROLL_S):
            if frame.pts is None:
                raise MediaError(
                    "audio frames carry no timestamps; remux the file (e.g. ffmpeg -i in -c copy out.mp4)"
                )
            position = (frame.time - window0) * rate  # where the block's first sample belongs
            if anchor is None:  # the first block fixes the sub-sample phase
                anchor = position - round(position)
            # blocks follow each other sample for sample unless their timestamps (which may be
            # rounded, e.g. to ms in Matroska) show a real gap or overlap
            slack = max(2.0, 2.0 * rate * float(frame.time_base))
            offset = (
                following
                if following is not None and abs(position - following) <= slack
                else int(round(position))
            )
            following = offset + frame.samples
            if offset >= span:
                break
            block = downmix(frame)
            lo, hi = max(0, offset), min(span, offset + len(block))
            if hi > lo:
                mono[lo:hi] = block[lo - offset : hi - offset]
                covered = max(covered, hi)
        missing_s = (span - covered) / rate - 2 * AUDIO_MARGIN_S
        if missing_s > 0.5:
            raise MediaError(
                f"truncated or corrupt: audio stops {missing_s:.1f} s before the end of a segment at "
                f"{start_s:.1f} s; re-download the file"
            )
        # mono[i] is the sound at window0 + (i + phase) / rate: undo the phase, then cut the margin
        phase = anchor or 0.0
        resampled = fractional_advance(resample(mono, rate, sample_rate), -phase * sample_rate / rate)
        return resampled[round(AUDIO_MARGIN_S * sample_rate) :][:n_samples]


def fractional_advance(signal: np.ndarray, delay: float) -> np.ndarray:
    """`(samples,)` float32: `signal[n + delay]` for a fractional `delay` (in samples), by an
    exact phase ramp in the frequency domain (edges wrap around: keep a margin)."""
    if abs(delay) < 1e-6:
        return signal
    spectrum = np.fft.rfft(signal.astype(np.float64))
    ramp = np.exp(2j * np.pi * np.fft.rfftfreq(len(signal)) * delay)
    return np.fft.irfft(spectrum * ramp, len(signal)).astype(np.float32)


def downmix(frame: av.AudioFrame) -> np.ndarray:
    """`(samples,)` float32 mono from a decoded audio frame of any sample format and layout.

    Mono and stereo are averaged as they are; a surround mix is averaged without its LFE
    channel, which carries no music the encoders could use.
    """
    data = frame.to_ndarray()
    channels = frame.layout.nb_channels
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    if data.dtype == np.uint8:  # unsigned 8-bit is centred on 128
        data = (data.astype(np.float32) - 128.0) / 128.0
    elif data.dtype.kind == "i":
        data = data.astype(np.float32) / (np.iinfo(data.dtype).max + 1.0)
    names = [ch.name for ch in frame.layout.channels]
    keep = [i for i, name in enumerate(names) if name != "LFE"] if channels > 2 else list(range(channels))
    return data[keep].astype(np.float32).mean(axis=0)


def resample(signal: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """`(samples_out,)` float32: `signal` `(samples_in,)` at `rate_in` resampled to `rate_out`
    with a polyphase FIR (sample 0 stays at time 0)."""
    if rate_in == rate_out:
        return signal.astype(np.float32)
    from scipy.signal import resample_poly  # imported here: scipy.signal takes seconds to import

    g = math.gcd(rate_in, rate_out)
    return resample_poly(signal, rate_out // g, rate_in // g).astype(np.float32)


def fit_frame(
    frame: av.VideoFrame, size: tuple[int, int], rotation: int = 0, sample_aspect: float = 1.0
) -> av.VideoFrame:
    """A yuv420p frame of `size = (width, height)`: `frame` turned upright, scaled to cover
    `size` and centre-cropped.

    `rotation` is counter-clockwise degrees (multiples of 90). The scale keeps the displayed
    aspect ratio (pixel aspect included) and makes the frame at least as large as `size` in
    both directions; the excess of the longer side is cut equally from both ends (rounded up
    to a multiple of 4 pixels so the crop falls on whole chroma samples). A portrait 1080×1920
    frame for 768×432 thus keeps its middle 1080×608 band. Scaling is FFmpeg's area-averaging
    swscale; sizes must be even.
    """
    width, height = size
    if rotation:
        upright = np.ascontiguousarray(np.rot90(to_rgb(frame), k=rotation // 90))
        frame = av.VideoFrame.from_ndarray(upright, format="rgb24")
        sample_aspect = 1.0 / sample_aspect if rotation % 180 else sample_aspect
    shown_w, shown_h = frame.width * sample_aspect, frame.height
    scale = max(width / shown_w, height / shown_h)
    scaled_w = width + 4 * math.ceil(max(0, round(shown_w * scale) - width) / 4)
    scaled_h = height + 4 * math.ceil(max(0, round(shown_h * scale) - height) / 4)
    scaled = reformat(frame, scaled_w, scaled_h, "yuv420p", interpolation="AREA")
    if (scaled_w, scaled_h) == (width, height):
        return scaled
    return _crop_yuv420p(scaled, (scaled_w - width) // 2, (scaled_h - height) // 2, width, height)


def _crop_yuv420p(frame: av.VideoFrame, x0: int, y0: int, width: int, height: int) -> av.VideoFrame:
    """A new yuv420p frame: the `width`×`height` window of `frame` at even `(x0, y0)`."""
    w, h = frame.width, frame.height
    flat = frame.to_ndarray().reshape(-1)  # Y (h, w), then U and V (h/2, w/2) each
    luma = flat[: h * w].reshape(h, w)
    u, v = (
        flat[h * w + i * (h // 2) * (w // 2) :][: (h // 2) * (w // 2)].reshape(h // 2, w // 2) for i in (0, 1)
    )
    cx, cy, cw, ch = x0 // 2, y0 // 2, width // 2, height // 2
    planes = [
        luma[y0 : y0 + height, x0 : x0 + width],
        u[cy : cy + ch, cx : cx + cw],
        v[cy : cy + ch, cx : cx + cw],
    ]
    packed = np.concatenate([p.reshape(-1) for p in planes]).reshape(-1, width)
    return av.VideoFrame.from_ndarray(packed, format="yuv420p")


# ---------------------------------------------------------------------------------------------
# Reading the stored segments back, and muxing small previews.
# ---------------------------------------------------------------------------------------------


def read_video_frames(path: Path) -> np.ndarray:
    """`(frames, height, width, 3)` uint8 RGB: every frame of a (short) video file."""
    with open_media(path) as container:
        return np.stack([to_rgb(f) for f in container.decode(video=0)])


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """`((samples,) float32 mono in [-1, 1], sample_rate)` of a wav file (channels averaged)."""
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return data.mean(axis=1), rate


def write_wav(path: Path, waveform: np.ndarray, sample_rate: int) -> Path:
    """Write `(samples,)` float mono as 16-bit PCM wav, atomically (clipped to [-1, 1])."""
    path = Path(path)
    with atomic_write(path) as tmp:
        sf.write(str(tmp), np.clip(waveform, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    return path


def mux_preview(video_mp4: Path, wav: Path, out_mp4: Path, size: tuple[int, int] = (320, 180)) -> Path:
    """A small playable clip of a stored segment: its frames scaled to `size = (width, height)`
    with its wav as AAC (H.264 yuv420p, faststart), written atomically. Returns `out_mp4`."""
    frames = read_video_frames(video_mp4)
    with open_media(video_mp4) as container:
        fps = container.streams.video[0].average_rate
    waveform, rate = read_wav(wav)
    Path(out_mp4).parent.mkdir(parents=True, exist_ok=True)
    return write_mp4(Path(out_mp4), frames, fps, waveform[None, :], rate, size=size)
