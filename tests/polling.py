"""Waiting for something that becomes true later (a server up, a reload done, a series scraped)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(
    check: Callable[[], T],
    timeout_s: float,
    what: str,
    interval_s: float = 0.1,
    ignore: tuple[type[Exception], ...] = (OSError,),
) -> T:
    """Call ``check`` every ``interval_s`` until it returns something truthy, and return that; an exception in
    ``ignore`` counts as not yet (by default OSError: nothing listening yet). AssertionError naming ``what``
    once ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except ignore as exc:
            last = exc
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last error: {last})")
