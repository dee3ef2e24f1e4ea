"""Stopping a running call from anywhere: cancel, deadline and abandoned streams, without locks or I/O in the
wrong place.

- :class:`CallControl` is the one handle of a running call. ``cancel()`` and a missed deadline only set a flag and
  shut the call's socket down (a single syscall, safe from any thread, a finalizer or a timer), which wakes a
  reader blocked in ``recv`` at once; the reader then closes its response itself, in its own thread or task.
- The socket is known because our httpx transports run on a thin network backend that tells the call running in
  the current thread or task (a context variable) which stream it writes its request on. With a user-supplied
  ``http_client`` there is no such backend: flags are still honoured between reads, and the read timeout (clipped
  to the deadline) bounds a silent server.
- A stream dropped without ``close()`` (a ``break`` without ``with``) must not be closed by a finalizer: httpx
  closes a response under its pool lock, and a finalizer run by the garbage collector inside that lock would
  deadlock the thread. Open responses are therefore held in a registry (never garbage while open), and the
  stream's finalizer only hands its registry key to the :class:`Janitor` thread, which closes it at once. The
  janitor also fires sync deadlines.
- A call stopped in the background (``FlowiseStream.cancel(wait=False)``, ``client.abort(..., wait=False)``, a
  generator closed by the garbage collector) is one more queue put: the janitor closes the connection, then runs
  the abort on a short-lived worker thread (a slow abort never delays a deadline timer) and frees the call's chat
  after it. Aborts still running at exit are waited for, at most :data:`EXIT_WAIT` seconds.
"""

from __future__ import annotations

import atexit
import contextlib
import heapq
import itertools
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

__all__ = [
    "CURRENT_CALL",
    "EXIT_WAIT",
    "CallControl",
    "Janitor",
    "janitor",
    "track_async_transport",
    "track_transport",
    "wait_for_aborts",
]

CURRENT_CALL: ContextVar[CallControl | None] = ContextVar("flowise_current_call", default=None)
"""The call whose request the current thread or task is sending (set around ``http.send``)."""


class CallControl:
    """Flags and the socket of one running call; every method is safe from any thread."""

    __slots__ = ("__weakref__", "_lock", "_wake", "cancelled", "expired", "network_stream")

    def __init__(self) -> None:
        self.cancelled = False
        self.expired = False
        self.network_stream: Any = None
        self._lock = threading.Lock()  # never held across anything but one syscall
        self._wake: threading.Event | None = None

    def wait(self, seconds: float) -> bool:
        """Sleep (a retry's backoff) unless stopped first; ``True`` if the call was stopped."""
        if self._wake is None:
            self._wake = threading.Event()
        if not self.stopped:
            self._wake.wait(seconds)
        return self.stopped

    @property
    def stopped(self) -> bool:
        return self.cancelled or self.expired

    def attach(self, network_stream: Any) -> None:
        """Note the stream this call's request went out on (a stop that came first applies at once)."""
        with self._lock:
            self.network_stream = network_stream
        if self.cancelled or self.expired:
            self.interrupt()

    def detach(self) -> None:
        """The call is over: its connection goes back to the pool and must never be shut down by us again."""
        with self._lock:
            self.network_stream = None

    def cancel(self) -> None:
        self.cancelled = True
        self.interrupt()

    def expire(self) -> None:
        if not self.cancelled:
            self.expired = True
            self.interrupt()

    def interrupt(self) -> None:
        """Shut the socket down: a blocked ``recv`` returns at once, in whatever thread or task it waits."""
        if self._wake is not None:
            self._wake.set()
        with self._lock:
            stream = self.network_stream
            if stream is None:
                return
            with contextlib.suppress(Exception):
                sock = stream.get_extra_info("socket")
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)


def _note(stream: Any) -> None:
    control = CURRENT_CALL.get()
    if control is not None and control.network_stream is not stream:
        control.attach(stream)


class _TrackedStream(httpcore.NetworkStream):
    __slots__ = ("_inner",)

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        _note(self)
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> Any:
        return _TrackedStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _TrackedBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = _TrackedStream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))
        _note(stream)
        return stream

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        stream = _TrackedStream(self._inner.connect_unix_socket(path, timeout, socket_options))
        _note(stream)
        return stream

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncTrackedStream(httpcore.AsyncNetworkStream):
    __slots__ = ("_inner",)

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        _note(self)
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> Any:
        return _AsyncTrackedStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _AsyncTrackedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = _AsyncTrackedStream(await self._inner.connect_tcp(host, port, timeout, local_address, socket_options))
        _note(stream)
        return stream

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        stream = _AsyncTrackedStream(await self._inner.connect_unix_socket(path, timeout, socket_options))
        _note(stream)
        return stream

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def track_transport(transport: httpx.HTTPTransport) -> bool:
    """Put the tracking backend under an httpx transport's pool; ``False`` if this httpx/httpcore has no room."""
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, httpcore.NetworkBackend) and not isinstance(backend, _TrackedBackend):
        pool._network_backend = _TrackedBackend(backend)  # type: ignore[union-attr]
        return True
    return isinstance(backend, _TrackedBackend)


def track_async_transport(transport: httpx.AsyncHTTPTransport) -> bool:
    """The async twin of :func:`track_transport`."""
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, httpcore.AsyncNetworkBackend) and not isinstance(backend, _AsyncTrackedBackend):
        pool._network_backend = _AsyncTrackedBackend(backend)  # type: ignore[union-attr]
        return True
    return isinstance(backend, _AsyncTrackedBackend)


# ------------------------------------------------------------------------------------------------ janitor

Closer = Callable[[], None]
EXIT_WAIT = 10.0
"""Seconds the interpreter waits at exit for background aborts still running (each is bounded by its deadline)."""


class Janitor:
    """One daemon thread per process: closes abandoned streams, fires sync deadlines, starts background aborts.

    ``adopt`` registers what must be closed if the owner is dropped unclosed; the owner's finalizer calls
    ``abandon(key)`` (a reentrant-safe queue put: no lock, no I/O); ``release(key)`` forgets a closed one.
    ``stop`` hands a whole stop over (close or wake, abort, then ``done``), again as one queue put.
    """

    def __init__(self) -> None:
        self._open: dict[int, Closer] = {}
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._keys = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._start_lock = threading.Lock()
        self._workers: set[threading.Thread] = set()

    def ready(self) -> None:
        """Start the thread now, if it is not running in this process (a fork leaves no thread in the child)."""
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._start_lock:
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._workers = set()
                self._thread = threading.Thread(target=self._run, name="flowise-janitor", daemon=True)
                self._thread.start()

    def _wake(self) -> None:
        """Start the thread from a finalizer's path (rarely needed: calls start it when they open)."""
        if self._thread is None or self._pid != os.getpid():
            with contextlib.suppress(RuntimeError):  # interpreter shutdown
                self.ready()

    def adopt(self, closer: Closer) -> int:
        """Hold ``closer`` until ``release``; returns the key the owner's finalizer hands to ``abandon``."""
        key = next(self._keys)
        self._open[key] = closer
        return key

    def release(self, key: int) -> None:
        self._open.pop(key, None)

    def abandon(self, key: int) -> None:
        """Called from a finalizer: close what ``key`` holds, soon, on the janitor thread."""
        self._inbox.put(("close", key))
        self._wake()

    def stop(
        self,
        key: int | None = None,
        *,
        wake: CallControl | None = None,
        abort: Callable[[], object] | None = None,
        done: Closer | None = None,
    ) -> None:
        """Stop a call in the background; from anywhere (a finalizer, a generator's close): one queue put.

        On the janitor thread: ``wake`` is interrupted (its reader, in another thread, closes its own response)
        or the stream ``key`` holds is closed; then ``abort`` runs on a worker thread of its own, and ``done``
        after it (or at once without an abort). Failures are swallowed: this is best effort by design.
        """
        self._inbox.put(("stop", (key, wake, abort, done)))
        self._wake()

    def call_at(self, when: float, callback: Closer) -> None:
        """Run ``callback`` on the janitor thread at ``time.monotonic() >= when``."""
        self.ready()
        self._inbox.put(("timer", (when, callback)))

    def wait_for_aborts(self, timeout: float) -> bool:
        """Wait until the background stops handed over so far are done; ``False`` if ``timeout`` ran out first."""
        until = time.monotonic() + timeout
        thread = self._thread
        if thread is not None and self._pid == os.getpid() and thread.is_alive():
            flushed = threading.Event()
            self._inbox.put(("flush", flushed))
            if not flushed.wait(timeout):
                return False
        for worker in self._workers.copy():
            worker.join(max(0.0, until - time.monotonic()))
        return not any(worker.is_alive() for worker in self._workers.copy())

    def _stop(self, key: int | None, wake: CallControl | None, abort: Callable[[], object] | None, done: Any) -> None:
        if wake is not None:
            wake.interrupt()
        closer = self._open.pop(key, None) if key is not None else None
        if closer is not None:
            with contextlib.suppress(Exception):
                closer()
        if abort is None:
            _quietly(done)
            return
        worker = threading.Thread(target=self._abort, args=(abort, done), name="flowise-abort", daemon=True)
        self._workers.add(worker)
        try:
            worker.start()
        except RuntimeError:  # interpreter shutdown: no new threads
            self._workers.discard(worker)
            _quietly(done)

    def _abort(self, abort: Callable[[], object], done: Closer | None) -> None:
        try:
            _quietly(abort)
        finally:
            _quietly(done)
            self._workers.discard(threading.current_thread())

    def _run(self) -> None:
        timers: list[tuple[float, int, Closer]] = []
        order = itertools.count()
        while True:
            wait = None if not timers else max(0.0, timers[0][0] - time.monotonic())
            try:
                kind, payload = self._inbox.get(timeout=wait)
            except queue.Empty:
                kind, payload = "", None
            if kind == "close":
                closer = self._open.pop(payload, None)
                if closer is not None:
                    with contextlib.suppress(Exception):
                        closer()
            elif kind == "stop":
                self._stop(*payload)
            elif kind == "timer":
                when, callback = payload
                heapq.heappush(timers, (when, next(order), callback))
            elif kind == "flush":
                payload.set()
            now = time.monotonic()
            while timers and timers[0][0] <= now:
                _, _, callback = heapq.heappop(timers)
                with contextlib.suppress(Exception):
                    callback()


def _quietly(action: Callable[[], object] | None) -> None:
    if action is not None:
        with contextlib.suppress(Exception):
            action()


janitor = Janitor()
"""The process-wide janitor."""


def wait_for_aborts(timeout: float = EXIT_WAIT) -> bool:
    """Wait for the background aborts handed to the janitor so far; ``False`` if one still runs after ``timeout``."""
    return janitor.wait_for_aborts(timeout)


atexit.register(wait_for_aborts)
