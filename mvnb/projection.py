"""The projection heads of a training configuration: built, and applied to cached features.

`heads_of` and `loss_of` build the (untrained) heads and the loss of a `train.TrainConfig`;
`project` runs both heads on a batch, `embed_modality` and `embed_segments` embed chosen segments
block by block, in eval mode. Training (`mvnb.fit`), a run's embeddings.npz and new videos
(`mvnb.neighbours`, `mvnb.embed`) all embed through these, so their embeddings agree.
`precision="bf16"` runs the heads under bfloat16 autocast, about twice as fast on CPUs with
AVX512-BF16 (see benchmarks/bench_train.py); the outputs stay float32.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from .device import autocast_for
from .heads import ProjectionHead, ProjectionHeads, build_heads
from .loss import ContrastiveLoss

if TYPE_CHECKING:
    from .train import TrainConfig

EMBED_BATCH = 4096


def heads_of(config: TrainConfig, audio_dim: int, video_dim: int) -> ProjectionHeads:
    """The (untrained) heads of `config` for features of these dimensions."""
    return build_heads(
        audio_dim,
        video_dim,
        config.hidden,
        config.embedding_dim,
        config.dropout,
        config.output,
        config.single_head,
        config.input_norm,
    )


def loss_of(config: TrainConfig) -> ContrastiveLoss:
    """The loss module of `config`, τ at its start."""
    return ContrastiveLoss(
        config.temperature, config.learnable_temperature, config.exclude_positive, config.tau_init
    )


def to_tensor(features, rows: np.ndarray, views: np.ndarray | int, device: torch.device) -> torch.Tensor:
    """`features[rows, views]` as float32 `(len(rows), dim)` on `device`; reads only those rows."""
    return torch.from_numpy(np.asarray(features[rows, views], dtype=np.float32)).to(device)


def project(
    heads: ProjectionHeads, audio: torch.Tensor, video: torch.Tensor, precision: str = "fp32"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both heads on `(batch, dim)` features; with "bf16", under bfloat16 autocast, returned as float32."""
    with autocast_for(precision, audio.device):
        embedded = heads(audio, video)
    return embedded[0].float(), embedded[1].float()


def embedded_dim(head: torch.nn.Module, features) -> int:
    """The width of `head`'s embeddings of `features` `(n, views, dim)`: its output, or `dim` where the
    head is the identity (the audio side of a single head)."""
    return head.out_dim if isinstance(head, ProjectionHead) else features.shape[2]


@torch.no_grad()
def embed_modality(
    head: torch.nn.Module,
    features,
    rows: np.ndarray | None = None,
    view: int = 0,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    batch_size: int = EMBED_BATCH,
) -> Iterator[np.ndarray]:
    """Embeddings of `features[rows, view]` by `head` in eval mode, yielded as float32 `(≤ batch_size, dim)`
    blocks.

    rows: segment indices, all segments when None.
    """
    head.eval()
    device = torch.device(device)
    rows = np.arange(features.shape[0]) if rows is None else rows
    for lo in range(0, len(rows), batch_size):
        with autocast_for(precision, device):
            embedded = head(to_tensor(features, rows[lo : lo + batch_size], view, device))
        yield embedded.float().cpu().numpy()


def embed_segments(
    heads: ProjectionHeads,
    audio,
    video,
    rows: np.ndarray | None = None,
    view: int = 0,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
) -> tuple[np.ndarray, np.ndarray]:
    """Audio and video embeddings `(len(rows), dim)` of the chosen segments on one view."""
    return tuple(
        np.concatenate(list(embed_modality(head, features, rows, view, device, precision)))
        for head, features in ((heads.audio, audio), (heads.video, video))
    )
