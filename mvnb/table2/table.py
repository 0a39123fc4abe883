"""Table 2: per row (reference, frozen embedding, CL embedding of a configuration), task, level and
metric, the paper's value beside ours with its interval over test videos; its markdown, and its
files `table2.md` and `table2.csv`, which this module alone writes.

Its probes are run by `mvnb.table2.experiment`, its intervals come from `mvnb.table2.intervals`, the
paper's claims are checked in `mvnb.table2.findings`, and its figures are `mvnb.table2.figures`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mvnb.embeddings import NAMES as EMBEDDINGS
from mvnb.io import format_interval, write_csv, write_text
from mvnb.metrics import BOOTSTRAP_DRAWS, INTERVAL_LEVEL
from mvnb.paper import PAPER_CL_CONFIG, PAPER_TABLE2
from mvnb.probes.labels import TASKS, ProbeTask
from mvnb.probes.scores import LEVELS, METRICS, REFERENCE_CONFIG, REFERENCES, ProbeResult
from mvnb.results import usable_seeds
from mvnb.table2.intervals import percentile_interval, pooled_outputs, resample_test_videos, row_draws

FROZEN_CONFIG = "frozen"  # the `config` of the frozen-feature rows
METRIC_NAMES = {"auc": "AUC", "f1@0.5": "F1@0.5", "f1@val": "F1@val", "f1": "F1"}  # column heads of table2.md
METRIC_LEGEND = {
    "auc": "macro ROC-AUC",
    "f1@0.5": "macro F1, tags predicted where their probability is ≥ 0.5",
    "f1@val": "macro F1 at the one threshold, shared by all tags, tuned on the validation split",
    "f1": "macro F1 of the arg-max genre",
}
TABLE2_COLUMNS = [
    "row",
    "embedding",
    "config",
    "task",
    "level",
    "metric",
    "paper",
    "estimate",
    "low",
    "high",
    "test_videos",
    "test_segments",
    "labels_scored",
    "labels",
    "unscored",
    "rotations",
    "seeds",
    "collapsed",
]


def row_label(embedding: str, config: str) -> str:
    """Name of a Table 2 row: the embedding (or reference), with its contrastive configuration for CL rows."""
    return embedding if config in (FROZEN_CONFIG, REFERENCE_CONFIG) else f"{embedding} · {config}"


def table2(
    scores: pd.DataFrame,
    results: dict,
    tasks: dict[str, ProbeTask],
    tested,
    video_ids,
    n_draws: int = BOOTSTRAP_DRAWS,
    interval: float = INTERVAL_LEVEL,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict]:
    """Table 2: per row (reference, frozen embedding, CL embedding of a configuration), task, level
    and metric, the paper's value and ours with its 95 % interval over test videos.

    scores, results: `mvnb.table2.experiment.run_table2_probes`; tested, video_ids: `(n_segments,)` of
    the manifest, the rotation that tests each segment's video (`mvnb.corpus.rotation_tested`,
    −1 for none) and its id. A row pools the test predictions of its healthy runs, over rotations and seeds
    (`results.usable_seeds`): collapsed runs are left out and counted in `collapsed`; with too few
    healthy runs the row has no numbers. `test_videos`, `test_segments`: the distinct test items
    behind a row's numbers. Returns the table (`TABLE2_COLUMNS`; rows: references, frozen, then
    each configuration's CL rows, in the paper's order) and the draws
    `{(row, task, level, metric): (n_draws,)}` that every row shares, for paired comparisons.
    """
    if scores.empty:
        return pd.DataFrame(columns=TABLE2_COLUMNS), {}
    out, draws = [], {}
    shared = {
        name: resample_test_videos(task, tested, video_ids, n_draws, seed) for name, task in tasks.items()
    }
    for (embedding, config, task_name), group in scores.groupby(["embedding", "config", "task"], sort=False):
        rows, found = _row_cells(
            embedding, config, group, results, tasks[task_name], shared[task_name], video_ids, interval
        )
        out += rows
        draws |= found
    return _in_paper_order(pd.DataFrame(out, columns=TABLE2_COLUMNS)), draws


def _row_cells(
    embedding: str,
    config: str,
    group: pd.DataFrame,
    results: dict,
    task: ProbeTask,
    resampled: tuple[np.ndarray, np.ndarray],
    video_ids,
    interval: float,
) -> tuple[list[dict], dict]:
    """The lines of Table 2 of one row (an embedding of a configuration, on one task), and their draws.

    group: the row's probes in `run_table2_probes`' scores, one per rotation and seed; resampled:
    the task's `resample_test_videos`, `(videos (v,), weights (n_draws, v))`. Returns one dict of
    `TABLE2_COLUMNS` per level and metric, and `{(row, task, level, metric): (n_draws,)}`.
    """
    usable, note = usable_seeds(group["collapsed"])
    keys = [
        (embedding, config, task.name, r, s)
        for r, s in zip(group.loc[usable, "rotation"], group.loc[usable, "seed"], strict=True)
    ]
    healthy = [results[key] for key in keys if key in results]
    base = {
        "row": row_label(embedding, config),
        "embedding": embedding,
        "config": config,
        "task": task.name,
        "rotations": group["rotation"].nunique(),
        "seeds": group["seed"].nunique(),
        "collapsed": note or "none",
        "labels": len(task.labels),
    }
    rows, draws = [], {}
    for level in LEVELS:
        pooled = _pooled_draws(healthy, task, video_ids, level, resampled) if healthy else None
        for metric in METRICS[task.name]:
            row = base | {
                "level": level,
                "metric": metric,
                "paper": _paper_value(embedding, config, task.name, metric),
                "estimate": np.nan,
                "low": np.nan,
                "high": np.nan,
                "test_videos": 0,
                "test_segments": 0,
                "labels_scored": 0,
                "unscored": "",
            }
            if healthy:
                cells, values = _scored_cells(metric, pooled, healthy, task, interval)
                row |= cells
                draws[(base["row"], task.name, level, metric)] = values
            rows.append(row)
    return rows, draws


def _pooled_draws(
    healthy: list[ProbeResult], task: ProbeTask, video_ids, level: str, resampled: tuple
) -> tuple[np.ndarray, np.ndarray, dict]:
    """A row's pooled test predictions at `level` and their scores: `(item videos (n,), targets (n, k),
    {metric: (estimate, (n_draws,))})` (`pooled_outputs`, `row_draws`)."""
    videos, weights = resampled
    item_videos, targets, outputs = pooled_outputs(healthy, task, video_ids, level)
    return item_videos, targets, row_draws(targets, outputs, item_videos, videos, weights)


def _scored_cells(
    metric: str, pooled: tuple, healthy: list[ProbeResult], task: ProbeTask, interval: float
) -> tuple[dict, np.ndarray]:
    """The numbers of one line of a row whose probes ran, and the metric's `(n_draws,)` draws.

    pooled: `_pooled_draws` of the line's level; healthy: the row's probes it pools.
    """
    item_videos, targets, found = pooled
    estimate, values = found[metric]
    low, high = percentile_interval(values, interval)
    scored = _labels_scored(metric, targets)
    cells = {
        "estimate": estimate,
        "low": low,
        "high": high,
        "test_videos": len(np.unique(item_videos)),
        "test_segments": len(np.unique(np.concatenate([r.test_rows for r in healthy]))),
        "labels_scored": int(scored.sum()),
        "unscored": "; ".join(np.asarray(task.labels)[~scored]),
    }
    return cells, values


def _in_paper_order(table: pd.DataFrame) -> pd.DataFrame:
    """Table 2's lines sorted: references, frozen, then each configuration's CL rows (in order of first
    appearance); within them by embedding, task, metric and level in the orders of their definitions."""
    config_order = [
        REFERENCE_CONFIG,
        FROZEN_CONFIG,
        *dict.fromkeys(c for c in table["config"] if c not in (FROZEN_CONFIG, REFERENCE_CONFIG)),
    ]
    order = [*REFERENCES, *EMBEDDINGS]
    table["_c"] = table["config"].map(config_order.index)
    table["_e"] = table["embedding"].map(order.index)
    table["_t"] = table["task"].map(TASKS.index)
    table["_l"] = table["level"].map(LEVELS.index)
    table["_m"] = [METRICS[t].index(m) for t, m in zip(table["task"], table["metric"], strict=True)]
    return (
        table.sort_values(["_c", "_e", "_t", "_m", "_l"])
        .drop(columns=["_c", "_e", "_t", "_l", "_m"])
        .reset_index(drop=True)
    )


def _paper_value(embedding: str, config: str, task: str, metric: str) -> float:
    """The paper's Table 2 value for a row (NaN for references and configurations the paper did not have)."""
    if config not in (FROZEN_CONFIG, PAPER_CL_CONFIG) or embedding not in PAPER_TABLE2:
        return np.nan
    return PAPER_TABLE2[embedding][task][metric != "auc"]


def _labels_scored(metric: str, targets: np.ndarray) -> np.ndarray:
    """`(k,)` which labels have the metric defined on `targets` `(n, k)`: a positive (F1), and a negative too
    (AUC)."""
    positive = targets.any(0)
    return positive & (~targets.astype(bool)).any(0) if metric == "auc" else positive


def table2_markdown(table: pd.DataFrame, weights, n_draws: int = BOOTSTRAP_DRAWS) -> str:
    """Table 2 as markdown under the weights' caption: a legend, then per task a line saying what it
    scored and a table with a line per row: the paper's value and ours per segment and per video,
    for each of the task's `METRICS` (the paper's F1 stands once, before both tag F1s).

    weights: `mvnb.provenance.Weights` of the features.
    """
    legend = "; ".join(f"{METRIC_NAMES[m]}: {METRIC_LEGEND[m]}" for m in METRIC_LEGEND)
    parts = [
        f"Test scores on the pooled test predictions of every healthy run (rotations and seeds), each with "
        f"its "
        f"95 % interval from {n_draws} bootstrap resamples of the test videos within each rotation. "
        f"Reference rows "
        f"are constant predictors, one per rotation's training split. {legend}. — : undefined."
    ]
    for task in [t for t in TASKS if t in set(table["task"])]:
        rows = table[table["task"] == task]
        parts.append(_scored_line(task, rows))
        header = ["row"]
        for metric in METRICS[task]:
            paper = (
                ["AUC · paper"] if metric == "auc" else ["F1 · paper"] if metric in ("f1@0.5", "f1") else []
            )
            header += paper + [f"{METRIC_NAMES[metric]} · {level}" for level in LEVELS]
        header += ["test videos", "rotations", "seeds", "collapsed"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for label, group in rows.groupby("row", sort=False):
            cells = [label]
            for metric in METRICS[task]:
                cell = group[group["metric"] == metric].set_index("level")
                if metric in ("auc", "f1@0.5", "f1"):
                    paper = cell["paper"].iloc[0]
                    cells.append("—" if not np.isfinite(paper) else f"{paper:.2f}")
                for level in LEVELS:
                    r = cell.loc[level]
                    cells.append(
                        ("collapsed" if r["collapsed"] != "none" else "—")
                        if not np.isfinite(r["estimate"])
                        else format_interval(r["estimate"], r["low"], r["high"], 3)
                    )
            first = group.iloc[0]
            cells += [
                str(group["test_videos"].max()),
                str(first["rotations"]),
                "constant" if first["config"] == REFERENCE_CONFIG else str(first["seeds"]),
                first["collapsed"],
            ]
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return weights.markdown("\n\n".join(parts))


def _scored_line(task: str, rows: pd.DataFrame) -> str:
    """'**tags**: 8 of 10 tags have a test video and are scored (none carries slow, ambient); 10 test videos
    (60 segments).'"""
    scored = rows[np.isfinite(rows["estimate"].astype(float))]
    if scored.empty:
        return f"**{task}**: nothing could be scored."
    f1 = scored[scored["metric"] != "auc"].iloc[0]
    auc = scored[scored["metric"] == "auc"]
    noun = "tag" if task == "tags" else "genre"
    line = (
        f"**{task}**: {_count(f1['labels_scored'], noun, f1['labels'])} a test video and "
        f"{'is' if f1['labels_scored'] == 1 else 'are'} scored"
        + (f" (none carries {', '.join(f1['unscored'].split('; '))})" if f1["unscored"] else "")
    )
    if len(auc) and auc["labels_scored"].iloc[0] != f1["labels_scored"]:
        line += f"; AUC needs a negative too, and scores {auc['labels_scored'].iloc[0]}"
    return line + f"; {_count(f1['test_videos'], 'test video')} ({_count(f1['test_segments'], 'segment')})."


def _count(n: int, noun: str, of: int | None = None) -> str:
    """'1 test video', '3 test videos', '1 of 6 genres has', '2 of 6 genres have'."""
    if of is None:
        return f"{n} {noun}{'' if n == 1 else 's'}"
    return f"{n} of {of} {noun}{'' if of == 1 else 's'} {'has' if n == 1 else 'have'}"


def write_table2(
    table: pd.DataFrame, figures_dir: str | Path, weights, n_draws: int = BOOTSTRAP_DRAWS
) -> tuple[Path, Path] | None:
    """Write `table2.md` (under the weights' caption) and `table2.csv` (with the weights' columns) into
    `figures_dir`,
    atomically; returns their paths, or None, writing nothing, when no probe ran (an empty table)."""
    if table.empty:
        return None
    paths = Path(figures_dir) / "table2.md", Path(figures_dir) / "table2.csv"
    write_text(paths[0], table2_markdown(table, weights, n_draws))
    write_csv(paths[1], weights.stamp(table))
    return paths
