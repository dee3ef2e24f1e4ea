"""The client against FakeFlowise, over its transport and its real loopback server: hangs, cancellation,
connections, request bodies, sessions, concurrency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from flowise_integrations import (
    AsyncFlowiseClient,
    ChatTurn,
    FlowiseClient,
    FlowiseTimeoutError,
    HumanInput,
    NotFoundError,
    NotResumableError,
    TokenEvent,
    Upload,
)
from flowise_integrations.testing import FakeFlow, FakeFlowise

UNKNOWN = "00000000-0000-4000-8000-000000000000"


pytestmark = pytest.mark.timeout(60)  # a missed diagnosis waits out a 120 s read timeout: fails


@pytest.fixture
def fake() -> FakeFlowise:
    return FakeFlowise()


@pytest.fixture
def served(fake: FakeFlowise) -> Iterator[str]:
    with fake.serve() as base_url:
        yield base_url
    assert fake.open_connections == 0


def test_stream_over_loopback_and_no_connection_left_open(fake: FakeFlowise, served: str) -> None:
    flow = fake.add_flow(FakeFlow(answer="Hello there friend"))
    with FlowiseClient(served) as client:
        with client.stream(flow, "hi") as stream:
            texts = [e.data for e in stream if isinstance(e, TokenEvent)]
        assert texts == ["Hello", " there", " friend"]
        assert stream.result.text == "Hello there friend"
        assert client.predict(flow, "hi").text == "Hello there friend"
    _wait_for(lambda: fake.open_connections == 0)


def test_breaking_out_closes_the_connection_at_once(fake: FakeFlowise, served: str) -> None:
    flow = fake.add_flow(FakeFlow(tokens=[f"t{i} " for i in range(200)], token_delay=0.02))
    client = FlowiseClient(served)
    with client.stream(flow, "hi") as stream:
        for event in stream:
            if isinstance(event, TokenEvent):
                break
        assert fake.open_connections == 1
    client.close()
    _wait_for(lambda: fake.open_connections == 0)  # closed long before the 4 s the whole stream would take


def test_cancel_closes_and_aborts_on_the_server(fake: FakeFlowise, served: str) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow", tokens=["a "] * 100, token_delay=0.02))
    with FlowiseClient(served) as client:
        stream = client.stream(flow, "hi")
        next(e for e in stream if isinstance(e, TokenEvent))
        assert stream.cancel() is True
    abort = [r for r in fake.requests if r.method == "PUT"]
    assert abort[0].path == f"/api/v1/chatmessage/abort/{flow}/{stream.chat_id}"
    body = next(r for r in fake.requests if r.method == "POST").json
    assert body is not None
    assert body["chatId"] == stream.chat_id  # chosen by the client, so abort works before `metadata`


@pytest.mark.parametrize("transport", ["loopback", "transport"])
def test_unknown_chatflow_streaming_is_not_found_quickly(fake: FakeFlowise, transport: str) -> None:
    """Flowise never answers; the client diagnoses after `diagnose_after` instead of waiting out the timeout."""
    with fake.serve() as base_url:
        if transport == "loopback":
            client = FlowiseClient(base_url, timeout=120, diagnose_after=0.3)  # > the hard limit
        else:
            http = httpx.Client(transport=fake.transport(), timeout=120)
            client = FlowiseClient("http://flowise.test", http_client=http, diagnose_after=0.3)
        with pytest.raises(NotFoundError, match=f"Chatflow {UNKNOWN} not found"):
            client.stream(UNKNOWN, "hi").until_done()
        if transport == "loopback":
            client.close()
    assert fake.open_connections == 0


async def test_unknown_chatflow_streaming_is_not_found_quickly_async(fake: FakeFlowise) -> None:
    with fake.serve() as base_url:
        async with AsyncFlowiseClient(base_url, timeout=120, diagnose_after=0.3) as client:
            with pytest.raises(NotFoundError):
                await client.stream(UNKNOWN, "hi").until_done()
        _wait_for(lambda: fake.open_connections == 0)


def test_unknown_chatflow_without_diagnosis_still_ends_in_not_found(fake: FakeFlowise, served: str) -> None:
    client = FlowiseClient(served, timeout=httpx.Timeout(1.0), diagnose_after=None)
    with pytest.raises(NotFoundError):
        client.stream(UNKNOWN, "hi").until_done()
    client.close()


def test_unknown_chatflow_json_mode_is_an_immediate_404(fake: FakeFlowise, served: str) -> None:
    with FlowiseClient(served) as client, pytest.raises(NotFoundError) as info:
        client.predict(UNKNOWN, "hi")
    assert info.value.status_code == 404
    assert info.value.message == f"Chatflow {UNKNOWN} not found in the database!"


def test_hung_known_flow_ends_in_a_timeout_within_the_configured_time(fake: FakeFlowise, served: str) -> None:
    flow = fake.add_flow(FakeFlow(first_token_delay=10))
    client = FlowiseClient(served, timeout=httpx.Timeout(0.5), diagnose_after=0.2, max_retries=0)
    with pytest.raises(FlowiseTimeoutError, match="waiting for data from") as info:
        client.stream(flow, "hi").until_done()
    assert info.value.partial is not None  # headers had arrived: a (empty) partial answer is attached
    client.close()


def test_the_request_body_is_exactly_what_flowise_expects(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow"))
    http = httpx.Client(transport=fake.transport())
    client = FlowiseClient("http://flowise.test", "k", http_client=http)
    with pytest.raises(NotResumableError, match="No previous execution found"):  # no run of chat-1 stopped
        client.predict(
            flow,
            "and now?",
            chat_id="chat-1",
            history=[
                ChatTurn(role="user", content="hi"),
                {"role": "assistant", "content": "hello"},
                {"type": "userMessage", "message": "legacy"},
            ],
            override_config={"temperature": 0},
            uploads=[Upload.from_bytes(b"\x89PNG", name="a.png"), Upload.from_url("https://x.test/cat.png")],
            human_input=HumanInput(type="proceed", start_node_id="humanInput_0", feedback="ok"),
            lead_email="a@b.c",
        )
    request = fake.last_request
    assert request.headers["authorization"] == "Bearer k"
    assert request.json == {
        "question": "and now?",
        "chatId": "chat-1",
        "overrideConfig": {"temperature": 0},
        "history": [
            {"role": "userMessage", "content": "hi"},
            {"role": "apiMessage", "content": "hello"},
            {"role": "userMessage", "content": "legacy"},
        ],
        "uploads": [
            {"type": "file", "name": "a.png", "mime": "image/png", "data": "data:image/png;base64,iVBORw=="},
            {"type": "url", "name": "cat.png", "mime": "image/png", "data": "https://x.test/cat.png"},
        ],
        "humanInput": {"type": "proceed", "startNodeId": "humanInput_0", "feedback": "ok"},
        "leadEmail": "a@b.c",
    }


def test_session_continuity_over_two_turns(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(memory_type="Buffer Memory"))
    client = FlowiseClient("http://flowise.test", http_client=httpx.Client(transport=fake.transport()))
    first = client.stream(flow, "hi", session_id="s-1").until_done()
    second = client.predict(flow, "again", session_id="s-1")
    assert first.session_id == second.session_id == "s-1"
    assert first.memory_type == "Buffer Memory"
    bodies = [r.json for r in fake.requests]
    assert all(b is not None and b["overrideConfig"] == {"sessionId": "s-1"} and "chatId" not in b for b in bodies)
    stored = [m["content"] for m in fake.chat_messages if m.get("sessionId") == "s-1"]
    assert stored[0] == "hi"
    assert "again" in stored


def test_non_streamable_flow_delivers_json_as_events(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(streaming=False, answer="Plain JSON answer"))
    client = FlowiseClient("http://flowise.test", http_client=httpx.Client(transport=fake.transport()))
    with client.stream(flow, "hi") as stream:
        names = [e.event for e in stream]
    assert names == ["token", "metadata", "end"]
    assert stream.result.text == "Plain JSON answer"
    assert stream.result.streamed is False
    assert len(fake.requests) == 1  # one POST, no pre-flight


async def test_async_streams_are_concurrent(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(first_token_delay=0.2, answer="ok"))
    async with AsyncFlowiseClient(
        "http://flowise.test", http_client=httpx.AsyncClient(transport=fake.async_transport())
    ) as client:
        results = await asyncio.gather(*(client.predict(flow, f"q{i}") for i in range(20)))
    assert [r.text for r in results] == ["ok"] * 20  # the overlap itself: tests/*/test_*_concurrency.py (no clock)


async def test_async_cancelling_the_task_closes_the_stream(fake: FakeFlowise, served: str) -> None:
    flow = fake.add_flow(FakeFlow(tokens=["x"] * 500, token_delay=0.01))
    async with AsyncFlowiseClient(served) as client:

        async def consume() -> None:
            async with client.stream(flow, "hi") as stream:
                async for _ in stream:
                    pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    _wait_for(lambda: fake.open_connections == 0)


def _wait_for(condition: object, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_only_a_flow_that_never_answered_is_watched(
    fake: FakeFlowise, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hang watch (a thread hop in sync code) costs nothing once a flow has answered: no pre-flight, ever."""
    flow = fake.add_flow(FakeFlow(answer="ok"))
    cls = FlowiseClient if mode == "sync" else AsyncFlowiseClient
    watched: list[str] = []
    original = cls._send_watched

    def spy(self: object, request: httpx.Request, *args: object) -> object:
        watched.append(str(request.url))
        return original(self, request, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(cls, "_send_watched", spy)
    if mode == "sync":
        client = FlowiseClient("http://flowise.test", http_client=httpx.Client(transport=fake.transport()))
        texts = [client.stream(flow, "hi").until_done().text for _ in range(3)]
    else:
        aclient = AsyncFlowiseClient(
            "http://flowise.test", http_client=httpx.AsyncClient(transport=fake.async_transport())
        )
        texts = [(await aclient.stream(flow, "hi").until_done()).text for _ in range(3)]
    assert texts == ["ok"] * 3
    assert len(watched) == 1
    assert [r.method for r in fake.requests] == ["POST"] * 3  # and never a pre-flight GET


async def test_is_streaming_and_helpers(fake: FakeFlowise) -> None:
    streamable = fake.add_flow(FakeFlow())
    plain = fake.add_flow(FakeFlow(streaming=False))
    client = FlowiseClient("http://flowise.test", http_client=httpx.Client(transport=fake.transport()))
    assert client.is_streaming(streamable) is True
    assert client.is_streaming(plain) is False
    with pytest.raises(NotFoundError):  # Flowise answers this probe with a 500 "... not found"
        client.is_streaming(UNKNOWN)
    assert client.ping() is True
    assert client.version() == "3.1.4"
    aclient = AsyncFlowiseClient("http://flowise.test", http_client=httpx.AsyncClient(transport=fake.async_transport()))
    assert await aclient.is_streaming(streamable) is True
    with pytest.raises(NotFoundError):
        await aclient.is_streaming(UNKNOWN)
    assert await aclient.ping() is True
    assert await aclient.version() == "3.1.4"


def test_a_script_that_hits_an_unknown_chatflow_exits_promptly(fake: FakeFlowise, served: str) -> None:
    """The abandoned watched send (Flowise never answers) must not keep the interpreter alive until the timeout."""
    import subprocess
    import sys

    script = (
        "import sys; from flowise_integrations import FlowiseClient, NotFoundError\n"
        f"client = FlowiseClient({served!r}, timeout=120, diagnose_after=0.3)\n"
        f"try:\n    client.stream({UNKNOWN!r}, 'hi').until_done()\nexcept NotFoundError:\n    sys.exit(0)\n"
        "sys.exit(1)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], timeout=30, check=False)  # < the 60 s read timeout
    assert result.returncode == 0
