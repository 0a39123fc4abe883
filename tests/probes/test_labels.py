"""The probes' tasks: labels from the manifest, chosen on the videos that train in every rotation, and what
is left out."""

import numpy as np
import pandas as pd
import pytest

from mvnb import probes
from mvnb.corpus import FOLDS, manifest_split


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
