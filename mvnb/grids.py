"""Browsing neighbours (notebook 05): grids of playable tiles, contact sheets saved as figures, and reels.

A grid shows each seed with its neighbours as tiles (a poster frame and, while the embed budget
lasts, a muted player: `mvnb.explore.EmbedBudget`); a sheet is the same table as a static PNG; a
reel puts a seed's clip and its neighbours' side by side in one mp4.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .explore import EmbedBudget, make_previews, poster_uri, tile_store
from .io import atomic_write

TILE_WIDTH = 240  # display width of a grid tile in pixels


def tile_caption(row: pd.Series) -> list[str]:
    """The lines under a tile: id (and segment), genre, tags, and similarity to the seed (or "seed")."""
    ident = row["video_id"]
    if row.get("level") == "segment":
        ident = f"{ident} · segment {int(row['k_segment'])}"
    tags = row.get("tags")
    lines = [
        ident,
        str(row.get("genre", "")),
        ", ".join(str(tags).split(";")) if isinstance(tags, str) else "",
    ]
    similarity = row.get("similarity", np.nan)
    lines.append("seed" if pd.isna(similarity) else f"cosine {similarity:.4f}")
    return lines


def tile_html(
    caption: list[str],
    clip: Path | None = None,
    poster: str | None = None,
    width: int = TILE_WIDTH,
    seed: bool = False,
) -> str:
    """One tile: a muted player of `clip` (controls, metadata preload) or else the `poster`
    image, with the caption lines under it; a seed tile is framed."""
    border = "2px solid #d62728" if seed else "1px solid #ccc"
    if clip is not None:
        data = base64.b64encode(Path(clip).read_bytes()).decode("ascii")
        media = (
            f"<video controls muted preload='metadata' width='{width}' "
            f"src='data:video/mp4;base64,{data}'></video>"
        )
    else:
        media = f"<img width='{width}' src='{poster}' alt='poster frame'>"
    text = "<br>".join(html.escape(line) for line in caption if line)
    return (
        f"<td style='vertical-align:top;padding:3px;border:{border}'>{media}"
        f"<div style='font-size:11px;line-height:1.3;width:{width}px'>{text}</div></td>"
    )


def neighbour_grid(
    table: pd.DataFrame,
    data_dir: str | Path,
    budget: EmbedBudget,
    cache_dir: str | Path | None = None,
    workers: int = 1,
    width: int = TILE_WIDTH,
) -> str:
    """HTML of a neighbour grid: one row per seed, the seed first, then its neighbours.

    table: `mvnb.neighbours.neighbour_table` output (`row`, `rank`, labels, similarity and the
        clip's `video_path`, `audio_path`; an optional `store` column names another segment
        store for a row, as for a cold-start query). Tiles are players while `budget` lasts, poster
        frames after that, with a note saying how many and why.
    """
    data_dir = Path(data_dir)
    previews = {} if budget.exhausted else make_previews(data_dir, table, cache_dir, workers)
    rows, posters = [], 0
    k = int(table["rank"].max())
    head = "".join(f"<th>{'seed' if r == 0 else f'neighbour {r}'}</th>" for r in range(k + 1))
    for _, group in table.groupby("row", sort=True):
        cells = []
        for _, tile in group.sort_values("rank").iterrows():
            store = tile_store(tile, data_dir)
            clip = previews.get((str(store), tile["video_path"]))
            if clip is not None and budget.take(clip.stat().st_size):
                cells.append(tile_html(tile_caption(tile), clip=clip, width=width, seed=tile["rank"] == 0))
            else:
                posters += 1
                cells.append(
                    tile_html(
                        tile_caption(tile) + ["(poster frame)"],
                        poster=poster_uri(store / tile["video_path"]),
                        width=width,
                        seed=tile["rank"] == 0,
                    )
                )
        rows.append(f"<tr>{''.join(cells)}</tr>")
    note = ""
    if posters:
        note = (
            f"<p><b>Note:</b> {posters} of {len(table)} tiles show a poster frame instead of a player: the "
            f"embed budget "
            f"of {budget.limit / 1e6:g} MB is spent. Raise <code>embed_budget_mb</code> to play them all.</p>"
        )
    return (
        f"<div style='overflow-x:auto'><table style='border-collapse:collapse'><tr>{head}</tr>{''.join(rows)}"
        f"</table></div>{note}"
    )


def neighbour_sheet(
    table: pd.DataFrame, data_dir: str | Path, n_rows: int = 5, title: str = ""
) -> plt.Figure:
    """A static grid of poster frames for the first `n_rows` seeds of `table`, captioned, for figures/."""
    import io

    from PIL import Image

    data_dir = Path(data_dir)
    part = table[table["row"] < n_rows]
    n, k = part["row"].nunique(), int(part["rank"].max()) + 1
    fig, axes = plt.subplots(n, k, figsize=(2.6 * k, 2.0 * n), squeeze=False, constrained_layout=True)
    for (_, tile), ax in zip(part.sort_values(["row", "rank"]).iterrows(), axes.ravel(), strict=True):
        uri = poster_uri(tile_store(tile, data_dir) / tile["video_path"])
        image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        ax.imshow(image)
        ax.set(xticks=[], yticks=[])
        lines = tile_caption(tile)
        ax.set_title("\n".join([lines[0], f"{lines[1]} · {lines[3]}"]), fontsize=7)
        if tile["rank"] == 0:
            for spine in ax.spines.values():
                spine.set(color="#d62728", linewidth=2)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def save_neighbour_sheet(
    table: pd.DataFrame, data_dir: str | Path, path: str | Path, weights, n_rows: int = 5, title: str = ""
) -> Path:
    """Write `neighbour_sheet` to `path` (PNG) without showing it (the grid shows the same), with the
    footnote of `weights` (`mvnb.provenance.Weights`); returns `path`."""
    fig = neighbour_sheet(table, data_dir, n_rows, title)
    weights.save_figure(fig, path, dpi=110)
    plt.close(fig)
    return Path(path)


# --------------------------------------------------------------------------- neighbour reels


def _label_clip(text: str, width: int, duration: float):
    """A `width`×18 moviepy ImageClip with `text` in white on black."""
    from moviepy import ImageClip
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (width, 18), "black")
    ImageDraw.Draw(image).text((4, 2), text, fill="white", font=ImageFont.load_default(13))
    return ImageClip(np.asarray(image)).with_duration(duration)


def neighbour_reel(
    clips: list[Path], out: str | Path, labels: list[str] | None = None, cols: int | None = None
) -> Path:
    """One mosaic clip of a seed and its neighbours, tiled, with the seed's audio only.

    clips: the seed's clip first, then its neighbours' (e.g. `segment_preview`s, all the same
        size); labels: one line per clip, drawn above it; cols: tiles per row (default: the
        smallest square). The reel lasts as long as the shortest clip. Written with moviepy as
        H.264 yuv420p + AAC with faststart, atomically. Returns `out`.
    """
    import math

    from moviepy import ColorClip, CompositeVideoClip, VideoFileClip, clips_array

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cols = cols or math.ceil(math.sqrt(len(clips)))
    sources = [VideoFileClip(str(c)) for c in clips]
    try:
        duration = min(s.duration for s in sources)
        width, height = sources[0].size
        tiles = []
        for i, source in enumerate(sources):
            tile = source.subclipped(0, duration).without_audio()
            if labels:
                tile = CompositeVideoClip(
                    [tile, _label_clip(labels[i], width, duration).with_position((0, 0))]
                )
            tiles.append(tile)
        while len(tiles) % cols:
            tiles.append(ColorClip((width, height), color=(0, 0, 0)).with_duration(duration))
        grid = clips_array([tiles[i : i + cols] for i in range(0, len(tiles), cols)])
        grid = grid.with_audio(sources[0].audio.subclipped(0, duration)).with_duration(duration)
        with atomic_write(out) as tmp:
            grid.write_videofile(
                str(tmp),
                fps=sources[0].fps,
                codec="libx264",
                audio_codec="aac",
                preset="veryfast",
                logger=None,
                ffmpeg_params=["-pix_fmt", "yuv420p", "-movflags", "+faststart"],
            )
    finally:
        for source in sources:
            source.close()
    return out


def neighbour_reels(
    table: pd.DataFrame,
    data_dir: str | Path,
    out_dir: str | Path,
    rows: Sequence[int],
    cache_dir: str | Path | None = None,
    workers: int = 1,
) -> list[Path]:
    """A `neighbour_reel` for each seed `row` of a neighbour table, labelled with ids and similarities.

    Reels are cached in `out_dir` under a name fixed by their clips and labels, so the same
    seed with other neighbours gets another reel. Returns their paths in `rows` order.
    """
    import hashlib

    from tqdm.auto import tqdm

    data_dir = Path(data_dir)
    chosen = table[table["row"].isin(list(rows))]
    previews = make_previews(data_dir, chosen, cache_dir, workers)
    reels = []
    for row in tqdm(list(rows), desc="reels", unit="reel", disable=len(rows) < 2):
        tiles = chosen[chosen["row"] == row].sort_values("rank")
        clips = [previews[(str(tile_store(t, data_dir)), t["video_path"])] for _, t in tiles.iterrows()]
        labels = [f"{c[0]} · {c[-1]}" for c in (tile_caption(t) for _, t in tiles.iterrows())]
        key = hashlib.sha1("\n".join(map(str, clips + labels)).encode()).hexdigest()[:12]
        out = Path(out_dir) / f"reel-{tiles['video_id'].iloc[0]}-{key}.mp4"
        if not (out.exists() and all(out.stat().st_mtime_ns >= c.stat().st_mtime_ns for c in clips)):
            neighbour_reel(clips, out, labels)
        reels.append(out)
    return reels
