"""``python -m service.triton``: the same as ``vaegan-triton``."""

import sys

from service.triton.cli import main

sys.exit(main())
