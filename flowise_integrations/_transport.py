"""Several small httpx connection pools behind one transport.

httpcore's pool does O(connections) bookkeeping on every request it admits or releases; at a thousand concurrent
streams a burst of arrivals (or of endings) then blocks an event loop for about a second. Splitting the same
connection budget over shards of at most :data:`SHARD_SIZE` connections, and sending each request to the shard
with the fewest requests in flight, keeps every pool operation small without lowering the budget. Each shard's
pool runs on the socket-tracking backend (``_control.py``), so cancel and deadline reach its sockets.
"""

from __future__ import annotations

import math
import threading
from collections.abc import AsyncIterator, Iterator

import httpx

from ._control import track_async_transport, track_transport

__all__ = ["SHARD_SIZE", "AsyncShardedTransport", "ShardedTransport"]

SHARD_SIZE = 100


def _shard_limits(limits: httpx.Limits) -> tuple[int, httpx.Limits]:
    total = limits.max_connections
    if total is None or total <= SHARD_SIZE:
        return 1, limits
    shards = math.ceil(total / SHARD_SIZE)
    keepalive = limits.max_keepalive_connections
    return shards, httpx.Limits(
        max_connections=math.ceil(total / shards),
        max_keepalive_connections=None if keepalive is None else max(1, math.ceil(keepalive / shards)),
        keepalive_expiry=limits.keepalive_expiry,
    )


class _Counted(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, done: _Done) -> None:
        self._inner = inner
        self._done = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._inner)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._done()


class _AsyncCounted(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, done: _Done) -> None:
        self._inner = inner
        self._done = done

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._inner.__aiter__()

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._done()


class _Done:
    """Decrements one shard's in-flight count exactly once."""

    __slots__ = ("_counts", "_index", "_lock")

    def __init__(self, counts: list[int], index: int, lock: threading.Lock) -> None:
        self._counts = counts
        self._index = index
        self._lock = lock

    def __call__(self) -> None:
        with self._lock:
            if self._index >= 0:
                self._counts[self._index] -= 1
                self._index = -1


class ShardedTransport(httpx.BaseTransport):
    """A sync transport over ``ceil(max_connections / 100)`` tracked ``httpx.HTTPTransport`` pools."""

    def __init__(self, limits: httpx.Limits) -> None:
        shards, each = _shard_limits(limits)
        ssl_context = httpx.create_ssl_context()  # one for all shards (each costs ~15 ms to load)
        self._shards = [httpx.HTTPTransport(verify=ssl_context, limits=each) for _ in range(shards)]
        for shard in self._shards:
            track_transport(shard)
        self._counts = [0] * shards
        self._lock = threading.Lock()

    def _pick(self) -> int:
        with self._lock:
            counts = self._counts
            index = counts.index(min(counts)) if len(counts) > 1 else 0
            counts[index] += 1
        return index

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        index = self._pick()
        done = _Done(self._counts, index, self._lock)
        try:
            response = self._shards[index].handle_request(request)
        except BaseException:
            done()
            raise
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _Counted(response.stream, done)
        return response

    def close(self) -> None:
        for shard in self._shards:
            shard.close()


class AsyncShardedTransport(httpx.AsyncBaseTransport):
    """The async twin of :class:`ShardedTransport`."""

    def __init__(self, limits: httpx.Limits) -> None:
        shards, each = _shard_limits(limits)
        ssl_context = httpx.create_ssl_context()
        self._shards = [httpx.AsyncHTTPTransport(verify=ssl_context, limits=each) for _ in range(shards)]
        for shard in self._shards:
            track_async_transport(shard)
        self._counts = [0] * shards
        self._lock = threading.Lock()  # uncontended on one loop; keeps _Done shared with the sync flavour

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        counts = self._counts
        index = counts.index(min(counts)) if len(counts) > 1 else 0
        counts[index] += 1
        done = _Done(counts, index, self._lock)
        try:
            response = await self._shards[index].handle_async_request(request)
        except BaseException:
            done()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _AsyncCounted(response.stream, done)
        return response

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()
