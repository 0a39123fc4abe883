"""The paper's claims about Table 2, and ours against the reference rows, each decided by a paired
interval: the interval of a difference of two rows over the same resampled test videos.

`paper_findings` checks each comparison the paper's Table 2 makes (`findings_summary` says what is
reproduced in a paragraph); `versus_references` compares every scored row with the best constant
predictor (`references_summary`). The draws are `mvnb.table2.table2`'s.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mvnb.embeddings import LEARNED
from mvnb.io import format_interval
from mvnb.metrics import INTERVAL_LEVEL
from mvnb.paper import PAPER_RESOLUTION, PAPER_TABLE2
from mvnb.probes.labels import TASKS
from mvnb.probes.scores import REFERENCE_CONFIG
from mvnb.table2.intervals import percentile_interval
from mvnb.table2.table import FROZEN_CONFIG, METRIC_NAMES, row_label

EQUIVALENCE_MARGIN = 0.02  # "A ≈ B" holds for us when the whole interval of A − B lies within ± this
CEILING = 0.99  # scores this high leave no room for an order between embeddings


def paired_difference(
    table: pd.DataFrame,
    draws: dict,
    a: str,
    b: str,
    task: str,
    level: str,
    metric: str,
    interval: float = INTERVAL_LEVEL,
) -> tuple[float, float, float] | None:
    """`(A − B, low, high)` of rows `a` and `b`: the estimates' difference and the interval of the
    difference over the shared resamples; None when either row has no score there."""
    key_a, key_b = (a, task, level, metric), (b, task, level, metric)
    if key_a not in draws or key_b not in draws:
        return None
    cells = table.set_index(["row", "task", "level", "metric"])["estimate"]
    difference = float(cells.loc[key_a] - cells.loc[key_b])
    return (
        (difference, *percentile_interval(draws[key_a] - draws[key_b], interval))
        if np.isfinite(difference)
        else None
    )


def paper_findings(
    table: pd.DataFrame, draws: dict, level: str = "segment", metric: str = "auc"
) -> pd.DataFrame:
    """Each comparison the paper's Table 2 makes, and whether ours agrees, per task and CL configuration.

    Comparisons: audio vs video features, concat vs audio, and each CL embedding vs the frozen
    features it is built on, CL_a vs CL_v, CL_agg vs CL_a. The paper's claim is "A > B" when its
    values differ by more than `PAPER_RESOLUTION` (they are printed to two decimals), else
    "A ≈ B". Ours is decided by the 95 % interval of A − B over the same resampled test videos:
    - "A > B" is `reproduced` when the interval lies above 0, `contradicted` when below, else `not resolved`;
    - "A ≈ B" is `reproduced` when the interval lies within ±`EQUIVALENCE_MARGIN`, `contradicted`
      when it lies wholly outside, else `not resolved` (a wide interval proves no equality);
    - `not measured` when a row is missing or its score undefined.
    `at_ceiling` flags pairs where both of our scores are ≥ `CEILING`: there the order says little.
    Columns: `task, finding, paper, ours, difference, low, high, verdict, at_ceiling`.
    """
    out = []
    configs = [c for c in dict.fromkeys(table["config"]) if c not in (FROZEN_CONFIG, REFERENCE_CONFIG)]
    cells = table.set_index(["row", "task", "level", "metric"])["estimate"]
    for task in [t for t in TASKS if t in set(table["task"])]:
        for a, b in _finding_pairs(configs):
            out.append(_finding(table, draws, cells, a, b, task, level, metric))
    return pd.DataFrame(out)


def _finding_pairs(configs: list[str]) -> list[tuple[str, str]]:
    """The pairs of Table 2 rows that `paper_findings` compares: audio vs video features, concat vs
    audio, then per CL configuration of `configs` concat vs CL_agg, each CL embedding vs the frozen
    features it is built on, CL_a vs CL_v and CL_agg vs CL_a."""
    pairs = [("musicnn", "R(2+1)D"), ("concat", "musicnn")]
    for config in configs:
        cl = {name: row_label(name, config) for name in LEARNED}
        pairs += [
            ("concat", cl["CL_agg"]),
            ("musicnn", cl["CL_a"]),
            ("R(2+1)D", cl["CL_v"]),
            (cl["CL_a"], cl["CL_v"]),
            (cl["CL_agg"], cl["CL_a"]),
        ]
    return pairs


def _finding(
    table: pd.DataFrame, draws: dict, cells: pd.Series, a: str, b: str, task: str, level: str, metric: str
) -> dict:
    """One line of `paper_findings`: the paper's claim about rows `a` and `b` on `task` (the row the
    paper scores higher first), our scores and the interval of their difference, and the verdict.

    cells: Table 2's estimates indexed by `(row, task, level, metric)`.
    """
    paper_a, paper_b = (PAPER_TABLE2[label.split(" · ")[0]][task][metric != "auc"] for label in (a, b))
    if paper_b > paper_a:
        (a, paper_a), (b, paper_b) = (b, paper_b), (a, paper_a)
    tie = paper_a - paper_b <= PAPER_RESOLUTION + 1e-9
    row = {
        "task": task,
        "finding": f"{a} {'≈' if tie else '>'} {b}",
        "paper": f"{paper_a:.2f} vs {paper_b:.2f}",
        "ours": "—",
        "difference": np.nan,
        "low": np.nan,
        "high": np.nan,
        "verdict": "not measured",
        "at_ceiling": False,
    }
    found = paired_difference(table, draws, a, b, task, level, metric)
    if found is not None:
        difference, low, high = found
        ours = cells.loc[(a, task, level, metric)], cells.loc[(b, task, level, metric)]
        row |= {
            "ours": f"{ours[0]:.3f} vs {ours[1]:.3f}",
            "difference": difference,
            "low": low,
            "high": high,
            "verdict": _verdict(low, high, tie),
            "at_ceiling": bool(min(ours) >= CEILING),
        }
    return row


def _verdict(low: float, high: float, tie: bool) -> str:
    """Whether the interval `[low, high]` of A − B reproduces the paper's "A ≈ B" (`tie`) or "A > B"."""
    if tie:
        return (
            "reproduced"
            if -EQUIVALENCE_MARGIN <= low and high <= EQUIVALENCE_MARGIN
            else "contradicted"
            if low > EQUIVALENCE_MARGIN or high < -EQUIVALENCE_MARGIN
            else "not resolved"
        )
    return "reproduced" if low > 0 else "contradicted" if high < 0 else "not resolved"


def findings_summary(findings: pd.DataFrame) -> str:
    """A short markdown paragraph, generated from `paper_findings`, of what is reproduced and what is not."""
    if findings.empty:
        return "No probe could run, so none of the paper's findings could be checked."
    lines = []
    for verdict, words in (
        ("reproduced", "Reproduced"),
        ("contradicted", "Contradicted"),
        ("not resolved", "Not resolved (the interval of the difference allows either)"),
        ("not measured", "Not measured"),
    ):
        hits = findings[findings["verdict"] == verdict]
        if len(hits):
            items = "; ".join(
                f"{r.finding} on {r.task} ({r.ours}"
                + (
                    f", difference {format_interval(r.difference, r.low, r.high, 3)})"
                    if np.isfinite(r.difference)
                    else ")"
                )
                for r in hits.itertuples()
            )
            lines.append(f"- **{words}**, {len(hits)} of {len(findings)}: {items}.")
    ceiling = findings[findings["at_ceiling"]]
    if len(ceiling):
        items = "; ".join(f"{r.finding} on {r.task}" for r in ceiling.itertuples())
        lines.append(
            f"- Both scores are at the ceiling (≥ {CEILING}) in {len(ceiling)} comparison(s), where an order "
            f"between embeddings says little: {items}."
        )
    return "\n".join(lines)


def versus_references(table: pd.DataFrame, draws: dict, level: str = "segment") -> pd.DataFrame:
    """Every scored row against the best reference row of each task and metric, paired over the same
    resampled test videos.

    The reference is the prior for AUC (whose AUC is chance, 0.5), and for an F1 the one with
    the highest estimate (the task's own constant on ties: all tags positive, the majority genre). `verdict`:
    "above" when the
    95 % interval of row − reference lies above 0, "below" when below, else "indistinguishable".
    Columns: `row, task, metric, reference, ours, reference_score, difference, low, high, verdict`.
    """
    out = []
    scored = table[(table["level"] == level) & np.isfinite(table["estimate"].astype(float))]
    for (task, metric), group in scored.groupby(["task", "metric"], sort=False):
        refs = group[group["config"] == REFERENCE_CONFIG]
        if refs.empty:
            continue
        best = (
            refs[refs["embedding"] == "prior"].iloc[0]
            if metric == "auc"
            else refs.loc[refs["estimate"].astype(float)[::-1].idxmax()]
        )  # ties: the later, task-specific one
        for r in group[group["config"] != REFERENCE_CONFIG].itertuples():
            found = paired_difference(table, draws, r.row, best["row"], task, level, metric)
            if found is None:
                continue
            difference, low, high = found
            out.append(
                {
                    "row": r.row,
                    "task": task,
                    "metric": metric,
                    "reference": best["row"],
                    "ours": r.estimate,
                    "reference_score": best["estimate"],
                    "difference": difference,
                    "low": low,
                    "high": high,
                    "verdict": "above" if low > 0 else "below" if high < 0 else "indistinguishable",
                }
            )
    return pd.DataFrame(
        out,
        columns=[
            "row",
            "task",
            "metric",
            "reference",
            "ours",
            "reference_score",
            "difference",
            "low",
            "high",
            "verdict",
        ],
    )


def references_summary(versus: pd.DataFrame) -> str:
    """Markdown, generated from `versus_references`: per task and metric, which rows beat the best constant
    predictor."""
    if versus.empty:
        return "No row could be compared with a reference."
    lines = []
    for (task, metric), group in versus.groupby(["task", "metric"], sort=False):
        ref = group.iloc[0]
        parts = [
            f"{words}: {', '.join(f'`{r}`' for r in group.loc[group['verdict'] == verdict, 'row'])}"
            for verdict, words in (
                ("above", "above it"),
                ("indistinguishable", "indistinguishable from it"),
                ("below", "below it"),
            )
            if (group["verdict"] == verdict).any()
        ]
        lines.append(
            f"- **{task}, {METRIC_NAMES[metric]}** (best reference `{ref['reference']}`, "
            f"{ref['reference_score']:.3f}): " + "; ".join(parts) + "."
        )
    return "\n".join(lines)
