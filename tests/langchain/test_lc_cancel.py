"""Leaving a ChatFlowise or FlowiseTool call early stops the flow: the emulator receives
``PUT /api/v1/chatmessage/abort/{flow}/{chat}`` for the chat the call ran on, and nothing when the call ended by
itself or ``abort_on_cancel=False``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from _langchain_support import BASE_URL, transport_clients

from flowise_integrations._control import wait_for_aborts
from flowise_integrations.langchain import ChatFlowise, FlowiseTool
from flowise_integrations.testing import FakeFlow, FakeFlowise

pytestmark = pytest.mark.usefixtures("no_sockets")

MakeLLM = Callable[..., ChatFlowise]
WAIT = 10.0  # an upper bound for an abort sent from another thread; only a missing abort makes it run out
SLOW = {"tokens": [f" t{i}" for i in range(200)], "token_delay": 0.01}


def aborted(fake: FakeFlowise, flow: str) -> list[str]:
    """The chat ids the server was asked to abort for ``flow``."""
    prefix = f"/api/v1/chatmessage/abort/{flow}/"
    return [r.path[len(prefix) :] for r in fake.requests if r.method == "PUT" and r.path.startswith(prefix)]


def sent_chat_id(fake: FakeFlowise, flow: str) -> str:
    (body,) = [r.json for r in fake.requests if r.path == f"/api/v1/prediction/{flow}"]
    return str(body.get("chatId") or body["overrideConfig"]["sessionId"])


def assert_aborted(fake: FakeFlowise, flow: str) -> None:
    assert wait_for_aborts(WAIT), "a background abort is still running"
    assert aborted(fake, flow) == [sent_chat_id(fake, flow)]


def assert_not_aborted(fake: FakeFlowise, flow: str) -> None:
    assert wait_for_aborts(WAIT)
    assert aborted(fake, flow) == []


class _Interrupting(httpx.BaseTransport):
    """The fake's transport, but reading a prediction's body raises ``KeyboardInterrupt`` (Ctrl-C mid-answer)."""

    def __init__(self, inner: httpx.BaseTransport, after_chunks: int) -> None:
        self.inner, self.after = inner, after_chunks

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if "/prediction/" not in request.url.path:
            return response
        stream, after = response.stream, self.after

        class _Body(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                for n, chunk in enumerate(stream):  # type: ignore[union-attr]
                    if n >= after:
                        raise KeyboardInterrupt
                    yield chunk

            def close(self) -> None:
                stream.close()  # type: ignore[union-attr]

        return httpx.Response(response.status_code, headers=response.headers, stream=_Body(), request=request)


def interrupting_client(fake: FakeFlowise, after_chunks: int) -> httpx.Client:
    return httpx.Client(transport=_Interrupting(fake.transport(), after_chunks), base_url=BASE_URL)


# -- ChatFlowise ------------------------------------------------------------------------------------------


def test_break_out_of_stream_aborts_the_run(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow", **SLOW))
    for n, _chunk in enumerate(make_llm(flow).stream("go")):
        if n == 2:
            break
    assert_aborted(fake, flow)


def test_a_stream_read_to_its_end_is_not_aborted(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=["a", "b"]))
    assert "".join(c.text for c in make_llm(flow).stream("go")) == "ab"
    assert_not_aborted(fake, flow)


def test_abort_on_cancel_false_only_closes(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow", **SLOW))
    stream = make_llm(flow, abort_on_cancel=False).stream("go")
    next(stream)
    stream.close()
    assert_not_aborted(fake, flow)


def test_ctrl_c_during_a_stream_aborts_the_run(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow", **SLOW))
    llm = ChatFlowise(model=flow, base_url=BASE_URL, http_client=interrupting_client(fake, after_chunks=3))
    with pytest.raises(KeyboardInterrupt):
        for _ in llm.stream("go"):
            pass
    assert_aborted(fake, flow)


def test_ctrl_c_during_invoke_aborts_the_run(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow"))
    llm = ChatFlowise(model=flow, base_url=BASE_URL, http_client=interrupting_client(fake, after_chunks=0))
    with pytest.raises(KeyboardInterrupt):
        llm.invoke("go")
    assert_aborted(fake, flow)


async def _cancel_after_first_chunk(run: Callable[[asyncio.Event], Any]) -> None:
    started = asyncio.Event()
    task = asyncio.ensure_future(run(started))
    await asyncio.wait_for(started.wait(), WAIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancelled_astream_task_aborts_the_run(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow", **SLOW))
    llm = make_llm(flow)

    async def consume(started: asyncio.Event) -> None:
        async for _ in llm.astream("go"):
            started.set()

    await _cancel_after_first_chunk(consume)
    assert_aborted(fake, flow)


async def test_break_out_of_astream_aborts_the_run(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow", **SLOW))
    stream = make_llm(flow).astream("go")
    async for _ in stream:
        break
    await stream.aclose()  # what `async with aclosing(...)` or the loop's generator finalizer does
    # LangChain's astream drops (does not close) the model's generator: the loop's finalizer closes it next
    for _ in range(int(WAIT / 0.01)):
        if aborted(fake, flow):
            break
        await asyncio.sleep(0.01)
    assert_aborted(fake, flow)


async def test_cancelled_ainvoke_aborts_the_run(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow", first_token_delay=30.0))
    llm = make_llm(flow)

    async def call(started: asyncio.Event) -> None:
        started.set()
        await llm.ainvoke("go")

    await _cancel_after_first_chunk(call)
    await asyncio.sleep(0)
    assert_aborted(fake, flow)


# -- tools ------------------------------------------------------------------------------------------------


def _tool(fake: FakeFlowise, flow: str, **fields: Any) -> FlowiseTool:
    return FlowiseTool(name="slow", description="A slow flow.", chatflow_id=flow, **transport_clients(fake), **fields)


async def test_cancelled_tool_call_aborts_the_run(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow", first_token_delay=30.0))
    tool = _tool(fake, flow)

    async def call(started: asyncio.Event) -> None:
        started.set()
        await tool.ainvoke({"question": "go"})

    await _cancel_after_first_chunk(call)
    assert_aborted(fake, flow)


async def test_cancelled_tool_call_with_abort_off_is_not_aborted(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow", first_token_delay=30.0))
    tool = _tool(fake, flow, abort_on_cancel=False)

    async def call(started: asyncio.Event) -> None:
        started.set()
        await tool.ainvoke({"question": "go"})

    await _cancel_after_first_chunk(call)
    assert_not_aborted(fake, flow)


def test_ctrl_c_during_a_tool_call_aborts_its_session(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow"))
    tool = FlowiseTool(
        name="t",
        description="d",
        chatflow_id=flow,
        session_id="user-7",
        base_url=BASE_URL,
        http_client=interrupting_client(fake, after_chunks=0),
    )
    with pytest.raises(KeyboardInterrupt):
        tool.invoke({"question": "go"})
    assert wait_for_aborts(WAIT)  # sent in the background (this thread may have been inside httpx's pool lock)
    assert aborted(fake, flow) == ["user-7"]  # the run's chat is its session's


# -- deadlines --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["field", "call"])
def test_a_missed_deadline_raises_with_the_partial_answer(fake: FakeFlowise, make_llm: MakeLLM, where: str) -> None:
    from flowise_integrations import FlowiseTimeoutError
    from flowise_integrations.langchain import FlowiseModelTimeoutError

    flow = fake.add_flow(FakeFlow(kind="agentflow", **SLOW))
    llm = make_llm(flow, deadline=0.3) if where == "field" else make_llm(flow)
    options = {} if where == "field" else {"deadline": 0.3}
    received: list[str] = []
    with pytest.raises(FlowiseModelTimeoutError) as caught:
        for chunk in llm.stream("go", **options):
            received.append(chunk.text)
    assert isinstance(caught.value, FlowiseTimeoutError)
    partial = caught.value.partial
    assert partial is not None and partial.text and partial.text == "".join(received)
