"""Nearest neighbours and the Catalogue against slow references written here."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mvnb import neighbours as nb
from mvnb.corpus import rotation_split
from mvnb.embeddings import frozen_embeddings, learned_embeddings


def reference_neighbours(queries, gallery, k, query_groups, gallery_groups):
    """Slow reference: per query, cosine to every gallery item outside its group, best first, ties to the
    earlier item."""
    out = []
    for i, q in enumerate(queries):
        scored = []
        for j, g in enumerate(gallery):
            if query_groups[i] == gallery_groups[j]:
                continue
            nq, ng = np.linalg.norm(q), np.linalg.norm(g)
            cos = float(q @ g / (nq * ng)) if nq and ng else 0.0
            scored.append((-cos, j))
        out.append([(j, -c) for c, j in sorted(scored)[:k]])
    return out


@settings(max_examples=60, deadline=None)
@given(data=st.data(), q=st.integers(1, 6), g=st.integers(4, 14), dim=st.integers(1, 5), k=st.integers(1, 3))
def test_cosine_neighbours_match_a_slow_reference(data, q, g, dim, k):
    values = st.integers(-4, 4)  # small integers: ties happen, no float underflow
    queries = data.draw(arrays(np.int64, (q, dim), elements=values)).astype(np.float32)
    gallery = data.draw(arrays(np.int64, (g, dim), elements=values)).astype(np.float32)
    gallery_groups = data.draw(arrays(np.int64, g, elements=st.integers(0, 3)))
    query_groups = data.draw(arrays(np.int64, q, elements=st.integers(0, 3)))
    eligible = [(gallery_groups != qg).sum() for qg in query_groups]
    if min(eligible) < k:
        with pytest.raises(ValueError, match="k = "):
            nb.cosine_neighbours(queries, gallery, k, query_groups, gallery_groups)
        return
    indices, sims = nb.cosine_neighbours(queries, gallery, k, query_groups, gallery_groups)
    reference = reference_neighbours(
        queries.astype(np.float64), gallery.astype(np.float64), k, query_groups, gallery_groups
    )
    for i, expected in enumerate(reference):
        assert len(set(indices[i])) == k
        assert all(gallery_groups[j] != query_groups[i] for j in indices[i])
        # the same similarities, best first (indices may differ only between float-level ties)
        np.testing.assert_allclose(sims[i], [s for _, s in expected], atol=1e-5)
        assert np.all(np.diff(sims[i]) <= 1e-6)


def test_ties_go_to_the_earlier_gallery_item_and_no_groups_leaves_nothing_out():
    gallery = np.array([[1.0, 0], [0, 1], [2, 0], [1, 0]])
    indices, sims = nb.cosine_neighbours(np.array([[3.0, 0]]), gallery, 3)
    assert indices.tolist() == [[0, 2, 3]]
    np.testing.assert_allclose(sims, [[1, 1, 1]])
    with pytest.raises(ValueError, match="together"):
        nb.cosine_neighbours(gallery, gallery, 1, query_groups=[0, 1, 2, 3])


def test_segment_search_leaves_out_the_seeds_own_video():
    # segments of the same video are identical: the nearest must still come from another video
    emb = np.array([[1.0, 0], [1, 0], [0.9, 0.1], [0, 1]])
    groups = np.array(["a", "a", "b", "c"])
    indices, _ = nb.cosine_neighbours(emb, emb, 2, groups, groups)
    assert indices[0].tolist() == [2, 3] and indices[1].tolist() == [2, 3]
    assert indices[2].tolist() == [0, 1]


def test_video_embeddings_are_per_video_means_in_sorted_id_order():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(9, 4)).astype(np.float32)
    ids = np.array(["v2", "v1", "v2", "v3", "v1", "v1", "v3", "v2", "v2"])
    got_ids, got = nb.video_embeddings(emb, ids)
    expected = pd.DataFrame(emb).groupby(ids).mean()
    assert got_ids.tolist() == ["v1", "v2", "v3"]
    np.testing.assert_allclose(got, expected.to_numpy(), rtol=1e-5, atol=1e-6)
    # unit_mean ignores each segment's length
    scaled = emb * rng.uniform(0.1, 10, size=(9, 1)).astype(np.float32)
    np.testing.assert_allclose(
        nb.video_embeddings(scaled, ids, "unit_mean")[1],
        nb.video_embeddings(emb, ids, "unit_mean")[1],
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="aggregate"):
        nb.video_embeddings(emb, ids, "median")


def fake_catalogue(n_videos=8, per_video=3, dim=6, seeds=(0,), rotations=(0,), folds=None):
    """A Catalogue in memory: genre decides the audio direction, so audio-based embeddings agree with genre.
    By default videos v0 and v5 are in fold 9 (rotation 0's test split), v1 in fold 8 (its validation), the
    rest
    in training folds; `folds` gives each video's fold instead. One run per config, rotation and seed."""
    rng = np.random.default_rng(0)
    genres = np.array(["pop", "rock", "jazz", "folk"])[np.arange(n_videos) % 4]
    folds = folds or {v: {0: 9, 5: 9, 1: 8}.get(v, v % 8) for v in range(n_videos)}
    rows = []
    for v in range(n_videos):
        for k in range(per_video):
            rows.append(
                dict(
                    segment_id=f"v{v}_{k:02d}",
                    video_id=f"v{v}",
                    k=k,
                    video_path=f"segments/v{v}/{k:02d}.mp4",
                    audio_path=f"segments/v{v}/{k:02d}.wav",
                    split=str(rotation_split([folds[v]], 0)[0]),
                    fold=folds[v],
                    genre=genres[v],
                    tags="fast;drums" if genres[v] in ("pop", "rock") else "slow",
                )
            )
    segments = pd.DataFrame(rows)
    directions = {g: rng.normal(size=dim) for g in np.unique(genres)}
    audio = np.stack([directions[g] for g in segments["genre"]]) + 0.05 * rng.normal(
        size=(len(segments), dim)
    )
    video = rng.normal(size=(len(segments), 4))
    runs = {
        (c, r, s): learned_embeddings(audio + 0.01 * s, rng.normal(size=audio.shape))
        for c in ("paper_baseline", "corrected")
        for r in rotations
        for s in seeds
    }
    return nb.Catalogue(None, segments, frozen_embeddings(audio, video), runs, {key: None for key in runs})


def test_video_level_follows_the_papers_recipe():
    catalogue = fake_catalogue()
    run = catalogue.runs["corrected", 0, 0]
    ids = catalogue.segments["video_id"]
    per_modality = [
        pd.DataFrame(nb.unit_rows(run[m])).groupby(ids).mean().to_numpy() for m in ("CL_a", "CL_v")
    ]
    np.testing.assert_allclose(
        catalogue.embedding("CL_agg", "video", "corrected"),
        (per_modality[0] + per_modality[1]) / 2,
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="config"):
        catalogue.embedding("CL_agg", "video")


def test_neighbour_table_has_the_seed_then_k_neighbours_from_other_videos():
    catalogue = fake_catalogue()
    table = nb.neighbour_table(catalogue, "musicnn", "segment", k=3, n_seeds=5)
    assert len(table) == 5 * 4 and table["row"].nunique() == 5
    for _, tiles in table.groupby("row"):
        assert tiles["rank"].tolist() == [0, 1, 2, 3]
        assert np.isnan(tiles["similarity"].iloc[0]) and (np.diff(tiles["similarity"].iloc[1:]) <= 1e-6).all()
        assert (tiles["video_id"].iloc[1:] != tiles["video_id"].iloc[0]).all()
        assert (tiles["genre"].iloc[1:] == tiles["genre"].iloc[0]).all()  # musicnn here is genre
    assert table.drop_duplicates("row")["item"].is_unique
    videos = nb.neighbour_table(catalogue, "CL_agg", "video", k=2, n_seeds=50, config="paper_baseline")
    assert videos["row"].nunique() == 8  # capped at the number of videos
    assert (videos["segment_id"].str.endswith("_01")).all()  # the middle of three segments is the clip
    cross = nb.neighbour_table(
        catalogue, "CL_a", "segment", k=2, n_seeds=3, gallery="CL_v", config="corrected"
    )
    assert len(cross) == 9
