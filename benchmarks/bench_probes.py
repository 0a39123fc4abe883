"""Probe training speed at the default profile's scale: one torch thread against torch's default, in one run.

Run: `.venv/bin/python benchmarks/bench_probes.py [--epochs 20] [--repeats 3]`.

For each embedding width of Table 2 (concat 2018, musicnn 1506, R(2+1)D 512, CL 256)
it trains the paper's probe (512, 256) for a fixed number of epochs on 582 training segments
and 7 genres, as the default corpus has, and prints milliseconds per epoch with 1 thread and
with torch's default number of threads, and their ratio. Settings are timed interleaved, best
of `repeats`, so that load from other processes hits both alike. It ends with the estimated
cost of notebook 04 at the default profile: 3 frozen + 6 CL embeddings × 2 tasks × 3 seeds
at the mean number of epochs given by `--mean-epochs`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from mvnb.device import torch_threads
from mvnb.probes import ProbeConfig, train_probe

WIDTHS = {"concat": 2018, "musicnn": 1506, "R(2+1)D": 512, "CL_*": 256}
COUNTS = {"concat": 1, "musicnn": 1, "R(2+1)D": 1, "CL_*": 6}  # embeddings of each width per seed and task


def seconds_per_epoch(dim: int, threads: int | None, epochs: int) -> float:
    """Wall seconds per epoch of one genre probe on random inputs of width `dim`."""
    x = torch.randn(720, dim)
    targets = torch.eye(7)[torch.randint(0, 7, (720,))]
    config = ProbeConfig(max_epochs=epochs, patience=epochs + 1)
    with torch_threads(threads):
        tic = time.perf_counter()
        train_probe(x, targets, False, np.arange(582), np.arange(582, 648), 0, config)
        return (time.perf_counter() - tic) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mean-epochs", type=float, default=30.0)
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    settings = {"1 thread": 1, f"{default_threads} threads (default)": None}
    print(f"probe (512, 256), 582 training segments, {args.epochs} epochs, best of {args.repeats}")
    best = {(name, s): float("inf") for name in WIDTHS for s in settings}
    for _ in range(args.repeats):
        for name, dim in WIDTHS.items():
            for s, threads in settings.items():
                best[(name, s)] = min(best[(name, s)], seconds_per_epoch(dim, threads, args.epochs))
    one, many = settings
    for name, dim in WIDTHS.items():
        a, b = best[(name, one)], best[(name, many)]
        print(
            f"{name:<16} width {dim:>4}: {one} {a * 1e3:7.1f} ms/epoch, {many} {b * 1e3:7.1f} ms/epoch, "
            f"ratio default/1 thread {b / a:5.2f}"
        )
    for s in settings:
        total = sum(best[(name, s)] * COUNTS[name] for name in WIDTHS) * 2 * 3 * args.mean_epochs
        print(
            f"notebook 04 default estimate with {s}: {total:.0f} s of probe training "
            f"(9 embeddings x 2 tasks x 3 seeds x {args.mean_epochs:.0f} epochs)"
        )


if __name__ == "__main__":
    main()
