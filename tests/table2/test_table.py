"""Table 2: what it scored, intervals of references as closed forms, pooled healthy seeds and rotations, its
markdown and files, end to end."""

import numpy as np
import pandas as pd
import pytest
from probes import test_scores as test_probe_scores
from probes.test_labels import folded_manifest, manifest
from probes.test_probe import genre_features
from probes.test_scores import fake_result

from mvnb import embeddings, probes, table2
from mvnb.corpus import manifest_split
from mvnb.metrics import macro_roc_auc
from mvnb.provenance import Weights
from mvnb.runs import run_dir
from table2.test_intervals import rotations_of

references = test_probe_scores.references  # the module-scoped fixture: the hand-made split's reference rows


def test_table2_names_what_it_scored_and_intervals_of_references_are_closed_forms_too(references):
    man, tasks, scores, results = references
    table, draws = table2.table2(
        scores.reset_index(), results, tasks, rotations_of(man), man["video_id"], n_draws=300
    )
    genre_f1 = table[(table["row"] == "majority genre") & (table["metric"] == "f1")].set_index("level")
    assert genre_f1.loc["segment", "test_videos"] == 3 and genre_f1.loc["segment", "test_segments"] == 6
    assert genre_f1.loc["segment", "labels_scored"] == 2 and genre_f1.loc["segment", "unscored"] == "jazz"
    auc = table[(table["row"] == "prior") & (table["metric"] == "auc")]
    assert (auc["low"] == 0.5).all() and (auc["high"] == 0.5).all()
    # per resample, the majority genre's F1 is the closed form on the resampled counts
    videos, weights = table2.resample_test_videos(
        tasks["genre"], rotations_of(man), man["video_id"], n_draws=300
    )
    rock = weights[:, list(videos).index("v6")]
    segments = weights @ np.array([2, 1, 3])  # segments of v6, v7, v8
    pop_present = weights[:, 1:].sum(1) > 0
    closed = np.where(rock > 0, 2 * 2 * rock / (2 * rock + segments), 0.0) / np.where(
        pop_present & (rock > 0), 2, 1
    )
    np.testing.assert_allclose(draws[("majority genre", "genre", "segment", "f1")], closed)
    markdown = table2.table2_markdown(
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
    table, draws = table2.table2(
        pd.DataFrame(rows), results, {"genre": task}, rotations_of(man), man["video_id"], n_draws=50
    )
    one = table[(table["config"] == "one") & (table["metric"] == "auc") & (table["level"] == "segment")].iloc[
        0
    ]
    pooled = table2.pooled_outputs(
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
    assert "| CL_a · two | — | collapsed | collapsed |" in table2.table2_markdown(table, Weights("v", "a"))


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
    table, _ = table2.table2(
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
    scores, results, notes = table2.run_table2_probes(
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
    table, draws = table2.table2(scores, results, tasks, rotations_of(man), man["video_id"], n_draws=100)
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
    paths = table2.write_table2(table, tmp_path / "figures", weights, n_draws=100)
    assert [p.name for p in paths] == ["table2.md", "table2.csv"]
    text = paths[0].read_text()
    assert text.count("| prior |") == 2 and "100 bootstrap resamples" in text
    on_disk = pd.read_csv(paths[1], keep_default_na=False, na_values=[""])
    assert list(on_disk.columns) == table2.TABLE2_COLUMNS + [
        "video_weights",
        "video_weights_sha256",
        "audio_weights",
        "audio_weights_sha256",
    ]
    assert (on_disk["video_weights"] == "R(2+1)D-18: Kinetics-400").all()
    counts = table2.genre_confusion(results, "musicnn", "frozen", tasks["genre"])
    assert counts.to_numpy().sum() == (man["split"] == "test").sum()
    per_tag = table2.per_label_auc(
        results, tasks["tags"], "musicnn", "frozen", rotations_of(man), man["video_id"], n_draws=100
    )
    assert per_tag["label"].tolist() == list(tasks["tags"].labels)
    assert ((per_tag["low"] <= per_tag["estimate"]) & (per_tag["estimate"] <= per_tag["high"])).all()
    np.testing.assert_allclose(
        per_tag["estimate"], results["musicnn", "frozen", "tags", 0, 0].per_label["auc_segment"]
    )
    assert table2.best_row(table, "genre")[1] != probes.REFERENCE_CONFIG


def test_quick_report_writes_table2_with_references_and_every_frozen_row(quick_report):
    """Notebook 04 in the shared quick report: Table 2 on disk with its reference and frozen rows, and what
    it scored."""
    path = quick_report.root / "figures" / "table2.csv"
    assert path.exists(), quick_report.log[-3000:]
    table = pd.read_csv(path)
    assert list(table.columns[: len(table2.TABLE2_COLUMNS)]) == table2.TABLE2_COLUMNS
    assert set(embeddings.FROZEN) | set(probes.REFERENCES) <= set(table["embedding"])
    tags_auc = table[(table["task"] == "tags") & (table["metric"] == "auc")]
    assert np.isfinite(tags_auc["estimate"]).any() and (tags_auc["test_videos"] > 0).all()
    assert (
        table.loc[table["embedding"] == "prior", "estimate"].where(table["metric"] == "auc").dropna() == 0.5
    ).all()
    assert "test videos" in (quick_report.root / "figures" / "table2.md").read_text()
