"""The LangChain wing (``ChatFlowise``, ``FlowiseTool``) against the real Flowise 3.1.4, public API only."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from e2e_support import llm_chat_requests, llm_log_length
from flows import CANNED_ANSWER, RETRIEVAL_TEXT, TOOL_ANSWER
from harness import RealFlowiseState

pytest.importorskip("langchain_core")
lc = pytest.importorskip("flowise_integrations.langchain")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402

from flowise_integrations import AuthenticationError, FlowExecutionError  # noqa: E402

ChatFlowise = lc.ChatFlowise
FlowiseTool = lc.FlowiseTool

pytestmark = pytest.mark.timeout(120)

CALCULATOR = {"tool": "calculator", "tool_input": {"input": "2 + 2"}, "tool_output": "4"}


def model(state: RealFlowiseState, flow: str = "llm_chain", **kwargs: Any) -> Any:
    return ChatFlowise(model=state.flows[flow], base_url=state.base_url, api_key=state.api_key, timeout=30, **kwargs)


def needs_llm_log(state: RealFlowiseState) -> None:
    if not state.fake_llm_log:
        pytest.skip("external server: no fake LLM request log")


def assert_ids(metadata: dict[str, Any], state: RealFlowiseState, flow: str) -> None:
    assert metadata["model_provider"] == "flowise"
    assert metadata["model_name"] == state.flows[flow]
    assert metadata["finish_reason"] == "stop"
    assert metadata["chat_id"] and metadata["chat_message_id"] and metadata["session_id"]


def joined(chunks: list[Any]) -> Any:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


# ------------------------------------------------------------------------------------------ ChatFlowise


def test_invoke(real_flowise: RealFlowiseState) -> None:
    message = model(real_flowise).invoke("hi")
    assert isinstance(message, AIMessage)
    assert message.content == CANNED_ANSWER
    assert message.tool_calls == []
    assert_ids(message.response_metadata, real_flowise, "llm_chain")
    assert message.id == message.response_metadata["chat_message_id"]
    assert message.usage_metadata is None  # classic chatflows report no usage


async def test_ainvoke(real_flowise: RealFlowiseState) -> None:
    message = await model(real_flowise, "agentflow_v2_llm").ainvoke("hi")
    assert message.content == CANNED_ANSWER
    assert_ids(message.response_metadata, real_flowise, "agentflow_v2_llm")
    assert message.response_metadata["execution_id"]  # (a JSON reply has no agentflow status to report)
    assert message.usage_metadata is not None and message.usage_metadata["total_tokens"] == 22


@pytest.mark.parametrize("flow", ["llm_chain", "agentflow_v2_llm"])
def test_stream(real_flowise: RealFlowiseState, flow: str) -> None:
    chunks = list(model(real_flowise, flow).stream("hi"))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    texts = [c.content for c in chunks if c.content]
    assert len(texts) > 5  # token by token
    full = joined(chunks)
    assert full.content == CANNED_ANSWER
    assert_ids(full.response_metadata, real_flowise, flow)
    assert chunks[-1].response_metadata["chat_id"] == full.response_metadata["chat_id"]
    assert full.tool_calls == []
    if flow == "agentflow_v2_llm":
        assert full.usage_metadata is not None and full.usage_metadata["total_tokens"] == 22


@pytest.mark.parametrize("flow", ["conversation_chain", "agentflow_v2_llm"])
async def test_astream(real_flowise: RealFlowiseState, flow: str) -> None:
    chunks = [c async for c in model(real_flowise, flow).astream("hi")]
    assert len([c for c in chunks if c.content]) > 5
    full = joined(chunks)
    assert full.content == CANNED_ANSWER
    assert_ids(full.response_metadata, real_flowise, flow)


def test_streaming_flag_makes_invoke_stream(real_flowise: RealFlowiseState) -> None:
    message = model(real_flowise, "retrieval_qa", streaming=True).invoke("What is Flowise?")
    assert message.content == CANNED_ANSWER  # the `start` event's first token is not doubled
    assert len(message.response_metadata["source_documents"]) == 2


def test_flow_that_cannot_stream(real_flowise: RealFlowiseState) -> None:
    chunks = list(model(real_flowise, "llm_chain_model_streaming_off").stream("hi"))
    assert joined(chunks).content == CANNED_ANSWER


@pytest.mark.parametrize("how", ["invoke", "stream"])
def test_retrieval_sources_in_response_metadata(real_flowise: RealFlowiseState, how: str) -> None:
    llm = model(real_flowise, "retrieval_qa")
    message = llm.invoke("What is Flowise?") if how == "invoke" else joined(list(llm.stream("What is Flowise?")))
    docs = message.response_metadata["source_documents"]
    assert len(docs) == 2
    assert all(d["metadata"]["source"] == "inline-test-doc" and d["page_content"] in RETRIEVAL_TEXT for d in docs)


@pytest.mark.parametrize("flow", ["tool_agent", "tool_agent_detailed", "agentflow_v2_agent_tool"])
@pytest.mark.parametrize("how", ["invoke", "astream"])
async def test_used_tools_in_response_metadata_never_as_tool_calls(
    real_flowise: RealFlowiseState, flow: str, how: str
) -> None:
    llm = model(real_flowise, flow)
    if how == "invoke":
        message = await llm.ainvoke("what is 2 + 2?")
    else:
        message = joined([c async for c in llm.astream("what is 2 + 2?")])
    assert message.content == TOOL_ANSWER
    used = message.response_metadata["used_tools"]
    assert [{k: u.get(k) for k in CALCULATOR} for u in used] == [CALCULATOR]
    assert message.tool_calls == [] and message.invalid_tool_calls == []


def test_lcel_chain(real_flowise: RealFlowiseState) -> None:
    needs_llm_log(real_flowise)
    marker = uuid.uuid4().hex[:8]
    prompt = ChatPromptTemplate.from_messages(
        [("system", f"You are terse. Secret {marker}."), ("human", "Tell me about {topic}")]
    )
    chain = prompt | model(real_flowise, "agentflow_v2_llm") | StrOutputParser()
    seen = llm_log_length(real_flowise)
    assert chain.invoke({"topic": "Flowise"}) == CANNED_ANSWER
    (request,) = llm_chat_requests(real_flowise, seen)
    sent = json.dumps(request["messages"])
    assert f"Secret {marker}" in sent  # the system turn is not dropped
    assert request["messages"][-1]["content"] == "Tell me about Flowise"
    pieces = list(chain.stream({"topic": "Flowise"}))
    assert len(pieces) > 5 and "".join(pieces) == CANNED_ANSWER


async def test_lcel_chain_async_with_custom_events(real_flowise: RealFlowiseState) -> None:
    chain = (
        ChatPromptTemplate.from_messages([("human", "{q}")]) | model(real_flowise, "retrieval_qa") | StrOutputParser()
    )
    assert await chain.ainvoke({"q": "What is Flowise?"}) == CANNED_ANSWER
    names: list[str] = []
    text = ""
    async for event in chain.astream_events({"q": "What is Flowise?"}, version="v2"):
        if event["event"] == "on_custom_event":
            names.append(event["name"])
            if event["name"] == "flowise_source_documents":
                assert len(event["data"]["data"]) == 2
        elif event["event"] == "on_chat_model_stream":
            text += event["data"]["chunk"].content
    assert text == CANNED_ANSWER
    assert "flowise_source_documents" in names and "flowise_metadata" in names


def test_client_side_memory_sends_history(real_flowise: RealFlowiseState) -> None:
    needs_llm_log(real_flowise)
    marker = uuid.uuid4().hex[:8]
    seen = llm_log_length(real_flowise)
    message = model(real_flowise, "conversation_chain").invoke(
        [HumanMessage(f"my name is {marker}"), AIMessage("Hello!"), HumanMessage("what is my name?")]
    )
    assert message.content == CANNED_ANSWER
    (request,) = llm_chat_requests(real_flowise, seen)
    turns = [(m["role"], m["content"]) for m in request["messages"] if m["role"] != "system"]
    assert turns == [("user", f"my name is {marker}"), ("assistant", "Hello!"), ("user", "what is my name?")]


async def test_server_side_memory_with_session_id(real_flowise: RealFlowiseState) -> None:
    needs_llm_log(real_flowise)
    session = f"lc-session-{uuid.uuid4()}"
    marker = uuid.uuid4().hex[:8]
    llm = model(real_flowise, "conversation_chain", session_id=session)
    first = await llm.ainvoke([SystemMessage("be brief"), HumanMessage(f"my code is {marker}")])
    assert first.response_metadata["session_id"] == session
    seen = llm_log_length(real_flowise)
    second = await llm.ainvoke([HumanMessage(f"my code is {marker}"), first, HumanMessage("what is my code?")])
    assert second.response_metadata["session_id"] == session
    (request,) = llm_chat_requests(real_flowise, seen)
    contents = [m["content"] for m in request["messages"]]
    assert contents.count(f"my code is {marker}") == 1  # from Flowise's memory, not sent again
    assert contents[-1] == "what is my code?"


def test_model_override_per_call(real_flowise: RealFlowiseState) -> None:
    message = model(real_flowise, "llm_chain").invoke("what is 2 + 2?", model=real_flowise.flows["tool_agent"])
    assert message.content == TOOL_ANSWER
    assert message.response_metadata["model_name"] == real_flowise.flows["tool_agent"]


def test_protected_flow(real_flowise: RealFlowiseState) -> None:
    assert model(real_flowise, "llm_chain_protected").invoke("hi").content == CANNED_ANSWER
    anonymous = ChatFlowise(model=real_flowise.flows["llm_chain_protected"], base_url=real_flowise.base_url, timeout=30)
    with pytest.raises(AuthenticationError) as info:
        anonymous.invoke("hi")
    assert isinstance(info.value, lc.FlowiseModelAuthenticationError)
    with pytest.raises(lc.FlowiseModelAuthenticationError):
        list(anonymous.stream("hi"))


def test_upstream_error(real_flowise: RealFlowiseState) -> None:
    llm = model(real_flowise, "llm_chain")
    with pytest.raises(FlowExecutionError) as info:
        llm.invoke("please TRIGGER_ERROR")
    assert isinstance(info.value, lc.FlowiseModelFlowExecutionError) and info.value.status_code == 500
    assert "fake upstream error (TRIGGER_ERROR)" in info.value.message
    with pytest.raises(FlowExecutionError) as stream_info:
        list(llm.stream("please TRIGGER_ERROR"))
    assert isinstance(stream_info.value, lc.FlowiseModelFlowExecutionError)
    assert "fake upstream error (TRIGGER_ERROR)" in stream_info.value.message


def test_unknown_chatflow(real_flowise: RealFlowiseState) -> None:
    llm = ChatFlowise(model=str(uuid.uuid4()), base_url=real_flowise.base_url, timeout=30)
    with pytest.raises(lc.FlowiseModelNotFoundError):
        llm.invoke("hi")


# ------------------------------------------------------------------------------------------ FlowiseTool


def tool_call(tool: Any, question: str) -> dict[str, Any]:
    return {
        "type": "tool_call",
        "id": f"call_{uuid.uuid4().hex[:8]}",
        "name": tool.name,
        "args": {"question": question},
    }


def retrieval_tool(state: RealFlowiseState) -> Any:
    return FlowiseTool(
        name="flowise_docs",
        description="Answers questions about Flowise from its documentation.",
        chatflow_id=state.flows["retrieval_qa"],
        base_url=state.base_url,
        api_key=state.api_key,
        timeout=30,
    )


def test_tool_returns_content_and_artifact(real_flowise: RealFlowiseState) -> None:
    tool = retrieval_tool(real_flowise)
    assert tool.invoke({"question": "What is Flowise?"}) == CANNED_ANSWER
    call = tool_call(tool, "What is Flowise?")
    message = tool.invoke(call)
    assert isinstance(message, ToolMessage)
    assert message.content == CANNED_ANSWER and message.tool_call_id == call["id"]
    artifact = message.artifact
    assert artifact["chatflow_id"] == real_flowise.flows["retrieval_qa"]
    assert artifact["chat_id"] and artifact["chat_message_id"]
    docs = artifact["source_documents"]
    assert len(docs) == 2 and all(isinstance(d, Document) for d in docs)
    assert {d.metadata["source"] for d in docs} == {"inline-test-doc"}


async def test_tool_async_reports_used_tools(real_flowise: RealFlowiseState) -> None:
    tool = FlowiseTool(
        name="calculator_agent",
        description="An agent with a calculator.",
        chatflow_id=real_flowise.flows["tool_agent"],
        base_url=real_flowise.base_url,
        api_key=real_flowise.api_key,
        timeout=30,
    )
    message = await tool.ainvoke(tool_call(tool, "what is 2 + 2?"))
    assert message.content == TOOL_ANSWER
    assert [{k: u.get(k) for k in CALCULATOR} for u in message.artifact["used_tools"]] == [CALCULATOR]


def test_chat_model_as_tool(real_flowise: RealFlowiseState) -> None:
    tool = model(real_flowise, "retrieval_qa").as_tool(name="docs", description="Flowise docs")
    message = tool.invoke(tool_call(tool, "What is Flowise?"))
    assert message.content == CANNED_ANSWER and len(message.artifact["source_documents"]) == 2


def test_tool_session_continues_server_side_memory(real_flowise: RealFlowiseState) -> None:
    needs_llm_log(real_flowise)
    tool = FlowiseTool(
        name="chat",
        description="Chat with memory.",
        chatflow_id=real_flowise.flows["conversation_chain"],
        base_url=real_flowise.base_url,
        timeout=30,
    )
    session, marker = f"tool-session-{uuid.uuid4()}", uuid.uuid4().hex[:8]
    bound = {"configurable": {"flowise_session_id": session}}  # the developer binds the session, never the model
    first = tool.invoke(
        {**tool_call(tool, f"remember {marker}"), "args": {"question": f"remember {marker}"}}, config=bound
    )
    assert first.artifact["session_id"] == session
    seen = llm_log_length(real_flowise)
    tool.invoke({**tool_call(tool, "what?"), "args": {"question": "what did I say?"}}, config=bound)
    (request,) = llm_chat_requests(real_flowise, seen)
    assert f"remember {marker}" in json.dumps(request["messages"])
