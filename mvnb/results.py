"""Results across runs: Table 1 with intervals over test videos, collapse marks, training curves,
and writing tables.

A report's runs are every (rotation, seed) pair of its profile; notebooks 03-06 find each other's
runs through `mvnb.runs` (`run_dir`, `load_summaries`, `load_test_ranks`), and tables go to the
figures folder as Markdown and CSV.

**Pooling rotations.** Each test query is ranked once, in its own run's test gallery: the test
segments of its rotation's test fold. Table 1 pools the queries of every healthy run of a
configuration, over rotations and seeds. Galleries of different rotations differ in size, so the
pooled number is the median of rank / pool (chance (P + 1) / 2P); `table1_rotations` gives each
rotation's median rank in its own gallery. Intervals come from a bootstrap that resamples test
videos within each rotation (`metrics.bootstrap_interval` with the rotation as stratum), the
galleries fixed, a video bringing its queries from every seed.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .corpus import FOLDS, rotation_split
from .io import format_interval, mean_sd, write_csv, write_text
from .loss import TAU_MAX, TAU_MIN
from .metrics import bootstrap_interval
from .paper import PAPER_POOL, PAPER_TABLE1
from .runs import read_history, run_dir


def usable_seeds(collapsed: pd.Series) -> tuple[pd.Series, str]:
    """Which runs of a row may be scored (a run: one rotation and seed), and the row's collapse note.

    collapsed: one bool per run. Collapsed runs are left out; when any collapsed and fewer
    than min(2, runs) healthy ones remain, no run is scored. Returns a bool mask over the
    runs and "k of n runs collapsed" ("" when none did).
    """
    collapsed = collapsed.astype(bool)
    healthy = ~collapsed
    note = f"{int(collapsed.sum())} of {len(collapsed)} runs collapsed" if collapsed.any() else ""
    if collapsed.any() and healthy.sum() < min(2, len(collapsed)):
        return healthy & False, note
    return healthy, note


def versus_chance(low: float, high: float, chance: float) -> str:
    """Where an interval of median ranks lies against chance: 'below chance', 'at chance' (it contains
    chance) or 'above chance'."""
    return "below chance" if high < chance else "above chance" if low > chance else "at chance"


def run_queries(runs: pd.DataFrame, ranks: pd.DataFrame) -> pd.DataFrame:
    """The test queries of `runs` (rows of `load_summaries`) among `ranks` (`load_test_ranks` of their
    configuration), with `share_a2v`, `share_v2a` (rank / pool) added."""
    keys = pd.MultiIndex.from_frame(runs[["rotation", "seed"]])
    queries = ranks[pd.MultiIndex.from_frame(ranks[["rotation", "seed"]]).isin(keys)]
    return queries.assign(
        share_a2v=queries["rank_a2v"] / queries["pool"], share_v2a=queries["rank_v2a"] / queries["pool"]
    )


def _verdict(intervals: dict, chance: float) -> str:
    """'below chance', 'at chance', … for both directions; two verdicts joined by ' / ' when they differ."""
    verdicts = [versus_chance(lo, hi, chance) for _, lo, hi in intervals.values()]
    return verdicts[0] if len(set(verdicts)) == 1 else " / ".join(verdicts)


def _pools(runs: pd.DataFrame) -> str:
    """The runs' test pools: '49', or '41–66' when rotations differ."""
    low, high = runs["pool"].min(), runs["pool"].max()
    return f"{low:g}" if low == high else f"{low:g}–{high:g}"


def table1(summaries: pd.DataFrame, ranks: pd.DataFrame) -> pd.DataFrame:
    """Table 1: test median rank / pool a→v and v→a, pooled over rotations and seeds, with 95 %
    intervals, beside the paper's.

    Ours are in the main form: each query ranked in its run's gallery of every test segment
    (pool P, the query's own video's other segments left out), as rank / P, whose chance is
    (P + 1) / 2P; the estimate is the median over the queries of the configuration's healthy
    runs, and the interval a bootstrap over test videos within rotations (see the module
    docstring). Runs whose test embeddings collapsed are left out and counted; a row with too
    few healthy runs reads "collapsed". The paper's numbers are its median ranks / 1000 (pools
    of 1000, chance 0.5005), computed with a defective metric (`metrics.argsort_diagonal_rank`).
    `test_videos`: the distinct test videos behind the row's numbers.
    summaries: `runs.load_summaries`; ranks: `runs.load_test_ranks` of the same runs.
    """
    rows = []
    for config, runs in summaries.groupby("config", sort=False):
        rows.append(_table1_row(config, runs, ranks[ranks["config"] == config]))
    return pd.DataFrame(rows)


def _table1_row(config: str, runs: pd.DataFrame, mine: pd.DataFrame) -> dict:
    """The row of `table1` for `config`: its runs (rows of `load_summaries`) and its test queries
    `mine` (rows of `load_test_ranks`)."""
    _, paper_a2v, paper_v2a = PAPER_TABLE1.get(config, (config, np.nan, np.nan))
    usable, note = usable_seeds(runs["collapsed"])
    queries = run_queries(runs[usable], mine)
    chance = float(((mine["pool"] + 1) / (2 * mine["pool"])).median())
    row = {
        "configuration": config,
        "input": "standardised" if runs["input_norm"].iloc[0] == "standard" else "raw",
        f"paper: a→v / v→a (rank / {PAPER_POOL})": "-"
        if np.isnan(paper_a2v)
        else f"{paper_a2v / PAPER_POOL:.3f} / {paper_v2a / PAPER_POOL:.3f}",
    }
    row |= _ours(queries, "share", chance, 3, queries["rotation"])
    row |= {"pool P": _pools(runs), "chance (P+1)/2P": f"{chance:.3f}"}
    for d, arrow in (("a2v", "a→v"), ("v2a", "v→a")):
        row[f"R@10 {arrow}"] = (
            "collapsed"
            if queries.empty
            else format_interval(
                *bootstrap_interval(
                    queries[f"r10_{d}"], queries["video_id"], "mean", strata=queries["rotation"]
                ),
                2,
            )
        )
    healthy = runs.loc[usable, "tau"]
    row |= {
        "final τ": mean_sd(healthy, 3) if len(healthy) else "collapsed",
        "rotations": runs["rotation"].nunique(),
        "runs": len(runs),
        "collapsed": note or "none",
        "test_videos": int(queries["video_id"].nunique()),
    }
    return row


def _ours(queries: pd.DataFrame, column: str, chance: float, digits: int, strata=None) -> dict:
    """A row's `ours: a→v`, `ours: v→a` (the median of `{column}_a2v`, `{column}_v2a` over `queries`,
    with its interval from a bootstrap over videos, within `strata` if given) and `versus chance`;
    "collapsed" in all three when there are no queries."""
    if queries.empty:
        return {"ours: a→v": "collapsed", "ours: v→a": "collapsed", "versus chance": "collapsed"}
    intervals = {
        d: bootstrap_interval(queries[f"{column}_{d}"], queries["video_id"], strata=strata)
        for d in ("a2v", "v2a")
    }
    return {
        "ours: a→v": format_interval(*intervals["a2v"], digits),
        "ours: v→a": format_interval(*intervals["v2a"], digits),
        "versus chance": _verdict(intervals, chance),
    }


def table1_rotations(summaries: pd.DataFrame, ranks: pd.DataFrame) -> pd.DataFrame:
    """Table 1 per rotation: each configuration's test median rank a→v and v→a in the rotation's own
    gallery (pool P, chance (P + 1) / 2), pooled over its healthy seeds, with a 95 % interval from a
    bootstrap over the rotation's test videos. Columns: configuration, rotation, test fold, ours:
    a→v, ours: v→a, versus chance, pool P, chance (P+1)/2, seeds, collapsed, test_videos.
    summaries, ranks: as for `table1`.
    """
    rows = []
    for (config, rotation), runs in summaries.groupby(["config", "rotation"], sort=False):
        usable, note = usable_seeds(runs["collapsed"])
        queries = run_queries(
            runs[usable], ranks[(ranks["config"] == config) & (ranks["rotation"] == rotation)]
        )
        chance = float(runs["chance"].median())
        row = {
            "configuration": config,
            "rotation": rotation,
            "test fold": int(np.flatnonzero(rotation_split(np.arange(FOLDS), rotation) == "test")[0]),
        }
        row |= _ours(queries, "rank", chance, 1)
        row |= {
            "pool P": _pools(runs),
            "chance (P+1)/2": f"{chance:g}",
            "seeds": len(runs),
            "collapsed": note or "none",
            "test_videos": int(queries["video_id"].nunique()),
        }
        rows.append(row)
    return pd.DataFrame(rows)


def table1_findings(table: pd.DataFrame) -> str:
    """Markdown: which configurations retrieve better than chance, decided by `table1`'s intervals."""
    groups = {
        verdict: list(rows["configuration"]) for verdict, rows in table.groupby("versus chance", sort=False)
    }
    rotations = table["rotations"].max()
    lines = [
        f"- Chance is a median rank / pool of **{table['chance (P+1)/2P'].iloc[0]}**; each query is ranked "
        f"among "
        f"the **{table['pool P'].iloc[0]}** test segments of its rotation, and the numbers pool "
        f"**{rotations}** "
        f"rotation{'s' if rotations > 1 else ''} with **{table['test_videos'].max()}** distinct test videos "
        f"in all."
    ]
    words = {
        "below chance": "Below chance in both directions (the 95 % interval lies under it)",
        "at chance": "At chance (the interval contains it)",
        "collapsed": "Collapsed (flagged, not scored)",
    }
    for verdict, names in groups.items():
        lines.append(f"- {words.get(verdict, f'Mixed ({verdict})')}: {', '.join(f'`{n}`' for n in names)}.")
    by_name = table.set_index("configuration")
    if {"paper_baseline", "paper_std"} <= set(by_name.index):
        raw, std = by_name.loc["paper_baseline"], by_name.loc["paper_std"]
        lines.append(
            f"- `paper_std` is `paper_baseline` with standardised inputs and nothing else changed: "
            f"a→v {raw['ours: a→v']} on raw inputs, {std['ours: a→v']} standardised."
        )
    return "\n".join(lines)


def tau_summary(summaries: pd.DataFrame) -> str:
    """Markdown: where each learnable temperature started and ended, measured, and whether it hit its
    clamp."""
    lines = []
    for config, runs in summaries[summaries["learnable"]].groupby("config", sort=False):
        final = runs["tau"]
        at_clamp = np.isclose(final, TAU_MIN, rtol=1e-3) | np.isclose(final, TAU_MAX, rtol=1e-3)
        where = (
            f"at its clamp in {int(at_clamp.sum())} of {len(runs)} runs"
            if at_clamp.any()
            else f"inside [{TAU_MIN:g}, {TAU_MAX:g}] in every run"
        )
        lines.append(
            f"- **{config}**: τ started at {runs['tau_init'].iloc[0]:g} and ended at {mean_sd(final, 3)} "
            f"({where})."
        )
    return "\n".join(lines) if lines else "No configuration here learns its temperature."


def write_table(table: pd.DataFrame, figures_dir: str | Path, name: str, weights, note: str = "") -> Path:
    """Write `table` as `{name}.md` and `{name}.csv` into `figures_dir`, atomically; returns the .md path.

    weights: the `mvnb.provenance.Weights` behind it: the .md gets its caption line (then `note`,
    a line of markdown, if any), the .csv its columns.
    """
    figures_dir = Path(figures_dir)
    body = (f"{note}\n\n" if note else "") + table.to_markdown(index=False)
    write_csv(figures_dir / f"{name}.csv", weights.stamp(table))
    return write_text(figures_dir / f"{name}.md", weights.markdown(body))


def training_curves(runs_dir: str | Path, configs: list[str], rotation: int, seed: int) -> plt.Figure:
    """Per epoch, for each configuration (one run: `rotation`, `seed`): training loss, validation median
    ranks, τ.

    Median ranks are drawn as fractions of the validation pool, with chance at (P+1)/2P.
    """
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8), constrained_layout=True)
    for config in configs:
        m = read_history(run_dir(runs_dir, config, seed, rotation=rotation))
        (line,) = axes[0].plot(m["epoch"], m["loss"], label=config)
        axes[1].plot(m["epoch"], m["val_median_rank_a2v"] / m["val_pool"], color=line.get_color())
        axes[1].plot(m["epoch"], m["val_median_rank_v2a"] / m["val_pool"], color=line.get_color(), ls="--")
        axes[2].plot(m["epoch"], m["tau"], color=line.get_color())
    pool = m["val_pool"].iloc[0]
    axes[1].axhline((pool + 1) / (2 * pool), color="k", lw=1, ls=":", label="chance")
    axes[0].set(title="training loss", xlabel="epoch")
    axes[1].set(title="validation median rank / pool (solid a→v, dashed v→a)", xlabel="epoch", ylim=(0, 0.7))
    axes[2].set(title="temperature τ", xlabel="epoch", yscale="log")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    return fig
