"""One conversation is one Flowise chat: stable chat ids from LangGraph threads and message-history sessions,
per-call and instance ids, never one chat id on two running calls, and a memory session of the call's own when the
history is sent on a stable chat."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables.history import RunnableWithMessageHistory
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph

from flowise_integrations.langchain import ChatFlowise, ChatIdInUseWarning
from flowise_integrations.testing import FakeFlow, FakeFlowise

pytestmark = pytest.mark.usefixtures("no_sockets")

MakeLLM = Callable[..., ChatFlowise]


def bodies(fake: FakeFlowise, flow: str) -> list[dict[str, Any]]:
    return [r.json for r in fake.requests if r.path == f"/api/v1/prediction/{flow}"]


def graph_of(llm: ChatFlowise) -> Any:
    def node(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [llm.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("flowise", node)
    graph.add_edge(START, "flowise")
    return graph.compile(checkpointer=InMemorySaver())


def test_two_turns_of_a_langgraph_thread_share_one_chat(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(answer="Noted."))
    app = graph_of(make_llm(flow))
    thread = {"configurable": {"thread_id": "user-42"}}
    app.invoke({"messages": [HumanMessage("My name is Ada.")]}, thread)
    final = app.invoke({"messages": [HumanMessage("What is my name?")]}, thread)
    first, second = bodies(fake, flow)
    assert first["chatId"] == second["chatId"]
    assert final["messages"][-1].response_metadata["chat_id"] == first["chatId"]
    # the second turn sends the first as history, under a memory session of its own (Flowise's memory of the
    # chat would otherwise repeat it); the first turn had no history and lets Flowise key memory by the chat
    assert second["history"] == [
        {"role": "userMessage", "content": "My name is Ada."},
        {"role": "apiMessage", "content": "Noted."},
    ]
    assert "overrideConfig" not in first
    assert second["overrideConfig"]["sessionId"] not in (first["chatId"], None)
    app.invoke({"messages": [HumanMessage("Hi")]}, {"configurable": {"thread_id": "user-43"}})
    assert bodies(fake, flow)[-1]["chatId"] != first["chatId"]


async def test_async_thread_turns_share_one_chat_and_stream(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=["Hel", "lo"]))
    app = graph_of(make_llm(flow))
    thread = {"configurable": {"thread_id": "t-async"}}
    pieces = [
        m.content async for m, _ in app.astream({"messages": [HumanMessage("a")]}, thread, stream_mode="messages")
    ]
    await app.ainvoke({"messages": [HumanMessage("b")]}, thread)
    assert "".join(str(p) for p in pieces) == "Hello"
    first, second = bodies(fake, flow)
    assert first["chatId"] == second["chatId"]


def test_direct_calls_with_a_thread_config_share_one_chat(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(answer="ok"))
    llm = make_llm(flow)
    config = {"configurable": {"thread_id": "t-1"}}
    llm.invoke("one", config)
    list(llm.stream("two", config))
    llm.invoke("three")  # no thread: a fresh chat
    one, two, three = bodies(fake, flow)
    assert one["chatId"] == two["chatId"] != three["chatId"]


@pytest.mark.filterwarnings("ignore::langchain_core._api.deprecation.LangChainDeprecationWarning")
def test_message_history_session_is_one_chat(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(answer="ok"))
    histories: dict[str, InMemoryChatMessageHistory] = {}
    chain = RunnableWithMessageHistory(
        make_llm(flow), lambda sid: histories.setdefault(sid, InMemoryChatMessageHistory())
    )
    config = {"configurable": {"session_id": "conversation-9"}}
    chain.invoke([HumanMessage("one")], config)
    chain.invoke([HumanMessage("two")], config)
    one, two = bodies(fake, flow)
    assert one["chatId"] == two["chatId"]
    assert two["history"] == [{"role": "userMessage", "content": "one"}, {"role": "apiMessage", "content": "ok"}]


def test_explicit_chat_ids_win(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(answer="ok"))
    llm = make_llm(flow, chat_id="instance-chat")
    thread = {"configurable": {"thread_id": "t"}}
    llm.invoke("a", thread)
    llm.invoke("b", thread, chat_id="call-chat")
    make_llm(flow).invoke("c", {"configurable": {"thread_id": "t", "flowise_chat_id": "config-chat"}})
    make_llm(flow, derive_chat_id=False).invoke("d", thread)
    a, b, c, d = bodies(fake, flow)
    assert (a["chatId"], b["chatId"], c["chatId"]) == ("instance-chat", "call-chat", "config-chat")
    assert d["chatId"] not in ("instance-chat", a["chatId"]) and len(d["chatId"]) == 36


def test_a_session_is_server_memory_and_its_chat(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(answer="ok"))
    messages = [HumanMessage("one"), AIMessage("ok"), HumanMessage("two")]
    make_llm(flow).invoke(messages, {"configurable": {"flowise_session_id": "user-3"}})
    (body,) = bodies(fake, flow)
    assert body == {"question": "two", "overrideConfig": {"sessionId": "user-3"}}  # Flowise's memory has the rest


async def test_one_chat_id_is_never_sent_on_two_running_calls(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=[f" {i}" for i in range(20)], token_delay=0.01))
    llm = make_llm(flow, chat_id="shared")

    async def call() -> str:
        return "".join([c.text async for c in llm.astream("go")])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = await asyncio.gather(call(), call())
    assert first == second == "".join(f" {i}" for i in range(20))
    chat_ids = [b["chatId"] for b in bodies(fake, flow)]
    assert sorted(chat_ids)[0] != sorted(chat_ids)[1] and "shared" in chat_ids
    assert [w.category for w in caught] == [ChatIdInUseWarning]
    assert "in use by another running call" in str(caught[0].message)
    llm.invoke("later")  # the chat is free again once both calls ended
    assert bodies(fake, flow)[-1]["chatId"] == "shared"
