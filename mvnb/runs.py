"""A training run's directory: where it lives, the names of its files, and the one writer and reader
of each.

A contrastive run is named by its configuration, its fold rotation and its seed: run `s` of
`name` on rotation `r` lives in `{runs_dir}/train/{name}/rotation{r}/seed{s}/` (`run_dir`). `mvnb.train`
writes it, through the writers here:

- `config.json`: every resolved setting of the run: the configuration and its name, the fold
  rotation of the split, the seed, the feature shapes and batch sizes, and, when `train.train_run`
  made it, the segment store (`data_dir`, an absolute path), the profile if known, and the feature
  stores' fingerprints (`fingerprints`, the manifest fingerprint each store was built on);
- `metrics.csv`: per epoch, training and validation loss, skipped batches, validation median
  ranks a2v and v2a and R@1/5/10, τ, learning rate and seconds;
- `heads.pt`: the best heads and loss state (`torch.load(..., weights_only=True)`; see `train.load_heads`);
- `embeddings.npz`: view-0 embeddings of every segment, `audio`, `video` and `segment_index`;
- `test_ranks.csv`: per test query (a segment, by its feature row), its video, its pool and
  its rank and R@10 in each direction: what the intervals of the tables resample by video;
- `summary.json`: test-split retrieval (main form, and paper form where the split allows),
  whether each modality's test embeddings collapsed, how training went, the input
  standardisation, and the provenance of the features.

Every reader of a run goes through this module: `read_config`, `run_data_dir`, `read_history`,
`read_heads`, `read_embeddings`, `read_test_ranks`, `read_summary`, and across runs
`load_summaries` and `load_test_ranks`.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .io import atomic_write, save_torch, write_csv, write_json

CONFIG_FILE = "config.json"
HISTORY_FILE = "metrics.csv"
HEADS_FILE = "heads.pt"
EMBEDDINGS_FILE = "embeddings.npz"
TEST_RANKS_FILE = "test_ranks.csv"
SUMMARY_FILE = "summary.json"
RUN_FILES = (CONFIG_FILE, HISTORY_FILE, HEADS_FILE, EMBEDDINGS_FILE, TEST_RANKS_FILE, SUMMARY_FILE)
TEST_RANK_COLUMNS = ["row", "video_id", "pool", "rank_a2v", "rank_v2a", "r10_a2v", "r10_v2a"]


def run_dir(runs_dir: str | Path, config: str, seed: int, *, rotation: int = 0) -> Path:
    """The folder of the contrastive run of `config` on fold rotation `rotation` with `seed`.

    rotation is a keyword, so that no call can swap it with the seed; the gap study's runs,
    trained on a split of their own, sit at its default, 0.
    """
    return Path(runs_dir) / "train" / config / f"rotation{rotation}" / f"seed{seed}"


def clear(run: Path) -> None:
    """Create the folder `run` and delete its run files: a rerun that fails must not leave an older
    run's results behind."""
    run.mkdir(parents=True, exist_ok=True)
    for stale in RUN_FILES:
        (run / stale).unlink(missing_ok=True)


def _read_json(path: Path) -> dict:
    """A run's JSON file; FileNotFoundError when it is missing."""
    return json.loads(path.read_text(encoding="utf-8"))


def write_config(run: Path, config: dict) -> Path:
    """Write `config.json`: the run's resolved settings (see the module docstring)."""
    return write_json(run / CONFIG_FILE, config)


def read_config(run: str | Path) -> dict:
    """The run's `config.json`."""
    return _read_json(Path(run) / CONFIG_FILE)


def run_data_dir(run: str | Path) -> Path:
    """The segment store the run was trained on, as its `config.json` records it (`data_dir`).

    Raises ValueError naming the run, and asking for the store (`--data`), when it records none (a
    run of `train.train` called directly, or of a version before the record) or the store it
    records is not here.
    """
    path = Path(run) / CONFIG_FILE
    data_dir = read_config(run).get("data_dir") if path.is_file() else None
    if not data_dir:
        raise ValueError(
            f"the run {run} does not record its segment store (no data_dir in {path}); "
            f"pass it with --data DATA_DIR"
        )
    if not Path(data_dir).is_dir():
        raise ValueError(
            f"the run {run} was trained on the segment store {data_dir}, which is not here; "
            f"pass it with --data DATA_DIR"
        )
    return Path(data_dir)


def write_history(run: Path, history: list[dict]) -> Path:
    """Write `metrics.csv`: one row per epoch so far."""
    return write_csv(run / HISTORY_FILE, pd.DataFrame(history))


def read_history(run: str | Path) -> pd.DataFrame:
    """The run's `metrics.csv`: one row per epoch."""
    return pd.read_csv(Path(run) / HISTORY_FILE)


def save_heads(run: Path, state: dict) -> Path:
    """Write `heads.pt`: the heads' and loss's state dicts and what rebuilds them (`config`, `audio_dim`,
    `video_dim`)."""
    return save_torch(run / HEADS_FILE, state)


def read_heads(run: str | Path, device: str | torch.device = "cpu") -> dict:
    """The run's `heads.pt` as `save_heads` wrote it, tensors on `device`."""
    return torch.load(Path(run) / HEADS_FILE, map_location=device, weights_only=True)


def write_embeddings(
    run: Path,
    n_segments: int,
    audio: tuple[int, Iterable[np.ndarray]],
    video: tuple[int, Iterable[np.ndarray]],
) -> Path:
    """Write `embeddings.npz`: `audio` and `video`, float32 `(n_segments, dim)`, and `segment_index`
    `(n_segments,)` int64.

    audio, video: `(dim, blocks)`, the blocks `(rows, dim)` concatenating to the array; they are
    streamed into the archive, so memory does not grow with the corpus.
    """
    path = run / EMBEDDINGS_FILE
    with atomic_write(path) as tmp, zipfile.ZipFile(tmp, "w", allowZip64=True) as archive:
        for name, (dim, blocks) in (("audio", audio), ("video", video)):
            _write_npy_member(archive, name, (n_segments, dim), np.float32, blocks)
        index = [np.arange(n_segments, dtype=np.int64)]
        _write_npy_member(archive, "segment_index", (n_segments,), np.int64, index)
    return path


def _write_npy_member(archive: zipfile.ZipFile, name: str, shape: tuple, dtype, blocks) -> None:
    """One `.npy` member of an .npz, written from row blocks whose concatenation has `shape`."""
    with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
            "fortran_order": False,
            "shape": shape,
        }
        np.lib.format.write_array_header_2_0(member, header)
        for block in blocks:
            member.write(np.ascontiguousarray(block, dtype=dtype).tobytes())


def read_embeddings(run: str | Path, n_segments: int) -> tuple[np.ndarray, np.ndarray]:
    """The run's view-0 embeddings `(audio (n_segments, dim), video (n_segments, dim))`, in manifest order.

    Raises FileNotFoundError or ValueError with a one-line reason when the run is missing or
    does not cover the manifest's `n_segments` segments.
    """
    path = Path(run) / EMBEDDINGS_FILE
    if not path.exists():
        raise FileNotFoundError(f"no embeddings at {path}; run notebook 03 (contrastive training) first")
    with np.load(path) as archive:
        audio, video, index = archive["audio"], archive["video"], archive["segment_index"]
    if len(index) != n_segments or not np.array_equal(index, np.arange(n_segments)):
        raise ValueError(
            f"{path} holds {len(index)} segments, not the manifest's {n_segments} in order; retrain this run"
        )
    return audio, video


def write_test_ranks(run: Path, ranks: pd.DataFrame) -> Path:
    """Write `test_ranks.csv`: one row per test query, `TEST_RANK_COLUMNS`."""
    return write_csv(run / TEST_RANKS_FILE, ranks[TEST_RANK_COLUMNS])


def read_test_ranks(run: str | Path) -> pd.DataFrame:
    """The run's `test_ranks.csv` (`TEST_RANK_COLUMNS`, video ids as strings)."""
    return pd.read_csv(Path(run) / TEST_RANKS_FILE, dtype={"video_id": str})


def write_summary(run: Path, summary: dict) -> Path:
    """Write `summary.json`: the run's test retrieval, collapse, training and provenance."""
    return write_json(run / SUMMARY_FILE, summary)


def read_summary(run: str | Path) -> dict:
    """The run's `summary.json`."""
    return _read_json(Path(run) / SUMMARY_FILE)


def load_summaries(
    runs_dir: str | Path, configs: list[str], rotations: list[int], seeds: list[int]
) -> pd.DataFrame:
    """One row per (config, rotation, seed) run: test-split retrieval in the main form, collapse, τ, epochs.

    Columns: config, rotation, seed, input_norm, collapsed (either modality's test embeddings),
    collapsed_audio, collapsed_video, pool, chance, median_rank_a2v, median_rank_v2a, r10_a2v,
    r10_v2a, paper_median_rank_a2v, paper_median_rank_v2a, paper_pool (NaN where the split has
    too few videos for the paper's pools), tau, tau_init, learnable, epochs_run.
    """
    rows = []
    for config, rotation, seed in product(configs, rotations, seeds):
        folder = run_dir(runs_dir, config, seed, rotation=rotation)
        rows.append({"config": config, "rotation": rotation, "seed": seed, **_summary_row(folder)})
    return pd.DataFrame(rows)


def _summary_row(run: Path) -> dict:
    """`load_summaries`' columns after config, rotation and seed, for one run."""
    summary, settings = read_summary(run), read_config(run)["config"]
    main, paper = summary["test"]["main"], summary["test"]["paper"] or {}
    collapsed = summary["collapsed"]
    return dict(
        input_norm=summary["input_norm"],
        collapsed=collapsed["audio"] or collapsed["video"],
        collapsed_audio=collapsed["audio"],
        collapsed_video=collapsed["video"],
        pool=main["pool"],
        chance=main["chance"],
        median_rank_a2v=main["median_rank_a2v"],
        median_rank_v2a=main["median_rank_v2a"],
        r10_a2v=main["r10_a2v"],
        r10_v2a=main["r10_v2a"],
        paper_median_rank_a2v=paper.get("median_rank_a2v", np.nan),
        paper_median_rank_v2a=paper.get("median_rank_v2a", np.nan),
        paper_pool=paper.get("pool", np.nan),
        tau=summary["tau"],
        tau_init=settings["tau_init"],
        learnable=settings["learnable_temperature"],
        epochs_run=summary["epochs_run"],
    )


def load_test_ranks(
    runs_dir: str | Path, configs: list[str], rotations: list[int], seeds: list[int]
) -> pd.DataFrame:
    """Every test query of every (config, rotation, seed) run: config, rotation, seed and the columns of
    `test_ranks.csv`."""
    return pd.concat(
        [
            read_test_ranks(run_dir(runs_dir, c, s, rotation=r)).assign(config=c, rotation=r, seed=s)
            for c, r, s in product(configs, rotations, seeds)
        ],
        ignore_index=True,
    )
