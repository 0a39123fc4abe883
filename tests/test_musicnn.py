"""musicnn in PyTorch: equivalence to the original TensorFlow model, log-mel input, features, provenance.

The golden fixture tests/fixtures/musicnn_golden.npz holds outputs of the original TF graph
with the packaged checkpoints (made by tools/make_musicnn_golden.py in a scratch venv); no
TensorFlow is needed here.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mvnb.encoders.musicnn import (
    LAYER_DIMS,
    TemporalBlock,
    TimbralBlock,
    load_musicnn,
    log_mel,
    musicnn_features,
    musicnn_outputs,
    musicnn_patches,
)
from mvnb.encoders.musicnn_weights import MODELS, musicnn_provenance

GOLDEN = Path(__file__).parent / "fixtures" / "musicnn_golden.npz"


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as archive:
        return dict(archive)


@pytest.fixture(scope="module", params=MODELS)
def model(request):
    return request.param, load_musicnn(request.param, device="cpu")


# ---------------------------------------------------------------- equivalence with TensorFlow


def test_matches_the_original_tensorflow_model(model, golden):
    name, net = model
    with torch.inference_mode():
        out = net(torch.from_numpy(golden["patches"]))
    np.testing.assert_allclose(out["taggram"].numpy(), golden[f"{name}/taggram"], rtol=0, atol=1e-4)
    for key in ("max_pool", "mean_pool", "penultimate"):
        # relative 1e-3; the absolute floor (1e-6 of the features' range) covers values near zero
        np.testing.assert_allclose(
            out[key].numpy(), golden[f"{name}/{key}"], rtol=1e-3, atol=1e-4, err_msg=key
        )


def test_outputs_have_the_documented_shapes(model, golden):
    name, net = model
    with torch.inference_mode():
        out = net(torch.from_numpy(golden["patches"][:3]))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "taggram": (3, 50),
        "max_pool": (3, 753),
        "mean_pool": (3, 753),
        "penultimate": (3, 200),
    }
    assert not net.training and not any(p.requires_grad for p in net.parameters())


def test_each_patch_is_encoded_independently_of_its_batch(model, golden):
    _, net = model
    patches = torch.from_numpy(golden["patches"][:2])
    with torch.inference_mode():
        together = net(patches)["penultimate"]
        alone = torch.cat([net(patches[i : i + 1])["penultimate"] for i in range(len(patches))])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- the front end's cheaper computing order


def tf_order(block, x: torch.Tensor) -> torch.Tensor:
    """The TF graph's order, written plainly: padded conv → ReLU → batch norm → max over mel bands."""
    length = block.conv.kernel_size[0]
    before = (length - 1) // 2  # TF 'same': the extra frame of an even kernel goes after
    y = torch.relu(
        F.conv2d(F.pad(x, (0, 0, before, length - 1 - before)), block.conv.weight, block.conv.bias)
    )
    bn = block.bn
    y = (y - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + 1e-3)
    return (y * bn.weight[:, None, None] + bn.bias[:, None, None]).amax(dim=3)


@settings(max_examples=12, deadline=None)
@given(
    kind=st.sampled_from(["timbral", "temporal"]),
    size=st.sampled_from([1, 5, 8, 16]),
    frames=st.integers(20, 60),
    seed=st.integers(0, 2**31 - 1),
)
def test_front_end_blocks_equal_the_tf_order(kind, size, frames, seed):
    torch.manual_seed(seed)
    block = TimbralBlock(6, size) if kind == "timbral" else TemporalBlock(6, 8 * size)
    with torch.no_grad():
        for tensor in (block.conv.bias, block.bn.weight, block.bn.bias, block.bn.running_mean):
            tensor.normal_()  # gamma of both signs
        block.bn.running_var.uniform_(0.1, 2)
    block.eval()
    x = torch.randn(3, 1, frames, 96)
    with torch.no_grad():
        torch.testing.assert_close(block(x), tf_order(block, x), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- log-mel input


def librosa_log_mel(audio: np.ndarray) -> np.ndarray:
    """musicnn's extractor with current librosa, the log done in float32."""
    librosa = pytest.importorskip("librosa")
    mel = librosa.feature.melspectrogram(y=audio, sr=16000, hop_length=256, n_fft=512, n_mels=96).T
    return np.log10(np.float32(10000) * mel.astype(np.float16).astype(np.float32) + np.float32(1))


def signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(48000) / 16000
    return {
        "noise": 0.3 * rng.standard_normal(48000),
        "sine": np.sin(2 * np.pi * 440 * t),
        "chirp": 0.8 * np.sin(2 * np.pi * (50 + 2500 * t) * t),
        "clicks": (np.arange(40000) % 4000 == 0) * 0.9,
        "short": rng.uniform(-1, 1, 700),
        "silence": np.zeros(16000),
    }


@pytest.mark.parametrize("signal", list(signals()))
def test_log_mel_matches_librosa(signal):
    audio = signals()[signal].astype(np.float32)
    expected = librosa_log_mel(audio)
    actual = log_mel(audio).numpy()
    assert actual.shape == expected.shape == (1 + len(audio) // 256, 96)
    assert actual.dtype == np.float32
    difference = np.abs(actual - expected)
    assert difference.max() <= 2e-3 and difference.mean() <= 1e-5, (difference.max(), difference.mean())


def test_log_mel_of_a_batch_is_the_log_mel_of_each():
    waves = torch.from_numpy(np.stack([signals()["noise"], signals()["chirp"]]).astype(np.float32))
    torch.testing.assert_close(log_mel(waves), torch.stack([log_mel(w) for w in waves]))


def test_log_mel_saturates_instead_of_overflowing():
    loud = 1000 * np.sin(2 * np.pi * 100 * np.arange(16000) / 16000)
    assert torch.isfinite(log_mel(loud)).all()


def test_patch_is_the_first_187_frames_of_the_window():
    window = torch.from_numpy(signals()["chirp"].astype(np.float32))
    mel = log_mel(window)
    assert mel.shape == (188, 96)
    torch.testing.assert_close(musicnn_patches(window), mel[:187])
    assert musicnn_patches(torch.stack([window, -window])).shape == (2, 187, 96)


@pytest.mark.parametrize("shape", [(47999,), (2, 48001), (2, 2, 48000)])
def test_patch_refuses_other_lengths(shape):
    with pytest.raises(ValueError, match="48000 samples"):
        musicnn_patches(torch.zeros(shape))


# ---------------------------------------------------------------- features and precision


@pytest.fixture(scope="module")
def outputs(model, golden) -> dict[str, dict[str, torch.Tensor]]:
    """musicnn_outputs of the golden patches in each precision."""
    _, net = model
    return {precision: musicnn_outputs(net, golden["patches"], precision) for precision in ("fp32", "bf16")}


def test_feature_layers(model, golden, outputs):
    _, net = model
    out = outputs["fp32"]
    assert {k: tuple(out[k].shape) for k in LAYER_DIMS} == {k: (4, d) for k, d in LAYER_DIMS.items()}
    torch.testing.assert_close(out["pooled"], torch.cat([out["max_pool"], out["mean_pool"]], dim=1))
    torch.testing.assert_close(
        musicnn_features(net, golden["patches"][:1], "taggram", "fp32"), out["taggram"][:1]
    )


def test_backend_recovers_the_taggram_from_stored_pooled_features(model, outputs):
    _, net = model
    pooled = outputs["fp32"]["pooled"].to(torch.float16).float()  # as a float16 feature store keeps them
    with torch.inference_mode():
        tags = net.backend(*pooled.split(753, dim=1))["taggram"]
    torch.testing.assert_close(tags, outputs["fp32"]["taggram"], rtol=0, atol=2e-3)


@pytest.mark.parametrize("layer", list(LAYER_DIMS))
def test_bf16_features_are_faithful_to_fp32(outputs, layer):
    fp32, bf16 = outputs["fp32"][layer], outputs["bf16"][layer]
    assert bf16.dtype == torch.float32
    assert F.cosine_similarity(fp32, bf16, dim=1).min() >= 0.999


def test_bad_requests_are_refused(model):
    _, net = model
    with pytest.raises(ValueError, match="unknown musicnn layer 'cnn1'"):
        musicnn_features(net, torch.zeros(1, 187, 96), layer="cnn1")
    with pytest.raises(ValueError, match=r"\(batch, 187, 96\)"):
        musicnn_features(net, torch.zeros(187, 96))
    with pytest.raises(ValueError, match="precision must be one of"):
        musicnn_features(net, torch.zeros(1, 187, 96), precision="fp64")
    with pytest.raises(ValueError, match="fp16 autocast is for CUDA"):
        musicnn_features(net, torch.zeros(1, 187, 96), precision="fp16")


@pytest.mark.cuda
def test_cuda_features_agree_with_cpu(golden):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cpu = musicnn_features(load_musicnn(device="cpu"), golden["patches"], precision="fp32")
    for precision in ("fp32", "auto"):
        gpu = musicnn_features(load_musicnn(device="cuda"), golden["patches"], precision=precision).cpu()
        assert F.cosine_similarity(cpu, gpu, dim=1).min() >= 0.999


# ---------------------------------------------------------------- weights and provenance


def test_missing_package_names_the_pip_command(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps musicnn==0.1.0"):
        load_musicnn()
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps musicnn==0.1.0"):
        musicnn_provenance()


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="MSD_musicnn, MTT_musicnn"):
        load_musicnn("MSD_vgg")
