"""Probes: labels from the manifest, learning on separable data, chance on shuffled labels, absent labels, Table 2."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvnb import probes
from mvnb.results import run_dir

FAST = probes.ProbeConfig(hidden=(64, 32), max_epochs=60, patience=5)  # small widths keep the suite quick


def manifest(n_videos: int, segments: int = 2, n_genres: int = 4, seed: int = 0, splits=(0.5, 0.75)) -> pd.DataFrame:
    """A manifest with `segments` rows per video: genre g_<i mod n_genres>, tags from the genre, splits 50/25/25 in video order."""
    rng = np.random.default_rng(seed)
    videos = np.array([f"v{i:04d}" for i in range(n_videos)])
    genre = np.array([f"g{i % n_genres}" for i in range(n_videos)])
    tags = np.array([f"t{i % n_genres};t{(i + 1) % n_genres}" for i in range(n_videos)])
    position = rng.permutation(n_videos) / n_videos
    split = np.where(position < splits[0], "train", np.where(position < splits[1], "val", "test"))
    return pd.DataFrame({"video_id": np.repeat(videos, segments), "k": np.tile(np.arange(segments), n_videos),
                         "split": np.repeat(split, segments), "genre": np.repeat(genre, segments),
                         "tags": np.repeat(tags, segments)})


def genre_features(man: pd.DataFrame, separation: float, dim: int = 16, seed: int = 0) -> np.ndarray:
    """`(n, dim)` Gaussian features whose mean depends on the genre by `separation` sd."""
    rng = np.random.default_rng(seed)
    codes = man["genre"].str[1:].astype(int).to_numpy()
    return rng.normal(size=(len(man), dim)) + separation * rng.normal(size=(codes.max() + 1, dim))[codes]


# --- labels ---------------------------------------------------------------------------------


def test_tags_are_the_top_k_by_training_videos_ties_alphabetical_and_segments_inherit_them():
    man = pd.DataFrame({
        "video_id": ["a", "a", "a", "b", "c", "d", "e"],  # a has 3 segments: counting segments would favour its tags
        "split": ["train", "train", "train", "train", "train", "test", "train"],
        "tags": ["x;y", "x;y", "x;y", "z ; y", "z", "x;w;w", None],
    })
    task = probes.tag_task(man, top_k=2)
    assert task.labels == ("y", "z")  # y: 2 videos, z: 2 videos, x: 1 training video (d is test)
    np.testing.assert_array_equal(task.targets, [[1, 0]] * 3 + [[1, 1], [0, 1], [0, 0], [0, 0]])
    np.testing.assert_array_equal(task.labelled, [True] * 6 + [False])  # e has no tag: left out; d keeps all-zero targets
    assert task.multilabel and task.note == "1 of 5 videos left out (no tag)"


def test_genres_are_those_of_the_training_split_and_the_rest_is_left_out():
    man = pd.DataFrame({"video_id": list("abcde"), "split": ["train", "train", "val", "test", "train"],
                        "genre": ["rock", "pop", "jazz", "pop", ""]})
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
    result = probes.run_probe(x, tasks[task_name], man["split"], man["video_id"], seed=0,
                              config=probes.ProbeConfig(max_epochs=60, patience=5))  # the paper's widths
    for level in probes.LEVELS:
        assert result.scores[f"auc_{level}"] > 0.95, result.scores
        assert result.scores[f"f1_{level}"] > 0.7, result.scores
    assert result.scores["n_test_videos"] == man.loc[man["split"] == "test", "video_id"].nunique()


def test_probe_stays_at_chance_with_shuffled_labels():
    """Labels permuted across videos: macro AUC is about 0.5 (sd about 0.04 at 100 test videos of 4 genres)."""
    man = manifest(400)
    x = genre_features(man, separation=2.0)
    genre_by_video = man.drop_duplicates("video_id").set_index("video_id")["genre"]
    shuffled = dict(zip(genre_by_video.index, np.random.default_rng(1).permutation(genre_by_video.to_numpy())))
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
    runs = [probes.run_probe(x, tasks["tags"], man["split"], man["video_id"], seed=3, config=FAST).scores for _ in range(2)]
    assert runs[0] == pytest.approx(runs[1], nan_ok=True)


def test_a_split_without_labelled_segments_is_refused_with_a_reason():
    man = manifest(12)
    man.loc[man["split"] == "val", "genre"] = None
    with pytest.raises(ValueError, match="no labelled segment in the val split"):
        probes.run_probe(np.zeros((len(man), 3)), probes.genre_task(man), man["split"], man["video_id"], 0, FAST)


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


def test_cl_agg_is_the_mean_of_unit_rows():
    a, v = np.array([[3.0, 0.0], [0.0, 0.0]]), np.array([[0.0, 2.0], [0.0, 5.0]])
    np.testing.assert_allclose(probes.cl_agg(a, v), [[0.5, 0.5], [0.0, 0.5]])
    with pytest.raises(ValueError, match="one shape"):
        probes.cl_agg(a, v[:, :1])


def test_cl_embeddings_are_read_from_a_run_folder_and_mismatches_refused(tmp_path):
    run = run_dir(tmp_path, "corrected", 2)
    run.mkdir(parents=True)
    rng = np.random.default_rng(0)
    audio, video = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    np.savez(run / "embeddings.npz", audio=audio, video=video, segment_index=np.arange(5))
    got = probes.cl_embeddings(run, 5)
    np.testing.assert_allclose(got["CL_a"], audio, rtol=1e-6)
    np.testing.assert_allclose(got["CL_agg"], probes.cl_agg(audio, video))
    with pytest.raises(ValueError, match="not the manifest's 6"):
        probes.cl_embeddings(run, 6)
    with pytest.raises(FileNotFoundError, match="notebook 03"):
        probes.cl_embeddings(tmp_path / "nowhere", 5)


# --- Table 2 --------------------------------------------------------------------------------


def test_table2_end_to_end_with_a_missing_run(tmp_path):
    """Frozen rows and one CL configuration; the other configuration's run is missing: a note, not a crash."""
    man = manifest(60)
    rng = np.random.default_rng(0)
    x = genre_features(man, 1.0)
    frozen = probes.frozen_embeddings(x[:, None, :8], x[:, None, 8:])
    run = run_dir(tmp_path, "paper_baseline", 0)
    run.mkdir(parents=True)
    np.savez(run / "embeddings.npz", audio=rng.random((len(man), 4)), video=rng.random((len(man), 4)),
             segment_index=np.arange(len(man)))
    embeddings, notes = probes.embeddings_for_seed(frozen, tmp_path, ["paper_baseline", "corrected"], 0, len(man))
    assert len(embeddings) == 6 and len(notes) == 1 and "corrected seed 0 skipped" in notes[0]
    tasks, _ = probes.probe_tasks(man)
    scores, results, failed = probes.run_probes(embeddings, tasks, man["split"], man["video_id"], 0,
                                                probes.ProbeConfig(max_epochs=3, patience=1), progress=False)
    assert len(scores) == 12 and not failed
    table = probes.table2(scores)
    assert list(table["row"].unique()) == ["musicnn", "R(2+1)D", "musicnn+R(2+1)D", "CL_a · paper_baseline",
                                           "CL_v · paper_baseline", "CL_agg · paper_baseline"]
    paths = probes.write_table2(table, tmp_path / "figures")
    assert [p.name for p in paths] == ["table2.md", "table2.csv"]
    assert len(paths[0].read_text().splitlines()) == 2 + 6
    pd.testing.assert_frame_equal(pd.read_csv(paths[1]), table, check_dtype=False)
    counts = probes.genre_confusion(results, "musicnn", "frozen", tasks["genre"])
    assert counts.to_numpy().sum() == (man["split"] == "test").sum()
    assert probes.per_label_auc(results, "musicnn", "frozen", "tags")["label"].tolist() == list(tasks["tags"].labels)


def fake_scores(values: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """A `run_probes`-like table: genre AUC per (embedding, config) and seed, the same at both levels, F1 = AUC / 2;
    a None value is a seed whose embedding collapsed (no scores)."""
    rows = [{"embedding": e, "config": c, "seed": s, "task": "genre", "collapsed": v is None}
            | ({} if v is None else {"auc_segment": v, "auc_video": v, "f1_segment": v / 2, "f1_video": v / 2})
            for (e, c), vs in values.items() for s, v in enumerate(vs)]
    return pd.DataFrame(rows)


def test_table2_leaves_collapsed_seeds_out_and_says_so():
    table = probes.table2(fake_scores({("CL_a", "one"): [None, 0.6, 0.8], ("CL_a", "two"): [None, None, 0.9]}))
    auc = table[table["metric"] == "auc"].set_index("row")
    assert auc.loc["CL_a · one", "segment_mean"] == pytest.approx(0.7) and auc.loc["CL_a · one", "seeds"] == 3
    assert auc.loc["CL_a · one", "collapsed"] == "1 of 3 seeds collapsed"
    assert np.isnan(auc.loc["CL_a · two", "segment_mean"]) and auc.loc["CL_a · two", "collapsed"] == "2 of 3 seeds collapsed"
    markdown = probes.table2_markdown(table)
    assert "| — | collapsed | collapsed | — | collapsed | collapsed | 2 of 3 seeds collapsed |" in markdown
    assert "0.700 ± 0.141" in markdown


def test_a_collapsed_embedding_is_flagged_not_probed():
    manifest = pd.DataFrame({"video_id": np.repeat([f"v{i}" for i in range(12)], 2),
                             "split": np.repeat(["train"] * 8 + ["val"] * 2 + ["test"] * 2, 2),
                             "genre": np.repeat(["a", "b"] * 6, 2)})
    task = probes.genre_task(manifest)
    constant = np.ones((24, 4), dtype=np.float32)
    table, results, notes = probes.run_probes({("CL_a", "x"): constant}, {"genre": task}, manifest["split"],
                                              manifest["video_id"], seed=0, progress=False)
    assert table["collapsed"].tolist() == [True] and "auc_segment" not in table and not results and not notes


def test_table2_statistics_and_paper_values():
    table = probes.table2(fake_scores({("musicnn", "frozen"): [0.7, 0.8, 0.9], ("CL_a", "corrected"): [0.5, 0.6, 0.7],
                                       ("CL_a", "paper_baseline"): [0.6, 0.6, 0.6]}))
    auc = table[table["metric"] == "auc"].set_index("row")
    assert auc.loc["musicnn", "segment_mean"] == pytest.approx(0.8)
    assert auc.loc["musicnn", "segment_sd"] == pytest.approx(0.1)  # sample sd over seeds
    assert auc.loc["musicnn", "paper"] == 0.79 and auc.loc["CL_a · paper_baseline", "paper"] == 0.69
    assert np.isnan(auc.loc["CL_a · corrected", "paper"])  # the paper had no corrected configuration
    assert list(auc.index) == ["musicnn", "CL_a · corrected", "CL_a · paper_baseline"]  # frozen first
    assert "0.800 ± 0.100" in probes.table2_markdown(table)


def test_findings_verdicts_follow_the_stated_rule():
    # paper genre AUC: musicnn 0.79 > R(2+1)D 0.68; CL_agg 0.68 ≈ CL_a 0.69 (within its printed resolution)
    scores = fake_scores({("musicnn", "frozen"): [0.80, 0.82, 0.84], ("R(2+1)D", "frozen"): [0.60, 0.62, 0.64],
                          ("musicnn+R(2+1)D", "frozen"): [0.70, 0.80, 0.90],
                          ("CL_a", "c"): [0.9, 0.9, 0.9], ("CL_v", "c"): [0.5, 0.5, 0.5], ("CL_agg", "c"): [0.6, 0.6, 0.6]})
    findings = probes.paper_findings(probes.table2(scores)).set_index("finding")["verdict"]
    assert findings["musicnn > R(2+1)D"] == "reproduced"
    assert findings["musicnn+R(2+1)D > musicnn"] == "not resolved"  # 0.80 vs 0.82, sd 0.1
    assert findings["musicnn > CL_a · c"] == "contradicted"
    assert findings["CL_a · c ≈ CL_agg · c"] == "contradicted"  # 0.9 vs 0.6 with no spread
    assert "Contradicted" in probes.findings_summary(probes.paper_findings(probes.table2(scores)))


@pytest.mark.parametrize("values, verdict", [
    ([0.800, 0.802, 0.804], "reproduced"),  # |0.802 - 0.8| + noise 0.002 is within the 0.02 margin
    ([0.80, 0.85, 0.90], "not resolved"),  # centred near musicnn, but sd 0.05: no proof of equality
    ([0.90, 0.90, 0.90], "contradicted"),  # 0.1 apart without noise
])
def test_an_equality_claim_needs_the_difference_and_its_noise_within_the_margin(values, verdict):
    # paper tags AUC: musicnn+R(2+1)D 0.78 ≈ musicnn 0.78
    scores = fake_scores({("musicnn", "frozen"): [0.8, 0.8, 0.8], ("musicnn+R(2+1)D", "frozen"): values})
    findings = probes.paper_findings(probes.table2(scores.assign(task="tags"))).set_index("finding")
    assert findings.loc["musicnn+R(2+1)D ≈ musicnn", "verdict"] == verdict


def test_pairs_at_the_ceiling_are_flagged():
    scores = fake_scores({("musicnn", "frozen"): [1.0, 1.0, 0.995], ("R(2+1)D", "frozen"): [0.99, 0.995, 0.999]})
    findings = probes.paper_findings(probes.table2(scores))
    assert findings.set_index("finding").loc["musicnn > R(2+1)D", "at_ceiling"]
    assert "ceiling" in probes.findings_summary(findings)


def test_with_one_seed_nothing_is_called():
    scores = fake_scores({("musicnn", "frozen"): [0.9], ("R(2+1)D", "frozen"): [0.5]})
    findings = probes.paper_findings(probes.table2(scores)).set_index("finding")
    assert findings.loc["musicnn > R(2+1)D", "verdict"] == "not resolved"
    assert findings.loc["musicnn > R(2+1)D", "difference"] == pytest.approx(0.4)


def test_quick_report_writes_table2_with_every_frozen_row(quick_report):
    """Notebook 04 in the shared quick report: Table 2 on disk, frozen rows present, tagging scored."""
    path = quick_report.root / "figures" / "table2.csv"
    assert path.exists(), quick_report.log[-3000:]
    table = pd.read_csv(path)
    assert list(table.columns) == probes.TABLE2_COLUMNS
    assert set(probes.FROZEN) <= set(table["embedding"])
    tags_auc = table[(table["task"] == "tags") & (table["metric"] == "auc")]
    assert np.isfinite(tags_auc["segment_mean"]).any()
    assert (quick_report.root / "figures" / "table2.md").exists()
