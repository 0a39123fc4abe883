"""Contrastive training of the projection heads on cached features, and its run directory.

`train` takes feature arrays `(n_segments, views, dim)` (numpy or memmap, float16 or
float32), streams batches from them, and writes a run directory:

- `config.json`: the configuration, its name, the fold rotation of the split, the seed and the feature shapes;
- `metrics.csv`: per epoch, training and validation loss, skipped batches, validation median
  ranks a2v and v2a and R@1/5/10, τ, learning rate and seconds;
- `heads.pt`: the best heads and loss state (`torch.load(..., weights_only=True)`; see `load_heads`);
- `embeddings.npz`: view-0 embeddings of every segment, `audio`, `video` and `segment_index`;
- `test_ranks.csv`: per test query (a segment, by its feature row), its video, its pool and
  its rank and R@10 in each direction: what the intervals of the tables resample by video;
- `summary.json`: test-split retrieval (main form, and paper form where the split allows),
  whether each modality's test embeddings collapsed, how training went, the input
  standardisation, and the provenance of the features.

`input_norm="standard"` (not in the paper) standardises each input dimension with the mean and
sd of the training split over all its views (`mvnb.standardise`); the statistics live in the
heads' input layers, so they are saved in `heads.pt` and every later embedding applies them.

View 0 of each segment is its deterministic evaluation view; views 1..V−1 are training
augmentations, one drawn at random per segment and epoch (with V = 1, view 0 is used).
Optimisation as in the paper: Adam at 0.01, LR × 0.95 per epoch, early stopping once the
validation loss has not improved for `patience` epochs, keeping the best weights. Batches hold
at most one segment per video; batches of fewer than 2 segments cannot be contrasted and are
skipped (and counted). Per epoch, retrieval is measured on view 0 of (at most
`val_rank_segments` segments of) the validation split, in the main form of `mvnb.metrics`.
`precision="bf16"` runs the heads under bfloat16 autocast, about twice as fast on CPUs with
AVX512-BF16 (see benchmarks/bench_train.py); the loss and all outputs stay float32.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import dataclasses
import json
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from mvnb import standardise
from mvnb.corpus import SPLITS, manifest_split
from mvnb.device import autocast_for, default_device
from mvnb.features import load_feature_pair
from mvnb.heads import (
    INPUT_NORMS,
    OUTPUTS,
    ProjectionHead,
    ProjectionHeads,
    build_heads,
    pretrain_autoencoder,
)
from mvnb.io import atomic_write
from mvnb.loss import TAU_INIT, ContrastiveLoss
from mvnb.metrics import (
    COLLAPSE_DISTANCE,
    RECALL_KS,
    main_form,
    main_form_queries,
    median_pair_distance,
    paper_form,
    summarise_queries,
)
from mvnb.samplers import OneSegmentPerVideoBatchSampler

PRECISIONS = ("fp32", "bf16")
RANK_COLUMNS = [f"{m}_{d}" for m in ("median_rank", *(f"r{k}" for k in RECALL_KS)) for d in ("a2v", "v2a")]
EMBED_BATCH = 4096
SMALL_BATCH = 256
RUN_FILES = ("config.json", "metrics.csv", "heads.pt", "embeddings.npz", "test_ranks.csv", "summary.json")
TEST_RANK_COLUMNS = ["row", "video_id", "pool", "rank_a2v", "rank_v2a", "r10_a2v", "r10_v2a"]
# Videos a run needs in each split: two to contrast (training, early stopping), one test pool.
MIN_SPLIT_VIDEOS = {"train": 2, "val": 2, "test": 1}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run besides data and seed; defaults are the paper's baseline."""

    hidden: tuple[int, ...] = (512,)  # widths of the hidden layers of each head
    embedding_dim: int = 256
    dropout: float = 0.3
    output: str = "sigmoid"  # output activation of each head: "sigmoid" or "none"
    single_head: bool = False  # video head to the audio feature dimension, no audio head
    ae_init: bool = False  # initialise each head from an autoencoder on its features
    ae_epochs: int = 10
    ae_lr: float = 1e-3
    temperature: float = 1.0  # fixed τ, unless learnable_temperature
    learnable_temperature: bool = False  # log-parameterised τ, starting at tau_init, clamped
    tau_init: float = TAU_INIT  # the learnable τ's start (CLIP's 0.07); unused when τ is fixed
    exclude_positive: bool = True  # the paper's Eq. 3-5; False is the CLIP/InfoNCE form
    input_norm: str = "none"  # "none": raw features, as the paper; "standard": training mean and sd
    batch_size: int = 1000
    lr: float = 0.01
    lr_decay: float = 0.95  # exponential decay per epoch
    patience: int = 3  # epochs without a better validation loss before stopping
    max_epochs: int = 100
    val_rank_segments: int = 5000  # cap on the validation gallery for the per-epoch ranks
    precision: str = "fp32"  # "bf16": the heads under bfloat16 autocast (the loss stays fp32)
    # torch threads on CPU; 0: one thread for batches under SMALL_BATCH rows, where a second one
    # gains little and, on shared cores, threads waiting on each other cost many times the work
    # (18x measured here on the quick profile), else torch's default (all cores)
    cpu_threads: int = 0

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, not {self.output!r}")
        if self.input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {', '.join(INPUT_NORMS)}, not {self.input_norm!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")


# Experiment 1 of the paper (raw inputs, as it has them), then the choices it did not vary.
# `corrected` is every correction together: no sigmoid, learnable τ, the CLIP form and
# standardised inputs.
CONFIGS: dict[str, dict] = {
    "paper_baseline": {},
    "emb512": {"embedding_dim": 512},
    "four_layers": {"hidden": (512, 512, 512)},
    "single_head": {"single_head": True},
    "tau_0.3": {"temperature": 0.3},
    "ae_init": {"ae_init": True},
    "no_sigmoid": {"output": "none"},
    "learnable_tau": {"learnable_temperature": True},
    "paper_std": {"input_norm": "standard"},
    "corrected": {
        "output": "none",
        "learnable_temperature": True,
        "exclude_positive": False,
        "input_norm": "standard",
    },
}

# Table 1 of the paper: label and test median rank a→v, v→a in pools of 1000 (chance 500.5).
PAPER_TABLE1: dict[str, tuple[str, float, float]] = {
    "paper_baseline": ("CL baseline (hidden 512, embedding 256, τ = 1)", 507, 502),
    "emb512": ("embedding size 512", 494, 498),
    "four_layers": ("four projection layers", 503, 501),
    "single_head": ("single projection head (video → musicnn dimension)", 499, 497),
    "tau_0.3": ("τ = 0.3", 497, 503),
    "ae_init": ("autoencoder-initialised heads", 501, 500),
}


def make_config(name: str, overrides: dict | list[str] | None = None) -> TrainConfig:
    """The named configuration of `CONFIGS` with `overrides` applied.

    overrides: `{"lr": 0.001}` or `["lr=0.001", "hidden=512,512"]`; values are coerced to the
        field's type (tuples from `512,512`, booleans from true/false/1/0).
    """
    if name not in CONFIGS:
        raise KeyError(f"unknown configuration {name!r}; choose one of {', '.join(CONFIGS)}")
    pairs = overrides if isinstance(overrides, dict) else dict(_split_pair(p) for p in overrides or [])
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    unknown = set(pairs) - set(fields)
    if unknown:
        raise KeyError(
            f"unknown training parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(fields)}"
        )
    values = {**CONFIGS[name], **{k: _coerce(fields[k], v) for k, v in pairs.items()}}
    return TrainConfig(**values)


def _split_pair(pair: str) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if not sep:
        raise ValueError(f"an override is key=value, not {pair!r}")
    return key.strip(), value.strip()


def _coerce(field: dataclasses.Field, value):
    """`value` (often a string from the command line) as the type of `field`'s default."""
    default = field.default
    if isinstance(value, str) and not isinstance(default, str):
        if isinstance(default, bool):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"{field.name} takes true or false, not {value!r}")
            return value.lower() in ("true", "1")
        try:
            value = ast.literal_eval(value) if value else ()
        except (ValueError, SyntaxError):
            raise ValueError(
                f"{field.name} takes a number{'s' * isinstance(default, tuple)}, not {value!r}"
            ) from None
    if isinstance(default, tuple):
        return tuple(int(v) for v in (value if isinstance(value, (tuple, list)) else (value,)))
    return type(default)(value)


def train(
    audio,
    video,
    video_ids,
    split,
    config: TrainConfig,
    seed: int,
    out_dir: str | Path,
    *,
    name: str = "custom",
    rotation: int | None = None,
    provenance: dict | None = None,
    valid: np.ndarray | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> dict:
    """Train both heads of `config` and write the run directory `out_dir`; returns the summary.

    audio: `(n_segments, views, audio_dim)`; video: `(n_segments, views, video_dim)`, arrays or
        memmaps, float16 or float32; batches are read from them, never the whole array.
    video_ids, split: `(n_segments,)`; split holds "train", "val" and "test".
    seed: drives initialisation, dropout, batches and views.
    rotation: the fold rotation that `split` is (`mvnb.corpus.rotation_split`), recorded in
        config.json and summary.json; None for a split of one's own.
    provenance: metadata of the features (encoder weights and the like), copied to the summary.
    valid: `(n_segments,)` bool, False for segments whose features failed; they are left out of
        training and evaluation (their rows in embeddings.npz are whatever the heads make of them).
    """
    device = torch.device(device) if device else default_device()
    with torch_threads(_cpu_threads(config) if device.type == "cpu" else None):
        return _train(
            audio,
            video,
            video_ids,
            split,
            config,
            seed,
            Path(out_dir),
            name,
            rotation,
            provenance,
            valid,
            device,
            progress,
        )


def _cpu_threads(config: TrainConfig) -> int | None:
    """Torch threads for this configuration on CPU (None: torch's default)."""
    if config.cpu_threads:
        return config.cpu_threads
    return 1 if config.batch_size < SMALL_BATCH else None


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with `n` torch intra-op threads (None: unchanged), restoring the previous number after.

    Small batches (a probe's few hundred rows, a quick-profile training batch) gain little from a
    second thread, and where cores are shared, threads waiting on each other cost several times
    the work (`benchmarks/bench_probes.py` measures both). Training and the probes use this.
    """
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(
    audio,
    video,
    video_ids,
    split,
    config: TrainConfig,
    seed: int,
    out_dir: Path,
    name: str,
    rotation: int | None,
    provenance: dict | None,
    valid: np.ndarray | None,
    device: torch.device,
    progress: bool,
) -> dict:
    """`train`, with the device chosen and the threads set."""
    started = time.time()
    video_ids, split = np.asarray(video_ids), np.asarray(split)
    rows = _split_rows(audio, video, video_ids, split, valid)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in RUN_FILES:  # a rerun that fails must not leave an older run's results behind
        (out_dir / stale).unlink(missing_ok=True)
    torch.manual_seed(seed)
    heads = _build(config, audio.shape[2], video.shape[2]).to(device)
    if config.input_norm == "standard":
        for norm, features in zip(heads.input_norms(), (audio, video), strict=True):
            norm.set_stats(standardise.fit(features, rows["train"]))
    loss_fn = _loss(config).to(device)
    train_sampler = OneSegmentPerVideoBatchSampler(
        video_ids[rows["train"]], _batch_cap(config, video_ids[rows["train"]]), seed
    )
    val_sampler = OneSegmentPerVideoBatchSampler(
        video_ids[rows["val"]], _batch_cap(config, video_ids[rows["val"]]), seed=0
    )
    rank_rows = rows["val"][_rank_subset(video_ids[rows["val"]], config.val_rank_segments)]
    _write_json(
        out_dir / "config.json",
        {
            "name": name,
            "rotation": rotation,
            "seed": seed,
            "config": dataclasses.asdict(config),
            "n_segments": len(split),
            "views": audio.shape[1],
            "audio_dim": audio.shape[2],
            "video_dim": video.shape[2],
            "batch_size_train": train_sampler.batch_size,
            "batch_size_val": val_sampler.batch_size,
        },
    )
    view_rng = np.random.default_rng([seed, 1])
    if config.ae_init:
        _pretrain_heads(heads, audio, video, rows["train"], config, view_rng, device)
    optimiser = torch.optim.Adam([*heads.parameters(), *loss_fn.parameters()], lr=config.lr, fused=True)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=config.lr_decay)

    history: list[dict] = []
    best = {"val_loss": float("inf"), "epoch": -1, "state": None}
    bar = tqdm(range(config.max_epochs), desc=f"train {name} seed {seed}", disable=not progress)
    for epoch in bar:
        tic = time.time()
        train_sampler.set_epoch(epoch)
        lr = optimiser.param_groups[0]["lr"]
        train_loss, skipped = train_epoch(
            heads,
            loss_fn,
            optimiser,
            audio,
            video,
            rows["train"],
            train_sampler,
            view_rng,
            device,
            config.precision,
        )
        scheduler.step()
        val_loss, val_skipped = _val_loss(
            heads, loss_fn, audio, video, rows["val"], val_sampler, device, config.precision
        )
        ranks = main_form(
            *embed_segments(heads, audio, video, rank_rows, 0, device, config.precision), video_ids[rank_rows]
        )
        record = {
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
        history.append(record)
        _write_csv(out_dir / "metrics.csv", pd.DataFrame(history))
        bar.set_postfix(
            loss=f"{train_loss:.3f}",
            val=f"{val_loss:.3f}",
            mr=f"{ranks['median_rank_a2v']:.0f}/{ranks['pool']:.0f}",
        )
        if val_loss < best["val_loss"]:
            best = {"val_loss": val_loss, "epoch": epoch, "state": _state(heads, loss_fn)}
            _save_torch(out_dir / "heads.pt", best["state"] | _head_meta(config, audio, video))
        elif epoch - best["epoch"] >= config.patience:
            break
    if best["state"] is None:
        raise RuntimeError(
            f"validation loss was never finite in {len(history)} epoch(s); see {out_dir / 'metrics.csv'}"
        )
    heads.load_state_dict(best["state"]["heads"])
    loss_fn.load_state_dict(best["state"]["loss"])

    write_embeddings(out_dir / "embeddings.npz", heads, audio, video, device, config.precision)
    test_audio, test_video = embed_segments(heads, audio, video, rows["test"], 0, device, config.precision)
    test_ids = video_ids[rows["test"]]
    queries = main_form_queries(test_audio, test_video, test_ids)
    _write_csv(
        out_dir / "test_ranks.csv",
        pd.DataFrame({"row": rows["test"], "video_id": test_ids, **queries})[TEST_RANK_COLUMNS],
    )
    distances = {
        m: median_pair_distance(x) if len(x) > 1 else float("nan")
        for m, x in (("audio", test_audio), ("video", test_video))
    }
    summary = {
        "name": name,
        "rotation": rotation,
        "seed": seed,
        "device": str(device),
        "input_norm": config.input_norm,
        "test": {
            "main": summarise_queries(queries, test_ids),
            "paper": paper_form(test_audio, test_video, test_ids, seed),
        },
        "collapsed": {m: bool(d < COLLAPSE_DISTANCE) for m, d in distances.items()},
        "median_pair_distance": distances,
        "epochs_run": len(history),
        "best_epoch": best["epoch"],
        "best_val_loss": best["val_loss"],
        "stopped_early": len(history) < config.max_epochs,
        "tau": loss_fn.temperature,
        "skipped_batches": int(sum(r["skipped_batches"] for r in history)),
        "n_segments": {s: len(r) for s, r in rows.items()},
        "n_invalid": int(len(split) - sum(map(len, rows.values()))),
        "n_videos": {s: len(np.unique(video_ids[r])) for s, r in rows.items()},
        "seconds": time.time() - started,
        "provenance": provenance or {},
    }
    _write_json(out_dir / "summary.json", summary)
    return summary


def _split_rows(
    audio, video, video_ids: np.ndarray, split: np.ndarray, valid: np.ndarray | None
) -> dict[str, np.ndarray]:
    """Row indices of the valid segments of each split, after checking that the inputs fit together."""
    if audio.ndim != 3 or video.ndim != 3 or audio.shape[:2] != video.shape[:2]:
        raise ValueError(
            f"need audio and video features of shape (segments, views, dim) with equal segments and "
            f"views; got {audio.shape} and {video.shape}"
        )
    if not len(video_ids) == len(split) == audio.shape[0]:
        raise ValueError(
            f"need one video id and one split per segment: {len(video_ids)} ids, {len(split)} splits, "
            f"{audio.shape[0]} segments"
        )
    in_split = {s: split == s for s in SPLITS}
    known = in_split["train"] | in_split["val"] | in_split["test"]
    if not known.all():
        raise ValueError(
            f"unknown split name(s) {sorted(set(np.unique(split[~known])))}; splits are {', '.join(SPLITS)}"
        )
    valid = np.ones(len(split), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if valid.shape != split.shape:
        raise ValueError(f"need one valid flag per segment: {valid.shape[0]} flags, {len(split)} segments")
    index_type = np.int32 if len(split) < 2**31 else np.int64
    rows = {s: np.flatnonzero(in_split[s] & valid).astype(index_type) for s in SPLITS}
    shortfall = split_shortfall({s: len(np.unique(video_ids[rows[s]])) for s in SPLITS})
    if shortfall:
        raise ValueError(f"{shortfall} (use a bigger corpus)")
    return rows


def split_shortfall(counts: dict[str, int]) -> str | None:
    """Why videos split as `counts` (`{"train": n, "val": n, "test": n}`) are too few to train
    on, in one line naming the counts and `MIN_SPLIT_VIDEOS`; None when they are enough."""
    if all(counts[s] >= need for s, need in MIN_SPLIT_VIDEOS.items()):
        return None
    total = sum(counts.values())
    return (
        f"{total} video{'' if total == 1 else 's'}: the split gives {counts['train']} training, "
        f"{counts['val']} "
        f"validation and {counts['test']} test video{'' if counts['test'] == 1 else 's'}; training needs "
        f"≥ {MIN_SPLIT_VIDEOS['train']} training, ≥ {MIN_SPLIT_VIDEOS['val']} validation and "
        f"≥ {MIN_SPLIT_VIDEOS['test']} test video"
    )


def _batch_cap(config: TrainConfig, video_ids: np.ndarray) -> int:
    """The configured batch size, capped at the number of videos (no video twice in a batch)."""
    return min(config.batch_size, len(np.unique(video_ids)))


def _rank_subset(video_ids: np.ndarray, cap: int) -> np.ndarray:
    """Indices of whole videos, in a fixed random order, holding at most `cap` segments (all if they fit)."""
    if len(video_ids) <= cap:
        return np.arange(len(video_ids))
    videos, codes = np.unique(video_ids, return_inverse=True)
    order = np.random.default_rng(0).permutation(len(videos))
    sizes = np.bincount(codes.ravel())[order]
    keep = order[np.cumsum(sizes) <= cap]
    return np.flatnonzero(np.isin(codes.ravel(), keep))


def _to_tensor(features, rows: np.ndarray, views: np.ndarray | int, device: torch.device) -> torch.Tensor:
    """`features[rows, views]` as float32 `(len(rows), dim)` on `device`; reads only those rows."""
    return torch.from_numpy(np.asarray(features[rows, views], dtype=np.float32)).to(device)


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
                heads, _to_tensor(audio, idx, views, device), _to_tensor(video, idx, views, device), precision
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
        losses.append(
            loss_fn(
                *project(
                    heads, _to_tensor(audio, idx, 0, device), _to_tensor(video, idx, 0, device), precision
                )
            ).item()
        )
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
                    yield _to_tensor(features, idx, _random_views(rng, len(idx), features.shape[1]), device)

            pretrain_autoencoder(head, batches, config.ae_epochs, config.ae_lr)


def project(
    heads: ProjectionHeads, audio: torch.Tensor, video: torch.Tensor, precision: str = "fp32"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both heads on `(batch, dim)` features; with "bf16", under bfloat16 autocast, returned as float32."""
    with autocast_for(precision, audio.device):
        embedded = heads(audio, video)
    return embedded[0].float(), embedded[1].float()


@torch.no_grad()
def embed_modality(
    head: torch.nn.Module,
    features,
    rows: np.ndarray | None = None,
    view: int = 0,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    batch_size: int = EMBED_BATCH,
) -> Iterator[np.ndarray]:
    """Embeddings of `features[rows, view]` by `head` in eval mode, yielded as float32 `(≤ batch_size, dim)`
    blocks.

    rows: segment indices, all segments when None.
    """
    head.eval()
    device = torch.device(device)
    rows = np.arange(features.shape[0]) if rows is None else rows
    for lo in range(0, len(rows), batch_size):
        with autocast_for(precision, device):
            embedded = head(_to_tensor(features, rows[lo : lo + batch_size], view, device))
        yield embedded.float().cpu().numpy()


def embed_segments(
    heads: ProjectionHeads,
    audio,
    video,
    rows: np.ndarray | None = None,
    view: int = 0,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
) -> tuple[np.ndarray, np.ndarray]:
    """Audio and video embeddings `(len(rows), dim)` of the chosen segments on one view."""
    return tuple(
        np.concatenate(list(embed_modality(head, features, rows, view, device, precision)))
        for head, features in ((heads.audio, audio), (heads.video, video))
    )


def write_embeddings(
    path: Path,
    heads: ProjectionHeads,
    audio,
    video,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
) -> Path:
    """Write view-0 embeddings of every segment to an .npz (`audio`, `video`, `segment_index`), block by
    block.

    The arrays are streamed into the archive, so memory does not grow with the corpus.
    """
    n = audio.shape[0]
    with atomic_write(path) as tmp, zipfile.ZipFile(tmp, "w", allowZip64=True) as archive:
        for name, head, features in (("audio", heads.audio, audio), ("video", heads.video, video)):
            dim = head.out_dim if isinstance(head, ProjectionHead) else features.shape[2]
            _write_npy_member(
                archive,
                name,
                (n, dim),
                np.float32,
                embed_modality(head, features, None, 0, device, precision),
            )
        _write_npy_member(archive, "segment_index", (n,), np.int64, [np.arange(n, dtype=np.int64)])
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


def load_heads(
    run_dir: str | Path, device: str | torch.device = "cpu"
) -> tuple[ProjectionHeads, ContrastiveLoss, TrainConfig]:
    """The trained heads (eval mode), loss module and configuration of a run directory."""
    saved = torch.load(Path(run_dir) / "heads.pt", map_location=device, weights_only=True)
    config = TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved["config"].items()})
    heads = _build(config, saved["audio_dim"], saved["video_dim"])
    heads.load_state_dict(saved["heads"])
    loss_fn = _loss(config)
    loss_fn.load_state_dict(saved["loss"])
    return heads.to(device).eval(), loss_fn.to(device), config


def _build(config: TrainConfig, audio_dim: int, video_dim: int) -> ProjectionHeads:
    """The (untrained) heads of `config` for features of these dimensions."""
    return build_heads(
        audio_dim,
        video_dim,
        config.hidden,
        config.embedding_dim,
        config.dropout,
        config.output,
        config.single_head,
        config.input_norm,
    )


def _loss(config: TrainConfig) -> ContrastiveLoss:
    """The loss module of `config`, τ at its start."""
    return ContrastiveLoss(
        config.temperature, config.learnable_temperature, config.exclude_positive, config.tau_init
    )


def _state(heads: ProjectionHeads, loss_fn: ContrastiveLoss) -> dict:
    """A detached copy of the trainable state."""
    return {"heads": copy.deepcopy(heads.state_dict()), "loss": copy.deepcopy(loss_fn.state_dict())}


def _head_meta(config: TrainConfig, audio, video) -> dict:
    return {
        "config": dataclasses.asdict(config),
        "audio_dim": int(audio.shape[2]),
        "video_dim": int(video.shape[2]),
    }


def _write_json(path: Path, obj: dict) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (Path, torch.device)):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def _save_torch(path: Path, obj: dict) -> None:
    with atomic_write(path) as tmp:
        torch.save(obj, tmp)


def _write_csv(path: Path, table: pd.DataFrame) -> None:
    with atomic_write(path) as tmp:
        table.to_csv(tmp, index=False)


def train_run(
    data_dir: str | Path,
    config_name: str,
    seed: int,
    overrides: dict | list[str] | None,
    out_dir: str | Path,
    progress: bool = True,
    rotation: int = 0,
) -> dict:
    """Train configuration `config_name` on the feature store of `data_dir` (the preprocessed
    store DATA_DIR), on fold rotation `rotation` of the corpus's split (`mvnb.corpus.manifest_split`;
    0 is the manifest's 80/10/10); failed segments are left out. Returns the summary."""
    config = make_config(config_name, overrides)
    manifest, audio, video, audio_meta, video_meta = load_feature_pair(data_dir)
    split = manifest_split(manifest, rotation)
    provenance = {
        m: {k: v for k, v in meta.items() if k != "valid"}
        for m, meta in (("audio", audio_meta), ("video", video_meta))
    }
    return train(
        audio,
        video,
        manifest["video_id"].to_numpy(),
        split,
        config,
        seed,
        out_dir,
        name=config_name,
        rotation=rotation,
        provenance=provenance,
        valid=audio_meta["valid"] & video_meta["valid"],
        progress=progress,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m mvnb train`."""
    parser.add_argument(
        "--data", required=True, metavar="DATA_DIR", help="the preprocessed store, with features/"
    )
    parser.add_argument(
        "--config", default="paper_baseline", choices=list(CONFIGS), help="named configuration"
    )
    parser.add_argument(
        "--rotation",
        type=int,
        default=0,
        help="fold rotation of the split: r tests fold (9 - r) mod 10, validates on (8 - r) mod 10 "
        "(default 0: 80/10/10)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="drives initialisation, dropout, batches and views"
    )
    parser.add_argument(
        "-p",
        dest="params",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a training parameter (repeatable): "
        + ", ".join(f.name for f in dataclasses.fields(TrainConfig)),
    )
    parser.add_argument("--out", required=True, help="run directory to write")


def run(args: argparse.Namespace) -> int:
    """Train one run and print its test median ranks."""
    try:
        summary = train_run(args.data, args.config, args.seed, args.params, args.out, rotation=args.rotation)
    except (KeyError, ValueError, FileNotFoundError) as err:
        raise SystemExit(f"train: {err.args[0] if err.args else err}") from None
    main = summary["test"]["main"]
    print(
        f"train: {args.config} rotation {args.rotation} seed {args.seed}: test median rank a2v "
        f"{main['median_rank_a2v']:g}, "
        f"v2a {main['median_rank_v2a']:g} in pools of {main['pool']:g} (chance {main['chance']:g}); "
        f"{summary['epochs_run']} epochs, wrote {args.out}"
    )
    return 0
