"""Metadata agreement and the agreement table against slow references written here."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_neighbours import fake_catalogue

from mvnb import agreement as ag
from mvnb import neighbours as nb
from mvnb.embeddings import learned_embeddings
from mvnb.metrics import unit_rows


def slow_agreement(seeds, neighbours, genres, tags, groups):
    def jac(a, b):
        a, b = set(filter(None, a.split(";"))), set(filter(None, b.split(";")))
        return len(a & b) / len(a | b) if a | b else 0.0

    rows = []
    for s, ns in zip(seeds, neighbours, strict=True):
        eligible = [j for j in range(len(genres)) if groups[j] != groups[s]]
        rows.append(
            dict(
                genre=np.mean([genres[j] == genres[s] for j in ns]),
                tags=np.mean([jac(tags[s], tags[j]) for j in ns]),
                genre_chance=np.mean([genres[j] == genres[s] for j in eligible]),
                tags_chance=np.mean([jac(tags[s], tags[j]) for j in eligible]),
            )
        )
    return pd.DataFrame(rows)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(4, 12), k=st.integers(1, 3))
def test_metadata_agreement_matches_a_slow_reference(data, n, k):
    genres = data.draw(st.lists(st.sampled_from(["pop", "rock", "jazz"]), min_size=n, max_size=n))
    tags = data.draw(
        st.lists(
            st.lists(st.sampled_from(["fast", "slow", "minor", "drums"]), max_size=3).map(";".join),
            min_size=n,
            max_size=n,
        )
    )
    groups = data.draw(st.lists(st.integers(0, n // 2), min_size=n, max_size=n))
    seeds = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=5)))
    neighbours = np.array(
        data.draw(
            st.lists(
                st.lists(st.integers(0, n - 1), min_size=k, max_size=k),
                min_size=len(seeds),
                max_size=len(seeds),
            )
        )
    )
    if any(all(g == groups[s] for g in groups) for s in seeds):
        return  # a seed with nothing to compare against has no chance level
    got = ag.metadata_agreement(seeds, neighbours, genres, tags, groups)
    pd.testing.assert_frame_equal(
        got, slow_agreement(seeds, neighbours, genres, tags, groups), check_dtype=False, atol=1e-6
    )


def test_chance_is_what_every_eligible_item_as_neighbour_scores():
    rng = np.random.default_rng(2)
    genres = rng.choice(["a", "b", "c"], 30)
    tags = [";".join(rng.choice(["x", "y", "z", "w"], rng.integers(0, 3), replace=False)) for _ in range(30)]
    groups = np.repeat(np.arange(10), 3)
    seeds = np.arange(30)
    everything = np.array([np.flatnonzero(groups != groups[s]) for s in seeds])  # 27 each
    table = ag.metadata_agreement(seeds, everything, genres, tags, groups)
    np.testing.assert_allclose(table["genre"], table["genre_chance"])
    np.testing.assert_allclose(table["tags"], table["tags_chance"], atol=1e-6)


def test_missing_genres_are_nan_and_two_empty_tag_sets_count_zero():
    table = ag.metadata_agreement([0, 1], [[1], [0]], ["pop", None], ["", ""], ["a", "b"])
    assert np.isnan(table["genre"][1]) and table["genre"][0] == 0.0
    assert table["tags"].tolist() == [0.0, 0.0]


def test_agreement_table_covers_every_embedding_level_and_run():
    catalogue = fake_catalogue(seeds=(0, 1))
    table = ag.agreement_table(catalogue, k=2, n_draws=200)
    per_level = 3 + 2 * (3 + 2)
    assert len(table) == 2 * per_level
    assert set(table["embedding"]) == {
        "musicnn",
        "R(2+1)D",
        "concat",
        "CL_a",
        "CL_v",
        "CL_agg",
        "CL_a→CL_v",
        "CL_v→CL_a",
    }
    musicnn = table.set_index(["level", "embedding", "config"]).loc[("segment", "musicnn", "frozen")]
    # every test seed finds its genre; 3 of the 21 segments of the other videos share it
    assert musicnn["test_genre"] == 1.0 and musicnn["test_genre_chance"] == pytest.approx(3 / 21)
    assert musicnn["test_genre_versus_chance"] == "above chance" and musicnn["runs"] == 1
    segment = (table["level"] == "segment").to_numpy()
    np.testing.assert_array_equal(table["test_seeds"], np.where(segment, 6, 2))  # v0 and v5
    np.testing.assert_array_equal(table["train_seeds"], np.where(segment, 15, 5))  # v2, v3, v4, v6, v7
    assert (table["test_videos"] == 2).all() and (table["train_videos"] == 5).all()
    cl = table[(table["config"] == "corrected") & (table["embedding"] == "CL_a")]
    assert (cl["runs"] == 2).all() and (cl["test_genre_low"] <= cl["test_genre"]).all()
    readable = ag.format_agreement(table)
    assert readable.loc[0, "genre@k, test-split seeds"] == "1.000 [1.000, 1.000]"
    assert readable.loc[0, "test-split seeds"] == 6 and readable.loc[0, "test_videos"] == 2
    assert "genre@k, train-split seeds" in readable and readable.loc[0, "genre@k vs chance"] == "above chance"
    assert "6 test seeds of 2 videos" in ag.agreement_note(table, 2, catalogue.rotations)


def test_agreement_on_test_seeds_is_the_mean_over_test_items_against_the_whole_corpus():
    """The slow way: search from every test item over every item of the other videos, then average; the
    interval is the bootstrap over the test seeds' videos, and training seeds are scored apart."""
    from mvnb.metrics import bootstrap_interval

    catalogue = fake_catalogue(seeds=(0, 1))
    items, groups = catalogue.items("segment"), catalogue.groups("segment")
    rows = []
    for seed in (0, 1):
        x = catalogue.embedding("CL_v", "segment", "corrected", (0, seed))
        for i in np.flatnonzero(items["split"] == "test"):
            others = np.flatnonzero(groups != groups[i])
            sims = [x[i] @ x[j] / np.linalg.norm(x[i]) / np.linalg.norm(x[j]) for j in others]
            near = others[np.argsort(-np.array(sims), kind="stable")[:2]]
            rows.append((items["genre"][near] == items["genre"][i]).mean())
    test_ids = np.tile(groups[items["split"] == "test"], 2)
    expected = bootstrap_interval(np.array(rows), test_ids, "mean", n_draws=300)
    table = ag.agreement_table(catalogue, k=2, levels=["segment"], n_draws=300).set_index(
        ["embedding", "config"]
    )
    got = table.loc[("CL_v", "corrected")]
    assert (got["test_genre"], got["test_genre_low"], got["test_genre_high"]) == pytest.approx(expected)
    assert got["train_genre"] != got["test_genre"] or got["train_seeds"] != got["test_seeds"]


def test_each_test_seed_is_scored_with_the_runs_of_the_rotation_that_tests_it():
    """Two rotations: v9 (fold 9) is tested in rotation 0, v8 (fold 8) in rotation 1. Rotation 0's CL_v
    follows
    genre, rotation 1's is noise; the slow way, each test item searched in its own rotation's run, is what
    the table
    reports, with the interval of a bootstrap within rotations. Frozen rows take the same test items; training
    seeds are rotation 0's, in its runs."""
    from mvnb.metrics import bootstrap_interval

    catalogue = fake_catalogue(n_videos=10, rotations=(0, 1), folds={v: v for v in range(10)})
    rng = np.random.default_rng(1)
    aligned = catalogue.frozen["musicnn"]
    catalogue.runs["corrected", 0, 0] = learned_embeddings(aligned, aligned)
    catalogue.runs["corrected", 1, 0] = learned_embeddings(aligned, rng.normal(size=aligned.shape))
    items, groups = catalogue.items("segment"), catalogue.groups("segment")
    values, ids, strata = [], [], []
    for rotation, fold in ((0, 9), (1, 8)):
        x = unit_rows(catalogue.embedding("CL_v", "segment", "corrected", (rotation, 0)))
        for i in np.flatnonzero(items["fold"] == fold):
            others = np.flatnonzero(groups != groups[i])
            near = others[np.argsort(-(x[others] @ x[i]), kind="stable")[:2]]
            values.append((items["genre"][near] == items["genre"][i]).mean())
            ids.append(groups[i])
            strata.append(rotation)
    expected = bootstrap_interval(np.array(values), np.array(ids), "mean", np.array(strata), n_draws=300)
    table = ag.agreement_table(catalogue, k=2, levels=["segment"], n_draws=300).set_index(
        ["embedding", "config"]
    )
    got = table.loc[("CL_v", "corrected")]
    assert (got["test_genre"], got["test_genre_low"], got["test_genre_high"]) == pytest.approx(expected)
    assert got["test_videos"] == 2 and got["test_seeds"] == 6 and got["runs"] == 2
    assert (
        table.loc[("musicnn", "frozen"), "test_videos"] == 2
        and table.loc[("musicnn", "frozen"), "test_seeds"] == 6
    )
    assert (
        got["train_videos"] == table.loc[("musicnn", "frozen"), "train_videos"] == 8
    )  # folds 0-7, rotation 0's
    assert "rotations 0, 1" in ag.agreement_note(table.reset_index(), 2, catalogue.rotations)


def test_blockwise_search_and_agreement_equal_the_whole(monkeypatch):
    rng = np.random.default_rng(3)
    emb, groups = rng.normal(size=(40, 5)), np.repeat(np.arange(20), 2)
    genres, tags = rng.choice(["a", "b"], 40), rng.choice(["x;y", "y", ""], 40)
    whole = nb.cosine_neighbours(emb, emb, 3, groups, groups)
    agreement = ag.metadata_agreement(np.arange(40), whole[0], genres, tags, groups)
    monkeypatch.setattr(nb, "_CHUNK_ELEMENTS", 100)  # blocks of 2 queries
    monkeypatch.setattr(ag, "_CHUNK_ELEMENTS", 100)  # blocks of 2 seeds
    blocks = nb.cosine_neighbours(emb, emb, 3, groups, groups)
    np.testing.assert_array_equal(blocks[0], whole[0])
    pd.testing.assert_frame_equal(
        ag.metadata_agreement(np.arange(40), blocks[0], genres, tags, groups), agreement
    )
