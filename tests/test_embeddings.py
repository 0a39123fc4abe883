"""The six embeddings, defined once: their names, concat's cosine as the mean of the two cosines, CL_agg
as the mean of the unit-length modalities, and the same vectors wherever they are used."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvnb import embeddings, maps, neighbours, paper, table2
from mvnb.metrics import unit_rows
from mvnb.runs import run_dir


def test_one_vocabulary_everywhere():
    assert embeddings.NAMES == ("musicnn", "R(2+1)D", "concat", "CL_a", "CL_v", "CL_agg")
    assert neighbours.EMBEDDINGS == table2.table.EMBEDDINGS == embeddings.NAMES
    assert set(paper.PAPER_TABLE2) == set(embeddings.NAMES)
    assert {layer.name for layer in maps.report_layers(["corrected"])} == set(embeddings.NAMES)
    assert set(embeddings.DEFINITIONS) == set(embeddings.NAMES)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 8), scale=st.floats(1e-2, 1e3))
def test_concat_cosine_is_the_mean_of_the_two_cosines_whatever_the_scales(seed, n, scale):
    rng = np.random.default_rng(seed)
    audio, video = rng.normal(size=(n, 7)) * scale, rng.normal(size=(n, 3))
    concat = embeddings.frozen_embeddings(audio, video)["concat"]
    u = unit_rows
    np.testing.assert_allclose(
        u(concat) @ u(concat).T, (u(audio) @ u(audio).T + u(video) @ u(video).T) / 2, atol=1e-5
    )
    np.testing.assert_allclose(np.linalg.norm(concat, axis=1), np.sqrt(2), rtol=1e-5)


def test_cl_agg_is_the_mean_of_unit_rows_and_zero_rows_stay_zero():
    a, v = np.array([[3.0, 0.0], [0.0, 0.0]]), np.array([[0.0, 2.0], [0.0, 5.0]])
    np.testing.assert_allclose(embeddings.cl_agg(a, v), [[0.5, 0.5], [0.0, 0.5]])
    np.testing.assert_allclose(embeddings.learned_embeddings(a * 100, v)["CL_agg"], [[0.5, 0.5], [0.0, 0.5]])
    with pytest.raises(ValueError, match="one shape"):
        embeddings.cl_agg(a, v[:, :1])
    with pytest.raises(ValueError, match="rebuild the feature store"):
        embeddings.concat(a, v[:1])


def test_failed_segments_stay_not_finite():
    audio, video = np.ones((2, 3)), np.ones((2, 2))
    audio[1] = np.nan
    frozen = embeddings.frozen_embeddings(audio, video)
    assert (
        np.isfinite(frozen["concat"][0]).all() and not np.isfinite(frozen["concat"][1]).all()
    )  # probes leave it out


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 40), k=st.integers(1, 5), n_videos=st.integers(1, 8), seed=st.integers(0, 2**31))
def test_video_means_match_pandas_groupby(n, k, n_videos, seed):
    rng = np.random.default_rng(seed)
    values, ids = rng.normal(size=(n, k)), rng.integers(0, n_videos, n).astype(str)
    videos, means = embeddings.video_means(values, ids)
    expected = pd.DataFrame(values).groupby(ids).mean()
    np.testing.assert_array_equal(videos, expected.index.to_numpy())
    np.testing.assert_allclose(means, expected.to_numpy())


def test_cl_embeddings_are_read_from_a_run_folder_through_the_one_definition(tmp_path):
    run = run_dir(tmp_path, "corrected", 2)
    run.mkdir(parents=True)
    rng = np.random.default_rng(0)
    audio, video = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    np.savez(run / "embeddings.npz", audio=audio, video=video, segment_index=np.arange(5))
    got = embeddings.cl_embeddings(run, 5)
    np.testing.assert_allclose(got["CL_a"], audio, rtol=1e-6)
    np.testing.assert_allclose(got["CL_agg"], embeddings.cl_agg(audio, video))
    with pytest.raises(ValueError, match="not the manifest's 6"):
        embeddings.cl_embeddings(run, 6)
    with pytest.raises(FileNotFoundError, match="notebook 03"):
        embeddings.cl_embeddings(tmp_path / "nowhere", 5)


def test_probes_browsing_and_the_map_get_the_same_vectors(quick_report):
    """The store's frozen embeddings, as Table 2 probes them and as the catalogue (browse, map) holds them."""
    store = quick_report.root / "data" / "synth_quick" / "store"
    assert (store / "manifest.csv").exists(), quick_report.log[-3000:]
    probed = embeddings.store_embeddings(store)
    catalogue = neighbours.load_catalogue(
        store, neighbours.report_runs(quick_report.root / "runs", ("corrected",))
    )
    rows = (
        catalogue.segments["segment_id"]
        .map({s: i for i, s in enumerate(neighbours.load_catalogue(store).segments["segment_id"])})
        .to_numpy()
    )
    for name in embeddings.FROZEN:
        np.testing.assert_array_equal(catalogue.embedding(name), probed[name][rows])
    run = embeddings.cl_embeddings(catalogue.run_dirs["corrected", 0, 0], len(probed["musicnn"]))
    np.testing.assert_array_equal(catalogue.embedding("CL_agg", config="corrected"), run["CL_agg"][rows])
