"""Micro-batching: concurrent requests to one network share a single ONNX Runtime call.

A request hands its inputs to the network's ``MicroBatcher`` — named arrays with the same number
of rows, as the ONNX session takes them (``{"z": (n, Z), "label": (n, K)}``) — and awaits a
future. One worker task per network takes the oldest rows, waits up to ``max_wait_s`` for more to
arrive (never past ``max_batch`` rows), runs the concatenation in a thread, and hands each request
its slice of the outputs; while ``workers`` batches run, the next one is already being gathered.
The queue is bounded in rows: when full, ``Overloaded`` (503) is raised at once instead of letting
memory grow. A request whose client went away is cancelled; its rows are dropped if not yet taken,
and its slice is discarded if it was, without disturbing the others.

``DirectRunner`` is the same interface without gathering (batching off): each request runs alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from service.errors import Overloaded

log = logging.getLogger(__name__)

Inputs = dict[str, np.ndarray]  # input name -> (rows, ...), every array with the same rows
Outputs = tuple[np.ndarray, ...]  # one array per ONNX output, each (rows, ...)
RunFn = Callable[[Inputs], Sequence[np.ndarray]]  # blocking: called in an executor thread


def row_count(inputs: Inputs) -> int:
    """The rows of a request's inputs; ValueError when the named arrays disagree."""
    counts = {len(array) for array in inputs.values()}
    if len(counts) != 1:
        raise ValueError(f"inputs {sorted(inputs)} must have the same number of rows, not {sorted(counts)}")
    return counts.pop()


def _slice(inputs: Inputs, start: int, stop: int) -> Inputs:
    return {name: array[start:stop] for name, array in inputs.items()}


def _concatenate(parts: Sequence[Inputs]) -> Inputs:
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


class Runner(Protocol):
    """What the runtime needs from a batcher: run rows, start, drain."""

    async def __call__(self, inputs: Inputs) -> Outputs: ...
    def start(self) -> None: ...
    async def close(self) -> None: ...


@dataclass
class _Item:
    inputs: Inputs  # each (rows, ...) with rows <= max_batch
    rows: int
    future: asyncio.Future[Outputs] = field(repr=False)


class MicroBatcher:
    """Gathers rows for one network up to ``max_batch`` / ``max_wait_s`` and runs them together."""

    def __init__(
        self,
        name: str,
        run: RunFn,
        executor: Executor,
        *,
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        workers: int = 1,
        retry_after_s: int = 1,
        on_depth: Callable[[int], None] | None = None,
        on_reject: Callable[[], None] | None = None,
    ) -> None:
        self.name, self._run, self._executor = name, run, executor
        self._slots = asyncio.Semaphore(workers)  # batches of this network running at once
        self._running: set[asyncio.Task[None]] = set()
        self.max_batch, self.max_wait_s, self.max_queue = max_batch, max_wait_s, max_queue
        self._retry_after = str(retry_after_s)
        self._on_depth, self._on_reject = on_depth or (lambda _: None), on_reject or (lambda: None)
        self._pending: deque[_Item] = deque()
        self._waiting_rows = 0
        self._arrived = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def waiting_rows(self) -> int:
        return self._waiting_rows

    def start(self) -> None:
        self._task = asyncio.create_task(self._work(), name=f"batcher-{self.name}")

    async def __call__(self, inputs: Inputs) -> Outputs:
        """Run ``inputs`` (n rows each) through the network, batched with whatever else is waiting."""
        if self._closing:
            raise Overloaded(f"{self.name}: the model is being replaced; retry", {"Retry-After": self._retry_after})
        n = row_count(inputs)
        if self._waiting_rows + n > self.max_queue:
            self._on_reject()
            raise Overloaded(
                f"{self.name}: {self._waiting_rows} rows are already queued (limit {self.max_queue}); retry later",
                {"Retry-After": self._retry_after},
            )
        loop = asyncio.get_running_loop()
        items = [
            _Item(_slice(inputs, i, i + self.max_batch), min(self.max_batch, n - i), loop.create_future())
            for i in range(0, n, self.max_batch)
        ]
        self._pending.extend(items)
        self._waiting_rows += n
        self._on_depth(self._waiting_rows)
        self._arrived.set()
        if len(items) == 1:  # the usual case: no gather (it costs a future and a callback per request)
            return await items[0].future  # cancelled with the request
        parts = await asyncio.gather(*(item.future for item in items))  # cancelled with the request
        return tuple(np.concatenate(chunk) for chunk in zip(*parts, strict=True))

    async def close(self) -> None:
        """Finish every queued row, then stop the worker."""
        self._closing = True
        self._arrived.set()
        if self._task is not None:
            await self._task

    def _take(self) -> list[_Item]:
        """The oldest live items, at most ``max_batch`` rows (always at least one item)."""
        batch: list[_Item] = []
        rows = 0
        while self._pending:
            item = self._pending[0]
            if item.future.done():  # the client went away before its rows were taken
                self._pending.popleft()
                self._waiting_rows -= item.rows
                continue
            if batch and rows + item.rows > self.max_batch:
                break
            self._pending.popleft()
            self._waiting_rows -= item.rows
            batch.append(item)
            rows += item.rows
        self._on_depth(self._waiting_rows)
        return batch

    async def _gather_more(self) -> None:
        """Give late rows until ``max_wait_s`` after the first one to join, unless the batch is full."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while self._waiting_rows < self.max_batch and not self._closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    async def _work(self) -> None:
        while True:
            while not self._pending:
                if self._closing:
                    await asyncio.gather(*self._running)
                    return
                self._arrived.clear()
                await self._arrived.wait()
            await self._slots.acquire()  # gather while the previous batch runs
            if self.max_wait_s > 0:
                await self._gather_more()
            batch = self._take()
            if not batch:
                self._slots.release()
                continue
            task = asyncio.create_task(self._run_batch(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run_batch(self, batch: list[_Item]) -> None:
        """Run one batch in the executor and hand every live request its slice."""
        try:
            inputs = _concatenate([item.inputs for item in batch]) if len(batch) > 1 else batch[0].inputs
            loop = asyncio.get_running_loop()
            try:
                outputs = await loop.run_in_executor(self._executor, self._run, inputs)
            except Exception as exc:
                log.exception("%s: batch of %d rows failed", self.name, sum(item.rows for item in batch))
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                return
            start = 0
            for item in batch:
                stop = start + item.rows
                if not item.future.done():  # a cancelled request just drops its slice
                    item.future.set_result(tuple(out[start:stop] for out in outputs))
                start = stop
        finally:
            self._slots.release()


class DirectRunner:
    """Batching off: every request is one ONNX Runtime call of its own rows (bounded in flight)."""

    def __init__(
        self,
        name: str,
        run: RunFn,
        executor: Executor,
        *,
        max_queue: int,
        retry_after_s: int = 1,
        on_reject: Callable[[], None] | None = None,
    ) -> None:
        self.name, self._run, self._executor, self.max_queue = name, run, executor, max_queue
        self._retry_after = str(retry_after_s)
        self._on_reject = on_reject or (lambda: None)
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        """Nothing to start: calls go straight to the executor."""

    async def __call__(self, inputs: Inputs) -> Outputs:
        n = row_count(inputs)
        if self._in_flight + n > self.max_queue:
            self._on_reject()
            raise Overloaded(
                f"{self.name}: {self._in_flight} rows in flight (limit {self.max_queue}); retry later",
                {"Retry-After": self._retry_after},
            )
        self._in_flight += n
        self._idle.clear()
        try:
            loop = asyncio.get_running_loop()
            return tuple(await loop.run_in_executor(self._executor, self._run, inputs))
        finally:
            self._in_flight -= n
            if self._in_flight == 0:
                self._idle.set()

    async def close(self) -> None:
        await self._idle.wait()
