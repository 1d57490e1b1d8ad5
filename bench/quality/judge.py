"""The judge of bench.quality: a small digit classifier and the metrics computed with it.

Every metric takes plain numpy images, (N, 1, 32, 32) in [-1, 1], so the same code scores
PyTorch modules while tuning and the exported ONNX bundle for the final numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class DigitClassifier(nn.Module):
    """Three 3x3 conv stages (ReLU, 2x2 max pool), fc 128 (the FD-cls features), fc 10."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 16, 16)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 8, 8)
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 4, 4)
        )  # fmt: skip
        self.fc = nn.Sequential(nn.Linear(64 * 16, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations, (B, 128): the space FD-cls is measured in."""
        return self.fc(self.convs(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, 10) logits


def _shift(x: torch.Tensor, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Random translation by up to ``max_shift`` pixels (background -1 fills the gap)."""
    dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=generator))
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    h, w = x.shape[-2:]
    return padded[..., max_shift + dy : max_shift + dy + h, max_shift + dx : max_shift + dx + w]


def train_classifier(x: np.ndarray, y: np.ndarray, epochs: int = 15, seed: int = 0) -> DigitClassifier:
    """Adam 1e-3 decayed to 1e-5 (cosine), batch 128, random 2-pixel shifts; deterministic per seed."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = DigitClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    steps = epochs * -(-len(xt) // 128)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=1e-5)
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 128):
            idx = order[i : i + 128]
            loss = F.cross_entropy(model(_shift(xt[idx], gen)), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def load_or_train_classifier(path: Path, x: np.ndarray, y: np.ndarray) -> DigitClassifier:
    """The cached classifier at ``path``, or train one on (x, y) and cache it there."""
    if path.is_file():
        model = DigitClassifier()
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    model = train_classifier(x, y)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model


@torch.no_grad()
def classify(model: DigitClassifier, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, 128), softmax probabilities (N, 10)) of images (N, 1, 32, 32)."""
    feats, probs = [], []
    for i in range(0, len(images), 500):
        f = model.features(torch.from_numpy(np.ascontiguousarray(images[i : i + 500], dtype=np.float32)))
        feats.append(f.numpy())
        probs.append(torch.softmax(model.head(f), dim=1).numpy())
    return np.concatenate(feats).astype(np.float64), np.concatenate(probs)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2) between Gaussians fitted to (N, D) features.

    Heusel et al. 2017 (FID), here in a digit classifier's feature space. Tr((S_a S_b)^1/2) is the
    sum of the square roots of the eigenvalues of S_a^1/2 S_b S_a^1/2 (symmetric, so eigh is exact).
    """
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    tr_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * tr_sqrt)


def score(
    clf: DigitClassifier,
    real: np.ndarray,
    labels: np.ndarray,
    recon: np.ndarray,
    samples: np.ndarray,
    fd_samples: np.ndarray,
) -> dict[str, float | list[float]]:
    """All quality numbers of one model.

    real, labels: held-out digits and their labels; recon: the model's reconstructions of ``real``;
    samples: prior samples for the confidence and class histogram; fd_samples: prior samples
    (as many as ``real``) for FD-cls.
    """
    real_feats, _ = classify(clf, real)
    _, recon_probs = classify(clf, recon)
    _, sample_probs = classify(clf, samples)
    fd_feats, _ = classify(clf, fd_samples)
    hist = np.bincount(sample_probs.argmax(1), minlength=10) / len(samples)
    return {
        "fd_cls": frechet_distance(real_feats, fd_feats),
        "recon_label_kept": float((recon_probs.argmax(1) == labels).mean()),
        "sample_confidence": float(sample_probs.max(1).mean()),
        "max_class_share": float(hist.max()),
        "class_histogram": [round(float(h), 4) for h in hist],
        "pixel_mse": float(((recon - real) ** 2).mean()),
    }
