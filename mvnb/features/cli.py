"""The command `python -m mvnb features`: its options and its run (`mvnb.features.extract`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mvnb import config
from mvnb.device import PRECISIONS
from mvnb.encoders import musicnn_weights, r2plus1d
from mvnb.features.extract import extract_features
from mvnb.features.store import KEYS, FeatureStoreMismatch, FeatureStoreStale


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m mvnb features`."""
    defaults = config.PROFILES["default"]
    parser.add_argument(
        "--data", type=Path, required=True, help="the segment store (DATA_DIR, holding manifest.csv)"
    )
    parser.add_argument(
        "--views",
        type=int,
        default=defaults["views"],
        help="views per segment (view 0: centred, centre crop)",
    )
    parser.add_argument(
        "--frames",
        type=int,
        default=defaults["frames"],
        help="video frames per view, evenly spaced over 3 s (30: all)",
    )
    parser.add_argument(
        "--video-weights",
        default=None,
        help="kinetics400 (strict: fail when unavailable), random, or a .pth path; "
        "default: kinetics400, falling back to seeded random with a warning",
    )
    parser.add_argument(
        "--audio-model", default="MSD_musicnn", choices=musicnn_weights.MODELS, help="musicnn weights"
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="auto: bf16 autocast on CPUs with native bf16, AMP on CUDA; "
        "fp32: full precision; fp16: CUDA only",
    )
    parser.add_argument("--device", default=None, help="cuda, cpu, cuda:1, … (default: cuda when present)")
    parser.add_argument("--batch-size", type=int, default=4, help="segments per batch (V clips each)")
    parser.add_argument(
        "--workers", type=int, default=1, help="decoding processes (0: decode in the main process)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the random views and of a random video init"
    )
    parser.add_argument("--only", choices=tuple(KEYS), help="extract one modality only")
    parser.add_argument(
        "--shard", help="i/N: encode only shard i of N of the videos; a final run without --shard merges"
    )
    parser.add_argument("--rebuild", action="store_true", help="replace a store made with other settings")


def run(args: argparse.Namespace) -> int:
    """Run `features` from parsed arguments; prints a summary. Exit code 2 on refusal."""
    try:
        summary = extract_features(
            args.data,
            views=args.views,
            frames=args.frames,
            video_weights=args.video_weights or "kinetics400",
            precision=args.precision,
            batch_size=args.batch_size,
            device=args.device,
            workers=args.workers,
            seed=args.seed,
            audio_model=args.audio_model,
            modalities=(args.only,) if args.only else tuple(KEYS),
            strict_weights=args.video_weights == "kinetics400",
            rebuild=args.rebuild,
            shard=args.shard,
        )
    except (
        FeatureStoreMismatch,
        FeatureStoreStale,
        r2plus1d.WeightsUnavailable,
        FileNotFoundError,
        ValueError,
        RuntimeError,
    ) as error:
        print(f"features: {error}")
        return 2
    for modality in KEYS:
        if modality in summary:
            part = summary[modality]
            print(
                f"features: {modality} ({part['provenance']['encoder']}, {part['provenance']['weights']}, "
                f"{part['precision']}): "
                f"{part['computed']} computed, {part['reused']} reused, {part['imported']} from shards, "
                f"{len(part['failed'])} failed -> {part['path']}"
            )
            for sid, reason in part["failed"].items():
                print(f"  skipped {sid}: {reason}")
    return 0
