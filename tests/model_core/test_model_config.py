"""ModelConfig and ObjectiveConfig: presets as in Table 1, validation, round trips."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from model_core.config import PRESETS, ModelConfig, ObjectiveConfig


def test_paper64_is_table_1() -> None:
    cfg = PRESETS["paper64"]
    assert (cfg.image_size, cfg.channels, cfg.latent_dim, cfg.kernel_size) == (64, 3, 128, 5)
    assert cfg.enc_channels == (64, 128, 256) and cfg.enc_fc == 2048
    assert cfg.dec_fc_channels == 256 and cfg.dec_channels == (256, 128, 32)
    assert cfg.dis_stem == 32 and cfg.dis_channels == (128, 256, 256) and cfg.dis_fc == 512
    assert cfg.similarity_layer == 4
    assert cfg.bn_momentum == 0.1


def test_mnist32_is_the_small_grey_scaling() -> None:
    cfg = PRESETS["mnist32"]
    assert (cfg.image_size, cfg.channels, cfg.latent_dim) == (32, 1, 32)
    assert cfg.base_size == 4


def test_tiny_is_mnist32_at_test_widths() -> None:
    """The trainer tests' preset: mnist32's image, channels, kernels and similarity layer, only narrower."""
    tiny, mnist32 = PRESETS["tiny"], PRESETS["mnist32"]
    widths = (
        "latent_dim",
        "enc_channels",
        "enc_fc",
        "dec_fc_channels",
        "dec_channels",
        "dis_stem",
        "dis_channels",
        "dis_fc",
    )
    assert dataclasses.replace(tiny, **{f: getattr(mnist32, f) for f in widths}) == mnist32
    assert max(max(tiny.enc_channels), max(tiny.dec_channels), max(tiny.dis_channels), tiny.dis_stem) <= 4


@pytest.mark.parametrize("size", [0, 4, 12, 30, -8])
def test_image_size_must_be_a_positive_multiple_of_8(size: int) -> None:
    with pytest.raises(ValueError, match="image_size"):
        ModelConfig(image_size=size)


@pytest.mark.parametrize("field", ["enc_channels", "dec_channels", "dis_channels"])
@pytest.mark.parametrize("stages", [(64, 128), (64, 128, 256, 512)])
def test_every_network_needs_three_stages(field: str, stages: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="three stages"):
        ModelConfig(**{field: stages})


@pytest.mark.parametrize("layer", [0, 5])
def test_similarity_layer_must_name_a_conv(layer: int) -> None:
    with pytest.raises(ValueError, match="similarity_layer"):
        ModelConfig(similarity_layer=layer)


def test_model_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["paper64"].latent_dim = 64  # type: ignore[misc]


@pytest.mark.parametrize("preset", ["paper64", "mnist32", "tiny"])
def test_model_config_round_trips_through_a_dict_and_json(preset: str) -> None:
    cfg = PRESETS[preset]
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    restored = ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))  # tuples come back as lists
    assert restored == cfg
    assert isinstance(restored.enc_channels, tuple)


def test_objective_defaults_follow_the_paper_and_the_authors_code() -> None:
    obj = ObjectiveConfig()
    assert (obj.mode, obj.gan_inputs, obj.generator_loss) == ("vaegan", "three", "minimax")
    assert obj.gamma == 1e-6
    assert obj.equilibrium is False
    assert (obj.equilibrium_point, obj.equilibrium_margin) == (0.68, 0.35)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "gan"}, "mode"),
        ({"gan_inputs": "one"}, "gan_inputs"),
        ({"generator_loss": "wasserstein"}, "generator_loss"),
        ({"gamma": -1.0}, "gamma"),
        ({"gamma": math.nan}, "gamma"),
    ],
)
def test_objective_config_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ObjectiveConfig(**kwargs)


def test_objective_config_to_dict_holds_every_field() -> None:
    obj = ObjectiveConfig(mode="vae", gamma=0.5, gan_inputs="two", equilibrium=True)
    assert ObjectiveConfig(**obj.to_dict()) == obj
