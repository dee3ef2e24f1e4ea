"""The LangChain wing's agent features against the real Flowise: a toolkit from the live server's flows in an
agent loop (a failing flow survived), chats per LangGraph thread, abort on leaving an agentflow stream early, and
a Human Input agentflow through the LangGraph interrupt bridge."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from agents_support import needs_agentflow_v2
from flows import CANNED_ANSWER, TOOL_ANSWER
from flows_agents import DISCARDED, FORM, FORM_TITLE, HUMAN_INPUT, REVIEW_PROMPT, SENT
from harness import RealFlowiseState

lc = pytest.importorskip("flowise_integrations.langchain")

from langchain.agents import create_agent  # noqa: E402
from langchain_core.language_models import BaseChatModel  # noqa: E402
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402
from langgraph.graph import START, MessagesState, StateGraph  # noqa: E402
from langgraph.types import Command  # noqa: E402

from flowise_integrations import FlowiseClient  # noqa: E402

pytestmark = pytest.mark.timeout(180)

ChatFlowise = lc.ChatFlowise
FlowiseToolkit = lc.FlowiseToolkit


class ScriptedAgentModel(BaseChatModel):
    """A tool-calling model for the agent loop: turn 1 makes ``calls``, then one line per tool answer."""

    calls: list[dict[str, Any]]

    @property
    def _llm_type(self) -> str:
        return "scripted-agent"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if results:
            message = AIMessage("\n".join(f"{m.name} [{m.status}]: {m.content}" for m in results))
        else:
            message = AIMessage("", tool_calls=[{**c, "id": f"call-{i}"} for i, c in enumerate(self.calls)])
        return ChatResult(generations=[ChatGeneration(message=message)])


def _disconnects(state: RealFlowiseState) -> int:
    return sum(r.get("event") == "client_disconnected" for r in state.fake_llm_requests())


async def _wait_for_upstream_disconnect(state: RealFlowiseState, before: int) -> None:
    deadline = time.monotonic() + 10
    while _disconnects(state) == before:
        assert time.monotonic() < deadline, "Flowise kept streaming from the LLM: the run was not aborted"
        await asyncio.sleep(0.1)


# ------------------------------------------------------------------------------------------ toolkit


def test_toolkit_from_the_live_server(real_flowise: RealFlowiseState) -> None:
    toolkit = FlowiseToolkit.from_server(base_url=real_flowise.base_url, api_key=real_flowise.api_key, timeout=60)
    tools = {tool.name: tool for tool in toolkit.get_tools()}
    assert {flow.id for flow in toolkit.flows} == set(real_flowise.flows.values())  # none is a webhook/schedule
    assert len(tools) == len(real_flowise.flows)
    assert {"e2e-llm_chain", "e2e-retrieval_qa", "e2e-tool_agent"} <= tools.keys()  # the flows are "e2e-<name>"
    docs = tools["e2e-retrieval_qa"]
    assert docs.chatflow_id == real_flowise.flows["retrieval_qa"]
    assert docs.description == 'Execute the "e2e-retrieval_qa" flow'  # Flowise's MCP default: no description set
    message = docs.invoke(
        {"type": "tool_call", "id": "c1", "name": docs.name, "args": {"question": "What is Flowise?"}}
    )
    assert isinstance(message, ToolMessage) and message.content == CANNED_ANSWER
    assert len(message.artifact["source_documents"]) == 2


def test_form_agentflow_tool_takes_the_form_fields(real_flowise: RealFlowiseState) -> None:
    needs_agentflow_v2(real_flowise)
    toolkit = FlowiseToolkit.from_server(
        base_url=real_flowise.base_url, api_key=real_flowise.api_key, include=[real_flowise.flows[FORM]], timeout=60
    )
    (tool,) = toolkit.get_tools()
    schema = tool.tool_call_schema
    assert isinstance(schema, dict) and schema["title"] == FORM_TITLE
    assert set(schema["properties"]) == {"name", "age", "subscribed", "plan"}
    assert schema["properties"]["plan"]["enum"] == ["basic", "pro"]
    answer = tool.invoke({"name": "Ada", "age": "36", "subscribed": "yes", "plan": "Pro"})
    assert answer == "Hello Ada, age 36, plan pro, subscribed true."


async def test_agent_over_live_tools_survives_a_failing_flow(real_flowise: RealFlowiseState) -> None:
    toolkit = await FlowiseToolkit.afrom_server(
        base_url=real_flowise.base_url,
        api_key=real_flowise.api_key,
        include=["e2e-llm_chain", "e2e-tool_agent"],  # by name (ids work too)
        timeout=60,
    )
    calls = [
        {"name": "e2e-tool_agent", "args": {"question": "what is 2 + 2?"}},
        {"name": "e2e-llm_chain", "args": {"question": "TRIGGER_ERROR please"}},
    ]
    agent = create_agent(ScriptedAgentModel(calls=calls), toolkit.get_tools())
    result = await agent.ainvoke({"messages": [HumanMessage("Add, then fail.")]})
    results = {m.name: m for m in result["messages"] if isinstance(m, ToolMessage)}
    assert results["e2e-tool_agent"].status == "success" and results["e2e-tool_agent"].content == TOOL_ANSWER
    assert results["e2e-tool_agent"].artifact["used_tools"][0]["tool"] == "calculator"
    assert results["e2e-llm_chain"].status == "error" and results["e2e-llm_chain"].content
    assert result["messages"][-1].content.startswith(f"e2e-tool_agent [success]: {TOOL_ANSWER}")


# ------------------------------------------------------------------------------------------ chats


def test_a_langgraph_thread_is_one_flowise_chat(real_flowise: RealFlowiseState) -> None:
    flow = real_flowise.flows["llm_chain"]
    llm = ChatFlowise(model=flow, base_url=real_flowise.base_url, api_key=real_flowise.api_key, timeout=60)

    def node(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [llm.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("flowise", node)
    graph.add_edge(START, "flowise")
    app = graph.compile(checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": f"e2e-thread-{uuid.uuid4()}"}}
    first = app.invoke({"messages": [HumanMessage("Hello")]}, thread)["messages"][-1]
    second = app.invoke({"messages": [HumanMessage("Hello again")]}, thread)["messages"][-1]
    chat_id = first.response_metadata["chat_id"]
    assert chat_id == second.response_metadata["chat_id"]
    with FlowiseClient(real_flowise.base_url, real_flowise.api_key, timeout=60) as client:
        stored = client.get_chat_messages(flow, chat_id=chat_id)
    assert [m["content"] for m in stored if m["role"] == "userMessage"] == ["Hello", "Hello again"]


# ------------------------------------------------------------------------------------------ abort


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_leaving_an_agentflow_stream_aborts_it(real_flowise: RealFlowiseState, mode: str) -> None:
    needs_agentflow_v2(real_flowise)
    flow = real_flowise.flows["agentflow_v2_llm"]
    llm = ChatFlowise(model=flow, base_url=real_flowise.base_url, api_key=real_flowise.api_key, timeout=60)
    before = _disconnects(real_flowise)
    if mode == "stream":

        def first_token() -> str:
            for chunk in llm.stream("SLOW_STREAM please"):
                if chunk.text:
                    return chunk.text
            return ""

        assert await asyncio.to_thread(first_token)
    else:
        got_one = asyncio.Event()

        async def consume() -> None:
            async for chunk in llm.astream("SLOW_STREAM please"):
                if chunk.text:
                    got_one.set()

        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(got_one.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await _wait_for_upstream_disconnect(real_flowise, before)
    assert (await llm.ainvoke("hi")).content  # the server is fine


async def test_cancelled_tool_call_aborts_its_agentflow(real_flowise: RealFlowiseState) -> None:
    needs_agentflow_v2(real_flowise)
    toolkit = FlowiseToolkit.from_server(
        base_url=real_flowise.base_url,
        api_key=real_flowise.api_key,
        include=[real_flowise.flows["agentflow_v2_llm"]],
        timeout=60,
    )
    (tool,) = toolkit.get_tools()
    before = len(real_flowise.fake_llm_requests())
    task = asyncio.ensure_future(tool.ainvoke({"question": "SLOW_STREAM please"}))
    deadline = time.monotonic() + 30
    while len(real_flowise.fake_llm_requests()) == before:  # the flow reached its model
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    disconnects = _disconnects(real_flowise)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _wait_for_upstream_disconnect(real_flowise, disconnects)


# ------------------------------------------------------------------------------------------ human in the loop


def _review_graph(state: RealFlowiseState) -> Any:
    llm = ChatFlowise(
        model=state.flows[HUMAN_INPUT],
        base_url=state.base_url,
        api_key=state.api_key,
        timeout=60,
        langgraph_interrupts=True,
    )

    def draft_and_send(graph_state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [llm.invoke(graph_state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("flowise", draft_and_send)
    graph.add_edge(START, "flowise")
    return graph.compile(checkpointer=InMemorySaver())


@pytest.mark.parametrize(("answer", "expected"), [({"approve": True}, SENT), ("reject", DISCARDED)])
def test_human_input_through_the_langgraph_bridge(real_flowise: RealFlowiseState, answer: Any, expected: str) -> None:
    needs_agentflow_v2(real_flowise)
    app = _review_graph(real_flowise)
    thread = {"configurable": {"thread_id": f"e2e-review-{uuid.uuid4()}"}}
    paused = app.invoke({"messages": [HumanMessage("Draft the note about the meeting.")]}, thread)
    (pending,) = paused["__interrupt__"]
    assert pending.value["source"] == "flowise" and pending.value["kind"] == "human_input"
    assert REVIEW_PROMPT in pending.value["prompt"]
    assert [d["label"] for d in pending.value["decisions"]] == ["Proceed", "Reject"]
    done = app.invoke(Command(resume=answer), thread)
    assert "__interrupt__" not in done
    final = done["messages"][-1]
    assert final.content == expected and final.response_metadata["finish_reason"] == "stop"


async def test_human_input_resumed_per_call(real_flowise: RealFlowiseState) -> None:
    needs_agentflow_v2(real_flowise)
    llm = ChatFlowise(model=real_flowise.flows[HUMAN_INPUT], base_url=real_flowise.base_url,
                      api_key=real_flowise.api_key, timeout=60)  # fmt: skip
    question = HumanMessage("Draft the note.")
    stopped = await llm.ainvoke([question])
    interrupt = lc.get_interrupt(stopped)
    assert interrupt is not None and interrupt.kind == "human_input"
    assert stopped.response_metadata["finish_reason"] == "stopped"
    chunks = [c async for c in llm.astream([question, stopped], resume={"approve": True, "feedback": "Looks good"})]
    assert "".join(c.text for c in chunks) == SENT
