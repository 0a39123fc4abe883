"""Scoring: the validation-tuned threshold, and the reference rows against their closed forms on a hand-made
split."""

import numpy as np
import pandas as pd
import pytest

from mvnb import probes


def test_threshold_is_chosen_on_validation_nearest_one_half_among_ties():
    targets = np.array([[1], [1], [0], [0]])
    # every threshold in (0.2, 0.35] separates perfectly: 0.25, 0.30 and 0.35 tie, 0.35 is nearest 0.5
    assert probes.choose_threshold(targets, np.array([[0.35], [0.4], [0.2], [0.1]])) == 0.35
    assert probes.choose_threshold(np.zeros((3, 1), int), np.full((3, 1), 0.7)) == 0.5  # no positive: default


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
        probes.reference_probs("prior", tasks["tags"], man["split"], man["video_id"]),
        [3 / 4, 1 / 2, 1 / 4],
    )
    np.testing.assert_allclose(
        probes.reference_probs("prior", tasks["genre"], man["split"], man["video_id"]),
        [1 / 4, 1 / 4, 1 / 2],
    )
    np.testing.assert_array_equal(
        probes.reference_probs("majority genre", tasks["genre"], man["split"], man["video_id"]),
        [0, 0, 1],
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
