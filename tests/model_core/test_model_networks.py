"""Enc, Dec and Dis: output shapes, output ranges, Table 1's parameter count and where Dis_l is taken."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from model_core.config import PRESETS, ModelConfig
from model_core.networks import Decoder, Discriminator, Encoder
from model_core.vaegan import VAEGAN


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def built() -> dict[str, tuple[Encoder, Decoder, Discriminator]]:
    """Every preset's networks, built once: paper64's 33M-weight encoder fc is slow to initialise."""
    torch.manual_seed(0)
    return {name: (Encoder(cfg), Decoder(cfg), Discriminator(cfg)) for name, cfg in PRESETS.items()}


@pytest.mark.parametrize("preset", ["paper64", "mnist32", "tiny"])
@pytest.mark.parametrize("batch", [1, 3])
def test_every_network_has_the_shapes_of_its_preset(
    built: dict[str, tuple[Encoder, Decoder, Discriminator]], preset: str, batch: int
) -> None:
    cfg = PRESETS[preset]
    enc, dec, dis = built[preset]
    for net in (enc, dec, dis):  # BatchNorm1d needs more than one sample per channel in train mode
        net.train(batch > 1)
    torch.manual_seed(0)
    x = torch.rand(batch, cfg.channels, cfg.image_size, cfg.image_size) * 2 - 1

    with torch.no_grad():
        mu, logvar = enc(x)
        x_tilde = dec(mu)
        logits, features = dis(x)

    assert mu.shape == (batch, cfg.latent_dim)
    assert logvar.shape == (batch, cfg.latent_dim)
    assert x_tilde.shape == (batch, cfg.channels, cfg.image_size, cfg.image_size)
    assert logits.shape == (batch,)
    assert features.shape == (batch, cfg.similarity_features)
    for t in (mu, logvar, x_tilde, logits, features):
        assert torch.isfinite(t).all()


def test_similarity_shape_of_paper64_is_the_4th_conv() -> None:
    assert PRESETS["paper64"].similarity_shape == (256, 8, 8)
    assert PRESETS["paper64"].similarity_features == 256 * 8 * 8
    assert PRESETS["mnist32"].similarity_shape == (128, 4, 4)


@pytest.mark.parametrize("preset", ["paper64", "mnist32"])
def test_decoder_output_stays_in_model_range_even_for_huge_latents(
    built: dict[str, tuple[Encoder, Decoder, Discriminator]], preset: str
) -> None:
    cfg = PRESETS[preset]
    dec = built[preset][1].eval()
    torch.manual_seed(1)
    z = torch.randn(3, cfg.latent_dim) * 1e3  # drives the last conv far into tanh's saturation
    with torch.no_grad():
        x_tilde = dec(z)
    assert x_tilde.min() >= -1.0
    assert x_tilde.max() <= 1.0
    assert x_tilde.abs().max() > 0.99  # saturated, so a missing tanh would have shown here


def test_paper64_parameter_count_is_table_1_by_hand(
    built: dict[str, tuple[Encoder, Decoder, Discriminator]],
) -> None:
    # Convolutions and fcs followed by batch norm carry no bias; each BN has weight + bias (2 * C).
    # Every kernel is 5x5; 64x64 inputs reach 8x8 after three stride-2 stages.
    enc = sum(
        [
            3 * 64 * 5 * 5 + 2 * 64,  # conv 64, stride 2, BN
            64 * 128 * 5 * 5 + 2 * 128,  # conv 128, stride 2, BN
            128 * 256 * 5 * 5 + 2 * 256,  # conv 256, stride 2, BN
            (256 * 8 * 8) * 2048 + 2 * 2048,  # fc 2048, BN
            2 * (2048 * 128 + 128),  # mu and log sigma^2: fc 128 each, with bias
        ]
    )
    dec = sum(
        [
            128 * (8 * 8 * 256) + 2 * (8 * 8 * 256),  # fc 8*8*256, BN1d
            256 * 256 * 5 * 5 + 2 * 256,  # transposed conv 256, stride 2, BN
            256 * 128 * 5 * 5 + 2 * 128,  # transposed conv 128, stride 2, BN
            128 * 32 * 5 * 5 + 2 * 32,  # transposed conv 32, stride 2, BN
            32 * 3 * 5 * 5 + 3,  # conv to 3 channels, with bias, tanh
        ]
    )
    dis = sum(
        [
            3 * 32 * 5 * 5 + 32,  # conv 32, stride 1, with bias, no BN
            32 * 128 * 5 * 5 + 2 * 128,  # conv 128, stride 2, BN
            128 * 256 * 5 * 5 + 2 * 256,  # conv 256, stride 2, BN
            256 * 256 * 5 * 5 + 2 * 256,  # conv 256, stride 2, BN
            (256 * 8 * 8) * 512 + 2 * 512,  # fc 512, BN
            512 * 1 + 1,  # fc 1, with bias
        ]
    )
    encoder, decoder, discriminator = built["paper64"]
    assert _count(encoder) == enc == 35_112_768
    assert _count(decoder) == dec == 4_693_155
    assert _count(discriminator) == dis == 10_953_857
    assert enc + dec + dis == 50_759_780


def test_mnist32_parameter_count_is_recorded(
    built: dict[str, tuple[Encoder, Decoder, Discriminator]],
) -> None:
    counts = tuple(_count(net) for net in built["mnist32"])
    assert counts == (1_339_680, 710_449, 1_166_113)


def _outputs_of(net: nn.Module, modules: list[nn.Module], x: torch.Tensor) -> tuple[torch.Tensor, list]:
    """Run ``net(x)`` without gradients; return its features and the output of each of ``modules``."""
    seen: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda _m, _inp, out: seen.append(out)) for m in modules]
    try:
        with torch.no_grad():
            _, features = net(x)
    finally:
        for h in handles:
            h.remove()
    return features, seen


def test_dis_l_is_the_4th_conv_output_before_its_batch_norm(
    built: dict[str, tuple[Encoder, Decoder, Discriminator]],
) -> None:
    dis = built["paper64"][2].train()
    convs = [m for m in dis.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in dis.modules() if isinstance(m, nn.BatchNorm2d)]
    torch.manual_seed(2)
    x = torch.rand(2, 3, 64, 64) * 2 - 1

    # The 4th conv counts the stem; its BN is the 3rd, as the stem has none.
    features, (conv_out, norm_out) = _outputs_of(dis, [convs[3], norms[2]], x)

    assert conv_out.shape == (2, 256, 8, 8)
    assert torch.equal(features, conv_out.flatten(1))
    assert not torch.allclose(features, norm_out.flatten(1), atol=1e-3)


def test_similarity_layer_selects_another_conv(tiny_config: ModelConfig) -> None:
    cfg = ModelConfig(**{**tiny_config.to_dict(), "similarity_layer": 3})
    torch.manual_seed(3)
    dis = Discriminator(cfg)
    convs = [m for m in dis.modules() if isinstance(m, nn.Conv2d)]
    features, (conv_out,) = _outputs_of(dis, [convs[2]], torch.rand(3, 1, 16, 16))
    assert cfg.similarity_shape == (8, 4, 4)
    assert torch.equal(features, conv_out.flatten(1))


def test_discriminator_features_method_matches_forward(tiny_config: ModelConfig) -> None:
    torch.manual_seed(4)
    dis = Discriminator(tiny_config).eval()
    x = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(dis.features(x), dis(x)[1])


def test_vaegan_forward_reconstructs_through_the_posterior_mean(tiny_config: ModelConfig) -> None:
    torch.manual_seed(5)
    model = VAEGAN(tiny_config).eval()
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        mu, _ = model.encoder(x)
        assert torch.equal(model(x), model.decoder(mu))
        assert torch.equal(model(x), model(x))  # no sampling in the reconstruction


def test_vaegan_sample_decodes_prior_draws_reproducibly(tiny_config: ModelConfig) -> None:
    torch.manual_seed(6)
    model = VAEGAN(tiny_config).eval()
    with torch.no_grad():
        a = model.sample(3, torch.Generator().manual_seed(1))
        b = model.sample(3, torch.Generator().manual_seed(1))
        z = torch.randn(3, tiny_config.latent_dim, generator=torch.Generator().manual_seed(1))
        expected = model.decoder(z)
    assert a.shape == (3, 1, 16, 16)
    assert torch.equal(a, b)
    assert torch.equal(a, expected)
