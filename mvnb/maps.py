"""UMAP maps of embeddings: a standalone HTML with every embedding behind a dropdown, a static
PNG, and a live explorer in which clicking a point plays its clip and lists its neighbours.

A **layer** is one embedding (`mvnb.embeddings.NAMES`) at one level (segment or video),
of one training run for the learned ones. Its map is a 2-d UMAP of the layer's vectors with
the cosine metric, seeded, so the report draws the same map every time. Points are coloured
by genre; hovering shows id, genre and tags. A layer whose embedding has collapsed
(`mvnb.metrics.is_collapsed`: every item nearly the same vector) is not mapped: a UMAP of one
point would lay out noise. Its items are drawn at one spot, and its title and dropdown entry
say "collapsed".

The same plotly figure serves both uses. Written with `write_map_html` it is one HTML file
that loads plotly.js from `plotly.min.js` beside it (no CDN), so it opens offline. Wrapped in
`MapExplorer` (a `FigureWidget`, in a live kernel), a click plays the point's clip with its
audio and lists its k nearest neighbours in the layer's own space (not in the 2-d map), each
playable; a lasso or box selection lists the genres and tags of the selected items.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import explore, grids
from .agreement import tag_matrix
from .embeddings import FROZEN, LEARNED
from .metrics import is_collapsed
from .neighbours import Catalogue, neighbour_table

UNKNOWN_GENRE = "(no genre)"


@dataclass(frozen=True)
class Layer:
    """One embedding at one level; `config` names the training run of a learned embedding."""

    name: str
    level: str = "segment"
    config: str | None = None

    @property
    def label(self) -> str:
        """The dropdown entry, e.g. `CL_agg (corrected) · segments`."""
        run = f" ({self.config})" if self.config else ""
        return f"{self.name}{run} · {self.level}s"


def report_layers(configs: Sequence[str], levels: Sequence[str] = ("segment", "video")) -> list[Layer]:
    """Per level, every frozen embedding, then every learned one of each config in `configs`."""
    return [
        layer
        for level in levels
        for layer in [Layer(name, level) for name in FROZEN]
        + [Layer(name, level, config) for config in configs for name in LEARNED]
    ]


def warm_up() -> float:
    """Compile UMAP's numba kernels on a small random input, so that map timings leave the
    one-off JIT out. Returns the seconds it took."""
    start = time.perf_counter()
    umap_coordinates(np.random.default_rng(0).normal(size=(64, 8)))
    return time.perf_counter() - start


def umap_coordinates(vectors, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1) -> np.ndarray:
    """The 2-d UMAP of `vectors (n, dim)` with the cosine metric: `(n, 2)` float32.

    Seeded with `seed`, which makes UMAP run single-threaded and reproducible. `n_neighbors`
    is capped at n - 1 for small sets; at least 4 points are needed.
    """
    import umap

    vectors = np.asarray(vectors, dtype=np.float32)
    if len(vectors) < 4:
        raise ValueError(f"a UMAP map needs at least 4 points, got {len(vectors)}")
    reducer = umap.UMAP(
        n_components=2,
        metric="cosine",
        n_neighbors=min(n_neighbors, len(vectors) - 1),
        min_dist=min_dist,
        random_state=seed,
        n_jobs=1,
    )
    return reducer.fit_transform(vectors).astype(np.float32)


@dataclass
class EmbeddingMap:
    """The maps of several layers of one catalogue.

    coords: layer → `(n_items, 2)` map coordinates, items in `catalogue.items(layer.level)`
    order; run: the training run `(rotation, seed)` of the learned layers; seconds: layer → UMAP time;
    collapsed: the layers whose embedding collapsed, not mapped (their coordinates are all zero).
    """

    catalogue: Catalogue
    coords: dict[Layer, np.ndarray]
    run: tuple[int, int] | None = None
    seconds: dict[Layer, float] = field(default_factory=dict)
    collapsed: set[Layer] = field(default_factory=set)

    @property
    def layers(self) -> list[Layer]:
        return list(self.coords)

    def caption(self, layer: Layer) -> str:
        """The layer's label, marked when its embedding collapsed."""
        return f"{layer.label}: collapsed, not mapped" if layer in self.collapsed else layer.label

    def vectors(self, layer: Layer) -> np.ndarray:
        """The layer's embedding `(n_items, dim)`."""
        return self.catalogue.embedding(layer.name, layer.level, layer.config, self.run)

    def points(self, layer: Layer) -> pd.DataFrame:
        """One row per item of the layer: `item, x, y, label` (id, with the segment number at
        segment level), `genre` (`UNKNOWN_GENRE` where missing) and `tags` (comma-separated)."""
        items = self.catalogue.items(layer.level).reset_index(drop=True)
        label = items["video_id"].astype(str)
        if layer.level == "segment" and "k" in items:
            label = label + " · segment " + items["k"].astype(str)
        genre = items["genre"].fillna(UNKNOWN_GENRE).astype(str) if "genre" in items else UNKNOWN_GENRE
        tags = items["tags"].fillna("").astype(str).str.replace(";", ", ") if "tags" in items else ""
        xy = self.coords[layer]
        return pd.DataFrame(
            {
                "item": np.arange(len(items)),
                "x": xy[:, 0],
                "y": xy[:, 1],
                "label": label,
                "genre": genre,
                "tags": tags,
            }
        )


def build_map(
    catalogue: Catalogue, layers: Sequence[Layer], run: tuple[int, int] | None = None, seed: int = 0
) -> EmbeddingMap:
    """UMAP coordinates of every layer (with a progress bar), each seeded with `seed`.

    run: the training run `(rotation, seed)` of the learned layers (None: the first loaded of each config).
    """
    from tqdm.auto import tqdm

    emap = EmbeddingMap(catalogue, {}, run)
    for layer in tqdm(layers, desc="UMAP", unit="map"):
        start = time.perf_counter()
        vectors = emap.vectors(layer)
        if is_collapsed(vectors):
            emap.collapsed.add(layer)
            emap.coords[layer] = np.zeros((len(vectors), 2), np.float32)
        else:
            emap.coords[layer] = umap_coordinates(vectors, seed)
        emap.seconds[layer] = time.perf_counter() - start
    return emap


def genre_colours(genres: Sequence[str]) -> dict[str, str]:
    """A fixed colour per genre (sorted, matplotlib's tab10 then tab20 cycle), grey for none."""
    import matplotlib

    names = sorted(set(genres) - {UNKNOWN_GENRE})
    palette = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"].colors
    colours = {g: matplotlib.colors.to_hex(palette[i % len(palette)]) for i, g in enumerate(names)}
    return colours | {UNKNOWN_GENRE: "#999999"}


def map_figure(emap: EmbeddingMap, title: str = "UMAP (cosine)"):
    """A plotly figure of every layer, one trace per (layer, genre), the first layer visible and
    a dropdown that shows another. Each trace's `meta` is its layer index and its `customdata`
    rows are `[item, label, genre, tags]`, which the hover text and `MapExplorer` read."""
    import plotly.graph_objects as go

    tables = [emap.points(layer) for layer in emap.layers]
    colours = genre_colours(pd.concat([t["genre"] for t in tables]))
    fig = go.Figure()
    owner = []
    for index, table in enumerate(tables):
        for genre, part in table.groupby("genre", sort=True):
            fig.add_trace(
                go.Scatter(
                    x=part["x"],
                    y=part["y"],
                    mode="markers",
                    name=genre,
                    legendgroup=genre,
                    meta=index,
                    visible=index == 0,
                    marker=dict(size=6, color=colours[genre], opacity=0.8),
                    customdata=part[["item", "label", "genre", "tags"]].to_numpy(),
                    hovertemplate="<b>%{customdata[1]}</b><br>genre: %{customdata[2]}"
                    "<br>tags: %{customdata[3]}<extra></extra>",
                )
            )
            owner.append(index)
    captions = [emap.caption(layer) for layer in emap.layers]
    buttons = [
        dict(
            label=caption,
            method="update",
            args=[{"visible": [o == index for o in owner]}, {"title.text": f"{title}: {caption}"}],
        )
        for index, caption in enumerate(captions)
    ]
    fig.update_layout(
        title=f"{title}: {captions[0]}",
        template="plotly_white",
        width=820,
        height=720,
        dragmode="lasso",
        legend=dict(title="genre", itemsizing="constant"),
        xaxis=dict(visible=False),
        yaxis=dict(visible=False),
        updatemenus=[
            dict(buttons=buttons, direction="down", x=0.0, xanchor="left", y=1.01, yanchor="bottom")
        ],
        title_y=0.97,
        margin=dict(t=100),
    )
    return fig


def write_map_html(fig, path: str | Path) -> Path:
    """Write `fig` as one HTML page that loads plotly.js from `plotly.min.js` in the same folder
    (written there too), so it works offline. Returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs="directory", full_html=True, config=dict(displaylogo=False))
    return path


def plot_map(emap: EmbeddingMap, layer: Layer, ax=None):
    """A matplotlib scatter of one layer's map, coloured by genre with a legend; returns the figure."""
    import matplotlib.pyplot as plt

    table = emap.points(layer)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 5.2), constrained_layout=True)
    colours = genre_colours(table["genre"])
    for genre, part in table.groupby("genre", sort=True):
        ax.scatter(part["x"], part["y"], s=9, color=colours[genre], label=genre, alpha=0.8, linewidths=0)
    ax.set(xticks=[], yticks=[], title=f"UMAP (cosine) of {emap.caption(layer)}")
    ax.legend(fontsize=7, markerscale=1.5, loc="best", title="genre", title_fontsize=8)
    return ax.figure


def selection_summary(items: pd.DataFrame) -> pd.DataFrame:
    """What a selection holds: one row per genre and per tag with `kind` ("genre" or "tag"),
    `name`, `count` (selected items carrying it) and `share` of the selection, most common first.

    items: rows of `catalogue.items(level)` (columns `genre`, `tags` where known).
    """
    rows = []
    if len(items) and "genre" in items:
        genres = items["genre"].fillna(UNKNOWN_GENRE).value_counts()
        rows += [("genre", name, count) for name, count in genres.items()]
    if len(items) and "tags" in items:
        matrix, vocabulary = tag_matrix(items["tags"].tolist())
        counts = matrix.sum(0)
        rows += sorted(
            (("tag", tag, int(c)) for tag, c in zip(vocabulary, counts, strict=True) if c),
            key=lambda r: -r[2],
        )
    table = pd.DataFrame(rows, columns=["kind", "name", "count"])
    table["share"] = table["count"] / max(len(items), 1)
    return table


class MapExplorer:
    """The map as a live widget: click a point to play its clip, with sound, and list its k
    nearest neighbours (in the layer's own space, never from its own video), each playable;
    lasso a region to list the genres and tags in it. The dropdown switches the layer.

    emap: the maps; k: neighbours per click; cache_dir: where segment previews are cached
    (default: the store's `previews/`); width: the player's width in pixels. Display it (the
    last line of a cell) in JupyterLab.
    """

    def __init__(self, emap: EmbeddingMap, k: int = 5, cache_dir: str | Path | None = None, width: int = 320):
        import ipywidgets as widgets
        import plotly.graph_objects as go

        self.emap, self.k, self.cache_dir, self.width = emap, k, cache_dir, width
        self.figure = go.FigureWidget(map_figure(emap).update_layout(width=560, height=600))
        self.player = widgets.HTML(
            "<p>Click a point to play its clip.</p>",
            layout=widgets.Layout(width=f"{width + 16}px", flex="0 0 auto"),
        )
        self.neighbours = widgets.HTML()
        self.selection = widgets.HTML("<p>Lasso or box-select points to list their genres and tags.</p>")
        self.selected: dict[int, list[int]] = {}  # trace index → selected item indices
        for trace in self.figure.data:
            trace.on_click(self._clicked)
            trace.on_selection(self._selected)
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.figure, self.player], layout=widgets.Layout(flex_flow="row wrap")),
                self.neighbours,
                self.selection,
            ]
        )

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def show(self, layer: Layer, item: int) -> pd.DataFrame:
        """Play `item` of `layer` in the player and list its neighbours; returns their table
        (`mvnb.neighbours.neighbour_table` rows: the item first, then its k neighbours)."""
        store = self.emap.catalogue.data_dir
        table = neighbour_table(
            self.emap.catalogue,
            layer.name,
            layer.level,
            self.k,
            config=layer.config,
            run=self.emap.run,
            items=[item],
        )
        first = table.iloc[0]
        clip = explore.segment_preview(store, first["video_path"], first["audio_path"], self.cache_dir)
        caption = " · ".join(line for line in grids.tile_caption(first)[:3] if line)
        self.player.value = explore.video_player(clip, caption, self.width, autoplay=True)
        budget = explore.EmbedBudget(50)  # per click: k + 1 small clips
        self.neighbours.value = (
            f"<b>{self.k} nearest in {html.escape(self.emap.caption(layer))}</b>"
            + grids.neighbour_grid(table, store, budget, self.cache_dir, width=200)
        )
        return table

    def _clicked(self, trace, points, state) -> None:
        if points.point_inds:
            item = int(trace.customdata[points.point_inds[0]][0])
            self.show(self.emap.layers[trace.meta], item)

    def _selected(self, trace, points, selector) -> None:
        self.selected[points.trace_index] = [int(trace.customdata[i][0]) for i in points.point_inds]
        visible = [i for i, t in enumerate(self.figure.data) if t.visible is True]
        chosen = sorted({item for i in visible for item in self.selected.get(i, [])})
        if not chosen:
            self.selection.value = "<p>Nothing selected.</p>"
            return
        layer = self.emap.layers[self.figure.data[visible[0]].meta]
        items = self.emap.catalogue.items(layer.level).iloc[chosen]
        summary = selection_summary(items).assign(share=lambda t: t["share"].map("{:.0%}".format))
        videos = ", ".join(map(html.escape, items["video_id"].astype(str).unique()[:30]))
        self.selection.value = (
            f"<b>{len(items)} {layer.level}s of {items['video_id'].nunique()} videos selected</b>"
            f"<p style='font-size:11px'>{videos}</p>{summary.to_html(index=False)}"
        )
