"""``chat_id`` (instance and per call), the deadline, and the rule that two running calls never share a chat id:
Flowise keys a running stream by its chat id alone, so the second one gets a fresh id and a warning."""

from __future__ import annotations

import asyncio
import threading
import warnings
from typing import Any

import pytest
from _llama_index_support import ANSWER, CONVERSATION, MakeLLM

from flowise_integrations.errors import FlowiseTimeoutError
from flowise_integrations.llama_index import ChatIdInUseWarning
from flowise_integrations.testing import FakeFlow, FakeFlowise


def sent(fake: FakeFlowise, flow: str) -> list[dict[str, Any]]:
    return [r.json for r in fake.requests if r.method == "POST" and r.path == f"/api/v1/prediction/{flow}"]


async def test_instance_chat_id_on_every_call_and_per_call_override(make_llm: MakeLLM, fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(answer=ANSWER))
    llm = make_llm(flow, chat_id="thread-1")
    llm.chat(CONVERSATION)
    list(llm.stream_chat(CONVERSATION))
    await llm.achat(CONVERSATION)
    [r async for r in await llm.astream_complete("hi")]
    response = llm.chat(CONVERSATION, chat_id="thread-2")
    assert [body["chatId"] for body in sent(fake, flow)] == ["thread-1"] * 4 + ["thread-2"]
    assert response.additional_kwargs["chat_id"] == "thread-2"


def test_without_a_chat_id_each_call_is_its_own_chat(make_llm: MakeLLM, fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(answer=ANSWER))
    llm = make_llm(flow)
    ids = [llm.chat(CONVERSATION).additional_kwargs["chat_id"] for _ in range(2)]
    assert ids == [body["chatId"] for body in sent(fake, flow)] and len(set(ids)) == 2


def test_a_session_without_a_chat_id_lets_flowise_use_the_session(make_llm: MakeLLM, fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(answer=ANSWER))
    make_llm(flow, session_id="user-A").chat(CONVERSATION)
    (body,) = sent(fake, flow)
    assert "chatId" not in body and body["overrideConfig"] == {"sessionId": "user-A"}


async def test_concurrent_calls_never_share_a_chat_id(make_llm: MakeLLM, fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(answer=ANSWER, first_token_delay=0.2))
    llm = make_llm(flow, chat_id="thread-1")

    async def one() -> str:
        text = ""
        async for response in await llm.astream_chat(CONVERSATION):
            text += response.delta or ""
        return text

    with pytest.warns(ChatIdInUseWarning, match="thread-1") as caught:
        answers = await asyncio.gather(one(), one(), llm.achat(CONVERSATION))
    assert answers[:2] == [ANSWER, ANSWER] and answers[2].message.content == ANSWER
    ids = [body["chatId"] for body in sent(fake, flow)]
    assert len(set(ids)) == 3 and "thread-1" in ids  # the first keeps it, the others got fresh ones
    assert len(caught) == 2
    llm.chat(CONVERSATION)  # released once they ended: the next call has it again
    assert sent(fake, flow)[-1]["chatId"] == "thread-1"


def test_concurrent_sessions_keep_their_memory_but_not_their_stream(make_llm: MakeLLM, fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(answer=ANSWER, first_token_delay=0.2))
    llm = make_llm(flow, session_id="user-A")
    started = threading.Barrier(2)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            started.wait()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ChatIdInUseWarning)
                llm.chat(CONVERSATION)
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    bodies = sent(fake, flow)
    assert [b["overrideConfig"]["sessionId"] for b in bodies] == ["user-A", "user-A"]
    assert sorted("chatId" in b for b in bodies) == [False, True]  # the second one got its own chat id


def test_the_deadline_bounds_the_whole_call(make_llm: MakeLLM, fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(tokens=[f" t{i}" for i in range(100)], token_delay=0.05))
    llm = make_llm(flow, deadline=0.3)
    with pytest.raises(FlowiseTimeoutError) as failed:
        list(llm.stream_chat(CONVERSATION))
    assert failed.value.partial is not None and failed.value.partial.text.startswith(" t0")
    assert llm.chat(CONVERSATION, deadline=None).message.content == "".join(f" t{i}" for i in range(100))
