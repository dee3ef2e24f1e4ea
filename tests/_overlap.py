"""Proof that calls overlap, independent of the machine's speed: every call is held until all are in flight.

A serial implementation never fills the gate; it then opens after ``patience`` (a safety net against hanging,
never a measurement) and the test fails on ``peak < expected``. A slow, loaded machine only fills it later.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import httpx
from _raw_server import Conn, RawServer

from flowise_integrations.testing import FakeFlowise

PATIENCE = 120.0


class Gate:
    """Counts the requests waiting in it; opens when ``expected`` wait at once (or after ``patience``)."""

    def __init__(self, expected: int, patience: float = PATIENCE) -> None:
        self.expected = expected
        self.patience = patience
        self.waiting = 0
        self.peak = 0
        self._open = asyncio.Event()

    async def wait(self) -> None:
        self.waiting += 1
        self.peak = max(self.peak, self.waiting)
        if self.waiting >= self.expected:
            self._open.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._open.wait(), self.patience)
        self._open.set()  # a gate that ran out of patience stays open: the rest pass at once
        self.waiting -= 1


class GatedTransport(httpx.AsyncBaseTransport):
    """Holds every prediction (POST) in ``gate`` before handing it to ``inner``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, gate: Gate) -> None:
        self.inner = inner
        self.gate = gate

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            await self.gate.wait()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@contextlib.contextmanager
def barrier_server(fake: FakeFlowise, expected: int) -> Iterator[tuple[str, list[int]]]:
    """A loopback server (a thread per connection) that answers a prediction only when ``expected`` are in flight.

    Yields ``(base_url, peak)``: ``peak[0]`` is the most predictions the server held at once. The answers are
    FakeFlowise's own bytes (its in-process transport, called once the barrier opened).
    """
    barrier = threading.Barrier(expected, timeout=PATIENCE)
    lock = threading.Lock()
    peak = [0]
    transport = fake.transport()

    def script(conn: Conn) -> None:
        method, target, _ = conn.request.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method == "POST":
            with lock:
                peak[0] = max(peak[0], barrier.n_waiting + 1)
            with contextlib.suppress(threading.BrokenBarrierError):  # broken: serial calls; the test fails on peak
                barrier.wait()
        request = httpx.Request(method, f"http://flowise.test{target}", json={"question": "q", "streaming": True})
        response = transport.handle_request(request)
        assert isinstance(response.stream, httpx.SyncByteStream)
        body = b"".join(response.stream)
        headers = [
            (k, v) for k, v in response.headers.raw if k.lower() not in (b"content-length", b"transfer-encoding")
        ]
        head = f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n".encode()
        head += b"".join(k + b": " + v + b"\r\n" for k, v in headers)
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        conn.send(head + body)

    server = RawServer(script)
    server._server.socket.listen(4 * expected)  # socketserver listens with a backlog of 5: room for every call
    with server as url:
        yield url, peak
