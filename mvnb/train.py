"""Contrastive training of the projection heads on cached features: the configurations, a run's
inputs checked and split, and the `python -m mvnb train` command.

`train` takes feature arrays `(n_segments, views, dim)` (numpy or memmap, float16 or
float32), checks them against the split, and runs `mvnb.fit`, which streams batches from them and
writes the run directory (`mvnb.runs` names its files and reads them back). `train_run` does the
same for a segment store's features and records the store, the profile and the feature stores'
fingerprints in the run's config.json.

`input_norm="standard"` (not in the paper) standardises each input dimension with the mean and
sd of the training split over all its views (`mvnb.standardise`); the statistics live in the
heads' input layers, so they are saved in `heads.pt` and every later embedding applies them.

Optimisation as in the paper: Adam at 0.01, LR × 0.95 per epoch, early stopping once the
validation loss has not improved for `patience` epochs, keeping the best weights.
`precision="bf16"` runs the heads under bfloat16 autocast, about twice as fast on CPUs with
AVX512-BF16 (see benchmarks/bench_train.py); the loss and all outputs stay float32.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import runs
from .config import split_override
from .corpus import manifest_split
from .device import default_device, torch_threads
from .features import load_feature_pair
from .fit import Data, fit
from .heads import INPUT_NORMS, OUTPUTS, ProjectionHeads
from .loss import TAU_INIT, ContrastiveLoss
from .projection import heads_of, loss_of

SPLITS = ("train", "val", "test")
TRAIN_PRECISIONS = ("fp32", "bf16")
SMALL_BATCH = 256
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
    # torch threads on CPU; 0: one thread for batches under SMALL_BATCH rows (why: see
    # `mvnb.device.torch_threads`), else torch's default (all cores)
    cpu_threads: int = 0

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, not {self.output!r}")
        if self.input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {', '.join(INPUT_NORMS)}, not {self.input_norm!r}")
        if self.precision not in TRAIN_PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(TRAIN_PRECISIONS)}, not {self.precision!r}"
            )


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


def make_config(name: str, overrides: dict | list[str] | None = None) -> TrainConfig:
    """The named configuration of `CONFIGS` with `overrides` applied.

    overrides: `{"lr": 0.001}` or `["lr=0.001", "hidden=512,512"]`; values are coerced to the
        field's type (tuples from `512,512`, booleans from true/false/1/0).
    """
    if name not in CONFIGS:
        raise KeyError(f"unknown configuration {name!r}; choose one of {', '.join(CONFIGS)}")
    pairs = overrides if isinstance(overrides, dict) else dict(split_override(p) for p in overrides or [])
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    unknown = set(pairs) - set(fields)
    if unknown:
        raise KeyError(
            f"unknown training parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(fields)}"
        )
    values = {**CONFIGS[name], **{k: _coerce(fields[k], v) for k, v in pairs.items()}}
    return TrainConfig(**values)


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
    settings: dict | None = None,
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
    settings: further resolved settings to record in config.json (`train_run`: the segment store,
        the profile, the feature stores' fingerprints).
    """
    device = torch.device(device) if device else default_device()
    with torch_threads(_cpu_threads(config) if device.type == "cpu" else None):
        started = time.time()
        video_ids, split = np.asarray(video_ids), np.asarray(split)
        data = Data(audio, video, video_ids, _split_rows(audio, video, video_ids, split, valid))
        recorded = {"name": name, "rotation": rotation, **(settings or {})}
        return fit(
            data,
            config,
            seed,
            Path(out_dir),
            recorded=recorded,
            provenance=provenance,
            device=device,
            progress=progress,
            started=started,
        )


def _cpu_threads(config: TrainConfig) -> int | None:
    """Torch threads for this configuration on CPU (None: torch's default)."""
    if config.cpu_threads:
        return config.cpu_threads
    return 1 if config.batch_size < SMALL_BATCH else None


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


def load_heads(
    run_dir: str | Path, device: str | torch.device = "cpu"
) -> tuple[ProjectionHeads, ContrastiveLoss, TrainConfig]:
    """The trained heads (eval mode), loss module and configuration of a run directory."""
    saved = runs.read_heads(run_dir, device)
    config = TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved["config"].items()})
    heads = heads_of(config, saved["audio_dim"], saved["video_dim"])
    heads.load_state_dict(saved["heads"])
    loss_fn = loss_of(config)
    loss_fn.load_state_dict(saved["loss"])
    return heads.to(device).eval(), loss_fn.to(device), config


def train_run(
    data_dir: str | Path,
    config_name: str,
    seed: int,
    overrides: dict | list[str] | None,
    out_dir: str | Path,
    progress: bool = True,
    rotation: int = 0,
    profile: str | None = None,
) -> dict:
    """Train configuration `config_name` on the feature store of `data_dir` (the preprocessed
    store DATA_DIR), on fold rotation `rotation` of the corpus's split (`mvnb.corpus.manifest_split`;
    0 is the manifest's 80/10/10); failed segments are left out. Returns the summary.

    config.json records, besides the run's own settings, the store (`data_dir`, resolved to an
    absolute path), `profile` (the report profile, when the caller knows it) and the feature
    stores' `fingerprints` (the manifest fingerprint each was built on).
    """
    config = make_config(config_name, overrides)
    manifest, audio, video, audio_meta, video_meta = load_feature_pair(data_dir)
    split = manifest_split(manifest, rotation)
    metas = {"audio": audio_meta, "video": video_meta}
    provenance = {m: {k: v for k, v in meta.items() if k != "valid"} for m, meta in metas.items()}
    settings = {
        "data_dir": str(Path(data_dir).resolve()),
        "profile": profile,
        "fingerprints": {m: meta.get("manifest_fingerprint") for m, meta in metas.items()},
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
        settings=settings,
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
