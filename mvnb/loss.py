"""The bidirectional contrastive loss of the paper (Eq. 3–5), and its CLIP/InfoNCE form.

For a batch of N pairs `(a_j, v_j)`, with cosine similarity `s_jk = cos(a_j, v_k)` and
temperature τ, the audio-anchored term of pair j is

    −log( exp(s_jj/τ) / Σ_{k≠j} exp(s_jk/τ) )

and the video-anchored term is the same over the column `s_kj`. The loss is the batch mean
of the *sum* of both terms. As the paper writes it, the positive is excluded from the
denominator (`exclude_positive=True`); the CLIP/InfoNCE form keeps it (`False`).

The paper's form is the CLIP form plus log(1 − p), p being the softmax weight of the
positive, so it is unbounded below as τ → 0: once positives beat the hardest negatives on
the whole, the margin is rewarded without limit and a learnable τ runs to its clamp. The
CLIP form is bounded below by 0 and rises again as τ → 0 as soon as one positive is beaten,
so τ settles unless the batch is perfectly separable.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

TAU_INIT = 0.07
TAU_MIN = 0.01
TAU_MAX = 1.0


def contrastive_terms(
    audio: torch.Tensor,
    video: torch.Tensor,
    temperature: float | torch.Tensor = 1.0,
    exclude_positive: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair loss terms `(a2v, v2a)`, each `(batch,)`.

    audio, video: `(batch, dim)` embeddings of paired segments (row j of each belongs to the
        same segment), not necessarily normalised; batch ≥ 2.
    temperature: τ > 0, a float or a scalar tensor (learnable).
    """
    if audio.ndim != 2 or video.ndim != 2 or audio.shape != video.shape:
        raise ValueError(
            f"need two (batch, dim) tensors of one shape, got {tuple(audio.shape)} and {tuple(video.shape)}"
        )
    n = audio.shape[0]
    if n < 2:
        raise ValueError(f"a contrastive loss needs a batch of at least 2 pairs (negatives), got {n}")
    # Dividing the (batch, dim) video side by τ costs less than dividing the (batch, batch) logits.
    logits = F.normalize(audio, dim=1) @ (F.normalize(video, dim=1) / temperature).T
    positives = logits.diagonal()
    if exclude_positive:
        eye = torch.eye(n, dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(eye, float("-inf"))
    a2v = torch.logsumexp(logits, dim=1) - positives
    v2a = torch.logsumexp(logits, dim=0) - positives
    return a2v, v2a


def contrastive_loss(
    audio: torch.Tensor,
    video: torch.Tensor,
    temperature: float | torch.Tensor = 1.0,
    exclude_positive: bool = True,
) -> torch.Tensor:
    """The scalar loss L of Eq. 5: mean over the batch of the a2v plus the v2a term.

    audio, video: `(batch, dim)`, batch ≥ 2. `exclude_positive=False` gives the CLIP form.
    """
    a2v, v2a = contrastive_terms(audio, video, temperature, exclude_positive)
    return (a2v + v2a).mean()


class ContrastiveLoss(nn.Module):
    """`contrastive_loss` with a fixed or a learnable temperature.

    A learnable τ is stored as `log_tau` (init `log(tau_init)`) and kept in
    `[TAU_MIN, TAU_MAX]` by `clamp_()`, which the trainer calls after every optimiser step.
    """

    def __init__(
        self,
        temperature: float = 1.0,
        learnable: bool = False,
        exclude_positive: bool = True,
        tau_init: float = TAU_INIT,
    ) -> None:
        super().__init__()
        self.exclude_positive = exclude_positive
        start = tau_init if learnable else temperature
        if start <= 0:
            raise ValueError(f"temperature must be > 0, got {start}")
        log_tau = torch.tensor(math.log(start))
        if learnable:
            self.log_tau = nn.Parameter(log_tau)
        else:
            self.register_buffer("log_tau", log_tau)
        self.learnable = learnable
        self.clamp_()

    @property
    def temperature(self) -> float:
        """The current τ."""
        return float(self.log_tau.detach().exp())

    @torch.no_grad()
    def clamp_(self) -> None:
        """Keep a learnable τ within `[TAU_MIN, TAU_MAX]` (a fixed τ is left alone)."""
        if self.learnable:
            self.log_tau.clamp_(math.log(TAU_MIN), math.log(TAU_MAX))

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        """Scalar loss of `(batch, dim)` audio and video embeddings."""
        return contrastive_loss(audio, video, self.log_tau.exp(), self.exclude_positive)


def loss_over_temperatures(
    audio: torch.Tensor | np.ndarray,
    video: torch.Tensor | np.ndarray,
    temperatures: np.ndarray,
    exclude_positive: bool = True,
) -> np.ndarray:
    """L at each τ in `temperatures` `(T,)` for fixed `(batch, dim)` embeddings; returns `(T,)`.

    Plotted for both forms, it shows why a learnable τ behaves as it does: the paper's form
    falls without bound as τ → 0 whenever positives beat the hardest negatives on the whole.
    """
    audio, video = torch.as_tensor(audio, dtype=torch.float64), torch.as_tensor(video, dtype=torch.float64)
    with torch.no_grad():
        return np.array(
            [float(contrastive_loss(audio, video, float(t), exclude_positive)) for t in temperatures]
        )
