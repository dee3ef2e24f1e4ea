"""Agentflow V2 on the real Flowise through the core client: human in the loop, tool approval, branches, loops, forms.

Flows from ``flows_agents.py``; every model node is scripted (``REPLY_WITH``/``USAGE`` in its system message),
so each test knows the exact text and, from the fake model's own log, the exact usage of every model call.
Each behaviour runs in the four client modes (``predict``/``stream``, sync/async). The wire format is used
as it is (``human_input={"type", "startNodeId", "feedback"}``); the typed API (``prediction.interrupt``,
``client.resume``) has its own tests at the end.
"""

from __future__ import annotations

from typing import Any

import flows_agents as fa
import pytest
from agents_support import (
    Counts,
    billed,
    conversation,
    event_names,
    log_mark,
    model_replies,
    needs_agentflow_v2,
    needs_model_log,
    reported,
    statuses,
)
from e2e_support import MODES, Outcome, is_streaming_mode, llm_chat_requests, message_texts, run_client
from harness import RealFlowiseState

from flowise_integrations import (
    AsyncFlowiseClient,
    FlowExecutionError,
    FlowiseClient,
    NotResumableError,
    Prediction,
)

pytestmark = pytest.mark.timeout(120)

HUMAN_NODE = "humanInputAgentflow_0"
AGENT_NODE = "agentAgentflow_0"
STOP_TEXT = f"{fa.DRAFT}\n\n{fa.REVIEW_PROMPT}"


@pytest.fixture
def v2(real_flowise: RealFlowiseState) -> RealFlowiseState:
    """The server, when it has Agentflow V2 and a fake-model log."""
    needs_agentflow_v2(real_flowise)
    needs_model_log(real_flowise)
    return real_flowise


def flow_id(state: RealFlowiseState, name: str) -> str:
    return state.flows[name]


def executed_nodes(result: Prediction) -> list[tuple[str, str]]:
    return [(str(n.get("nodeId")), str(n.get("status"))) for n in result.agent_flow_executed_data]


def assert_usage_is_billed(state: RealFlowiseState, since: int, result: Prediction, expected: Counts) -> None:
    """The prediction's usage is exactly what the fake model billed for this request, and that is ``expected``."""
    assert billed(model_replies(state, since)) == expected
    assert reported(result) == expected


async def call(state: RealFlowiseState, mode: str, flow: str, question: str | None, **options: Any) -> Outcome:
    return await run_client(state, mode, flow_id(state, flow), question, **options)


def assert_stopped_stream(out: Outcome, node: str) -> None:
    """A stopped stream: ``nextAgentFlow STOPPED``, executed data, ``agentFlowEvent STOPPED``, ``action``, the
    second ``agentFlowEvent STOPPED``, ``metadata`` (with the action), ``end``."""
    names = event_names(out.events)
    assert names[-7:] == [
        "nextAgentFlow",
        "agentFlowExecutedData",
        "agentFlowEvent",
        "action",
        "agentFlowEvent",
        "metadata",
        "end",
    ]
    assert statuses(out.events, "agentFlowEvent") == ["INPROGRESS", "STOPPED", "STOPPED"]
    data: list[Any] = [e.data for e in out.events]
    assert data[-7]["status"] == "STOPPED" and data[-7]["nodeId"] == node
    assert data[-2]["action"] == data[-4]  # metadata repeats the action (3.1.2+)


# ------------------------------------------------------------------------------------------ Human Input


@pytest.mark.parametrize("decision", ["proceed", "reject"])
@pytest.mark.parametrize("by", ["chat", "session"])
@pytest.mark.parametrize("mode", MODES)
async def test_human_input_stops_then_resumes(v2: RealFlowiseState, mode: str, by: str, decision: str) -> None:
    ids = conversation(by, f"hi-{decision}")
    question = fa.SAMPLE_INPUTS[fa.HUMAN_INPUT]["question"]

    mark = log_mark(v2)
    stop = await call(v2, mode, fa.HUMAN_INPUT, question, **ids)
    stopped = stop.result
    assert stopped.text == STOP_TEXT  # the Drafter's answer, re-streamed by the Human Input node, + its prompt
    assert stopped.finish_reason == "stopped" and stopped.agent_flow_status == "STOPPED"
    assert stopped.action is not None and stopped.action["data"]["nodeId"] == HUMAN_NODE
    assert stopped.action["mapping"] == {"approve": "Proceed", "reject": "Reject"}
    assert executed_nodes(stopped) == [
        ("startAgentflow_0", "FINISHED"),
        ("llmAgentflow_0", "FINISHED"),
        (HUMAN_NODE, "STOPPED"),
    ]
    assert_usage_is_billed(v2, mark, stopped, (11, 13, 24))  # the Drafter only
    if is_streaming_mode(mode):
        assert_stopped_stream(stop, HUMAN_NODE)
    expected_session = ids.get("chat_id") or ids["session_id"]
    assert stopped.session_id == expected_session and stopped.chat_id == expected_session

    feedback = "Looks good" if decision == "proceed" else "Not this one"
    human_input = {"type": decision, "startNodeId": HUMAN_NODE, "feedback": feedback}
    mark = log_mark(v2)
    resume = await call(v2, mode, fa.HUMAN_INPUT, feedback, human_input=human_input, **ids)
    resumed = resume.result
    assert resumed.finish_reason == "stop" and resumed.agent_flow_status == "FINISHED"
    assert resumed.action is None
    replies = model_replies(v2, mark)
    if decision == "proceed":
        assert resumed.text == fa.SENT
        assert [r["text"] for r in replies] == [fa.SENT]
        sent_to_model = message_texts(llm_chat_requests(v2, mark)[0]["messages"])
        assert feedback in sent_to_model  # the feedback reached the next node as a user message
        assert_usage_is_billed(v2, mark, resumed, (17, 19, 36))  # not the Drafter's 24 from before the stop
    else:
        assert resumed.text == fa.DISCARDED  # a Direct Reply: no model call at all
        assert replies == []
        assert reported(resumed) == (0, 0, 0)
    branch = "llmAgentflow_1" if decision == "proceed" else "directReplyAgentflow_0"
    # the resumed run's executed data starts with the nodes run before the stop
    assert executed_nodes(resumed) == [
        ("startAgentflow_0", "FINISHED"),
        ("llmAgentflow_0", "FINISHED"),
        (HUMAN_NODE, "FINISHED"),
        (branch, "FINISHED"),
    ]
    if not is_streaming_mode(mode):
        assert resumed.execution_id == stopped.execution_id  # the same Execution, resumed


@pytest.mark.parametrize("mode", MODES)
async def test_execution_id_is_known_in_every_mode(v2: RealFlowiseState, mode: str) -> None:
    """Flowise sends ``executionId`` only in JSON replies; a stream's result should still name its execution."""
    out = await call(v2, mode, fa.HUMAN_INPUT, "Draft it", **conversation("chat", "exec"))
    assert out.result.finish_reason == "stopped"
    assert out.result.execution_id
    assert out.result.interrupt is not None and out.result.interrupt.execution_id == out.result.execution_id


@pytest.mark.parametrize("mode", MODES)
async def test_resuming_a_finished_run_is_refused(v2: RealFlowiseState, mode: str) -> None:
    ids = conversation("session", "finished")
    stop = await call(v2, "predict", fa.HUMAN_INPUT, "Draft it", **ids)
    assert stop.result.finish_reason == "stopped"
    done = await call(v2, "predict", fa.HUMAN_INPUT, None, human_input={"type": "proceed"}, **ids)
    assert done.result.text == fa.SENT  # no question, no startNodeId: Flowise resumes the last STOPPED node
    with pytest.raises(NotResumableError) as caught:
        await call(v2, mode, fa.HUMAN_INPUT, "again", human_input={"type": "proceed"}, **ids)
    assert "Cannot resume execution" in caught.value.message and "'FINISHED' state" in caught.value.message


@pytest.mark.parametrize("mode", MODES)
async def test_resuming_an_unknown_session_is_refused(v2: RealFlowiseState, mode: str) -> None:
    with pytest.raises(NotResumableError) as caught:
        await call(v2, mode, fa.HUMAN_INPUT, "Proceed", human_input={"type": "proceed"}, **conversation("chat", "x"))
    assert "No previous execution found for session" in caught.value.message


# ------------------------------------------------------------------------------------------ tool approval


@pytest.mark.parametrize("decision", ["proceed", "reject"])
@pytest.mark.parametrize("mode", MODES)
async def test_tool_approval_stops_then_resumes(v2: RealFlowiseState, mode: str, decision: str) -> None:
    ids = conversation("chat", f"ta-{decision}")
    mark = log_mark(v2)
    stop = await call(v2, mode, fa.TOOL_APPROVAL, "what is 2 + 2?", **ids)
    stopped = stop.result
    assert stopped.finish_reason == "stopped" and stopped.agent_flow_status == "STOPPED"
    assert "Attempting to use tool:" in stopped.text and '"name": "calculator"' in stopped.text
    assert stopped.action is not None and stopped.action["data"]["nodeId"] == AGENT_NODE
    assert [t.tool for t in stopped.used_tools] == []  # announced, not run
    assert_usage_is_billed(v2, mark, stopped, (7, 3, 10))  # the one tool-call reply
    if is_streaming_mode(mode):
        assert_stopped_stream(stop, AGENT_NODE)
        assert [t.tool for t in stopped.called_tools] == ["calculator"]

    mark = log_mark(v2)
    human_input = {"type": decision, "startNodeId": AGENT_NODE}
    question = "Proceed" if decision == "proceed" else "Reject"
    resumed = (await call(v2, mode, fa.TOOL_APPROVAL, question, human_input=human_input, **ids)).result
    assert resumed.finish_reason == "stop" and resumed.agent_flow_status == "FINISHED"
    assert_usage_is_billed(v2, mark, resumed, (13, 11, 24))  # the answer only, not the tool call before the stop
    requests = llm_chat_requests(v2, mark)
    assert len(requests) == 1
    if decision == "proceed":
        assert resumed.text == fa.TOOL_ANSWER
        assert [(t.tool, t.tool_input, t.tool_output) for t in resumed.used_tools] == [
            ("calculator", {"input": "2 + 2"}, "4")
        ]
        assert any(m.get("role") == "tool" for m in requests[0]["messages"])
    else:
        assert resumed.text == fa.TOOL_DECLINED
        assert resumed.used_tools == []
        assert not requests[0].get("tools")  # the rejected tool is no longer offered
    # the STOPPED Agent is replaced by the resumed one
    assert executed_nodes(resumed) == [("startAgentflow_0", "FINISHED"), (AGENT_NODE, "FINISHED")]


# ------------------------------------------------------------------------------------------ branches, loops


@pytest.mark.parametrize(("question", "text", "node", "usage"), [
    (fa.SAMPLE_INPUTS[fa.CONDITION]["question"], fa.WEATHER, "llmAgentflow_0", (5, 3, 8)),
    ("Tell me a joke.", fa.GENERAL, "llmAgentflow_1", (6, 4, 10)),
], ids=["condition-true", "else"])  # fmt: skip
@pytest.mark.parametrize("mode", MODES)
async def test_condition_takes_one_branch(
    v2: RealFlowiseState, mode: str, question: str, text: str, node: str, usage: Counts
) -> None:
    mark = log_mark(v2)
    result = (await call(v2, mode, fa.CONDITION, question)).result
    assert result.text == text and result.finish_reason == "stop"
    assert executed_nodes(result) == [
        ("startAgentflow_0", "FINISHED"),
        ("conditionAgentflow_0", "FINISHED"),
        (node, "FINISHED"),
    ]
    outcome = result.agent_flow_executed_data[1]["data"]["output"]["conditions"]
    assert [bool(c.get("isFulfilled")) for c in outcome] == [node == "llmAgentflow_0", node == "llmAgentflow_1"]
    assert_usage_is_billed(v2, mark, result, usage)


@pytest.mark.parametrize("mode", MODES)
async def test_iteration_runs_its_block_per_item(v2: RealFlowiseState, mode: str) -> None:
    mark = log_mark(v2)
    out = await call(v2, mode, fa.ITERATION, fa.SAMPLE_INPUTS[fa.ITERATION]["question"])
    result = out.result
    items = [f"item {v}" for v in fa.ITERATION_ITEMS]
    assert [r["text"] for r in model_replies(v2, mark)] == items  # {{ $iteration.item }} reached the model
    assert_usage_is_billed(v2, mark, result, (9, 6, 15))  # three calls of (3, 2)
    children = [n for n in result.agent_flow_executed_data if n["data"].get("parentNodeId") == "iterationAgentflow_0"]
    assert [n["data"]["iterationIndex"] for n in children] == [0, 1, 2]
    assert [n["data"]["output"]["content"] for n in children] == items
    assert result.finish_reason == "stop"
    if is_streaming_mode(mode):  # Flowise streams no token for an Iteration block (its nodes are never "last")
        assert "token" not in event_names(out.events)
    assert result.text == "\n".join(items)


@pytest.mark.parametrize("mode", MODES)
async def test_loop_runs_until_its_limit(v2: RealFlowiseState, mode: str) -> None:
    mark = log_mark(v2)
    result = (await call(v2, mode, fa.LOOP, fa.SAMPLE_INPUTS[fa.LOOP]["question"])).result
    assert result.text == fa.LOOP_FALLBACK and result.finish_reason == "stop"
    assert [n for n, _ in executed_nodes(result)] == [
        "startAgentflow_0",
        "llmAgentflow_0",
        "loopAgentflow_0",
        "llmAgentflow_0",
        "loopAgentflow_0",
    ]
    assert [r["text"] for r in model_replies(v2, mark)] == [fa.LOOP_DRAFT] * fa.LOOP_MAX
    assert_usage_is_billed(v2, mark, result, (8, 12, 20))  # two calls of (4, 6)


# ------------------------------------------------------------------------------------------ forms


@pytest.mark.parametrize("mode", MODES)
async def test_form_input_reaches_the_model(v2: RealFlowiseState, mode: str) -> None:
    mark = log_mark(v2)
    result = (await call(v2, mode, fa.FORM, None, form=fa.SAMPLE_INPUTS[fa.FORM]["form"])).result
    assert result.text == "Hello Ada, age 36, plan pro, subscribed true."
    assert result.finish_reason == "stop"
    start = result.agent_flow_executed_data[0]["data"]
    assert start["input"]["form"]["title"] == fa.FORM_TITLE
    assert_usage_is_billed(v2, mark, result, (8, 9, 17))


async def test_form_and_question_together_are_refused(v2: RealFlowiseState) -> None:
    with pytest.raises(FlowExecutionError) as caught:
        await call(v2, "predict", fa.FORM, "hi", form=fa.SAMPLE_INPUTS[fa.FORM]["form"])
    assert "Question and form cannot be provided at the same time" in caught.value.message


def test_form_fields_are_discovered(v2: RealFlowiseState) -> None:
    with FlowiseClient(v2.base_url, v2.api_key, timeout=30) as client:
        info = client.get_flow(flow_id(v2, fa.FORM))
    assert info.type == "AGENTFLOW" and info.input_type == "form" and info.form_title == fa.FORM_TITLE
    assert [(f.name, f.type) for f in info.form_fields] == [(f["name"], f["type"]) for f in fa.FORM_FIELDS]
    assert next(f for f in info.form_fields if f.name == "plan").options == ["basic", "pro"]


# ------------------------------------------------------------------------------------------ typed API


async def typed_resume(
    state: RealFlowiseState, mode: str, flow: str, *, approve: bool, feedback: str | None = None, **options: Any
) -> Prediction:
    """``client.resume`` / ``resume_stream`` in ``mode`` (sync calls run in a thread)."""
    import asyncio

    fid = flow_id(state, flow)
    if mode in ("predict", "stream"):

        def sync() -> Prediction:
            with FlowiseClient(state.base_url, state.api_key, timeout=30) as client:
                if mode == "predict":
                    return client.resume(fid, approve=approve, feedback=feedback, **options)
                with client.resume_stream(fid, approve=approve, feedback=feedback, **options) as stream:
                    list(stream)
                return stream.result

        return await asyncio.to_thread(sync)
    async with AsyncFlowiseClient(state.base_url, state.api_key, timeout=30) as aclient:
        if mode == "apredict":
            return await aclient.resume(fid, approve=approve, feedback=feedback, **options)
        async with aclient.resume_stream(fid, approve=approve, feedback=feedback, **options) as astream:
            async for _ in astream:
                pass
        return astream.result


@pytest.mark.parametrize("mode", MODES)
async def test_human_input_through_interrupt_and_resume(v2: RealFlowiseState, mode: str) -> None:
    stopped = (await call(v2, mode, fa.HUMAN_INPUT, "Draft it", **conversation("session", "typed"))).result
    interrupt = stopped.interrupt
    assert interrupt is not None
    assert (interrupt.kind, interrupt.node_id, interrupt.node_label) == ("human_input", HUMAN_NODE, "Review")
    assert interrupt.description == fa.REVIEW_PROMPT and interrupt.feedback_enabled
    assert [d.value for d in interrupt.decisions] == ["proceed", "reject"]
    mark = log_mark(v2)
    resumed = await typed_resume(v2, mode, fa.HUMAN_INPUT, approve=True, feedback="Ship it", interrupt=interrupt)
    assert resumed.text == fa.SENT and resumed.interrupt is None
    assert "Ship it" in message_texts(llm_chat_requests(v2, mark)[0]["messages"])
    assert_usage_is_billed(v2, mark, resumed, (17, 19, 36))


@pytest.mark.parametrize("mode", MODES)
async def test_tool_approval_through_interrupt_and_resume_by_chat_id(v2: RealFlowiseState, mode: str) -> None:
    ids = conversation("chat", "typed-ta")
    stopped = (await call(v2, mode, fa.TOOL_APPROVAL, "what is 2 + 2?", **ids)).result
    interrupt = stopped.interrupt
    assert interrupt is not None and interrupt.kind == "tool_approval" and interrupt.node_id == AGENT_NODE
    assert [(c.name, c.args) for c in interrupt.tool_calls] == [("calculator", {"input": "2 + 2"})]
    mark = log_mark(v2)
    resumed = await typed_resume(v2, mode, fa.TOOL_APPROVAL, approve=False, **ids)  # ids only, no interrupt
    assert resumed.text == fa.TOOL_DECLINED and resumed.used_tools == []
    assert_usage_is_billed(v2, mark, resumed, (13, 11, 24))
