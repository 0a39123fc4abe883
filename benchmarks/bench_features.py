"""Feature extraction speed: the encoders' fast path against eager fp32, and the pipeline against
its encoders alone, each measured side by side in one run.

Run: `.venv/bin/python benchmarks/bench_features.py [--frames 8 16] [--clips 8] [--repeats 3]
[--segments 12] [--views 2]`.

Prints
1. per clip, for R(2+1)D-18 (seeded random weights: the numbers don't depend on them) at each
   T and for musicnn (MSD weights): eager fp32 (torchvision's module as it comes: contiguous,
   batch norms unfolded, no autocast), mvnb's module in fp32 (R(2+1)D: batch norms folded,
   channels_last_3d), and the fast path (`precision="auto"`: bf16 autocast on a CPU with
   native bf16, AMP on CUDA); the speed-up of the fast path over eager fp32 (goal ≥ 2.5× on the
   2-core dev machine) and its fidelity (min cosine to fp32 features);
2. for a store of `--segments` 768×432 segments written here (listed `--audio-copies` times
   for audio alone, whose encoder is fast): audio, video, and audio+video segments/s of
   `extract_features` (decoding in `--workers` processes), of the encoders alone on the same
   inputs decoded beforehand, and their ratio (goal ≥ 0.8).
Modes are timed interleaved, best of `repeats`, so that load from other processes hits all
of them alike.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mvnb import features as fs
from mvnb.device import resolve_precision
from mvnb.encoders import musicnn, r2plus1d
from mvnb.media import write_mp4, write_wav
from mvnb.segments import PreprocessParams, load_manifest


def synced(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def best_times(modes: dict, repeats: int, device: torch.device) -> tuple[dict, dict]:
    """Run each `modes[name]()` once to warm up, then `repeats` rounds interleaved; returns the
    best seconds per mode and each mode's last output."""
    outputs = {name: run() for name, run in modes.items()}
    best = {name: float("inf") for name in modes}
    for _ in range(repeats):
        for name, run in modes.items():
            synced(device)
            start = time.perf_counter()
            outputs[name] = run()
            synced(device)
            best[name] = min(best[name], time.perf_counter() - start)
    return best, outputs


def eager_fp32(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Plain forward: contiguous weights and input, no autocast."""
    with torch.inference_mode():
        return model(x)


def bench_r2plus1d(frames: int, clips: int, repeats: int, device: torch.device) -> dict:
    """Seconds per clip of R(2+1)D-18: torchvision's module in eager fp32, mvnb's (batch norms
    folded, channels_last_3d) in fp32, and mvnb's on the fast path."""
    model, _ = r2plus1d.load_r2plus1d("random", seed=0, device=device)
    eager = r2plus1d._backbone(0).eval().requires_grad_(False).to(device)  # torchvision's module as it comes
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (clips, frames, 112, 112, 3), dtype=torch.uint8, generator=g).to(device)
    normalised = r2plus1d.normalise_clips(x).contiguous()
    modes = {
        "eager fp32": lambda: eager_fp32(eager, normalised),
        "folded+channels_last_3d fp32": lambda: r2plus1d.r2plus1d_features(model, x, precision="fp32"),
        "fast path": lambda: r2plus1d.r2plus1d_features(model, x, precision="auto"),
    }
    best, out = best_times(modes, repeats, device)
    cosine = F.cosine_similarity(out["fast path"].float(), out["eager fp32"].float(), dim=1).min().item()
    return {"per_clip": {k: v / clips for k, v in best.items()}, "cosine": cosine}


def bench_musicnn(clips: int, repeats: int, device: torch.device) -> dict:
    """Seconds per clip of musicnn (MSD) in fp32 and on the fast path."""
    model = musicnn.load_musicnn("MSD_musicnn", device)
    t = np.arange(musicnn.WINDOW_SAMPLES) / musicnn.SAMPLE_RATE
    rng = np.random.default_rng(0)
    windows = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * rng.standard_normal((clips, t.size))
    patches = musicnn.musicnn_patches(windows.astype(np.float32)).to(device)
    modes = {
        "eager fp32": lambda: musicnn.musicnn_features(model, patches, precision="fp32"),
        "fast path": lambda: musicnn.musicnn_features(model, patches, precision="auto"),
    }
    best, out = best_times(modes, repeats, device)
    cosine = F.cosine_similarity(out["fast path"], out["eager fp32"], dim=1).min().item()
    return {"per_clip": {k: v / clips for k, v in best.items()}, "cosine": cosine}


def write_bench_store(root: Path, n_segments: int) -> None:
    """A store of `n_segments` 768×432, 10 fps, 5 s segments of moving texture with a tone."""
    params = PreprocessParams()
    (root / "segments").mkdir(parents=True)
    (root / "preprocess.json").write_text(json.dumps(params.as_json()))
    rng = np.random.default_rng(0)
    for i in range(n_segments):
        base = np.kron(rng.integers(0, 256, (28, 49, 3)), np.ones((16, 16, 1)))[:432, :768].astype(np.uint8)
        frames = (np.roll(base, 4 * j, axis=1) for j in range(params.n_frames))
        write_mp4(root / "segments" / f"{i:03d}.mp4", frames, params.fps, None, params.sample_rate)
        t = np.arange(params.n_samples) / params.sample_rate
        write_wav(
            root / "segments" / f"{i:03d}.wav",
            0.3 * np.sin(2 * np.pi * (200 + 20 * i) * t),
            params.sample_rate,
        )
    write_manifest(root, root, n_segments, copies=1)


def write_manifest(data_dir: Path, files_dir: Path, n_files: int, copies: int) -> None:
    """A manifest (and preprocess.json) in `data_dir` listing each segment file of `files_dir`
    `copies` times under different ids (so different random views): a bigger workload without
    more files."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "preprocess.json").write_text((files_dir / "preprocess.json").read_text())
    prefix = (
        Path(*[".."] * len(data_dir.relative_to(files_dir.parent).parts)) / files_dir.name
        if data_dir != files_dir
        else Path()
    )
    rows = [
        f"s{i:03d}_{c},v{i:03d}_{c},0,0.0,5.0,"
        f"{prefix / 'segments' / f'{i:03d}.mp4'},{prefix / 'segments' / f'{i:03d}.wav'},train"
        for c in range(copies)
        for i in range(n_files)
    ]
    (data_dir / "manifest.csv").write_text(
        "segment_id,video_id,k,start_s,end_s,video_path,audio_path,split\n" + "\n".join(rows) + "\n"
    )


def encoders_alone(
    root: Path, modalities: tuple[str, ...], views: int, frames: int, batch: int, device: torch.device
) -> float:
    """Seconds for the encoders of `modalities` over all segments, inputs decoded beforehand (after a warm-up
    call)."""
    spec = fs.ViewSpec(views, frames)
    manifest = load_manifest(root)
    jobs = manifest.assign(
        row=np.arange(len(manifest)), audio="audio" in modalities, video="video" in modalities
    )
    items = [fs.SegmentInputs(root, jobs, spec)[i] for i in range(len(jobs))]
    seconds = 0.0
    for modality in modalities:
        encoder = (
            fs.audio_encoder(spec, device, "auto")
            if modality == "audio"
            else fs.video_encoder(spec, device, "auto", "random")
        )
        inputs = [item[modality] for item in items]
        encoder.encode(torch.stack(inputs[:batch]).flatten(0, 1))
        synced(device)
        start = time.perf_counter()
        for lo in range(0, len(inputs), batch):
            encoder.encode(torch.stack(inputs[lo : lo + batch]).flatten(0, 1)).cpu()
        synced(device)
        seconds += time.perf_counter() - start
    return seconds


def pipeline(
    root: Path,
    modalities: tuple[str, ...],
    views: int,
    frames: int,
    batch: int,
    workers: int,
    device: torch.device,
) -> float:
    """Wall seconds of `extract_features` for `modalities` into a fresh store."""
    shutil.rmtree(root / "features", ignore_errors=True)
    summary = fs.extract_features(
        root,
        views=views,
        frames=frames,
        video_weights="random",
        batch_size=batch,
        device=device,
        workers=workers,
        modalities=modalities,
        progress=False,
    )
    return summary["wall_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--frames", type=int, nargs="+", default=[8, 16], help="T values for the encoder timing"
    )
    parser.add_argument("--clips", type=int, default=8, help="clips per encoder call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--segments", type=int, default=24, help="segments in the pipeline store")
    parser.add_argument("--views", type=int, default=2)
    parser.add_argument("--pipeline-frames", type=int, default=8)
    parser.add_argument(
        "--audio-copies", type=int, default=4, help="the audio pipeline lists each segment this many times"
    )
    parser.add_argument("--workers", type=int, default=1, help="decoding processes in the pipeline")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = (
        torch.cuda.get_device_name() if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    )
    fast = resolve_precision("auto", device)
    print(
        f"encoders on {name}; fast path = {fast} autocast + channels_last_3d; best of {args.repeats}, "
        f"{args.clips} clips per call"
    )
    for frames in args.frames:
        result = bench_r2plus1d(frames, args.clips, args.repeats, device)
        times = result["per_clip"]
        print(
            f"  R(2+1)D-18 T={frames:2d}: "
            + ", ".join(f"{k} {v:.3f} s/clip" for k, v in times.items())
            + f"; fast/eager speed-up {times['eager fp32'] / times['fast path']:.2f}x"
            + f"; cosine min {result['cosine']:.6f}"
        )
    result = bench_musicnn(4 * args.clips, args.repeats, device)
    times = result["per_clip"]
    print(
        "  musicnn (MSD):  "
        + ", ".join(f"{k} {v * 1000:.1f} ms/clip" for k, v in times.items())
        + f"; fast/eager speed-up {times['eager fp32'] / times['fast path']:.2f}x"
        + f"; cosine min {result['cosine']:.6f}"
    )

    root = Path(tempfile.mkdtemp(prefix="bench_features_"))
    try:
        write_bench_store(root / "video", args.segments)
        write_manifest(root / "audio", root / "video", args.segments, copies=args.audio_copies)
        batch = max(1, args.clips // args.views)
        print(
            f"pipeline: segments 768x432, V={args.views}, T={args.pipeline_frames}, {batch} segments per "
            f"batch, "
            f"{args.workers} decoding worker(s); best of 2 runs, each with its encoders' start-up"
        )
        for label, store, modalities in (
            ("audio", root / "audio", ("audio",)),
            ("video", root / "video", ("video",)),
            ("audio+video", root / "video", ("audio", "video")),
        ):
            n = len(load_manifest(store))
            alone = min(
                encoders_alone(store, modalities, args.views, args.pipeline_frames, batch, device)
                for _ in range(2)
            )
            piped = min(
                pipeline(store, modalities, args.views, args.pipeline_frames, batch, args.workers, device)
                for _ in range(2)
            )
            print(
                f"  {label:11s} ({n:3d} segments): pipeline {n / piped:6.2f} segments/s, encoders alone on "
                f"decoded inputs "
                f"{n / alone:6.2f} segments/s, ratio {alone / piped:.2f}"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
