"""The probe: learning on separable data, chance on shuffled labels, absent labels, seeds, refused splits."""

import numpy as np
import pandas as pd
import pytest

from mvnb import probes
from probes.test_labels import manifest

FAST = probes.ProbeConfig(hidden=(64, 32), max_epochs=60, patience=5)  # small widths keep the suite quick


def genre_features(man: pd.DataFrame, separation: float, dim: int = 16, seed: int = 0) -> np.ndarray:
    """`(n, dim)` Gaussian features whose mean depends on the genre by `separation` sd."""
    rng = np.random.default_rng(seed)
    codes = man["genre"].str[1:].astype(int).to_numpy()
    return rng.normal(size=(len(man), dim)) + separation * rng.normal(size=(codes.max() + 1, dim))[codes]


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
