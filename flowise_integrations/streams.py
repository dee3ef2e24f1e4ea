"""``FlowiseStream`` and ``AsyncFlowiseStream``: a running prediction, as an iterator of typed events.

Both are explicit iterators, not generators: nothing holds a reference back to the stream, so dropping one (a
``break`` without ``with``) frees it at once, and its finalizer only hands the open response to the janitor
thread (see ``_control.py``). ``cancel()`` and a missed deadline work from any thread or task: they shut the
socket down, the reader wakes, closes its own response and ends (``cancel``) or raises
``FlowiseTimeoutError`` with the partial answer (deadline). ``cancel(wait=False)`` and ``close(wait=False)`` hand
the whole stop to the janitor (one queue put: safe in a generator's close or a finalizer).

Each stream holds the lease on its chat (``chats.py``) from its creation until the call ends: its end, an error,
``close``, ``cancel`` (after the abort was sent: a late abort must never stop the next call on that chat), or the
janitor closing a dropped stream. A call interrupted mid-way (Ctrl-C, a cancelled task) keeps its chat until it
is closed, cancelled or dropped: whoever handles the interruption may still abort it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from ._control import CallControl, janitor
from .chats import ChatLease
from .errors import FlowiseError
from .events import EndEvent, FlowiseEvent, TokenEvent
from .exchange import Deadline, StreamState, unexpected_body_error
from .models import Prediction

if TYPE_CHECKING:
    from .client import AsyncFlowiseClient, FlowiseClient

__all__ = ["AsyncFlowiseStream", "FlowiseStream", "Stopped"]

ABORT_DEADLINE = 10.0
"""Seconds ``cancel()`` gives the abort request."""


class Stopped(Exception):
    """The call was cancelled before or while sending; the stream ends quietly."""


class _Open:
    """What an open stream must release exactly once: held by the janitor too, never by a finalizer."""

    __slots__ = ("chunks", "control", "key", "lease", "release", "response")

    def __init__(
        self, response: httpx.Response, control: CallControl, release: Callable[[], None], lease: ChatLease | None
    ) -> None:
        self.response = response
        self.control = control
        self.release = release
        self.lease = lease  # freed with the connection, unless a stop took it over (to free it after an abort)
        self.chunks: Any = None
        self.key = janitor.adopt(self.close)

    def close(self) -> None:
        """Sync close (the janitor thread, or the reader's own thread)."""
        chunks, self.chunks = self.chunks, None
        try:
            if chunks is not None:
                with contextlib.suppress(Exception):
                    chunks.close()
            self.response.close()
        finally:
            self._done()

    async def aclose(self) -> None:
        chunks, self.chunks = self.chunks, None
        try:
            if chunks is not None:
                with contextlib.suppress(Exception):
                    await chunks.aclose()
            await self.response.aclose()
        finally:
            self._done()

    def _done(self) -> None:
        release, self.release = self.release, _nothing
        held, self.lease = self.lease, None
        self.control.detach()
        janitor.release(self.key)
        try:
            release()
        finally:
            if held is not None:
                held.release()


def _nothing() -> None:
    return None


def _expirer(control: CallControl) -> Callable[[], None]:
    """A deadline callback that does not keep a finished call alive."""
    ref = weakref.ref(control)

    def expire() -> None:
        alive = ref()
        if alive is not None:
            alive.expire()

    return expire


class _StreamBase:
    """What both stream flavours expose besides iteration."""

    def __init__(
        self, request: Callable[[], httpx.Request], state: StreamState, deadline: Deadline, lease: ChatLease | None
    ) -> None:
        self._lease = lease
        self._build = request  # built on open: a burst of new streams costs the caller almost nothing
        self._built: httpx.Request | None = None
        self._state = state
        self._deadline = deadline
        self._control = CallControl()
        self._open: _Open | None = None
        self._response: httpx.Response | None = None
        self._pending: deque[FlowiseEvent] = deque()
        self._ended = False  # no more events will come (the final error, if any, is in _error)
        self._error: BaseException | None = None
        self._closed = False
        self._reader: object | None = None  # the thread/task inside a read right now
        self._interrupted = False  # opening was left by Ctrl-C / a cancellation: the run may be going on

    @property
    def _request(self) -> httpx.Request:
        if self._built is None:
            self._built = self._build()
        return self._built

    @property
    def chatflow_id(self) -> str:
        return self._state.chatflow_id

    @property
    def chat_id(self) -> str | None:
        """The conversation id, known before the first event (use it to abort or continue)."""
        return self._state.chat_id

    @property
    def result(self) -> Prediction:
        """The prediction folded from the events received so far."""
        return self._state.result

    @property
    def response(self) -> httpx.Response | None:
        """The HTTP response, once the request was sent."""
        return self._response

    @property
    def cancelled(self) -> bool:
        """Whether ``cancel()`` was called."""
        return self._control.cancelled

    @property
    def _started(self) -> bool:
        """Whether the request may have reached Flowise (so an abort has something to stop)."""
        return self._response is not None or self._reader is not None or self._interrupted

    def _release_chat(self) -> None:
        held, self._lease = self._lease, None
        if held is not None:
            held.release()

    def _detach_chat(self) -> ChatLease | None:
        """Take the chat's lease from the stream and its connection: the caller frees it (after an abort)."""
        held, self._lease = self._lease, None
        opened = self._open
        if opened is not None:
            opened.lease = None
        return held

    def _finish(self) -> None:
        """Nothing more will be read: raise the final error next, or end."""
        self._ended = True
        if self._error is None and not self._control.cancelled:
            self._error = self._state.final_error()

    def _stop_reason(self) -> BaseException | None:
        """The exception that ends a stopped call (``None``: cancelled, end quietly)."""
        if self._control.expired or self._deadline.passed():
            return self._deadline.error(self._request.url, self._state.result)
        self._state.cancelled()
        return None

    def _take_error(self) -> BaseException | None:
        error, self._error = self._error, None
        return error

    def __del__(self) -> None:
        opened = self._open
        if opened is not None and not self._closed:
            janitor.abandon(opened.key)  # no I/O and no lock here: the janitor closes it (and frees the chat)
        else:
            self._release_chat()


class FlowiseStream(_StreamBase):
    """A running prediction: an iterator of typed events and a context manager.

    ``result`` is the :class:`Prediction` folded so far; leaving the ``with`` block, ``close()`` or breaking out
    of the loop closes the connection at once; ``cancel()`` (from any thread) also asks Flowise to abort the run.
    """

    def __init__(
        self,
        client: FlowiseClient,
        request: Callable[[], httpx.Request],
        state: StreamState,
        deadline: Deadline,
        lease: ChatLease | None = None,
    ) -> None:
        super().__init__(request, state, deadline, lease)
        self._client = client

    def open(self) -> FlowiseStream:
        """Send the request and check the status (done lazily by the first iteration otherwise)."""
        if self._response is None and not self._ended:
            self._reader = threading.get_ident()
            try:
                self._start()
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    self._interrupted = True  # Ctrl-C: keep the chat, the caller may still abort the run
                else:  # the call failed before any event: it is over
                    self._ended = True
                    self._close_now()
                raise
            finally:
                self._reader = None
            error = self._take_error()
            if error is not None:
                raise error
        return self

    def _start(self) -> None:
        janitor.ready()  # now, not in the finalizer that may hand this stream's stop over
        if self._deadline.at is not None:
            janitor.call_at(self._deadline.at, _expirer(self._control))
        try:
            response, release = self._client._send(self._request, self._state, self._control, self._deadline)
        except Stopped:
            self._stop()
            return
        self._response = response
        opened = self._open = _Open(response, self._control, release, self._lease)
        state = self._state
        try:
            kind = state.start(response)
            if kind == "sse":
                opened.chunks = response.iter_bytes()
                return
            content = self._client._read_body(response, state)
            self._pending.extend(state.feed_json(response, content) if kind == "json" else ())
            if kind != "json":
                raise unexpected_body_error(response, content)
        except httpx.TransportError as exc:
            self._error = self._stop_reason() if self._control.stopped else state.broken(exc)
            self._close_now()
        except FlowiseError as exc:
            self._error = exc
            self._close_now()
        else:
            self._close_now()
            self._finish()

    def __enter__(self) -> FlowiseStream:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[FlowiseEvent]:
        return self

    def __next__(self) -> FlowiseEvent:
        pending = self._pending
        while not pending:
            if self._ended:
                error = self._take_error()
                if error is not None:
                    raise error
                raise StopIteration
            self._step()
        return pending.popleft()

    def _step(self) -> None:
        """Read one network chunk (or open, or stop) and queue its events."""
        if self._response is None:
            self.open()
            return
        opened = self._open
        if opened is None or opened.chunks is None or self._control.stopped:
            self._stop()
            return
        state = self._state
        self._reader = threading.get_ident()
        try:
            chunk = next(opened.chunks, None)
            if chunk is None:
                events = state.eof()
                self._close_now()
                self._finish()
            else:
                events = state.feed(chunk)
                if events and type(events[-1]) is EndEvent:
                    events[-1:-1] = self._client._check_answer(state)
        except httpx.TransportError as exc:
            self._error = self._stop_reason() if self._control.stopped else state.broken(exc)
            self._close_now()
            self._ended = True
            return
        except FlowiseError as exc:
            self._error = exc
            self._close_now()
            self._ended = True
            return
        finally:
            self._reader = None
        self._pending.extend(events)
        if self._deadline.at is not None and not self._ended and self._deadline.passed():
            self._control.expired = True

    def _stop(self) -> None:
        self._error = self._stop_reason()
        self._close_now()
        self._ended = True

    def _close_now(self) -> None:
        opened, self._open = self._open, None
        self._closed = True
        try:
            if opened is not None:
                opened.close()
        finally:
            self._release_chat()

    def text_stream(self) -> Iterator[str]:
        """Only the answer's text, token by token (empty tokens skipped)."""
        for event in self:
            if type(event) is TokenEvent and event.data:
                yield event.data

    def until_done(self) -> Prediction:
        """Consume the rest of the stream and return the final prediction."""
        for _ in self:
            pass
        return self.result

    def close(self, wait: bool = True) -> None:
        """Close the connection now (Flowise keeps running the flow: see ``cancel``).

        ``wait=False``: hand the close to the janitor thread (one queue put: safe in a generator's close or a
        finalizer, where closing inline could deadlock inside httpx's pool lock).
        """
        if not wait:
            self._hand_off(abort=False)
            return
        reader = self._reader
        if reader is not None and reader != threading.get_ident():
            self._control.cancel()  # another thread is reading: wake it, it closes and ends
            return
        self._ended = True
        self._close_now()

    def cancel(self, wait: bool = True) -> bool:
        """Stop reading and ask Flowise to abort the run, from any thread; ``True`` if Flowise acknowledged.

        A reader blocked in another thread wakes at once and its loop ends quietly (``result.finish_reason`` is
        ``"cancelled"``). Flowise stops agentflows; a classic chatflow runs on and stores its answer. The call's
        chat stays leased until the abort was answered.

        ``wait=False``: return at once (``True`` if an abort is on its way): the janitor thread closes the
        connection and a short-lived worker sends the abort (waited for at exit). One queue put: safe in a
        generator's close or a finalizer.
        """
        if not wait:
            return self._hand_off(abort=True)
        started = self._started
        held = self._detach_chat()
        try:
            self._control.cancel()
            self._state.cancelled()
            self.close()
            if not started or not self.chat_id:
                return False
            try:
                self._client.abort(self.chatflow_id, self.chat_id, deadline=ABORT_DEADLINE)
            except (FlowiseError, ValueError):
                return False
            return True
        finally:
            if held is not None:
                held.release()

    def _hand_off(self, abort: bool) -> bool:
        """Stop this call on the janitor thread: close (or wake the reader), abort if asked, then free the chat."""
        send = abort and self._started and bool(self.chat_id)
        held = self._detach_chat()
        if abort:
            self._control.cancelled = True  # the janitor shuts the socket down (no lock taken here)
            self._state.cancelled()
        reader, opened = self._reader, None
        if reader is None:
            opened, self._open = self._open, None
            self._ended = self._closed = True
        else:  # another thread reads: woken by the janitor, it closes its own response and ends quietly
            self._control.cancelled = True
        if opened is None and reader is None and not send:
            if held is not None:
                held.release()
            return False
        stop = functools.partial(self._client.abort, self.chatflow_id, str(self.chat_id), deadline=ABORT_DEADLINE)
        janitor.stop(
            opened.key if opened is not None else None,
            wake=self._control if reader is not None else None,
            abort=stop if send else None,
            done=held.release if held is not None else None,
        )
        return send


class AsyncFlowiseStream(_StreamBase):
    """The async twin of :class:`FlowiseStream`: ``async with`` / ``async for``; ``await cancel()`` from any task."""

    def __init__(
        self,
        client: AsyncFlowiseClient,
        request: Callable[[], httpx.Request],
        state: StreamState,
        deadline: Deadline,
        lease: ChatLease | None = None,
    ) -> None:
        super().__init__(request, state, deadline, lease)
        self._client = client
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def open(self) -> AsyncFlowiseStream:
        """Send the request and check the status (done lazily by the first iteration otherwise)."""
        if self._response is None and not self._ended:
            self._reader = True
            try:
                await self._start()
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    self._interrupted = True  # a cancelled task: keep the chat, the caller may still abort the run
                else:  # the call failed before any event: it is over
                    self._ended = True
                    await self._close_now()
                raise
            finally:
                self._reader = None
            error = self._take_error()
            if error is not None:
                raise error
        return self

    async def _start(self) -> None:
        while self._client._budget.exhausted():  # noqa: ASYNC110  (a burst of new streams: spread over iterations)
            await asyncio.sleep(0)
        loop = self._loop = asyncio.get_running_loop()
        if self._deadline.at is not None:
            self._timer = loop.call_at(loop.time() + (self._deadline.remaining() or 0.0), self._control.expire)
        try:
            response, release = await self._client._send(self._request, self._state, self._control, self._deadline)
        except Stopped:
            await self._stop()
            return
        except BaseException:
            self._cancel_timer()
            raise
        self._response = response
        opened = self._open = _Open(response, self._control, release, self._lease)
        state = self._state
        try:
            kind = state.start(response)
            if kind == "sse":
                opened.chunks = response.aiter_bytes()
                return
            content = await self._client._read_body(response, state)
            self._pending.extend(state.feed_json(response, content) if kind == "json" else ())
            if kind != "json":
                raise unexpected_body_error(response, content)
        except httpx.TransportError as exc:
            self._error = self._stop_reason() if self._control.stopped else state.broken(exc)
            await self._close_now()
        except FlowiseError as exc:
            self._error = exc
            await self._close_now()
        except BaseException as exc:
            await self._close_now(free_chat=isinstance(exc, Exception))
            raise
        else:
            await self._close_now()
            self._finish()

    async def __aenter__(self) -> AsyncFlowiseStream:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[FlowiseEvent]:
        return self

    async def __anext__(self) -> FlowiseEvent:
        pending = self._pending
        while not pending:
            if self._ended:
                error = self._take_error()
                if error is not None:
                    raise error
                raise StopAsyncIteration
            await self._step()
        return pending.popleft()

    async def _step(self) -> None:
        if self._response is None:
            await self.open()
            return
        opened = self._open
        if opened is None or opened.chunks is None or self._control.stopped:
            await self._stop()
            return
        state = self._state
        self._reader = True  # only another task can see this (this one is suspended in the read)
        try:
            try:
                chunk = await opened.chunks.__anext__()
            except StopAsyncIteration:
                events = state.eof()
                await self._close_now()
                self._finish()
            else:
                events = state.feed(chunk)
                if events and type(events[-1]) is EndEvent:
                    events[-1:-1] = await self._client._check_answer(state)
        except httpx.TransportError as exc:
            self._error = self._stop_reason() if self._control.stopped else state.broken(exc)
            await self._close_now()
            self._ended = True
            return
        except FlowiseError as exc:
            self._error = exc
            await self._close_now()
            self._ended = True
            return
        except BaseException as exc:  # the reading task was cancelled: close now (the chat stays), let it propagate
            await self._close_now(free_chat=isinstance(exc, Exception))
            self._ended = True
            raise
        finally:
            self._reader = None
        self._pending.extend(events)
        if self._deadline.at is not None and not self._ended and self._deadline.passed():
            self._control.expired = True
        if self._client._budget.exhausted():  # many streams woken at once: let the loop breathe
            await asyncio.sleep(0)

    async def _stop(self) -> None:
        self._error = self._stop_reason()
        await self._close_now()
        self._ended = True

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    async def _close_now(self, free_chat: bool = True) -> None:
        """Close the connection; ``free_chat=False`` keeps the chat leased (an interrupted call, maybe aborted)."""
        self._cancel_timer()
        opened, self._open = self._open, None
        self._closed = True
        try:
            if opened is not None:
                if not free_chat:
                    opened.lease = None
                await opened.aclose()
        finally:
            if free_chat:
                self._release_chat()

    async def text_stream(self) -> AsyncIterator[str]:
        """Only the answer's text, token by token (empty tokens skipped)."""
        async for event in self:
            if type(event) is TokenEvent and event.data:
                yield event.data

    async def until_done(self) -> Prediction:
        """Consume the rest of the stream and return the final prediction."""
        async for _ in self:
            pass
        return self.result

    async def aclose(self) -> None:
        """Close the connection now (Flowise keeps running the flow: see ``cancel``)."""
        if self._reader is not None:  # another task is suspended in a read: wake it, it closes and ends
            self._control.cancel()
            return
        self._ended = True
        await self._close_now()

    async def cancel(self) -> bool:
        """Stop reading and ask Flowise to abort the run, from any task; ``True`` if Flowise acknowledged.

        A reader waiting in another task wakes at once and its loop ends quietly (``result.finish_reason`` is
        ``"cancelled"``). Flowise stops agentflows; a classic chatflow runs on and stores its answer. The stop is
        shielded (cancelling the caller again does not stop the close and the abort), and the call's chat stays
        leased until the abort was answered.
        """
        task = asyncio.ensure_future(self._cancel(self._started, self._detach_chat()))
        _CLOSING.add(task)
        task.add_done_callback(_CLOSING.discard)
        return await asyncio.shield(task)

    async def _cancel(self, started: bool, held: ChatLease | None) -> bool:
        try:
            self._control.cancel()
            self._state.cancelled()
            await self.aclose()
            if not started or not self.chat_id:
                return False
            try:
                await self._client.abort(self.chatflow_id, self.chat_id, deadline=ABORT_DEADLINE)
            except (FlowiseError, ValueError):
                return False
            return True
        finally:
            if held is not None:
                held.release()

    def __del__(self) -> None:
        opened = self._open
        if opened is None or self._closed:
            self._release_chat()
            return
        self._cancel_timer()
        loop = self._loop
        if loop is None or loop.is_closed():
            janitor.abandon(opened.key)  # no loop to close it on: the janitor closes the socket side
            return
        janitor.release(opened.key)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        try:
            if running is loop:  # the usual case (a `break` in an `async for`): a plain callback, no I/O
                loop.call_soon(_spawn_aclose, opened)
            else:
                loop.call_soon_threadsafe(_spawn_aclose, opened)
        except RuntimeError:  # loop closing: nothing will close it, but its chat is free
            self._release_chat()


def _spawn_aclose(opened: _Open) -> None:
    task = asyncio.ensure_future(opened.aclose())
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)


_CLOSING: set[asyncio.Future[Any]] = set()
