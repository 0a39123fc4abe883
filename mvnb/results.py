"""Results across runs: where runs live, Table 1, training curves, and writing tables.

A contrastive run of configuration `name` and seed `s` lives in
`{runs_dir}/train/{name}/seed{s}/` (see `mvnb.train` for its contents). Notebooks 03-06 find
each other's runs through `run_dir`, and tables go to the figures folder as Markdown and CSV.
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .media import atomic_write
from .train import PAPER_TABLE1


def run_dir(runs_dir: str | Path, config: str, seed: int) -> Path:
    """The folder of the contrastive run of `config` and `seed`."""
    return Path(runs_dir) / "train" / config / f"seed{seed}"


def load_summaries(runs_dir: str | Path, configs: list[str], seeds: list[int]) -> pd.DataFrame:
    """One row per (config, seed) run: test-split retrieval in the main form, τ, epochs.

    Columns: config, seed, pool, chance, median_rank_a2v, median_rank_v2a, r10_a2v, r10_v2a,
    paper_median_rank_a2v, paper_median_rank_v2a, paper_pool (NaN where the split has too few
    videos for the paper's pools), tau, epochs_run.
    """
    rows = []
    for config in configs:
        for seed in seeds:
            summary = json.loads((run_dir(runs_dir, config, seed) / "summary.json").read_text())
            main, paper = summary["test"]["main"], summary["test"]["paper"] or {}
            rows.append(dict(config=config, seed=seed, pool=main["pool"], chance=main["chance"],
                             median_rank_a2v=main["median_rank_a2v"], median_rank_v2a=main["median_rank_v2a"],
                             r10_a2v=main["r10_a2v"], r10_v2a=main["r10_v2a"],
                             paper_median_rank_a2v=paper.get("median_rank_a2v", np.nan),
                             paper_median_rank_v2a=paper.get("median_rank_v2a", np.nan),
                             paper_pool=paper.get("pool", np.nan), tau=summary["tau"], epochs_run=summary["epochs_run"]))
    return pd.DataFrame(rows)


def mean_sd(values: pd.Series, digits: int = 1) -> str:
    """'mean ± sd' over seeds ('mean' alone for one seed, '-' for none)."""
    values = values.dropna()
    if values.empty:
        return "-"
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def table1(summaries: pd.DataFrame) -> pd.DataFrame:
    """Table 1: test median rank a→v and v→a (mean ± sd over seeds) beside the paper's.

    Ours are in the main form (gallery: every test segment; pool P, chance (P+1)/2); the paper's
    are in pools of 1000 (chance 500.5), computed with a defective metric (see PAPER.md).
    """
    rows = []
    for config, runs in summaries.groupby("config", sort=False):
        label, paper_a2v, paper_v2a = PAPER_TABLE1.get(config, (config, np.nan, np.nan))
        rows.append({
            "configuration": config,
            "paper: a→v / v→a (pool 1000, chance 500.5)": "-" if np.isnan(paper_a2v) else f"{paper_a2v:g} / {paper_v2a:g}",
            "ours: a→v": mean_sd(runs["median_rank_a2v"]),
            "ours: v→a": mean_sd(runs["median_rank_v2a"]),
            "pool P": f"{runs['pool'].mean():g}",
            "chance (P+1)/2": f"{runs['chance'].mean():g}",
            "R@10 a→v": mean_sd(runs["r10_a2v"], 2),
            "R@10 v→a": mean_sd(runs["r10_v2a"], 2),
            "final τ": mean_sd(runs["tau"], 3),
            "seeds": len(runs),
        })
    return pd.DataFrame(rows)


def write_table(table: pd.DataFrame, figures_dir: str | Path, name: str) -> Path:
    """Write `table` as `{name}.md` and `{name}.csv` into `figures_dir`; returns the .md path."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    for suffix, text in ((".md", table.to_markdown(index=False) + "\n"), (".csv", table.to_csv(index=False))):
        path = figures_dir / f"{name}{suffix}"
        with atomic_write(path) as tmp:
            tmp.write_text(text)
    return figures_dir / f"{name}.md"


def training_curves(runs_dir: str | Path, configs: list[str], seed: int) -> plt.Figure:
    """Per epoch, for each configuration (one seed): training loss, validation median ranks, τ.

    Median ranks are drawn as fractions of the validation pool, with chance at (P+1)/2P.
    """
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8), constrained_layout=True)
    for config in configs:
        m = pd.read_csv(run_dir(runs_dir, config, seed) / "metrics.csv")
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
