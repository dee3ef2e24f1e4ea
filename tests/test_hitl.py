"""Human in the loop (``flowise_integrations.hitl``): the typed ``Interrupt`` of a stopped run and the body that
resumes it. Payload shapes are those a real Flowise 3.1.4 sends (Human Input and tool-approval stops, JSON and
streamed), and the sequential-agents action of ``buildAgentGraph.ts``."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from flowise_integrations.hitl import (
    Decision,
    Interrupt,
    human_input_body,
    interrupt_from,
    resumed_node,
    run_status,
)
from flowise_integrations.models import HumanInput, PredictionRequest

CAPTURES = Path(__file__).parent / "fixtures" / "real_captures"

BUTTONS = {
    "mapping": {"approve": "Proceed", "reject": "Reject"},
    "elements": [
        {"type": "agentflowv2-approve-button", "label": "Proceed"},
        {"type": "agentflowv2-reject-button", "label": "Reject"},
    ],
}
DRAFT = "Hello from the fake LLM! This answer is streamed token by token."
HI_INPUT = {
    "messages": [{"role": "user", "content": "write a haiku"}, {"role": "user", "content": DRAFT, "name": "writer"}],
    "humanInputEnableFeedback": True,
}
HI_ACTION = {
    "id": "c84c7dc6",
    **BUTTONS,
    "data": {"nodeId": "humanInputAgentflow_0", "nodeLabel": "Review", "input": HI_INPUT},
}
HI_PROMPT = f"{DRAFT}\n\nDo you approve the draft?"

CALL = {"name": "calculator", "args": {"input": "2 + 2"}, "id": "call_77e91dc8", "type": "tool_call"}
CK_TEXT = "\nAttempting to use tool:\n```json\n" + json.dumps(CALL, indent=2) + "\n```"
CHECKPOINT = [
    {"role": "system", "content": "You have a calculator."},
    {"role": "user", "content": "what is 2 + 2?"},
    {
        "role": "assistant",
        "content": CK_TEXT,
        "tool_calls": [CALL],
        "usage_metadata": {"input_tokens": 10, "output_tokens": 12, "total_tokens": 22},
        "id": "chatcmpl-454e9e17ba14",
    },
]
AGENT_INPUT = {
    "messages": CHECKPOINT,
    "agentModel": "chatOpenAI",
    "agentTools": [
        {
            "agentSelectedTool": "calculator",
            "agentSelectedToolRequiresHumanInput": True,
            "agentSelectedToolConfig": {"agentSelectedTool": "calculator"},
        },
        {"agentSelectedTool": "currentDateTime", "agentSelectedToolRequiresHumanInput": ""},
    ],
}
AGENT_ACTION = {
    "id": "a57acb05",
    **BUTTONS,
    "data": {"nodeId": "agentAgentflow_0", "nodeLabel": "Careful Calculator", "input": AGENT_INPUT},
}
START = {
    "nodeId": "startAgentflow_0",
    "nodeLabel": "Start",
    "status": "FINISHED",
    "data": {"id": "startAgentflow_0", "name": "startAgentflow", "input": {}, "output": {}},
}


def hi_stopped() -> list[dict[str, Any]]:
    """The executed data of a run stopped at a Human Input node (3.1.4)."""
    return [
        START,
        {"nodeId": "llmAgentflow_0", "nodeLabel": "Writer", "status": "FINISHED", "data": {"name": "llmAgentflow"}},
        {
            "nodeId": "humanInputAgentflow_0",
            "nodeLabel": "Review",
            "status": "STOPPED",
            "previousNodeIds": ["llmAgentflow_0"],
            "data": {
                "id": "humanInputAgentflow_0",
                "name": "humanInputAgentflow",
                "input": HI_INPUT,
                "output": {"content": HI_PROMPT, "humanInputAction": HI_ACTION},
                "chatHistory": [{"role": "assistant", "content": HI_PROMPT}],
            },
        },
    ]


def agent_stopped() -> list[dict[str, Any]]:
    """The executed data of an Agent stopped before a tool that requires approval (3.1.4)."""
    return [
        START,
        {
            "nodeId": "agentAgentflow_0",
            "nodeLabel": "Careful Calculator",
            "status": "STOPPED",
            "data": {
                "id": "agentAgentflow_0",
                "name": "agentAgentflow",
                "input": AGENT_INPUT,
                "output": {
                    "content": CK_TEXT,
                    "calledTools": [CALL],
                    "usageMetadata": {"input_tokens": 10, "output_tokens": 12, "total_tokens": 44},
                    "availableTools": [
                        {"name": "calculator", "toolNode": {"label": "Calculator", "name": "calculator"}},
                        {"name": "current_date_time", "toolNode": {"name": "currentDateTime"}},
                    ],
                    "isWaitingForHumanInput": True,
                    "humanInputAction": AGENT_ACTION,
                },
            },
        },
    ]


# ------------------------------------------------------------------------------------------- human input


@pytest.mark.parametrize("where", ["json 3.1.2+", "stream action event", "metadata string", "executed data only"])
def test_human_input_stop(where: str) -> None:
    executed = hi_stopped()
    if where == "json 3.1.2+":
        interrupt = interrupt_from(HI_ACTION, executed, execution_id="ab52352f", chat_id="c1", session_id="c1")
    elif where == "stream action event":
        interrupt = interrupt_from(HI_ACTION, executed, status="STOPPED", text=HI_PROMPT)
    elif where == "metadata string":  # a chat-message row keeps the action as a JSON string
        interrupt = interrupt_from(json.dumps(HI_ACTION), None, text=HI_PROMPT)
    else:  # before 3.1.2 the action is only the STOPPED node's output.humanInputAction
        interrupt = interrupt_from(None, executed)
    assert interrupt is not None
    assert (interrupt.kind, interrupt.protocol) == ("human_input", "agentflow_v2")
    assert (interrupt.node_id, interrupt.node_label) == ("humanInputAgentflow_0", "Review")
    assert interrupt.prompt == HI_PROMPT
    assert interrupt.description == "Do you approve the draft?"  # fixed mode repeats the previous message first
    assert interrupt.decisions == [Decision(value="proceed", label="Proceed"), Decision(value="reject", label="Reject")]
    assert interrupt.feedback_enabled is True
    assert interrupt.tool_calls == []
    assert interrupt.status == "STOPPED"
    assert interrupt.action_id == "c84c7dc6"
    assert interrupt.action["data"]["nodeId"] == "humanInputAgentflow_0"
    if where == "json 3.1.2+":
        assert (interrupt.execution_id, interrupt.chat_id, interrupt.session_id) == ("ab52352f", "c1", "c1")


def test_human_input_resume_body_matches_flowises_ui() -> None:
    interrupt = interrupt_from(HI_ACTION, hi_stopped())
    assert interrupt is not None
    assert interrupt.resume_fields(approve=True, feedback="looks good") == {
        "question": "looks good",
        "humanInput": {"type": "proceed", "startNodeId": "humanInputAgentflow_0", "feedback": "looks good"},
    }
    assert interrupt.resume_fields(approve=False) == {
        "question": "Reject",
        "humanInput": {"type": "reject", "startNodeId": "humanInputAgentflow_0"},
    }
    body = PredictionRequest(human_input=interrupt.human_input(approve=True), chat_id="c1").to_body()
    assert body == {"chatId": "c1", "humanInput": {"type": "proceed", "startNodeId": "humanInputAgentflow_0"}}


def test_human_input_body() -> None:
    assert human_input_body("n1", approve=True) == {"type": "proceed", "startNodeId": "n1"}
    assert human_input_body(None, approve=False, feedback="no") == {"type": "reject", "feedback": "no"}
    assert human_input_body("", approve=False, feedback="") == {"type": "reject"}
    # the same wire shape as the request model's HumanInput
    typed = HumanInput(type="proceed", start_node_id="n1", feedback="ok").model_dump(by_alias=True)
    assert human_input_body("n1", approve=True, feedback="ok") == typed


def test_dynamic_description_is_the_whole_prompt() -> None:
    executed = hi_stopped()
    executed[-1]["data"]["output"]["content"] = "Shall I publish the haiku?"
    interrupt = interrupt_from(None, executed)
    assert interrupt is not None
    assert interrupt.description == "Shall I publish the haiku?"


# ------------------------------------------------------------------------------------------ tool approval


@pytest.mark.parametrize("with_executed", [True, False])
def test_tool_approval_stop(with_executed: bool) -> None:
    interrupt = interrupt_from(AGENT_ACTION, agent_stopped() if with_executed else None, text=CK_TEXT)
    assert interrupt is not None
    assert (interrupt.kind, interrupt.node_id, interrupt.node_label) == (
        "tool_approval",
        "agentAgentflow_0",
        "Careful Calculator",
    )
    assert interrupt.prompt == CK_TEXT
    assert interrupt.description is None
    assert interrupt.feedback_enabled is False  # the Agent ignores feedback on resume
    [call] = interrupt.tool_calls
    assert (call.name, call.args, call.id, call.requires_approval) == (
        "calculator",
        {"input": "2 + 2"},
        CALL["id"],
        True,
    )
    assert call.model_extra == {"type": "tool_call"}
    assert interrupt.checkpoint_messages == CHECKPOINT
    assert interrupt.resume_fields(approve=True)["humanInput"] == {"type": "proceed", "startNodeId": "agentAgentflow_0"}


def test_tool_names_map_to_their_component_for_the_approval_flag() -> None:
    executed = agent_stopped()
    other = {"name": "current_date_time", "args": {}, "id": "call_2"}
    executed[-1]["data"]["output"]["calledTools"] = [CALL, other]
    interrupt = interrupt_from(None, executed)
    assert interrupt is not None
    assert [(c.name, c.requires_approval) for c in interrupt.tool_calls] == [
        ("calculator", True),
        ("current_date_time", False),
    ]


def test_sequential_agents_interrupt() -> None:
    action = {
        "id": "s1",
        "mapping": {"approve": "Yes, go", "reject": "Stop", "toolCalls": [{"name": "search", "args": {"q": "x"}}]},
        "elements": [{"type": "approve-button", "label": "Yes, go"}, {"type": "reject-button", "label": "Stop"}],
    }
    interrupt = interrupt_from(action, None, text="Do you want to proceed?")
    assert interrupt is not None
    assert (interrupt.kind, interrupt.protocol, interrupt.node_id) == ("tool_approval", "sequential_agents", None)
    assert interrupt.prompt == "Do you want to proceed?"
    assert [(c.name, c.args, c.requires_approval) for c in interrupt.tool_calls] == [("search", {"q": "x"}, None)]
    assert [d.label for d in interrupt.decisions] == ["Yes, go", "Stop"]
    assert interrupt.resume_fields(approve=False) == {"question": "Stop", "action": action}
    default = interrupt_from({"id": "s2", "mapping": {"toolCalls": []}}, None)
    assert default is not None
    assert [d.label for d in default.decisions] == ["Yes", "No"]


# ------------------------------------------------------------------------------------------------ no stop


@pytest.mark.parametrize(
    "name", ["agentflow_v2_llm_nonstream", "agentflow_v2_agent_tool_stream", "llm_chain_stream", "tool_agent_nonstream"]
)
def test_real_runs_that_did_not_stop(name: str) -> None:
    head, _, body = (CAPTURES / f"{name}.txt").read_bytes().partition(b"\r\n\r\n")
    if b"text/event-stream" in head:
        events = [json.loads(line[5:]) for line in body.split(b"\n") if line.startswith(b"data:")]
        action = next((e["data"] for e in events if e["event"] == "action"), None)
        executed = next((e["data"] for e in reversed(events) if e["event"] == "agentFlowExecutedData"), None)
        status = next((e["data"] for e in reversed(events) if e["event"] == "agentFlowEvent"), None)
    else:
        reply = json.loads(body)
        action, executed, status = reply.get("action"), reply.get("agentFlowExecutedData"), None
    assert interrupt_from(action, executed, status=status) is None
    assert run_status(executed) in (None, "FINISHED")


def test_a_finished_status_without_action_is_no_interrupt() -> None:
    assert interrupt_from(None, hi_stopped(), status="FINISHED") is None
    assert interrupt_from({}, [], status="STOPPED") is None


def test_run_status_follows_flowise() -> None:
    assert run_status(hi_stopped()) == "STOPPED"
    assert run_status([START]) == "FINISHED"
    assert run_status([*hi_stopped(), {"status": "ERROR"}]) == "ERROR"
    assert run_status([{"status": "ERROR"}, {"status": "TERMINATED"}]) == "TERMINATED"
    assert run_status([]) is None
    assert run_status("nope") is None


def resumed(node_id: str, node_input: dict[str, Any]) -> dict[str, Any]:
    return {"nodeId": node_id, "status": "FINISHED", "data": {"id": node_id, "input": node_input, "output": {}}}


def test_resumed_node_is_flowises_marker() -> None:
    agent = resumed("agentAgentflow_0", {"humanInput": {"type": "proceed", "startNodeId": "agentAgentflow_0"}})
    hi = resumed("humanInputAgentflow_0", {"type": "reject", "startNodeId": "humanInputAgentflow_0", "messages": []})
    hi_later = resumed("humanInputAgentflow_1", {"type": "proceed", "startNodeId": "humanInputAgentflow_1"})
    assert resumed_node([START, agent]) == "agentAgentflow_0"
    assert resumed_node([START, hi, {"nodeId": "llmAgentflow_2", "data": {}}]) == "humanInputAgentflow_0"
    # a second resume replays the first one's marked node first: the last marker is this run's
    assert resumed_node([START, hi, hi_later]) == "humanInputAgentflow_1"
    assert resumed_node(hi_stopped()) is None
    assert resumed_node([resumed("x", {"type": "proceed", "startNodeId": "y"})]) is None
    assert resumed_node([resumed("x", {"humanInput": {"type": "maybe", "startNodeId": "x"}})]) is None
    assert resumed_node(None) is None


def test_repr_leaves_the_raw_payloads_out() -> None:
    interrupt = interrupt_from(AGENT_ACTION, agent_stopped())
    assert interrupt is not None
    assert "You have a calculator." not in repr(interrupt)
    assert "Careful Calculator" in repr(interrupt)


def test_label_falls_back_to_flowises_defaults() -> None:
    assert Interrupt(kind="human_input").label(True) == "Proceed"
    assert Interrupt(kind="human_input").label(False) == "Reject"


# ----------------------------------------------------------------------------------------------- properties

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(
    [
        "id",
        "data",
        "mapping",
        "elements",
        "type",
        "label",
        "nodeId",
        "nodeLabel",
        "input",
        "output",
        "status",
        "messages",
        "calledTools",
        "tool_calls",
        "toolCalls",
        "humanInputAction",
        "agentTools",
        "availableTools",
        "content",
        "name",
    ]
)
SHAPED = st.recursive(
    st.none() | st.integers() | st.sampled_from(["STOPPED", "agentAgentflow_0", "approve-button", "assistant", ""]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=3), inner, max_size=6),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(action=JSON | SHAPED, executed=JSON | SHAPED, status=st.none() | st.sampled_from(["STOPPED", "FINISHED", "x"]))
@example(action=None, executed=[{"status": []}], status=None)
def test_never_raises_on_odd_payloads(action: Any, executed: Any, status: str | None) -> None:
    interrupt = interrupt_from(action, executed, status=status, text="t")
    run_status(executed)
    resumed_node(executed)
    if interrupt is not None:
        assert [d.value for d in interrupt.decisions] == ["proceed", "reject"]
        body = interrupt.resume_fields(approve=True, feedback="f")
        assert body["question"]
        json.dumps(body)  # always sendable


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_every_real_shaped_stop_survives_missing_parts(data: st.DataObject) -> None:
    """Drop any subset of keys from a real stop: still an Interrupt (or None), never an exception."""
    executed = copy.deepcopy(data.draw(st.sampled_from([hi_stopped(), agent_stopped()])))
    node = executed[-1]
    for container in (node, node["data"], node["data"]["output"], node["data"]["input"]):
        for key in list(container):
            if data.draw(st.booleans()):
                container[key] = data.draw(JSON)
    interrupt_from(data.draw(st.none() | st.just(HI_ACTION) | st.just(AGENT_ACTION)), executed)
