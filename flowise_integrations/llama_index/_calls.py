"""What the wing guarantees around each call: one chat id per running call, and abandoned streams aborted.

- Flowise keys a running stream by its ``chatId`` alone (``SSEStreamer`` and the abort pool; a memory session
  defaults to it too): two concurrent calls with one chat id cross-wire their streams. :data:`chats` notes the
  ids in flight per server; a call whose id is busy gets a fresh chat id (its session, if any, is kept) and a
  :class:`ChatIdInUseWarning`.
- A sync stream left early (``break``, an exception, garbage collection) is stopped off the thread that dropped
  it: its generator may be closed by the garbage collector anywhere, even inside httpx's pool lock, where closing
  a response or sending the abort would deadlock. :data:`aborter` runs ``stream.cancel()`` (close + ``PUT
  /chatmessage/abort``) or ``stream.close()`` on its own thread, and waits for pending aborts at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import queue
import threading
import uuid
import warnings
from collections.abc import Callable
from typing import Any

from flowise_integrations.client import AsyncFlowiseClient, FlowiseClient
from flowise_integrations.streams import ABORT_DEADLINE

__all__ = ["ChatIdInUseWarning", "abort_later", "abort_now", "aborter", "chats", "claim_request"]

_EXIT_WAIT = 10.0  # seconds the interpreter waits at exit for aborts still queued (each is bounded by the core)


class ChatIdInUseWarning(UserWarning):
    """A call asked for a chat id that a running call on the same server already uses; it got a fresh one."""


class ChatsInFlight:
    """The chat ids of running calls, per server (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: dict[tuple[str, str], int] = {}

    def claim(
        self, server: str, chat_id: str | None, session_id: str | None
    ) -> tuple[str | None, tuple[str, str] | None]:
        """The chat id this call sends, and the key to :meth:`release` when it ends (``None``: nothing held).

        The effective id is ``chat_id`` or else ``session_id`` (Flowise's own fallback). When it is free it is
        held; when busy, a fresh chat id is returned (unique, so not held) and a warning says so.
        """
        wanted = chat_id or session_id
        if not wanted:
            return chat_id, None
        key = (server, wanted)
        with self._lock:
            busy = key in self._busy
            if not busy:
                self._busy[key] = 1
        if not busy:
            return chat_id, key
        fresh = str(uuid.uuid4())
        kept = f" (session {session_id!r} kept)" if session_id else ""
        warnings.warn(
            f"chat id {wanted!r} is in use by a running call to {server}: this call uses the fresh chat id "
            f"{fresh!r}{kept}, since Flowise would mix the answers of two concurrent calls sharing a chat id",
            ChatIdInUseWarning,
            stacklevel=4,
        )
        return fresh, None

    def release(self, key: tuple[str, str] | None) -> None:
        if key is not None:
            with self._lock:
                self._busy.pop(key, None)

    def busy(self, server: str, chat_id: str) -> bool:
        with self._lock:
            return (server, chat_id) in self._busy


class Aborter:
    """One daemon thread that stops abandoned sync streams; ``submit`` is a lock-free queue put."""

    def __init__(self) -> None:
        self._inbox: queue.SimpleQueue[Callable[[], object] | threading.Event] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._start_lock = threading.Lock()

    def ready(self) -> None:
        """Start the thread now (at a call's start: never from a finalizer)."""
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._start_lock:
            if self._thread is None or self._pid != os.getpid():  # a fork leaves no thread in the child
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="flowise-llama-index-abort", daemon=True)
                self._thread.start()

    def submit(self, stop: Callable[[], object]) -> None:
        """Run ``stop`` soon on the aborter thread (safe from a finalizer or a generator's close)."""
        self._inbox.put(stop)

    def wait(self, timeout: float) -> bool:
        """Wait until everything submitted so far has run; ``False`` if ``timeout`` passed first."""
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            return True
        done = threading.Event()
        self._inbox.put(done)
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            item = self._inbox.get()
            if isinstance(item, threading.Event):
                item.set()
                continue
            with contextlib.suppress(Exception):
                item()


def claim_request(server: str, request: dict[str, Any]) -> tuple[str, str] | None:
    """Hold ``request``'s chat id (or session) for the call; a busy one is swapped for a fresh chat id. Without
    either, a chat id is chosen here, so the run can be aborted. Returns the key to release when the call ends."""
    chat_id, key = chats.claim(server, request.get("chat_id"), request.get("session_id"))
    if chat_id is None and not request.get("session_id"):
        chat_id = str(uuid.uuid4())
    request["chat_id"] = chat_id
    return key


def abort_later(client: FlowiseClient, chatflow_id: str, run_id: str | None) -> None:
    """Abort a run from the aborter thread (after Ctrl-C this thread may be inside httpx's pool lock)."""
    if run_id:
        aborter.submit(lambda: client.abort(chatflow_id, run_id, deadline=ABORT_DEADLINE))


async def abort_now(client: AsyncFlowiseClient, chatflow_id: str, run_id: str | None) -> None:
    """Abort a run whose task was cancelled; best effort (the cancellation goes on whatever happens here)."""
    if run_id:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.shield(client.abort(chatflow_id, run_id, deadline=ABORT_DEADLINE))


chats = ChatsInFlight()
"""The process-wide registry of chat ids in flight."""

aborter = Aborter()
"""The process-wide aborter."""

atexit.register(aborter.wait, _EXIT_WAIT)
