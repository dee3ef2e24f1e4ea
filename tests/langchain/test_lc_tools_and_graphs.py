"""FlowiseTool, and Flowise flows composed by a LangGraph agent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from _langchain_support import transport_clients
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from flowise_integrations.langchain import ChatFlowise, FlowiseTool
from flowise_integrations.testing import FakeFlow, FakeFlowise

pytestmark = pytest.mark.usefixtures("no_sockets")

DOCS = [{"pageContent": "Refunds within 30 days.", "metadata": {"source": "refunds.md"}}]
TOOLS = [{"tool": "calculator", "toolInput": {"input": "19.99*3"}, "toolOutput": "59.97"}]


class ScriptedToolCaller(BaseChatModel):
    """A fake tool-calling model: first asks both Flowise tools, then summarises their answers."""

    @property
    def _llm_type(self) -> str:
        return "scripted-tool-caller"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if not results:
            message = AIMessage(
                "",
                tool_calls=[
                    {"name": "policies", "args": {"question": "What is the refund window?"}, "id": "call-1"},
                    {"name": "calculator", "args": {"question": "Three items at 19.99?"}, "id": "call-2"},
                ],
            )
        else:
            message = AIMessage(" | ".join(str(m.content) for m in results))
        return ChatResult(generations=[ChatGeneration(message=message)])


def _tools(fake: FakeFlowise) -> tuple[FlowiseTool, FlowiseTool, str, str]:
    policies = fake.add_flow(FakeFlow(answer="Refunds are accepted within 30 days.", source_documents=DOCS))
    calculator = fake.add_flow(FakeFlow(answer="The total is 59.97.", used_tools=TOOLS))
    clients = transport_clients(fake)
    return (
        FlowiseTool(name="policies", description="Answers policy questions.", chatflow_id=policies, **clients),
        FlowiseTool(name="calculator", description="Does arithmetic.", chatflow_id=calculator, **clients),
        policies,
        calculator,
    )


def _agent(tools: list[BaseTool]) -> Any:
    model = ScriptedToolCaller().bind_tools(tools)

    def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


def _check_run(messages: list[BaseMessage], fake: FakeFlowise, policies: str, calculator: str) -> None:
    tool_messages = {m.name: m for m in messages if isinstance(m, ToolMessage)}
    assert tool_messages["policies"].content == "Refunds are accepted within 30 days."
    assert tool_messages["calculator"].content == "The total is 59.97."
    artifact = tool_messages["policies"].artifact
    assert artifact["source_documents"] == [
        Document(page_content="Refunds within 30 days.", metadata={"source": "refunds.md"})
    ]
    assert artifact["chatflow_id"] == policies and artifact["chat_message_id"]
    assert tool_messages["calculator"].artifact["used_tools"][0]["tool_output"] == "59.97"
    assert messages[-1].content == "Refunds are accepted within 30 days. | The total is 59.97."
    asked = {r.path.rsplit("/", 1)[-1]: r.json["question"] for r in fake.requests}
    assert asked == {policies: "What is the refund window?", calculator: "Three items at 19.99?"}


def test_langgraph_agent_composes_two_flows(fake: FakeFlowise) -> None:
    policy_tool, calc_tool, policies, calculator = _tools(fake)
    result = _agent([policy_tool, calc_tool]).invoke({"messages": [HumanMessage("Refund window and total?")]})
    _check_run(result["messages"], fake, policies, calculator)


async def test_langgraph_agent_composes_two_flows_async_with_events(fake: FakeFlowise) -> None:
    policy_tool, calc_tool, policies, calculator = _tools(fake)
    graph = _agent([policy_tool, calc_tool])
    events = [e async for e in graph.astream_events({"messages": [HumanMessage("Both?")]}, version="v2")]
    final = next(e for e in reversed(events) if e["event"] == "on_chain_end" and e["name"] == "LangGraph")
    _check_run(final["data"]["output"]["messages"], fake, policies, calculator)
    custom = [(e["name"], e["data"]["chatflow_id"]) for e in events if e["event"] == "on_custom_event"]
    assert ("flowise_source_documents", policies) in custom
    assert ("flowise_used_tools", calculator) in custom


def test_flowise_tool_direct_calls(fake: FakeFlowise) -> None:
    policy_tool, _, _, _ = _tools(fake)
    assert policy_tool.invoke({"question": "Refunds?"}) == "Refunds are accepted within 30 days."
    message = policy_tool.invoke(
        {"type": "tool_call", "name": "policies", "id": "c1", "args": {"question": "Refunds?"}},
        config={"configurable": {"flowise_session_id": "s-9"}},
    )
    assert isinstance(message, ToolMessage) and message.tool_call_id == "c1"
    assert message.artifact["session_id"] == "s-9"
    assert fake.last_request.json == {"question": "Refunds?", "overrideConfig": {"sessionId": "s-9"}}
    assert policy_tool.args == {"question": {"description": policy_tool.args["question"]["description"],
                                             "title": "Question", "type": "string"}}  # fmt: skip


async def test_flowise_tool_async_and_as_tool(fake: FakeFlowise, make_llm: Callable[..., ChatFlowise]) -> None:
    flow = fake.add_flow(FakeFlow(answer="Forty-two.", source_documents=DOCS))
    tool = make_llm(flow, session_id="team").as_tool(name="oracle", description="Knows everything.")
    assert isinstance(tool, FlowiseTool)
    assert (tool.name, tool.description, tool.chatflow_id, tool.session_id) == (
        "oracle",
        "Knows everything.",
        flow,
        "team",
    )
    message = await tool.ainvoke({"type": "tool_call", "name": "oracle", "id": "c2", "args": {"question": "?"}})
    assert message.content == "Forty-two." and message.artifact["source_documents"][0].page_content
    assert fake.last_request.json["overrideConfig"] == {"sessionId": "team"}


def test_chatflowise_as_a_langgraph_node_streams_messages(
    fake: FakeFlowise, make_llm: Callable[..., ChatFlowise]
) -> None:
    flow = fake.add_flow(FakeFlow(tokens=["Hi", " from", " a", " node."], source_documents=DOCS))
    llm = make_llm(flow)

    def node(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [llm.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("flowise", node)
    graph.add_edge(START, "flowise")
    app = graph.compile()
    pieces = [m.content for m, _ in app.stream({"messages": [HumanMessage("hi")]}, stream_mode="messages")]
    assert [p for p in pieces if p] == ["Hi", " from", " a", " node."]
    assert all(
        isinstance(m, AIMessageChunk) for m, _ in app.stream({"messages": [HumanMessage("x")]}, stream_mode="messages")
    )
