"""A small asyncio HTTP/1.1 server on 127.0.0.1 that plays the app's replies over real sockets.

One background thread runs its own event loop; each connection is an :class:`asyncio.Protocol` (cheap enough
for thousands of concurrent streams). Keep-alive (idle connections close after 5 s, like Node), request
bodies by Content-Length or chunked, chunked replies with one HTTP chunk per event, flushed as written. A
client that goes away (EOF or reset) is noticed at once: writing stops and the run finishes silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Final

from .actions import Chunk, Drop, Hang, Head, Sleep, drain
from .app import FlowiseApp
from .records import RecordedRequest

__all__ = ["LoopbackServer"]

KEEP_ALIVE_TIMEOUT: Final = 5.0
_MAX_HEAD: Final = 64 * 1024
_BAD_REQUEST: Final = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"


class _ClientGone(Exception):
    """The peer closed or reset the connection."""


class _BadRequest(Exception):
    """Unparseable request bytes."""


class _Connection(asyncio.Protocol):
    """One client connection: reads requests, runs them through the app, writes replies."""

    def __init__(self, server: LoopbackServer) -> None:
        self._server = server
        self._buffer = bytearray()
        self._data = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._lost = asyncio.Event()
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._server.connections.add(self)
        self.task = asyncio.get_running_loop().create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._data.set()

    def eof_received(self) -> bool:
        return False  # the client is done: close (Node does the same when it can no longer write)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        self._lost.set()
        self._data.set()
        self._writable.set()
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- request loop -------------------------------------------------------------------------------------
    async def _serve(self) -> None:
        try:
            while not self._lost.is_set():
                try:
                    request = await self._read_request()
                except _BadRequest:
                    self._write(_BAD_REQUEST)
                    break
                if request is None or not await self._respond(request):
                    break
        except (_ClientGone, asyncio.CancelledError):
            pass
        finally:
            if self.transport is not None and not self._lost.is_set():
                self.transport.close()

    async def _wait_data(self, timeout: float | None) -> bool:
        """Wait for more bytes; False on idle timeout or when the client is gone."""
        self._data.clear()
        try:
            await asyncio.wait_for(self._data.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return not self._lost.is_set()

    async def _read_request(self) -> RecordedRequest | None:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            if len(self._buffer) > _MAX_HEAD:
                raise _BadRequest
            if not await self._wait_data(None if self._buffer else KEEP_ALIVE_TIMEOUT):
                return None
        head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 4]
        request_line, *lines = head.split("\r\n")
        try:
            method, target, _version = request_line.split(" ")
            headers = [(name.strip(), value.strip()) for name, _, value in (line.partition(":") for line in lines)]
        except ValueError:
            raise _BadRequest from None
        fields = {name.lower(): value for name, value in headers}
        if "chunked" in fields.get("transfer-encoding", "").lower():
            body = await self._read_chunked()
        else:
            try:
                length = int(fields.get("content-length", "0"))
            except ValueError:
                raise _BadRequest from None
            body = await self._read_exactly(length)
        return RecordedRequest.build(method, target, headers, body)

    async def _read_exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not await self._wait_data(None):
                raise _ClientGone
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def _read_line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            if not await self._wait_data(None):
                raise _ClientGone
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    async def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            try:
                size = int((await self._read_line()).split(b";")[0], 16)
            except ValueError:
                raise _BadRequest from None
            if size == 0:
                while await self._read_line():  # trailers, up to the blank line
                    pass
                return bytes(body)
            body += await self._read_exactly(size)
            await self._read_line()

    # -- replies ------------------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self._lost.is_set() or self.transport is None:
            raise _ClientGone
        self.transport.write(data)

    async def _flush(self) -> None:
        if not self._writable.is_set():
            await self._writable.wait()
        if self._lost.is_set():
            raise _ClientGone

    async def _respond(self, request: RecordedRequest) -> bool:
        """Play one reply; True if the connection may serve another request."""
        reply = self._server.app.handle(request)
        keep_alive = request.headers.get("connection", "").lower() != "close"
        chunked = False
        try:
            for action in reply:
                if isinstance(action, Head):
                    chunked = action.chunked
                    keep_alive = keep_alive and all(
                        not (k.lower() == "connection" and v.lower() == "close") for k, v in action.headers
                    )
                    lines = [f"HTTP/1.1 {action.status} {action.reason}"] + [f"{k}: {v}" for k, v in action.headers]
                    self._write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                elif isinstance(action, Chunk):
                    if chunked:
                        self._write(b"%x\r\n%s\r\n" % (len(action.data), action.data))
                    else:
                        self._write(action.data)
                    await self._flush()
                elif isinstance(action, Sleep):
                    await asyncio.sleep(action.seconds)
                elif isinstance(action, Hang):
                    await self._lost.wait()
                    return False
                elif isinstance(action, Drop):
                    drain(reply)
                    return False
            if chunked:
                self._write(b"0\r\n\r\n")
            await self._flush()
        except _ClientGone:
            drain(reply)
            return False
        except asyncio.CancelledError:
            drain(reply)
            raise
        return keep_alive


class LoopbackServer:
    """Serves a :class:`FlowiseApp` on ``127.0.0.1`` from a background thread."""

    def __init__(self, app: FlowiseApp, port: int = 0) -> None:
        self.app = app
        self.port = port
        self.connections: set[_Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Bind, start the thread, return the base URL."""
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                server = loop.run_until_complete(
                    loop.create_server(lambda: _Connection(self), "127.0.0.1", self.port, backlog=4096)
                )
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            self._server = server
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"FakeFlowise-{id(self):x}", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            raise failure[0]
        return self.base_url

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [c.task for c in self.connections if c.task is not None]
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def stop(self) -> None:
        """Close every connection, stop the loop, join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)
        self._loop = self._thread = self._server = None
