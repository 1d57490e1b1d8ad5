"""The micro-batcher on a fake network: gathering, splitting, bounds, cancellation, failure, drain."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from service.batching import DirectRunner, MicroBatcher
from service.errors import Overloaded


class FakeNetwork:
    """Doubles its input; records every batch size; can be slowed down or made to fail."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.batches: list[int] = []
        self.delay_s, self.fail = delay_s, fail
        self.lock = threading.Lock()

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        rows = inputs["x"]
        with self.lock:
            self.batches.append(len(rows))
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("boom")
        return [rows * 2, rows.sum(axis=1)]


def run(coro):
    return asyncio.run(coro)


def values(start: int, n: int) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.float32)[:, None].repeat(3, axis=1)  # (n, 3)


def rows(start: int, n: int) -> dict[str, np.ndarray]:
    """A request's inputs: one named array of n rows."""
    return {"x": values(start, n)}


def make(network: FakeNetwork, pool: ThreadPoolExecutor, **kwargs) -> MicroBatcher:
    options = {"max_batch": 8, "max_wait_s": 0.05, "max_queue": 64, **kwargs}
    return MicroBatcher("fake", network, pool, **options)


@pytest.fixture
def pool():
    with ThreadPoolExecutor(2) as executor:
        yield executor


def test_concurrent_requests_share_batches_and_get_their_own_rows(pool) -> None:
    network = FakeNetwork()

    async def main():
        batcher = make(network, pool)
        batcher.start()
        results = await asyncio.gather(*(batcher(rows(10 * i, 2)) for i in range(8)))  # 16 rows
        await batcher.close()
        return results

    results = run(main())
    for i, (doubled, summed) in enumerate(results):
        np.testing.assert_array_equal(doubled, values(10 * i, 2) * 2)
        np.testing.assert_array_equal(summed, values(10 * i, 2).sum(axis=1))
    assert network.batches == [8, 8]  # 16 rows in two full batches, never more than max_batch


def test_large_request_is_split_and_reassembled(pool) -> None:
    network = FakeNetwork()

    async def main():
        batcher = make(network, pool, max_wait_s=0.0)
        batcher.start()
        out = await batcher(rows(0, 20))
        await batcher.close()
        return out

    doubled, _ = run(main())
    np.testing.assert_array_equal(doubled, values(0, 20) * 2)
    assert max(network.batches) <= 8 and sum(network.batches) == 20


def test_full_queue_is_refused_with_retry_after(pool) -> None:
    network = FakeNetwork(delay_s=0.2)
    rejected = []

    async def main():
        batcher = make(network, pool, max_queue=4, max_wait_s=0.0, on_reject=lambda: rejected.append(1))
        batcher.start()
        first = asyncio.create_task(batcher(rows(0, 4)))
        await asyncio.sleep(0)  # queued, not yet taken
        with pytest.raises(Overloaded) as info:
            await batcher(rows(0, 1))
        assert info.value.headers["Retry-After"] == "1"
        await first
        await batcher.close()

    run(main())
    assert rejected == [1]


def test_cancelled_request_does_not_break_the_batch(pool) -> None:
    network = FakeNetwork(delay_s=0.05)

    async def main():
        batcher = make(network, pool, max_wait_s=0.02)
        batcher.start()
        keep = [asyncio.create_task(batcher(rows(i, 1))) for i in range(3)]
        gone = asyncio.create_task(batcher(rows(100, 1)))
        await asyncio.sleep(0.005)
        gone.cancel()  # the client disconnected while waiting
        results = await asyncio.gather(*keep)
        late = asyncio.create_task(batcher(rows(7, 1)))
        await asyncio.sleep(0.03)  # now inside a running batch
        late.cancel()
        after = await batcher(rows(9, 1))
        await batcher.close()
        return results, after

    results, after = run(main())
    for i, (doubled, _) in enumerate(results):
        np.testing.assert_array_equal(doubled, values(i, 1) * 2)
    np.testing.assert_array_equal(after[0], values(9, 1) * 2)
    assert network.batches[0] == 3  # the cancelled rows were dropped before the run


def test_a_failing_batch_fails_its_requests_only(pool) -> None:
    network = FakeNetwork(fail=True)

    async def main():
        batcher = make(network, pool)
        batcher.start()
        outcome = await asyncio.gather(batcher(rows(0, 1)), batcher(rows(1, 1)), return_exceptions=True)
        network.fail = False
        ok = await batcher(rows(2, 1))
        await batcher.close()
        return outcome, ok

    outcome, ok = run(main())
    assert all(isinstance(o, RuntimeError) for o in outcome)
    np.testing.assert_array_equal(ok[0], values(2, 1) * 2)


def test_close_finishes_queued_work(pool) -> None:
    network = FakeNetwork(delay_s=0.02)

    async def main():
        batcher = make(network, pool, max_batch=2, max_wait_s=0.0)
        batcher.start()
        tasks = [asyncio.create_task(batcher(rows(i, 1))) for i in range(6)]
        await asyncio.sleep(0)
        await batcher.close()
        assert all(t.done() for t in tasks)
        with pytest.raises(Overloaded):
            await batcher(rows(0, 1))
        return [t.result()[0] for t in tasks]

    outs = run(main())
    assert len(outs) == 6 and sum(network.batches) == 6


def test_several_workers_run_batches_concurrently(pool) -> None:
    """Two one-row batches meet at a barrier inside the network: only concurrent workers get past it."""
    barrier = threading.Barrier(2, timeout=10.0)  # a deadlock guard, not a timing: serial runs break it

    def network(inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        barrier.wait()
        return [inputs["x"] * 2, inputs["x"].sum(axis=1)]

    async def main():
        batcher = make(network, pool, max_batch=1, max_wait_s=0.0, workers=2)
        batcher.start()
        outs = await asyncio.gather(batcher(rows(0, 1)), batcher(rows(1, 1)))
        await batcher.close()
        return outs

    outs = run(main())
    np.testing.assert_array_equal(outs[1][0], values(1, 1) * 2)


def test_direct_runner_runs_each_request_alone(pool) -> None:
    network = FakeNetwork()

    async def main():
        runner = DirectRunner("fake", network, pool, max_queue=8)
        runner.start()
        outs = await asyncio.gather(*(runner(rows(i, 2)) for i in range(3)))
        with pytest.raises(Overloaded):
            await runner(rows(0, 9))
        await runner.close()
        return outs

    outs = run(main())
    assert sorted(network.batches) == [2, 2, 2]
    np.testing.assert_array_equal(outs[1][0], values(1, 2) * 2)


def test_named_inputs_are_batched_together_and_each_request_gets_its_rows(pool) -> None:
    """A conditional network's two inputs (z and its label) travel together and are split alike."""
    seen: list[dict[str, np.ndarray]] = []

    def network(inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        seen.append(inputs)
        return [inputs["z"] + inputs["label"]]

    async def main():
        batcher = make(network, pool)
        batcher.start()
        requests = [{"z": values(10 * i, 2), "label": np.full((2, 3), i, np.float32)} for i in range(3)]
        outs = await asyncio.gather(*(batcher(r) for r in requests))
        with pytest.raises(ValueError, match="same number of rows"):
            await batcher({"z": values(0, 2), "label": np.zeros((1, 3), np.float32)})
        await batcher.close()
        return outs

    outs = run(main())
    for i, (out,) in enumerate(outs):
        np.testing.assert_array_equal(out, values(10 * i, 2) + i)
    assert sorted(seen[0]) == ["label", "z"] and len(seen) < 3  # gathered into fewer calls
