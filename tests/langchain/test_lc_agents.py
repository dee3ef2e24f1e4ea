"""Agent loops over Flowise flows: LangGraph's prebuilt agent and ``langchain.agents.create_agent`` with a
scripted tool-calling model and toolkit tools, one of them a failing flow the agent survives."""

from __future__ import annotations

from typing import Any

import pytest
from _agent_support import ScriptedAgentModel
from _langchain_support import transport_clients
from langchain.agents import create_agent
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import create_react_agent

from flowise_integrations.discovery import FlowInfo, FormField
from flowise_integrations.langchain import ChatFlowise, FlowiseToolkit
from flowise_integrations.testing import FakeFlow, FakeFlowise

pytestmark = [
    pytest.mark.usefixtures("no_sockets"),
    pytest.mark.filterwarnings("ignore:create_react_agent has been moved:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::langgraph.warnings.LangGraphDeprecatedSinceV10"),
]

DOCS = [{"pageContent": "Refunds within 30 days.", "metadata": {"source": "refunds.md"}}]
FAILURE = "The LLM provider is down"
CALLS = [
    {"name": "refund_policy", "args": {"question": "How long do refunds take?"}},
    {"name": "inventory", "args": {"question": "Is the blue mug in stock?"}},
    {"name": "open_ticket", "args": {"email": "ada@example.com", "priority": "2"}},
]


def toolkit(fake: FakeFlowise, **settings: Any) -> tuple[FlowiseToolkit, dict[str, str]]:
    ids = {
        "refund_policy": fake.add_flow(FakeFlow(answer="Refunds take 30 days.", source_documents=DOCS)),
        "inventory": fake.add_flow(FakeFlow(error=FAILURE)),
        "open_ticket": fake.add_flow(FakeFlow(kind="agentflow", answer="Ticket T-1 opened.")),
    }
    flows = [
        FlowInfo(id=ids["refund_policy"], name="Refund Policy", description="Answers refund questions."),
        FlowInfo(id=ids["inventory"], name="Inventory", description="Stock levels."),
        FlowInfo(
            id=ids["open_ticket"],
            name="Open ticket",
            type="AGENTFLOW",
            input_type="form",
            form_description="Opens a support ticket.",
            form_fields=[FormField(name="email", label="Email"), FormField(name="priority", type="number")],
        ),
    ]
    return FlowiseToolkit.from_flows(flows, **transport_clients(fake), **settings), ids


def check(messages: list[Any], fake: FakeFlowise, ids: dict[str, str]) -> None:
    results = {m.name: m for m in messages if isinstance(m, ToolMessage)}
    assert results["refund_policy"].status == "success"
    assert results["refund_policy"].artifact["source_documents"] == [
        Document(page_content="Refunds within 30 days.", metadata={"source": "refunds.md"})
    ]
    assert results["inventory"].status == "error" and FAILURE in str(results["inventory"].content)
    assert results["open_ticket"].content == "Ticket T-1 opened."
    final = messages[-1]
    assert isinstance(final, AIMessage) and final.content.splitlines() == [
        "refund_policy [success]: Refunds take 30 days.",
        f"inventory [error]: {results['inventory'].content}",
        "open_ticket [success]: Ticket T-1 opened.",
    ]
    sent = {r.path.rsplit("/", 1)[-1]: r.json for r in fake.requests if r.method == "POST"}
    assert sent[ids["refund_policy"]]["question"] == "How long do refunds take?"
    assert sent[ids["open_ticket"]]["form"] == {"email": "ada@example.com", "priority": 2}
    assert "question" not in sent[ids["open_ticket"]]  # Flowise refuses a question together with a form


def test_langgraph_prebuilt_agent_survives_a_failing_flow(fake: FakeFlowise) -> None:
    kit, ids = toolkit(fake)
    agent = create_react_agent(ScriptedAgentModel(calls=CALLS), kit.get_tools())
    result = agent.invoke({"messages": [HumanMessage("Refunds, mug stock, and open a ticket for ada.")]})
    check(result["messages"], fake, ids)


async def test_create_agent_survives_a_failing_flow_async(fake: FakeFlowise) -> None:
    kit, ids = toolkit(fake)
    agent = create_agent(ScriptedAgentModel(calls=CALLS), kit.get_tools())
    result = await agent.ainvoke({"messages": [HumanMessage("Refunds, mug stock, and open a ticket for ada.")]})
    check(result["messages"], fake, ids)


def test_create_agent_with_a_thread_binds_the_users_session(fake: FakeFlowise) -> None:
    kit, ids = toolkit(fake)
    agent = create_agent(ScriptedAgentModel(calls=CALLS[:1]), kit.get_tools(), checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t-1", "flowise_session_id": "user-ada"}}
    agent.invoke({"messages": [HumanMessage("Refunds?")]}, config)
    (body,) = [r.json for r in fake.requests if r.path.endswith(ids["refund_policy"])]
    assert body["overrideConfig"] == {"sessionId": "user-ada"}


def test_without_handle_tool_error_the_failure_reaches_the_developer(fake: FakeFlowise) -> None:
    kit, _ = toolkit(fake, handle_tool_error=False)
    agent = create_agent(ScriptedAgentModel(calls=CALLS[1:2]), kit.get_tools())
    from flowise_integrations import FlowExecutionError

    with pytest.raises(FlowExecutionError, match=FAILURE):
        agent.invoke({"messages": [HumanMessage("Mug?")]})


def test_flowise_extras_reach_langgraph_custom_stream(fake: FakeFlowise) -> None:
    kit, ids = toolkit(fake)
    agent = create_agent(ScriptedAgentModel(calls=CALLS[:1]), kit.get_tools())
    custom = list(agent.stream({"messages": [HumanMessage("Refunds?")]}, stream_mode="custom"))
    assert [c["event"] for c in custom] == ["flowise_source_documents", "flowise_metadata"]
    assert custom[0]["chatflow_id"] == ids["refund_policy"] and custom[0]["data"][0]["page_content"]


def test_chatflowise_extras_reach_custom_stream_and_recovered_answers_say_so() -> None:
    fake = FakeFlowise(api_key="key")
    docs = fake.add_flow(FakeFlow(answer="From the docs.", source_documents=DOCS))
    lost = fake.add_flow(FakeFlow(lose_tokens=True, answer="The stored answer."))  # queue mode lost the tokens
    clients = {"api_key": "key", **transport_clients(fake)}
    llm, recovering = ChatFlowise(model=docs, **clients), ChatFlowise(model=lost, streaming=True, **clients)

    def node(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [llm.invoke(state["messages"]), recovering.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("flowise", node)
    graph.add_edge(START, "flowise")
    app = graph.compile()
    seen = list(app.stream({"messages": [HumanMessage("hi")]}, stream_mode=["custom", "values"]))
    custom = [item for mode, item in seen if mode == "custom"]
    assert ("flowise_source_documents", docs) in [(c["event"], c["chatflow_id"]) for c in custom]
    final = [item for mode, item in seen if mode == "values"][-1]["messages"][-1]
    assert final.content == "The stored answer." and final.response_metadata["recovered"] is True
