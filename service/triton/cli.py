"""vaegan-triton BUNDLE OUT: write a model bundle as a Triton Inference Server model repository.

BUNDLE is ``models/NAME`` (the version its LATEST names) or ``models/NAME/VERSION``. Bad input or
a bundle that fails verification ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from model_core.bundle import BundleError
from service.triton.config import ConfigError, InstanceKind, TritonOptions
from service.triton.repository import bundle_folder, write_repository

_DEFAULTS = TritonOptions()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="vaegan-triton", description="Write a vaegan model bundle as a Triton model repository (docs/scaling.md)."
    )
    p.add_argument("bundle", type=Path, help="models/NAME (its LATEST) or models/NAME/VERSION")
    p.add_argument("out", type=Path, help="the model repository folder (created if missing)")
    p.add_argument(
        "--kind", choices=get_args(InstanceKind), default=_DEFAULTS.kind, help="instance_group kind (default gpu)"
    )
    p.add_argument(
        "--instances", type=int, default=_DEFAULTS.instances, help="instances per GPU, or in all on CPU (default 1)"
    )
    p.add_argument(
        "--max-batch", type=int, default=_DEFAULTS.max_batch, help=f"max_batch_size (default {_DEFAULTS.max_batch})"
    )
    p.add_argument(
        "--preferred-batch",
        type=int,
        nargs="*",
        default=list(_DEFAULTS.preferred),
        help=f"preferred_batch_size values (default {' '.join(map(str, _DEFAULTS.preferred))}; none: no preference)",
    )
    p.add_argument(
        "--queue-delay-us",
        type=int,
        default=_DEFAULTS.queue_delay_us,
        help=f"max_queue_delay_microseconds (default {_DEFAULTS.queue_delay_us}, measured on CPU)",
    )
    p.add_argument("--triton-version", type=int, default=_DEFAULTS.version, help="Triton version folder (default 1)")
    p.add_argument("--prefix", help="model names are PREFIX_encoder, ... (default: the bundle's name)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = TritonOptions(
        kind=args.kind,
        instances=args.instances,
        max_batch=args.max_batch,
        preferred=tuple(args.preferred_batch),
        queue_delay_us=args.queue_delay_us,
        version=args.triton_version,
    )
    try:
        written = write_repository(bundle_folder(args.bundle), args.out, options, args.prefix)
    except (BundleError, ConfigError) as exc:
        sys.stderr.write(f"vaegan-triton: {exc}\n")
        return 2
    for model in written:
        sys.stdout.write(f"{model.path / str(model.version)}  ({model.source})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
