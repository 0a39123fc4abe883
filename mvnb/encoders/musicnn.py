"""musicnn (Pons & Serra, 2019) in PyTorch, with the pretrained weights of the `musicnn` wheel.

The paper's audio encoder. The network takes `(batch, 187, 96)` log-mel patches (3 s at
16 kHz) and has three parts, as in `musicnn.models.build_musicnn`:

- **front end**: batch norm of the input, then two timbral blocks (convolutions of 7 frames
  × 38 and 67 mel bands, 204 filters each) and three temporal blocks (128, 64 and 32 frames
  × 1 band, 51 filters each, TF `same` padding); each block is conv → ReLU → batch norm →
  max over frequency, giving 561 channels per frame;
- **mid end**: three 1-D convolutions of 7 frames with 64 filters (conv → ReLU → batch norm),
  the last two residual; the front end and the three mid-end outputs are concatenated to
  753 channels per frame;
- **back end**: max and mean over time (`max_pool`, `mean_pool`, 753 each), flattened
  *interleaved* (TF flattens a `(753, 2)` tensor), batch norm, dense 200 → ReLU → batch norm
  (`penultimate`), dense 50 → sigmoid (`taggram`).

Batch norms use TF's epsilon 1e-3. Weights come from the TF checkpoints shipped inside the
installed `musicnn` distribution, read by `mvnb.encoders.tf_checkpoint` (no TensorFlow).
The audio feature the projection heads see is by default `max_pool ‖ mean_pool` (1506-d), as
the authors used; `penultimate` and `taggram` are options (`LAYER_DIMS`).
"""

from __future__ import annotations

import abc
import functools
from pathlib import Path

import numpy as np
import torch
import torchaudio
from torch import nn

from mvnb.device import autocast_for, default_device, resolve_precision
from mvnb.encoders.musicnn_weights import LABELS, checkpoint_files, tf_state_dict
from mvnb.encoders.tf_checkpoint import read_checkpoint

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187
WINDOW_SAMPLES = 3 * SAMPLE_RATE
BN_EPS = 1e-3
FLOAT16_MAX = 65504.0
LAYER_DIMS = {"pooled": 1506, "penultimate": 200, "taggram": 50}
DEFAULT_LAYER = "pooled"


# --------------------------------------------------------------------------- log-mel input


@functools.lru_cache(maxsize=8)
def _mel_filters(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The periodic Hann window `(512,)` and Slaney mel filterbank `(257, 96)` on `device`."""
    window = torch.hann_window(N_FFT, periodic=True, device=device)
    filters = torchaudio.functional.melscale_fbanks(
        n_freqs=N_FFT // 2 + 1,
        f_min=0.0,
        f_max=SAMPLE_RATE / 2,
        n_mels=N_MELS,
        sample_rate=SAMPLE_RATE,
        norm="slaney",
        mel_scale="slaney",
    ).to(device)
    return window, filters


def log_mel(waveform: torch.Tensor | np.ndarray) -> torch.Tensor:
    """musicnn's input representation of a 16 kHz mono waveform.

    waveform: `(samples,)` or `(batch, samples)` float in [-1, 1], 16 kHz.
    Returns `(frames, 96)` or `(batch, frames, 96)` float32 with frames = 1 + samples // 256.

    As musicnn's extractor with librosa ≥ 0.10: centred STFT zero-padded at both ends (not
    reflected), n_fft 512, hop 256, periodic Hann, power 2, Slaney mel (96 bands, 0–8 kHz),
    rounded through float16, then log10(10000·x + 1) computed in float32 (the original
    multiplies the float16 array, which overflows to inf under NumPy 2). Mel energies beyond
    float16's range (only for input far outside [-1, 1]) saturate at 65504 instead of inf.
    """
    waveform = torch.as_tensor(waveform, dtype=torch.float32)
    if waveform.ndim not in (1, 2):
        raise ValueError(
            f"log_mel expects a (samples,) or (batch, samples) waveform, got shape {tuple(waveform.shape)}"
        )
    window, filters = _mel_filters(waveform.device)
    power = torchaudio.functional.spectrogram(
        waveform,
        pad=0,
        window=window,
        n_fft=N_FFT,
        hop_length=HOP,
        win_length=N_FFT,
        power=2.0,
        normalized=False,
        center=True,
        pad_mode="constant",
        onesided=True,
    )
    mel = torch.matmul(power.transpose(-1, -2), filters)
    mel = mel.clamp(max=FLOAT16_MAX).to(torch.float16).to(torch.float32)
    return torch.log10(10000.0 * mel + 1.0)


def musicnn_patches(windows: torch.Tensor | np.ndarray) -> torch.Tensor:
    """The log-mel patch musicnn takes from each 3 s window.

    windows: `(48000,)` or `(batch, 48000)` float waveform at 16 kHz.
    Returns `(187, 96)` or `(batch, 187, 96)` float32.

    `log_mel` of 48,000 samples has 188 centred frames (centres at 0, 256, …, 47,872). musicnn's
    extractor cuts patches of 187 frames starting at frame 0, so a 3 s clip gives exactly one
    patch: frames 0–186. The last frame (centred 128 samples before the window's end) is
    dropped, as musicnn does.
    """
    windows = torch.as_tensor(windows, dtype=torch.float32)
    if windows.shape[-1] != WINDOW_SAMPLES or windows.ndim not in (1, 2):
        raise ValueError(
            f"musicnn_patches expects 3 s windows of {WINDOW_SAMPLES} samples at {SAMPLE_RATE} Hz, "
            f"shaped ({WINDOW_SAMPLES},) or (batch, {WINDOW_SAMPLES}); got shape {tuple(windows.shape)}"
        )
    return log_mel(windows)[..., :PATCH_FRAMES, :]


# --------------------------------------------------------------------------- the network


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """Copy a `(batch, channels, height, width)` view into channels-last memory, in the autocast dtype if
    autocast is on."""
    device = x.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
    return x.to(dtype=dtype, memory_format=torch.channels_last)


class FrontendBlock(nn.Module, abc.ABC):
    """One front-end block: Conv2d of the `(time, mel)` plane → ReLU → batch norm → max over mel.

    Input `(batch, 1, frames, 96)`, output `(batch, filters, frames)`. `conv` holds the filters
    in the original layout (`(filters, 1, kernel time, kernel mel)`); subclasses say how the
    convolution is computed, and pad time as TF does.

    The rest runs in a cheaper order that gives the same numbers: per filter, bias → ReLU →
    batch norm is monotone (increasing where the batch-norm gamma ≥ 0, decreasing where it is
    negative), so its max over mel bands is its value at the max of sign(gamma)·conv. So the
    block convolves with sign-flipped filters, takes the max over mel bands, and only then
    applies bias, ReLU and batch norm, to a tensor 30–96 times smaller. Rounding is monotone
    too, so this reordering changes no fp32 result.
    """

    def __init__(self, filters: int, kernel: tuple[int, int]):
        super().__init__()
        self.time_pad = ((kernel[0] - 1) // 2, kernel[0] - 1 - (kernel[0] - 1) // 2)
        self.conv = nn.Conv2d(1, filters, kernel)
        self.bn = nn.BatchNorm1d(filters, eps=BN_EPS)

    @abc.abstractmethod
    def convolve(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Valid conv of time-padded `x` `(batch, 1, frames + pad, 96)` with `weight` → `(batch, filters,
        frames, bands)`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sign = torch.where(self.bn.weight >= 0, 1.0, -1.0)
        x = nn.functional.pad(x, (0, 0, *self.time_pad))
        response = self.convolve(x, self.conv.weight * sign[:, None, None, None])
        peak = nn.functional.max_pool2d(response, (1, response.shape[3])).squeeze(3) * sign[:, None]
        return self.bn(torch.relu(peak + self.conv.bias[:, None]))


class TimbralBlock(FrontendBlock):
    """Timbral block: 7 frames × `bands` mel bands, 'same' in time (3 frames each side), valid in mel.

    The one-channel convolution is computed as a (7 × 1) convolution over `bands` input
    channels, channel d being the input shifted by d mel bands: the same sums, in a shape that
    oneDNN runs about 1.4× faster in fp32 and 2× faster in bf16 than a one-channel convolution.
    """

    def __init__(self, filters: int, bands: int):
        super().__init__(filters, (7, bands))

    def convolve(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        bands = weight.shape[3]
        positions = x.shape[3] - bands + 1
        shifted = _channels_last(x[:, 0].unfold(2, positions, 1).permute(0, 2, 1, 3))
        weight = weight[:, 0].permute(0, 2, 1).unsqueeze(3).contiguous(memory_format=torch.channels_last)
        return nn.functional.conv2d(shifted, weight)


class TemporalBlock(FrontendBlock):
    """Temporal block: `length` frames × 1 band, TF 'same' in time ((length-1)//2 frames before, length//2
    after).

    The one-channel convolution of length L is computed as a dilated one over SHIFTS input
    channels: channel s is the input shifted by s frames, and tap j (dilation SHIFTS) of
    channel s carries original tap j·SHIFTS + s. The same sums, about 1.5× faster in fp32 and
    2× in bf16 than a one-channel convolution.
    """

    SHIFTS = 8

    def __init__(self, filters: int, length: int):
        if length % self.SHIFTS:
            raise ValueError(f"temporal kernel length must be a multiple of {self.SHIFTS}, got {length}")
        super().__init__(filters, (length, 1))

    def convolve(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        steps = x.shape[2] - self.SHIFTS + 1
        shifted = _channels_last(x[:, 0].unfold(1, steps, 1).permute(0, 1, 3, 2))
        filters, length = weight.shape[0], weight.shape[2]
        weight = weight[:, 0, :, 0].reshape(filters, length // self.SHIFTS, self.SHIFTS).permute(0, 2, 1)
        weight = weight.unsqueeze(3).contiguous(memory_format=torch.channels_last)
        return nn.functional.conv2d(shifted, weight, dilation=(self.SHIFTS, 1))


class MidendLayer(nn.Module):
    """Conv1d over time (7 frames, 'same' padding) → ReLU → batch norm. `(batch, in, frames)` → `(batch, out,
    frames)`."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, 7, padding=3)
        self.bn = nn.BatchNorm1d(out_channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(torch.relu(self.conv(x)))


class Musicnn(nn.Module):
    """The musicnn architecture (front end 561, mid end 3 × 64, back end 200 → n_classes)."""

    def __init__(self, n_classes: int = 50, midend_filters: int = 64, backend_units: int = 200):
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        self.frontend = nn.ModuleList(
            [TimbralBlock(204, int(0.4 * N_MELS)), TimbralBlock(204, int(0.7 * N_MELS))]
            + [TemporalBlock(51, length) for length in (128, 64, 32)]
        )
        frontend_channels = 2 * 204 + 3 * 51
        self.midend = nn.ModuleList(
            [
                MidendLayer(frontend_channels, midend_filters),
                MidendLayer(midend_filters, midend_filters),
                MidendLayer(midend_filters, midend_filters),
            ]
        )
        pooled = frontend_channels + 3 * midend_filters
        self.backend_bn = nn.BatchNorm1d(2 * pooled, eps=BN_EPS)
        self.dense = nn.Linear(2 * pooled, backend_units)
        self.dense_bn = nn.BatchNorm1d(backend_units, eps=BN_EPS)
        self.output = nn.Linear(backend_units, n_classes)

    def forward(self, patches: torch.Tensor) -> dict[str, torch.Tensor]:
        """patches `(batch, frames, 96)` log-mel (frames = 187 for the pretrained models).

        Returns `taggram` `(batch, n_classes)` sigmoid, `max_pool` and `mean_pool`
        `(batch, 753)`, `penultimate` `(batch, 200)`.
        """
        x = self.input_bn(patches.unsqueeze(1))
        frontend = torch.cat([block(x) for block in self.frontend], dim=1)
        mid1 = self.midend[0](frontend)
        mid2 = self.midend[1](mid1) + mid1
        mid3 = self.midend[2](mid2) + mid2
        features = torch.cat([frontend, mid1, mid2, mid3], dim=1)
        max_pool, mean_pool = features.amax(dim=2), features.mean(dim=2)
        return {**self.backend(max_pool, mean_pool), "max_pool": max_pool, "mean_pool": mean_pool}

    def backend(self, max_pool: torch.Tensor, mean_pool: torch.Tensor) -> dict[str, torch.Tensor]:
        """The dense back end on pooled features, e.g. stored `max_pool ‖ mean_pool` halves, each `(batch,
        753)`.

        Interleaves the two as TF's flatten of a `(753, 2)` tensor does, then batch norm, dense
        200 → ReLU → batch norm (`penultimate` `(batch, 200)`), dense → sigmoid (`taggram`
        `(batch, n_classes)`).
        """
        interleaved = torch.stack([max_pool, mean_pool], dim=2).flatten(1)
        penultimate = self.dense_bn(torch.relu(self.dense(self.backend_bn(interleaved))))
        return {"taggram": torch.sigmoid(self.output(penultimate)), "penultimate": penultimate}


# --------------------------------------------------------------------------- pretrained weights


def load_musicnn(name: str = "MSD_musicnn", device: str | torch.device | None = None) -> Musicnn:
    """The pretrained musicnn `name` ("MSD_musicnn" or "MTT_musicnn"), frozen, in eval mode, on `device`.

    `device` None means `cuda` when present, else `cpu`. Raises ModuleNotFoundError naming
    the pip command when the `musicnn` package is not installed.
    """
    dist, files = checkpoint_files(name)
    index = Path(dist.locate_file(files["index"]))
    checkpoint = read_checkpoint(str(index)[: -len(".index")])
    model = Musicnn(n_classes=len(LABELS[name]))
    model.load_state_dict(tf_state_dict(checkpoint))
    model.requires_grad_(False)
    return model.eval().to(device or default_device())


# --------------------------------------------------------------------------- features


def musicnn_outputs(
    model: Musicnn, patches: torch.Tensor | np.ndarray, precision: str = "auto"
) -> dict[str, torch.Tensor]:
    """All of musicnn's outputs for a batch of patches, float32 on the model's device.

    patches: `(batch, 187, 96)` log-mel (see `musicnn_patches`).
    precision: "auto" | "fp32" | "bf16", see `mvnb.device.resolve_precision`.
    Returns the model's outputs (`taggram` `(batch, 50)`, `max_pool` and `mean_pool`
    `(batch, 753)`, `penultimate` `(batch, 200)`) and `pooled` = `max_pool ‖ mean_pool` `(batch, 1506)`.
    """
    device = next(model.parameters()).device
    patches = torch.as_tensor(patches, dtype=torch.float32).to(device)
    if patches.ndim != 3 or patches.shape[2] != N_MELS:
        raise ValueError(
            f"musicnn expects (batch, {PATCH_FRAMES}, {N_MELS}) log-mel patches, got shape "
            f"{tuple(patches.shape)}"
        )
    with torch.inference_mode(), autocast_for(resolve_precision(precision, device), device):
        outputs = {key: value.float() for key, value in model(patches).items()}
    outputs["pooled"] = torch.cat([outputs["max_pool"], outputs["mean_pool"]], dim=1)
    return outputs


def musicnn_features(
    model: Musicnn, patches: torch.Tensor | np.ndarray, layer: str = DEFAULT_LAYER, precision: str = "auto"
) -> torch.Tensor:
    """The audio feature of each patch, float32 on the model's device.

    patches: `(batch, 187, 96)` log-mel (see `musicnn_patches`).
    layer: "pooled" → `max_pool ‖ mean_pool` `(batch, 1506)` (the default, as the authors
        used); "penultimate" → `(batch, 200)`; "taggram" → `(batch, 50)`.
    precision: "auto" | "fp32" | "bf16", see `mvnb.device.resolve_precision`.
    """
    if layer not in LAYER_DIMS:
        raise ValueError(f"unknown musicnn layer {layer!r}; choose one of {', '.join(LAYER_DIMS)}")
    return musicnn_outputs(model, patches, precision)[layer]
