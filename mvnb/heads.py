"""Projection heads that map frozen audio and video features into a shared embedding space.

The paper's head, one per modality: dense 512 → ReLU → dropout 0.3 → dense 256 → sigmoid.
Variants of Experiment 1: other widths and depths, no output activation, a single head that
maps video features to the audio feature dimension (audio features used as they are), and
initialisation from an autoencoder trained on the modality's features.

Input standardisation (`input_norm="standard"`, not in the paper) puts a `Standardise` module
in front of each head, holding the training split's per-dimension mean and sd as buffers: they
are saved with the heads, so every later use of a head (embedding the corpus, a reloaded run,
a cold-start query) standardises exactly as training did. With `"none"` the head sees the raw
features, as in the paper.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import torch
from torch import nn

from mvnb.standardise import Standardise

OUTPUTS = ("sigmoid", "none")
INPUT_NORMS = ("none", "standard")


class Dropout(nn.Dropout):
    """Inverted dropout, as `nn.Dropout`, with its mask drawn by `torch.rand`.

    On CPU, `nn.Dropout` draws with a scalar `bernoulli_` that costs about twice as much as the
    vectorised `rand` (about 5 % of a paper-sized training step).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * ((torch.rand_like(x) >= self.p) * (1.0 / (1.0 - self.p)))


def input_layer(dim: int, input_norm: str) -> nn.Module:
    """`Standardise(dim)` for "standard" (statistics to be set before training), `nn.Identity` for "none"."""
    if input_norm not in INPUT_NORMS:
        raise ValueError(f"unknown input_norm {input_norm!r}; choose one of {', '.join(INPUT_NORMS)}")
    return Standardise(dim) if input_norm == "standard" else nn.Identity()


class ProjectionHead(nn.Module):
    """`(batch, in_dim)` → `(batch, out_dim)`: the input layer (`norm`), [dense → ReLU → dropout] per
    hidden width, then dense → output."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: tuple[int, ...] = (512,),
        dropout: float = 0.3,
        output: str = "sigmoid",
        input_norm: str = "none",
    ) -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"unknown output activation {output!r}; choose one of {', '.join(OUTPUTS)}")
        self.norm = input_layer(in_dim, input_norm)
        widths = (in_dim, *hidden)
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(widths):
            layers += [nn.Linear(a, b), nn.ReLU(), Dropout(dropout)]
        layers.append(nn.Linear(widths[-1], out_dim))
        if output == "sigmoid":
            layers.append(nn.Sigmoid())
        self.layers = nn.Sequential(*layers)
        self.in_dim, self.out_dim, self.hidden = in_dim, out_dim, tuple(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.norm(x))


class ProjectionHeads(nn.Module):
    """The audio and the video head; the single-head variant's audio side is only its input layer."""

    def __init__(self, audio: nn.Module, video: nn.Module) -> None:
        super().__init__()
        self.audio, self.video = audio, video

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(batch, audio_dim)`, `(batch, video_dim)` → two `(batch, embedding_dim)` embeddings."""
        return self.audio(audio), self.video(video)

    def input_norms(self) -> tuple[nn.Module, nn.Module]:
        """The input layer (`Standardise` or `nn.Identity`) of the audio and of the video side."""
        return tuple(getattr(side, "norm", side) for side in (self.audio, self.video))


def build_heads(
    audio_dim: int,
    video_dim: int,
    hidden: tuple[int, ...] = (512,),
    embedding_dim: int = 256,
    dropout: float = 0.3,
    output: str = "sigmoid",
    single_head: bool = False,
    input_norm: str = "none",
) -> ProjectionHeads:
    """Both heads of one configuration.

    single_head: no audio head; the video head maps to `audio_dim` instead of `embedding_dim`,
        so the video embedding lands in the space of the audio features (standardised ones with
        `input_norm="standard"`: the audio side is then its input layer alone).
    """
    if single_head:
        return ProjectionHeads(
            input_layer(audio_dim, input_norm),
            ProjectionHead(video_dim, audio_dim, hidden, dropout, output, input_norm),
        )
    return ProjectionHeads(
        ProjectionHead(audio_dim, embedding_dim, hidden, dropout, output, input_norm),
        ProjectionHead(video_dim, embedding_dim, hidden, dropout, output, input_norm),
    )


def mirror_decoder(head: ProjectionHead) -> nn.Sequential:
    """A decoder `(batch, out_dim)` → `(batch, in_dim)` with the head's hidden widths reversed."""
    widths = (head.out_dim, *reversed(head.hidden), head.in_dim)
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def pretrain_autoencoder(
    head: ProjectionHead, batches: Callable[[int], Iterable[torch.Tensor]], epochs: int, lr: float = 1e-3
) -> list[float]:
    """Train `head` as the encoder of an autoencoder on its modality's features, in place.

    batches(epoch): yields `(batch, in_dim)` float tensors (raw features) on the head's device.
    The decoder (`mirror_decoder`) reconstructs the head's input as its input layer gives it
    (standardised features, with `input_norm="standard"`). It is thrown away afterwards; the
    head keeps the weights that initialise contrastive training. Returns the mean
    reconstruction MSE of each epoch.
    """
    device = next(head.parameters()).device
    decoder = mirror_decoder(head).to(device)
    params = [*head.parameters(), *decoder.parameters()]
    optimiser = torch.optim.Adam(params, lr=lr)
    head.train()
    losses = []
    for epoch in range(epochs):
        total, count = 0.0, 0
        for x in batches(epoch):
            loss = nn.functional.mse_loss(decoder(head(x)), head.norm(x))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total, count = total + loss.item() * len(x), count + len(x)
        losses.append(total / max(count, 1))
    return losses
