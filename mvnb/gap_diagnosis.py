"""The gap study's diagnosis (notebook 06): which of the paper's choices decides whether contrastive
learning works? At one sweep point (`diagnosis_point`) the paper's baseline is trained in the 2x2x2 of
`DIAGNOSIS`, each cell scored by its true median rank and by the argsort-diagonal number the
authors' code printed (`metric_pitfall`), and drawn as bars (`diagnosis_figure`).

Two cells are configurations the sweep has already trained at that point, with the same seeds:
(sigmoid, τ = 1, raw) is paper_baseline and (sigmoid, τ = 1, standardised) is paper_std. Their
runs are read from the sweep's folders (`cell_folder`) rather than trained a second time.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import embeddings, train
from .gap import CONFIGS, SweepSettings, interval_row, point_name, sweep_split, train_point
from .metrics import argsort_diagonal_rank, median_rank
from .runs import read_config, read_summary, run_dir
from .segments import load_manifest

# The diagnosis: {sigmoid, none} x {tau = 1, learnable tau} x {raw, standardised inputs}, all in the
# paper's loss form (positive excluded), each cell the paper's baseline with these fields changed.
DIAGNOSIS = {
    (output, tau, inputs): {
        "output": "sigmoid" if output == "sigmoid" else "none",
        "learnable_temperature": tau == "learnable τ",
        "input_norm": "standard" if inputs == "standardised" else "none",
    }
    for output in ("sigmoid", "no sigmoid")
    for tau in ("τ = 1", "learnable τ")
    for inputs in ("raw", "standardised")
}


def diagnosis_point(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Where the diagnosis runs: the positive control (1, style 0), where only the music links picture and
    sound; in a sweep without it, its most coupled point (style 0 first)."""
    return (1.0, 0.0) if (1.0, 0.0) in points else max(points, key=lambda p: (p[0], -p[1]))


def diagnosis_name(cell: tuple[str, str, str]) -> str:
    """Folder name of a diagnosis cell, e.g. `sigmoid_tau1_raw`."""
    output, tau, inputs = cell
    return f"{output.replace(' ', '_')}_{'tau1' if tau == 'τ = 1' else 'learnable_tau'}_{inputs}"


def sweep_config(cell: tuple[str, str, str]) -> str | None:
    """The sweep configuration (`mvnb.gap.CONFIGS`) that a cell of `DIAGNOSIS` is, or None."""
    config = train.make_config("paper_baseline", DIAGNOSIS[cell])
    return next((name for name in CONFIGS if train.make_config(name) == config), None)


def cell_folder(runs: Path, point: tuple[float, float], cell: tuple[str, str, str], seed: int) -> Path:
    """The run folder of a cell and seed: the sweep's own run at `point` where the cell is a sweep
    configuration (`sweep_config`), else one under `runs/diagnosis`."""
    name = sweep_config(cell)
    if name is None:
        return run_dir(runs / "diagnosis", diagnosis_name(cell), seed)
    return run_dir(runs / point_name(*point), name, seed)


def cell_run(
    store: Path, audio_store: Path, folder: Path, cell: tuple[str, str, str], seed: int, s: SweepSettings
) -> dict:
    """The summary of a cell's run in `folder`: the sweep's finished run where the cell is a sweep
    configuration and that run was trained with these settings on this store's segments; else a new run."""
    name = sweep_config(cell)
    if name is None:
        return train_point(store, audio_store, folder, "paper_baseline", DIAGNOSIS[cell], seed, s)
    config = train.make_config(name, {"batch_size": s.batch_size, "max_epochs": s.max_epochs})
    if _trained(folder, config, store):
        return read_summary(folder)
    return train_point(store, audio_store, folder, name, {}, seed, s)


def _trained(folder: Path, config: train.TrainConfig, store: Path) -> bool:
    """Whether `folder` holds a finished run of `config` on `store`'s segments, as its config.json says."""
    if not (folder / "summary.json").is_file():
        return False
    recorded = read_config(folder)
    same_config = recorded["config"] == json.loads(json.dumps(dataclasses.asdict(config)))
    return same_config and recorded["n_segments"] == len(load_manifest(store))


def diagnosis_rows(
    store: Path,
    audio_store: Path,
    runs: Path,
    point: tuple[float, float],
    seeds: list[int],
    s: SweepSettings,
) -> pd.DataFrame:
    """The 2x2x2 at `point` (whose store is `store`): per cell and seed, median rank (mean of a→v and
    v→a) and the argsort-diagonal number, with the run's collapse mark and final τ."""
    rows = []
    manifest = load_manifest(store)
    test = sweep_split(manifest, s) == "test"
    for cell in DIAGNOSIS:
        for seed in seeds:
            folder = cell_folder(runs, point, cell, seed)
            summary = cell_run(store, audio_store, folder, cell, seed, s)
            main = summary["test"]["main"]
            cl = embeddings.cl_embeddings(folder, len(manifest))
            rows.append(
                dict(
                    output=cell[0],
                    tau=cell[1],
                    inputs=cell[2],
                    seed=seed,
                    collapsed=any(summary["collapsed"].values()),
                    pool=main["pool"],
                    final_tau=summary["tau"],
                    median_rank=(main["median_rank_a2v"] + main["median_rank_v2a"]) / 2,
                    argsort_diagonal=argsort_diagonal_rank(cl["CL_a"][test], cl["CL_v"][test]),
                    n_test=int(test.sum()),
                )
            )
    return pd.DataFrame(rows)


def diagnosis_summary(diagnosis: pd.DataFrame, runs: Path, point: tuple[float, float]) -> pd.DataFrame:
    """One row per cell of `diagnosis_rows` at `point`: median rank / pool with its interval, and the
    argsort-diagonal / pool."""
    out = []
    for (output, tau, inputs), group in diagnosis.groupby(["output", "tau", "inputs"], sort=False):
        folders = [cell_folder(runs, point, (output, tau, inputs), seed) for seed in group["seed"]]
        out.append(
            {
                "output": output,
                "tau": tau,
                "inputs": inputs,
                **interval_row(group, folders),
                "argsort_diagonal_pool": (group["argsort_diagonal"] / group["n_test"]).mean(),
                "final_tau": group["final_tau"].mean(),
            }
        )
    return pd.DataFrame(out)


def diagnosis_figure(summary: pd.DataFrame) -> plt.Figure:
    """The 2x2x2 as bars: median rank / pool with 95 % intervals per cell, raw beside standardised,
    the argsort-diagonal number as a cross, chance dotted."""
    fig, ax = plt.subplots(figsize=(8, 3.6), constrained_layout=True)
    cells = summary.drop_duplicates(["output", "tau"])[["output", "tau"]].to_numpy().tolist()
    for j, (inputs, colour) in enumerate((("raw", "tab:grey"), ("standardised", "tab:blue"))):
        rows = (
            summary[summary["inputs"] == inputs].set_index(["output", "tau"]).loc[[tuple(c) for c in cells]]
        )
        x = np.arange(len(cells)) + 0.2 * (2 * j - 1)
        height = rows["mr_pool"].fillna(0).to_numpy()
        err = np.abs(rows[["mr_pool_low", "mr_pool_high"]].to_numpy().T - height)
        ax.bar(x, height, 0.38, yerr=np.nan_to_num(err), capsize=3, color=colour, label=f"{inputs} inputs")
        ax.scatter(
            x,
            rows["argsort_diagonal_pool"],
            marker="x",
            color="k",
            zorder=3,
            label="argsort-diagonal (the authors' metric) / N" if j == 0 else None,
        )
        for xi, note in zip(x, rows["versus_chance"], strict=True):
            if note == "collapsed":
                ax.text(xi, 0.02, "collapsed", rotation=90, ha="center", va="bottom", fontsize=7)
    ax.axhline(summary["chance"].median(), color="k", ls=":", lw=1, label="chance")
    ax.set_xticks(range(len(cells)), [f"{o}\n{t}" for o, t in cells])
    ax.set(ylabel="test median rank / pool", ylim=(0, 0.7), title="which choice decides? (paper loss form)")
    ax.legend(fontsize=7, loc="upper right")
    return fig


def metric_pitfall(diagnosis: pd.DataFrame, seed: int = 0) -> str:
    """The argsort-diagonal number beside the true median rank: on perfect embeddings of the test
    set's size, and on the paper configuration (raw inputs) trained at the diagnosis point (Markdown)."""
    n = int(diagnosis["n_test"].iloc[0])
    perfect = np.random.default_rng(seed).normal(size=(n, 16))
    paper = diagnosis[
        (diagnosis["output"] == "sigmoid") & (diagnosis["tau"] == "τ = 1") & (diagnosis["inputs"] == "raw")
    ]
    return (
        f"- Perfect embeddings (audio = video), N = {n}: true median rank "
        f"**{median_rank(perfect, perfect):g}**, "
        f"argsort-diagonal **{argsort_diagonal_rank(perfect, perfect):g}** (N/2 = {n / 2:g}).\n"
        f"- The paper configuration at the diagnosis point: true median rank "
        f"**{paper['median_rank'].mean():.1f}**, "
        f"argsort-diagonal **{paper['argsort_diagonal'].mean():.1f}**. A number that reads about N/2 for any "
        f"embedding would have printed the paper's Table 1 whether or not its model had learned anything."
    )
