"""Leaving a FlowiseLLM call early stops the flow: the emulator must receive ``PUT /chatmessage/abort/{flow}/{chat}``
for the chat the prediction was sent with (break, a dropped generator, a cancelled task, Ctrl-C), and must not
when the call ended by itself or ``abort_on_cancel=False``."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import threading
import time
from typing import Any

import pytest
from _llama_index_support import CONVERSATION, MakeLLM

from flowise_integrations._control import wait_for_aborts
from flowise_integrations.chats import in_use
from flowise_integrations.errors import FlowExecutionError
from flowise_integrations.llama_index import FlowiseQueryEngine
from flowise_integrations.testing import FakeFlow, FakeFlowise

SLOW = {"tokens": [f" t{i}" for i in range(200)], "token_delay": 0.02, "kind": "agentflow"}
WAIT = 10.0  # generous: the abort is sent from another thread or task; only a missing abort makes it run out


def predictions(fake: FakeFlowise, flow: str) -> list[Any]:
    return [r for r in fake.requests if r.method == "POST" and r.path == f"/api/v1/prediction/{flow}"]


def aborts(fake: FakeFlowise, flow: str) -> list[str]:
    """The chat ids the server was asked to abort for ``flow``."""
    prefix = f"/api/v1/chatmessage/abort/{flow}/"
    return [r.path[len(prefix) :] for r in fake.requests if r.method == "PUT" and r.path.startswith(prefix)]


def wait_for(condition: Any) -> bool:
    until = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > until:
            return False
        time.sleep(0.01)
    return True


async def await_for(condition: Any) -> bool:
    until = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > until:
            return False
        await asyncio.sleep(0.01)
    return True


def sent_chat_id(fake: FakeFlowise, flow: str) -> str:
    (request,) = predictions(fake, flow)
    chat_id: str = request.json["chatId"]
    return chat_id


def assert_aborted(fake: FakeFlowise, flow: str) -> None:
    assert wait_for(lambda: aborts(fake, flow)), "no abort reached the server"
    assert aborts(fake, flow) == [sent_chat_id(fake, flow)]


def assert_not_aborted(fake: FakeFlowise, flow: str) -> None:
    assert wait_for_aborts(WAIT)  # anything handed to the background has run
    assert aborts(fake, flow) == []


@pytest.mark.parametrize("method", ["stream_chat", "stream_complete"])
def test_break_aborts_the_run(method: str, make_llm: MakeLLM, fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(**SLOW))
    llm = make_llm(flow)
    arg: Any = CONVERSATION if method == "stream_chat" else "hi"
    seen = 0
    for response in getattr(llm, method)(arg):
        seen += bool(response.delta)
        if seen == 3:
            break
    assert_aborted(fake, flow)


def test_a_dropped_generator_aborts_the_run(make_llm: MakeLLM, fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(**SLOW))
    responses = make_llm(flow).stream_chat(CONVERSATION)
    next(responses)
    del responses
    gc.collect()
    assert_aborted(fake, flow)


def test_the_chat_id_is_held_until_the_abort_was_sent(make_llm: MakeLLM, fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(**SLOW))
    llm = make_llm(flow, chat_id="conversation-1")
    for _ in llm.stream_chat(CONVERSATION):
        break
    assert wait_for(lambda: not in_use(llm.base_url, "conversation-1"))
    assert aborts(fake, flow) == ["conversation-1"]  # released only once the abort had been sent


def test_opting_out_only_closes_the_connection(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(**SLOW))
    with fake.serve() as base_url:
        from flowise_integrations.llama_index import FlowiseLLM

        llm = FlowiseLLM(flow, base_url=base_url, abort_on_cancel=False)
        for response in llm.stream_chat(CONVERSATION):
            if response.delta:
                break
        assert wait_for(lambda: fake.open_connections == 0)
        assert_not_aborted(fake, flow)
        llm.close()


def test_a_finished_or_failed_stream_is_not_aborted(make_llm: MakeLLM, fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow"))
    failing = fake.add_flow(FakeFlow(kind="agentflow", error="boom", error_after=2))
    assert list(make_llm(flow).stream_chat(CONVERSATION))[-1].additional_kwargs["finish_reason"] == "stop"
    with pytest.raises(FlowExecutionError, match="boom"):
        list(make_llm(failing).stream_chat(CONVERSATION))
    assert_not_aborted(fake, flow)
    assert_not_aborted(fake, failing)


@pytest.mark.parametrize("method", ["astream_chat", "astream_complete"])
async def test_async_break_and_aclose_aborts_the_run(method: str, make_llm: MakeLLM, fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(**SLOW))
    llm = make_llm(flow)
    responses = await getattr(llm, method)(CONVERSATION if method == "astream_chat" else "hi")
    async for response in responses:
        if response.delta:
            break
    await responses.aclose()  # LlamaIndex's wrapper: ours is closed by the loop's async-generator hook, soon
    assert await await_for(lambda: aborts(fake, flow))
    assert aborts(fake, flow) == [sent_chat_id(fake, flow)]


async def test_a_cancelled_task_aborts_the_run(make_llm: MakeLLM, fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(**SLOW))
    llm = make_llm(flow)
    first = asyncio.Event()

    async def consume() -> None:
        async for response in await llm.astream_chat(CONVERSATION):
            if response.delta:
                first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await await_for(lambda: aborts(fake, flow))
    assert aborts(fake, flow) == [sent_chat_id(fake, flow)]


async def test_a_cancelled_achat_aborts_the_run(make_llm: MakeLLM, fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow", first_token_delay=30))
    llm = make_llm(flow, session_id="user-7")
    task = asyncio.create_task(llm.achat(CONVERSATION))
    assert await await_for(lambda: predictions(fake, flow))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert aborts(fake, flow) == ["user-7"]  # with a session and no chat id, Flowise's chat id is the session


async def test_an_abandoned_streaming_query_aborts_the_run(make_llm: MakeLLM, fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(**SLOW))
    engine = FlowiseQueryEngine(make_llm(flow), streaming=True)
    response = engine.query("q")
    tokens = response.response_gen  # type: ignore[union-attr]
    next(tokens)
    tokens.close()
    assert_aborted(fake, flow)
    aresponse = await engine.aquery("q")
    agen = aresponse.async_response_gen()  # type: ignore[union-attr]
    await agen.__anext__()
    del aresponse, agen  # the response holds the stream: dropping it abandons the stream
    gc.collect()
    assert await await_for(lambda: len(aborts(fake, flow)) == 2)


def test_ctrl_c_during_chat_aborts_the_run(make_llm: MakeLLM, fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow", first_token_delay=30))
    llm = make_llm(flow)
    main = threading.get_ident()

    def interrupt_when_sent() -> None:  # a real SIGINT: it also wakes the main thread's blocking wait
        if wait_for(lambda: predictions(fake, flow)):
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_sent, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        llm.chat(CONVERSATION)
    assert threading.get_ident() == main
    assert_aborted(fake, flow)
