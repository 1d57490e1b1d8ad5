"""Settings of the whole suite."""

from __future__ import annotations

import os

# One intra-op thread for torch (and the BLAS under numpy), here and in every subprocess a test starts
# (vaegan-train, vaegan-serve, torchrun): the suite's models are tiny, and on a loaded 2-core box
# threads spin against each other (the compose trainer command took 46 s on two threads, 11 s on one).
# Set before any test module imports torch; a value the caller set stays.
os.environ.setdefault("OMP_NUM_THREADS", "1")
