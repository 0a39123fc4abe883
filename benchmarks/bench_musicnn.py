"""musicnn throughput: fp32 eager against the fast path (bf16 autocast on CPU, AMP on CUDA), in one run.

Run: `.venv/bin/python benchmarks/bench_musicnn.py [--batch 32] [--repeats 5]`.

Prints patches per second for
- `fp32, TF layer order`: each front-end block as the TF graph computes it (conv → ReLU →
  batch norm → max over mel bands), the plain eager port;
- `fp32`: mvnb's module, which takes the max before the per-filter monotone map (same numbers);
- `fast path`: mvnb's module under `precision="auto"`;
and the speed-up ratios of the fast path over both fp32 runs (wall and CPU time), plus the fidelity of the
fast
path's default feature (max_pool ‖ mean_pool): min and mean cosine to fp32 over the batch, with
MSD_musicnn's real weights. Modes are timed interleaved, best of `repeats`, so that load from
other processes hits all of them alike.
"""

from __future__ import annotations

import argparse
import copy
import time
import types

import numpy as np
import torch
import torch.nn.functional as F

from mvnb.device import resolve_precision
from mvnb.encoders.musicnn import (
    WINDOW_SAMPLES,
    FrontendBlock,
    Musicnn,
    load_musicnn,
    musicnn_features,
    musicnn_patches,
)


def tf_order_forward(block: FrontendBlock, x: torch.Tensor) -> torch.Tensor:
    """A front-end block in the TF graph's order: conv → ReLU → batch norm → max over mel. `(B, 1, T, 96)` →
    `(B, C, T)`."""
    y = torch.relu(block.conv(F.pad(x, (0, 0, *block.time_pad))))
    bn = block.bn
    y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    return y.amax(dim=3)


def tf_order_model(model: Musicnn) -> Musicnn:
    """A copy of `model` whose front-end blocks run in the TF graph's order."""
    plain = copy.deepcopy(model)
    for block in plain.frontend:
        block.forward = types.MethodType(tf_order_forward, block)
    return plain


def bench_patches(batch: int, seed: int = 0) -> torch.Tensor:
    """`(batch, 187, 96)` log-mel patches of decaying noise bursts over a chord, seeded."""
    rng = np.random.default_rng(seed)
    t = np.arange(WINDOW_SAMPLES) / 16000
    chord = sum(np.sin(2 * np.pi * f * t) for f in (110.0, 164.8, 220.0)) / 6
    bursts = (
        rng.standard_normal((batch, t.size)) * np.exp(-((t * rng.uniform(1, 4, (batch, 1))) % 1) * 20) * 0.3
    )
    return musicnn_patches(torch.from_numpy((chord + bursts).astype(np.float32)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_musicnn("MSD_musicnn", device=device)
    patches = bench_patches(args.batch).to(device)
    fast = resolve_precision("auto", device)
    modes = {
        "fp32, TF layer order": (tf_order_model(model), "fp32"),
        "fp32": (model, "fp32"),
        f"fast path ({fast})": (model, "auto"),
    }
    features = {
        name: musicnn_features(net, patches[:2], precision=p) for name, (net, p) in modes.items()
    }  # warm-up
    wall = {name: float("inf") for name in modes}
    cpu = dict(wall)
    for _ in range(args.repeats):
        for name, (net, precision) in modes.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start, start_cpu = time.perf_counter(), time.process_time()
            features[name] = musicnn_features(net, patches, precision=precision)
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall[name] = min(wall[name], time.perf_counter() - start)
            cpu[name] = min(cpu[name], time.process_time() - start_cpu)
    print(
        f"musicnn (MSD_musicnn) on {device}, {torch.get_num_threads()} threads, batch {args.batch}, "
        f"best of {args.repeats}; CPU time counts only the time this process ran, so it is steadier "
        f"than wall time when other processes share the cores"
    )
    print(f"  {'mode':24s} {'patches/s':>10s} {'patches/CPU-s':>14s}")
    for name in modes:
        print(f"  {name:24s} {args.batch / wall[name]:10.1f} {args.batch / cpu[name]:14.1f}")
    names = list(modes)
    for baseline in names[:2]:
        print(
            f"  speed-up of the fast path over {baseline}: {wall[baseline] / wall[names[2]]:.2f}x wall, "
            f"{cpu[baseline] / cpu[names[2]]:.2f}x CPU"
        )
    cosine = F.cosine_similarity(features[names[1]], features[names[2]], dim=1)
    print(
        f"  fidelity, max_pool ‖ mean_pool, fast vs fp32: cosine min {cosine.min():.6f}, mean "
        f"{cosine.mean():.6f}"
    )


if __name__ == "__main__":
    main()
