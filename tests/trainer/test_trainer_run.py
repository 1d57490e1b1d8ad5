"""A tiny finished run: its checkpoint, metrics.jsonl, eval.json and sample grids."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_runs import tiny_args

from model_core.config import PRESETS, ModelConfig
from model_core.vaegan import VAEGAN
from trainer import checkpoint
from trainer.cli import main
from trainer.config import TrainingError

CHECKPOINT_KEYS = {
    "prior",
    "finished",
    "format_version",
    "step",
    "epoch",
    "preset",
    "model_config",
    "objective",
    "train_config",
    "dataset",
    "preprocessing",
    "models",
    "optimizers",
    "scaler",
    "decoder_ema",
    "rng",
    "data_position",
    "eval",
    "class_names",
    "class_means",
}
METRIC_KEYS = {
    "step",
    "epoch",
    "enc_loss",
    "dec_loss",
    "dis_loss",
    "kl",
    "llike",
    "gan",
    "dis_acc_real",
    "dis_acc_fake",
    "images_per_s",
}


def test_checkpoint_holds_everything_and_loads_weights_only(tiny_run: Path) -> None:
    ckpt = torch.load(tiny_run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert set(ckpt) == CHECKPOINT_KEYS
    assert (ckpt["format_version"], ckpt["step"], ckpt["preset"]) == (1, 3, "tiny")
    assert ModelConfig.from_dict(ckpt["model_config"]) == PRESETS["tiny"]
    assert ckpt["train_config"]["batch_size"] == 4 and ckpt["train_config"]["out"] == str(tiny_run)
    assert ckpt["preprocessing"]["pad"] == [2, 2, 2, 2] and ckpt["dataset"] == "embedded-mnist"
    assert ckpt["class_names"] == [str(d) for d in range(10)]
    assert ckpt["class_means"].shape == (10, PRESETS["tiny"].latent_dim)
    assert set(ckpt["rng"]) == {"python", "numpy", "torch", "cuda"}
    assert ckpt["data_position"] == {"epoch": 0, "batch": 3, "index": 12}
    assert ckpt["eval"]["step"] == 3 and ckpt["scaler"] is None and ckpt["finished"]
    model = VAEGAN(PRESETS["tiny"])
    for name in ("encoder", "decoder", "discriminator"):
        getattr(model, name).load_state_dict(ckpt["models"][name])
    assert set(ckpt["optimizers"]) == {"enc", "dec", "dis"}
    assert not list(tiny_run.glob(".checkpoint.pt.*"))  # no temp file left


def test_metrics_jsonl_has_one_line_per_logged_step(tiny_run: Path) -> None:
    lines = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3]
    for record in lines:
        assert set(record) == METRIC_KEYS
        assert all(isinstance(v, float | int) and math.isfinite(v) for v in record.values())
        assert 0 <= record["dis_acc_real"] <= 1 and 0 <= record["dis_acc_fake"] <= 1
        assert record["enc_loss"] == pytest.approx(record["kl"] + record["llike"], rel=1e-5)


def test_eval_json_reports_heldout_reconstruction(tiny_run: Path) -> None:
    result = json.loads((tiny_run / "eval.json").read_text())
    assert set(result) == {"step", "mse", "kl", "dis_l_distance", "images"}
    assert result["images"] == 8 and 0 < result["mse"] <= 4 and result["kl"] >= 0
    assert result["dis_l_distance"] > 0


def test_sample_grids_are_pngs_of_the_right_size(tiny_run: Path) -> None:
    grids = sorted((tiny_run / "samples").glob("*.png"))
    assert [p.name for p in grids] == ["epoch001_step3_prior.png", "epoch001_step3_reconstructions.png"]
    for path in grids:
        with Image.open(path) as img:
            assert img.mode == "L" and img.size == (8 * 34 + 2, 8 * 34 + 2)  # 8x8 tiles of 32 + 2 px gaps


def test_vae_mode_runs_without_a_discriminator(tmp_path: Path) -> None:
    assert main(tiny_args(tmp_path, "--mode", "vae", "--max-steps", "2", "--log-every", "1")) == 0
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["dis_loss"] is None and record["gan"] is None and record["llike"] > 0
    assert json.loads((tmp_path / "eval.json").read_text())["dis_l_distance"] is None


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "checkpoint.pt"
    checkpoint.save_atomic({"format_version": 1, "step": 1}, path)
    before = path.read_bytes()

    def disk_full(obj: object, f: object) -> None:
        f.write(b"half a checkpoint")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", disk_full)
    with pytest.raises(TrainingError, match="No space left on device; the previous one is intact"):
        checkpoint.save_atomic({"format_version": 1, "step": 2}, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_run_stops_with_one_line_when_a_checkpoint_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_save = torch.save
    calls = []

    def fail_second(obj: object, f: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise PermissionError(13, "Read-only file system")
        real_save(obj, f)

    monkeypatch.setattr(checkpoint.torch, "save", fail_second)
    args = tiny_args(tmp_path, "--max-steps", "3", "--checkpoint-every", "1")
    assert main(args) == 1
    assert (
        capsys.readouterr()
        .err.strip()
        .splitlines()[-1]
        .startswith(f"vaegan-train: error: cannot write checkpoint {tmp_path / 'checkpoint.pt'}: [Errno 13] Read-only")
    )
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 1


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--preset", "paper64"], "model config differs from preset 'paper64'"),
        (["--dataset", "folder:{images}"], "the checkpoint has dataset='embedded-mnist'"),
        (["--batch-size", "8"], "the checkpoint has batch_size=4"),
    ],
)
def test_resume_with_another_model_or_data_is_refused(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], needle: str
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for i in range(12):
        Image.fromarray(np.full((28, 28), i * 20, np.uint8)).save(images / f"{i}.png")
    args = tiny_args(tmp_path / "run", "--resume", str(tiny_run / "checkpoint.pt"))
    args += [e.format(images=images) for e in extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("vaegan-train: error: cannot resume:") and needle in err


def test_resume_from_a_file_that_is_no_checkpoint_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main(tiny_args(tmp_path / "run", "--resume", str(tmp_path / "junk.pt"))) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err.strip().splitlines()[-1]


def decoder_bn_stats(path: Path) -> dict[str, torch.Tensor]:
    """The decoder's BN running means and variances from a checkpoint."""
    state = checkpoint.load(path)["models"]["decoder"]
    return {k: v for k, v in state.items() if k.endswith(("running_mean", "running_var"))}


def test_recalibrate_bn_sets_the_decoder_statistics_to_prior_batches(tmp_path: Path) -> None:
    """--recalibrate-bn N replaces the running BN statistics by their exact average over Dec(z_p)."""
    common = ("--max-steps", "2", "--log-every", "1", "--decoder-ema", "0")
    assert main(tiny_args(tmp_path / "raw", *common, "--recalibrate-bn", "0")) == 0
    assert main(tiny_args(tmp_path / "recal", *common, "--recalibrate-bn", "3")) == 0
    raw, recal = (
        decoder_bn_stats(tmp_path / "raw" / "checkpoint.pt"),
        decoder_bn_stats(tmp_path / "recal" / "checkpoint.pt"),
    )
    assert raw.keys() == recal.keys() and len(raw) == 8  # fc BN1d + three BN2d, mean and var each
    assert any(not torch.allclose(raw[k], recal[k]) for k in raw)

    # Reference: the same decoder weights, statistics averaged over three batches of prior latents.
    ckpt = checkpoint.load(tmp_path / "recal" / "checkpoint.pt")
    model = VAEGAN(ModelConfig.from_dict(ckpt["model_config"]))
    model.decoder.load_state_dict(ckpt["models"]["decoder"])
    generator = torch.Generator().manual_seed(3 + 0x5EED)  # the run's seed, as trainer.loop draws them
    norm = model.decoder.fc[1]
    z = [torch.randn((4, model.config.latent_dim), generator=generator) for _ in range(3)]
    norm.reset_running_stats()
    norm.momentum = None
    model.decoder.train()
    with torch.no_grad():
        for batch in z:
            model.decoder(batch)
    assert torch.allclose(norm.running_mean, recal["fc.1.running_mean"], atol=1e-6)
    assert torch.allclose(norm.running_var, recal["fc.1.running_var"], atol=1e-6)


def test_pixel_sigma_reaches_the_objective(tmp_path: Path) -> None:
    assert main(tiny_args(tmp_path, "--mode", "vae", "--pixel-sigma", "0.3", "--max-steps", "1")) == 0
    assert checkpoint.load(tmp_path / "checkpoint.pt")["objective"]["pixel_sigma"] == 0.3


def test_decoder_ema_is_kept_recalibrated_and_resumable(tmp_path: Path) -> None:
    """--decoder-ema: the average is a separate decoder, ramped (TF's num_updates), BN recalibrated."""
    assert main(tiny_args(tmp_path, "--max-steps", "3", "--decoder-ema", "0.999", "--recalibrate-bn", "2")) == 0
    ckpt = checkpoint.load(tmp_path / "checkpoint.pt")
    assert ckpt["train_config"]["decoder_ema"] == 0.999 and ckpt["decoder_ema"]["updates"] == 3
    last, average = ckpt["models"]["decoder"], ckpt["decoder_ema"]["state"]
    assert last.keys() == average.keys()
    assert not torch.allclose(last["out.weight"], average["out.weight"])  # 3 updates at decay 2/11, 3/12
    # The average moved from the first weights towards the last: it lies between them.
    gap = (average["out.weight"] - last["out.weight"]).abs().max()
    assert 0 < gap < 1e-2


def test_recipe_paper_keeps_the_papers_settings(tmp_path: Path) -> None:
    from trainer.cli import parse_args

    paper = parse_args([*tiny_args(tmp_path), "--recipe", "paper"])
    p = paper.objective
    assert (p.gamma, p.generator_loss, p.dis_passes, paper.decoder_ema, p.pixel_sigma) == (
        1e-6,
        "minimax",
        "joint",
        0,
        1,
    )
    default = parse_args([*tiny_args(tmp_path), "--gamma", "0.5"])
    d = default.objective
    assert (default.recipe, d.gamma, d.dis_passes, d.generator_loss) == ("default", 0.5, "separate", "nonsaturating")
    assert default.decoder_ema == 0.999 and d.pixel_sigma == 0.3


def test_export_without_the_ema_recalibrates_the_last_decoder(tmp_path: Path) -> None:
    """use_ema=False: the last weights, with BN statistics recalibrated as the run did for the EMA."""
    assert main(tiny_args(tmp_path, "--max-steps", "2", "--decoder-ema", "0.9", "--recalibrate-bn", "2")) == 0
    raw = checkpoint.load(tmp_path / "checkpoint.pt")["models"]["decoder"]
    with_ema, _ = checkpoint.load_model(tmp_path / "checkpoint.pt")
    last, ckpt = checkpoint.load_model(tmp_path / "checkpoint.pt", use_ema=False)
    assert ckpt["decoder_ema"] is None
    assert torch.equal(last.decoder.state_dict()["out.weight"], raw["out.weight"])
    assert not torch.equal(with_ema.decoder.state_dict()["out.weight"], raw["out.weight"])
    assert not torch.allclose(last.decoder.state_dict()["fc.1.running_mean"], raw["fc.1.running_mean"])


def test_run_json_tells_how_the_run_was_made(tiny_run: Path) -> None:
    record = json.loads((tiny_run / "run.json").read_text())
    assert record["options"]["batch_size"] == 4 and record["options"]["prior_components"] == 2
    assert record["versions"]["torch"] == torch.__version__ and record["versions"]["python"]
    assert record["device"] == "cpu" and record["world_size"] == 1 and record["resumed_from"] is None
    assert record["git"] is None or len(record["git"]["commit"]) == 40


@pytest.mark.slow
def test_tensorboard_events_hold_the_scalars_grids_and_hparams(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert main(tiny_args(out, "--max-steps", "4", "--log-every", "2", "--tensorboard")) == 0
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    assert {"train/enc_loss", "train/kl", "train/dis_loss"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("train/kl")] == [2, 4]
    assert {"samples/prior", "samples/reconstructions"} <= set(tags["images"])
    runs = [p for p in (out / "tensorboard").rglob("events.out.tfevents.*")]
    assert len(runs) >= 2  # the training events and the HPARAMS run beside them


@pytest.mark.slow
def test_r1_and_kl_weight_run_and_are_recorded_with_the_recipe_options(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(tiny_args(out, "--max-steps", "2", "--r1-gamma", "0.1", "--r1-every", "1", "--kl-weight", "2")) == 0
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    saved = ckpt["train_config"]
    assert (saved["r1_gamma"], saved["r1_every"]) == (0.1, 1)
    assert ckpt["objective"]["kl_weight"] == 2.0
