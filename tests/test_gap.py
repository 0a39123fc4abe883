"""The heterogeneity-gap study: the authors' metric pitfall, and the quick sweep's table."""
import numpy as np
import pandas as pd
import pytest

from mvnb import gap
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


def test_quick_sweep_writes_the_promised_csv(quick_report):
    table = pd.read_csv(quick_report.root / "figures" / "gap_study.csv")
    assert list(table.columns) == gap.COLUMNS
    assert set(map(tuple, table[["coupling", "style_coupling"]].drop_duplicates().to_numpy())) == {(0, 1), (1, 1), (0, 0)}
    assert set(table["config"]) == set(gap.CONFIGS)
    numbers = table.drop(columns="config").to_numpy(dtype=float)
    assert np.isfinite(numbers).all(), table
    assert ((table["median_rank_a2v"] >= 1) & (table["median_rank_a2v"] <= table["pool"])).all()
    assert (quick_report.root / "figures" / "gap_study.png").stat().st_size > 10_000
