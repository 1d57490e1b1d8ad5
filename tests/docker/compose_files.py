"""The compose files as Docker Compose reads them: YAML tags, variable interpolation, override merging.

There is no Docker engine (nor the compose plugin) on the test machines, so the tests resolve the
files here, following the compose specification for the parts our files use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
COMPOSE_CPU = REPO / "docker-compose.cpu.yml"

# Sequences that an override file replaces instead of extending (compose spec, "Merge and override").
_REPLACED_SEQUENCES = {"command", "entrypoint", "test"}


class Reset:
    """`!reset`: the override removes the key (Compose 2.24+)."""


class Override:
    """`!override VALUE`: the override replaces the key's value whole instead of merging it."""

    def __init__(self, value: Any) -> None:
        self.value = value


class _ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's two merge tags."""


def _construct_any(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_ComposeLoader.add_constructor("!reset", lambda loader, node: Reset())
_ComposeLoader.add_constructor("!override", lambda loader, node: Override(_construct_any(loader, node)))


def load(path: Path) -> dict[str, Any]:
    """One compose file as written: Reset / Override objects where the tags are, nothing interpolated."""
    with path.open() as f:
        return yaml.load(f, Loader=_ComposeLoader)


def without_tags(value: Any) -> Any:
    """The document with each tag replaced by what it carries (`!reset` -> empty), for schema checks."""
    if isinstance(value, Reset):
        return {}
    if isinstance(value, Override):
        return without_tags(value.value)
    if isinstance(value, dict):
        return {k: without_tags(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_tags(v) for v in value]
    return value


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Substitute ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR:+alt}, $VAR and $$ in every string."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, Override):
        return Override(interpolate(value.value, env))
    if not isinstance(value, str):
        return value

    def substitute(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        name = m["braced"] or m["named"]
        op, arg = m["op"], m["arg"] or ""
        current = env.get(name)
        present = current is not None and (current != "" or not (op or "").startswith(":"))
        if op in (":-", "-"):
            return current if present else arg
        if op in (":?", "?"):
            if not present:
                raise KeyError(f"required variable {name} is missing: {arg}")
            return current
        if op in (":+", "+"):
            return arg if present else ""
        return current or ""

    return _VARIABLE.sub(substitute, value)


def merge(base: Any, override: Any, key: str = "") -> Any:
    """Compose's override rule for the shapes our files use: mappings merge key by key, scalars and
    command-like sequences are replaced, other sequences are extended; `!reset` removes a key."""
    if isinstance(override, Override):
        return override.value
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for k, v in override.items():
            if isinstance(v, Reset):
                merged.pop(k, None)
            elif k in merged:
                merged[k] = merge(merged[k], v, k)
            else:
                merged[k] = without_tags(v)
        return merged
    if isinstance(base, list) and isinstance(override, list) and key not in _REPLACED_SEQUENCES:
        return base + [v for v in override if v not in base]
    return override


# What a deployer must set (docker-compose.yml has no default for it); config() supplies it unless told not to.
REQUIRED_ENV = {"VAEGAN_GRAFANA_PASSWORD": "a-deployers-password"}


def config(files: list[Path], env: Mapping[str, str] | None = None, required: bool = True) -> dict[str, Any]:
    """What `docker compose -f A -f B config` resolves: the files merged in order, then interpolated
    (with REQUIRED_ENV unless ``required`` is False)."""
    merged: dict[str, Any] = {}
    for path in files:
        merged = merge(merged, load(path))
    return interpolate(merged, {**(REQUIRED_ENV if required else {}), **(env or {})})


def volume_mounts(service: Mapping[str, Any]) -> dict[str, tuple[str, bool]]:
    """Short-syntax volumes of a service: container path -> (source, read_only)."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target, *mode = entry.split(":")
        mounts[target] = (source, "ro" in (mode[0].split(",") if mode else []))
    return mounts
