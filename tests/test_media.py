"""mvnb.media: probing, seeking decoders, frame fitting and previews, against independent references.

`write_test_media` (imported by test_segments too) writes small files with exactly known
content: frame i shows its index as two grey levels, and every non-LFE audio channel carries
the same two tones (the LFE a 60 Hz hum that must not reach the mono mix).
"""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mvnb.media import (
    MediaError,
    SegmentReader,
    fit_frame,
    mux_preview,
    read_video_frames,
    read_wav,
    reformat,
    to_rgb,
    write_mp4,
    write_wav,
)

LEVELS = 16 + 22 * np.arange(10)  # grey level of digit d


def tone(t: np.ndarray) -> np.ndarray:
    """The music of every test file: `(samples,)` float32 at times `t` (s)."""
    return (0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.2 * np.sin(2 * np.pi * 1234.5 * t)).astype(np.float32)


def index_frame(i: int, size: tuple[int, int]) -> np.ndarray:
    """`(height, width, 3)` uint8: left half shows digit i % 10, right half (i // 10) % 10."""
    width, height = size
    frame = np.empty((height, width, 3), np.uint8)
    frame[:, : width // 2] = LEVELS[i % 10]
    frame[:, width // 2 :] = LEVELS[(i // 10) % 10]
    return frame


def read_index(frame: np.ndarray) -> int:
    """The index (mod 100) shown by a `(height, width, 3)` frame made by `index_frame`."""
    height, width = frame.shape[:2]
    ones = frame[height // 4 : 3 * height // 4, width // 8 : 3 * width // 8].mean()
    tens = frame[height // 4 : 3 * height // 4, 5 * width // 8 : 7 * width // 8].mean()
    return int(np.argmin(abs(LEVELS - ones))) + 10 * int(np.argmin(abs(LEVELS - tens)))


def write_test_media(
    path: Path,
    seconds: float = 6.0,
    fps: float = 25,
    size: tuple[int, int] = (128, 72),
    frame_times: np.ndarray | None = None,
    frame_fn=index_frame,
    audio_rate: int = 48000,
    layout: str | None = "stereo",
    video: bool = True,
    rotation: int = 0,
    container: str = "mp4",
) -> Path:
    """Write an H.264/AAC mp4 with known content; returns `path`.

    frame_times: presentation times (s) of the frames (variable frame rate); default `i / fps`.
    layout: audio channel layout ("mono", "stereo", "5.1") or None for no audio stream.
    rotation: display rotation (degrees counter-clockwise) stored in the container.
    container: FFmpeg's name of the container format ("mp4", "matroska", ...).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if frame_times is None:
        frame_times = np.arange(int(round(seconds * fps))) / fps
    with av.open(str(path), "w", format=container) as out:
        vstream = astream = None  # both streams exist before the first packet is muxed
        if video:
            vstream = out.add_stream("libx264", rate=int(fps), options={"crf": "12", "preset": "ultrafast"})
            vstream.width, vstream.height, vstream.pix_fmt = size[0], size[1], "yuv420p"
            vstream.codec_context.time_base = Fraction(1, 1000)
            if rotation:
                vstream.set_display_rotation(rotation)
        if layout is not None:
            astream = out.add_stream("aac", rate=audio_rate, layout=layout)
        if vstream is not None:
            for i, t in enumerate(frame_times):
                frame = av.VideoFrame.from_ndarray(frame_fn(i, size), format="rgb24").reformat(
                    format="yuv420p"
                )
                frame.pts, frame.time_base = int(round(t * 1000)), Fraction(1, 1000)
                out.mux(vstream.encode(frame))
            out.mux(vstream.encode(None))
        if astream is not None:
            names = [c.name for c in av.AudioLayout(layout).channels]
            t = np.arange(int(seconds * audio_rate)) / audio_rate
            music, hum = tone(t), (0.5 * np.sin(2 * np.pi * 60.0 * t)).astype(np.float32)
            audio = np.stack([hum if name == "LFE" else music for name in names])
            for start in range(0, audio.shape[1], 1024):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(audio[:, start : start + 1024]), format="fltp", layout=layout
                )
                frame.sample_rate, frame.pts = audio_rate, start
                out.mux(astream.encode(frame))
            out.mux(astream.encode(None))
    return path


@pytest.mark.parametrize("fps", [15, 24, 30, 60])
def test_frames_are_the_ones_on_screen_at_10_fps(tmp_path, fps):
    path = write_test_media(tmp_path / "cfr.mp4", seconds=8.0, fps=fps)
    with SegmentReader(path) as reader:
        frames = reader.frames(1.23, 50, 10, (128, 72))
    expected = [int(np.floor((1.23 + i / 10) * fps + 1e-9)) % 100 for i in range(50)]
    assert frames.shape == (50, 72, 128, 3)
    assert [read_index(f) for f in frames] == expected


def test_variable_frame_rate_picks_the_frame_on_screen(tmp_path):
    rng = np.random.default_rng(0)
    times = np.cumsum(np.r_[0, rng.choice([1 / 60, 1 / 30, 0.07, 0.15, 0.3], 120)])
    times = np.round(times * 1000) / 1000
    path = write_test_media(tmp_path / "vfr.mp4", seconds=float(times[-1]), frame_times=times)
    start = 2.0
    with SegmentReader(path) as reader:
        frames = reader.frames(start, 50, 10, (128, 72))
    on_screen = [
        int(np.searchsorted(times, start + i / 10 + 1e-9, side="right") - 1) % 100 for i in range(50)
    ]
    assert [read_index(f) for f in frames] == on_screen


@pytest.mark.parametrize(
    "rate,layout,aac_error",
    [(44100, "stereo", 0.005), (48000, "stereo", 0.005), (48000, "5.1", 0.03), (22050, "mono", 0.005)],
)
def test_waveform_is_the_music_at_16k_aligned_to_the_sample(tmp_path, rate, layout, aac_error):
    path = write_test_media(tmp_path / "a.mp4", seconds=8.0, audio_rate=rate, layout=layout)
    start = 2.345678
    with SegmentReader(path) as reader:
        assert (reader.info.audio_rate, reader.info.audio_layout) == (rate, layout)
        waveform = reader.waveform(start, 80000, 16000)
    expected = tone(start + np.arange(80000) / 16000)
    assert waveform.dtype == np.float32 and waveform.shape == (80000,)
    # AAC is lossy (5.1 at its default bit rate more so); a shift of a tenth of a 16 kHz sample
    # gives an error of 0.02, and the LFE hum, if it leaked, 0.08
    assert np.abs(waveform - expected).max() < aac_error


def test_audio_is_decoded_only_around_the_segment(tmp_path):
    """A waveform from late in a file equals the same span cut from a whole-file decode."""
    path = write_test_media(tmp_path / "late.mp4", seconds=20.0, audio_rate=44100)
    with SegmentReader(path) as reader:
        late = reader.waveform(14.0, 80000, 16000)
        early = reader.waveform(0.0, 16000, 16000)
    assert np.abs(late - tone(14.0 + np.arange(80000) / 16000)).max() < 0.005
    assert (
        np.abs(early[1000:] - tone(np.arange(1000, 16000) / 16000)).max() < 0.02
    )  # the encoder fades in first


def reference_cover_crop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Independent reference: PIL box-filter scale to cover `size`, then a centre crop."""
    width, height = size
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    sw, sh = max(width, round(w * scale)), max(height, round(h * scale))
    scaled = np.asarray(Image.fromarray(image).resize((sw, sh), Image.BOX))
    x0, y0 = (sw - width) // 2, (sh - height) // 2
    return scaled[y0 : y0 + height, x0 : x0 + width]


def gradient(width: int, height: int) -> np.ndarray:
    """`(height, width, 3)` uint8 grey image, smooth in both directions (robust to chroma subsampling)."""
    y, x = np.mgrid[0:height, 0:width]
    grey = 30 + 100 * x / width + 90 * y / height
    return np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)


@pytest.mark.parametrize("source", [(1080, 1920), (400, 400), (940, 400), (768, 432), (200, 112)])
def test_fit_frame_scales_to_cover_and_centre_crops(source):
    image = gradient(*source)
    fitted = fit_frame(av.VideoFrame.from_ndarray(image, format="rgb24"), (768, 432)).to_ndarray(
        format="rgb24"
    )
    assert fitted.shape == (432, 768, 3)
    assert np.abs(fitted.astype(float) - reference_cover_crop(image, (768, 432))).mean() < 2.0


def planes(frame: av.VideoFrame) -> list[bytes]:
    return [bytes(p) for p in frame.planes]


def test_shared_scaler_gives_pyavs_own_bytes_as_shapes_and_formats_change():
    """One cached swscale context for every frame: the bytes of PyAV's per-frame
    `reformat` and `to_ndarray(format="rgb24")`, whichever shapes come in what order."""
    rng = np.random.default_rng(0)
    cases = [
        ((26, 48), (192, 108), "BILINEAR"),
        ((432, 768), (128, 72), "AREA"),
        ((108, 192), (192, 108), None),
    ]
    for _ in range(2):
        for shape, (width, height), interpolation in cases:
            pixels = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            ours = reformat(frame, width, height, "yuv420p", interpolation=interpolation)
            theirs = frame.reformat(width, height, "yuv420p", interpolation=interpolation)
            assert planes(ours) == planes(theirs)
            assert np.array_equal(to_rgb(ours), theirs.to_ndarray(format="rgb24"))


def test_portrait_keeps_its_middle_band():
    width, height = 216, 384
    bands = np.zeros((height, width, 3), np.uint8)
    bands[: height // 3] = (200, 30, 30)
    bands[height // 3 : 2 * height // 3] = (30, 200, 30)
    bands[2 * height // 3 :] = (30, 30, 200)
    fitted = fit_frame(av.VideoFrame.from_ndarray(bands, format="rgb24"), (768, 432)).to_ndarray(
        format="rgb24"
    )
    assert np.abs(fitted[8:-8].astype(int) - (30, 200, 30)).max() < 12


def ffmpeg_first_frame(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Independent reference: FFmpeg's command line (which honours rotation) scaled to `size`."""
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-v",
        "error",
        "-i",
        str(path),
        "-frames:v",
        "1",
        "-vf",
        f"scale={size[0]}:{size[1]}",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(size[1], size[0], 3)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_is_honoured_like_ffmpeg(tmp_path, rotation):
    def quadrants(i, size):
        w, h = size
        frame = np.zeros((h, w, 3), np.uint8)
        frame[: h // 2, : w // 2], frame[: h // 2, w // 2 :] = (220, 40, 40), (40, 220, 40)
        frame[h // 2 :, : w // 2], frame[h // 2 :, w // 2 :] = (40, 40, 220), (220, 220, 40)
        return frame

    path = write_test_media(
        tmp_path / "rot.mp4", seconds=1.0, size=(128, 96), frame_fn=quadrants, rotation=rotation
    )
    with SegmentReader(path) as reader:
        expected_size = (96, 128) if rotation in (90, 270) else (128, 96)
        assert reader.info.rotation == rotation and reader.info.display_size == expected_size
        ours = reader.frames(0.0, 1, 10, expected_size)[0]
    assert np.abs(ours.astype(int) - ffmpeg_first_frame(path, expected_size)).mean() < 6


def test_probe_reports_duration_and_streams(tmp_path):
    path = write_test_media(
        tmp_path / "p.mp4", seconds=7.0, fps=30, size=(160, 90), audio_rate=44100, layout="5.1"
    )
    with SegmentReader(path) as reader:
        info = reader.info
    assert abs(info.duration_s - 7.0) < 0.05 and abs(info.fps - 30.0) < 0.01
    assert (info.coded_size, info.display_size, info.audio_rate, info.audio_channels) == (
        (160, 90),
        (160, 90),
        44100,
        6,
    )


@pytest.mark.parametrize(
    "case,reason",
    [
        ("empty", "empty file"),
        ("text", "not a readable media file"),
        ("truncated", "truncated"),
        ("truncated_faststart", "truncated file: its (video|audio) data stops at"),
        ("no_audio", "no audio stream"),
        ("no_video", "no video stream"),
        ("missing", "file not found"),
    ],
)
def test_unusable_files_raise_a_one_line_reason(tmp_path, case, reason):
    path = tmp_path / f"{case}.mp4"
    if case == "empty":
        path.touch()
    elif case == "text":
        path.write_text("id,genre\n1,pop\n")
    elif case == "truncated":  # index at the end, as most encoders write it: cut off
        data = write_test_media(tmp_path / "whole.mp4", seconds=6.0).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "truncated_faststart":  # index up front, pointing past the end of the data
        frames = np.stack([index_frame(i, (128, 72)) for i in range(150)])
        data = write_mp4(
            tmp_path / "whole.mp4", frames, 25, tone(np.arange(6 * 48000) / 48000)[None], 48000
        ).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "no_audio":
        write_test_media(path, layout=None)
    elif case == "no_video":
        write_test_media(path, video=False)
    with pytest.raises(MediaError, match=reason) as caught:
        SegmentReader(path)
    assert "\n" not in str(caught.value)


DAMAGED_FILES_SCRIPT = """
import random, sys
import torchvision  # noqa: F401  (its import routes FFmpeg's log through Python)
from mvnb.media import MediaError, SegmentReader

good, bad, n_files = open(sys.argv[1], "rb").read(), sys.argv[2], int(sys.argv[3])
rng = random.Random(0)
for _ in range(n_files):
    data = bytearray(good)
    for _ in range(200):
        data[rng.randrange(len(data) // 8, len(data))] = rng.randrange(256)
    open(bad, "wb").write(bytes(data))
    try:
        with SegmentReader(bad) as reader:
            reader.frames(rng.uniform(0.0, 8.0), 4, 10, (112, 112))
    except MediaError:
        pass
"""


def test_damaged_files_never_hang_threaded_decoding_after_torchvision(tmp_path):
    """Damaged H.264 makes FFmpeg's decoder threads log errors. Once torchvision is imported, that
    log went through Python and took the GIL from those threads: within a few hundred damaged
    files, a frame-threaded decoder stopped mid-stream deadlocked for good (this hung CI)."""
    good = write_test_media(tmp_path / "good.mp4", seconds=10.0, size=(640, 360))
    cmd = [sys.executable, "-c", DAMAGED_FILES_SCRIPT, str(good), str(tmp_path / "bad.mp4"), "1000"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("decoding damaged files hung (FFmpeg's log went through Python from its threads)")
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_wav_and_video_round_trip(tmp_path):
    waveform = tone(np.arange(16000) / 16000)
    write_wav(tmp_path / "a.wav", waveform, 16000)
    back, rate = read_wav(tmp_path / "a.wav")
    info = sf.info(str(tmp_path / "a.wav"))
    assert (rate, info.channels, info.subtype, back.dtype) == (16000, 1, "PCM_16", np.float32)
    assert np.abs(back - waveform).max() < 1e-4
    frames = np.stack([index_frame(i, (64, 36)) for i in range(12)])
    write_mp4(tmp_path / "v.mp4", frames, 10, None, 0, crf=10)
    decoded = read_video_frames(tmp_path / "v.mp4")
    assert decoded.shape == frames.shape and [read_index(f) for f in decoded] == list(range(12))


def test_mux_preview_is_a_small_playable_clip_with_sound(tmp_path):
    write_mp4(tmp_path / "seg.mp4", np.stack([index_frame(i, (768, 432)) for i in range(50)]), 10, None, 0)
    write_wav(tmp_path / "seg.wav", tone(np.arange(80000) / 16000), 16000)
    out = mux_preview(tmp_path / "seg.mp4", tmp_path / "seg.wav", tmp_path / "preview.mp4")
    with av.open(str(out)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, video.width, video.height, video.format.name) == (
            "h264",
            320,
            180,
            "yuv420p",
        )
        assert audio.codec_context.name == "aac" and abs(container.duration / 1e6 - 5.0) < 0.1
    assert (
        out.read_bytes()[4:8] == b"ftyp" and b"moov" in out.read_bytes()[:4096]
    )  # faststart: index up front


def test_decoding_on_from_one_segment_equals_seeking_to_it(tmp_path):
    path = write_test_media(
        tmp_path / "gop.mp4", seconds=12.0, fps=30
    )  # one keyframe: every segment decodes on
    starts = [0.5, 3.25, 6.0, 9.5]
    with SegmentReader(path) as reader:
        in_one_pass = [reader.frames(s, 20, 10, (128, 72)) for s in starts]
    for start, frames in zip(starts, in_one_pass, strict=True):
        with SegmentReader(path) as fresh:
            assert np.array_equal(frames, fresh.frames(start, 20, 10, (128, 72)))
        assert [read_index(f) for f in frames] == [
            int(np.floor((start + i / 10) * 30 + 1e-9)) % 100 for i in range(20)
        ]


def test_matroska_without_stream_durations_and_with_ms_timestamps(tmp_path):
    path = write_test_media(tmp_path / "clip.mkv", seconds=8.0, fps=25, container="matroska")
    start = 3.3
    with SegmentReader(path) as reader:
        assert reader.vstream.duration is None and abs(reader.info.duration_s - 8.0) < 0.05
        frames = reader.frames(start, 20, 10, (128, 72))
        waveform = reader.waveform(start, 16000, 16000)
    assert [read_index(f) for f in frames] == [
        int(np.floor((start + i / 10) * 25 + 1e-9)) % 100 for i in range(20)
    ]
    lags = np.arange(-200, 201) / 10  # in 16 kHz samples
    errors = [np.abs(waveform - tone(start + (np.arange(16000) + lag) / 16000)).max() for lag in lags]
    assert abs(lags[int(np.argmin(errors))]) <= 16 and min(errors) < 0.01  # within a millisecond
