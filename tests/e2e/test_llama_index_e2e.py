"""The LlamaIndex wing (``FlowiseLLM``, ``FlowiseQueryEngine``) against the real Flowise 3.1.4, public API only."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from e2e_support import llm_chat_requests, llm_log_length
from flows import CANNED_ANSWER, RETRIEVAL_TEXT, TOOL_ANSWER
from harness import RealFlowiseState

pytest.importorskip("llama_index.core")
li = pytest.importorskip("flowise_integrations.llama_index")

from llama_index.core.base.llms.types import ChatMessage, MessageRole  # noqa: E402
from llama_index.core.base.response.schema import AsyncStreamingResponse, Response, StreamingResponse  # noqa: E402
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]  # noqa: E402
from llama_index.core.instrumentation.event_handlers import BaseEventHandler  # noqa: E402

from flowise_integrations import AuthenticationError, FlowExecutionError, UsedTool  # noqa: E402

FlowiseLLM = li.FlowiseLLM
FlowiseQueryEngine = li.FlowiseQueryEngine

pytestmark = pytest.mark.timeout(120)

FLOWISE_EVENTS = (
    li.FlowiseSourceDocumentsEvent,
    li.FlowiseToolUsedEvent,
    li.FlowiseAgentStepEvent,
    li.FlowiseMetadataEvent,
)
CALCULATOR = UsedTool(tool="calculator", toolInput={"input": "2 + 2"}, toolOutput="4")


def make_llm(state: RealFlowiseState, flow: str = "llm_chain", **kwargs: Any) -> Any:
    return FlowiseLLM(state.flows[flow], base_url=state.base_url, api_key=state.api_key, timeout=30, **kwargs)


def user(text: str) -> Any:
    return ChatMessage(role=MessageRole.USER, content=text)


def needs_llm_log(state: RealFlowiseState) -> None:
    if not state.fake_llm_log:
        pytest.skip("external server: no fake LLM request log")


def assert_deltas(responses: list[Any], expected: str) -> None:
    """Each streamed response carries the text so far and its delta; the last one is the whole answer."""
    deltas = [r.delta for r in responses if r.delta]
    assert len(deltas) > 1 and "".join(deltas) == expected
    text = ""
    for r in responses:
        text += r.delta or ""
        content = r.message.content if hasattr(r, "message") else r.text
        assert content == text
    final = responses[-1]
    assert final.additional_kwargs["finish_reason"] == "stop"
    assert final.additional_kwargs["chat_id"] and final.additional_kwargs["chat_message_id"]


# ------------------------------------------------------------------------------------------ FlowiseLLM


def test_chat(real_flowise: RealFlowiseState) -> None:
    llm = make_llm(real_flowise, "tool_agent")
    response = llm.chat([user("what is 2 + 2?")])
    assert response.message.content == TOOL_ANSWER
    extra = response.additional_kwargs
    assert extra["chatflow_id"] == real_flowise.flows["tool_agent"]
    assert extra["chat_id"] and extra["chat_message_id"] and extra["session_id"]
    assert extra["used_tools"] == [CALCULATOR]
    assert response.raw["chatId"] == extra["chat_id"]


@pytest.mark.parametrize("flow", ["llm_chain", "agentflow_v2_llm", "llm_chain_model_streaming_off"])
def test_stream_chat(real_flowise: RealFlowiseState, flow: str) -> None:
    responses = list(make_llm(real_flowise, flow).stream_chat([user("hi")]))
    if flow == "llm_chain_model_streaming_off":  # a JSON reply: one delta with the whole answer, then the final
        assert [r.delta for r in responses if r.delta] == [CANNED_ANSWER]
        assert responses[-1].message.content == CANNED_ANSWER
        return
    assert_deltas(responses, CANNED_ANSWER)
    if flow == "agentflow_v2_llm":
        assert responses[-1].raw["usage"]["total_tokens"] == 22


@pytest.mark.parametrize("flow", ["conversation_chain", "agentflow_v2_llm"])
async def test_astream_chat(real_flowise: RealFlowiseState, flow: str) -> None:
    llm = make_llm(real_flowise, flow)
    responses = [r async for r in await llm.astream_chat([user("hi")])]
    assert_deltas(responses, CANNED_ANSWER)
    await llm.aclose()


async def test_achat(real_flowise: RealFlowiseState) -> None:
    response = await make_llm(real_flowise, "agentflow_v2_llm").achat([user("hi")])
    assert response.message.content == CANNED_ANSWER
    assert response.raw["usage"]["total_tokens"] == 22
    assert response.raw["executionId"]


def test_complete_and_stream_complete(real_flowise: RealFlowiseState) -> None:
    llm = make_llm(real_flowise)
    assert llm.complete("hi").text == CANNED_ANSWER
    responses = list(llm.stream_complete("hi"))
    assert_deltas(responses, CANNED_ANSWER)


async def test_acomplete_and_astream_complete(real_flowise: RealFlowiseState) -> None:
    llm = make_llm(real_flowise, "retrieval_qa")
    response = await llm.acomplete("What is Flowise?")
    assert response.text == CANNED_ANSWER
    assert len(response.additional_kwargs["source_documents"]) == 2
    responses = [r async for r in await llm.astream_complete("What is Flowise?")]
    assert_deltas(responses, CANNED_ANSWER)  # the `start` event's first token is not doubled
    assert len(responses[-1].additional_kwargs["source_documents"]) == 2


def test_history_goes_as_flowise_history(real_flowise: RealFlowiseState) -> None:
    needs_llm_log(real_flowise)
    marker = uuid.uuid4().hex[:8]
    seen = llm_log_length(real_flowise)
    response = make_llm(real_flowise, "agentflow_v2_llm").chat(
        [user(f"my name is {marker}"), ChatMessage(role=MessageRole.ASSISTANT, content="Hi!"), user("my name?")]
    )
    assert response.message.content == CANNED_ANSWER
    (request,) = llm_chat_requests(real_flowise, seen)
    turns = [(m["role"], m["content"]) for m in request["messages"] if m["role"] != "system"]
    assert turns == [("user", f"my name is {marker}"), ("assistant", "Hi!"), ("user", "my name?")]


def test_session_id_uses_flowise_memory(real_flowise: RealFlowiseState) -> None:
    needs_llm_log(real_flowise)
    session, marker = f"li-session-{uuid.uuid4()}", uuid.uuid4().hex[:8]
    llm = make_llm(real_flowise, "conversation_chain", session_id=session)
    first = llm.chat([user(f"remember {marker}")])
    assert first.additional_kwargs["session_id"] == session
    seen = llm_log_length(real_flowise)
    llm.chat([user(f"remember {marker}"), first.message, user("what was it?")])
    (request,) = llm_chat_requests(real_flowise, seen)
    contents = [m["content"] for m in request["messages"]]
    assert contents.count(f"remember {marker}") == 1 and contents[-1] == "what was it?"


def test_errors_keep_flowises_message(real_flowise: RealFlowiseState) -> None:
    anonymous = FlowiseLLM(real_flowise.flows["llm_chain_protected"], base_url=real_flowise.base_url, timeout=30)
    with pytest.raises(AuthenticationError):
        anonymous.chat([user("hi")])
    assert make_llm(real_flowise, "llm_chain_protected").chat([user("hi")]).message.content == CANNED_ANSWER
    with pytest.raises(FlowExecutionError) as info:
        list(make_llm(real_flowise).stream_chat([user("please TRIGGER_ERROR")]))
    assert "fake upstream error (TRIGGER_ERROR)" in info.value.message


def test_instrumentation_events(real_flowise: RealFlowiseState) -> None:
    seen: list[Any] = []

    class Collect(BaseEventHandler):
        @classmethod
        def class_name(cls) -> str:
            return "Collect"

        def handle(self, event: Any, **kwargs: Any) -> None:
            if isinstance(event, FLOWISE_EVENTS):
                seen.append(event)

    dispatcher = get_dispatcher()  # the root dispatcher, as the wing documents
    handler = Collect()
    dispatcher.add_event_handler(handler)
    try:
        list(make_llm(real_flowise, "retrieval_qa").stream_chat([user("What is Flowise?")]))
        make_llm(real_flowise, "tool_agent").chat([user("what is 2 + 2?")])
    finally:
        dispatcher.event_handlers.remove(handler)
    kinds = [type(e).__name__ for e in seen]
    assert kinds == [
        "FlowiseSourceDocumentsEvent",
        "FlowiseMetadataEvent",
        "FlowiseToolUsedEvent",
        "FlowiseMetadataEvent",
    ]
    assert len(seen[0].source_documents) == 2 and seen[2].tool == CALCULATOR


# ------------------------------------------------------------------------------------ FlowiseQueryEngine


def engine(state: RealFlowiseState, **kwargs: Any) -> Any:
    return FlowiseQueryEngine(
        chatflow_id=state.flows["retrieval_qa"], base_url=state.base_url, api_key=state.api_key, timeout=30, **kwargs
    )


def assert_source_nodes(nodes: list[Any]) -> None:
    assert len(nodes) == 2
    for node in nodes:
        assert node.node.metadata["source"] == "inline-test-doc"
        assert node.node.get_content() in RETRIEVAL_TEXT


def test_query_engine_source_nodes(real_flowise: RealFlowiseState) -> None:
    response = engine(real_flowise).query("What is Flowise?")
    assert isinstance(response, Response)
    assert response.response == CANNED_ANSWER
    assert_source_nodes(response.source_nodes)
    assert response.metadata is not None and response.metadata["chat_id"]
    assert response.metadata["finish_reason"] == "stop"


def test_query_engine_streaming(real_flowise: RealFlowiseState) -> None:
    response = engine(real_flowise, streaming=True).query("What is Flowise?")
    assert isinstance(response, StreamingResponse)
    pieces = list(response.response_gen)
    assert len(pieces) > 1 and "".join(pieces) == CANNED_ANSWER
    assert_source_nodes(response.source_nodes)  # filled once the stream was consumed
    assert response.metadata is not None and response.metadata["chat_message_id"]


async def test_query_engine_async(real_flowise: RealFlowiseState) -> None:
    response = await engine(real_flowise).aquery("What is Flowise?")
    assert response.response == CANNED_ANSWER
    assert_source_nodes(response.source_nodes)


async def test_query_engine_async_streaming(real_flowise: RealFlowiseState) -> None:
    response = await engine(real_flowise, streaming=True).aquery("What is Flowise?")
    assert isinstance(response, AsyncStreamingResponse)
    pieces = [piece async for piece in response.async_response_gen()]
    assert "".join(pieces) == CANNED_ANSWER
    assert_source_nodes(response.source_nodes)


def test_query_engine_over_a_tool_agent(real_flowise: RealFlowiseState) -> None:
    tool_engine = FlowiseQueryEngine(make_llm(real_flowise, "tool_agent"))
    response = tool_engine.query("what is 2 + 2?")
    assert response.response == TOOL_ANSWER
    assert response.source_nodes == []
    assert (
        json.loads(json.dumps([t.model_dump(by_alias=True) for t in response.metadata["used_tools"]]))[0]["toolOutput"]
        == "4"
    )
