"""Looking at the data: embedded video players, preview clips and poster frames, and the corpus overview
(notebooks 00 and 01). The neighbour grids, sheets and reels of notebook 05 are in `mvnb.grids`.

Players embed small H.264/AAC previews as data URIs, so an executed notebook plays offline
in JupyterLab and in exported HTML. They have controls, start muted and preload only
metadata. Previews are composed with moviepy and cached next to the data they show.
"""

from __future__ import annotations

import base64
import collections
import functools
import html
import itertools
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from .io import atomic_write
from .media import MediaError, SegmentReader, open_media
from .workers import exit_with_parent


def preview_clip(
    src: str | Path,
    dst: str | Path,
    start_s: float = 0.0,
    seconds: float = 8.0,
    size: tuple[int, int] = (320, 180),
) -> Path:
    """A small H.264 (yuv420p, faststart) + AAC excerpt of `src`, cached at `dst`."""
    from moviepy import VideoFileClip

    dst = Path(dst)
    if dst.exists():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(dst) as tmp, VideoFileClip(str(src)) as clip:
        part = clip.subclipped(start_s, min(clip.duration, start_s + seconds)).resized(new_size=size)
        part.write_videofile(
            str(tmp),
            codec="libx264",
            audio_codec="aac",
            preset="veryfast",
            logger=None,
            ffmpeg_params=["-pix_fmt", "yuv420p", "-movflags", "+faststart"],
        )
    return dst


def video_player(path: str | Path, caption: str = "", width: int = 320, autoplay: bool = False) -> str:
    """HTML of a `<video>` with controls, embedding the mp4 at `path` as a data URI: muted, or
    with `autoplay` playing at once with its sound (as after a click)."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    label = f"<figcaption style='font-size:11px'>{html.escape(caption)}</figcaption>" if caption else ""
    mode = "autoplay preload='auto'" if autoplay else "muted preload='metadata'"
    return (
        f"<figure style='display:inline-block;margin:4px;width:{width}px;vertical-align:top'>"
        f"<video controls {mode} width='{width}' src='data:video/mp4;base64,{data}'></video>"
        f"{label}</figure>"
    )


PROBE_COLUMNS = [
    "video_id",
    "file",
    "duration_s",
    "width",
    "height",
    "fps",
    "audio_rate",
    "audio_channels",
    "megabytes",
]


def probe_corpus(corpus_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every video of a corpus folder, probed from its file, and the ones left out.

    The videos are those preprocessing takes (`mvnb.corpus.list_videos` of `corpus_dir`'s
    metadata.csv and videos/, whichever exist). Returns `(videos, skipped)`: `videos` one row per
    readable file, `PROBE_COLUMNS` (duration in s, display width and height, frame rate, audio
    sample rate and channels, size on disk) then the metadata's other columns (where one has a
    probed column's name, such as the synthetic corpus's `duration_s`, the file's value wins); `skipped`
    `video_id, path, reason` for rows without a file and files that cannot be read.
    """
    from tqdm.auto import tqdm

    from .corpus import SKIPPED_COLUMNS, list_videos

    corpus_dir = Path(corpus_dir)
    metadata, folder = corpus_dir / "metadata.csv", corpus_dir / "videos"
    jobs, skipped, labels = list_videos(
        folder if folder.is_dir() else None, metadata if metadata.is_file() else None
    )
    rows, unreadable = [], []
    for job in tqdm(jobs, desc="probe", unit="video", disable=len(jobs) < 2):
        try:
            with SegmentReader(Path(job.path)) as reader:
                info = reader.info
        except MediaError as error:
            unreadable.append((job.video_id, job.path, str(error)))
            continue
        rows.append(
            (
                job.video_id,
                job.path,
                info.duration_s,
                *info.display_size,
                info.fps,
                info.audio_rate,
                info.audio_channels,
                Path(job.path).stat().st_size / 1e6,
            )
        )
    probed = pd.DataFrame(rows, columns=PROBE_COLUMNS)
    videos = probed.join(
        labels.drop(columns=[c for c in labels if c in PROBE_COLUMNS]), on="video_id"
    )  # the file says
    skipped = pd.concat([skipped, pd.DataFrame(unreadable, columns=SKIPPED_COLUMNS)], ignore_index=True)
    return videos, skipped


def media_overview(videos: pd.DataFrame) -> plt.Figure:
    """Histogram of durations and bar charts of resolutions and frame rates of `probe_corpus` videos."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.2), constrained_layout=True)
    axes[0].hist(videos["duration_s"], bins=min(30, max(5, len(videos))), color="tab:blue")
    axes[0].set(title="durations", xlabel="seconds", ylabel="videos")
    sizes = (videos["width"].astype(str) + "×" + videos["height"].astype(str)).value_counts()
    sizes.head(12).plot.barh(ax=axes[1], color="tab:green")
    axes[1].set(title="resolutions (as displayed)", xlabel="videos")
    axes[1].invert_yaxis()
    videos["fps"].round(2).value_counts().sort_index().plot.bar(ax=axes[2], color="tab:orange")
    axes[2].set(title="frame rates", xlabel="frames per second", ylabel="videos")
    return fig


def split_summary(split_table: pd.DataFrame) -> str:
    """Markdown read off a table of videos per genre (rows, with an "All" row) and split (`train`, `val`,
    `test`,
    `All` columns): the split over all videos, and the genres with no validation or test video."""

    def counts(row) -> str:
        return "/".join(str(int(row[s])) for s in ("train", "val", "test"))

    total = split_table.loc["All"]
    shares = " / ".join(f"{total[s] / total['All']:.0%}" for s in ("train", "val", "test"))
    lines = [f"All {int(total['All'])} videos: {counts(total)} in train/val/test ({shares})."]
    genres = split_table.drop(index="All")
    for split in ("test", "val"):
        missing = genres[genres[split] == 0]
        if len(missing):
            lines.append(
                f"No {split} video: " + ", ".join(f"{g} ({counts(r)})" for g, r in missing.iterrows()) + "."
            )
    test_share = genres["test"] / genres["All"]
    lines.append(
        f"The test share per {genres.index.name or 'group'} ranges from {test_share.min():.0%} "
        f"({test_share.idxmin()}) to {test_share.max():.0%} ({test_share.idxmax()})."
    )
    return " ".join(lines)


def label_columns(videos: pd.DataFrame) -> list[str]:
    """The label columns the corpus has values in: `genre` (one per video) and `tags` (`;`-separated)."""
    return [c for c in ("genre", "tags") if c in videos and videos[c].notna().any()]


def label_distribution(videos: pd.DataFrame) -> plt.Figure:
    """Bar charts of videos per genre and per tag (tags are `;`-separated), for the columns of
    `label_columns`."""
    columns = label_columns(videos)
    if not columns:
        raise ValueError("the corpus has no genre or tags to count")
    fig, axes = plt.subplots(
        1, len(columns), figsize=(5.5 * len(columns), 3.2), constrained_layout=True, squeeze=False
    )
    for ax, column in zip(axes[0], columns, strict=True):
        values = videos[column].dropna().astype(str)
        if column == "tags":
            values = values.str.split(";").explode().str.strip()
        values[values != ""].value_counts().head(40).plot.bar(
            ax=ax, color="tab:blue" if column == "genre" else "tab:orange"
        )
        ax.set(title=f"videos per {'tag' if column == 'tags' else column}", ylabel="videos")
    return fig


def corpus_gallery(
    videos: pd.DataFrame, n_rows: int = 6, n_frames: int = 4, seconds: float = 8.0
) -> plt.Figure:
    """The spectrogram of a video's first seconds, then frames from them: one video per genre
    where `videos` (a `probe_corpus` table) has genres, else its first `n_rows` videos."""
    first = videos.groupby("genre", sort=True).head(1) if "genre" in label_columns(videos) else videos
    first = first.head(n_rows)
    fig, axes = plt.subplots(
        len(first),
        n_frames + 1,
        figsize=(2.2 * (n_frames + 2), 1.5 * len(first)),
        gridspec_kw=dict(width_ratios=[2] + [1] * n_frames),
        constrained_layout=True,
        squeeze=False,
    )
    for row, (_, video) in zip(axes, first.iterrows(), strict=True):
        span = min(seconds, float(video["duration_s"]))
        with SegmentReader(Path(video["file"])) as reader:
            audio = reader.waveform(0.0, int(span * 16000), 16000)
            frames = reader.frames(0.05 * span, n_frames, n_frames / (0.9 * span), (256, 144))
        row[0].specgram(audio, NFFT=512, Fs=16000, noverlap=256, cmap="magma")
        name = video["genre"] if "genre" in label_columns(videos) else video["video_id"]
        row[0].set_ylabel(str(name), rotation=0, ha="right", fontsize=9)
        row[0].set(xticks=[], yticks=[])
        for ax, frame in zip(row[1:], frames, strict=False):  # a short video has fewer frames
            ax.imshow(frame)
            ax.set_axis_off()
    axes[0, 0].set_title(f"spectrogram, first {seconds:.0f} s, 0-8 kHz", fontsize=9)
    return fig


# --------------------------------------------------------------------------- segment previews

PREVIEW_SIZE = (320, 180)  # (width, height) of segment previews and poster frames


def segment_preview(
    data_dir: str | Path,
    video_path: str,
    audio_path: str,
    cache_dir: str | Path | None = None,
    size: tuple[int, int] = PREVIEW_SIZE,
) -> Path:
    """A small H.264 (yuv420p, faststart) + AAC clip of a stored segment, with its audio.

    video_path, audio_path: the segment's files, relative to `data_dir` (manifest columns).
    Cached at `cache_dir/<video_path>` (default `data_dir/previews`) and remade when the
    segment file is newer than the cached clip.
    """
    from .media import mux_preview

    data_dir = Path(data_dir)
    source = data_dir / video_path
    out = Path(cache_dir or data_dir / "previews") / video_path
    if out.exists() and out.stat().st_mtime_ns >= source.stat().st_mtime_ns:
        return out
    return mux_preview(source, data_dir / audio_path, out, size)


def _preview_job(job: tuple) -> Path:
    return segment_preview(*job)


def tile_store(tile: pd.Series, data_dir: Path) -> Path:
    """The segment store a tile's clip lives in: its `store` column where set, else `data_dir`."""
    store = tile.get("store")
    return Path(store) if isinstance(store, (str, Path)) and str(store) else data_dir


def make_previews(
    data_dir: str | Path, table: pd.DataFrame, cache_dir: str | Path | None = None, workers: int = 1
) -> dict[tuple[str, str], Path]:
    """Previews of every distinct segment in `table` (columns `video_path`, `audio_path`, and
    optionally `store`, the segment store of a row, default `data_dir`), made in `workers`
    processes with a progress bar. `cache_dir` holds the previews of `data_dir`'s segments;
    other stores keep theirs in their own `previews/`. Returns `{(store, video_path): preview}`."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    data_dir = Path(data_dir)
    stores = [str(tile_store(tile, data_dir)) for _, tile in table.iterrows()]
    triples = list(dict.fromkeys(zip(stores, table["video_path"], table["audio_path"], strict=True)))
    jobs = [
        (store, v, a, str(cache_dir) if cache_dir is not None and Path(store) == data_dir else None)
        for store, v, a in triples
    ]
    bar = dict(total=len(jobs), desc="previews", unit="clip", disable=len(jobs) < 2)
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers, initializer=exit_with_parent) as pool:
            paths = list(tqdm(pool.map(_preview_job, jobs), **bar))
    else:
        paths = [_preview_job(job) for job in tqdm(jobs, **bar)]
    return {(store, v): path for (store, v, _), path in zip(triples, paths, strict=True)}


def poster_uri(mp4: str | Path, size: tuple[int, int] | None = PREVIEW_SIZE, quality: int = 80) -> str:
    """The middle frame of a video, scaled to `size = (width, height)` (None: as it is), as a
    `data:image/jpeg;base64,…` URI (memoised per file and modification time)."""
    path = Path(mp4)
    return _poster_uri(str(path), path.stat().st_mtime_ns, tuple(size) if size else None, quality)


@functools.lru_cache(maxsize=1024)
def _poster_uri(path: str, mtime_ns: int, size: tuple[int, int] | None, quality: int) -> str:
    import io

    from PIL import Image

    with open_media(path) as container:
        stream = container.streams.video[0]
        middle = max(stream.frames, 1) // 2
        # the middle frame, or the last one of a stream shorter than its header says
        frame = collections.deque(itertools.islice(container.decode(stream), middle + 1), maxlen=1)[0]
    image = frame.to_image()
    if size:
        image = image.resize(size, Image.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class EmbedBudget:
    """How many megabytes of clips the players of one notebook may still embed.

    Players embed their clip as base64 (4/3 of its bytes). Once a clip does not fit, the
    budget is spent for good, so everything after it falls back to poster frames: what plays
    is always a prefix of what is shown.
    """

    def __init__(self, megabytes: float):
        self.limit = int(megabytes * 1e6)
        self.spent = 0
        self.exhausted = False

    def take(self, n_bytes: int) -> bool:
        """Reserve room for a clip of `n_bytes`; False (and spent from now on) when it does not fit."""
        embedded = (n_bytes + 2) // 3 * 4
        if self.exhausted or self.spent + embedded > self.limit:
            self.exhausted = True
            return False
        self.spent += embedded
        return True

    def __repr__(self) -> str:
        spent = ", spent" if self.exhausted else ""
        return f"EmbedBudget({self.spent / 1e6:.1f} of {self.limit / 1e6:.1f} MB used{spent})"


def clip_players(
    clips: Sequence[Path], captions: Sequence[str], budget: EmbedBudget, width: int = 480
) -> str:
    """HTML of muted players for `clips` while `budget` lasts, poster frames after it (with a note)."""
    parts, posters = [], 0
    for clip, caption in zip(clips, captions, strict=True):
        if budget.take(Path(clip).stat().st_size):
            parts.append(video_player(clip, caption, width))
        else:
            posters += 1
            parts.append(
                f"<figure style='display:inline-block;margin:4px;width:{width}px;vertical-align:top'>"
                f"<img width='{width}' src='{poster_uri(clip, size=None)}' alt='poster frame'>"
                f"<figcaption style='font-size:11px'>{html.escape(caption)} (poster "
                f"frame)</figcaption></figure>"
            )
    note = (
        (
            f"<p><b>Note:</b> {posters} of {len(parts)} clips show a poster frame: the embed budget of "
            f"{budget.limit / 1e6:g} MB is spent. Raise <code>embed_budget_mb</code> to play them.</p>"
        )
        if posters
        else ""
    )
    return "".join(parts) + note
