"""Players, previews, poster frames, the embed budget, neighbour grids and reels, checked on
tiny segments whose picture and sound are known."""

import base64
import io
import re

import av
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from mvnb import explore
from mvnb.media import write_mp4, write_wav

FPS, SECONDS, RATE = 10, 5.0, 16000


def grey_frames(n: int, start: int = 20, step: int = 2, size=(160, 90)) -> list[np.ndarray]:
    """Frame i is uniformly grey at level start + step * i."""
    return [np.full((size[1], size[0], 3), start + step * i, np.uint8) for i in range(n)]


def tone(hz: float) -> np.ndarray:
    t = np.arange(int(SECONDS * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def make_segment(store, video_id: str, hz: float, start: int = 20) -> dict:
    """A stored segment as preprocess writes it: a silent mp4 and a 16 kHz mono wav."""
    rel = f"segments/{video_id}/00"
    (store / rel).parent.mkdir(parents=True, exist_ok=True)
    write_mp4(store / f"{rel}.mp4", grey_frames(int(SECONDS * FPS), start), FPS, None, RATE)
    write_wav(store / f"{rel}.wav", tone(hz), RATE)
    return dict(video_id=video_id, video_path=f"{rel}.mp4", audio_path=f"{rel}.wav")


def write_store(root) -> tuple:
    """`(root, segments)`: four stored segments of distinct greys and tones under `root`."""
    segments = [
        make_segment(root, f"v{i}", hz, start=20 + 40 * i)
        for i, hz in enumerate((440.0, 1000.0, 1500.0, 2500.0))
    ]
    return root, pd.DataFrame(segments)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("store"))


def grid_table(segments: pd.DataFrame, seeds: int = 2, k: int = 3) -> pd.DataFrame:
    rows = []
    for row in range(seeds):
        for rank in range(k + 1):
            seg = segments.iloc[(row + rank) % len(segments)]
            rows.append(
                dict(
                    level="video",
                    row=row,
                    rank=rank,
                    similarity=np.nan if rank == 0 else 1 - rank / 10,
                    genre="pop",
                    tags="fast;drums",
                    **seg,
                )
            )
    return pd.DataFrame(rows)


def probe(path):
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        return dict(
            vcodec=video.codec_context.name,
            pix_fmt=video.codec_context.pix_fmt,
            size=(video.width, video.height),
            acodec=audio.codec_context.name,
            duration=container.duration / av.time_base,
        )


def dominant_hz(path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = np.concatenate([f.to_ndarray().mean(axis=0) for f in container.decode(stream)])
        rate = stream.rate
    spectrum = np.abs(np.fft.rfft(samples[rate // 2 : rate // 2 + rate]))
    return float(np.argmax(spectrum))  # 1 s window: bin = Hz


def test_segment_preview_is_small_h264_aac_faststart_and_cached(store):
    root, segments = store
    seg = segments.iloc[0]
    clip = explore.segment_preview(root, seg["video_path"], seg["audio_path"])
    facts = probe(clip)
    assert facts == dict(
        vcodec="h264", pix_fmt="yuv420p", size=(320, 180), acodec="aac", duration=pytest.approx(5.0, abs=0.1)
    )
    head = clip.read_bytes()[:4096]
    assert head.find(b"moov") != -1 and (
        head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat")
    )  # faststart
    assert dominant_hz(clip) == pytest.approx(440, abs=2)  # with the segment's own audio
    stamp = clip.stat().st_mtime_ns
    assert explore.segment_preview(root, seg["video_path"], seg["audio_path"]).stat().st_mtime_ns == stamp


def test_poster_is_the_middle_frame_as_a_jpeg_data_uri(store):
    root, segments = store
    uri = explore.poster_uri(root / segments["video_path"][0])
    assert uri.startswith("data:image/jpeg;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert image.size == (320, 180)
    assert np.asarray(image).mean() == pytest.approx(20 + 2 * 25, abs=4)  # frame 25 of 50


@given(st.floats(0.001, 2.0), st.lists(st.integers(1, 400_000), max_size=30))
def test_embed_budget_plays_a_prefix_within_its_limit(megabytes, sizes):
    budget = explore.EmbedBudget(megabytes)
    taken = [budget.take(n) for n in sizes]
    assert taken == sorted(taken, reverse=True)  # all True, then all False
    embedded = sum((n + 2) // 3 * 4 for n, ok in zip(sizes, taken, strict=True) if ok)
    assert embedded == budget.spent <= megabytes * 1e6
    if not all(taken):
        assert budget.exhausted and not budget.take(1)


def players(page: str) -> list[str]:
    return re.findall(r"<video [^>]*>", page)


def test_clip_players_fall_back_to_posters(store):
    root, segments = store
    clip = explore.segment_preview(root, segments["video_path"][0], segments["audio_path"][0])
    page = explore.clip_players(
        [clip, clip], ["a", "b"], explore.EmbedBudget(clip.stat().st_size * 1.5 / 1e6)
    )
    assert len(players(page)) == 1 and page.count("<img ") == 1 and "1 of 2 clips show a poster frame" in page


def test_video_player_and_preview_clip_for_notebook_00(store, tmp_path):
    root, segments = store
    source = tmp_path / "full.mp4"
    write_mp4(source, grey_frames(30), FPS, tone(440.0)[None, :48000], RATE)
    clip = explore.preview_clip(source, tmp_path / "preview.mp4", start_s=0.5, seconds=2.0)
    assert probe(clip)["duration"] == pytest.approx(2.0, abs=0.15)
    page = explore.video_player(clip, "a <caption>")
    assert "muted" in page and "preload='metadata'" in page and "a &lt;caption&gt;" in page


# --------------------------------------------------------------------------- describing any corpus


@pytest.fixture(scope="module")
def own_corpus(tmp_path_factory):
    """A corpus of one's own: three real videos of other sizes and frame rates, a damaged one and
    a row without a file, described by a CSV of only `video_id, path`."""
    from test_media import write_test_media

    root = tmp_path_factory.mktemp("data")
    folder = root / "mine"
    write_test_media(folder / "videos" / "wide.mp4", seconds=6.0, fps=25, size=(128, 72))
    write_test_media(folder / "videos" / "tall.mp4", seconds=7.5, fps=30, size=(72, 128))
    write_test_media(folder / "videos" / "turned.mp4", seconds=5.0, fps=15, size=(128, 72), rotation=90)
    (folder / "videos" / "broken.mp4").write_text("not a video\n")
    rows = [
        ("wide", "videos/wide.mp4"),
        ("tall", "videos/tall.mp4"),
        ("turned", "videos/turned.mp4"),
        ("broken", "videos/broken.mp4"),
        ("gone", "videos/gone.mp4"),
    ]
    pd.DataFrame(rows, columns=["video_id", "path"]).to_csv(folder / "metadata.csv", index=False)
    return root


def test_probe_corpus_reads_durations_sizes_and_rates_from_the_files(own_corpus):
    videos, skipped = explore.probe_corpus(own_corpus / "mine")
    videos = videos.set_index("video_id")
    assert sorted(videos.index) == ["tall", "turned", "wide"]
    assert videos.loc["wide", ["width", "height"]].tolist() == [128, 72] and videos.loc[
        "wide", "fps"
    ] == pytest.approx(25, abs=0.01)
    assert videos.loc["tall", ["width", "height"]].tolist() == [72, 128] and videos.loc[
        "tall", "fps"
    ] == pytest.approx(30, abs=0.01)
    assert videos.loc["turned", ["width", "height"]].tolist() == [72, 128]  # as displayed, upright
    assert videos.loc["wide", "duration_s"] == pytest.approx(6.0, abs=0.1)
    assert videos.loc["tall", "duration_s"] == pytest.approx(7.5, abs=0.1)
    assert (videos["audio_rate"] == 48000).all() and (videos["megabytes"] > 0).all()
    assert explore.label_columns(videos.reset_index()) == []
    reasons = skipped.set_index("video_id")["reason"]
    assert sorted(reasons.index) == ["broken", "gone"]
    assert "not a readable media file" in reasons["broken"] and "file not found" in reasons["gone"]


def test_notebook_00_describes_a_corpus_of_ones_own_without_labels(own_corpus, tmp_path):
    import json

    from mvnb.report import run_report

    table = run_report(
        "quick",
        ["00"],
        {"data_root": str(own_corpus), "corpus": "mine"},
        tmp_path / "runs",
        tmp_path / "figures",
    )
    assert list(table["status"]) == ["ok"], table["status"][0]
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "corpus_gallery.png",
        "corpus_media.png",
    ]
    text = json.dumps(json.loads((tmp_path / "runs" / "00_corpus.ipynb").read_text())["cells"])
    assert "3 videos" in text and "2 left out" in text
    assert "no genre or tags" in text and "not a synthetic corpus" in text
    assert not (
        own_corpus / "mine" / "synth.json"
    ).exists()  # described, not overwritten by a synthetic corpus
