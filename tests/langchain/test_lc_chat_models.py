"""ChatFlowise behaviour against FakeFlowise over its in-process transports (sockets disabled)."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import httpx
import pytest
import pytest_socket
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, load
from langchain_core.messages import AIMessage, AIMessageChunk, ChatMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda

from flowise_integrations.langchain import ChatFlowise
from flowise_integrations.testing import FakeFlow, FakeFlowise

pytestmark = pytest.mark.usefixtures("no_sockets")

MakeLLM = Callable[..., ChatFlowise]
TOKENS = ["Flowise", " answers", " from", " its", " documents."]
DOCS = [
    {"pageContent": "Refunds within 30 days.", "metadata": {"source": "https://docs.example/refunds", "page": 2}},
    {"pageContent": "Shipping is free.", "metadata": {"title": "Shipping"}},
]
TOOLS = [{"tool": "calculator", "toolInput": {"input": "6*7"}, "toolOutput": "42"}]


def _aggregate(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    return full


class _Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.custom: list[tuple[str, Any, UUID]] = []
        self.tokens: list[str] = []

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.custom.append((name, data, run_id))

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_sockets_really_are_disabled() -> None:
    with pytest.raises(pytest_socket.SocketBlockedError):
        socket.create_connection(("127.0.0.1", 9))


# -- streaming in chains ------------------------------------------------------------------------------------


def test_lcel_chain_streams_token_by_token(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS))
    chain = ChatPromptTemplate.from_messages([("human", "Tell me about {topic}")]) | make_llm(flow) | StrOutputParser()
    pieces = list(chain.stream({"topic": "Flowise"}))
    assert [p for p in pieces if p] == TOKENS
    assert fake.last_request.json["question"] == "Tell me about Flowise"


async def test_lcel_chain_astreams_token_by_token(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS, token_delay=0.005))  # tokens arrive over time, as from an LLM
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | make_llm(flow) | StrOutputParser()
    pieces = [p async for p in chain.astream({"q": "hi"})]
    assert [p for p in pieces if p] == TOKENS


async def test_astream_merges_tokens_that_arrived_while_the_consumer_was_busy(
    fake: FakeFlowise, make_llm: MakeLLM
) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS, token_delay=0.005))
    llm = make_llm(flow)
    pieces = []
    async for chunk in llm.astream("hi"):
        if chunk.text:
            pieces.append(chunk.text)
            if len(pieces) == 1:
                await asyncio.sleep(0.05)  # busy: the remaining tokens queue up meanwhile
    assert pieces == [TOKENS[0], "".join(TOKENS[1:])]
    burst = fake.add_flow(FakeFlow(tokens=TOKENS))  # all tokens at once: one chunk, nothing lost
    chunks = [c async for c in llm.astream("hi", model=burst)]
    assert "".join(c.text for c in chunks) == "".join(TOKENS)
    assert chunks[-1].chunk_position == "last"


def test_stream_chunks_are_plain_str_with_provider_and_one_last_chunk(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS, source_documents=DOCS))
    chunks = list(make_llm(flow).stream("hi"))
    assert all(isinstance(c.content, str) for c in chunks)
    assert all(c.response_metadata["model_provider"] == "flowise" for c in chunks)
    assert [c.chunk_position for c in chunks].count("last") == 1 and chunks[-1].chunk_position == "last"
    assert all("model_name" not in c.response_metadata for c in chunks[:-1])  # merged strings would double
    full = _aggregate(chunks)
    assert full.content == "".join(TOKENS)
    assert full.response_metadata["model_name"] == flow
    assert full.id == chunks[-1].id == full.response_metadata["chat_message_id"]


def test_invoke_with_streaming_true_goes_through_the_stream(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS))
    recorder = _Recorder()
    result = make_llm(flow, streaming=True).invoke("hi", config={"callbacks": [recorder]})
    assert result.content == "".join(TOKENS)
    assert fake.last_request.json["streaming"] is True
    assert [t for t in recorder.tokens if t] == TOKENS


def test_invoke_is_not_streamed_by_default(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS))
    assert make_llm(flow).invoke("hi").content == "".join(TOKENS)
    assert "streaming" not in fake.last_request.json


def test_stream_events_v3_reports_tokens_to_legacy_handlers(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS))
    recorder = _Recorder()
    stream = make_llm(flow).stream_events("hi", version="v3", config={"callbacks": [recorder]})
    list(stream)
    assert [t for t in recorder.tokens if t] == TOKENS  # run_manager.on_llm_new_token before each yield


# -- extras: metadata, content blocks, custom events ----------------------------------------------------------


def test_sources_and_tools_in_final_metadata(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS, source_documents=DOCS, used_tools=TOOLS))
    llm = make_llm(flow)
    for message in (llm.invoke("hi"), _aggregate(list(llm.stream("hi")))):
        meta = message.response_metadata
        assert meta["source_documents"] == [
            {
                "page_content": "Refunds within 30 days.",
                "metadata": {"source": "https://docs.example/refunds", "page": 2},
            },
            {"page_content": "Shipping is free.", "metadata": {"title": "Shipping"}},
        ]
        assert meta["used_tools"] == [{"tool": "calculator", "tool_input": {"input": "6*7"}, "tool_output": "42"}]
        assert meta["finish_reason"] == "stop"
        assert meta["chat_id"] and meta["chat_message_id"] == message.id
        assert set(meta) >= {"session_id", "agent_reasoning", "follow_up_prompts", "model_name"}
        assert not message.tool_calls  # server-side tool use is never a client tool call


def test_content_blocks_on_invoke_carry_citations_and_server_tools(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS, source_documents=DOCS, used_tools=TOOLS))
    blocks = make_llm(flow).invoke("hi").content_blocks
    assert [b["type"] for b in blocks] == ["server_tool_call", "server_tool_result", "text"]
    call, result, text = blocks
    assert call == {"type": "server_tool_call", "id": "flowise_tool_0", "name": "calculator", "args": {"input": "6*7"}}
    assert result == {
        "type": "server_tool_result",
        "tool_call_id": "flowise_tool_0",
        "status": "success",
        "output": "42",
    }
    assert text["text"] == "".join(TOKENS)
    citations = text["annotations"]
    assert citations[0]["cited_text"] == "Refunds within 30 days."
    assert citations[0]["url"] == "https://docs.example/refunds"
    assert citations[1]["title"] == "Shipping"


def test_content_blocks_while_streaming_put_sources_in_non_standard(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS, source_documents=DOCS, used_tools=TOOLS))
    full = _aggregate(list(make_llm(flow).stream("hi")))
    blocks = full.content_blocks
    assert [b["type"] for b in blocks] == ["server_tool_call", "server_tool_result", "text", "non_standard"]
    assert blocks[3]["value"]["source_documents"][0]["page_content"] == "Refunds within 30 days."


@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_output_version_v1(fake: FakeFlowise, make_llm: MakeLLM, mode: str) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS, source_documents=DOCS, used_tools=TOOLS))
    llm = make_llm(flow, output_version="v1")
    message = llm.invoke("hi") if mode == "invoke" else _aggregate(list(llm.stream("hi")))
    assert isinstance(message.content, list)
    types = [b["type"] for b in message.content]  # type: ignore[index]
    assert types.count("text") == 1 and "server_tool_call" in types and "server_tool_result" in types
    assert message.text == "".join(TOKENS)


def test_reasoning_from_thinking_and_agent_steps(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    thinking = fake.add_flow(FakeFlow(kind="agentflow", tokens=TOKENS, thinking=["Let me ", "think."]))
    chunks = list(make_llm(thinking).stream("hi"))
    full = _aggregate(chunks)
    assert full.content == "".join(TOKENS)
    assert full.additional_kwargs["reasoning_content"] == "Let me think."
    assert full.content_blocks[0] == {"type": "reasoning", "reasoning": "Let me think."}

    steps = [
        {"agentName": "Supervisor", "messages": ["Ask the researcher."], "next": "Researcher"},
        {"agentName": "Researcher", "messages": ["Found it."]},
    ]
    team = fake.add_flow(FakeFlow(kind="multiagent", tokens=TOKENS, agent_reasoning=steps))
    llm = make_llm(team)
    expected = "Supervisor: Ask the researcher.\nResearcher: Found it.\n"
    for message in (llm.invoke("hi"), _aggregate(list(llm.stream("hi")))):
        assert message.additional_kwargs["reasoning_content"] == expected
        assert [s["agent_name"] for s in message.response_metadata["agent_reasoning"]] == ["Supervisor", "Researcher"]
        assert message.content_blocks[0]["type"] == "reasoning"


def test_agentflow_usage_is_on_exactly_one_chunk(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    usage = {"input_tokens": 7, "output_tokens": 5, "total_tokens": 12}
    flow = fake.add_flow(FakeFlow(kind="agentflow", tokens=TOKENS, usage=usage))
    chunks = list(make_llm(flow).stream("hi"))
    assert [c.usage_metadata for c in chunks if c.usage_metadata] == [usage]
    assert chunks[-1].usage_metadata == usage
    assert make_llm(flow).invoke("hi").usage_metadata == usage


def test_chatflow_reports_no_usage(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS))
    assert make_llm(flow).invoke("hi").usage_metadata is None


async def test_custom_events_in_astream_events(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS, source_documents=DOCS, used_tools=TOOLS, token_delay=0.002))
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | make_llm(flow)
    events = [e async for e in chain.astream_events({"q": "hi"}, version="v2")]
    custom = {e["name"]: e["data"] for e in events if e["event"] == "on_custom_event"}
    assert custom["flowise_source_documents"]["data"][0]["page_content"] == "Refunds within 30 days."
    assert custom["flowise_used_tools"]["data"][0]["tool"] == "calculator"
    assert custom["flowise_metadata"]["data"]["chatMessageId"]
    assert {d["chatflow_id"] for d in custom.values()} == {flow}
    streamed = [e["data"]["chunk"].content for e in events if e["event"] == "on_chat_model_stream"]
    assert [s for s in streamed if s] == TOKENS
    end = next(e for e in events if e["event"] == "on_chat_model_end")
    assert end["data"]["output"].response_metadata["used_tools"][0]["tool"] == "calculator"
    # the sources arrive before the stream ends: the event precedes the model's end event
    names = [e["name"] if e["event"] == "on_custom_event" else e["event"] for e in events]
    assert names.index("flowise_source_documents") < names.index("on_chat_model_end")


async def test_agentflow_progress_events(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow", tokens=TOKENS))
    chain = RunnableLambda(lambda x: x) | make_llm(flow)
    events = [e async for e in chain.astream_events("hi", version="v2")]
    names = {e["name"] for e in events if e["event"] == "on_custom_event"}
    assert {"flowise_agentflow_node", "flowise_agentflow_status", "flowise_usage", "flowise_metadata"} <= names


def test_custom_events_from_sync_stream_and_invoke_in_a_chain(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS, source_documents=DOCS))
    chain = RunnableLambda(lambda x: x) | make_llm(flow)
    for run in (lambda cfg: list(chain.stream("hi", config=cfg)), lambda cfg: chain.invoke("hi", config=cfg)):
        recorder = _Recorder()
        run({"callbacks": [recorder]})
        assert "flowise_source_documents" in [name for name, _, _ in recorder.custom]


async def test_direct_calls_never_fail_on_custom_events(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS, source_documents=DOCS, used_tools=TOOLS))
    llm = make_llm(flow)
    assert llm.invoke("hi").content
    assert list(llm.stream("hi"))
    assert (await llm.ainvoke("hi")).content
    assert [c async for c in llm.astream("hi")]
    events = [e async for e in llm.astream_events("hi", version="v2")]
    assert not [e for e in events if e["event"] == "on_custom_event"]  # no parent run: nowhere to attribute


def test_custom_events_can_be_switched_off(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS, source_documents=DOCS))
    recorder = _Recorder()
    chain = RunnableLambda(lambda x: x) | make_llm(flow, emit_custom_events=False)
    list(chain.stream("hi", config={"callbacks": [recorder]}))
    assert recorder.custom == []


# -- the request body --------------------------------------------------------------------------------------


def test_history_request_body(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS))
    messages = [
        SystemMessage("You are terse."),
        HumanMessage("My name is Ada.", name="ada"),
        AIMessage("Hello Ada."),
        HumanMessage("What is my name?"),
    ]
    make_llm(flow).invoke(messages)
    body = fake.last_request.json
    assert body == {
        "question": "What is my name?",
        "chatId": body["chatId"],
        "history": [
            {"role": "userMessage", "content": "You are terse."},
            {"role": "userMessage", "content": "My name is Ada."},
            {"role": "apiMessage", "content": "Hello Ada."},
        ],
    }
    list(make_llm(flow).stream(messages))
    streamed = fake.last_request.json
    assert streamed == {**body, "streaming": True, "chatId": streamed["chatId"]}
    assert fake.last_request.path == f"/api/v1/prediction/{flow}"


def test_other_message_types_in_history(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS))
    messages = [
        ChatMessage(role="developer", content="Use metric units."),
        HumanMessage("How far?"),
        AIMessage("", tool_calls=[{"name": "distance", "args": {}, "id": "t1"}]),
        ToolMessage("42 km", tool_call_id="t1"),
        AIMessage("42 km."),
        HumanMessage([{"type": "text", "text": "And back?"}]),
    ]
    make_llm(flow).invoke(messages)
    assert fake.last_request.json["history"] == [
        {"role": "userMessage", "content": "Use metric units."},  # developer/system: a user entry, in place
        {"role": "userMessage", "content": "How far?"},
        {"role": "apiMessage", "content": ""},
        {"role": "userMessage", "content": "42 km"},  # a tool result is input to the model, like the LlamaIndex wing
        {"role": "apiMessage", "content": "42 km."},
    ]
    assert fake.last_request.json["question"] == "And back?"


def test_session_mode_sends_only_the_newest_human_turn(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS))
    messages = [SystemMessage("Be kind."), HumanMessage("Hi"), AIMessage("Hello"), HumanMessage("Again")]
    result = make_llm(flow, session_id="s-1").invoke(messages)
    assert fake.last_request.json == {
        "question": "Again",
        "overrideConfig": {"sessionId": "s-1"},
        "history": [{"role": "userMessage", "content": "Be kind."}],  # system turns are never dropped
    }
    assert result.response_metadata["session_id"] == "s-1"
    # per call, merged with the instance's override_config
    llm = make_llm(flow, override_config={"temperature": 0.1, "topK": 3})
    list(llm.stream([HumanMessage("Hi"), AIMessage("Hello"), HumanMessage("Again")], session_id="s-2",
                    override_config={"topK": 5}))  # fmt: skip
    assert fake.last_request.json == {
        "question": "Again",
        "streaming": True,
        "overrideConfig": {"temperature": 0.1, "topK": 5, "sessionId": "s-2"},
    }


def test_per_call_options_reach_the_body(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow, other = fake.add_flow(FakeFlow(tokens=TOKENS)), fake.add_flow(FakeFlow(answer="other"))
    llm = make_llm(flow)
    result = llm.invoke("hi", model=other, chat_id="c-1", form={"topic": "x"}, lead_email="a@b.c",
                        extra_body={"custom": 1}, headers={"X-Trace": "t"})  # fmt: skip
    request = fake.last_request
    assert request.path == f"/api/v1/prediction/{other}"
    assert request.json == {
        "question": "hi",
        "chatId": "c-1",
        "form": {"topic": "x"},
        "leadEmail": "a@b.c",
        "custom": 1,
    }
    assert request.headers["x-trace"] == "t"
    assert result.content == "other" and result.response_metadata["model_name"] == other
    assert llm.invoke("hi", chatflow_id=other).response_metadata["model_name"] == other
    with pytest.raises(TypeError, match="temperature"):
        llm.invoke("hi", temperature=0.2)


def test_image_messages_become_uploads(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS))
    png = base64.b64encode(b"\x89PNG fake").decode()
    message = HumanMessage(
        content=[
            {"type": "text", "text": "What is in "},
            {"type": "text", "text": "these images?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
            {"type": "image", "url": "https://img.example/cat.jpg"},
        ]
    )
    make_llm(flow).invoke([message])
    body = fake.last_request.json
    assert body["question"] == "What is in these images?"
    assert body["uploads"] == [
        {"type": "file", "name": "image-1.png", "mime": "image/png", "data": f"data:image/png;base64,{png}"},
        {"type": "url", "name": "cat.jpg", "mime": "image/jpeg", "data": "https://img.example/cat.jpg"},
    ]


def test_audio_and_file_blocks_become_uploads(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS))
    message = HumanMessage(
        content=[
            {"type": "text", "text": "Summarise"},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "file", "file": {"filename": "report.pdf", "file_data": "data:application/pdf;base64,JVBERg=="}},
        ]
    )
    make_llm(flow).invoke([message])
    assert fake.last_request.json["uploads"] == [
        {"type": "audio", "name": "audio-1.wav", "mime": "audio/wav", "data": "data:audio/wav;base64,UklGRg=="},
        {
            "type": "file:full",
            "name": "report.pdf",
            "mime": "application/pdf",
            "data": "data:application/pdf;base64,JVBERg==",
        },
    ]
    with pytest.raises(ValueError, match="base64"):
        make_llm(flow).invoke([HumanMessage(content=[{"type": "file", "url": "https://x.example/a.pdf"}])])


def test_conversation_must_end_with_a_human_turn(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS))
    with pytest.raises(ValueError, match="user"):
        make_llm(flow).invoke([HumanMessage("hi"), AIMessage("hello")])


# -- stop sequences ----------------------------------------------------------------------------------------


def test_stop_truncates_client_side(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=["The answer", " is 4", "2. Done", " here."]))
    llm = make_llm(flow)
    assert llm.invoke("hi", stop=["2."]).content == "The answer is 4"
    chunks = list(llm.stream("hi", stop=["2."]))  # the stop sequence is split across two tokens
    assert "".join(c.text for c in chunks) == "The answer is 4"
    assert chunks[-1].response_metadata["chat_message_id"]  # the stream was still read to its end
    assert make_llm(flow, stop=["Done"]).invoke("hi").content == "The answer is 42. "
    assert "".join(c.text for c in llm.stream("hi", stop=["nowhere"])) == "The answer is 42. Done here."


# -- batching and identity ---------------------------------------------------------------------------------


def test_batch_respects_max_concurrency(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS, first_token_delay=0.1))
    llm = make_llm(flow)
    start = time.perf_counter()
    results = llm.batch([f"q{i}" for i in range(6)], config={"max_concurrency": 3})
    elapsed = time.perf_counter() - start
    assert [r.content for r in results] == ["".join(TOKENS)] * 6
    assert 0.2 <= elapsed < 0.5  # two waves of three, not six in a row nor all at once
    assert sorted(r.json["question"] for r in fake.requests) == [f"q{i}" for i in range(6)]


async def test_abatch_respects_max_concurrency(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS, first_token_delay=0.1))
    llm = make_llm(flow)
    start = time.perf_counter()
    results = await llm.abatch([f"q{i}" for i in range(6)], config={"max_concurrency": 2})
    elapsed = time.perf_counter() - start
    assert [r.content for r in results] == ["".join(TOKENS)] * 6
    assert 0.3 <= elapsed < 0.6  # three waves of two


def test_identity_tracing_and_secrets(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    llm = ChatFlowise(chatflow_id="flow-1", base_url="http://flowise.test/api/v1/", api_key="sk-secret")
    assert llm.model == llm.chatflow_id == "flow-1"
    assert llm.base_url == "http://flowise.test"
    assert llm._identifying_params == {"chatflow_id": "flow-1", "base_url": "http://flowise.test"}
    assert llm._llm_type == "flowise-chat"
    params = llm._get_ls_params(stop=["x"], model="flow-2")
    assert params == {"ls_provider": "flowise", "ls_model_name": "flow-2", "ls_model_type": "chat", "ls_stop": ["x"]}
    assert llm.metadata and "flowise-integrations" in llm.metadata["lc_versions"]
    assert "sk-secret" not in repr(llm) and "sk-secret" not in str(dumpd(llm))
    assert llm._client is None  # clients are built lazily


def test_api_key_and_base_url_from_env(monkeypatch: pytest.MonkeyPatch, fake: FakeFlowise) -> None:
    monkeypatch.setenv("FLOWISE_API_KEY", "env-key")
    monkeypatch.setenv("FLOWISE_BASE_URL", "http://env.flowise:3000")
    flow = fake.add_flow(FakeFlow(tokens=TOKENS))
    llm = ChatFlowise(model=flow, http_client=httpx.Client(transport=fake.transport()))
    assert llm.base_url == "http://env.flowise:3000"
    llm.invoke("hi")
    assert fake.last_request.headers["authorization"] == "Bearer env-key"


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
def test_serialization_round_trip() -> None:
    llm = ChatFlowise(model="flow-1", base_url="http://flowise.test", api_key="sk-secret", session_id="s")
    loaded = load(
        dumpd(llm),
        allowed_objects=[ChatFlowise],
        valid_namespaces=["flowise_integrations"],
        secrets_map={"FLOWISE_API_KEY": "sk-secret"},
    )
    assert isinstance(loaded, ChatFlowise)
    assert (loaded.chatflow_id, loaded.session_id, loaded.api_key) == ("flow-1", "s", llm.api_key)


async def test_async_clients_are_per_event_loop(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS))
    llm = ChatFlowise(model=flow, base_url="http://flowise.test")
    first = llm.async_client
    assert llm.async_client is first
    other_loop: list[Any] = []

    def in_other_loop() -> None:
        async def grab() -> None:
            other_loop.append(llm.async_client)

        asyncio.run(grab())

    await asyncio.to_thread(in_other_loop)
    assert other_loop[0] is not first
    await llm.aclose()


# -- the async reader -----------------------------------------------------------------------------------------


def _other_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


async def test_astream_early_exit_and_cancellation_leave_nothing_running(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(tokens=TOKENS * 20, token_delay=0.005))
    llm = make_llm(flow)
    stream = llm.astream("hi")
    async for chunk in stream:
        if chunk.text:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    await asyncio.sleep(0.02)  # langchain-core leaves the inner generator to the loop's finalizer: let it run
    assert not _other_tasks()

    async def consume() -> None:
        async for _ in llm.astream("hi"):
            pass

    with pytest.raises(asyncio.TimeoutError):  # (an alias of TimeoutError from Python 3.11)
        await asyncio.wait_for(consume(), timeout=0.03)
    await asyncio.sleep(0.02)
    assert not _other_tasks()
    assert [c.text async for c in llm.astream("hi")]  # and the model still works


async def test_reader_hands_over_events_then_the_error() -> None:
    from flowise_integrations.events import TokenEvent
    from flowise_integrations.langchain._batching import batches

    async def events() -> Any:
        yield TokenEvent("a")
        yield TokenEvent("b")
        raise RuntimeError("boom")

    received: list[str] = []
    with pytest.raises(RuntimeError, match="boom"):
        async for batch in batches(events()):
            received += [e.data for e in batch]
    assert received == ["a", "b"]
