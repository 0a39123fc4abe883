"""Table 1 from run summaries: intervals over test videos, collapse marks, verdicts against chance."""

import numpy as np
import pandas as pd
import pytest

from mvnb import results
from mvnb.runs import load_summaries, load_test_ranks, run_dir, write_config, write_summary, write_test_ranks


def fake_run(
    runs, config, seed, ranks, videos, collapsed=False, tau=1.0, learnable=False, rotation=0, r10=None
):
    """A run folder holding only what `load_summaries` and `load_test_ranks` read; its pool is len(ranks)."""
    folder = run_dir(runs, config, seed, rotation=rotation)
    folder.mkdir(parents=True)
    pool = len(ranks)
    main = {
        "pool": pool,
        "chance": (pool + 1) / 2,
        "median_rank_a2v": float(np.median(ranks)),
        "median_rank_v2a": float(np.median(ranks)),
        "r10_a2v": 0.0,
        "r10_v2a": 0.0,
    }
    summary = {
        "input_norm": "none",
        "collapsed": {"audio": collapsed, "video": False},
        "test": {"main": main, "paper": None},
        "tau": tau,
        "epochs_run": 3,
    }
    write_summary(folder, summary)
    write_config(folder, {"config": {"tau_init": 0.07, "learnable_temperature": learnable}})
    table = pd.DataFrame(
        {
            "row": np.arange(pool),
            "video_id": videos,
            "pool": pool,
            "rank_a2v": ranks,
            "rank_v2a": ranks,
            "r10_a2v": (np.asarray(ranks) <= 10).astype(float) if r10 is None else r10,
            "r10_v2a": 0.0,
        }
    )
    write_test_ranks(folder, table)


@pytest.mark.parametrize(
    "flags,usable,note",
    [
        ([False, False, False], [True, True, True], ""),
        ([True, False, False], [False, True, True], "1 of 3 runs collapsed"),
        ([True, True, False], [False, False, False], "2 of 3 runs collapsed"),
        ([False], [True], ""),
        ([True], [False], "1 of 1 runs collapsed"),
    ],
)
def test_usable_runs_leave_out_collapsed_ones_and_need_two_healthy(flags, usable, note):
    mask, text = results.usable_seeds(pd.Series(flags))
    assert mask.tolist() == usable and text == note


def test_table1_pools_healthy_seeds_and_reads_intervals_against_chance(tmp_path):
    videos = np.repeat([f"v{i}" for i in range(20)], 3)
    rng = np.random.default_rng(0)
    fake_run(tmp_path, "good", 0, np.ones(60), videos)
    fake_run(tmp_path, "good", 1, np.full(60, 2.0), videos)
    fake_run(tmp_path, "good", 2, rng.uniform(1, 60, 60), videos, collapsed=True)
    for seed in range(3):
        fake_run(tmp_path, "chance", seed, rng.permutation(np.arange(1.0, 61)), videos)
    fake_run(tmp_path, "flat", 0, np.full(60, 30.5), videos, collapsed=True)
    summaries = load_summaries(tmp_path, ["good", "chance"], [0], [0, 1, 2])
    summaries = pd.concat([summaries, load_summaries(tmp_path, ["flat"], [0], [0])])
    ranks = pd.concat(
        [
            load_test_ranks(tmp_path, ["good", "chance"], [0], [0, 1, 2]),
            load_test_ranks(tmp_path, ["flat"], [0], [0]),
        ]
    )
    table = results.table1(summaries, ranks).set_index("configuration")
    # pooled over the two healthy seeds (every video brings a 1 and a 2, of 60); the collapsed seed is left
    # out
    assert table.loc["good", "ours: a→v"] == "0.025 [0.025, 0.025]"
    assert (
        table.loc["good", "collapsed"] == "1 of 3 runs collapsed"
        and table.loc["good", "versus chance"] == "below chance"
    )
    assert table.loc["chance", "versus chance"] == "at chance" and table.loc["chance", "collapsed"] == "none"
    assert (
        table.loc["chance", "chance (P+1)/2P"] == f"{61 / 120:.3f}"
        and table.loc["chance", "test_videos"] == 20
    )
    assert (
        table.loc["flat", "ours: a→v"] == "collapsed" and table.loc["flat", "test_videos"] == 0
    )  # nothing behind it
    findings = results.table1_findings(table.reset_index())
    assert "Below chance in both directions (the 95 % interval lies under it): `good`" in findings
    assert "Collapsed (flagged, not scored): `flat`" in findings
    assert "pool **1** rotation with **20** distinct test videos" in findings


def test_table1_pools_rotations_as_rank_over_pool_and_resamples_videos_within_them(tmp_path):
    """Two rotations, galleries of 6 and 9: pooled, each query counts as rank / its own pool; the bootstrap
    resamples each rotation's videos apart, so each draw holds 2 videos of rotation 0 and 3 of rotation 1."""
    fake_run(tmp_path, "cfg", 0, np.full(6, 6.0), np.repeat(["a0", "a1"], 3), rotation=0, r10=1.0)
    fake_run(tmp_path, "cfg", 0, np.full(9, 1.0), np.repeat(["b0", "b1", "b2"], 3), rotation=1, r10=0.0)
    summaries, ranks = (load(tmp_path, ["cfg"], [0, 1], [0]) for load in (load_summaries, load_test_ranks))
    assert list(summaries["rotation"]) == [0, 1] and sorted(set(ranks["rotation"])) == [0, 1]
    row = results.table1(summaries, ranks).iloc[0]
    # six queries at 6 / 6 = 1 and nine at 1 / 9: the median of rank / pool is 1/9 (of raw ranks it would be
    # 1)
    assert row["ours: a→v"] == "0.111 [0.111, 0.111]" and row["versus chance"] == "below chance"
    assert row["chance (P+1)/2P"] == f"{10 / 18:.3f}" and row["pool P"] == "6–9"
    # R@10 is 1 in rotation 0 and 0 in rotation 1: within strata every draw has 6 of 15 queries at 1
    assert row["R@10 a→v"] == "0.40 [0.40, 0.40]"
    assert row["rotations"] == 2 and row["runs"] == 2 and row["test_videos"] == 5
    per_rotation = results.table1_rotations(summaries, ranks).set_index("rotation")
    assert (
        per_rotation.loc[0, "ours: a→v"] == "6.0 [6.0, 6.0]"
        and per_rotation.loc[1, "ours: a→v"] == "1.0 [1.0, 1.0]"
    )
    assert (
        per_rotation.loc[0, "versus chance"] == "above chance"
        and per_rotation.loc[1, "chance (P+1)/2"] == "5"
    )
    assert list(per_rotation["test fold"]) == [9, 8] and list(per_rotation["test_videos"]) == [2, 3]
    assert list(per_rotation["pool P"]) == ["6", "9"]


def test_a_collapsed_rotation_is_left_out_of_the_pool_and_counted(tmp_path):
    for rotation in range(3):
        videos = np.repeat([f"r{rotation}v{i}" for i in range(4)], 2)
        fake_run(
            tmp_path, "cfg", 0, np.full(8, 1.0 + rotation), videos, rotation=rotation, collapsed=rotation == 2
        )
    summaries, ranks = (load(tmp_path, ["cfg"], [0, 1, 2], [0]) for load in (load_summaries, load_test_ranks))
    row = results.table1(summaries, ranks).iloc[0]
    assert row["collapsed"] == "1 of 3 runs collapsed" and row["test_videos"] == 8
    # rotations 0 and 1 only: 8 queries at 1/8 and 8 at 2/8 in every draw, since each draws 4 videos of its
    # own
    assert row["ours: a→v"] == "0.188 [0.188, 0.188]"
    assert results.table1_rotations(summaries, ranks).set_index("rotation").loc[2, "ours: a→v"] == "collapsed"


def test_versus_chance():
    assert [results.versus_chance(lo, hi, 10) for lo, hi in ((1, 9), (5, 15), (11, 12))] == [
        "below chance",
        "at chance",
        "above chance",
    ]


def test_tau_summary_says_where_learnable_temperatures_went(tmp_path):
    videos = np.repeat(["a", "b"], 2)
    fake_run(tmp_path, "clamped", 0, np.ones(4), videos, tau=0.01, learnable=True)
    fake_run(tmp_path, "free", 0, np.ones(4), videos, tau=0.2, learnable=True)
    fake_run(tmp_path, "fixed", 0, np.ones(4), videos)
    text = results.tau_summary(load_summaries(tmp_path, ["clamped", "free", "fixed"], [0], [0]))
    assert "**clamped**: τ started at 0.07 and ended at 0.010 (at its clamp in 1 of 1 runs)" in text
    assert "**free**" in text and "inside" in text and "fixed" not in text
