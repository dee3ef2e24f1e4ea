"""Leaving a call early stops the flow: close the connection and ask Flowise to abort the run.

Used by ``ChatFlowise`` and ``FlowiseTool`` for their streams and their non-streamed calls. A sync generator
that is closed (``GeneratorExit``) may be closed by the garbage collector inside another library's lock, so its
abort is sent from a short-lived thread, never inline; everything else aborts inline, bounded by
``ABORT_DEADLINE``. An async abort is shielded from a second cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Callable

from flowise_integrations.client import AsyncFlowiseClient, FlowiseClient
from flowise_integrations.errors import FlowiseError
from flowise_integrations.streams import ABORT_DEADLINE, AsyncFlowiseStream, FlowiseStream

__all__ = ["aabort_call", "abort_call", "acancel_stream", "cancel_stream", "wait_for_aborts"]


def cancel_stream(stream: FlowiseStream, exc: BaseException, *, abort: bool) -> None:
    """``stream`` was left by ``exc`` (the consumer's ``break``, Ctrl-C...): stop it, aborting if asked."""
    if not abort:
        _quietly(stream.close)
    elif isinstance(exc, GeneratorExit):
        thread = threading.Thread(target=_quietly, args=(stream.cancel,), name="flowise-abort", daemon=True)
        _THREADS.add(thread)
        thread.start()
    else:
        _quietly(stream.cancel)


async def acancel_stream(stream: AsyncFlowiseStream, *, abort: bool) -> None:
    """The async twin of :func:`cancel_stream` (a cancelled task, ``aclose()`` of the generator...)."""
    task = asyncio.ensure_future(stream.cancel() if abort else stream.aclose())
    with contextlib.suppress(BaseException):  # cancelled again while aborting: the abort goes on
        await asyncio.shield(task)


def abort_call(client: FlowiseClient, chatflow_id: str, chat_id: str | None) -> None:
    """Abort a non-streamed call that was interrupted (Ctrl-C) on the chat it ran on."""
    if chat_id:
        with contextlib.suppress(FlowiseError, ValueError):
            client.abort(chatflow_id, chat_id, deadline=ABORT_DEADLINE)


async def aabort_call(client: AsyncFlowiseClient, chatflow_id: str, chat_id: str | None) -> None:
    """Abort a non-streamed call whose task was cancelled (shielded from a second cancellation)."""
    if not chat_id:
        return
    task = asyncio.ensure_future(client.abort(chatflow_id, chat_id, deadline=ABORT_DEADLINE))
    with contextlib.suppress(BaseException):
        await asyncio.shield(task)


def wait_for_aborts(timeout: float) -> bool:
    """Wait until the aborts sent from threads so far are done; ``False`` if one is still running."""
    for thread in list(_THREADS):
        thread.join(timeout)
    return not any(thread.is_alive() for thread in _THREADS)


_THREADS: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


def _quietly(action: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):
        action()
