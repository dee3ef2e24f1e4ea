"""First-in, first-out admission in front of httpx's connection pool.

httpcore's pool re-examines every queued request against every connection on each change (O(queued x
connections)); with thousands of streams queued behind a large pool that bookkeeping alone blocks an event loop
for seconds. Admitting at most ``max_connections`` requests into the pool, in arrival order, keeps the pool's queue
empty and makes waiting cost O(1).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque

__all__ = ["AsyncLimiter", "Limiter", "LoopBudget"]


class Limiter:
    """A blocking limiter for the sync client (threads queue on a semaphore)."""

    __slots__ = ("_semaphore", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._semaphore = threading.BoundedSemaphore(limit)

    def acquire(self, timeout: float | None) -> bool:
        """Take a slot; ``False`` if none came within ``timeout`` seconds."""
        return self._semaphore.acquire(timeout=timeout)

    def release(self) -> None:
        self._semaphore.release()


class AsyncLimiter:
    """A FIFO limiter for the async client: a slot is handed straight to the oldest waiter."""

    __slots__ = ("_free", "_waiters", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = limit
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self, timeout: float | None) -> bool:
        """Take a slot; ``False`` if none came within ``timeout`` seconds."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        timer = None if timeout is None else loop.call_later(timeout, _time_out, waiter)
        try:
            await waiter
        except asyncio.TimeoutError:
            return False
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release()  # the slot arrived together with the cancellation: pass it on
            else:
                waiter.cancel()
            raise
        finally:
            if timer is not None:
                timer.cancel()
        return True

    def release(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError())


class LoopBudget:
    """Cooperative fairness for many streams on one event loop.

    A stream whose data is already buffered parses it without ever suspending, so a thousand streams woken in
    the same loop iteration would run back to back for seconds. Streams charge this budget as they work; once
    this loop iteration has spent ``slice`` seconds in them, each one yields (``await asyncio.sleep(0)``) after
    its current chunk, which moves the rest of the work to the next iteration: timers and other tasks run in
    between. The iteration boundary is found with a ``call_soon`` marker (it runs in the next iteration).
    """

    __slots__ = ("_armed", "_slice", "_started")

    def __init__(self, slice_seconds: float = 0.02) -> None:
        self._slice = slice_seconds
        self._started = 0.0
        self._armed = False

    def exhausted(self) -> bool:
        """``True`` when the caller should yield to the loop now."""
        now = time.perf_counter()
        if not self._armed:
            self._armed = True
            self._started = now
            asyncio.get_running_loop().call_soon(self._rearm)
            return False
        return now - self._started > self._slice

    def _rearm(self) -> None:
        self._armed = False
