"""FlowiseQueryEngine (sources as source_nodes), FlowiseLLM inside LlamaIndex's own query engines, and a
LlamaIndex agent composing a Flowise flow through QueryEngineTool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from _llama_index_support import ANSWER, SOURCES, TOOLS, Collector, MakeLLM
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.base.response.schema import AsyncStreamingResponse, Response, StreamingResponse
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation.events.query import QueryEndEvent, QueryStartEvent
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import QueryEngineTool

from flowise_integrations.llama_index import FlowiseLLM, FlowiseQueryEngine, FlowiseSourceDocumentsEvent
from flowise_integrations.testing import FakeFlow, FakeFlowise

SOURCE_TEXTS = [d["pageContent"] for d in SOURCES]


def _check(response: Any) -> None:
    assert [n.node.get_content() for n in response.source_nodes] == SOURCE_TEXTS
    assert response.source_nodes[0].node.metadata == SOURCES[0]["metadata"]
    meta = response.metadata
    assert [t.tool for t in meta["used_tools"]] == [TOOLS[0]["tool"]]
    assert meta["chat_id"] and meta["chat_message_id"] and meta["chatflow_id"]


@pytest.mark.parametrize("streaming", [False, True], ids=["response", "streaming"])
def test_query(streaming: bool, make_llm: MakeLLM, rag_flow: str, fake: FakeFlowise, events: Collector) -> None:
    debug = LlamaDebugHandler()
    engine = FlowiseQueryEngine(make_llm(rag_flow), streaming=streaming, callback_manager=CallbackManager([debug]))
    response = engine.query("What is the capital of France?")
    if streaming:
        assert isinstance(response, StreamingResponse)
        assert response.source_nodes == []  # filled once the stream is consumed
        tokens = list(response.response_gen)
        assert len(tokens) > 1 and "".join(tokens) == ANSWER
    else:
        assert isinstance(response, Response) and response.response == ANSWER
    assert fake.last_request.json["question"] == "What is the capital of France?"
    _check(response)
    assert len(events.of(QueryStartEvent)) == len(events.of(QueryEndEvent)) == 1
    assert len(events.of(FlowiseSourceDocumentsEvent)) == 1
    assert len(debug.get_event_pairs(CBEventType.QUERY)) == 1


@pytest.mark.parametrize("streaming", [False, True], ids=["response", "streaming"])
async def test_aquery(streaming: bool, make_llm: MakeLLM, rag_flow: str, events: Collector) -> None:
    engine = FlowiseQueryEngine(make_llm(rag_flow), streaming=streaming)
    response = await engine.aquery("What is the capital of France?")
    if streaming:
        assert isinstance(response, AsyncStreamingResponse)
        tokens = [t async for t in response.response_gen]
        assert len(tokens) > 1 and "".join(tokens) == ANSWER
    else:
        assert isinstance(response, Response) and response.response == ANSWER
    _check(response)
    assert len(events.of(QueryStartEvent)) == len(events.of(QueryEndEvent)) == 1


def test_built_from_llm_arguments(fake: FakeFlowise, rag_flow: str) -> None:
    with fake.serve() as base_url:
        engine = FlowiseQueryEngine(chatflow_id=rag_flow, base_url=base_url)
        assert isinstance(engine.llm, FlowiseLLM) and engine.llm.chatflow_id == rag_flow
        _check(engine.query("q"))
        engine.llm.close()
    with pytest.raises(TypeError, match="either"):
        FlowiseQueryEngine(engine.llm, chatflow_id="x")


@pytest.mark.parametrize("streaming", [False, True], ids=["response", "streaming"])
async def test_flowise_llm_in_a_vector_store_query_engine(
    streaming: bool, make_llm: MakeLLM, fake: FakeFlowise
) -> None:
    flow = fake.add_flow(FakeFlow(respond=lambda body: f"Answer from {len(body['question'])} chars."))
    index = VectorStoreIndex.from_documents(
        [Document(text="Flowise builds LLM apps visually."), Document(text="LlamaIndex connects data to LLMs.")],
        embed_model=MockEmbedding(embed_dim=8),
    )
    engine = index.as_query_engine(llm=make_llm(flow), streaming=streaming, similarity_top_k=2)
    response = engine.query("What does Flowise do?")
    text = "".join(response.response_gen) if streaming else str(response)
    body = fake.last_request.json
    assert text == f"Answer from {len(body['question'])} chars."
    assert "Flowise builds LLM apps visually." in body["question"]  # LlamaIndex's prompt, with the context
    assert "What does Flowise do?" in body["question"]
    assert len(response.source_nodes) == 2  # LlamaIndex's own retrieval
    aresponse = await engine.aquery("What does Flowise do?")
    if streaming:
        assert "".join([t async for t in aresponse.async_response_gen()]).startswith("Answer from")
    else:
        assert str(aresponse).startswith("Answer from")


def _script(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
    """A function-calling LLM that asks the Flowise tool once, then answers with what it said."""
    results = [m for m in messages if m.role == MessageRole.TOOL]
    if not results:
        return ChatMessage(role="assistant", blocks=[
            ToolCallBlock(tool_call_id="call-1", tool_name="flowise_docs", tool_kwargs={"input": "capital of France?"})
        ])  # fmt: skip
    return ChatMessage(role="assistant", content=f"The flow says: {results[-1].content}")


@pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")  # workflows inspect pydantic members
@pytest.mark.parametrize("agent_kind", ["FunctionAgent", "AgentWorkflow"])
async def test_agent_calls_a_flow_through_query_engine_tool(
    agent_kind: str, make_llm: MakeLLM, rag_flow: str, fake: FakeFlowise
) -> None:
    tool = QueryEngineTool.from_defaults(
        FlowiseQueryEngine(make_llm(rag_flow)), name="flowise_docs", description="Answers questions about France."
    )
    brain = MockFunctionCallingLLM(response_generator=_script, is_chat_model=True)
    agent = FunctionAgent(tools=[tool], llm=brain, name="main", description="main agent")
    runner: Any = agent if agent_kind == "FunctionAgent" else AgentWorkflow(agents=[agent])
    handler = runner.run(user_msg="What is the capital of France?")
    results = [event async for event in handler.stream_events() if isinstance(event, ToolCallResult)]
    output = await handler
    assert str(output.response.content) == f"The flow says: {ANSWER}"
    assert fake.last_request.json["question"] == "capital of France?"
    assert len(results) == 1 and results[0].tool_name == "flowise_docs"
    raw = results[0].tool_output.raw_output
    assert isinstance(raw, Response) and raw.response == ANSWER
    _check(raw)


async def test_chat_engine_keeps_the_conversation_as_history(make_llm: MakeLLM, fake: FakeFlowise) -> None:
    from llama_index.core.chat_engine import SimpleChatEngine

    flow = fake.add_flow(FakeFlow(respond=lambda body: f"Answer {len(body.get('history', []))}."))
    engine = SimpleChatEngine.from_defaults(llm=make_llm(flow), system_prompt="Be brief.")
    assert str(engine.chat("Hi")) == "Answer 1."
    streamed = engine.stream_chat("And then?")
    assert "".join(streamed.response_gen) == "Answer 3."
    assert fake.last_request.json["history"] == [
        {"role": "userMessage", "content": "Be brief."},
        {"role": "userMessage", "content": "Hi"},
        {"role": "apiMessage", "content": "Answer 1."},
    ]
    response = await engine.achat("Last one")
    assert str(response) == "Answer 5."
