"""Model configuration: one frozen dataclass and the named presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, get_args

# The choices of the string options, each written once: the configs check against them and
# vaegan-train reads its --flag choices from them (typing.get_args).
DisConditioning = Literal["auxiliary", "projection", "planes"]  # how a conditional Dis sees the label
Mode = Literal["vaegan", "vae"]  # Dis_l likelihood + GAN, or the plain VAE baseline
GanInputs = Literal["three", "two"]  # the fakes Dis judges: x, Dec(z), Dec(z_p) or x, Dec(z_p)
GeneratorLoss = Literal["minimax", "nonsaturating"]
DisPasses = Literal["joint", "separate"]  # one Dis call on real and fake images, or a call each


def check_choice(name: str, value: str, choices: Any) -> None:
    """ValueError unless ``value`` is one of the Literal type ``choices``'s values."""
    allowed = get_args(choices)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


@dataclass(frozen=True)
class ModelConfig:
    """The shape of the three networks (Larsen et al. 2016, Table 1)."""

    image_size: int = 64  # square inputs; must be divisible by 8 (three stride-2 stages)
    channels: int = 3  # 3 for RGB faces, 1 for digits
    latent_dim: int = 128  # z ~ q(z|x) and the prior N(0, I) live here
    kernel_size: int = 5  # every convolution of Table 1 is 5x5
    enc_channels: tuple[int, ...] = (64, 128, 256)  # Enc: conv stride 2 (BN, ReLU) each
    enc_fc: int = 2048  # Enc: fc (BN, ReLU) before mu and log sigma^2
    dec_fc_channels: int = 256  # Dec: fc to (dec_fc_channels, size/8, size/8), BN, ReLU
    dec_channels: tuple[int, ...] = (256, 128, 32)  # Dec: transposed conv stride 2 (BN, ReLU) each
    dis_stem: int = 32  # Dis: first conv, stride 1, ReLU, no BN
    dis_channels: tuple[int, ...] = (128, 256, 256)  # Dis: conv stride 2 (BN, ReLU) each
    dis_fc: int = 512  # Dis: fc (BN, ReLU) before the single logit
    similarity_layer: int = 4  # Dis_l: output of this conv (1-based, stem counted), before its BN
    bn_momentum: float = 0.1  # PyTorch convention (the authors' 0.9 running-average decay)
    # 0: unconditional (the paper). K > 0: a one-hot label (B, K) enters Enc's fc, Dec beside z and
    # Dis, as in vae-gan-tf (the TensorFlow VAE-GAN we follow).
    num_classes: int = 0
    # How Dis sees the label: "projection" (Miyato & Koyama 2018: logit += <embed(y), h>), "planes"
    # (vae-gan-tf: K constant planes appended to the last conv's output), or "auxiliary": projection
    # plus a class head that Dis learns on real images and Dec must satisfy (AC-GAN, Odena et al.
    # 2017). All act after Dis_l, so the learned similarity never needs a label. Default and
    # figures: docs/benchmarks.md.
    dis_conditioning: DisConditioning = "auxiliary"

    def __post_init__(self) -> None:
        if self.image_size % 8 != 0 or self.image_size < 8:
            raise ValueError(f"image_size must be a positive multiple of 8, got {self.image_size}")
        if len(self.enc_channels) != 3 or len(self.dec_channels) != 3 or len(self.dis_channels) != 3:
            raise ValueError("enc_channels, dec_channels and dis_channels need three stages each (size/8)")
        if not 1 <= self.similarity_layer <= 1 + len(self.dis_channels):
            raise ValueError(f"similarity_layer must be in 1..{1 + len(self.dis_channels)}")
        if self.num_classes < 0 or self.num_classes == 1:
            raise ValueError(f"num_classes must be 0 (unconditional) or at least 2, got {self.num_classes}")
        check_choice("dis_conditioning", self.dis_conditioning, DisConditioning)

    @property
    def base_size(self) -> int:
        """Spatial size after three stride-2 stages (8 for 64x64 inputs)."""
        return self.image_size // 8

    @property
    def similarity_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of Dis_l(x); the service sees it flattened."""
        if self.similarity_layer == 1:
            return (self.dis_stem, self.image_size, self.image_size)
        stage = self.similarity_layer - 1  # stride-2 convs applied so far
        return (self.dis_channels[stage - 1], self.image_size >> stage, self.image_size >> stage)

    @property
    def similarity_features(self) -> int:
        c, h, w = self.similarity_shape
        return c * h * w

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fields)


PRESETS: dict[str, ModelConfig] = {
    # Table 1 of the paper, 64x64 RGB (CelebA).
    "paper64": ModelConfig(),
    # Our CPU-sized scaling of the same architecture: MNIST digits padded 28 -> 32, one channel,
    # every width halved (the stem and last decoder conv too), latent 32.
    "mnist32": ModelConfig(
        image_size=32,
        channels=1,
        latent_dim=32,
        enc_channels=(32, 64, 128),
        enc_fc=512,
        dec_fc_channels=128,
        dec_channels=(128, 64, 16),
        dis_stem=16,
        dis_channels=(64, 128, 128),
        dis_fc=256,
    ),
}
# Test scale, the diffusers way: mnist32's architecture (32x32 digits, the same layers and code
# paths) at widths of 2 to 8 and latent 4, so a trainer test trains, evaluates and exports in seconds.
PRESETS["tiny"] = replace(
    PRESETS["mnist32"],
    latent_dim=4,
    enc_channels=(2, 4, 4),
    enc_fc=8,
    dec_fc_channels=4,
    dec_channels=(4, 4, 2),
    dis_stem=2,
    dis_channels=(4, 4, 4),
    dis_fc=8,
)


@dataclass(frozen=True)
class ObjectiveConfig:
    """How Algorithm 1 combines the loss terms (Larsen et al. 2016, Sec. 2.2 and Algorithm 1)."""

    mode: Mode = "vaegan"  # "vaegan": Dis_l likelihood + GAN; "vae": pixel likelihood, no Dis
    gamma: float = 1e-6  # weight of L_llike against L_GAN in the decoder's objective (authors: 1e-6)
    gan_inputs: GanInputs = "three"  # "three": x, Dec(z), Dec(z_p) (paper); "two": x, Dec(z_p) (authors' code)
    generator_loss: GeneratorLoss = "minimax"  # "minimax": Algorithm 1 as written; "nonsaturating": -log Dis(fake)
    equilibrium: bool = False  # skip Dec or Dis updates when Dis is too weak or too strong (authors' code)
    equilibrium_point: float = 0.68  # the discriminator BCE the balance rule aims at (authors' code)
    equilibrium_margin: float = 0.35
    pixel_sigma: float = 1.0  # mode "vae": std of the pixel Gaussian p(x|z) on [-1, 1] pixels (paper: 1)
    # "joint": one Dis call on [x, Dec(z), Dec(z_p)] (the paper's batch); "separate": real and fake
    # images in calls of their own, so Dis's batch norm never normalises a mixed batch (ganhacks).
    dis_passes: DisPasses = "joint"
    class_weight: float = 1.0  # conditional Dis with a class head: weight of its cross-entropy for Dis and Dec
    kl_weight: float = 1.0  # weight of L_prior in the encoder's objective (beta of a beta-VAE; the paper: 1)

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, Mode)
        check_choice("gan_inputs", self.gan_inputs, GanInputs)
        check_choice("generator_loss", self.generator_loss, GeneratorLoss)
        check_choice("dis_passes", self.dis_passes, DisPasses)
        if not self.pixel_sigma > 0:
            raise ValueError(f"pixel_sigma must be > 0, got {self.pixel_sigma}")
        if not self.class_weight >= 0:
            raise ValueError(f"class_weight must be >= 0, got {self.class_weight}")
        if not self.gamma >= 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma}")
        if not self.kl_weight > 0:
            raise ValueError(f"kl_weight must be > 0, got {self.kl_weight}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
