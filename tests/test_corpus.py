"""mvnb.corpus: folds, rotations and splits as pure functions of a video's id, shards, the size
parser, and listing a video folder."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvnb.corpus import (
    FOLDS,
    SHARD_ENV,
    SPLITS,
    SizeError,
    fold_of,
    list_videos,
    parse_shard,
    parse_size,
    rotation_split,
    rotation_tested,
    segment_id,
    shard_of,
    split_counts,
    split_of,
    synth_video_id,
    video_key,
)


def test_split_is_80_10_10_by_video_id():
    splits = pd.Series([split_of(f"video-{i}") for i in range(20000)]).value_counts(normalize=True)
    assert (
        abs(splits["train"] - 0.8) < 0.01
        and abs(splits["val"] - 0.1) < 0.01
        and abs(splits["test"] - 0.1) < 0.01
    )


def test_shards_partition_the_videos_independently_of_the_split():
    ids = [f"v{i}" for i in range(3000)]
    shards = pd.Series([shard_of(v, 3) for v in ids])
    assert set(shards) == {0, 1, 2} and shards.value_counts(normalize=True).min() > 0.3
    train_share = pd.Series([split_of(v) == "train" for v in ids]).groupby(shards).mean()
    assert (abs(train_share - 0.8) < 0.05).all()


def test_shard_auto_comes_from_torchrun_or_a_slurm_array(monkeypatch):
    for pair in SHARD_ENV:
        for name in pair:
            monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="torchrun"):
        parse_shard("auto")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "5")
    assert parse_shard("auto") == (2, 5)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert parse_shard("auto") == (1, 4)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match="out of range"):
        parse_shard("auto")


@settings(max_examples=50, deadline=None)
@given(video_id=st.text(min_size=1, max_size=20))
def test_a_videos_fold_is_a_pure_function_of_its_id(video_id):
    assert fold_of(video_id) == fold_of(str(video_id)) and 0 <= fold_of(video_id) < FOLDS
    assert split_of(video_id) == (
        "test" if fold_of(video_id) == 9 else "val" if fold_of(video_id) == 8 else "train"
    )


@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_full_cycle_of_rotations_tests_every_fold_once_with_disjoint_splits(k):
    folds = np.arange(FOLDS)
    cycle = [rotation_split(folds, r, k) for r in range(FOLDS // k)]
    tested = np.concatenate([folds[s == "test"] for s in cycle])
    assert (
        len(set(tested)) == len(tested) == FOLDS // k * k
    )  # each fold tested at most once, every fold when k divides 10
    for s in cycle:
        assert (s == "test").sum() == (s == "val").sum() == k and (s == "train").sum() == FOLDS - 2 * k
    assert list(rotation_split(folds, 0, 1)) == ["train"] * 8 + [
        "val",
        "test",
    ]  # rotation 0: today's 80/10/10
    assert list(rotation_split(folds, 0, 2)) == ["train"] * 6 + ["val"] * 2 + ["test"] * 2


def test_each_video_is_tested_in_one_rotation_whose_split_tests_it_and_twice_given_rotations_are_refused():
    ids = [f"video{i}" for i in range(300)]
    folds = np.array([fold_of(v) for v in ids])
    tested = rotation_tested(folds, range(FOLDS))
    for r in range(FOLDS):  # a full cycle: every video once, in the rotation whose split tests it
        np.testing.assert_array_equal(tested == r, rotation_split(folds, r) == "test")
    assert (tested >= 0).all()
    some = rotation_tested(folds, [0, 1, 2, 3, 4])
    assert set(folds[some >= 0]) == {5, 6, 7, 8, 9} and (some[folds < 5] == -1).all()
    assert (rotation_tested(folds, [1], folds_per_split=2)[np.isin(folds, [6, 7])] == 1).all()
    with pytest.raises(ValueError, match="rotations 0 and 0 test the same fold"):
        rotation_tested(folds, [0, 0])
    with pytest.raises(ValueError, match="rotations 0 and 5 test the same fold"):
        rotation_tested(folds, [0, 5], folds_per_split=2)


def test_the_fold_split_of_ids_is_about_a_tenth_each():
    counts = np.bincount([fold_of(f"video{i}") for i in range(5000)], minlength=FOLDS)
    assert (np.abs(counts - 500) < 4 * np.sqrt(500)).all(), counts


def test_split_counts_count_each_distinct_video_once_in_its_split():
    ids = [f"video{i}" for i in range(200)]
    counts = split_counts(ids + ids[:50], rotation=3)
    assert tuple(counts) == SPLITS and sum(counts.values()) == 200
    assert counts == {s: sum(split_of(v, 3) == s for v in ids) for s in SPLITS}


def test_segment_ids_and_video_keys():
    assert segment_id("mv00001", 3) == "mv00001_03" and synth_video_id(42) == "mv00042"
    assert video_key("mv00042") == "mv00042"
    odd = video_key("Ünï Code/../x")
    assert odd != video_key("ünï code/../x") and odd.isascii() and "/" not in odd


@pytest.mark.parametrize(
    "text, pair",
    [("768x432", (768, 432)), (" 192 X 108 ", (192, 108)), ("64×36", (64, 36)), ((10, 8), (10, 8))],
)
def test_a_size_is_width_by_height(text, pair):
    assert parse_size(text) == pair


def test_a_bad_size_is_refused_as_a_value_error_that_argparse_shows():
    with pytest.raises(ValueError, match="must look like 768x432"):
        parse_size("768-432")
    with pytest.raises(SizeError, match="positive and even"):
        parse_size("767x432")
    with pytest.raises(ValueError, match="at least 32"):
        parse_size("30x20", minimum=32)
    with pytest.raises(SizeError, match="even and at least 32"):
        parse_size("33x40", minimum=32)
    assert parse_size("32x32", minimum=32) == (32, 32)
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=parse_size)
    with pytest.raises(SystemExit):
        parser.parse_args(["--size", "big"])
    assert issubclass(SizeError, argparse.ArgumentTypeError)


def test_listing_a_folder_takes_its_video_files_by_stem_and_skips_nothing(tmp_path):
    for name in ("b.mp4", "a song.MKV", ".hidden.mp4", "cover.jpg"):
        (tmp_path / name).write_bytes(b"x")
    jobs, skipped, labels = list_videos(tmp_path, None)
    assert [j.video_id for j in jobs] == ["a song", "b"] and skipped.empty and labels.columns.empty


def test_listing_metadata_reports_orphans_missing_files_and_ignores_computed_columns(tmp_path):
    (tmp_path / "videos").mkdir()
    for name in ("a.mp4", "orphan.mp4"):
        (tmp_path / "videos" / name).write_bytes(b"x")
    pd.DataFrame(
        {
            "video_id": ["a", "gone"],
            "path": ["videos/a.mp4", "videos/gone.mp4"],
            "genre": ["pop", "rock"],
            "split": "x",
        }
    ).to_csv(tmp_path / "metadata.csv", index=False)
    jobs, skipped, labels = list_videos(tmp_path / "videos", tmp_path / "metadata.csv")
    assert [j.video_id for j in jobs] == ["a"] and list(labels.columns) == ["genre"]
    reasons = skipped.set_index("video_id")["reason"]
    assert reasons["gone"].startswith("file not found") and reasons["orphan"].startswith(
        "no row in metadata.csv"
    )
