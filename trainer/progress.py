"""What a run reports while it trains: the tqdm bar (or plain lines), and metrics.jsonl."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

logger = logging.getLogger(__name__)

# Logged per window of --log-every steps, averaged on the device (no host sync between logs).
LOSS_KEYS = ("enc_loss", "dec_loss", "dis_loss", "kl", "llike", "gan", "dis_acc_real", "dis_acc_fake")
BAR_KEYS = ("enc_loss", "dec_loss", "dis_loss", "kl")


class TqdmLoggingHandler(logging.StreamHandler):
    """Log records through tqdm.write, so they never tear a live progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


class LossMeter:
    """Sums the step logs on their device; ``take`` averages them with one host sync."""

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.present: list[str] = []
        self.steps = 0
        self.since = time.perf_counter()

    def add(self, logs: dict[str, torch.Tensor]) -> None:
        if self.total is None:
            self.present = [k for k in LOSS_KEYS if k in logs]
        values = torch.stack([logs[k].float() for k in self.present])  # (K,), on the device
        self.total = values if self.total is None else self.total + values
        self.steps += 1

    def take(
        self, images_per_step: int, reduce: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> dict[str, Any]:
        """Window means (None for terms this mode has not), images/s; starts a new window.

        ``reduce`` averages the sums over processes (DDP), so every rank logs the same numbers.
        """
        total = self.total if self.total is None or reduce is None else reduce(self.total)
        means = (total / self.steps).tolist() if total is not None else []
        elapsed = time.perf_counter() - self.since  # after the sync of tolist()
        window = dict(zip(self.present, means, strict=True))
        result: dict[str, Any] = {k: window.get(k) for k in LOSS_KEYS}
        result["images_per_s"] = self.steps * images_per_step / elapsed if elapsed > 0 else math.nan
        self.total, self.steps, self.since = None, 0, time.perf_counter()
        return result


class MetricsFile:
    """metrics.jsonl, one JSON object per line; on resume, lines past the checkpoint are dropped."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        if resume_step is not None and path.exists():
            kept = [line for line in path.read_text().splitlines() if _line_step(line) <= resume_step]
            path.write_text("".join(line + "\n" for line in kept))
        elif resume_step is None:
            path.write_text("")

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


def _line_step(line: str) -> float:
    """The step of one metrics.jsonl line (inf when it is unreadable, e.g. cut by a kill)."""
    try:
        return float(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return math.inf


class Progress:
    """A tqdm bar with live losses on a terminal; plain periodic log lines elsewhere."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        self.live = enabled and sys.stderr.isatty()
        self.bar = tqdm(
            total=total, initial=initial, disable=not self.live, file=sys.stderr, dynamic_ncols=True, unit="step"
        )
        self.enabled = enabled
        self.total = total

    def advance(self) -> None:
        self.bar.update(1)

    def report(self, record: dict[str, Any]) -> None:
        """Show one metrics record."""
        if not self.enabled:
            return
        shown = {k: f"{record[k]:.4g}" for k in BAR_KEYS if record.get(k) is not None}
        shown["img/s"] = f"{record['images_per_s']:.0f}"
        if self.live:
            self.bar.set_postfix(shown, refresh=False)
        else:
            text = " ".join(f"{k}={v}" for k, v in shown.items())
            logger.info("step %d/%d epoch %.2f %s", record["step"], self.total, record["epoch"], text)

    def close(self) -> None:
        self.bar.close()
