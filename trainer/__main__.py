"""``python -m trainer``: the same as ``vaegan-train``."""

from trainer.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
