"""The top entries of a py-spy profile: where a running ``vaegan-serve`` spends its CPU.

Record a server under load, then summarise the collapsed stacks::

    py-spy record --pid PID --nonblocking --duration 20 --rate 250 --format raw -o prof.raw
    python -m bench.flame prof.raw [--top 20]

Each line of the raw format is one stack (frames root first, ``;``-separated) and its sample
count. A frame is ``function (file:line)``; lines are dropped so that one function is one entry.
"Self" is the share of samples whose innermost frame is that function; "total" the share whose
stack contains it at all (a flame graph's bar width). Worker threads that only wait are not
meant to be sampled, but py-spy's ``--nonblocking`` mode (the one that does not pause the server)
still records threads parked in a wait; stacks whose innermost frame is one of those waits
(``IDLE``) are dropped unless ``--idle``, so the shares are shares of busy samples.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")
# Innermost frames of threads that wait: the executors' queues, the event loop's epoll.
IDLE = frozenset(
    {
        "Condition.wait (threading.py)",
        "_worker (concurrent/futures/thread.py)",
        "EpollSelector.select (selectors.py)",
        "Queue.get (queue.py)",
    }
)
_SITE = re.compile(r"\((?:.*/site-packages/|.*/lib/python3\.\d+/)?")


def frame_name(frame: str) -> str:
    """``fn (/x/site-packages/pkg/mod.py:12)`` -> ``fn (pkg/mod.py)``: one entry per function."""
    return _SITE.sub("(", _LINE.sub(")", frame.strip()), count=1)


def tally(lines: list[str], idle: bool = False) -> tuple[Counter[str], Counter[str], int]:
    """(self samples, total samples, all samples) per function; waits dropped unless ``idle``."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [frame_name(f) for f in stack.split(";") if f]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames or (not idle and frames[-1] in IDLE):
            continue
        samples += n
        own[frames[-1]] += n
        for name in set(frames):
            total[name] += n
    return own, total, samples


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("raw", type=Path, help="py-spy record --format raw output")
    p.add_argument("--top", type=int, default=20, help="entries per table (default 20)")
    p.add_argument("--idle", action="store_true", help="keep the samples of waiting threads")
    args = p.parse_args(argv)
    own, total, samples = tally(args.raw.read_text().splitlines(), args.idle)
    print(f"{samples} samples")
    for title, counts in (("self", own), ("total", total)):
        print(f"\n{title:>6s}  function")
        for name, n in counts.most_common(args.top):
            print(f"{100 * n / samples:5.1f}%  {name}")


if __name__ == "__main__":
    main(sys.argv[1:])
