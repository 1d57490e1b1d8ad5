"""Algorithm 1 (Larsen et al. 2016): each network moves by the gradient of its own objective only.

The expected gradients come from a reference forward pass written out here with direct formulas
(reparameterised z, then z_p, one decoder pass over both, one discriminator pass over x and the
fakes, as in Algorithm 1 of the paper), differentiated with ``torch.autograd.grad``. The step runs plain SGD with
lr = 1, so ``before - after`` is exactly the gradient the step applied. Everything is float64 so the
comparison can be tight.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from model_core.config import ModelConfig, ObjectiveConfig
from model_core.vaegan import VAEGAN, Optimizers, compute_losses, equilibrium_gates

SEED = 7
pytestmark = pytest.mark.filterwarnings("ignore:Anomaly Detection has been enabled")


@dataclass
class Terms:
    """The paper's terms, on the graph: L_prior, L_llike, the decoder's GAN loss, the Dis BCE."""

    kl: torch.Tensor
    llike: torch.Tensor
    gen: torch.Tensor | None
    dis: torch.Tensor | None


def _model(cfg: ModelConfig, objective: ObjectiveConfig) -> VAEGAN:
    torch.manual_seed(0)
    return VAEGAN(cfg, objective).double()


def _batch(cfg: ModelConfig, n: int = 4) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    shape = (n, cfg.channels, cfg.image_size, cfg.image_size)
    return torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1


def _reference_terms(model: VAEGAN, x: torch.Tensor, objective: ObjectiveConfig) -> Terms:
    """One forward pass of Algorithm 1, written out with direct formulas."""
    gen = torch.Generator().manual_seed(SEED)
    mu, logvar = model.encoder(x)
    eps = torch.randn(mu.shape, generator=gen, dtype=mu.dtype)
    z = mu + torch.exp(0.5 * logvar) * eps
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1).mean()
    if objective.mode == "vae":
        llike = 0.5 * ((x - model.decoder(z)) ** 2).sum((1, 2, 3)).mean()
        return Terms(kl=kl, llike=llike, gen=None, dis=None)

    b = x.shape[0]
    z_p = torch.randn(z.shape, generator=gen, dtype=z.dtype)
    fakes = model.decoder(torch.cat([z, z_p]))
    if objective.dis_passes == "separate":  # one Dis call per kind of image: BN never mixes them
        (real, real_f), (recon, recon_f), (prior, _) = (model.discriminator(v) for v in (x, *fakes.split(b)))
    else:
        logits, features = model.discriminator(torch.cat([x, fakes]))
        (real, recon, prior), (real_f, recon_f, _) = logits.split(b), features.split(b)
    llike = 0.5 * ((real_f - recon_f) ** 2).sum(1).mean()
    fake_logits = [recon, prior] if objective.gan_inputs == "three" else [prior]
    log_dis = F.logsigmoid  # log Dis(.) = log sigmoid(logit)
    dis = -log_dis(real).mean() - sum(log_dis(-f).mean() for f in fake_logits)  # log(1 - s(l)) = log s(-l)
    if objective.generator_loss == "minimax":
        gen_loss = sum(log_dis(-f).mean() for f in fake_logits)
    else:
        gen_loss = -sum(log_dis(f).mean() for f in fake_logits)
    return Terms(kl=kl, llike=llike, gen=gen_loss, dis=dis)


def _grad(loss: torch.Tensor, net: nn.Module) -> list[torch.Tensor]:
    """d loss / d params of ``net``; zeros where a parameter does not reach the loss."""
    params = list(net.parameters())
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


def _combine(*parts: tuple[float, list[torch.Tensor]]) -> list[torch.Tensor]:
    """sum_i w_i * g_i, parameter by parameter."""
    return [sum(w * g[k] for w, g in parts) for k in range(len(parts[0][1]))]


def _norm(grads: list[torch.Tensor]) -> float:
    return float(torch.sqrt(sum(g.pow(2).sum() for g in grads)))


def _sgd(model: VAEGAN) -> Optimizers:
    """lr = 1, no momentum, no weight decay: each parameter moves by exactly minus its gradient."""
    return Optimizers(
        enc=torch.optim.SGD(model.encoder.parameters(), lr=1.0),
        dec=torch.optim.SGD(model.decoder.parameters(), lr=1.0),
        dis=torch.optim.SGD(model.discriminator.parameters(), lr=1.0),
    )


def _step_moves(model: VAEGAN, x: torch.Tensor) -> tuple[dict[str, list[torch.Tensor]], dict[str, torch.Tensor]]:
    """Run one Algorithm 1 step on a copy, under anomaly detection; return before - after per network."""
    stepped = copy.deepcopy(model)
    nets = {"enc": stepped.encoder, "dec": stepped.decoder, "dis": stepped.discriminator}
    before = {k: [p.detach().clone() for p in net.parameters()] for k, net in nets.items()}
    with torch.autograd.set_detect_anomaly(True):
        logs = stepped.train_step(x, _sgd(stepped), torch.Generator().manual_seed(SEED))
    moves = {k: [b - p.detach() for b, p in zip(before[k], net.parameters(), strict=True)] for k, net in nets.items()}
    return moves, logs


def _assert_same(actual: list[torch.Tensor], expected: list[torch.Tensor]) -> None:
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-12)


def _assert_differ(actual: list[torch.Tensor], wrong: list[torch.Tensor]) -> None:
    """The alternative is far outside the tolerance ``_assert_same`` allows."""
    gap = _norm([a - w for a, w in zip(actual, wrong, strict=True)])
    assert gap > 1e-6 * max(1.0, _norm(wrong)), gap


@pytest.mark.parametrize("gan_inputs", ["three", "two"])
@pytest.mark.parametrize("generator_loss", ["minimax", "nonsaturating"])
@pytest.mark.parametrize("dis_passes", ["joint", "separate"])
def test_each_network_moves_by_exactly_its_own_objective(
    tiny_config: ModelConfig, gan_inputs: str, generator_loss: str, dis_passes: str
) -> None:
    gamma = 0.5  # not 1, so the decoder's two terms are told apart by their weights
    objective = ObjectiveConfig(
        gamma=gamma, gan_inputs=gan_inputs, generator_loss=generator_loss, dis_passes=dis_passes
    )
    model, x = _model(tiny_config, objective), _batch(tiny_config)

    # Expected gradients, on a copy (the forward pass updates BatchNorm running statistics).
    ref = copy.deepcopy(model)
    t = _reference_terms(ref, x, objective)
    assert t.gen is not None and t.dis is not None
    enc_prior_llike = _grad(t.kl + t.llike, ref.encoder)
    enc_gan = _grad(t.gen, ref.encoder)
    dec_llike, dec_gan = _grad(t.llike, ref.decoder), _grad(t.gen, ref.decoder)
    dis_gan, dis_llike = _grad(t.dis, ref.discriminator), _grad(t.llike, ref.discriminator)

    moves, logs = _step_moves(model, x)

    # theta_Enc <- -grad(L_prior + L_llike): no GAN gradient, although one exists.
    _assert_same(moves["enc"], enc_prior_llike)
    assert _norm(enc_gan) > 1e-6
    _assert_differ(moves["enc"], _combine((1.0, enc_prior_llike), (1.0, enc_gan)))
    # theta_Dec <- -grad(gamma * L_llike - L_GAN): both parts matter.
    _assert_same(moves["dec"], _combine((gamma, dec_llike), (1.0, dec_gan)))
    _assert_differ(moves["dec"], dec_gan)
    _assert_differ(moves["dec"], _combine((gamma, dec_llike)))
    # theta_Dis <- -grad(L_GAN) (as the BCE it minimises): no likelihood gradient, although one exists.
    _assert_same(moves["dis"], dis_gan)
    assert _norm(dis_llike) > 1e-6
    _assert_differ(moves["dis"], _combine((1.0, dis_gan), (1.0, dis_llike)))

    # The reported objectives are the same numbers.
    torch.testing.assert_close(logs["enc_loss"], (t.kl + t.llike).detach())
    torch.testing.assert_close(logs["dec_loss"], (gamma * t.llike + t.gen).detach())
    torch.testing.assert_close(logs["dis_loss"], t.dis.detach())
    assert logs["dec_updated"] == 1 and logs["dis_updated"] == 1


def test_vae_mode_uses_the_pixel_likelihood_and_never_touches_dis(tiny_config: ModelConfig) -> None:
    objective = ObjectiveConfig(mode="vae")
    model, x = _model(tiny_config, objective), _batch(tiny_config)
    ref = copy.deepcopy(model)
    t = _reference_terms(ref, x, objective)

    moves, logs = _step_moves(model, x)

    _assert_same(moves["enc"], _grad(t.kl + t.llike, ref.encoder))
    _assert_same(moves["dec"], _grad(t.llike, ref.decoder))
    assert all(torch.equal(m, torch.zeros_like(m)) for m in moves["dis"])
    assert "dis_loss" not in logs and logs["dis_updated"] == 0


def test_compute_losses_objectives_match_the_reference(tiny_config: ModelConfig) -> None:
    objective = ObjectiveConfig(gamma=0.25)
    model, x = _model(tiny_config, objective), _batch(tiny_config)
    t = _reference_terms(copy.deepcopy(model), x, objective)
    step = compute_losses(
        model.encoder, model.decoder, model.discriminator, x, objective, torch.Generator().manual_seed(SEED)
    )
    assert t.gen is not None and t.dis is not None and step.dis is not None
    torch.testing.assert_close(step.logs["kl"], t.kl.detach())
    torch.testing.assert_close(step.logs["llike"], t.llike.detach())
    torch.testing.assert_close(step.enc, t.kl + t.llike)
    torch.testing.assert_close(step.dec, 0.25 * t.llike + t.gen)
    torch.testing.assert_close(step.dis, t.dis)
    # The equilibrium rule reads the BCE on real images and the mean BCE per kind of fake.
    torch.testing.assert_close(step.logs["dis_real_bce"] + 2 * step.logs["dis_fake_bce"], t.dis.detach())


@pytest.mark.parametrize("mode", ["vaegan", "vae"])
def test_kl_weight_scales_the_kl_in_the_encoders_objective_only(tiny_config: ModelConfig, mode: str) -> None:
    """--kl-weight: Enc minimises kl_weight * L_prior + L_llike; Dec's and Dis's objectives do not change."""
    steps = []
    for weight in (1.0, 2.5):
        objective = ObjectiveConfig(mode=mode, kl_weight=weight)
        model, x = _model(tiny_config, objective), _batch(tiny_config)
        generator = torch.Generator().manual_seed(SEED)
        steps.append(compute_losses(model.encoder, model.decoder, model.discriminator, x, objective, generator))
    plain, weighted = steps
    torch.testing.assert_close(weighted.logs["kl"], plain.logs["kl"])
    torch.testing.assert_close(weighted.enc, plain.enc + 1.5 * plain.logs["kl"])
    torch.testing.assert_close(weighted.dec, plain.dec)
    with pytest.raises(ValueError, match="kl_weight"):
        ObjectiveConfig(kl_weight=0)


def _logs(real: float, fake: float) -> dict[str, torch.Tensor]:
    return {"dis_real_bce": torch.tensor(real), "dis_fake_bce": torch.tensor(fake)}


ON = ObjectiveConfig(equilibrium=True)  # point 0.68, margin 0.35: balanced within [0.33, 1.03]


@pytest.mark.parametrize(
    ("objective", "real", "fake", "gates"),
    [
        (ON, 0.6, 0.7, (True, True)),  # balanced: both train
        (ON, 0.2, 0.7, (True, False)),  # Dis too strong on real images: Dis pauses
        (ON, 0.6, 0.1, (True, False)),  # Dis too strong on fakes: Dis pauses
        (ON, 1.2, 0.7, (False, True)),  # Dis too weak on real images: Dec pauses
        (ON, 0.6, 1.5, (False, True)),  # Dis too weak on fakes: Dec pauses
        (ON, 0.1, 1.5, (True, True)),  # both would pause: both train
        (ObjectiveConfig(), 0.01, 5.0, (True, True)),  # rule off (the default)
    ],
)
def test_equilibrium_gates(objective: ObjectiveConfig, real: float, fake: float, gates: tuple) -> None:
    assert equilibrium_gates(_logs(real, fake), objective) == gates


def test_equilibrium_gates_let_a_vae_step_through() -> None:
    assert equilibrium_gates({"kl": torch.tensor(1.0)}, ON) == (True, True)


@pytest.mark.parametrize(
    ("point", "paused"),
    [(100.0, "dis"), (-100.0, "dec")],  # any real BCE is far below / above these points
)
def test_equilibrium_rule_leaves_the_paused_network_unchanged(
    tiny_config: ModelConfig, point: float, paused: str
) -> None:
    objective = ObjectiveConfig(equilibrium=True, equilibrium_point=point, equilibrium_margin=1.0)
    model, x = _model(tiny_config, objective), _batch(tiny_config)

    moves, logs = _step_moves(model, x)

    for name, grads in moves.items():
        still = all(torch.equal(m, torch.zeros_like(m)) for m in grads)
        assert still == (name == paused), name
    assert logs[f"{paused}_updated"] == 0


def _losses_over_steps(cfg: ModelConfig, seed: int, steps: int = 3) -> list[dict[str, torch.Tensor]]:
    torch.manual_seed(seed)
    model = VAEGAN(cfg, ObjectiveConfig(gamma=0.5))
    opts = model.make_optimizers(lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(4, cfg.channels, cfg.image_size, cfg.image_size, generator=gen) * 2 - 1
    return [model.train_step(x, opts, gen) for _ in range(steps)]


def test_same_seed_same_losses(tiny_config: ModelConfig) -> None:
    a, b = _losses_over_steps(tiny_config, 11), _losses_over_steps(tiny_config, 11)
    for la, lb in zip(a, b, strict=True):
        assert la.keys() == lb.keys()
        for key in la:
            assert torch.equal(la[key], lb[key]), key


def test_different_seed_different_losses(tiny_config: ModelConfig) -> None:
    a, b = _losses_over_steps(tiny_config, 11), _losses_over_steps(tiny_config, 12)
    for key in ("kl", "llike", "enc_loss", "dec_loss", "dis_loss"):
        assert all(not torch.equal(la[key], lb[key]) for la, lb in zip(a, b, strict=True)), key


def test_step_losses_change_as_the_model_trains(tiny_config: ModelConfig) -> None:
    logs = _losses_over_steps(tiny_config, 13)
    assert not torch.equal(logs[0]["enc_loss"], logs[-1]["enc_loss"])


def test_separate_passes_differ_from_one_joint_batch(tiny_config: ModelConfig) -> None:
    """Dis's train-mode BN normalises each call by its own batch, so the two settings give other losses."""
    x, losses = _batch(tiny_config), {}
    for passes in ("joint", "separate"):
        objective = ObjectiveConfig(dis_passes=passes)
        model = _model(tiny_config, objective)
        gen = torch.Generator().manual_seed(SEED)
        losses[passes] = compute_losses(model.encoder, model.decoder, model.discriminator, x, objective, gen)
    assert not torch.allclose(losses["joint"].logs["llike"], losses["separate"].logs["llike"])
    assert not torch.allclose(losses["joint"].dis, losses["separate"].dis)
