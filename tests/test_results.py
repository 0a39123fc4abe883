"""Table 1 from run summaries: intervals over test videos, collapse marks, verdicts against chance."""
import json

import numpy as np
import pandas as pd
import pytest

from mvnb import results
from mvnb.train import TEST_RANK_COLUMNS


def fake_run(runs, config, seed, ranks, videos, collapsed=False, tau=1.0, learnable=False):
    """A run folder holding only what `load_summaries` and `load_test_ranks` read."""
    folder = results.run_dir(runs, config, seed)
    folder.mkdir(parents=True)
    pool = len(ranks)
    main = {"pool": pool, "chance": (pool + 1) / 2, "median_rank_a2v": float(np.median(ranks)),
            "median_rank_v2a": float(np.median(ranks)), "r10_a2v": 0.0, "r10_v2a": 0.0}
    summary = {"input_norm": "none", "collapsed": {"audio": collapsed, "video": False}, "test": {"main": main, "paper": None},
               "tau": tau, "epochs_run": 3}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "config.json").write_text(json.dumps({"config": {"tau_init": 0.07, "learnable_temperature": learnable}}))
    table = pd.DataFrame({"row": np.arange(pool), "video_id": videos, "pool": pool, "rank_a2v": ranks, "rank_v2a": ranks,
                          "r10_a2v": (np.asarray(ranks) <= 10).astype(float), "r10_v2a": 0.0})
    table[TEST_RANK_COLUMNS].to_csv(folder / "test_ranks.csv", index=False)


@pytest.mark.parametrize("flags,usable,note", [
    ([False, False, False], [True, True, True], ""),
    ([True, False, False], [False, True, True], "1 of 3 seeds collapsed"),
    ([True, True, False], [False, False, False], "2 of 3 seeds collapsed"),
    ([False], [True], ""),
    ([True], [False], "1 of 1 seeds collapsed"),
])
def test_usable_seeds_leave_out_collapsed_ones_and_need_two_healthy(flags, usable, note):
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
    summaries = results.load_summaries(tmp_path, ["good", "chance"], [0, 1, 2])
    summaries = pd.concat([summaries, results.load_summaries(tmp_path, ["flat"], [0])])
    ranks = pd.concat([results.load_test_ranks(tmp_path, ["good", "chance"], [0, 1, 2]),
                       results.load_test_ranks(tmp_path, ["flat"], [0])])
    table = results.table1(summaries, ranks).set_index("configuration")
    # pooled over the two healthy seeds (every video brings a 1 and a 2); the collapsed seed is left out
    assert table.loc["good", "ours: a→v"] == "1.5 [1.5, 1.5]"
    assert table.loc["good", "collapsed"] == "1 of 3 seeds collapsed" and table.loc["good", "versus chance"] == "below chance"
    assert table.loc["chance", "versus chance"] == "at chance" and table.loc["chance", "collapsed"] == "none"
    assert table.loc["flat", "ours: a→v"] == "collapsed" and table.loc["flat", "test videos"] == 20
    findings = results.table1_findings(table.reset_index())
    assert "Below chance in both directions (the 95 % interval lies under it): `good`" in findings
    assert "Collapsed (flagged, not scored): `flat`" in findings


def test_format_interval_and_versus_chance():
    assert results.format_interval(17.04, 12.5, 21.0) == "17.0 [12.5, 21.0]"
    assert results.format_interval(float("nan"), 0, 1) == "—"
    assert [results.versus_chance(lo, hi, 10) for lo, hi in ((1, 9), (5, 15), (11, 12))] == \
        ["below chance", "at chance", "above chance"]


def test_tau_summary_says_where_learnable_temperatures_went(tmp_path):
    videos = np.repeat(["a", "b"], 2)
    fake_run(tmp_path, "clamped", 0, np.ones(4), videos, tau=0.01, learnable=True)
    fake_run(tmp_path, "free", 0, np.ones(4), videos, tau=0.2, learnable=True)
    fake_run(tmp_path, "fixed", 0, np.ones(4), videos)
    text = results.tau_summary(results.load_summaries(tmp_path, ["clamped", "free", "fixed"], [0]))
    assert "**clamped**: τ started at 0.07 and ended at 0.010 (at its clamp in 1 of 1 seeds)" in text
    assert "**free**" in text and "inside" in text and "fixed" not in text
