"""The contrastive loss against a slow reference, its symmetry, analytic cases and τ's runaway."""

import math

import numpy as np
import pytest
import torch

from mvnb.loss import TAU_MIN, ContrastiveLoss, contrastive_loss, loss_over_temperatures


def reference_loss(audio: np.ndarray, video: np.ndarray, tau: float, exclude_positive: bool) -> float:
    """Eq. 3–5 written out term by term with Python loops."""
    n = len(audio)

    def cos(x, y):
        return float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y)))

    total = 0.0
    for j in range(n):
        for anchor, others in ((audio, video), (video, audio)):
            positive = math.exp(cos(anchor[j], others[j]) / tau)
            denominator = sum(
                math.exp(cos(anchor[j], others[k]) / tau) for k in range(n) if k != j or not exclude_positive
            )
            total += -math.log(positive / denominator)
    return total / n


@pytest.mark.parametrize("exclude_positive", [True, False])
@pytest.mark.parametrize("batch", [2, 3, 17, 64])
@pytest.mark.parametrize("dim,tau", [(1, 1.0), (8, 0.3), (33, 0.07), (128, 2.0)])
def test_matches_reference(exclude_positive, batch, dim, tau):
    rng = np.random.default_rng(batch * 1000 + dim)
    audio, video = rng.normal(size=(batch, dim)), rng.normal(size=(batch, dim)) + 0.5
    got = contrastive_loss(torch.tensor(audio), torch.tensor(video), tau, exclude_positive)
    assert float(got) == pytest.approx(reference_loss(audio, video, tau, exclude_positive), rel=1e-9)


@pytest.mark.parametrize("exclude_positive", [True, False])
def test_symmetric_in_modalities(exclude_positive):
    audio, video = torch.randn(23, 16, dtype=torch.float64), torch.randn(23, 16, dtype=torch.float64)
    forward = contrastive_loss(audio, video, 0.5, exclude_positive)
    assert float(forward) == pytest.approx(
        float(contrastive_loss(video, audio, 0.5, exclude_positive)), rel=1e-12
    )


@pytest.mark.parametrize("n", [2, 5, 100])
@pytest.mark.parametrize("tau", [1.0, 0.1])
def test_equal_similarities_give_log_of_the_denominator_size(n, tau):
    same = torch.ones(n, 7, dtype=torch.float64)
    assert float(contrastive_loss(same, same, tau, exclude_positive=True)) == pytest.approx(
        2 * math.log(n - 1), abs=1e-12
    )
    assert float(contrastive_loss(same, same, tau, exclude_positive=False)) == pytest.approx(
        2 * math.log(n), abs=1e-12
    )


def test_scale_invariant_inputs():
    audio, video = torch.randn(9, 4, dtype=torch.float64), torch.randn(9, 4, dtype=torch.float64)
    assert float(contrastive_loss(3 * audio, 0.2 * video)) == pytest.approx(
        float(contrastive_loss(audio, video)), rel=1e-12
    )


@pytest.mark.parametrize("batch", [0, 1])
def test_batch_below_two_is_a_clear_error(batch):
    with pytest.raises(ValueError, match="at least 2"):
        contrastive_loss(torch.randn(batch, 4), torch.randn(batch, 4))


def test_mismatched_shapes_are_a_clear_error():
    with pytest.raises(ValueError, match="one shape"):
        contrastive_loss(torch.randn(4, 3), torch.randn(5, 3))


def test_module_fixed_temperature_matches_function():
    audio, video = torch.randn(6, 5), torch.randn(6, 5)
    module = ContrastiveLoss(temperature=0.3, exclude_positive=False)
    assert not list(module.parameters())
    assert module.temperature == pytest.approx(0.3)
    assert float(module(audio, video)) == pytest.approx(
        float(contrastive_loss(audio, video, 0.3, False)), rel=1e-6
    )


def test_learnable_temperature_starts_at_clip_init_and_is_clamped():
    module = ContrastiveLoss(learnable=True)
    assert module.temperature == pytest.approx(0.07)
    with torch.no_grad():
        module.log_tau.fill_(-20.0)
    module.clamp_()
    assert module.temperature == pytest.approx(TAU_MIN)


def fit_temperature(audio, video, exclude_positive, steps=150):
    """Adam on log τ alone, clamping after each step as the trainer does; returns the final τ."""
    module = ContrastiveLoss(learnable=True, exclude_positive=exclude_positive)
    optimiser = torch.optim.Adam(module.parameters(), lr=0.05)
    for _ in range(steps):
        optimiser.zero_grad()
        module(audio, video).backward()
        optimiser.step()
        module.clamp_()
    return module.temperature


def test_paper_form_runs_a_learnable_temperature_to_its_clamp(one_torch_thread):
    """Embeddings that retrieve about 3 in 4 positives at rank 1, as a partly trained model
    does: the CLIP form settles at an interior τ, the paper's form runs to the clamp."""
    gen = torch.Generator().manual_seed(0)
    audio = torch.randn(64, 16, generator=gen)
    video = audio + torch.randn(64, 16, generator=gen)
    assert fit_temperature(audio, video, exclude_positive=True) == pytest.approx(TAU_MIN)
    assert fit_temperature(audio, video, exclude_positive=False) > 3 * TAU_MIN


def test_loss_over_temperatures_shows_the_unbounded_paper_form():
    gen = torch.Generator().manual_seed(0)
    audio = torch.randn(64, 16, generator=gen)
    video = audio + torch.randn(64, 16, generator=gen)
    taus = np.array([1.0, 0.1, 0.01, 0.001])
    paper = loss_over_temperatures(audio, video, taus, exclude_positive=True)
    clip = loss_over_temperatures(audio, video, taus, exclude_positive=False)
    assert np.all(np.diff(paper) < 0) and paper[-1] < -100
    assert np.all(clip > 0) and clip[-1] > clip[1]
