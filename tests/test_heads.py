"""Projection heads: the paper's layout, variants and autoencoder initialisation."""

import pytest
import torch
from torch import nn

from mvnb.heads import Dropout, ProjectionHead, build_heads, mirror_decoder, pretrain_autoencoder


def linear_shapes(module):
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, nn.Linear)]


def test_paper_head_layout():
    head = ProjectionHead(1506, 256)
    assert linear_shapes(head) == [(1506, 512), (512, 256)]
    assert [m.p for m in head.modules() if isinstance(m, nn.Dropout)] == [0.3]
    out = head.eval()(torch.randn(5, 1506) * 10)
    assert out.shape == (5, 256) and out.min() > 0 and out.max() < 1


def test_four_layer_heads_and_no_sigmoid():
    heads = build_heads(40, 24, hidden=(512, 512, 512), embedding_dim=512, output="none")
    assert linear_shapes(heads.video) == [(24, 512), (512, 512), (512, 512), (512, 512)]
    audio, video = heads.eval()(torch.randn(64, 40), torch.randn(64, 24))
    assert audio.shape == video.shape == (64, 512)
    assert audio.min() < 0


def test_single_head_maps_video_to_the_audio_features():
    heads = build_heads(40, 24, single_head=True)
    assert isinstance(heads.audio, nn.Identity)
    assert linear_shapes(heads.video) == [(24, 512), (512, 40)]
    audio = torch.randn(3, 40)
    a, v = heads(audio, torch.randn(3, 24))
    assert torch.equal(a, audio) and v.shape == (3, 40)


def test_dropout_drops_p_and_keeps_the_mean():
    torch.manual_seed(0)
    y = Dropout(0.3).train()(torch.ones(1000, 1000))
    assert (y == 0).float().mean().item() == pytest.approx(0.3, abs=0.003)
    assert y.mean().item() == pytest.approx(1.0, abs=0.005)
    assert y.unique().tolist() == [0.0, pytest.approx(1 / 0.7)]


def test_dropout_only_in_training():
    head = ProjectionHead(16, 8, dropout=0.5, output="none")
    x = torch.randn(4, 16)
    head.eval()
    assert torch.equal(head(x), head(x))
    head.train()
    torch.manual_seed(0)
    assert not torch.equal(head(x), head(x))


def test_unknown_output_is_a_clear_error():
    with pytest.raises(ValueError, match="sigmoid"):
        ProjectionHead(4, 2, output="tanh")


def test_mirror_decoder_reverses_the_widths():
    head = ProjectionHead(30, 8, hidden=(64, 16))
    assert linear_shapes(mirror_decoder(head)) == [(8, 16), (16, 64), (64, 30)]


def test_autoencoder_pretraining_learns_to_reconstruct(one_torch_thread):
    """Features on a 4-d subspace of 32 dims: an 8-d bottleneck can reconstruct them."""
    torch.manual_seed(0)
    basis = torch.randn(4, 32)
    data = torch.randn(512, 4) @ basis
    head = ProjectionHead(32, 8, hidden=(64,), dropout=0.0, output="none")
    before = [p.detach().clone() for p in head.parameters()]
    losses = pretrain_autoencoder(head, lambda epoch: data.split(128), epochs=25, lr=1e-2)
    assert losses[-1] < 0.05 * losses[0]
    assert all(not torch.equal(a, b) for a, b in zip(before, head.parameters(), strict=True))


def test_standardised_heads_carry_their_statistics_and_autoencode_standardised_inputs(one_torch_thread):
    """The input layer standardises; the autoencoder reconstructs what the head sees (standardised
    features), so a huge offset in the raw features does not dominate the reconstruction loss."""
    from mvnb.standardise import Standardise, fit

    torch.manual_seed(0)
    data = 500.0 + 20.0 * (torch.randn(512, 4) @ torch.randn(4, 32))
    head = ProjectionHead(32, 8, hidden=(64,), dropout=0.0, output="none", input_norm="standard")
    assert isinstance(head.norm, Standardise)
    head.norm.set_stats(fit(data.numpy()))
    assert set(head.state_dict()) >= {"norm.mean", "norm.scale"}
    losses = pretrain_autoencoder(head, lambda epoch: data.split(128), epochs=25, lr=1e-2)
    assert losses[0] < 5 and losses[-1] < 0.1 * losses[0]  # in units of the standardised inputs


def test_single_standardised_head_keeps_an_audio_input_layer():
    from mvnb.standardise import Standardise

    heads = build_heads(40, 24, single_head=True, input_norm="standard")
    assert isinstance(heads.audio, Standardise) and heads.input_norms()[0] is heads.audio
    assert isinstance(heads.input_norms()[1], Standardise)
    with pytest.raises(ValueError, match="input_norm"):
        build_heads(4, 4, input_norm="minmax")
