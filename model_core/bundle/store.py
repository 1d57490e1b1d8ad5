"""Bundles on disk: names, checksums, atomic publishing, ``LATEST`` resolution and manifest reading.

A bundle is written into a temporary folder beside its target, fsynced, renamed into place, and
only then is LATEST replaced (also by rename), so a reader never sees half a bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from model_core.bundle.schema import (
    FORMAT_VERSION,
    LATEST,
    MANIFEST,
    NETWORK_FILES,
    BundleError,
    Manifest,
    first_error,
)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # a bundle name or version (validate_name also refuses "..")
_NAME = re.compile(NAME_PATTERN)
_TMP_PREFIX = ".tmp-"


def validate_name(value: str, what: str = "name") -> str:
    """Refuse names that could leave the models folder (``/``, ``..``, hidden or empty names)."""
    if not isinstance(value, str) or not _NAME.match(value) or ".." in value:
        raise BundleError(
            f"invalid model {what} {value!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without '..'"
        )
    return value


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_version(contents: Mapping[str, bytes], now: datetime | None = None) -> str:
    """A sortable version: UTC time, then a short hash of the files' contents."""
    digest = hashlib.sha256()
    for name in sorted(contents):
        digest.update(name.encode() + b"\0" + hashlib.sha256(contents[name]).digest())
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{digest.hexdigest()[:8]}"


# Durable writes: a rename is only as durable as the folder entry that records it.


def fsync_dir(folder: Path) -> None:
    """Persist renames and new entries in ``folder`` (POSIX); skipped where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


# Publishing.


def set_latest(models_dir: Path, name: str, version: str) -> None:
    """Point LATEST at ``version`` atomically (write a temporary file, then rename over)."""
    root = Path(models_dir) / validate_name(name)
    validate_name(version, "version")
    if not (root / version / MANIFEST).is_file():
        raise BundleError(f"bundle {name}/{version}: no such version under {models_dir}")
    tmp = root / f"{_TMP_PREFIX}{LATEST}-{secrets.token_hex(4)}"
    _write_file(tmp, (version + "\n").encode())
    os.replace(tmp, root / LATEST)
    fsync_dir(root)


def write_bundle(
    models_dir: Path,
    manifest: Manifest,
    contents: Mapping[str, bytes],
    update_latest: bool = True,
) -> Path:
    """Publish a bundle atomically and return its folder; an existing version is never overwritten.

    ``contents`` maps each ONNX file name to its bytes; the manifest's ``files`` are filled in here.
    """
    name, version = validate_name(manifest.name), validate_name(manifest.version, "version")
    missing = set(NETWORK_FILES) - set(contents)
    if missing:
        raise BundleError(f"bundle {name}/{version}: missing {', '.join(sorted(missing))}")
    root = Path(models_dir) / name
    target = root / version
    if target.exists():
        raise BundleError(f"bundle {name}/{version}: version already exists at {target}; never overwritten")
    root.mkdir(parents=True, exist_ok=True)

    files = {fname: hashlib.sha256(data).hexdigest() for fname, data in sorted(contents.items())}
    manifest = manifest.model_copy(update={"files": files})
    tmp = root / f"{_TMP_PREFIX}{version}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        for fname, data in contents.items():
            _write_file(tmp / validate_name(fname, "file name"), data)
        _write_file(tmp / MANIFEST, manifest.to_json().encode())
        fsync_dir(tmp)
        if target.exists():  # lost a race with another writer of the same version
            raise BundleError(f"bundle {name}/{version}: version already exists at {target}; never overwritten")
        os.rename(tmp, target)
        fsync_dir(root)
    except BaseException:
        for leftover in tmp.glob("*") if tmp.exists() else ():
            leftover.unlink()
        if tmp.exists():
            tmp.rmdir()
        raise
    if update_latest:
        set_latest(models_dir, name, version)
    return target


# Reading.


def list_bundles(models_dir: Path) -> list[str]:
    """Names of the bundles under ``models_dir`` (folders with a LATEST file), sorted."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    named = (p.name for p in root.iterdir() if _NAME.match(p.name) and (p / LATEST).is_file())
    return sorted(named)


def list_versions(models_dir: Path, name: str) -> list[str]:
    """Published versions of ``name``, oldest first (versions sort by time)."""
    root = Path(models_dir) / validate_name(name)
    if not root.is_dir():
        return []
    published = (p for p in root.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file())
    return sorted(p.name for p in published)


def resolve(models_dir: Path, name: str, version: str | None = None) -> Path:
    """The folder of ``version`` of ``name``; LATEST (or None) reads the LATEST file."""
    root = Path(models_dir) / validate_name(name)
    if version in (None, "", LATEST):
        latest = root / LATEST
        try:
            version = latest.read_text().strip()
        except FileNotFoundError:
            raise BundleError(f"bundle {name}: no {LATEST} file at {latest} (nothing published yet?)") from None
        if not version:
            raise BundleError(f"bundle {name}: {latest} is empty")
    validate_name(version, "version")
    path = root / version
    if not (path / MANIFEST).is_file():
        raise BundleError(f"bundle {name}/{version}: {path / MANIFEST} not found")
    return path


def read_manifest(path: Path) -> Manifest:
    """Parse and validate manifest.json of the bundle at ``path`` (no checksum checks)."""
    label = f"bundle {path.parent.name}/{path.name}"
    try:
        raw = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise BundleError(f"{label}: {MANIFEST} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{label}: {MANIFEST} is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise BundleError(f"{label}: {MANIFEST} is not a JSON object")
    if raw.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{label}: {MANIFEST} has format_version {raw.get('format_version')!r}; "
            f"this build reads format_version {FORMAT_VERSION}"
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        where, message = first_error(exc)
        raise BundleError(f"{label}: {MANIFEST} field {where!r}: {message}") from None


def verify_files(path: Path, manifest: Manifest) -> dict[str, bytes]:
    """Every network file is listed, present and matches its sha256; returns each file's verified bytes.

    Each file is read once: the bytes hashed are the bytes returned, so whoever loads them (onnxruntime,
    numpy) loads exactly what was verified, not a file swapped on disk after the check.
    """
    label = f"bundle {manifest.name}/{manifest.version}"
    for fname in NETWORK_FILES:
        if fname not in manifest.files:
            raise BundleError(f"{label}: {fname} is not listed in {MANIFEST}")
    verified = {}
    for fname, expected in manifest.files.items():
        file = path / validate_name(fname, "file name")
        if not file.is_file():
            raise BundleError(f"{label}: {fname} is missing")
        data = file.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise BundleError(f"{label}: {fname} has sha256 {actual}, the manifest says {expected}")
        verified[fname] = data
    return verified
