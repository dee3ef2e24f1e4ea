"""The core's chat-id leases and background stops (``flowise_integrations.chats``, ``_control.Janitor``).

Flowise cross-wires two concurrent streams that share a chatId, so every prediction leases its chat while it runs:
a second concurrent call asking for the same chat runs on a fresh one (with a ``ChatIdInUseWarning``), and the
chat is free again however the first call ended. Stops handed to the background (``cancel(wait=False)``, a
generator closed by the garbage collector, ``abort(wait=False)``) reach the server, off the caller's thread, and
are waited for at exit. Timing is only ever bounded generously (``WAIT``): a missing effect makes it run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowise_integrations import (
    AsyncFlowiseClient,
    BadRequestError,
    ChatIdInUseWarning,
    FlowExecutionError,
    FlowiseClient,
    FlowiseStream,
    FlowiseTimeoutError,
)
from flowise_integrations._control import janitor, wait_for_aborts
from flowise_integrations.chats import ChatLease, in_use, lease
from flowise_integrations.testing import LLM, FakeFlow, FakeFlowise, HumanInput

pytestmark = [pytest.mark.timeout(120)]

BASE = "http://flowise.test"
WAIT = 10.0
SLOW: dict[str, Any] = {"kind": "agentflow", "tokens": [f" t{i}" for i in range(200)], "token_delay": 0.01}


@pytest.fixture
def fake() -> FakeFlowise:
    return FakeFlowise()


def client_of(fake: FakeFlowise, **options: Any) -> FlowiseClient:
    return FlowiseClient(BASE, http_client=httpx.Client(transport=fake.transport()), diagnose_after=None, **options)


def async_client_of(fake: FakeFlowise, **options: Any) -> AsyncFlowiseClient:
    http = httpx.AsyncClient(transport=fake.async_transport())
    return AsyncFlowiseClient(BASE, http_client=http, diagnose_after=None, **options)


def bodies(fake: FakeFlowise, flow: str) -> list[dict[str, Any]]:
    return [r.json for r in fake.requests if r.method == "POST" and r.path == f"/api/v1/prediction/{flow}"]


def aborts(fake: FakeFlowise, flow: str) -> list[str]:
    prefix = f"/api/v1/chatmessage/abort/{flow}/"
    return [r.path[len(prefix) :] for r in fake.requests if r.method == "PUT" and r.path.startswith(prefix)]


def eventually(condition: Callable[[], bool]) -> bool:
    until = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > until:
            return False
        time.sleep(0.01)
    return True


@contextlib.contextmanager
def no_warning() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ChatIdInUseWarning)
        yield


def chat() -> str:
    return f"chat-{uuid.uuid4()}"


# -- two calls, one chat -----------------------------------------------------------------------------------


def test_a_second_concurrent_stream_gets_a_fresh_chat_and_a_warning(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(tokens=["a", "b"]))
    client, wanted = client_of(fake), chat()
    first = client.stream(flow, "one", chat_id=wanted)
    with pytest.warns(ChatIdInUseWarning, match=f"chat id '{wanted}' is in use by another running call") as caught:
        second = client.stream(flow, "two", chat_id=wanted)
    assert caught[0].filename == __file__  # the warning points at the caller's line, not into the package
    assert first.chat_id == wanted and second.chat_id not in (None, wanted)
    with first, second:
        first.open()
        second.open()
        assert [first.until_done().text, second.until_done().text] == ["ab", "ab"]
    assert [b["chatId"] for b in bodies(fake, flow)] == [wanted, second.chat_id]  # stream.chat_id is what was sent
    assert first.result.chat_id == wanted and second.result.chat_id == second.chat_id
    with no_warning():
        assert client.predict(flow, "three", chat_id=wanted).chat_id == wanted  # both ended: free again


def test_a_session_is_the_chat_when_there_is_no_chat_id(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(answer="ok"))
    client, session = client_of(fake), chat()
    held = client.stream(flow, "one", session_id=session)
    assert held.chat_id == session and in_use(BASE, session)
    with pytest.warns(ChatIdInUseWarning, match="in use by another running call"):  # a chat id = that session
        client.predict(flow, "two", chat_id=session)
    held.close()  # never opened: nothing was sent for it
    (sent,) = bodies(fake, flow)
    assert sent["chatId"] != session and "overrideConfig" not in sent
    with no_warning():
        client.predict(flow, "three", session_id=session)
    assert bodies(fake, flow)[-1] == {"question": "three", "overrideConfig": {"sessionId": session}}


async def test_concurrent_async_predictions_never_share_a_chat(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(answer="ok", first_token_delay=0.1))
    client, wanted = async_client_of(fake), chat()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answers = await asyncio.gather(*(client.predict(flow, "q", chat_id=wanted) for _ in range(3)))
    sent = [b["chatId"] for b in bodies(fake, flow)]
    assert len(set(sent)) == 3 and wanted in sent
    assert sorted(a.chat_id for a in answers) == sorted(sent)
    assert [w.category for w in caught] == [ChatIdInUseWarning] * 2
    assert not in_use(BASE, wanted)


def test_a_resume_on_a_held_chat_keeps_it_as_the_session_and_still_resumes(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow", nodes=[HumanInput(), LLM(answer="resumed")]))
    client, wanted = client_of(fake), chat()
    stopped = client.predict(flow, "start", chat_id=wanted)
    assert stopped.interrupt is not None
    other = client.stream(flow, "meanwhile", chat_id=wanted)  # another call holds the chat right now
    with pytest.warns(ChatIdInUseWarning, match=f"session '{wanted}' kept"):
        resumed = client.resume(flow, interrupt=stopped.interrupt, approve=True)
    other.close()
    resume_body = bodies(fake, flow)[-1]
    assert resume_body["chatId"] != wanted and resume_body["overrideConfig"] == {"sessionId": wanted}
    assert resumed.text == "resumed"  # Flowise finds the stopped run by its session


# -- the chat is free again, however a call ends -----------------------------------------------------------


class Interrupting(httpx.BaseTransport):
    """The fake's transport, but reading a prediction's body raises ``KeyboardInterrupt`` (Ctrl-C mid-answer)."""

    def __init__(self, inner: httpx.BaseTransport, after_chunks: int) -> None:
        self.inner, self.after = inner, after_chunks

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if "/prediction/" not in request.url.path:
            return response
        stream, after = response.stream, self.after

        class Body(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                for n, piece in enumerate(stream):  # type: ignore[union-attr]
                    if n >= after:
                        raise KeyboardInterrupt
                    yield piece

            def close(self) -> None:
                stream.close()  # type: ignore[union-attr]

        return httpx.Response(response.status_code, headers=response.headers, stream=Body(), request=request)


def interrupting(fake: FakeFlowise, after_chunks: int) -> FlowiseClient:
    http = httpx.Client(transport=Interrupting(fake.transport(), after_chunks))
    return FlowiseClient(BASE, http_client=http, diagnose_after=None)


def _to_the_end(fake: FakeFlowise, wanted: str) -> None:
    list(client_of(fake).stream(fake.add_flow(FakeFlow()), "q", chat_id=wanted))


def _predict(fake: FakeFlowise, wanted: str) -> None:
    client_of(fake).predict(fake.add_flow(FakeFlow()), "q", chat_id=wanted)


def _in_band_error(fake: FakeFlowise, wanted: str) -> None:
    with pytest.raises(FlowExecutionError):
        list(client_of(fake).stream(fake.add_flow(FakeFlow(error="boom", error_after=1)), "q", chat_id=wanted))


def _refused(fake: FakeFlowise, wanted: str) -> None:
    flow = fake.add_flow(FakeFlow(http_errors=[(400, {}, b'{"message":"no"}')]))
    stream = client_of(fake).stream(flow, "q", chat_id=wanted)
    with pytest.raises(BadRequestError):
        next(stream)
    assert list(stream) == []  # the call is over: iterating again sends nothing


def _deadline(fake: FakeFlowise, wanted: str) -> None:
    with pytest.raises(FlowiseTimeoutError):
        list(client_of(fake).stream(fake.add_flow(FakeFlow(**SLOW)), "q", chat_id=wanted, deadline=0.1))


def _with_left_early(fake: FakeFlowise, wanted: str) -> None:
    with client_of(fake).stream(fake.add_flow(FakeFlow(**SLOW)), "q", chat_id=wanted) as stream:
        next(stream)


def _close(fake: FakeFlowise, wanted: str) -> None:
    stream = client_of(fake).stream(fake.add_flow(FakeFlow(**SLOW)), "q", chat_id=wanted)
    next(stream)
    stream.close()
    assert not in_use(BASE, wanted)


def _close_in_the_background(fake: FakeFlowise, wanted: str) -> None:
    stream = client_of(fake).stream(fake.add_flow(FakeFlow(**SLOW)), "q", chat_id=wanted)
    next(stream)
    stream.close(wait=False)


def _cancel(fake: FakeFlowise, wanted: str) -> None:
    flow = fake.add_flow(FakeFlow(**SLOW))
    stream = client_of(fake).stream(flow, "q", chat_id=wanted)
    next(stream)
    assert stream.cancel() is True and aborts(fake, flow) == [wanted]


def _cancel_in_the_background(fake: FakeFlowise, wanted: str) -> None:
    flow = fake.add_flow(FakeFlow(**SLOW))
    stream = client_of(fake).stream(flow, "q", chat_id=wanted)
    next(stream)
    assert stream.cancel(wait=False) is True


def _dropped(fake: FakeFlowise, wanted: str) -> None:
    for _ in client_of(fake).stream(fake.add_flow(FakeFlow(**SLOW)), "q", chat_id=wanted):
        break  # no `with`: the stream is dropped here, the janitor closes it


def _never_opened(fake: FakeFlowise, wanted: str) -> None:
    client_of(fake).stream(fake.add_flow(FakeFlow()), "q", chat_id=wanted)


def _never_opened_closed(fake: FakeFlowise, wanted: str) -> None:
    stream = client_of(fake).stream(fake.add_flow(FakeFlow()), "q", chat_id=wanted)
    stream.close()
    assert fake.requests == [] and not in_use(BASE, wanted)


def _ctrl_c_in_predict(fake: FakeFlowise, wanted: str) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow"))
    with pytest.raises(KeyboardInterrupt):
        interrupting(fake, 0).predict(flow, "q", chat_id=wanted)
    assert wait_for_aborts(WAIT) and aborts(fake, flow) == []


def _ctrl_c_in_predict_aborted(fake: FakeFlowise, wanted: str) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow"))
    with pytest.raises(KeyboardInterrupt):
        interrupting(fake, 0).predict(flow, "q", chat_id=wanted, abort_on_cancel=True)
    assert wait_for_aborts(WAIT) and aborts(fake, flow) == [wanted]


def _ctrl_c_in_a_stream_then_closed(fake: FakeFlowise, wanted: str) -> None:
    stream = interrupting(fake, 2).stream(fake.add_flow(FakeFlow(**SLOW)), "q", chat_id=wanted)
    with pytest.raises(KeyboardInterrupt):
        list(stream)
    assert in_use(BASE, wanted)  # interrupted, not ended: whoever handles Ctrl-C may still abort this chat
    stream.close()


ENDINGS = [
    _to_the_end,
    _predict,
    _in_band_error,
    _refused,
    _deadline,
    _with_left_early,
    _close,
    _close_in_the_background,
    _cancel,
    _cancel_in_the_background,
    _dropped,
    _never_opened,
    _never_opened_closed,
    _ctrl_c_in_predict,
    _ctrl_c_in_predict_aborted,
    _ctrl_c_in_a_stream_then_closed,
]


@pytest.mark.parametrize("ending", ENDINGS, ids=[f.__name__.strip("_") for f in ENDINGS])
def test_the_chat_is_free_again_however_a_sync_call_ends(fake: FakeFlowise, ending: Callable[..., None]) -> None:
    wanted = chat()
    ending(fake, wanted)
    assert eventually(lambda: not in_use(BASE, wanted))
    with no_warning():
        assert client_of(fake).predict(fake.add_flow(FakeFlow()), "again", chat_id=wanted).chat_id == wanted


async def _a_to_the_end(fake: FakeFlowise, wanted: str) -> None:
    async with async_client_of(fake).stream(fake.add_flow(FakeFlow()), "q", chat_id=wanted) as stream:
        await stream.until_done()


async def _a_error(fake: FakeFlowise, wanted: str) -> None:
    flow = fake.add_flow(FakeFlow(error="boom", error_after=1))
    with pytest.raises(FlowExecutionError):
        await async_client_of(fake).predict(flow, "q", chat_id=wanted)


async def _a_aclose(fake: FakeFlowise, wanted: str) -> None:
    stream = async_client_of(fake).stream(fake.add_flow(FakeFlow(**SLOW)), "q", chat_id=wanted)
    await stream.__anext__()
    await stream.aclose()


async def _a_cancel(fake: FakeFlowise, wanted: str) -> None:
    flow = fake.add_flow(FakeFlow(**SLOW))
    stream = async_client_of(fake).stream(flow, "q", chat_id=wanted)
    await stream.__anext__()
    assert await stream.cancel() is True and aborts(fake, flow) == [wanted]


async def _cancelled_task(run: Callable[[asyncio.Event], Any]) -> None:
    started = asyncio.Event()
    task = asyncio.ensure_future(run(started))
    await asyncio.wait_for(started.wait(), WAIT)
    await asyncio.sleep(0.05)  # the request is on its way
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _a_cancelled_predict(fake: FakeFlowise, wanted: str, abort: bool = False) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow", first_token_delay=30))
    client = async_client_of(fake)

    async def run(started: asyncio.Event) -> None:
        started.set()
        await client.predict(flow, "q", chat_id=wanted, abort_on_cancel=abort)

    await _cancelled_task(run)
    assert aborts(fake, flow) == ([wanted] if abort else [])  # the abort was awaited (shielded) before raising


async def _a_cancelled_predict_aborted(fake: FakeFlowise, wanted: str) -> None:
    await _a_cancelled_predict(fake, wanted, abort=True)


async def _a_cancelled_stream_in_with(fake: FakeFlowise, wanted: str) -> None:
    stream = async_client_of(fake).stream(fake.add_flow(FakeFlow(**SLOW)), "q", chat_id=wanted)

    async def run(started: asyncio.Event) -> None:
        async with stream:
            async for _ in stream:
                started.set()

    await _cancelled_task(run)


ASYNC_ENDINGS = [
    _a_to_the_end,
    _a_error,
    _a_aclose,
    _a_cancel,
    _a_cancelled_predict,
    _a_cancelled_predict_aborted,
    _a_cancelled_stream_in_with,
]


@pytest.mark.parametrize("ending", ASYNC_ENDINGS, ids=[f.__name__.strip("_") for f in ASYNC_ENDINGS])
async def test_the_chat_is_free_again_however_an_async_call_ends(fake: FakeFlowise, ending: Callable[..., Any]) -> None:
    wanted = chat()
    await ending(fake, wanted)
    assert not in_use(BASE, wanted)
    with no_warning():
        assert (await async_client_of(fake).predict(fake.add_flow(FakeFlow()), "q", chat_id=wanted)).chat_id == wanted


def test_a_cancelled_stream_holds_its_chat_until_the_abort_was_answered(fake: FakeFlowise) -> None:
    """A late abort must never stop the next call on the same chat: the chat is freed only after it."""
    gate, entered = threading.Event(), threading.Event()
    inner = fake.transport()

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            entered.set()
            gate.wait(WAIT)
        return inner.handle_request(request)

    client = FlowiseClient(BASE, http_client=httpx.Client(transport=httpx.MockTransport(handle)), diagnose_after=None)
    flow, wanted = fake.add_flow(FakeFlow(**SLOW)), chat()
    stream = client.stream(flow, "q", chat_id=wanted)
    next(stream)
    assert stream.cancel(wait=False) is True
    assert entered.wait(WAIT)
    assert in_use(BASE, wanted)  # the abort is on its way: the chat is still this call's
    gate.set()
    assert wait_for_aborts(WAIT) and not in_use(BASE, wanted)
    assert aborts(fake, flow) == [wanted] and stream.result.finish_reason == "cancelled"


# -- the registry itself -------------------------------------------------------------------------------------

OPS = st.lists(st.tuples(st.sampled_from(["lease", "release"]), st.integers(0, 3)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(OPS, st.booleans())
def test_any_interleaving_of_leases_and_releases_matches_the_model(ops: list[tuple[str, int]], session: bool) -> None:
    server = f"http://model-{uuid.uuid4()}"
    keys = [f"k{i}" for i in range(4)]
    leases: list[tuple[str, ChatLease]] = []
    holder: dict[str, int] = {}  # the model: which lease holds which chat
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for op, n in ops:
            if op == "lease":
                key = keys[n]
                got = lease(server, None if session else key, key if session else None)
                if key in holder:  # taken: a fresh chat id, the session kept, nothing held
                    assert got.chat_id not in (None, key) and not got.held
                    assert got.session_id == (key if session else None)
                    assert caught.pop().category is ChatIdInUseWarning
                else:
                    assert (got.chat_id, got.session_id) == ((None, key) if session else (key, None)) and got.held
                    holder[key] = len(leases)
                leases.append((key, got))
            elif leases:
                index = n % len(leases)
                key, held = leases[index]
                held.release()  # a second release of the same lease is a no-op, never another holder's chat
                if holder.get(key) == index:
                    del holder[key]
            assert {k for k in keys if in_use(server, k)} == set(holder)
        assert caught == []
    for _, held in leases:
        held.release()
    assert not any(in_use(server, k) for k in keys)


def test_threads_racing_for_one_chat_leave_exactly_one_holder() -> None:
    server, n = f"http://race-{uuid.uuid4()}", 16
    barrier, got = threading.Barrier(n), list[ChatLease]()

    def take() -> None:
        barrier.wait()
        got.append(lease(server, "shared", None))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ChatIdInUseWarning)
        threads = [threading.Thread(target=take) for _ in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [g.chat_id for g in got].count("shared") == 1 and sum(g.held for g in got) == 1
    assert len({g.chat_id for g in got}) == n
    for held in got:
        held.release()
    assert not in_use(server, "shared")


def test_no_ids_is_a_fresh_chat_never_held() -> None:
    server = f"http://fresh-{uuid.uuid4()}"
    first, second = lease(server, None, None), lease(server, None, None)
    assert first.chat_id != second.chat_id and not first.held and uuid.UUID(str(first.chat_id))
    assert "ChatLease(chat_id=" in repr(first)


def test_bad_input_takes_no_chat(fake: FakeFlowise) -> None:
    client, wanted = client_of(fake), chat()
    with pytest.raises(ValueError):
        client.stream("..", "q", chat_id=wanted)
    with pytest.raises(ValueError):
        client.predict("flow", "q", chat_id=wanted, history=[object()])  # type: ignore[list-item]
    assert not in_use(BASE, wanted) and fake.requests == []


# -- background stops -----------------------------------------------------------------------------------------


def test_a_generator_dropped_after_a_break_aborts_off_the_callers_thread(fake: FakeFlowise) -> None:
    """The wings' pattern: a generator over a stream, left by ``break`` without ``with`` (the garbage collector
    may close it anywhere, even inside httpx's pool lock): only a queue put happens there."""
    seen: dict[str, list[str]] = {"close": [], "abort": []}
    inner = fake.transport()
    original = httpx.Response.close

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            seen["abort"].append(threading.current_thread().name)
        return inner.handle_request(request)

    def spy(self: httpx.Response) -> None:
        if self.request.method == "POST":
            seen["close"].append(threading.current_thread().name)
        original(self)

    client = FlowiseClient(BASE, http_client=httpx.Client(transport=httpx.MockTransport(handle)), diagnose_after=None)
    flow = fake.add_flow(FakeFlow(**SLOW))

    def tokens() -> Iterator[str]:
        stream = client.stream(flow, "q")
        try:
            yield from stream.text_stream()
        except BaseException:
            stream.cancel(wait=False)
            raise

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx.Response, "close", spy)
        for _ in tokens():
            break
        gc.collect()
        assert wait_for_aborts(WAIT)
    assert aborts(fake, flow) == [bodies(fake, flow)[0]["chatId"]]
    assert seen["close"][:1] == ["flowise-janitor"] and seen["abort"] == ["flowise-abort"]


def test_a_slow_abort_never_delays_the_janitors_timers() -> None:
    gate, entered = threading.Event(), threading.Event()

    def handle(request: httpx.Request) -> httpx.Response:
        entered.set()
        gate.wait(WAIT)
        return httpx.Response(200, json={"status": 200})

    client = FlowiseClient(BASE, http_client=httpx.Client(transport=httpx.MockTransport(handle)))
    assert client.abort("flow", "chat", wait=False) is None
    assert entered.wait(WAIT)
    fired = threading.Event()
    janitor.call_at(time.monotonic(), fired.set)  # a deadline, due now, while the abort hangs
    try:
        assert fired.wait(WAIT)
        assert not gate.is_set() and not wait_for_aborts(0.0)  # the abort is still running
    finally:
        gate.set()
    assert wait_for_aborts(WAIT)


def test_abort_in_the_background_checks_its_ids_at_once(fake: FakeFlowise) -> None:
    with pytest.raises(ValueError, match="chat id"):
        client_of(fake).abort("flow", "..", wait=False)
    assert fake.requests == []


EXIT_SCRIPT = """
import sys
from flowise_integrations import FlowiseClient
FlowiseClient(sys.argv[1]).abort(sys.argv[2], "chat-at-exit", wait=False)
"""


def test_background_aborts_are_sent_before_the_interpreter_exits(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow())
    with fake.serve() as base_url:
        proc = subprocess.run(
            [sys.executable, "-c", EXIT_SCRIPT, base_url, flow], capture_output=True, text=True, timeout=60, check=False
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert aborts(fake, flow) == ["chat-at-exit"]


def test_a_stream_cancelled_from_another_thread_in_the_background_ends_quietly(fake: FakeFlowise) -> None:
    with fake.serve() as base_url:
        client = FlowiseClient(base_url, diagnose_after=None)
        flow = fake.add_flow(FakeFlow(**SLOW))
        stream: FlowiseStream = client.stream(flow, "q", chat_id=(wanted := chat()))
        first = threading.Event()
        received: list[str] = []

        def read() -> None:
            for text in stream.text_stream():
                received.append(text)
                first.set()

        reader = threading.Thread(target=read)
        reader.start()
        assert first.wait(WAIT)
        assert stream.cancel(wait=False) is True  # the reader is blocked in another thread: woken by the janitor
        reader.join(WAIT)
        assert not reader.is_alive() and stream.result.finish_reason == "cancelled"
        assert wait_for_aborts(WAIT) and aborts(fake, flow) == [wanted]
        assert eventually(lambda: not in_use(base_url, wanted) and fake.open_connections == 0)
        assert 0 < len(received) < 200


def test_the_request_body_carries_the_leased_ids(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(answer="ok"))
    client = client_of(fake)
    client.predict(flow, "q")
    (body,) = bodies(fake, flow)
    assert set(body) == {"question", "chatId"} and uuid.UUID(body["chatId"])  # chosen here: abortable at once


def test_many_short_calls_on_one_chat_in_a_row_never_warn(fake: FakeFlowise) -> None:
    flow, wanted = fake.add_flow(FakeFlow(tokens=["x"])), chat()
    client = client_of(fake)
    with no_warning():
        for n in range(30):
            if n % 2:
                assert client.predict(flow, "q", chat_id=wanted).chat_id == wanted
            else:
                assert client.stream(flow, "q", chat_id=wanted).until_done().chat_id == wanted
