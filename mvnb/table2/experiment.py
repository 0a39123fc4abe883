"""Running Table 2's probes: per fold rotation, the reference rows, then every embedding × task for
each seed, on the CL embeddings of the contrastive runs of the same rotation and seed.

This module is the one among Table 2's that reads a contrastive run's files (`_learned_embeddings`).
Its scores and results feed `mvnb.table2.table2`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from mvnb.corpus import manifest_split
from mvnb.embeddings import cl_embeddings
from mvnb.probes.labels import ProbeTask
from mvnb.probes.probe import ProbeConfig, run_probes
from mvnb.probes.scores import run_references
from mvnb.runs import run_dir as contrastive_run_dir
from mvnb.table2.table import FROZEN_CONFIG


def embeddings_for_run(
    frozen: dict[str, np.ndarray],
    runs_dir: str | Path,
    cl_configs: list[str],
    rotation: int,
    seed: int,
    n_segments: int,
) -> tuple[dict[tuple[str, str], np.ndarray], list[str]]:
    """The embeddings that the probes of `rotation` and `seed` use, keyed by `(embedding, config)`, and
    notes on runs that are missing.

    frozen: `mvnb.embeddings.frozen_embeddings` (keyed with config `FROZEN_CONFIG`); CL
    embeddings come from the contrastive run of the same rotation and seed of each configuration
    (`_learned_embeddings`).
    """
    embeddings = {(name, FROZEN_CONFIG): x for name, x in frozen.items()}
    notes = []
    for config in cl_configs:
        try:
            for name, x in _learned_embeddings(runs_dir, config, rotation, seed, n_segments).items():
                embeddings[(name, config)] = x
        except (FileNotFoundError, ValueError) as err:
            notes.append(f"{config} rotation {rotation} seed {seed} skipped: {err}")
    return embeddings, notes


def _learned_embeddings(
    runs_dir: str | Path, config: str, rotation: int, seed: int, n_segments: int
) -> dict[str, np.ndarray]:
    """`CL_a`, `CL_v`, `CL_agg` `(n_segments, dim)` of the contrastive run of `config`, `rotation` and
    `seed`: the one place that reads a run's files here (`mvnb.embeddings.cl_embeddings`)."""
    return cl_embeddings(contrastive_run_dir(runs_dir, config, seed, rotation=rotation), n_segments)


def run_table2_probes(
    frozen: dict[str, np.ndarray],
    runs_dir: str | Path,
    cl_configs: list[str],
    rotations: list[int],
    seeds: list[int],
    tasks: dict[str, ProbeTask],
    manifest: pd.DataFrame,
    config: ProbeConfig = ProbeConfig(),  # noqa: B008 (a frozen dataclass)
    device: str | torch.device | None = None,
) -> tuple[pd.DataFrame, dict, list[str]]:
    """All of Table 2: per rotation of `rotations`, on its split of `manifest` (`corpus.manifest_split`),
    the reference rows, then every embedding × task for each seed, probe seed s on the
    contrastive runs of the same rotation and seed s.

    Returns what `run_probes` does, over every rotation, the references and all seeds, with the
    notes on missing runs and skipped probes.
    """
    tables, results, notes = [], {}, []
    video_ids = manifest["video_id"].to_numpy()
    for rotation, seed in tqdm([(r, s) for r in rotations for s in seeds], desc="probe runs", unit="run"):
        split = manifest_split(manifest, rotation)
        if seed == seeds[0]:
            table, found, failed = run_references(tasks, split, video_ids, rotation)
            tables.append(table)
            results |= found
            notes += failed
        embeddings, missing = embeddings_for_run(frozen, runs_dir, cl_configs, rotation, seed, len(manifest))
        table, found, failed = run_probes(
            embeddings, tasks, split, video_ids, seed, config, device, progress=False, rotation=rotation
        )
        tables.append(table)
        results |= found
        notes += missing + failed
    return pd.concat(tables, ignore_index=True), results, notes


def probes_overview(scores: pd.DataFrame) -> pd.DataFrame:
    """Per embedding, configuration and task of `run_table2_probes`' scores: mean epochs, test segments and
    videos, and labels absent from the test fold; an empty table when no probe ran."""
    columns = ["epochs", "n_test", "n_test_videos", "labels_absent"]
    if scores.empty:
        return pd.DataFrame(columns=columns)
    return scores.groupby(["embedding", "config", "task"], sort=False)[columns].mean()
