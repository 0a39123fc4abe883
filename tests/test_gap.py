"""The heterogeneity-gap study: the authors' metric pitfall, and the quick sweep's table."""

import numpy as np
import pandas as pd
import pytest

from mvnb import gap, gap_findings, provenance, readouts
from mvnb.config import PROFILES
from mvnb.metrics import argsort_diagonal_rank, median_rank


@pytest.mark.parametrize("n", [10, 101, 400])
def test_argsort_diagonal_reads_about_half_n_on_perfect_embeddings(n):
    x = np.random.default_rng(n).normal(size=(n, 8))
    assert median_rank(x, x) == 1
    # the authors' number: argsort row i, entry i, is an index near n/2 in the median, not a rank
    assert abs(argsort_diagonal_rank(x, x) - (n + 1) / 2) < 0.25 * n


def test_argsort_diagonal_does_not_see_learning():
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(300, 16))
    matched, shuffled = audio + 0.1 * rng.normal(size=audio.shape), rng.normal(size=audio.shape)
    assert median_rank(audio, matched) == 1 and median_rank(audio, shuffled) > 100
    a, b = argsort_diagonal_rank(audio, matched), argsort_diagonal_rank(audio, shuffled)
    assert 100 < a < 200 and 100 < b < 200


def test_quick_sweep_writes_the_promised_csvs(quick_report):
    figures = quick_report.root / "figures"
    table = pd.read_csv(figures / "gap_study.csv")
    assert list(table.columns) == [*gap.COLUMNS, *provenance.COLUMNS]
    points = set(map(tuple, table[["coupling", "style_coupling"]].drop_duplicates().to_numpy()))
    assert points == {tuple(p) for p in PROFILES["quick"]["gap_points"]} == {(0, 0), (1, 0), (1, 1)}
    assert set(table["config"]) == set(gap.CONFIGS)
    healthy = table[~table["collapsed"]][gap.COLUMNS]
    numbers = healthy.drop(columns=["config", "collapsed"]).to_numpy(dtype=float)
    assert np.isfinite(numbers).all(), table
    assert ((table["median_rank_a2v"] >= 1) & (table["median_rank_a2v"] <= table["pool"])).all()
    summary = pd.read_csv(figures / "gap_summary.csv")
    assert list(summary.columns) == [*gap.SUMMARY_COLUMNS, *provenance.COLUMNS] and len(summary) == 3 * len(
        gap.CONFIGS
    )
    scored = summary[summary["versus_chance"] != "collapsed"]
    assert (
        (scored["mr_pool_low"] <= scored["mr_pool"]) & (scored["mr_pool"] <= scored["mr_pool_high"])
    ).all()
    diagnosis = pd.read_csv(figures / "gap_diagnosis_summary.csv")
    assert len(diagnosis) == 8 and set(diagnosis["inputs"]) == {"raw", "standardised"}
    panel = pd.read_csv(figures / "gap_readouts.csv")
    assert set(panel["input"]) == {"musicnn", *gap.READOUT_POINTS, gap.PHANTOM_INPUT}
    assert set(panel["factor"]) == set(readouts.FACTORS)
    for name in ("gap_study.png", "gap_diagnosis.png", "gap_readouts.png"):
        assert (figures / name).stat().st_size > 10_000


def test_no_read_out_from_independent_pictures_predicts_the_heard_song(quick_report):
    """At (0, style 0) the picture follows only an unheard song in a random style: if any code derived
    from the id, seed or index leaked into the pixels, some factor of the heard song would be readable."""
    panel = pd.read_csv(quick_report.root / "figures" / "gap_readouts.csv")
    independent = panel[(panel["input"] == "R(2+1)D at (0, style 0)") & (panel["metric"] == "R²")]
    assert len(independent) == len(readouts.CONTINUOUS)
    assert (independent["score"] <= 0.05).all(), independent[["factor", "score", "low", "high"]]


def made_up_summary(verdicts: dict[str, list[str]]) -> pd.DataFrame:
    """A `sweep_summary` table at the default profile's points: per configuration one verdict a point."""
    rows = []
    for config, column in verdicts.items():
        for (c, p), verdict in zip(PROFILES["default"]["gap_points"], column, strict=True):
            scored = verdict != "collapsed"
            share = {"at chance": 0.5, "below chance": 0.1}.get(verdict, np.nan)
            rows.append(
                dict(coupling=c, style_coupling=p, config=config, seeds=3, collapsed="none", test_videos=63)
                | dict(chance=0.503, mr_pool=share, mr_pool_low=share - 0.05 * scored)
                | dict(mr_pool_high=share + 0.05 * scored, versus_chance=verdict)
            )
    return pd.DataFrame(rows, columns=gap.SUMMARY_COLUMNS)


def test_conclusion_counts_only_the_verdicts_that_occur():
    text = gap_findings.conclusion(
        made_up_summary(
            {
                "paper_baseline": ["collapsed"] * 5,
                "corrected": ["at chance", "below chance", "below chance", "at chance", "below chance"],
            }
        )
    )
    assert "63 test videos behind each number" in text
    assert "(paper_baseline): collapsed at 5 of 5 points. It never learns" in text
    assert "at 0" not in text
    assert "corrected, style 0** (picture follows the music, style independent of the genre): " in text
    assert "Clearly below chance from coupling 0.5 on." in text
    mixed = gap_findings.conclusion(
        made_up_summary({"paper_baseline": ["collapsed"] * 3 + ["below chance"] * 2})
    )
    assert "collapsed at 3, below chance at 2 of 5 points. It is not at chance everywhere." in mixed
