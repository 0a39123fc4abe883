"""Claims about Table 2, decided by paired intervals over the same resampled test videos."""

import numpy as np
import pandas as pd
import pytest

from mvnb import probes, table2


def claim_table(cells: dict[str, tuple[float, np.ndarray]], task: str = "genre", metric: str = "auc"):
    """A Table 2 of rows `name: (estimate, draws)` at segment level, and its draws."""
    table = pd.DataFrame(
        [
            {
                "row": name,
                "embedding": name.split(" · ")[0],
                "config": "reference" if name in probes.REFERENCES else "c" if " · " in name else "frozen",
                "task": task,
                "level": "segment",
                "metric": metric,
                "estimate": est,
            }
            for name, (est, _) in cells.items()
        ]
    )
    return table, {(name, task, "segment", metric): values for name, (_, values) in cells.items()}


NOISE = np.linspace(-0.1, 0.1, 1001)  # its 95 % interval is ±0.095


@pytest.mark.parametrize(
    "shift, verdict", [(0.15, "reproduced"), (0.05, "not resolved"), (-0.15, "contradicted")]
)
def test_a_greater_than_claim_is_decided_by_the_interval_of_the_difference(shift, verdict):
    # paper genre AUC: musicnn 0.79 > R(2+1)D 0.68; R(2+1)D fixed at 0.6, musicnn at 0.6 + shift with noise
    table, draws = claim_table(
        {"musicnn": (0.6 + shift, 0.6 + shift + NOISE), "R(2+1)D": (0.6, np.full(1001, 0.6))}
    )
    found = table2.paper_findings(table, draws).set_index("finding").loc["musicnn > R(2+1)D"]
    assert found["verdict"] == verdict and found["difference"] == pytest.approx(shift)
    assert found["low"] == pytest.approx(shift - 0.095) and found["high"] == pytest.approx(shift + 0.095)


def test_the_comparison_is_paired_over_the_same_resampled_videos():
    """Each row's own interval is wide, but both move together: the difference is resolved."""
    shared = np.random.default_rng(0).normal(0, 0.1, 2000)
    table, draws = claim_table({"musicnn": (0.62, 0.62 + shared), "R(2+1)D": (0.60, 0.60 + shared)})
    assert (
        table2.paper_findings(table, draws).set_index("finding").loc["musicnn > R(2+1)D", "verdict"]
        == "reproduced"
    )


@pytest.mark.parametrize(
    "offset, spread, verdict",
    [
        (0.005, 0.01, "reproduced"),  # the whole interval of the difference is within ±0.02
        (0.0, 0.5, "not resolved"),  # centred on equality, but the interval is wide: no proof of it
        (0.10, 0.01, "contradicted"),  # wholly outside the margin
    ],
)
def test_an_equality_claim_needs_the_whole_interval_within_the_margin(offset, spread, verdict):
    # paper tags AUC: concat 0.78 ≈ musicnn 0.78
    table, draws = claim_table(
        {"musicnn": (0.8, np.full(1001, 0.8)), "concat": (0.8 + offset, 0.8 + offset + spread * NOISE)},
        task="tags",
    )
    assert (
        table2.paper_findings(table, draws).set_index("finding").loc["concat ≈ musicnn", "verdict"] == verdict
    )


def test_pairs_at_the_ceiling_are_flagged_and_missing_rows_not_measured():
    table, draws = claim_table({"musicnn": (1.0, np.full(10, 1.0)), "R(2+1)D": (0.995, np.full(10, 0.995))})
    findings = table2.paper_findings(table, draws).set_index("finding")
    assert (
        findings.loc["musicnn > R(2+1)D", "at_ceiling"]
        and findings.loc["concat > musicnn", "verdict"] == "not measured"
    )
    assert "ceiling" in table2.findings_summary(findings.reset_index())


def test_rows_are_compared_with_the_best_reference_paired():
    table, draws = claim_table(
        {
            "prior": (0.2, np.full(1001, 0.2)),
            "all tags positive": (0.6, 0.6 + NOISE),
            "musicnn": (0.8, 0.8 + NOISE),
            "R(2+1)D": (0.62, 0.62 - NOISE),  # noise against the reference's: a wide difference
            "CL_v · c": (0.3, 0.3 + NOISE),
        },
        task="tags",
        metric="f1@0.5",
    )
    versus = table2.versus_references(table, draws).set_index("row")
    assert (versus["reference"] == "all tags positive").all()
    assert versus["verdict"].to_dict() == {
        "musicnn": "above",
        "R(2+1)D": "indistinguishable",
        "CL_v · c": "below",
    }
    summary = table2.references_summary(versus.reset_index())
    assert "above it: `musicnn`" in summary and "below it: `CL_v · c`" in summary
