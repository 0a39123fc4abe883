"""R(2+1)D-18: weights and their provenance (Kinetics, seeded random fallback, local files),
Kinetics preprocessing against torchvision's own transform, and fast-path fidelity."""

import types
import urllib.error
import warnings

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.models.video import R2Plus1D_18_Weights, r2plus1d_18

from mvnb.device import resolve_precision
from mvnb.encoders import r2plus1d
from mvnb.io import sha256_file


def clips(batch: int = 2, frames: int = 2, seed: int = 0) -> torch.Tensor:
    """`(batch, frames, 112, 112, 3)` uint8 smooth seeded clips."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch * frames, 3, 8, 8, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(112, 112), mode="bilinear", align_corners=False)
    return (
        (smooth * 255)
        .round()
        .to(torch.uint8)
        .view(batch, frames, 3, 112, 112)
        .permute(0, 1, 3, 4, 2)
        .contiguous()
    )


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty torch hub cache and no network."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def no_network(url, dst, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "hub" / "checkpoints"


def test_random_weights_are_seeded_reproducible_and_named_as_such():
    model, prov = r2plus1d.load_r2plus1d("random", seed=7, device="cpu")
    again, prov_again = r2plus1d.load_r2plus1d("random", seed=7, device="cpu")
    other, prov_other = r2plus1d.load_r2plus1d("random", seed=8, device="cpu")
    assert prov["weights"] == "random" and prov["seed"] == 7 and prov["sha256_of"] == "state_dict"
    assert prov["sha256"] == prov_again["sha256"] != prov_other["sha256"]
    torch.manual_seed(7)
    assert_same_features(model, r2plus1d_18().state_dict())  # torchvision's init under the same seed
    out = r2plus1d.r2plus1d_features(again, clips(), precision="fp32")
    assert out.shape == (2, r2plus1d.FEATURE_DIM) and out.dtype == torch.float32
    torch.testing.assert_close(out, r2plus1d.r2plus1d_features(model, clips(), precision="fp32"))
    assert not any(p.requires_grad for p in model.parameters()) and not model.training
    assert not any(
        isinstance(m, torch.nn.BatchNorm3d) for m in model.modules()
    )  # folded into the convolutions


def test_kinetics_unavailable_falls_back_to_seeded_random_loudly(offline):
    with pytest.warns(UserWarning, match="RANDOMLY INITIALISED"):
        model, prov = r2plus1d.load_r2plus1d("kinetics400", seed=3, device="cpu")
    assert prov["weights"] == "random" and prov["requested"] == "kinetics400" and prov["seed"] == 3
    assert "could not be downloaded" in prov["fallback"]
    assert prov["sha256"] == r2plus1d.load_r2plus1d("random", seed=3, device="cpu")[1]["sha256"]


def test_kinetics_unavailable_fails_clearly_when_asked_strictly(offline):
    with pytest.raises(r2plus1d.WeightsUnavailable, match="download.pytorch.org.*--video-weights PATH"):
        r2plus1d.load_r2plus1d("kinetics400", strict=True, device="cpu")


def assert_same_features(model: torch.nn.Module, state: dict) -> None:
    """`model` computes what torchvision's r2plus1d_18 with `state` (classifier removed) computes."""
    reference = r2plus1d_18()
    reference.load_state_dict(state)
    reference.fc = torch.nn.Identity()
    x = clips()
    with torch.inference_mode():
        expected = reference.eval()(r2plus1d.normalise_clips(x))
    torch.testing.assert_close(
        r2plus1d.r2plus1d_features(model, x, precision="fp32"), expected, rtol=1e-4, atol=1e-5
    )


def fake_kinetics_file(folder, seed: int) -> str:
    """Save the weights of a seeded full r2plus1d_18 (with its 400-way classifier) under a hub
    name whose hash prefix matches its bytes, as torch hub names files; returns that name."""
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "tmp.pth"
    torch.save(r2plus1d_18().state_dict(), tmp)
    name = f"r2plus1d_18-{sha256_file(tmp)[:8]}.pth"
    tmp.rename(folder / name)
    return name


def test_kinetics_weights_come_from_the_hub_cache_with_their_file_sha256(offline, monkeypatch):
    name = fake_kinetics_file(offline, seed=5)
    monkeypatch.setattr(
        r2plus1d, "KINETICS_WEIGHTS", types.SimpleNamespace(url=f"https://example.invalid/{name}")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model, prov = r2plus1d.load_r2plus1d("kinetics400", strict=True, device="cpu")
    assert prov["weights"] == "kinetics400" and prov["seed"] is None and prov["fallback"] is None
    assert prov["sha256"] == sha256_file(offline / name)
    assert_same_features(model, torch.load(offline / name, weights_only=True))


def test_a_corrupt_cached_checkpoint_is_refused(offline, monkeypatch):
    offline.mkdir(parents=True)
    (offline / "r2plus1d_18-91a641e6.pth").write_bytes(b"truncated")
    with pytest.raises(r2plus1d.WeightsUnavailable, match="delete it"):
        r2plus1d.load_r2plus1d("kinetics400", strict=True, device="cpu")


def test_a_local_pth_loads_with_wrappers_and_prefixes_and_bad_files_are_refused(tmp_path):
    torch.manual_seed(11)
    full = r2plus1d_18()
    path = tmp_path / "mine.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in full.state_dict().items()}}, path)
    model, prov = r2plus1d.load_r2plus1d(path, device="cpu")
    assert prov["weights"] == "file" and prov["sha256"] == sha256_file(path)
    assert_same_features(model, full.state_dict())
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not an r2plus1d_18 state dict"):
        r2plus1d.load_r2plus1d(tmp_path / "other.pth", device="cpu")
    with pytest.raises(FileNotFoundError, match="kinetics400, random, or the path"):
        r2plus1d.load_r2plus1d(tmp_path / "missing.pth", device="cpu")


def test_view_0_input_is_the_kinetics_resize_then_centre_crop():
    """Cutting the centre box from the full frame and resizing it to 112 equals torchvision's
    Kinetics preprocessing (resize to 128×171, centre crop 112, mean/std) up to resampling,
    with antialiasing on (torchvision's preset turns it off; a 768×432 frame would alias)."""
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(3, 3, 12, 20, generator=g)
    frames = (
        (
            torch.nn.functional.interpolate(
                coarse, size=(432, 768), mode="bicubic", align_corners=False
            ).clamp(0, 1)
            * 255
        )
        .round()
        .to(torch.uint8)
    )  # (T, 3, H, W)
    preset = R2Plus1D_18_Weights.KINETICS400_V1.transforms()
    resized = TF.center_crop(TF.resize(frames, preset.resize_size, antialias=True), preset.crop_size)
    reference = TF.normalize(resized.float() / 255, preset.mean, preset.std).permute(
        1, 0, 2, 3
    )  # (3, T, 112, 112)
    ours = r2plus1d.normalise_clips(
        r2plus1d.crop_frames(frames.permute(0, 2, 3, 1), r2plus1d.centre_box())[None]
    )[0]
    assert ours.shape == reference.shape
    assert (ours - reference).abs().mean() < 0.02 and (ours - reference).abs().max() < 0.1


def test_crop_frames_cuts_the_box_and_keeps_uint8():
    frames = np.zeros((2, 90, 160, 3), np.uint8)
    frames[:, 45:, 80:] = 200  # bottom-right quadrant bright
    out = r2plus1d.crop_frames(frames, (0.5, 0.5, 0.5, 0.5), size=16)
    assert out.shape == (2, 16, 16, 3) and out.dtype == torch.uint8 and (out == 200).all()
    assert (r2plus1d.crop_frames(frames, (0.0, 0.0, 0.5, 0.5), size=16) == 0).all()


def fidelity(device: str) -> float:
    """Min cosine between fast-path and fp32 features of seeded random weights on `device`."""
    model, _ = r2plus1d.load_r2plus1d("random", seed=0, device=device)
    x = clips(batch=2, frames=8, seed=1)
    fast = r2plus1d.r2plus1d_features(model, x, precision="auto")
    full = r2plus1d.r2plus1d_features(model, x, precision="fp32")
    return torch.nn.functional.cosine_similarity(fast, full, dim=1).min().item()


@pytest.mark.skipif(
    resolve_precision("auto", "cpu") == "fp32", reason="this CPU has no native bf16: the fast path is fp32"
)
def test_cpu_fast_path_is_faithful_to_fp32():
    assert fidelity("cpu") >= 0.999


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_amp_is_faithful_to_fp32():
    assert fidelity("cuda") >= 0.999
