"""Probes: labels from the manifest, learning on separable data, chance on shuffled labels, absent labels;
Table 2's
reference rows against their closed forms, its intervals against resampling by hand, and claims decided by
paired intervals."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvnb import embeddings, probes
from mvnb.corpus import FOLDS, manifest_split, rotation_tested
from mvnb.metrics import macro_f1, macro_roc_auc
from mvnb.provenance import Weights
from mvnb.results import run_dir

FAST = probes.ProbeConfig(hidden=(64, 32), max_epochs=60, patience=5)  # small widths keep the suite quick


def manifest(
    n_videos: int, segments: int = 2, n_genres: int = 4, seed: int = 0, splits=(0.5, 0.75)
) -> pd.DataFrame:
    """A manifest with `segments` rows per video: genre g_<i mod n_genres>, tags from the genre, splits
    50/25/25 at
    random; folds that agree with the split in rotation 0 (test fold 9, validation fold 8, training folds
    0-7)."""
    rng = np.random.default_rng(seed)
    videos = np.array([f"v{i:04d}" for i in range(n_videos)])
    genre = np.array([f"g{i % n_genres}" for i in range(n_videos)])
    tags = np.array([f"t{i % n_genres};t{(i + 1) % n_genres}" for i in range(n_videos)])
    position = rng.permutation(n_videos) / n_videos
    split = np.where(position < splits[0], "train", np.where(position < splits[1], "val", "test"))
    fold = np.where(split == "test", 9, np.where(split == "val", 8, rng.integers(0, 8, n_videos)))
    return pd.DataFrame(
        {
            "video_id": np.repeat(videos, segments),
            "k": np.tile(np.arange(segments), n_videos),
            "split": np.repeat(split, segments),
            "fold": np.repeat(fold, segments),
            "genre": np.repeat(genre, segments),
            "tags": np.repeat(tags, segments),
        }
    )


def folded_manifest(n_videos: int, segments: int = 2, n_genres: int = 4, seed: int = 0) -> pd.DataFrame:
    """`manifest`, its folds drawn uniformly (about n_videos / 10 each), so that every rotation has its own
    split."""
    man = manifest(n_videos, segments, n_genres, seed)
    fold = np.random.default_rng(seed + 1).integers(0, FOLDS, n_videos)
    man["fold"] = np.repeat(fold, segments)
    return man.assign(split=manifest_split(man, 0))


def rotations_of(man: pd.DataFrame, rotations=(0,)) -> np.ndarray:
    """The rotation that tests each segment's video (−1: none), as notebook 04 passes it to `table2`."""
    return rotation_tested(man["fold"], rotations)


def genre_features(man: pd.DataFrame, separation: float, dim: int = 16, seed: int = 0) -> np.ndarray:
    """`(n, dim)` Gaussian features whose mean depends on the genre by `separation` sd."""
    rng = np.random.default_rng(seed)
    codes = man["genre"].str[1:].astype(int).to_numpy()
    return rng.normal(size=(len(man), dim)) + separation * rng.normal(size=(codes.max() + 1, dim))[codes]


# --- labels ---------------------------------------------------------------------------------


def test_tags_are_the_top_k_by_training_videos_ties_alphabetical_and_segments_inherit_them():
    man = pd.DataFrame(
        {
            "video_id": [
                "a",
                "a",
                "a",
                "b",
                "c",
                "d",
                "e",
            ],  # a has 3 segments: counting segments would favour its tags
            "split": ["train", "train", "train", "train", "train", "test", "train"],
            "tags": ["x;y", "x;y", "x;y", "z ; y", "z", "x;w;w", None],
        }
    )
    task = probes.tag_task(man, top_k=2)
    assert task.labels == ("y", "z")  # y: 2 videos, z: 2 videos, x: 1 training video (d is test)
    np.testing.assert_array_equal(task.targets, [[1, 0]] * 3 + [[1, 1], [0, 1], [0, 0], [0, 0]])
    np.testing.assert_array_equal(
        task.labelled, [True] * 6 + [False]
    )  # e has no tag: left out; d keeps all-zero targets
    assert task.multilabel and task.note == "1 of 5 videos left out (no tag)"


def test_genres_are_those_of_the_training_split_and_the_rest_is_left_out():
    man = pd.DataFrame(
        {
            "video_id": list("abcde"),
            "split": ["train", "train", "val", "test", "train"],
            "genre": ["rock", "pop", "jazz", "pop", ""],
        }
    )
    task = probes.genre_task(man)
    assert task.labels == ("pop", "rock") and not task.multilabel
    np.testing.assert_array_equal(task.labelled, [True, True, False, True, False])
    np.testing.assert_array_equal(task.targets, [[0, 1], [1, 0], [0, 0], [1, 0], [0, 0]])
    assert task.note.startswith("2 of 5 videos left out")


def test_metadata_with_only_genre_gets_the_genre_task_and_a_note_about_tags():
    man = manifest(12).drop(columns="tags")
    tasks, notes = probes.probe_tasks(man)
    assert list(tasks) == ["genre"]
    assert any("tag probe skipped" in n and "'tags' column" in n for n in notes)
    tasks, notes = probes.probe_tasks(manifest(12).drop(columns="genre"))
    assert list(tasks) == ["tags"] and any("genre probe skipped" in n for n in notes)


def test_one_training_genre_is_refused_with_a_reason():
    man = pd.DataFrame({"video_id": list("ab"), "split": ["train", "test"], "genre": ["rock", "pop"]})
    with pytest.raises(ValueError, match="needs two or more"):
        probes.genre_task(man)


# --- learning -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def separable():
    man = manifest(240)
    return man, genre_features(man, separation=2.0), probes.probe_tasks(man)[0]


@pytest.mark.parametrize("task_name", ["genre", "tags"])
def test_probe_learns_a_separable_problem(separable, task_name):
    man, x, tasks = separable
    result = probes.run_probe(
        x,
        tasks[task_name],
        man["split"],
        man["video_id"],
        seed=0,
        config=probes.ProbeConfig(max_epochs=60, patience=5),
    )  # the paper's widths
    for level in probes.LEVELS:
        assert result.scores[f"auc_{level}"] > 0.95, result.scores
        for metric in probes.METRICS[task_name][1:]:  # each F1
            assert result.scores[f"{metric}_{level}"] > 0.7, result.scores
    assert result.scores["n_test_videos"] == man.loc[man["split"] == "test", "video_id"].nunique()


def test_probe_stays_at_chance_with_shuffled_labels():
    """Labels permuted across videos: macro AUC is about 0.5 (sd about 0.04 at 100 test videos of 4
    genres)."""
    man = manifest(400)
    x = genre_features(man, separation=2.0)
    genre_by_video = man.drop_duplicates("video_id").set_index("video_id")["genre"]
    shuffled = dict(
        zip(
            genre_by_video.index, np.random.default_rng(1).permutation(genre_by_video.to_numpy()), strict=True
        )
    )
    task = probes.genre_task(man.assign(genre=man["video_id"].map(shuffled)))
    result = probes.run_probe(x, task, man["split"], man["video_id"], seed=0, config=FAST)
    assert abs(result.scores["auc_segment"] - 0.5) < 0.12, result.scores
    assert abs(result.scores["auc_video"] - 0.5) < 0.15, result.scores


def test_a_label_absent_from_the_test_split_is_counted_not_fatal(separable):
    man, x, tasks = separable
    absent = man["genre"].eq("g3") & man["split"].eq("test")
    man = man.assign(split=np.where(absent, "train", man["split"]))
    result = probes.run_probe(x, probes.genre_task(man), man["split"], man["video_id"], seed=0, config=FAST)
    assert result.scores["labels_absent"] == 1
    assert np.isfinite(result.scores["auc_segment"]) and np.isfinite(result.scores["f1_video"])
    row = result.per_label.set_index("label").loc["g3"]
    assert row["test_videos"] == 0 and np.isnan(row["auc_segment"]) and np.isnan(row["f1_segment"])


def test_same_seed_same_scores(separable):
    man, x, tasks = separable
    runs = [
        probes.run_probe(x, tasks["tags"], man["split"], man["video_id"], seed=3, config=FAST).scores
        for _ in range(2)
    ]
    assert runs[0] == pytest.approx(runs[1], nan_ok=True)


def test_a_split_without_labelled_segments_is_refused_with_a_reason():
    man = manifest(12)
    man.loc[man["split"] == "val", "genre"] = None
    with pytest.raises(ValueError, match="no labelled segment in the val split"):
        probes.run_probe(
            np.zeros((len(man), 3)), probes.genre_task(man), man["split"], man["video_id"], 0, FAST
        )


# --- pieces ---------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 40), k=st.integers(1, 5), n_videos=st.integers(1, 8), seed=st.integers(0, 2**31))
def test_video_means_match_pandas_groupby(n, k, n_videos, seed):
    rng = np.random.default_rng(seed)
    values, ids = rng.normal(size=(n, k)), rng.integers(0, n_videos, n).astype(str)
    videos, means = probes.video_means(values, ids)
    expected = pd.DataFrame(values).groupby(ids).mean()
    np.testing.assert_array_equal(videos, expected.index.to_numpy())
    np.testing.assert_allclose(means, expected.to_numpy())


def test_threshold_is_chosen_on_validation_nearest_one_half_among_ties():
    targets = np.array([[1], [1], [0], [0]])
    # every threshold in (0.2, 0.35] separates perfectly: 0.25, 0.30 and 0.35 tie, 0.35 is nearest 0.5
    assert probes.choose_threshold(targets, np.array([[0.35], [0.4], [0.2], [0.1]])) == 0.35
    assert probes.choose_threshold(np.zeros((3, 1), int), np.full((3, 1), 0.7)) == 0.5  # no positive: default


def test_cl_embeddings_are_read_from_a_run_folder_through_the_one_definition(tmp_path):
    run = run_dir(tmp_path, "corrected", 2)
    run.mkdir(parents=True)
    rng = np.random.default_rng(0)
    audio, video = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    np.savez(run / "embeddings.npz", audio=audio, video=video, segment_index=np.arange(5))
    got = probes.cl_embeddings(run, 5)
    np.testing.assert_allclose(got["CL_a"], audio, rtol=1e-6)
    np.testing.assert_allclose(got["CL_agg"], embeddings.cl_agg(audio, video))
    with pytest.raises(ValueError, match="not the manifest's 6"):
        probes.cl_embeddings(run, 6)
    with pytest.raises(FileNotFoundError, match="notebook 03"):
        probes.cl_embeddings(tmp_path / "nowhere", 5)


# --- reference rows: closed forms on a hand-made split ----------------------------------------


def hand_made() -> pd.DataFrame:
    """Training videos tagged A;B, A, A;C, B (priors A 3/4, B 1/2, C 1/4) with genres rock, rock, pop, jazz
    (majority
    rock); validation A, B; test v6 A;B rock (2 segments), v7 C pop (1), v8 A pop (3). Jazz has no test
    video."""
    videos = [
        ("v0", "train", "A;B", "rock", 1),
        ("v1", "train", "A", "rock", 1),
        ("v2", "train", "A;C", "pop", 1),
        ("v3", "train", "B", "jazz", 1),
        ("v4", "val", "A", "rock", 1),
        ("v5", "val", "B", "pop", 1),
        ("v6", "test", "A;B", "rock", 2),
        ("v7", "test", "C", "pop", 1),
        ("v8", "test", "A", "pop", 3),
    ]
    folds = {"train": 0, "val": 8, "test": 9}  # rotation 0's split
    rows = [
        {"video_id": v, "split": s, "fold": folds[s], "tags": t, "genre": g, "k": k}
        for v, s, t, g, n in videos
        for k in range(n)
    ]
    return pd.DataFrame(rows)


def all_positive_f1(positives: int, negatives: int) -> float:
    """F1 of predicting every item positive: TP = P, FP = N, FN = 0."""
    return 2 * positives / (2 * positives + negatives)


@pytest.fixture(scope="module")
def references():
    man = hand_made()
    tasks, _ = probes.probe_tasks(man)
    scores, results, notes = probes.run_references(tasks, man["split"], man["video_id"])
    assert not notes
    return man, tasks, scores.set_index(["embedding", "task"]), results


def test_reference_outputs_are_the_training_priors_all_positive_and_the_majority(references):
    man, tasks, _, _ = references
    assert tasks["tags"].labels == ("A", "B", "C") and tasks["genre"].labels == ("jazz", "pop", "rock")
    np.testing.assert_allclose(
        probes.reference_probs("prior", tasks["tags"], man["split"], man["video_id"]), [3 / 4, 1 / 2, 1 / 4]
    )
    np.testing.assert_allclose(
        probes.reference_probs("prior", tasks["genre"], man["split"], man["video_id"]), [1 / 4, 1 / 4, 1 / 2]
    )
    np.testing.assert_array_equal(
        probes.reference_probs("majority genre", tasks["genre"], man["split"], man["video_id"]), [0, 0, 1]
    )
    with pytest.raises(ValueError, match="scores tags, not genre"):
        probes.reference_probs("all tags positive", tasks["genre"], man["split"], man["video_id"])


def test_reference_rows_equal_their_closed_forms(references):
    _, _, scores, _ = references
    # test segments: A positive in 5 of 6 (v6 x2, v8 x3), B in 2, C in 1; test videos: A in 2 of 3, B in 1, C
    # in 1
    segment = {"A": (5, 1), "B": (2, 4), "C": (1, 5)}
    video = {"A": (2, 1), "B": (1, 2), "C": (1, 2)}
    for level, counts in (("segment", segment), ("video", video)):
        everything = np.mean([all_positive_f1(*counts[t]) for t in "ABC"])
        for name in ("prior", "all tags positive"):
            assert scores.loc[(name, "tags"), f"auc_{level}"] == 0.5  # a constant score ranks nothing
        assert scores.loc[("all tags positive", "tags"), f"f1@0.5_{level}"] == pytest.approx(everything)
        # the prior at 0.5 predicts A (3/4) and B (1/2) everywhere and C nowhere: C scores 0
        assert scores.loc[("prior", "tags"), f"f1@0.5_{level}"] == pytest.approx(
            (all_positive_f1(*counts["A"]) + all_positive_f1(*counts["B"]) + 0) / 3
        )
        # majority genre rock: its F1 is 2 P / (P + n), pop scores 0, jazz (no test video) is left out
        n, rock = (6, 2) if level == "segment" else (3, 1)
        for name in ("majority genre", "prior"):
            assert scores.loc[(name, "genre"), f"f1_{level}"] == pytest.approx(2 * rock / (rock + n) / 2)
            assert scores.loc[(name, "genre"), f"auc_{level}"] == 0.5


def test_table2_names_what_it_scored_and_intervals_of_references_are_closed_forms_too(references):
    man, tasks, scores, results = references
    table, draws = probes.table2(
        scores.reset_index(), results, tasks, rotations_of(man), man["video_id"], n_draws=300
    )
    genre_f1 = table[(table["row"] == "majority genre") & (table["metric"] == "f1")].set_index("level")
    assert genre_f1.loc["segment", "test_videos"] == 3 and genre_f1.loc["segment", "test_segments"] == 6
    assert genre_f1.loc["segment", "labels_scored"] == 2 and genre_f1.loc["segment", "unscored"] == "jazz"
    auc = table[(table["row"] == "prior") & (table["metric"] == "auc")]
    assert (auc["low"] == 0.5).all() and (auc["high"] == 0.5).all()
    # per resample, the majority genre's F1 is the closed form on the resampled counts
    videos, weights = probes.resample_test_videos(
        tasks["genre"], rotations_of(man), man["video_id"], n_draws=300
    )
    rock = weights[:, list(videos).index("v6")]
    segments = weights @ np.array([2, 1, 3])  # segments of v6, v7, v8
    pop_present = weights[:, 1:].sum(1) > 0
    closed = np.where(rock > 0, 2 * 2 * rock / (2 * rock + segments), 0.0) / np.where(
        pop_present & (rock > 0), 2, 1
    )
    np.testing.assert_allclose(draws[("majority genre", "genre", "segment", "f1")], closed)
    markdown = probes.table2_markdown(
        table, Weights("R(2+1)D-18: random init (seed 0), not Kinetics-400", "musicnn: MSD_musicnn")
    )
    assert markdown.startswith(
        "Weights: R(2+1)D-18: random init (seed 0), not Kinetics-400 · musicnn: MSD_musicnn"
    )
    assert (
        "2 of 3 genres have a test video and are scored (none carries jazz); 3 test videos (6 segments)."
        in markdown
    )
    assert "| all tags positive | — | 0.500 [0.500, 0.500] |" in markdown


# --- intervals: pooled seeds, resampled videos ------------------------------------------------


def fake_result(task: probes.ProbeTask, man: pd.DataFrame, seed: int) -> probes.ProbeResult:
    """A `ProbeResult` of random probabilities (seeded), scored by `score_predictions` like a probe."""
    rows = probes.task_rows(task, man["split"])
    rng = np.random.default_rng(seed)
    probs = {
        s: rng.dirichlet(np.ones(len(task.labels)), len(rows[s]))
        if not task.multilabel
        else rng.random((len(rows[s]), len(task.labels)))
        for s in ("val", "test")
    }
    return probes.score_predictions(task, rows, probs, man["video_id"])


@pytest.mark.parametrize("task_name", ["tags", "genre"])
@pytest.mark.parametrize("level", probes.LEVELS)
def test_row_draws_equal_scores_recomputed_on_explicitly_resampled_videos(task_name, level):
    """Two seeds pooled: a resampled video brings its predictions from both, as many times as it was drawn."""
    man = manifest(40, segments=3, seed=4)
    task = probes.probe_tasks(man)[0][task_name]
    seeds = [fake_result(task, man, s) for s in (1, 2)]
    item_videos, targets, outputs = probes.pooled_outputs(seeds, task, man["video_id"], level)
    videos, weights = probes.resample_test_videos(
        task, rotations_of(man), man["video_id"], n_draws=25, seed=3
    )
    found = probes.row_draws(targets, outputs, item_videos, videos, weights)
    per_video = {v: i for i, v in enumerate(videos)}
    for metric, (estimate, values) in found.items():
        score = macro_roc_auc if metric == "auc" else macro_f1
        assert estimate == pytest.approx(score(targets, outputs[metric]))
        for d, w in enumerate(weights):
            times = w[[per_video[v] for v in item_videos]]
            expected = score(np.repeat(targets, times, 0), np.repeat(outputs[metric], times, 0))
            assert values[d] == pytest.approx(expected, nan_ok=True), (metric, d)


def test_draws_keep_each_rotation_whole():
    """Each resample draws as many test videos from a rotation as it tests, and only from it; untested videos
    never."""
    man = folded_manifest(100, seed=5)
    task = probes.genre_task(man)
    rotations = rotation_tested(man["fold"], [0, 1, 2])
    videos, weights = probes.resample_test_videos(task, rotations, man["video_id"], n_draws=200)
    of_video = man.assign(r=rotations).drop_duplicates("video_id").set_index("video_id")["r"]
    assert set(videos) == set(of_video[of_video >= 0].index)
    for rotation in (0, 1, 2):
        members = (of_video.loc[videos] == rotation).to_numpy()
        assert members.sum() > 3 and (weights[:, members].sum(1) == members.sum()).all()


def test_table2_pools_healthy_seeds_and_flags_collapsed_ones():
    man = manifest(40, seed=6)
    task = probes.genre_task(man)
    rows, results = [], {}
    for seed, collapsed in enumerate([True, False, False]):
        rows.append(
            {
                "embedding": "CL_a",
                "config": "one",
                "rotation": 0,
                "seed": seed,
                "task": "genre",
                "collapsed": collapsed,
            }
        )
        rows.append(
            {
                "embedding": "CL_a",
                "config": "two",
                "rotation": 0,
                "seed": seed,
                "task": "genre",
                "collapsed": seed < 2,
            }
        )
        for config in ("one", "two"):
            if not rows[-1 if config == "two" else -2]["collapsed"]:
                results[("CL_a", config, "genre", 0, seed)] = fake_result(task, man, seed)
    table, draws = probes.table2(
        pd.DataFrame(rows), results, {"genre": task}, rotations_of(man), man["video_id"], n_draws=50
    )
    one = table[(table["config"] == "one") & (table["metric"] == "auc") & (table["level"] == "segment")].iloc[
        0
    ]
    pooled = probes.pooled_outputs(
        [results[("CL_a", "one", "genre", 0, s)] for s in (1, 2)], task, man["video_id"], "segment"
    )
    assert one["estimate"] == pytest.approx(macro_roc_auc(pooled[1], pooled[2]["auc"]))
    assert one["low"] <= one["estimate"] <= one["high"] and one["collapsed"] == "1 of 3 runs collapsed"
    assert (
        one["test_segments"] == (man["split"] == "test").sum()
    )  # the distinct test segments, not one per seed
    two = table[table["config"] == "two"]
    assert two["estimate"].isna().all() and (two["collapsed"] == "2 of 3 runs collapsed").all()
    assert not any(key[0] == "CL_a · two" for key in draws)
    assert "| CL_a · two | — | collapsed | collapsed |" in probes.table2_markdown(table, Weights("v", "a"))


# --- rotations: each probes its own fold, the scores pool them ---------------------------------


def rotation_result(
    task: probes.ProbeTask, man: pd.DataFrame, rotation: int, seed: int
) -> probes.ProbeResult:
    """`fake_result` on the split of `rotation`."""
    return fake_result(task, man.assign(split=manifest_split(man, rotation)), seed)


@pytest.mark.parametrize("task_name", ["tags", "genre"])
def test_pooled_auc_and_f1_are_sklearns_on_the_concatenated_predictions_of_the_rotations(task_name):
    from sklearn.metrics import f1_score, roc_auc_score

    man = folded_manifest(150, seed=7)
    task = probes.probe_tasks(man, [0, 1, 2])[0][task_name]
    rows, results = [], {}
    for rotation in (0, 1, 2):
        rows.append(
            {
                "embedding": "musicnn",
                "config": "frozen",
                "rotation": rotation,
                "seed": 0,
                "task": task_name,
                "collapsed": False,
            }
        )
        results[("musicnn", "frozen", task_name, rotation, 0)] = rotation_result(
            task, man, rotation, rotation
        )
    table, _ = probes.table2(
        pd.DataFrame(rows),
        results,
        {task_name: task},
        rotations_of(man, [0, 1, 2]),
        man["video_id"],
        n_draws=20,
    )
    cells = table.set_index(["level", "metric"])
    parts = [results[("musicnn", "frozen", task_name, r, 0)] for r in (0, 1, 2)]
    y = np.concatenate([task.targets[r.test_rows] for r in parts])
    p = np.concatenate([r.test_probs for r in parts])
    assert len(set(np.concatenate([r.test_rows for r in parts]))) == len(
        y
    )  # each test segment once: folds are disjoint
    scored = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    assert cells.loc[("segment", "auc"), "estimate"] == pytest.approx(
        np.mean([roc_auc_score(y[:, j], p[:, j]) for j in scored])
    )
    hard = (p >= 0.5).astype(int) if task.multilabel else np.eye(p.shape[1], dtype=int)[p.argmax(1)]
    positive = [j for j in range(y.shape[1]) if y[:, j].any()]
    f1 = "f1@0.5" if task.multilabel else "f1"
    assert cells.loc[("segment", f1), "estimate"] == pytest.approx(
        f1_score(y, hard, labels=positive, average="macro")
    )
    assert cells.loc[("segment", "auc"), "test_videos"] == man.loc[man["fold"] >= 7, "video_id"].nunique()
    assert cells.loc[("segment", "auc"), "rotations"] == 3


def test_each_rotation_probes_its_own_split_on_its_own_runs_and_references(tmp_path):
    """Rotation r's probe trains on r's training videos and predicts r's test fold, with the CL embeddings of
    r's run;
    its prior is r's training prior. A collapsed run of one rotation is flagged for that rotation only."""
    man = folded_manifest(120, seed=8)
    x = genre_features(man, 1.0)
    frozen = embeddings.frozen_embeddings(x[:, :8], x[:, 8:])
    rng = np.random.default_rng(0)
    for rotation, scale in ((0, 1.0), (1, 0.0)):  # rotation 1's run collapsed: every segment on one point
        run = run_dir(tmp_path, "corrected", 0, rotation=rotation)
        run.mkdir(parents=True)
        audio = scale * rng.normal(size=(len(man), 4)) + 1
        np.savez(run / "embeddings.npz", audio=audio, video=audio, segment_index=np.arange(len(man)))
    tasks, _ = probes.probe_tasks(man, [0, 1])
    scores, results, notes = probes.run_table2_probes(
        frozen,
        tmp_path,
        ["corrected"],
        [0, 1],
        [0],
        tasks,
        man,
        probes.ProbeConfig(hidden=(8,), max_epochs=2, patience=1),
    )
    assert not notes
    for rotation in (0, 1):
        split = manifest_split(man, rotation)
        for task in tasks.values():
            result = results[("musicnn", "frozen", task.name, rotation, 0)]
            np.testing.assert_array_equal(result.test_rows, np.flatnonzero((split == "test") & task.labelled))
            assert result.scores["n_train"] == ((split == "train") & task.labelled).sum()
            prior = results[("prior", "reference", task.name, rotation, 0)].test_probs
            np.testing.assert_allclose(
                prior, np.tile(probes.training_prior(task, split, man["video_id"]), (len(prior), 1))
            )
    flags = scores[scores["config"] == "corrected"].groupby("rotation")["collapsed"].all()
    assert flags.to_dict() == {0: False, 1: True}
    table, _ = probes.table2(scores, results, tasks, rotations_of(man, [0, 1]), man["video_id"], n_draws=20)
    cl = table[table["config"] == "corrected"]
    assert (cl["collapsed"] == "1 of 2 runs collapsed").all() and cl["estimate"].isna().all()
    frozen_rows = table[table["config"] == "frozen"]
    assert (frozen_rows["test_videos"] == man.loc[man["fold"] >= 8, "video_id"].nunique()).all()


def test_labels_are_chosen_on_the_videos_that_train_in_every_rotation():
    man = folded_manifest(200, seed=9)
    man["tags"] = np.where(
        man["fold"] == 7, "seven", "common"
    )  # fold 7 trains in rotation 0, validates in rotation 1
    assert probes.probe_tasks(man, [0])[0]["tags"].labels == ("common", "seven")
    assert probes.probe_tasks(man, [0, 1])[0]["tags"].labels == ("common",)
    counts = probes.label_counts(probes.probe_tasks(man, [0, 1])[0]["genre"], man, [0, 1])
    videos = man.drop_duplicates("video_id")
    assert list(counts.columns) == ["label basis", "test · rotation 0", "test · rotation 1", "test · pooled"]
    assert counts["label basis"].sum() == (videos["fold"] < 7).sum()
    assert counts["test · rotation 1"].sum() == (videos["fold"] == 8).sum()
    assert counts["test · pooled"].sum() == (videos["fold"] >= 8).sum()


# --- claims: decided by paired intervals -------------------------------------------------------


def claim_table(cells: dict[str, tuple[float, np.ndarray]], task: str = "genre", metric: str = "auc"):
    """A Table 2 of rows `name: (estimate, draws)` at segment level, and its draws."""
    table = pd.DataFrame(
        [
            {
                "row": name,
                "embedding": name.split(" · ")[0],
                "config": "reference" if name in probes.REFERENCES else "c" if " · " in name else "frozen",
                "task": task,
                "level": "segment",
                "metric": metric,
                "estimate": est,
            }
            for name, (est, _) in cells.items()
        ]
    )
    return table, {(name, task, "segment", metric): values for name, (_, values) in cells.items()}


NOISE = np.linspace(-0.1, 0.1, 1001)  # its 95 % interval is ±0.095


@pytest.mark.parametrize(
    "shift, verdict", [(0.15, "reproduced"), (0.05, "not resolved"), (-0.15, "contradicted")]
)
def test_a_greater_than_claim_is_decided_by_the_interval_of_the_difference(shift, verdict):
    # paper genre AUC: musicnn 0.79 > R(2+1)D 0.68; R(2+1)D fixed at 0.6, musicnn at 0.6 + shift with noise
    table, draws = claim_table(
        {"musicnn": (0.6 + shift, 0.6 + shift + NOISE), "R(2+1)D": (0.6, np.full(1001, 0.6))}
    )
    found = probes.paper_findings(table, draws).set_index("finding").loc["musicnn > R(2+1)D"]
    assert found["verdict"] == verdict and found["difference"] == pytest.approx(shift)
    assert found["low"] == pytest.approx(shift - 0.095) and found["high"] == pytest.approx(shift + 0.095)


def test_the_comparison_is_paired_over_the_same_resampled_videos():
    """Each row's own interval is wide, but both move together: the difference is resolved."""
    shared = np.random.default_rng(0).normal(0, 0.1, 2000)
    table, draws = claim_table({"musicnn": (0.62, 0.62 + shared), "R(2+1)D": (0.60, 0.60 + shared)})
    assert (
        probes.paper_findings(table, draws).set_index("finding").loc["musicnn > R(2+1)D", "verdict"]
        == "reproduced"
    )


@pytest.mark.parametrize(
    "offset, spread, verdict",
    [
        (0.005, 0.01, "reproduced"),  # the whole interval of the difference is within ±0.02
        (0.0, 0.5, "not resolved"),  # centred on equality, but the interval is wide: no proof of it
        (0.10, 0.01, "contradicted"),  # wholly outside the margin
    ],
)
def test_an_equality_claim_needs_the_whole_interval_within_the_margin(offset, spread, verdict):
    # paper tags AUC: concat 0.78 ≈ musicnn 0.78
    table, draws = claim_table(
        {"musicnn": (0.8, np.full(1001, 0.8)), "concat": (0.8 + offset, 0.8 + offset + spread * NOISE)},
        task="tags",
    )
    assert (
        probes.paper_findings(table, draws).set_index("finding").loc["concat ≈ musicnn", "verdict"] == verdict
    )


def test_pairs_at_the_ceiling_are_flagged_and_missing_rows_not_measured():
    table, draws = claim_table({"musicnn": (1.0, np.full(10, 1.0)), "R(2+1)D": (0.995, np.full(10, 0.995))})
    findings = probes.paper_findings(table, draws).set_index("finding")
    assert (
        findings.loc["musicnn > R(2+1)D", "at_ceiling"]
        and findings.loc["concat > musicnn", "verdict"] == "not measured"
    )
    assert "ceiling" in probes.findings_summary(findings.reset_index())


def test_rows_are_compared_with_the_best_reference_paired():
    table, draws = claim_table(
        {
            "prior": (0.2, np.full(1001, 0.2)),
            "all tags positive": (0.6, 0.6 + NOISE),
            "musicnn": (0.8, 0.8 + NOISE),
            "R(2+1)D": (0.62, 0.62 - NOISE),  # noise against the reference's: a wide difference
            "CL_v · c": (0.3, 0.3 + NOISE),
        },
        task="tags",
        metric="f1@0.5",
    )
    versus = probes.versus_references(table, draws).set_index("row")
    assert (versus["reference"] == "all tags positive").all()
    assert versus["verdict"].to_dict() == {
        "musicnn": "above",
        "R(2+1)D": "indistinguishable",
        "CL_v · c": "below",
    }
    summary = probes.references_summary(versus.reset_index())
    assert "above it: `musicnn`" in summary and "below it: `CL_v · c`" in summary


# --- Table 2 end to end ------------------------------------------------------------------------


def test_table2_end_to_end_with_a_missing_run(tmp_path):
    """References, frozen rows and one CL configuration; the other configuration's run is missing: a note,
    not a crash."""
    man = manifest(60)
    rng = np.random.default_rng(0)
    x = genre_features(man, 1.0)
    frozen = embeddings.frozen_embeddings(x[:, :8], x[:, 8:])
    run = run_dir(tmp_path, "paper_baseline", 0, rotation=0)
    run.mkdir(parents=True)
    np.savez(
        run / "embeddings.npz",
        audio=rng.random((len(man), 4)),
        video=rng.random((len(man), 4)),
        segment_index=np.arange(len(man)),
    )
    tasks, _ = probes.probe_tasks(man)
    scores, results, notes = probes.run_table2_probes(
        frozen,
        tmp_path,
        ["paper_baseline", "corrected"],
        [0],
        [0],
        tasks,
        man,
        probes.ProbeConfig(max_epochs=3, patience=1),
    )
    assert len(notes) == 1 and "corrected rotation 0 seed 0 skipped" in notes[0]
    assert (
        len(scores) == 4 + 12
    )  # prior on both tasks, one task each for the other two references; 6 embeddings x 2 tasks
    table, draws = probes.table2(scores, results, tasks, rotations_of(man), man["video_id"], n_draws=100)
    assert list(table["row"].unique()) == [
        "prior",
        "all tags positive",
        "majority genre",
        "musicnn",
        "R(2+1)D",
        "concat",
        "CL_a · paper_baseline",
        "CL_v · paper_baseline",
        "CL_agg · paper_baseline",
    ]
    weights = Weights("R(2+1)D-18: Kinetics-400", "musicnn: MSD_musicnn", "ab" * 8, "cd" * 8)
    paths = probes.write_table2(table, tmp_path / "figures", weights, n_draws=100)
    assert [p.name for p in paths] == ["table2.md", "table2.csv"]
    text = paths[0].read_text()
    assert text.count("| prior |") == 2 and "100 bootstrap resamples" in text
    on_disk = pd.read_csv(paths[1], keep_default_na=False, na_values=[""])
    assert list(on_disk.columns) == probes.TABLE2_COLUMNS + [
        "video_weights",
        "video_weights_sha256",
        "audio_weights",
        "audio_weights_sha256",
    ]
    assert (on_disk["video_weights"] == "R(2+1)D-18: Kinetics-400").all()
    counts = probes.genre_confusion(results, "musicnn", "frozen", tasks["genre"])
    assert counts.to_numpy().sum() == (man["split"] == "test").sum()
    per_tag = probes.per_label_auc(
        results, tasks["tags"], "musicnn", "frozen", rotations_of(man), man["video_id"], n_draws=100
    )
    assert per_tag["label"].tolist() == list(tasks["tags"].labels)
    assert ((per_tag["low"] <= per_tag["estimate"]) & (per_tag["estimate"] <= per_tag["high"])).all()
    np.testing.assert_allclose(
        per_tag["estimate"], results["musicnn", "frozen", "tags", 0, 0].per_label["auc_segment"]
    )
    assert probes.best_row(table, "genre")[1] != probes.REFERENCE_CONFIG


def test_quick_report_writes_table2_with_references_and_every_frozen_row(quick_report):
    """Notebook 04 in the shared quick report: Table 2 on disk with its reference and frozen rows, and what
    it scored."""
    path = quick_report.root / "figures" / "table2.csv"
    assert path.exists(), quick_report.log[-3000:]
    table = pd.read_csv(path)
    assert list(table.columns[: len(probes.TABLE2_COLUMNS)]) == probes.TABLE2_COLUMNS
    assert set(embeddings.FROZEN) | set(probes.REFERENCES) <= set(table["embedding"])
    tags_auc = table[(table["task"] == "tags") & (table["metric"] == "auc")]
    assert np.isfinite(tags_auc["estimate"]).any() and (tags_auc["test_videos"] > 0).all()
    assert (
        table.loc[table["embedding"] == "prior", "estimate"].where(table["metric"] == "auc").dropna() == 0.5
    ).all()
    assert "test videos" in (quick_report.root / "figures" / "table2.md").read_text()
