"""Paper-scale training on CPU: one epoch of a configuration over memory-mapped float16 features.

Run: `.venv/bin/python benchmarks/bench_train.py [--scales 1 4] [--batch 1000] [--config paper_std]`.

Builds once, under `data/bench_train/x<scale>/`, random features of the paper's shape: 91,667
videos × 6 segments = 550,002 segments at scale 1, one view, musicnn 1506-d and R(2+1)D 512-d,
float16 `.npy` memmaps (2.2 GB at scale 1, 8.9 GB at 4), plus video ids and an 80/10/10 split
by video. Each scale is then measured in a fresh child process, which trains one epoch of
`--config` (default `paper_baseline`) over the train split as `mvnb.train.train` does (same
sampler, views, heads, loss and optimiser; with `input_norm="standard"`, the training split's
statistics computed first, block by block, and timed on their own); scales other than 1 run
`--memory-steps` batches, as they measure memory.

Prints per run: seconds for the epoch; seconds for reading its batches alone (a pass before it,
which also warms the page cache); wall and CPU milliseconds per step (with `--threads 1` CPU
time stays meaningful on a shared machine, while with more threads waiting threads spin and
inflate it); peak *anonymous* memory (RssAnon, sampled every 2 ms; file-backed memmap pages are
not counted). Then the bf16 speed-up over fp32 and the ratio of the peaks at 4× and 1×.
Goals (issue 11): ≤ 40 s per epoch at scale 1 on a 2-core CPU; peak ratio at 4× ≤ 1.2.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
AUDIO_DIM, VIDEO_DIM, SEGMENTS, VIDEOS = 1506, 512, 6, 91_667
BLOCK_ROWS = 1 << 16


def build_corpus(folder: Path, scale: int) -> Path:
    """Write (once) `audio.npy`, `video.npy` `(n, 1, dim)` float16, `video_ids.npy` int32, `split.npy` into
    `folder`."""
    n_videos = VIDEOS * scale
    n = n_videos * SEGMENTS
    done = folder / "done.json"
    if done.exists() and json.loads(done.read_text()) == {"segments": n}:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, dim in (("audio", AUDIO_DIM), ("video", VIDEO_DIM)):
        block = rng.standard_normal((BLOCK_ROWS, 1, dim), dtype=np.float32).astype(np.float16)
        store = np.lib.format.open_memmap(folder / f"{name}.npy", "w+", np.float16, (n, 1, dim))
        for lo in range(0, n, BLOCK_ROWS):
            store[lo : lo + BLOCK_ROWS] = block[: min(BLOCK_ROWS, n - lo)]
        store.flush()
        del store
    np.save(folder / "video_ids.npy", np.repeat(np.arange(n_videos, dtype=np.int32), SEGMENTS))
    split_of_video = np.array(["train", "val", "test"])[
        np.searchsorted([0.8, 0.9], rng.random(n_videos), side="right")
    ]
    np.save(folder / "split.npy", np.repeat(split_of_video, SEGMENTS))
    done.write_text(json.dumps({"segments": n}))
    return folder


class PeakAnon:
    """Samples this process's RssAnon (kB → MiB) in a thread; `peak` is the largest seen."""

    def __init__(self, every_s: float = 0.002) -> None:
        self.peak = self.read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every_s,), daemon=True)
        self._thread.start()

    @staticmethod
    def read() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no RssAnon in /proc/self/status (Linux only)")

    def _run(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            self.peak = max(self.peak, self.read())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, self.read())


def child(
    folder: Path, config_name: str, batch: int, max_steps: int | None, precision: str, threads: int
) -> dict:
    """One epoch (or its first `max_steps` batches) as `train` runs it; returns the measurements."""
    monitor = PeakAnon()
    import torch

    if threads:
        torch.set_num_threads(threads)
    from mvnb import standardise
    from mvnb.fit import train_epoch
    from mvnb.projection import heads_of, loss_of, to_tensor
    from mvnb.samplers import OneSegmentPerVideoBatchSampler
    from mvnb.train import _split_rows, make_config

    # Like the feature store, the per-segment inputs are memory-mapped files.
    audio, video, video_ids, split = (
        np.load(folder / f"{name}.npy", mmap_mode="r") for name in ("audio", "video", "video_ids", "split")
    )
    config = make_config(config_name, {"batch_size": batch, "precision": precision})
    device = torch.device("cpu")
    torch.manual_seed(0)
    rows = _split_rows(audio, video, video_ids, split, None)
    heads = heads_of(config, AUDIO_DIM, VIDEO_DIM)
    tic = time.perf_counter()
    if config.input_norm == "standard":
        for norm, features in zip(heads.input_norms(), (audio, video), strict=True):
            norm.set_stats(standardise.fit(features, rows["train"]))
    stats_s = time.perf_counter() - tic
    loss_fn = loss_of(config)
    optimiser = torch.optim.Adam([*heads.parameters(), *loss_fn.parameters()], lr=config.lr, fused=True)
    sampler = OneSegmentPerVideoBatchSampler(video_ids[rows["train"]], config.batch_size, seed=0)
    steps = min(len(sampler), max_steps or len(sampler))
    rng = np.random.default_rng(0)

    tic = time.perf_counter()
    for b in itertools.islice(sampler, steps):
        idx = np.sort(rows["train"][b])
        to_tensor(audio, idx, 0, device), to_tensor(video, idx, 0, device)
    read_s = time.perf_counter() - tic

    tic, cpu = time.perf_counter(), time.process_time()
    loss, skipped = train_epoch(
        heads,
        loss_fn,
        optimiser,
        audio,
        video,
        rows["train"],
        itertools.islice(sampler, steps),
        rng,
        device,
        config.precision,
    )
    epoch_s, epoch_cpu_s = time.perf_counter() - tic, time.process_time() - cpu
    return {
        "segments": len(split),
        "train_segments": len(rows["train"]),
        "steps": steps,
        "threads": torch.get_num_threads(),
        "epoch_s": epoch_s,
        "epoch_cpu_s": epoch_cpu_s,
        "read_s": read_s,
        "stats_s": stats_s,
        "loss": loss,
        "peak_anon_mib": monitor.stop(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scales",
        type=int,
        nargs="+",
        default=[1, 4],
        help="corpus sizes in units of the paper's 550k segments",
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["fp32", "bf16"],
        help="timed at scale 1; other scales use the first",
    )
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--config", default="paper_baseline", help="a configuration of mvnb.train.CONFIGS")
    parser.add_argument("--max-steps", type=int, help="stop each epoch after this many batches")
    parser.add_argument(
        "--memory-steps",
        type=int,
        default=100,
        help="batches run at scales other than 1, which measure memory only "
        "(it does not grow within an epoch)",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: torch's default, all cores)"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(
            json.dumps(
                child(args.child, args.config, args.batch, args.max_steps, args.precision, args.threads)
            )
        )
        return
    runs = [
        (scale, precision)
        for scale in args.scales
        for precision in (args.precisions if scale == 1 else args.precisions[:1])
    ]
    results = {}
    for scale, precision in runs:
        folder = build_corpus(ROOT / "data" / "bench_train" / f"x{scale}", scale)
        max_steps = (
            args.max_steps if scale == 1 else min(args.max_steps or args.memory_steps, args.memory_steps)
        )
        steps = ["--max-steps", str(max_steps)] if max_steps else []
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(folder),
                "--config",
                args.config,
                "--batch",
                str(args.batch),
                "--precision",
                precision,
                "--threads",
                str(args.threads),
                *steps,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        r = results[scale, precision] = json.loads(out.strip().splitlines()[-1])
        print(
            f"scale {scale}, {precision}: {r['segments']:,} segments, {r['train_segments']:,} in train, "
            f"{r['steps']} steps of "
            f"{args.batch}, {r['threads']} threads: {r['epoch_s']:.1f} s "
            f"({1000 * r['epoch_s'] / r['steps']:.0f} ms/step, "
            f"CPU {1000 * r['epoch_cpu_s'] / r['steps']:.0f} ms/step), "
            f"reading batches alone {r['read_s']:.1f} s, input statistics {r['stats_s']:.1f} s, "
            f"peak RssAnon {r['peak_anon_mib']:.0f} MiB"
        )
    first = args.precisions[0]
    if (1, first) in results:
        r = results[1, first]
        print(
            f"{args.config}, {first} epoch at 1x, projected to the whole epoch: "
            f"{r['epoch_s'] * r['train_segments'] / args.batch / r['steps']:.1f} s "
            f"(goal ≤ 40 s on 2 CPU cores)"
        )
        for precision in args.precisions[1:]:
            print(
                f"speed-up of {precision} over {first}: "
                f"{r['epoch_s'] / results[1, precision]['epoch_s']:.2f}x"
            )
        for scale in args.scales:
            if scale != 1:
                ratio = results[scale, first]["peak_anon_mib"] / r["peak_anon_mib"]
                print(f"peak RssAnon at {scale}x / at 1x: {ratio:.3f} (goal ≤ 1.2)")


if __name__ == "__main__":
    main()
