"""This checkout, for the subprocesses the tests start (vaegan-serve, vaegan-train, ``python -m``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def checkout_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """``base`` (this process's environment unless given) plus ``extra``, with this checkout first on PYTHONPATH:
    the subprocess imports this checkout's packages, and finds whatever the PYTHONPATH already named after them."""
    env = {**(os.environ if base is None else base), **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env
