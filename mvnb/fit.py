"""The loop of one training run: batches, epochs with early stopping, the best heads' test
evaluation, and the run directory written through `mvnb.runs`.

`fit` takes the checked inputs of `train.train` (`Data`: the features and each split's rows).
View 0 of each segment is its deterministic evaluation view; views 1..V−1 are training
augmentations, one drawn at random per segment and epoch (with V = 1, view 0 is used). Batches
hold at most one segment per video; batches of fewer than 2 segments cannot be contrasted and
are skipped (and counted). Per epoch, retrieval is measured on view 0 of (at most
`val_rank_segments` segments of) the validation split, in the main form of `mvnb.metrics`.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import runs, standardise
from .heads import ProjectionHead, ProjectionHeads, pretrain_autoencoder
from .loss import ContrastiveLoss
from .metrics import (
    COLLAPSE_DISTANCE,
    RECALL_KS,
    main_form,
    main_form_queries,
    median_pair_distance,
    paper_form,
    summarise_queries,
)
from .projection import embed_modality, embed_segments, embedded_dim, heads_of, loss_of, project, to_tensor
from .samplers import OneSegmentPerVideoBatchSampler

if TYPE_CHECKING:
    from .train import TrainConfig

RANK_COLUMNS = [f"{m}_{d}" for m in ("median_rank", *(f"r{k}" for k in RECALL_KS)) for d in ("a2v", "v2a")]


@dataclass(frozen=True)
class Data:
    """A run's inputs: features `audio` `(n_segments, views, audio_dim)` and `video` `(n_segments, views,
    video_dim)` (arrays or memmaps, float16 or float32), `video_ids` `(n_segments,)`, and `rows`, the
    feature rows of the valid segments of each split (`{"train": (n_train,), "val": …, "test": …}`)."""

    audio: object
    video: object
    video_ids: np.ndarray
    rows: dict[str, np.ndarray]


def fit(
    data: Data,
    config: TrainConfig,
    seed: int,
    out_dir: Path,
    *,
    recorded: dict,
    provenance: dict | None,
    device: torch.device,
    progress: bool,
    started: float,
) -> dict:
    """Train the heads of `config` on `data` and write the run directory `out_dir`; returns the summary.

    recorded: what config.json records besides the run's shapes and batch sizes (`name`, `rotation`,
    and whatever the caller resolved, such as `data_dir`); seed: drives initialisation, dropout,
    batches and views; started: `time.time()` when the run began.
    """
    runs.clear(out_dir)
    torch.manual_seed(seed)
    heads = heads_of(config, data.audio.shape[2], data.video.shape[2]).to(device)
    if config.input_norm == "standard":
        for norm, features in zip(heads.input_norms(), (data.audio, data.video), strict=True):
            norm.set_stats(standardise.fit(features, data.rows["train"]))
    loss_fn = loss_of(config).to(device)
    samplers = {  # the training batches vary with the seed, the validation batches never
        s: OneSegmentPerVideoBatchSampler(data.video_ids[data.rows[s]], _batch_cap(config, data, s), s_seed)
        for s, s_seed in (("train", seed), ("val", 0))
    }
    rank_rows = data.rows["val"][_rank_subset(data.video_ids[data.rows["val"]], config.val_rank_segments)]
    runs.write_config(out_dir, _config_record(data, config, seed, recorded, samplers))
    view_rng = np.random.default_rng([seed, 1])
    if config.ae_init:
        _pretrain_heads(heads, data.audio, data.video, data.rows["train"], config, view_rng, device)
    name = recorded["name"]
    bar = tqdm(range(config.max_epochs), desc=f"train {name} seed {seed}", disable=not progress)
    history, best = _epochs(heads, loss_fn, data, config, samplers, rank_rows, view_rng, device, out_dir, bar)
    heads.load_state_dict(best["state"]["heads"])
    loss_fn.load_state_dict(best["state"]["loss"])
    test, distances = _test(heads, data, config, seed, device, out_dir)
    summary = {"name": name, "rotation": recorded["rotation"], "seed": seed, "device": str(device)}
    summary |= _summary(data, config, test, distances, history, best, loss_fn, started, provenance)
    runs.write_summary(out_dir, summary)
    return summary


def _config_record(data: Data, config: TrainConfig, seed: int, recorded: dict, samplers: dict) -> dict:
    """config.json's content: the run's name, rotation and seed, its configuration, the feature shapes
    and the batch sizes of the train and val samplers, then the caller's resolved settings."""
    return {
        "name": recorded["name"],
        "rotation": recorded["rotation"],
        "seed": seed,
        "config": dataclasses.asdict(config),
        "n_segments": data.audio.shape[0],
        "views": data.audio.shape[1],
        "audio_dim": data.audio.shape[2],
        "video_dim": data.video.shape[2],
        "batch_size_train": samplers["train"].batch_size,
        "batch_size_val": samplers["val"].batch_size,
        **recorded,
    }


def _epochs(heads, loss_fn, data, config, samplers, rank_rows, view_rng, device, out_dir, bar):
    """Epochs until early stopping, writing metrics.csv after each and heads.pt at each better
    validation loss; returns the history (one `_epoch` record per epoch) and the best epoch
    (`val_loss`, `epoch`, `state`)."""
    optimiser = torch.optim.Adam([*heads.parameters(), *loss_fn.parameters()], lr=config.lr, fused=True)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=config.lr_decay)
    history: list[dict] = []
    best = {"val_loss": float("inf"), "epoch": -1, "state": None}
    for epoch in bar:
        record = _epoch(
            epoch, heads, loss_fn, optimiser, scheduler, data, config, samplers, rank_rows, view_rng, device
        )
        history.append(record)
        runs.write_history(out_dir, history)
        bar.set_postfix(
            loss=f"{record['loss']:.3f}",
            val=f"{record['val_loss']:.3f}",
            mr=f"{record['val_median_rank_a2v']:.0f}/{record['val_pool']:.0f}",
        )
        if record["val_loss"] < best["val_loss"]:
            best = {"val_loss": record["val_loss"], "epoch": epoch, "state": _state(heads, loss_fn)}
            runs.save_heads(out_dir, best["state"] | _head_meta(config, data))
        elif epoch - best["epoch"] >= config.patience:
            break
    if best["state"] is None:
        raise RuntimeError(
            f"validation loss was never finite in {len(history)} epoch(s); see {out_dir / runs.HISTORY_FILE}"
        )
    return history, best


def _epoch(epoch, heads, loss_fn, optimiser, scheduler, data, config, samplers, rank_rows, view_rng, device):
    """One epoch: a pass over the training batches, the LR step, the validation loss and the
    validation ranks on view 0 of `rank_rows`; returns its record, a row of metrics.csv."""
    tic = time.time()
    samplers["train"].set_epoch(epoch)
    lr = optimiser.param_groups[0]["lr"]
    audio, video, rows, precision = data.audio, data.video, data.rows, config.precision
    train_loss, skipped = train_epoch(
        heads, loss_fn, optimiser, audio, video, rows["train"], samplers["train"], view_rng, device, precision
    )
    scheduler.step()
    val_loss, val_skipped = _val_loss(
        heads, loss_fn, audio, video, rows["val"], samplers["val"], device, precision
    )
    embedded = embed_segments(heads, audio, video, rank_rows, 0, device, precision)
    ranks = main_form(*embedded, data.video_ids[rank_rows])
    return {
        "epoch": epoch,
        "loss": train_loss,
        "val_loss": val_loss,
        "skipped_batches": skipped + val_skipped,
        "val_pool": ranks["pool"],
        **{f"val_{k}": ranks[k] for k in RANK_COLUMNS},
        "tau": loss_fn.temperature,
        "lr": lr,
        "seconds": time.time() - tic,
    }


def _test(heads: ProjectionHeads, data: Data, config: TrainConfig, seed: int, device, out_dir: Path):
    """Write embeddings.npz (view 0 of every segment) and test_ranks.csv of the best heads; returns the
    test retrieval (`main`, `paper`) and each modality's median pair distance of test embeddings."""
    members = [
        (embedded_dim(head, x), embed_modality(head, x, None, 0, device, config.precision))
        for head, x in ((heads.audio, data.audio), (heads.video, data.video))
    ]
    runs.write_embeddings(out_dir, data.audio.shape[0], *members)
    rows = data.rows["test"]
    test_audio, test_video = embed_segments(heads, data.audio, data.video, rows, 0, device, config.precision)
    test_ids = data.video_ids[rows]
    queries = main_form_queries(test_audio, test_video, test_ids)
    runs.write_test_ranks(out_dir, pd.DataFrame({"row": rows, "video_id": test_ids, **queries}))
    distances = {
        m: median_pair_distance(x) if len(x) > 1 else float("nan")
        for m, x in (("audio", test_audio), ("video", test_video))
    }
    test = {
        "main": summarise_queries(queries, test_ids),
        "paper": paper_form(test_audio, test_video, test_ids, seed),
    }
    return test, distances


def _summary(data, config, test, distances, history, best, loss_fn, started, provenance) -> dict:
    """summary.json's content after the run's name, rotation, seed and device (see `mvnb.runs`)."""
    rows, video_ids = data.rows, data.video_ids
    return {
        "input_norm": config.input_norm,
        "test": test,
        "collapsed": {m: bool(d < COLLAPSE_DISTANCE) for m, d in distances.items()},
        "median_pair_distance": distances,
        "epochs_run": len(history),
        "best_epoch": best["epoch"],
        "best_val_loss": best["val_loss"],
        "stopped_early": len(history) < config.max_epochs,
        "tau": loss_fn.temperature,
        "skipped_batches": int(sum(r["skipped_batches"] for r in history)),
        "n_segments": {s: len(r) for s, r in rows.items()},
        "n_invalid": int(data.audio.shape[0] - sum(map(len, rows.values()))),
        "n_videos": {s: len(np.unique(video_ids[r])) for s, r in rows.items()},
        "seconds": time.time() - started,
        "provenance": provenance or {},
    }


def _batch_cap(config: TrainConfig, data: Data, split: str) -> int:
    """The configured batch size, capped at the number of videos of `split` (no video twice in a batch)."""
    return min(config.batch_size, len(np.unique(data.video_ids[data.rows[split]])))


def _rank_subset(video_ids: np.ndarray, cap: int) -> np.ndarray:
    """Indices of whole videos, in a fixed random order, holding at most `cap` segments (all if they fit)."""
    if len(video_ids) <= cap:
        return np.arange(len(video_ids))
    videos, codes = np.unique(video_ids, return_inverse=True)
    order = np.random.default_rng(0).permutation(len(videos))
    sizes = np.bincount(codes.ravel())[order]
    keep = order[np.cumsum(sizes) <= cap]
    return np.flatnonzero(np.isin(codes.ravel(), keep))


def _random_views(rng: np.random.Generator, n: int, n_views: int) -> np.ndarray | int:
    """A training view in 1..n_views−1 for each of n segments; view 0 when it is the only one."""
    return rng.integers(1, n_views, size=n) if n_views > 1 else 0


def train_epoch(
    heads: ProjectionHeads,
    loss_fn: ContrastiveLoss,
    optimiser: torch.optim.Optimizer,
    audio,
    video,
    rows: np.ndarray,
    batches: Iterable[list[int]],
    rng: np.random.Generator,
    device: torch.device,
    precision: str = "fp32",
) -> tuple[float, int]:
    """One pass over the training batches; returns the mean loss and the number of skipped batches.

    rows: `(n_train,)` feature rows of the training segments; batches index into it (one
        epoch of a `OneSegmentPerVideoBatchSampler`);
    rng: draws each segment's training view; precision: "fp32" or "bf16" (see `project`).
    """
    heads.train()
    total, count, skipped = 0.0, 0, 0
    for batch in batches:
        if len(batch) < 2:
            skipped += 1
            continue
        idx = np.sort(rows[batch])
        views = _random_views(rng, len(idx), audio.shape[1])
        loss = loss_fn(
            *project(
                heads, to_tensor(audio, idx, views, device), to_tensor(video, idx, views, device), precision
            )
        )
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        loss_fn.clamp_()
        total, count = total + loss.item(), count + 1
    return total / max(count, 1), skipped


@torch.no_grad()
def _val_loss(heads, loss_fn, audio, video, rows, sampler, device, precision) -> tuple[float, int]:
    """Mean loss over the validation batches on view 0 (the same batches every epoch)."""
    heads.eval()
    losses, skipped = [], 0
    for batch in sampler:
        if len(batch) < 2:
            skipped += 1
            continue
        idx = np.sort(rows[batch])
        embedded = project(
            heads, to_tensor(audio, idx, 0, device), to_tensor(video, idx, 0, device), precision
        )
        losses.append(loss_fn(*embedded).item())
    return float(np.mean(losses)), skipped


def _pretrain_heads(heads: ProjectionHeads, audio, video, rows, config, rng, device) -> None:
    """Autoencoder initialisation of each head that is a `ProjectionHead`, on training views of the train
    split."""
    for head, features in ((heads.audio, audio), (heads.video, video)):
        if isinstance(head, ProjectionHead):

            def batches(epoch: int, features=features) -> Iterator[torch.Tensor]:
                order = rng.permutation(rows)
                for lo in range(0, len(order), config.batch_size):
                    idx = np.sort(order[lo : lo + config.batch_size])
                    yield to_tensor(features, idx, _random_views(rng, len(idx), features.shape[1]), device)

            pretrain_autoencoder(head, batches, config.ae_epochs, config.ae_lr)


def _state(heads: ProjectionHeads, loss_fn: ContrastiveLoss) -> dict:
    """A detached copy of the trainable state."""
    return {"heads": copy.deepcopy(heads.state_dict()), "loss": copy.deepcopy(loss_fn.state_dict())}


def _head_meta(config: TrainConfig, data: Data) -> dict:
    """What heads.pt needs besides the state to rebuild the heads: the configuration and feature widths."""
    return {
        "config": dataclasses.asdict(config),
        "audio_dim": int(data.audio.shape[2]),
        "video_dim": int(data.video.shape[2]),
    }
