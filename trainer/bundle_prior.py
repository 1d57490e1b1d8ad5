"""A fitted prior for a bundle that has none: ``vaegan-export models/NAME/VERSION --models-dir ... --name ...``.

Bundles exported before runs fitted a prior (and bundles whose checkpoint is gone) sample N(0, I)
only. This encodes the bundle's own training split with its own encoder.onnx (the same
preprocessing: the dataset is reloaded by the manifest's name), fits the prior as a finished run
does (trainer/prior.py) and publishes a new version: the same network files, byte for byte, plus
prior.npz (and class_means.npy when the data is labelled and the bundle lacked them).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort

from model_core import bundle
from model_core.export import ExportError
from model_core.images import one_hot, to_value_range
from trainer.config import UsageError
from trainer.datasets import load_dataset
from trainer.mnist import DataError
from trainer.prior import fit_prior, mean_by_class

log = logging.getLogger(__name__)
BATCH = 500


def encode_onnx(loaded: bundle.Bundle, images: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(mu, logvar) (N, Z) of uint8 images through the bundle's encoder.onnx (one-hot labels when conditional)."""
    session = ort.InferenceSession(loaded.read("encoder.onnx"), providers=["CPUExecutionProvider"])
    value_range = loaded.manifest.preprocessing.value_range
    k = loaded.manifest.num_classes
    mus, logvars = [], []
    for start in range(0, len(images), BATCH):
        feeds = {"image": to_value_range(images[start : start + BATCH], value_range)}
        if k:
            assert labels is not None
            feeds["label"] = one_hot(labels[start : start + BATCH], k)
        mu, logvar = session.run(["mu", "logvar"], feeds)
        mus.append(mu)
        logvars.append(logvar)
    return np.concatenate(mus), np.concatenate(logvars)


def add_prior(source: Path, models_dir: Path, name: str, version: str | None, data_dir: Path) -> Path:
    """Publish ``source`` again as models_dir/name/version with a fitted prior; return the new bundle folder."""
    bundle.validate_name(name)  # before the work: a bad name or version is refused at once
    if version is not None:
        bundle.validate_name(version, "version")
    loaded = bundle.load_bundle(source)
    manifest = loaded.manifest
    image = manifest.image
    try:
        data = load_dataset(manifest.dataset, image.channels, image.height, data_dir)
    except (UsageError, DataError, OSError) as exc:
        raise ExportError(f"{source}: its training data ({manifest.dataset}) cannot be read: {exc}") from None
    labels = data.train_labels
    if manifest.num_classes and labels is None:
        raise ExportError(f"{source}: a conditional bundle, but {manifest.dataset} came without labels")
    log.info("encoding %d training images of %s with %s", len(data.train), manifest.dataset, source)
    mu, logvar = encode_onnx(loaded, data.train, labels)
    classes = len(data.class_names) if labels is not None else 0
    prior, info = fit_prior(mu, labels, classes, manifest.training.seed, variance=np.exp(logvar))
    contents = {f: loaded.read(f) for f in manifest.files}  # the bytes verified, byte for byte
    contents[bundle.PRIOR] = bundle.prior_bytes(prior, manifest.latent_dim, len(prior.classes))
    export = {**manifest.export, "prior_added_to": f"{manifest.name}/{manifest.version}"}
    update: dict[str, object] = {"name": bundle.validate_name(name), "prior": info, "export": export}
    if labels is not None and manifest.class_means is None:
        means = mean_by_class(mu, labels, classes)
        contents[bundle.CLASS_MEANS] = bundle.class_means_bytes(means, classes, manifest.latent_dim)
        update.update(class_means=bundle.CLASS_MEANS, class_names=tuple(data.class_names))
    update["version"] = bundle.validate_name(version, "version") if version else bundle.default_version(contents)
    update["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    update["files"] = {f: hashlib.sha256(data).hexdigest() for f, data in contents.items()}
    new = manifest.model_copy(update=update)
    bundle.check_manifest(new)  # what a reader will check, before anything is published
    return bundle.write_bundle(models_dir, new, contents)
