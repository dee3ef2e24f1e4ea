"""The core under attack and under load (issue 9): one test (or more) per item, sync and async.

Servers that drip, stall, hang, flood or lie are real sockets (``_raw_server.RawServer``) or the emulator's
loopback server; anything that could hang runs under a hard limit (a subprocess timeout or pytest-timeout), and
no test asserts a wall-clock bound.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from _raw_server import SSE_HEAD, Conn, RawServer, chunk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowise_integrations import (
    AsyncFlowiseClient,
    FlowExecutionError,
    FlowiseClient,
    FlowiseConnectionError,
    FlowiseError,
    FlowiseProtocolError,
    FlowiseTimeoutError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
)
from flowise_integrations.events import MalformedEvent
from flowise_integrations.exchange import StreamState
from flowise_integrations.testing import FakeFlow, FakeFlowise

pytestmark = [pytest.mark.timeout(60)]

SSE = {"content-type": "text/event-stream"}
JSON = {"content-type": "application/json"}


def frame(event: str, data: object) -> bytes:
    return b"message:\ndata:" + json.dumps({"event": event, "data": data}).encode() + b"\n\n"


END = frame("end", "[DONE]")
META = frame("metadata", {"chatId": "c1", "chatMessageId": "m1"})


def mock_client(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> FlowiseClient:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return FlowiseClient("http://flowise.test", http_client=http, diagnose_after=None, **kwargs)


def answer_abort(conn: Conn) -> bool:
    """Answer Flowise's abort route like Flowise does; ``True`` if this connection was one."""
    if not conn.request.startswith(b"PUT "):
        return False
    body = b'{"status":200,"message":"Chat message aborted"}'
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return True


# -- 1. a `break` without `with` --------------------------------------------------------------------------

BREAK_LOOP = """
import asyncio, sys
from flowise_integrations import AsyncFlowiseClient, FlowiseClient
from flowise_integrations.testing import FakeFlow, FakeFlowise

mode, n = sys.argv[1], int(sys.argv[2])
fake = FakeFlowise()
flow = fake.add_flow(FakeFlow(answer="one two three four five six seven eight", token_delay=0.001))

async def run_async(base_url):
    client = AsyncFlowiseClient(base_url)
    for _ in range(n):
        async for event in client.stream(flow, "hi"):
            if event.event == "token":
                break
    await client.aclose()

with fake.serve() as base_url:
    if mode == "sync":
        client = FlowiseClient(base_url)
        for _ in range(n):
            for event in client.stream(flow, "hi"):
                if event.event == "token":
                    break
    else:
        asyncio.run(run_async(base_url))
    print("done")
"""


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_fifteen_hundred_breaks_without_with_never_hang(mode: str) -> None:
    """The abandoned stream used to be collected inside httpcore's pool lock and deadlock the thread."""
    proc = subprocess.run(
        [sys.executable, "-c", BREAK_LOOP, mode, "1500"], capture_output=True, text=True, timeout=240, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "done"


def test_a_break_closes_the_connection_and_no_finalizer_does_io(monkeypatch: pytest.MonkeyPatch) -> None:
    closed_in: list[str] = []
    original = httpx.Response.close

    def spy(self: httpx.Response) -> None:
        closed_in.append(threading.current_thread().name)
        original(self)

    monkeypatch.setattr(httpx.Response, "close", spy)
    fake = FakeFlowise()
    flow = fake.add_flow(FakeFlow(answer="a b c d e f g h i j", token_delay=0.2))
    with fake.serve() as base_url, FlowiseClient(base_url, diagnose_after=None) as client:
        for event in client.stream(flow, "hi"):
            if event.event == "token":
                break  # the stream object is dropped right here, in this thread
        closed = threading.Event()
        for _ in range(200):
            if fake.open_connections == 0:
                closed.set()
                break
            closed.wait(0.05)
        assert closed.is_set(), "the server still sees the connection after the break"
    assert closed_in[0] == "flowise-janitor"  # closed by the janitor thread, not by a finalizer


# -- 2. ids are path segments ------------------------------------------------------------------------------


def recorder() -> tuple[list[httpx.Request], Callable[[httpx.Request], httpx.Response]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.startswith("/api/v1/prediction/"):
            return httpx.Response(200, headers=JSON, json={"text": "ok", "chatId": "c"})
        if "chatflows-streaming" in request.url.path:
            return httpx.Response(200, headers=JSON, json={"isStreaming": True})
        return httpx.Response(200, headers=JSON, json=[] if request.method == "GET" else {"status": 200})

    return seen, handle


def test_ids_never_leave_their_path_segment() -> None:
    seen, handle = recorder()
    client = mock_client(handle)
    client.abort("flow", "../../../apikey/abc")
    client.get_chat_messages("../apikey")
    client.is_streaming("../apikey")
    client.predict("x?a=b", "hi")
    client.predict("a/b#c%20", "hi")
    assert [r.url.raw_path for r in seen] == [
        b"/api/v1/chatmessage/abort/flow/..%2F..%2F..%2Fapikey%2Fabc",
        b"/api/v1/chatmessage/..%2Fapikey",
        b"/api/v1/chatflows-streaming/..%2Fapikey",
        b"/api/v1/prediction/x%3Fa%3Db",
        b"/api/v1/prediction/a%2Fb%23c%2520",
    ]
    assert all(r.method in ("GET", "PUT", "POST") and not r.url.query for r in seen[2:])


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.predict("..", "hi"),
        lambda c: c.predict(".", "hi"),
        lambda c: c.predict("", "hi"),
        lambda c: c.predict("a\nb", "hi"),
        lambda c: c.stream("..", "hi"),
        lambda c: c.abort("flow", ".."),
        lambda c: c.abort("..", "chat"),
        lambda c: c.get_chat_messages("."),
        lambda c: c.is_streaming("\x00"),
    ],
)
def test_ids_that_cannot_be_a_segment_are_refused_before_any_request(call: Callable[[FlowiseClient], Any]) -> None:
    seen, handle = recorder()
    with pytest.raises(ValueError, match="id"):
        call(mock_client(handle))
    assert seen == []


SEGMENT_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1).filter(
    lambda s: s not in (".", "..")
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flow=SEGMENT_TEXT, chat=SEGMENT_TEXT)
def test_any_id_is_exactly_one_segment(flow: str, chat: str) -> None:
    seen, handle = recorder()
    client = mock_client(handle)
    client.abort(flow, chat)
    client.predict(flow, "hi")
    abort, predict = (r.url.raw_path.decode("ascii") for r in seen)
    assert abort.split("/")[:5] == ["", "api", "v1", "chatmessage", "abort"]
    assert [unquote(part) for part in abort.split("/")[5:]] == [flow, chat]
    assert [unquote(part) for part in predict.split("/")[4:]] == [flow]
    assert all(not r.url.query and not r.url.fragment for r in seen)


# -- 3. thousands of concurrent streams: FIFO admission -------------------------------------------------


async def test_admission_keeps_at_most_max_connections_in_flight_and_completes_all() -> None:
    first_batch = threading.Barrier(8, timeout=20)  # the first 8 streams are held until all 8 are in flight
    arrivals = iter(range(10_000))
    lock = threading.Lock()

    def script(conn: Conn) -> None:
        with lock:
            n = next(arrivals)
        if n < 8:
            first_batch.wait()
        conn.send(SSE_HEAD)
        for word in ("a ", "b ", "c"):
            conn.send(chunk(frame("token", word)))
        conn.send(chunk(META) + chunk(END) + b"0\r\n\r\n")

    class Counting(httpx.AsyncHTTPTransport):
        """Counts requests inside the pool: from handing one to httpx until its response is closed."""

        now = peak = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            Counting.now += 1
            Counting.peak = max(Counting.peak, Counting.now)
            try:
                response = await super().handle_async_request(request)
            except BaseException:
                Counting.now -= 1
                raise
            inner = response.stream
            assert isinstance(inner, httpx.AsyncByteStream)

            class Stream(httpx.AsyncByteStream):
                def __aiter__(self) -> Any:
                    return inner.__aiter__()

                async def aclose(self) -> None:
                    Counting.now -= 1
                    await inner.aclose()

            response.stream = Stream()
            return response

    with RawServer(script) as url:
        limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
        http = httpx.AsyncClient(transport=Counting(limits=httpx.Limits(max_connections=100)))
        async with AsyncFlowiseClient(url, http_client=http, limits=limits, diagnose_after=None) as client:
            results = await asyncio.gather(*(client.stream("flow", "hi").until_done() for _ in range(60)))
        await http.aclose()
    assert [r.text for r in results] == ["a b c"] * 60
    assert Counting.peak == 8  # the limit was reached (the calls overlapped) and never exceeded
    assert Counting.now == 0


# -- 4. deadlines ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("retry_after", ["99999", "Fri, 31 Dec 2100 23:59:59 GMT"])
def test_a_retry_after_longer_than_the_budget_raises_at_once(retry_after: str, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("flowise_integrations.client._sleep", lambda delay, control: slept.append(delay))
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(429, headers={"retry-after": retry_after}, json={"message": "Too many requests"})

    with pytest.raises(RateLimitError, match="Too many requests") as info:
        mock_client(handle, timeout=3).predict("flow", "hi")
    assert info.value.retry_after is not None and info.value.retry_after > 99_000
    assert len(seen) == 1 and slept == []


def test_a_retry_after_beyond_the_deadline_raises_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("flowise_integrations.client._sleep", lambda delay, control: slept.append(delay))
    handle = lambda request: httpx.Response(503, headers={"retry-after": "5"}, json={"message": "busy"})  # noqa: E731
    with pytest.raises(InternalServerError, match="busy"):
        mock_client(handle).predict("flow", "hi", deadline=2)
    assert slept == []


def drip_forever(conn: Conn) -> None:
    """One token, then the next frame one byte per 50 ms, forever."""
    if answer_abort(conn):
        return
    conn.send(SSE_HEAD + chunk(frame("token", "kept ")))
    for byte in iter(lambda: b"x", None):
        if not conn.wait(0.05) or not conn.send(chunk(b"data:" if byte else b"")):
            return


def heartbeat_forever(conn: Conn) -> None:
    """A dead queue-mode worker: one token, then only Flowise's heartbeat comments."""
    if answer_abort(conn):
        return
    conn.send(SSE_HEAD + chunk(frame("token", "kept ")))
    while conn.wait(0.1) and conn.send(chunk(b":heartbeat\n\n")):
        pass


def silent_after_first_token(conn: Conn) -> None:
    if answer_abort(conn):
        return
    conn.send(SSE_HEAD + chunk(frame("token", "kept ")))
    conn.client_gone(timeout=30)


def never_answers(conn: Conn) -> None:
    conn.client_gone(timeout=30)


@pytest.mark.parametrize("script", [drip_forever, heartbeat_forever, silent_after_first_token])
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_deadline_ends_a_stream_that_never_ends(script: Callable[[Conn], None], mode: str) -> None:
    with RawServer(script) as url:
        timeout = httpx.Timeout(30.0)  # longer than the test's hard limit: only the deadline can end it
        with pytest.raises(FlowiseTimeoutError, match=r"missed its deadline of 1\.0 s") as info:
            if mode == "sync":
                with FlowiseClient(url, timeout=timeout, diagnose_after=None) as client:
                    client.stream("flow", "hi", deadline=1.0).until_done()
            else:
                async with AsyncFlowiseClient(url, timeout=timeout, diagnose_after=None) as aclient:
                    await aclient.stream("flow", "hi", deadline=1.0).until_done()
    assert info.value.partial is not None and info.value.partial.text == "kept "


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_client_deadline_bounds_a_server_that_never_answers(mode: str) -> None:
    with RawServer(never_answers) as url:
        timeout = httpx.Timeout(30.0)
        with pytest.raises(FlowiseTimeoutError, match="deadline"):
            if mode == "sync":
                with FlowiseClient(url, timeout=timeout, deadline=1.0) as client:
                    client.predict("flow", "hi")
            else:
                async with AsyncFlowiseClient(url, timeout=timeout, deadline=1.0) as aclient:
                    await aclient.predict("flow", "hi")


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "5"])
def test_a_deadline_must_be_a_positive_number(bad: Any) -> None:
    with pytest.raises(ValueError, match="deadline"):
        FlowiseClient("http://flowise.test", deadline=bad)
    client = mock_client(lambda r: httpx.Response(200, json={"text": "ok"}))
    with pytest.raises(ValueError, match="deadline"):
        client.predict("flow", "hi", deadline=bad)


def test_a_per_call_deadline_of_none_lifts_the_clients() -> None:
    client = mock_client(lambda r: httpx.Response(200, headers=JSON, json={"text": "ok"}), deadline=5)
    assert client.predict("flow", "hi", deadline=None).text == "ok"


# -- 5. the event-size cap and a line that never ends -----------------------------------------------------


def test_an_event_over_the_cap_is_a_protocol_error_with_the_partial_answer() -> None:
    body = frame("token", "kept ") + frame("token", "x" * 5000) + META + END
    client = mock_client(lambda r: httpx.Response(200, headers=SSE, content=body), max_event_size=1000)
    with pytest.raises(FlowiseProtocolError, match="max_event_size=1000") as info:
        client.stream("flow", "hi").until_done()
    assert info.value.partial is not None and info.value.partial.text == "kept "


def test_a_json_reply_over_the_cap_is_a_protocol_error() -> None:
    body = json.dumps({"text": "x" * 5000}).encode()
    client = mock_client(lambda r: httpx.Response(200, headers=JSON, content=body), max_event_size=1000)
    with pytest.raises(FlowiseProtocolError, match="larger than 1000 bytes"):
        client.predict("flow", "hi")


def endless_line(conn: Conn) -> None:
    conn.send(SSE_HEAD + chunk(frame("token", "kept ")) + chunk(b"data:"))
    while conn.wait(0) and conn.send(chunk(b"y" * 65536)):
        pass


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_line_that_never_ends_is_cut_at_the_cap(mode: str) -> None:
    with RawServer(endless_line) as url, pytest.raises(FlowiseProtocolError, match="exceeded 1048576 bytes") as info:
        if mode == "sync":
            with FlowiseClient(url, max_event_size=1 << 20, diagnose_after=None) as client:
                client.stream("flow", "hi").until_done()
        else:
            async with AsyncFlowiseClient(url, max_event_size=1 << 20, diagnose_after=None) as aclient:
                await aclient.stream("flow", "hi").until_done()
    assert info.value.partial is not None and info.value.partial.text == "kept "


# -- 6. cancel from another thread or task; Ctrl-C before the headers -------------------------------------


def slow_tokens(conn: Conn) -> None:
    if answer_abort(conn):
        return
    conn.send(SSE_HEAD)
    for i in range(100):
        if not conn.send(chunk(frame("token", f"t{i} "))) or not conn.wait(0.2):
            return


def test_cancel_from_another_thread_wakes_the_reader_and_aborts() -> None:
    server = RawServer(slow_tokens)
    with server as server_url, FlowiseClient(server_url, timeout=30, diagnose_after=None) as client:
        stream = client.stream("flow", "hi", chat_id="chat-1")
        first = threading.Event()
        ended = threading.Event()
        seen: list[str] = []

        def read() -> None:
            for event in stream:
                seen.append(event.event)
                first.set()
            ended.set()

        reader = threading.Thread(target=read)
        reader.start()
        assert first.wait(20)
        assert stream.cancel() is True
        assert ended.wait(20), "the reader was not released"
        reader.join()
    assert stream.result.finish_reason == "cancelled"
    assert stream.result.text.startswith("t0 ")
    assert any(r.startswith(b"PUT /api/v1/chatmessage/abort/flow/chat-1 ") for r in server.requests)


def test_cancel_sends_the_abort_for_the_streams_chat() -> None:
    server = RawServer(slow_tokens)
    with server as url, FlowiseClient(url, timeout=30, diagnose_after=None) as client:
        stream = client.stream("flow", "hi", chat_id="chat/1")
        next(iter(stream))
        canceller = threading.Thread(target=stream.cancel)
        canceller.start()
        with pytest.raises(StopIteration):
            while True:
                next(stream)
        canceller.join()
    puts = [r for r in server.requests if r.startswith(b"PUT ")]
    assert puts and puts[0].startswith(b"PUT /api/v1/chatmessage/abort/flow/chat%2F1 HTTP/1.1")


async def test_cancel_from_another_task_wakes_the_reader_and_aborts() -> None:
    server = RawServer(slow_tokens)
    with server as url:
        async with AsyncFlowiseClient(url, timeout=30, diagnose_after=None) as client:
            stream = client.stream("flow", "hi", chat_id="chat-2")
            first = asyncio.Event()

            async def read() -> list[str]:
                out = []
                async for event in stream:
                    out.append(event.event)
                    first.set()
                return out

            reader = asyncio.create_task(read())
            await asyncio.wait_for(first.wait(), 20)
            assert await stream.cancel() is True
            events = await asyncio.wait_for(reader, 20)
    assert events and stream.result.finish_reason == "cancelled"
    assert any(r.startswith(b"PUT /api/v1/chatmessage/abort/flow/chat-2 ") for r in server.requests)


def test_cancel_before_the_headers_releases_the_reader() -> None:
    arrived, gone = threading.Event(), threading.Event()

    def hang(conn: Conn) -> None:
        if answer_abort(conn):
            return
        arrived.set()
        if conn.client_gone(timeout=30):
            gone.set()

    with RawServer(hang) as url, FlowiseClient(url, timeout=30, diagnose_after=None) as client:
        stream = client.stream("flow", "hi")
        ended = threading.Event()
        reader = threading.Thread(target=lambda: (stream.until_done(), ended.set()))
        reader.start()
        assert arrived.wait(20)  # the request is out; its response headers will never come
        stream.cancel()
        assert ended.wait(20), "the reader was not released"
        reader.join()
        assert gone.wait(20), "the server never saw the connection close"
    assert stream.result.finish_reason == "cancelled"


def test_ctrl_c_before_the_headers_closes_the_request_at_once() -> None:
    """The watched send (a helper thread) used to keep the pool slot until the server answered."""
    gone = threading.Event()

    def hang(conn: Conn) -> None:
        if conn.client_gone(timeout=30):
            gone.set()

    with RawServer(hang) as url, FlowiseClient(url, timeout=30, diagnose_after=20) as client:
        main = threading.main_thread().ident
        assert main == threading.get_ident()
        timer = threading.Timer(0.5, signal.pthread_kill, (main, signal.SIGINT))  # a real Ctrl-C
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            client.stream("flow", "hi").open()
        assert gone.wait(10), "the request was not closed on Ctrl-C"


# -- 7. secrets --------------------------------------------------------------------------------------------


def test_a_key_read_from_a_file_with_its_newline_just_works() -> None:
    seen, handle = recorder()
    mock_client(handle, api_key="sk-abc\n").predict("flow", "hi")
    assert seen[0].headers["authorization"] == "Bearer sk-abc"


@pytest.mark.parametrize("key", ["sk-a\nbc", "sk-a\rbc", "sk-\x00abc", "sk-\u00e9abc"])
def test_a_key_with_an_inner_control_character_is_refused_without_showing_it(key: str) -> None:
    with pytest.raises(ValueError, match="api_key") as info:
        FlowiseClient("http://flowise.test", api_key=key)
    assert "sk-" not in str(info.value) and "abc" not in str(info.value)


def test_a_header_value_that_cannot_be_sent_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError, match="X-Token") as info:
        FlowiseClient("http://flowise.test", headers={"X-Token": "secret\r\nInjected: 1"})
    assert "secret" not in str(info.value)
    client = mock_client(recorder()[1])
    with pytest.raises(ValueError, match="X-Token") as info:
        client.predict("flow", "hi", headers={"X-Token": "secret\nx"})
    assert "secret" not in str(info.value)


def test_credentials_in_the_base_url_become_basic_auth_and_are_never_shown() -> None:
    client = FlowiseClient("http://admin:s3cr%40t@127.0.0.1:9/", max_retries=0)
    assert "s3cr" not in repr(client) and client.base_url == "http://127.0.0.1:9"
    with pytest.raises(FlowiseConnectionError) as info:
        client.predict("flow", "hi")
    assert "s3cr" not in str(info.value) and "admin" not in str(info.value)
    seen, handle = recorder()
    client = FlowiseClient(
        "http://admin:s3cr%40t@flowise.test", http_client=httpx.Client(transport=httpx.MockTransport(handle))
    )
    client.predict("flow", "hi")
    assert seen[0].headers["authorization"] == "Basic " + base64.b64encode(b"admin:s3cr@t").decode()
    assert "s3cr" not in str(seen[0].url)


# -- 8. bounded errors -------------------------------------------------------------------------------------


def test_a_huge_error_body_gives_a_short_message_and_is_not_read_whole() -> None:
    served = [0]

    def body() -> Iterator[bytes]:
        piece = b"<html>" + b"x" * 65530
        for _ in range(1600):  # 100 MB
            served[0] += len(piece)
            yield piece

    client = mock_client(lambda r: httpx.Response(500, headers={"content-type": "text/html"}, content=body()))
    with pytest.raises(InternalServerError) as info:
        client.predict("flow", "hi")
    assert len(str(info.value)) < 2_200
    assert len(str(info.value.body)) < 17_000
    assert served[0] < 200_000


def test_a_huge_flowise_message_is_cut() -> None:
    message = "boom " * 100_000
    client = mock_client(lambda r: httpx.Response(500, headers=JSON, json={"message": message}))
    with pytest.raises(InternalServerError, match=r"^boom boom") as info:
        client.predict("flow", "hi")
    assert len(str(info.value)) < 2_200


# -- 9. the flow's error wins ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_an_error_event_then_a_broken_connection_raises_the_flows_error(mode: str) -> None:
    def body() -> Iterator[bytes]:
        yield frame("token", "kept ")
        yield frame("error", "Error: the model refused")
        raise httpx.RemoteProtocolError("peer closed connection")

    async def abody() -> Any:
        for piece in body():
            yield piece

    if mode == "sync":
        with pytest.raises(FlowExecutionError, match="the model refused") as info:
            mock_client(lambda r: httpx.Response(200, headers=SSE, content=body())).stream("f", "hi").until_done()
    else:
        http = httpx.AsyncClient(
            transport=httpx.MockTransport(lambda r: httpx.Response(200, headers=SSE, content=abody()))
        )
        client = AsyncFlowiseClient("http://flowise.test", http_client=http, diagnose_after=None)
        with pytest.raises(FlowExecutionError, match="the model refused") as info:
            await client.stream("f", "hi").until_done()
    assert info.value.partial is not None and info.value.partial.text == "kept "


# -- 10. any payload shape is typed or kept, never a crash ------------------------------------------------

EVENT_NAMES = [
    "start", "token", "thinking", "sourceDocuments", "usedTools", "calledTools", "agentReasoning", "nextAgent",
    "agentFlowEvent", "nextAgentFlow", "agentFlowExecutedData", "action", "artifacts", "fileAnnotations", "tool",
    "usageMetadata", "metadata", "error", "abort", "end", "agent_trace", "tts_start", "tts_data", "tts_end",
    "tts_abort", "somethingNew",
]  # fmt: skip
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
# keys the models read, so the arbitrary values land where they could hurt
MODEL_KEYS = st.sampled_from(
    ["pageContent", "metadata", "id", "tool", "toolInput", "toolOutput", "sourceDocuments", "usedTools", "error",
     "agentName", "messages", "next", "instructions", "artifacts", "state", "nodeName", "nodeId", "input_tokens",
     "output_tokens", "total_tokens", "chatId", "chatMessageId", "sessionId", "followUpPrompts", "flowVariables",
     "action", "data", "output", "usageMetadata", "text", "executionId", "agentFlowExecutedData", "question",
     "memoryType", "json", "reasonContent", "step", "nodeLabel", "status", "duration"]
)  # fmt: skip
PAYLOADS = st.recursive(
    JSON_VALUES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(MODEL_KEYS, inner, max_size=6),
    max_leaves=30,
)


def _views(event: Any) -> None:
    for name in ("documents", "tools", "steps", "usage", "status", "node_id", "node_label", "error", "chat_id",
                 "chat_message_id", "session_id", "message", "step"):  # fmt: skip
        if hasattr(type(event), name):
            getattr(event, name)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(st.tuples(st.sampled_from(EVENT_NAMES), PAYLOADS), max_size=8))
def test_any_event_payload_folds_into_a_prediction(frames: list[tuple[str, Any]]) -> None:
    state = StreamState("flow", "chat", streaming=True)
    body = b"".join(frame(name, data) for name, data in frames) + END
    for event in state.feed(body):
        _views(event)
    result = state.result
    assert result.finish_reason in ("stop", "error", "abort", "stopped")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.dictionaries(MODEL_KEYS, PAYLOADS, max_size=8))
def test_any_json_reply_through_predict_is_a_prediction_or_a_flowise_error(body: dict[str, Any]) -> None:
    client = mock_client(lambda r: httpx.Response(200, headers=JSON, json=body))
    try:
        result = client.predict("flow", "hi")
    except FlowiseError:
        return
    assert result.finished


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=300))
def test_any_bytes_through_a_stream_are_events_or_a_flowise_error(raw: bytes) -> None:
    client = mock_client(lambda r: httpx.Response(200, headers=SSE, content=raw))
    with contextlib.suppress(FlowiseError):
        client.stream("flow", "hi").until_done()


def test_a_real_multi_agent_step_with_null_items_is_typed() -> None:
    step = {"agentName": "Worker", "messages": ["done"], "usedTools": [None], "sourceDocuments": [None],
            "artifacts": [None], "state": {}}  # fmt: skip
    body = frame("agentReasoning", [step]) + frame("token", "ok") + META + END
    result = mock_client(lambda r: httpx.Response(200, headers=SSE, content=body)).stream("f", "hi").until_done()
    assert result.agent_reasoning[0].agent_name == "Worker"
    assert result.agent_reasoning[0].used_tools == [] and result.agent_reasoning[0].artifacts == []


# -- 11. thread safety -------------------------------------------------------------------------------------


def test_fifty_threads_on_a_new_client_build_one_http_client(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[object] = []
    original = httpx.Client.__init__

    def counting(self: httpx.Client, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        threading.Event().wait(0.001)  # widen the race window
        original(self, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "__init__", counting)
    client = FlowiseClient("http://flowise.test")
    barrier = threading.Barrier(50)
    got: list[httpx.Client] = []

    def use() -> None:
        barrier.wait()
        got.append(client.http)

    threads = [threading.Thread(target=use) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1 and len({id(h) for h in got}) == 1
    client.close()


# -- 12. invalid UTF-8 is counted ---------------------------------------------------------------------------


def test_invalid_utf8_inside_a_frame_is_delivered_and_counted() -> None:
    bad = b'message:\ndata:{"event":"token","data":"caf\xe9 "}\n\n'
    body = bad + frame("token", "ok") + META + END
    stream = mock_client(lambda r: httpx.Response(200, headers=SSE, content=body)).stream("f", "hi")
    events = list(stream)
    assert not any(isinstance(e, MalformedEvent) for e in events)
    assert stream.result.text == "caf\ufffd ok"
    assert stream.result.malformed_frames == ['{"event":"token","data":"caf\ufffd "}']


# -- the hang watch after an error response (issue 14) -------------------------------------------------------


@pytest.mark.parametrize("status", [404, 500])
def test_an_error_response_does_not_mark_a_flow_as_answered(status: int) -> None:
    """A flow that answered 404/500 must still be watched: Flowise never answers its streaming request."""
    fake = FakeFlowise(version="3.1.4" if status == 404 else "2.2.8")
    with fake.serve() as url:
        client = FlowiseClient(url, timeout=120, diagnose_after=0.2)  # a missed watch would wait 120 s
        with pytest.raises(NotFoundError):
            client.predict("9b3b2c8e-0000-4000-8000-000000000000", "hi")
        with pytest.raises(NotFoundError, match="diagnosed"):
            client.stream("9b3b2c8e-0000-4000-8000-000000000000", "hi").until_done()


def test_pre_3_0_13_unknown_flow_500_is_not_found() -> None:
    body = {"statusCode": 500, "success": False, "message": "chatflowsService.getChatflowById - Chatflow x not found in the database!"}  # fmt: skip
    client = mock_client(lambda r: httpx.Response(500, headers=JSON, json=body))
    with pytest.raises(NotFoundError, match="not found in the database"):
        client.predict("x", "hi")


def test_a_malformed_id_on_a_postgres_backed_server_is_not_found_as_on_sqlite() -> None:
    """Flowise on Postgres answers a malformed id with the database's 500 (SQLite: not found); both say 404."""
    from flowise_integrations.errors import error_from_probe

    message = 'Error: chatflowsService.getChatflowById - invalid input syntax for type uuid: "not-a-uuid"'
    body = json.dumps({"statusCode": 500, "success": False, "message": message}).encode()
    assert isinstance(error_from_probe("not-a-uuid", 500, body), NotFoundError)
    client = mock_client(lambda r: httpx.Response(500, headers=JSON, content=body))
    with pytest.raises(NotFoundError, match="invalid input syntax"):
        client.predict("not-a-uuid", "hi")
