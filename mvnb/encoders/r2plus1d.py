"""R(2+1)D-18 (Tran et al., 2018), the paper's frozen video encoder: 112×112 clips → 512-d features.

The network is torchvision's `r2plus1d_18` with its Kinetics-400 classifier removed, so a
clip `(3, T, 112, 112)` gives the 512-d global average pool (`LAYER`). Weights:

- `"kinetics400"`: torchvision's `R2Plus1D_18_Weights.KINETICS400_V1`, from the torch hub
  cache or downloaded into it; the file's sha256 is checked against the prefix in its name.
  When it can't be had (offline), the model falls back to `"random"` with a loud warning,
  unless `strict=True` (what `--video-weights kinetics400` asks), which raises instead.
- `"random"`: torchvision's default initialisation under `torch.manual_seed(seed)`, so the
  same seed gives the same weights on every run, shard and machine.
- a path to a local `.pth`: a state dict of `r2plus1d_18` (with or without `fc.*`, possibly
  under "state_dict"/"model", possibly with DDP's "module." prefix).

The provenance record says which of these it is, with a sha256 (of the file, or of the
state dict for random weights) and the seed. Clips are prepared as the Kinetics weights
expect: each frame resized so that the 112×112 crop covers (112/171, 112/128) of it (the
Kinetics resize to 128×171, then a crop), scaled to [0, 1] and normalised with the Kinetics
mean and std. Batch norms are folded into the convolutions (exact), and the fast path
(`precision`) is channels_last_3d with bf16 autocast on a CPU with native bf16, AMP on CUDA;
"fp32" keeps full precision.
"""

from __future__ import annotations

import hashlib
import socket
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.models.video import R2Plus1D_18_Weights, r2plus1d_18

from mvnb.device import autocast_for, default_device, resolve_precision
from mvnb.io import sha256_file

NAME = "r2plus1d_18"
LAYER = "avgpool"
FEATURE_DIM = 512
CROP = 112
KINETICS_RESIZE = (128, 171)  # (height, width) the Kinetics clips were resized to before cropping
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
KINETICS_WEIGHTS = R2Plus1D_18_Weights.KINETICS400_V1
DOWNLOAD_TIMEOUT_S = 60


class WeightsUnavailable(RuntimeError):
    """The requested pretrained weights could not be found or downloaded."""


# --------------------------------------------------------------------------- weights


def state_dict_sha256(module: nn.Module) -> str:
    """Hex sha256 of a module's state dict: names and raw tensor bytes, in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _backbone(seed: int) -> nn.Module:
    """`r2plus1d_18` without its classifier, initialised under `torch.manual_seed(seed)`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = r2plus1d_18(weights=None)
    model.fc = nn.Identity()
    return model


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm3d into the Conv3d before it, in place; returns `model`.

    In R(2+1)D every batch norm follows a convolution, directly or as the last module of a
    nested Sequential (`Conv2Plus1D`). Folding is exact up to float rounding and saves a pass
    over every activation map (about 15% of the time on CPU).
    """
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            holder, index = seq, i
            while isinstance(holder[index], nn.Sequential) and len(holder[index]):
                holder, index = holder[index], len(holder[index]) - 1
            if isinstance(holder[index], nn.Conv3d) and isinstance(seq[i + 1], nn.BatchNorm3d):
                holder[index] = fuse_conv_bn_eval(holder[index], seq[i + 1])
                seq[i + 1] = nn.Identity()
    return model


def _load_state(model: nn.Module, state: dict, source: str) -> None:
    """Load an `r2plus1d_18` state dict into `model` (classifier keys ignored), strictly."""
    for wrapper in ("state_dict", "model"):
        if isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    state = {
        key.removeprefix("module."): value
        for key, value in state.items()
        if not key.removeprefix("module.").startswith("fc.")
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{source} is not an r2plus1d_18 state dict: {len(missing)} missing keys (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        )


def _kinetics_file() -> tuple[Path, str]:
    """The Kinetics-400 checkpoint in the torch hub cache (downloaded there if absent) and its sha256.

    Raises WeightsUnavailable when it is neither cached nor downloadable, or when its sha256
    does not start with the hash prefix in its file name (a corrupt or truncated download).
    """
    url = KINETICS_WEIGHTS.url
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            torch.hub.download_url_to_file(url, str(path), progress=False)
        except Exception as error:  # no network, proxy, HTTP error: all mean "not available"
            raise WeightsUnavailable(
                f"Kinetics-400 weights are not in {path.parent} and could not be downloaded from {url} "
                f"({type(error).__name__}: {error}); put the file there by hand or use a local "
                f"--video-weights PATH"
            ) from None
        finally:
            socket.setdefaulttimeout(previous)
    digest = sha256_file(path)
    expected = path.stem.rsplit("-", 1)[-1]
    if not digest.startswith(expected):
        raise WeightsUnavailable(
            f"{path} has sha256 {digest[:12]}…, not {expected}…: delete it and download it again"
        )
    return path, digest


def _load_weights(model: nn.Module, requested: str, seed: int, strict: bool) -> dict:
    """Load the `requested` weights ("kinetics400", "random" or a `.pth` path) into `model` (left at its
    random init for "random", or when Kinetics-400 is unavailable and not `strict`: a warning and
    `fallback` say why). Returns the provenance fields decided here: `weights`, and `source, sha256,
    sha256_of, seed` for loaded files, `fallback` for a fallback."""
    if requested == "kinetics400":
        try:
            path, digest = _kinetics_file()
        except WeightsUnavailable as error:
            if strict:
                raise
            message = f"R(2+1)D-18 IS RANDOMLY INITIALISED (seed {seed}), NOT KINETICS-400: {error}"
            warnings.warn(message, stacklevel=3)
            return dict(weights="random", fallback=str(error))
        _load_state(model, torch.load(path, map_location="cpu", weights_only=True), str(path))
        return dict(
            weights="kinetics400", source=KINETICS_WEIGHTS.url, sha256=digest, sha256_of="file", seed=None
        )
    if requested == "random":
        return dict(weights="random")
    path = Path(requested).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"video weights {path} not found; use kinetics400, random, or the path of a .pth state dict"
        )
    _load_state(model, torch.load(path, map_location="cpu", weights_only=True), str(path))
    return dict(
        weights="file", source=str(path.resolve()), sha256=sha256_file(path), sha256_of="file", seed=None
    )


def load_r2plus1d(
    weights: str | Path = "kinetics400",
    seed: int = 0,
    device: str | torch.device | None = None,
    strict: bool = False,
) -> tuple[nn.Module, dict]:
    """The frozen R(2+1)D-18 feature extractor and the provenance of its weights.

    weights: "kinetics400", "random", or the path of a local `.pth` state dict.
    seed: initialisation seed for "random" (and for the fallback).
    strict: with "kinetics400", raise WeightsUnavailable instead of falling back to random.
    Returns `(module, provenance)`: the module maps `(batch, 3, T, 112, 112)` normalised clips
    to `(batch, 512)`, in eval mode with its batch norms folded into the convolutions, without
    gradients, channels_last_3d, on `device` (None: cuda when present, else cpu). `provenance` has `encoder,
    layer, weights` ("kinetics400",
    "random" or "file"), `requested, source, sha256, sha256_of` ("file" or "state_dict"),
    `seed` (None for pretrained weights), `fallback` (why random replaced what was asked, or
    None) and `torchvision` (version).
    """
    requested = str(weights)
    model = _backbone(seed)
    record = {
        "encoder": NAME,
        "layer": LAYER,
        "requested": requested,
        "fallback": None,
        "torchvision": torchvision.__version__,
    }
    record.update(_load_weights(model, requested, seed, strict))
    if record["weights"] == "random":
        record.update(
            source=f"torchvision default init under torch.manual_seed({seed})",
            sha256=state_dict_sha256(model),
            sha256_of="state_dict",
            seed=int(seed),
        )
    model = fold_batch_norms(model.eval()).requires_grad_(False)
    return model.to(device or default_device(), memory_format=torch.channels_last_3d), record


# --------------------------------------------------------------------------- clips


def centre_box() -> tuple[float, float, float, float]:
    """The Kinetics evaluation crop as `(x0, y0, width, height)` fractions of the frame.

    Resizing to 128×171 and cutting the central 112×112 keeps 112/171 of the width and
    112/128 of the height, whatever the frame's size; the offsets are torchvision's
    `center_crop` ones in the 128×171 frame (30 and 8 pixels).
    """
    (height, width), (top, left) = KINETICS_RESIZE, (round((s - CROP) / 2) for s in KINETICS_RESIZE)
    return (left / width, top / height, CROP / width, CROP / height)


def crop_frames(
    frames: np.ndarray | torch.Tensor, box: tuple[float, float, float, float], size: int = CROP
) -> torch.Tensor:
    """Cut `box` out of every frame and resize it to `size`×`size` (bilinear, antialiased).

    frames: `(T, H, W, 3)` uint8 RGB. box: `(x0, y0, width, height)` as fractions of the frame,
    rounded to whole pixels. Returns `(T, size, size, 3)` uint8. Resizes uint8 channels-last,
    torch's fast path for it (about 10× faster than through float here).
    """
    frames = torch.as_tensor(frames)
    height, width = frames.shape[1:3]
    x0, y0 = round(box[0] * width), round(box[1] * height)
    x1, y1 = max(x0 + 1, round((box[0] + box[2]) * width)), max(y0 + 1, round((box[1] + box[3]) * height))
    patch = (
        frames[:, y0 : min(y1, height), x0 : min(x1, width)].contiguous().permute(0, 3, 1, 2)
    )  # channels-last uint8
    resized = F.interpolate(patch, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.permute(0, 2, 3, 1).contiguous()


def normalise_clips(clips: torch.Tensor) -> torch.Tensor:
    """uint8 RGB clips `(batch, T, H, W, 3)` → float32 `(batch, 3, T, H, W)` with Kinetics mean/std."""
    mean = torch.tensor(KINETICS_MEAN, device=clips.device).view(1, 3, 1, 1, 1)
    std = torch.tensor(KINETICS_STD, device=clips.device).view(1, 3, 1, 1, 1)
    return (clips.permute(0, 4, 1, 2, 3).float() / 255.0 - mean) / std


def r2plus1d_features(
    model: nn.Module, clips: torch.Tensor | np.ndarray, precision: str = "auto"
) -> torch.Tensor:
    """The 512-d feature of each clip, float32 on the model's device.

    clips: `(batch, T, 112, 112, 3)` uint8 RGB (T ≥ 1; the model pools over time).
    precision: "auto" | "fp32" | "bf16", resolved by `mvnb.device.resolve_precision`
        (bf16 autocast on a CPU with native bf16, AMP on CUDA, else fp32).
    """
    device = next(model.parameters()).device
    clips = torch.as_tensor(clips).to(device)
    if clips.ndim != 5 or clips.shape[-1] != 3 or clips.dtype != torch.uint8:
        raise ValueError(
            f"R(2+1)D expects (batch, T, H, W, 3) uint8 clips, got {tuple(clips.shape)} {clips.dtype}"
        )
    inputs = normalise_clips(clips).contiguous(memory_format=torch.channels_last_3d)
    with torch.inference_mode(), autocast_for(resolve_precision(precision, device), device):
        return model(inputs).float()
