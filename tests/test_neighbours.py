"""Nearest neighbours and metadata agreement against slow references written here; cold-start
queries end to end on the shared quick-profile report."""

import argparse
import json

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
    got = nb.metadata_agreement(seeds, neighbours, genres, tags, groups)
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
    table = nb.metadata_agreement(seeds, everything, genres, tags, groups)
    np.testing.assert_allclose(table["genre"], table["genre_chance"])
    np.testing.assert_allclose(table["tags"], table["tags_chance"], atol=1e-6)


def test_missing_genres_are_nan_and_two_empty_tag_sets_count_zero():
    table = nb.metadata_agreement([0, 1], [[1], [0]], ["pop", None], ["", ""], ["a", "b"])
    assert np.isnan(table["genre"][1]) and table["genre"][0] == 0.0
    assert table["tags"].tolist() == [0.0, 0.0]


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


def test_agreement_table_covers_every_embedding_level_and_run():
    catalogue = fake_catalogue(seeds=(0, 1))
    table = nb.agreement_table(catalogue, k=2, n_draws=200)
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
    readable = nb.format_agreement(table)
    assert readable.loc[0, "genre@k, test-split seeds"] == "1.000 [1.000, 1.000]"
    assert readable.loc[0, "test-split seeds"] == 6 and readable.loc[0, "test_videos"] == 2
    assert "genre@k, train-split seeds" in readable and readable.loc[0, "genre@k vs chance"] == "above chance"
    assert "6 test seeds of 2 videos" in nb.agreement_note(table, 2, catalogue.rotations)


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
    table = nb.agreement_table(catalogue, k=2, levels=["segment"], n_draws=300).set_index(
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
        x = nb.unit_rows(catalogue.embedding("CL_v", "segment", "corrected", (rotation, 0)))
        for i in np.flatnonzero(items["fold"] == fold):
            others = np.flatnonzero(groups != groups[i])
            near = others[np.argsort(-(x[others] @ x[i]), kind="stable")[:2]]
            values.append((items["genre"][near] == items["genre"][i]).mean())
            ids.append(groups[i])
            strata.append(rotation)
    expected = bootstrap_interval(np.array(values), np.array(ids), "mean", np.array(strata), n_draws=300)
    table = nb.agreement_table(catalogue, k=2, levels=["segment"], n_draws=300).set_index(
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
    assert "rotations 0, 1" in nb.agreement_note(table.reset_index(), 2, catalogue.rotations)


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


def test_run_data_dir_reads_the_run_or_asks_for_data(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(ValueError, match="--data"):
        nb.run_data_dir(run)
    store = tmp_path / "store"
    (store / "features" / "musicnn").mkdir(parents=True)
    (store / "manifest.csv").write_text("segment_id\n")
    (run / "summary.json").write_text(
        json.dumps({"provenance": {"audio": {"path": str(store / "features" / "musicnn")}}})
    )
    assert nb.run_data_dir(run) == store
    (run / "config.json").write_text(json.dumps({"data_dir": "/somewhere/else"}))
    assert str(nb.run_data_dir(run)) == "/somewhere/else"


def parse_similar(argv):
    parser = argparse.ArgumentParser()
    nb.add_arguments(parser)
    return parser.parse_args(argv)


def test_similar_cli_says_what_is_wrong_in_one_line(tmp_path, capsys):
    video = tmp_path / "new.mp4"
    video.write_bytes(b"")
    assert nb.run(parse_similar(["--run", str(tmp_path / "no_run"), "--video", str(video)])) == 2
    out = capsys.readouterr().out.strip()
    assert out.startswith("similar: ") and "--data" in out and len(out.splitlines()) == 1


def test_similar_finds_a_catalogue_video_queried_as_new(quick_report, capsys):
    """End to end on the quick report: a catalogue video, cut and encoded again from its file,
    has the features the store holds, and `similar` ranks it first with cosine about 1."""
    from mvnb import features
    from mvnb.results import run_dir

    runs, store = quick_report.root / "runs", quick_report.root / "data" / "synth_quick" / "store"
    run = run_dir(runs, "corrected", 0, rotation=0)
    if not (run / "heads.pt").exists():
        pytest.skip("the quick report has no corrected run (its notebook smoke tests say why)")
    manifest, audio, video, _, _ = features.load_feature_pair(store)
    video_id = manifest["video_id"].iloc[0]
    source = quick_report.root / "data" / "synth_quick" / "videos" / f"{video_id}.mp4"

    segments, new_audio, new_video = nb.encode_video(source, store, quick_report.root / "query_again")
    rows = manifest.index[manifest["video_id"] == video_id]
    assert segments["start_s"].tolist() == manifest.loc[rows, "start_s"].tolist()
    for new, old in ((new_audio[:, 0], audio[rows, 0]), (new_video[:, 0], video[rows, 0])):
        cos = (nb.unit_rows(new) * nb.unit_rows(np.asarray(old, dtype=np.float32))).sum(1)
        assert cos.min() > 0.999, cos

    assert nb.run(parse_similar(["--run", str(run), "--video", str(source), "--k", "3"])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"similar: {video_id} (")
    first = lines[2].split()
    assert first[:2] == ["1", video_id] and float(first[2]) > 0.999


def test_a_video_that_gives_no_segment_is_refused_with_its_reason(tmp_path):
    from mvnb import features, segments

    store = tmp_path / "store"
    store.mkdir()
    (store / "preprocess.json").write_text(json.dumps(segments.PreprocessParams().as_json()))
    for modality in features.KEYS:
        folder = features.store_dir(store, modality)
        folder.mkdir(parents=True)
        (folder / "meta.json").write_text(
            json.dumps(
                {  # what the encoding reads before it cuts the video
                    "settings": {
                        "views": {"frames": 8, "seed": 0},
                        "precision": "fp32",
                        "model": "MSD_musicnn",
                    },
                    "provenance": {"weights": "random"},
                }
            )
        )
    empty = tmp_path / "new.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"^new\.mp4: empty file"):
        nb.encode_video(empty, store, tmp_path / "work")


def test_blockwise_search_and_agreement_equal_the_whole(monkeypatch):
    rng = np.random.default_rng(3)
    emb, groups = rng.normal(size=(40, 5)), np.repeat(np.arange(20), 2)
    genres, tags = rng.choice(["a", "b"], 40), rng.choice(["x;y", "y", ""], 40)
    whole = nb.cosine_neighbours(emb, emb, 3, groups, groups)
    agreement = nb.metadata_agreement(np.arange(40), whole[0], genres, tags, groups)
    monkeypatch.setattr(nb, "_CHUNK_ELEMENTS", 100)  # blocks of 2 queries
    blocks = nb.cosine_neighbours(emb, emb, 3, groups, groups)
    np.testing.assert_array_equal(blocks[0], whole[0])
    pd.testing.assert_frame_equal(
        nb.metadata_agreement(np.arange(40), blocks[0], genres, tags, groups), agreement
    )
