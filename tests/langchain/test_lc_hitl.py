"""Human in the loop: a Flowise stop in ``response_metadata["interrupt"]``, resumed per call, and the opt-in
LangGraph bridge (a Flowise stop is LangGraph's ``interrupt``; ``Command(resume=...)`` answers the same run)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.types import Command

from flowise_integrations.hitl import Interrupt
from flowise_integrations.langchain import ChatFlowise, get_interrupt
from flowise_integrations.langchain._langgraph import parse_resume
from flowise_integrations.testing import FakeFlow, FakeFlowise
from flowise_integrations.testing.nodes import LLM, Agent, DirectReply, HumanInput

pytestmark = pytest.mark.usefixtures("no_sockets")

MakeLLM = Callable[..., ChatFlowise]
TOOLS = [{"tool": "send_email", "toolInput": {"to": "ada@example.com"}, "toolOutput": "sent"}]


def review_flow(fake: FakeFlowise, *, stops: int = 1) -> str:
    """Drafter -> Human Input "Review" (-> a second review) -> proceed: Sender / reject: Discard."""
    reviews = [
        HumanInput(id=f"humanInputAgentflow_{i}", label=f"Review {i}", description="Send it?") for i in range(stops)
    ]
    nodes = [LLM(id="llmAgentflow_0", label="Drafter", answer="Draft: hi."), *reviews,
             LLM(id="llmAgentflow_1", label="Sender", answer="Sent."), DirectReply(message="Discarded.")]  # fmt: skip
    chain = ["startAgentflow_0", "llmAgentflow_0", *(r.id for r in reviews)]
    edges: list[Any] = list(itertools.pairwise(chain))
    edges[-1] = (*edges[-1], 0) if len(chain) > 3 else edges[-1]
    last = reviews[-1].id
    edges += [(last, "llmAgentflow_1", 0), *((r.id, "directReplyAgentflow_0", 1) for r in reviews)]
    return fake.add_flow(FakeFlow(kind="agentflow", nodes=nodes, edges=edges))


def predictions(fake: FakeFlowise, flow: str) -> list[dict[str, Any]]:
    return [r.json for r in fake.requests if r.path == f"/api/v1/prediction/{flow}"]


# -- per call ---------------------------------------------------------------------------------------------------


def test_a_stop_carries_a_typed_interrupt_and_resumes_per_call(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = review_flow(fake)
    llm = make_llm(flow)
    stopped = llm.invoke("Draft a note.")
    interrupt = get_interrupt(stopped)
    assert isinstance(interrupt, Interrupt) and interrupt is stopped.response_metadata["interrupt"]
    assert (interrupt.kind, interrupt.node_label, interrupt.description) == ("human_input", "Review 0", "Send it?")
    assert stopped.response_metadata["finish_reason"] == "stopped"
    done = llm.invoke([HumanMessage("Draft a note."), stopped], resume={"approve": True, "feedback": "ok"})
    assert done.content == "Sent." and get_interrupt(done) is None
    first, resumed = predictions(fake, flow)
    assert resumed["chatId"] == first["chatId"]
    assert resumed["humanInput"] == {"type": "proceed", "startNodeId": "humanInputAgentflow_0", "feedback": "ok"}
    assert "history" not in resumed  # only the stop's answer is sent


async def test_reject_async_and_streamed(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = review_flow(fake)
    llm = make_llm(flow)
    stopped = await llm.ainvoke("Draft a note.")
    chunks = [c async for c in llm.astream([HumanMessage("Draft a note."), stopped], resume=False)]
    assert "".join(c.text for c in chunks) == "Discarded."
    stopped = llm.invoke("Draft again.")
    assert "".join(c.text for c in llm.stream("ignored", resume="Proceed", interrupt=get_interrupt(stopped))) == "Sent."


def test_the_interrupt_survives_a_checkpointer_as_a_dict(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = review_flow(fake)
    llm = make_llm(flow)
    stopped = llm.invoke("Draft a note.")
    interrupt = get_interrupt(stopped)
    assert interrupt is not None
    as_stored = AIMessage(stopped.content, response_metadata={"interrupt": interrupt.model_dump()})
    assert get_interrupt(as_stored) == interrupt
    assert llm.invoke([HumanMessage("Draft a note."), as_stored], resume=True).content == "Sent."


def test_tool_approval_interrupt_lists_the_pending_calls(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow", nodes=[Agent(label="Mailer", answer="Email sent.", tools=TOOLS,
                                                                 approval=True, declined="Not sent.")]))  # fmt: skip
    llm = make_llm(flow)
    stopped = llm.invoke("Email Ada.")
    interrupt = get_interrupt(stopped)
    assert interrupt is not None and interrupt.kind == "tool_approval"
    assert [(c.name, c.args) for c in interrupt.tool_calls] == [("send_email", {"to": "ada@example.com"})]
    approved = llm.invoke([HumanMessage("Email Ada."), stopped], resume=True)
    assert approved.content == "Email sent." and approved.response_metadata["used_tools"][0]["tool"] == "send_email"


# -- the LangGraph bridge ---------------------------------------------------------------------------------------


def graph_of(llm: ChatFlowise, *, stream: bool = False) -> Any:
    def node(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [llm.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("flowise", node)
    graph.add_edge(START, "flowise")
    return graph.compile(checkpointer=InMemorySaver())


@pytest.mark.parametrize(("answer", "expected"), [(True, "Sent."), ({"approve": False}, "Discarded.")])
def test_bridge_makes_a_flowise_stop_a_langgraph_interrupt(
    fake: FakeFlowise, make_llm: MakeLLM, answer: Any, expected: str
) -> None:
    flow = review_flow(fake)
    app = graph_of(make_llm(flow, langgraph_interrupts=True))
    thread = {"configurable": {"thread_id": "review-1"}}
    paused = app.invoke({"messages": [HumanMessage("Draft a note.")]}, thread)
    (pending,) = paused["__interrupt__"]
    assert pending.value["source"] == "flowise" and pending.value["chatflow_id"] == flow
    assert pending.value["kind"] == "human_input" and pending.value["prompt"] == "Draft: hi.\n\nSend it?"
    assert [d["label"] for d in pending.value["decisions"]] == ["Proceed", "Reject"]
    assert paused["messages"] == [HumanMessage("Draft a note.", id=paused["messages"][0].id)]  # nothing yet
    done = app.invoke(Command(resume=answer), thread)
    assert done["messages"][-1].content == expected and "__interrupt__" not in done
    first, resumed = predictions(fake, flow)  # the question once (never re-run), then the answer
    assert first["question"] == "Draft a note." and "humanInput" in resumed
    assert resumed["chatId"] == first["chatId"]


async def test_bridge_two_stops_streamed(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = review_flow(fake, stops=2)
    app = graph_of(make_llm(flow, langgraph_interrupts=True))
    thread = {"configurable": {"thread_id": "review-2"}}
    seen: list[Any] = []
    async for mode, item in app.astream(
        {"messages": [HumanMessage("Draft.")]}, thread, stream_mode=["updates", "messages"]
    ):
        seen.append((mode, item))
    assert any(mode == "updates" and "__interrupt__" in item for mode, item in seen)
    second = await app.ainvoke(Command(resume="proceed"), thread)
    assert second["__interrupt__"][0].value["node_label"] == "Review 1"
    done = await app.ainvoke(Command(resume={"approve": True, "feedback": "ship it"}), thread)
    assert done["messages"][-1].content == "Sent."
    bodies = predictions(fake, flow)
    # each answer sent exactly once, on the stopped run's chat (Flowise resumes the run's last stopped node)
    assert [b.get("humanInput", {}).get("type") for b in bodies] == [None, "proceed", "proceed"]
    assert bodies[2]["humanInput"]["feedback"] == "ship it"
    assert len({b["chatId"] for b in bodies}) == 1


def test_without_the_bridge_a_graph_gets_the_stop_as_a_message(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = review_flow(fake)
    app = graph_of(make_llm(flow))
    result = app.invoke({"messages": [HumanMessage("Draft.")]}, {"configurable": {"thread_id": "plain"}})
    assert "__interrupt__" not in result and get_interrupt(result["messages"][-1]) is not None


def test_resume_values() -> None:
    interrupt = Interrupt(kind="tool_approval", decisions=[{"value": "proceed", "label": "Yes"},
                                                           {"value": "reject", "label": "No way"}])  # fmt: skip
    assert parse_resume(True) == (True, None)
    assert parse_resume({"approve": False, "feedback": "too long"}) == (False, "too long")
    assert parse_resume({"type": "proceed"}) == (True, None)
    assert parse_resume("No way", interrupt) == (False, None)
    assert parse_resume(" YES ") == (True, None)
    for bad in ("maybe", 3, {"feedback": "x"}):
        with pytest.raises(ValueError):
            parse_resume(bad, interrupt)
