"""What every benchmark reports besides its figures: the machine, and the JSON last line."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def machine(**versions: str) -> dict[str, Any]:
    """CPU count, load average at the end of the run, processor, Python and the given versions."""
    return {
        "cpu_count": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],  # other work on the machine
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        **versions,
    }


def emit(summary: dict[str, Any], out: Path | None) -> None:
    """Write ``summary`` to ``out`` (if given) and print it as the last line of stdout."""
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
