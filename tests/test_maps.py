"""UMAP maps: seeded and faithful to clusters, one figure for every layer behind a dropdown, an
offline HTML page, and the live explorer's click and lasso paths driven as the frontend does."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvnb import embeddings, maps, neighbours


def blobs(n_per: int = 40, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three tight clusters on three orthogonal directions: `(3 n_per, dim)` vectors and labels."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_per)
    centres = np.eye(dim)[:3] * 10
    return centres[labels] + rng.normal(scale=0.5, size=(len(labels), dim)), labels


def test_umap_is_seeded_and_keeps_cosine_clusters_apart():
    x, labels = blobs()
    a, b = maps.umap_coordinates(x, seed=3), maps.umap_coordinates(x, seed=3)
    assert a.shape == (len(x), 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    # each point's nearest other point on the map is from its own cluster
    d = np.linalg.norm(a[:, None] - a[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(1)] == labels).mean() == 1.0


def test_umap_refuses_too_few_points():
    with pytest.raises(ValueError, match="at least 4"):
        maps.umap_coordinates(np.ones((3, 5)))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["rock", "pop", None]),
            st.lists(st.sampled_from(["fast", "minor", "vocal"]), unique=True),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_selection_summary_counts_what_is_selected(rows):
    items = pd.DataFrame({"genre": [g for g, _ in rows], "tags": [";".join(t) for _, t in rows]})
    table = maps.selection_summary(items)
    genres = table[table["kind"] == "genre"]
    assert genres["count"].sum() == len(items)
    for _, row in table[table["kind"] == "tag"].iterrows():
        assert row["count"] == sum(row["name"] in t for _, t in rows)
    assert np.allclose(table["share"], table["count"] / len(items))
    assert set(genres["name"]) == {g or maps.UNKNOWN_GENRE for g, _ in rows}


def tiny_catalogue(n_videos: int = 6, per_video: int = 2) -> neighbours.Catalogue:
    """A catalogue of random embeddings, without clips (enough for figures, not for players)."""
    rng = np.random.default_rng(1)
    n = n_videos * per_video
    segments = pd.DataFrame(
        {
            "video_id": np.repeat([f"v{i}" for i in range(n_videos)], per_video),
            "k": np.tile(np.arange(per_video), n_videos),
            "genre": np.repeat(["rock", "pop", "folk"] * (n_videos // 3), per_video),
            "tags": "fast;minor",
        }
    )
    frozen = embeddings.frozen_embeddings(rng.normal(size=(n, 8)), rng.normal(size=(n, 4)))
    run = embeddings.learned_embeddings(rng.normal(size=(n, 3)), rng.normal(size=(n, 3)))
    return neighbours.Catalogue(None, segments, frozen, {("corrected", 0, 0): run}, {})


def test_map_figure_has_a_dropdown_entry_per_layer_that_shows_exactly_its_points(tmp_path):
    catalogue = tiny_catalogue()
    layers = maps.report_layers(["corrected"])
    assert len(layers) == 12
    emap = maps.EmbeddingMap(
        catalogue,
        {
            layer: np.random.default_rng(0).normal(size=(len(catalogue.items(layer.level)), 2))
            for layer in layers
        },
        run=(0, 0),
    )
    fig = maps.map_figure(emap)
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == [layer.label for layer in layers]
    for index, (button, layer) in enumerate(zip(buttons, layers, strict=True)):
        shown = [trace for trace, visible in zip(fig.data, button.args[0]["visible"], strict=True) if visible]
        assert {trace.meta for trace in shown} == {index}
        items = sorted(int(row[0]) for trace in shown for row in trace.customdata)
        assert items == list(range(len(catalogue.items(layer.level))))
    assert [t.meta for t in fig.data if t.visible] == [0] * 3

    page = maps.write_map_html(fig, tmp_path / "umap.html")
    text = page.read_text()
    assert 'src="plotly.min.js"' in text and "cdn.plot.ly" not in text
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000
    assert page.stat().st_size < 200_000


def test_a_collapsed_embedding_is_flagged_and_not_mapped():
    """Learned embeddings that are one vector up to 1e-7 are not laid out by UMAP: their items sit at
    one spot and every title says so; the frozen ones are mapped as usual."""
    catalogue = tiny_catalogue()
    n = len(catalogue.segments)
    one = np.random.default_rng(2).normal(size=3) + 1e-7 * np.random.default_rng(3).normal(size=(n, 3))
    catalogue.runs[("corrected", 0, 0)] = embeddings.learned_embeddings(one, one)
    layers = maps.report_layers(["corrected"], ["segment"])
    emap = maps.build_map(catalogue, layers, run=(0, 0))
    learned = {layer for layer in layers if layer.config}
    assert emap.collapsed == learned and len(learned) == 3
    for layer in learned:
        assert not emap.coords[layer].any()
        assert emap.caption(layer) == f"{layer.label}: collapsed, not mapped"
        assert "collapsed" in maps.plot_map(emap, layer).axes[0].get_title()
    assert all(emap.coords[layer].std(axis=0).min() > 0 for layer in layers if not layer.config)
    labels = [b.label for b in maps.map_figure(emap).layout.updatemenus[0].buttons]
    assert labels == [emap.caption(layer) for layer in layers]


# --------------------------------------------------------------------------- the live explorer, on the quick
# report


@pytest.fixture(scope="module")
def explorer(quick_report):
    """A MapExplorer over the quick report's store and corrected run, with two layers."""
    store = quick_report.root / "data" / "synth_quick" / "store"
    assert (store / "manifest.csv").exists(), quick_report.log[-3000:]
    catalogue = neighbours.load_catalogue(
        store, neighbours.report_runs(quick_report.root / "runs", ("corrected",))
    )
    layers = [maps.Layer("musicnn"), maps.Layer("CL_agg", "segment", "corrected")]
    emap = maps.build_map(catalogue, layers, run=(0, 0))
    return maps.MapExplorer(emap, k=3, cache_dir=quick_report.root / "map_previews")


def frontend_event(figure, event_type: str, trace_index: int, point_indexes: list[int]) -> None:
    """Deliver a points event exactly as the plotly.js frontend does: through the widget's
    `_js2py_pointsCallback` trait, which dispatches it to the traces' callbacks."""
    figure._js2py_pointsCallback = {
        "event_type": event_type,
        "points": {
            "trace_indexes": [trace_index] * len(point_indexes),
            "point_indexes": point_indexes,
            "xs": [0.0] * len(point_indexes),
            "ys": [0.0] * len(point_indexes),
        },
        "device_state": {
            "ctrl": False,
            "alt": False,
            "shift": False,
            "meta": False,
            "button": 0,
            "buttons": 1,
        },
        "selector": {"type": "lasso", "selector_state": {"xs": [0, 1, 1], "ys": [0, 0, 1]}}
        if event_type == "plotly_selected"
        else None,
    }


def test_a_click_plays_the_point_and_lists_its_neighbours_in_that_layer(explorer):
    figure = explorer.figure
    before = explorer.player.value
    trace_index = next(i for i, t in enumerate(figure.data) if t.meta == 1)  # a CL_agg trace
    item = int(figure.data[trace_index].customdata[0][0])
    frontend_event(figure, "plotly_click", trace_index, [0])
    assert explorer.player.value != before
    assert "<video" in explorer.player.value and "autoplay" in explorer.player.value
    assert "data:video/mp4;base64," in explorer.player.value and " muted" not in explorer.player.value
    segment = explorer.emap.catalogue.segments.iloc[item]
    assert f"{segment['video_id']} · segment {segment['k']}" in explorer.player.value
    assert explorer.neighbours.value.count("<video") == explorer.k + 1
    assert "CL_agg (corrected)" in explorer.neighbours.value

    # the listed neighbours are the item's nearest in CL_agg, outside its own video
    expected = explorer.show(explorer.emap.layers[1], item)
    _, indices, _ = neighbours.search(
        explorer.emap.catalogue,
        "CL_agg",
        "segment",
        explorer.k,
        config="corrected",
        run=(0, 0),
        seeds=np.array([item]),
    )
    assert expected["item"].tolist() == [item] + indices[0].tolist()

    first = explorer.player.value
    other = next(i for i, t in enumerate(figure.data) if t.meta == 1 and i != trace_index)
    frontend_event(figure, "plotly_click", other, [0])
    assert explorer.player.value != first and explorer.player.value.count("<video") == 1


def test_a_lasso_lists_the_genres_and_tags_of_the_selected_points(explorer):
    figure = explorer.figure
    trace_index = next(i for i, t in enumerate(figure.data) if t.meta == 0)
    trace = figure.data[trace_index]
    chosen = list(range(min(3, len(trace.x))))
    frontend_event(figure, "plotly_selected", trace_index, chosen)
    genre = trace.name
    assert f"{len(chosen)} segments of" in explorer.selection.value
    assert f"<td>{genre}</td>" in explorer.selection.value
    frontend_event(figure, "plotly_selected", trace_index, [])
    assert "Nothing selected" in explorer.selection.value
