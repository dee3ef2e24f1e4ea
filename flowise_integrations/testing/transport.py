"""In-process httpx transports (no sockets) that play the app's replies with real-server timing semantics.

A silent stretch longer than the request's read timeout ends in ``httpx.ReadTimeout`` (as with a socket);
a hung request waits for the read timeout (capped when there is none); a cut connection raises
``httpx.RemoteProtocolError`` with httpcore's wording. Closing a response early lets the server side finish
its run, as Flowise does when a client goes away.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Final

import httpx

from .actions import Chunk, Drop, Hang, Head, Reply, Sleep, drain
from .app import FlowiseApp
from .records import RecordedRequest

__all__ = ["AsyncFakeTransport", "FakeTransport"]

HANG_CAP: Final = 300.0
"""How long a hung request waits when the client set no read timeout."""

_NO_RESPONSE: Final = "Server disconnected without sending a response."
_CUT_BODY: Final = "peer closed connection without sending complete message body (incomplete chunked read)"


def _read_timeout(request: httpx.Request) -> float | None:
    timeout = request.extensions.get("timeout") or {}
    value = timeout.get("read") if isinstance(timeout, dict) else None
    return float(value) if value is not None else None


def _recorded(request: httpx.Request, body: bytes) -> RecordedRequest:
    target = request.url.raw_path.decode("ascii", "replace")
    return RecordedRequest.build(request.method, target, request.headers.multi_items(), body)


def _response(
    head: Head, stream: httpx.SyncByteStream | httpx.AsyncByteStream, request: httpx.Request
) -> httpx.Response:
    return httpx.Response(
        head.status,
        headers=list(head.headers),
        stream=stream,
        request=request,
        extensions={"http_version": b"HTTP/1.1", "reason_phrase": head.reason.encode("ascii")},
    )


class FakeTransport(httpx.BaseTransport):
    """Sync transport; :meth:`release` (``FakeFlowise.stop()``) or :meth:`close` wakes waiting requests."""

    def __init__(self, app: FlowiseApp) -> None:
        self._app = app
        self._cond = threading.Condition()
        self._generation = 0
        self._closed = False

    def release(self) -> None:
        """Wake every request currently waiting (sleeping or hung): they fail as if the server went away."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def close(self) -> None:
        """Close the transport; later waits fail at once."""
        self._closed = True
        self.release()

    def _wait(self, seconds: float) -> bool:
        """Wait ``seconds``; False if released (or closed) first."""
        deadline = time.monotonic() + seconds
        with self._cond:
            generation = self._generation
            while not self._closed and self._generation == generation:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True
                self._cond.wait(remaining)
            return False

    def pause(self, seconds: float, request: httpx.Request, *, in_body: bool) -> None:
        """A silent server: sleep, unless the read timeout fires (or the server stops) first."""
        read = _read_timeout(request)
        if not self._wait(seconds if read is None else min(seconds, read)):
            raise httpx.RemoteProtocolError(_CUT_BODY if in_body else _NO_RESPONSE, request=request)
        if read is not None and seconds > read:
            raise httpx.ReadTimeout("timed out", request=request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one request through the app."""
        reply = self._app.handle(_recorded(request, request.read()))
        for action in reply:
            if isinstance(action, Head):
                return _response(action, _SyncBody(self, reply, request), request)
            if isinstance(action, Sleep):
                self._pause_or_drain(action.seconds, request, reply)
            elif isinstance(action, Hang):
                self.pause(_read_timeout(request) or HANG_CAP, request, in_body=False)
                raise httpx.ReadTimeout("timed out", request=request)
            elif isinstance(action, Drop):
                drain(reply)
                raise httpx.RemoteProtocolError(_NO_RESPONSE, request=request)
        raise httpx.RemoteProtocolError(_NO_RESPONSE, request=request)

    def _pause_or_drain(self, seconds: float, request: httpx.Request, reply: Reply) -> None:
        try:
            self.pause(seconds, request, in_body=False)
        except httpx.TransportError:
            drain(reply)
            raise


class _SyncBody(httpx.SyncByteStream):
    def __init__(self, transport: FakeTransport, reply: Reply, request: httpx.Request) -> None:
        self._transport = transport
        self._reply = reply
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        for action in self._reply:
            if isinstance(action, Chunk):
                yield action.data
            elif isinstance(action, Sleep):
                self._transport.pause(action.seconds, self._request, in_body=True)
            elif isinstance(action, Drop):
                raise httpx.RemoteProtocolError(_CUT_BODY, request=self._request)

    def close(self) -> None:
        drain(self._reply)


class AsyncFakeTransport(httpx.AsyncBaseTransport):
    """Async transport: same replies, ``asyncio.sleep`` for latency (cancellable)."""

    def __init__(self, app: FlowiseApp) -> None:
        self._app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one request through the app."""
        reply = self._app.handle(_recorded(request, await request.aread()))
        try:
            for action in reply:
                if isinstance(action, Head):
                    return _response(action, _AsyncBody(reply, request), request)
                if isinstance(action, Sleep):
                    await async_pause(action.seconds, request)
                elif isinstance(action, Hang):
                    await asyncio.sleep(_read_timeout(request) or HANG_CAP)
                    raise httpx.ReadTimeout("timed out", request=request)
                elif isinstance(action, Drop):
                    raise httpx.RemoteProtocolError(_NO_RESPONSE, request=request)
        except BaseException:
            drain(reply)
            raise
        raise httpx.RemoteProtocolError(_NO_RESPONSE, request=request)


async def async_pause(seconds: float, request: httpx.Request) -> None:
    """Sleep like a silent server, unless the read timeout fires first."""
    read = _read_timeout(request)
    await asyncio.sleep(seconds if read is None else min(seconds, read))
    if read is not None and seconds > read:
        raise httpx.ReadTimeout("timed out", request=request)


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, reply: Reply, request: httpx.Request) -> None:
        self._reply = reply
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for action in self._reply:
            if isinstance(action, Chunk):
                yield action.data
            elif isinstance(action, Sleep):
                await async_pause(action.seconds, self._request)
            elif isinstance(action, Drop):
                raise httpx.RemoteProtocolError(_CUT_BODY, request=self._request)

    async def aclose(self) -> None:
        drain(self._reply)
