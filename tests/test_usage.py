"""Billable usage of one request (``flowise_integrations.usage``): real captures, resumed runs, and a model of
how Flowise 3.x records an agentflow's model calls (``packages/components/nodes/agentflow/{LLM,Agent}``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_hitl import REAL_314  # real Flowise 3.1.4 stop / resume exchanges (see there)

from flowise_integrations.hitl import interrupt_from
from flowise_integrations.models import Usage
from flowise_integrations.usage import NodeUsage, normalize_usage, request_usage, sum_usage, usage_breakdown

CAPTURES = Path(__file__).parent / "fixtures" / "real_captures"


def capture(name: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """A real capture: the JSON body (or ``None``), and the stream's events (or ``[]``)."""
    head, _, body = (CAPTURES / f"{name}.txt").read_bytes().partition(b"\r\n\r\n")
    if b"text/event-stream" in head:
        return None, [json.loads(line[5:]) for line in body.split(b"\n") if line.startswith(b"data:")]
    return json.loads(body), []


def last_executed(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    snapshots = [e["data"] for e in events if e["event"] == "agentFlowExecutedData"]
    return snapshots[-1] if snapshots else []


def streamed(events: list[dict[str, Any]]) -> list[Any]:
    return [e["data"] for e in events if e["event"] == "usageMetadata"]


def figures(usage: Usage | None) -> tuple[int, int, int] | None:
    return None if usage is None else (usage.input_tokens, usage.output_tokens, usage.total_tokens)


# ----------------------------------------------------------------------------------------- real captures


def test_agent_with_a_tool_counts_both_model_calls() -> None:
    body, _ = capture("agentflow_v2_agent_tool_nonstream")
    assert body is not None
    nodes = usage_breakdown(body["agentFlowExecutedData"])
    agent = next(n for n in nodes if n.node_name == "agentAgentflow")
    # the fake model answers every call with 10 in / 12 out: one call asked for the calculator, one answered
    assert [figures(c) for c in agent.calls] == [(10, 12, 22), (10, 12, 22)]
    # Flowise's own node figure stays available as it was sent (10 / 12 / 66, tool_call_tokens 44)
    assert agent.flowise is not None
    assert (agent.flowise["total_tokens"], agent.flowise["tool_call_tokens"]) == (66, 44)
    assert figures(request_usage(body["agentFlowExecutedData"], None)) == (20, 24, 44)


def test_agent_with_a_tool_streamed_gives_the_same_numbers_as_json() -> None:
    body, _ = capture("agentflow_v2_agent_tool_nonstream")
    _, events = capture("agentflow_v2_agent_tool_stream")
    assert body is not None
    from_json = request_usage(body["agentFlowExecutedData"], None)
    from_stream = request_usage(last_executed(events), streamed(events))
    assert figures(from_stream) == figures(from_json) == (20, 24, 44)
    # the stream's own usageMetadata events describe the answering call only
    assert figures(request_usage([], streamed(events))) == (10, 12, 22)


@pytest.mark.parametrize("name", ["agentflow_v2_llm_nonstream", "agentflow_v2_llm_stream"])
def test_llm_node_is_one_call(name: str) -> None:
    body, events = capture(name)
    executed = body["agentFlowExecutedData"] if body else last_executed(events)
    usage = request_usage(executed, streamed(events))
    assert figures(usage) == (10, 12, 22)
    assert [len(n.calls) for n in usage_breakdown(executed)] == [0, 1]  # Start, LLM


@pytest.mark.parametrize(
    "name", ["llm_chain_nonstream", "llm_chain_stream", "tool_agent_nonstream", "conversation_chain_stream"]
)
def test_classic_chatflows_report_no_usage(name: str) -> None:
    body, events = capture(name)
    executed = (body or {}).get("agentFlowExecutedData") or last_executed(events)
    assert request_usage(executed, streamed(events)) is None


def real(name: str) -> tuple[list[Any], list[Any]]:
    cap = REAL_314[name]
    return cap["agentFlowExecutedData"], cap.get("usageMetadata") or []


@pytest.mark.parametrize(
    ("stop", "resume"),
    [
        ("hi_stop_json", "hi_proceed_json"),
        ("hi_stop_session_stream", "hi_reject_session_stream"),
        ("ap_stop_json", "ap_proceed_json"),
        ("ap_stop2_stream", "ap_reject_stream"),
        ("two_stop1_json", "two_resume1_json"),
    ],
)
def test_real_stop_and_resume_each_count_their_own_model_calls(stop: str, resume: str) -> None:
    executed, events = real(stop)
    # every call the fake model answered is 10 in / 12 out
    assert figures(request_usage(executed, events)) == (10, 12, 22) == (10, 12, 22 * REAL_314[stop]["model_calls"])
    interrupt = interrupt_from(REAL_314[stop].get("action"), executed)
    executed, events = real(resume)
    for resumed_from in (interrupt, interrupt.node_id if interrupt else None, None):
        assert figures(request_usage(executed, events, resumed_from=resumed_from)) == (10, 12, 22)
    replayed = [n.node_id for n in usage_breakdown(executed) if n.replayed]
    assert replayed and "startAgentflow_0" in replayed


def test_real_resume_of_an_approved_tool_is_22_not_66() -> None:
    executed, _ = real("ap_proceed_json")
    agent = usage_breakdown(executed)[-1]
    assert agent.flowise is not None
    # Flowise: the new answer (10 / 12) plus tool_call_tokens 44 = the stopped run's call + the new one again
    assert (agent.flowise["total_tokens"], agent.flowise["tool_call_tokens"]) == (66, 44)
    assert [figures(c) for c in agent.calls] == [(10, 12, 22)]


def test_a_model_written_human_input_description_is_not_recorded_by_flowise() -> None:
    # "Two Checks": resuming the first check ran the "Polish" LLM and the model that wrote the second check's
    # description; Flowise records only the first, so only it can be counted
    executed, _ = real("two_resume1_json")
    assert REAL_314["two_resume1_json"]["model_calls"] == 2
    assert figures(request_usage(executed, None)) == (10, 12, 22)


def test_real_second_resume_skips_every_replayed_node() -> None:
    executed, events = real("two_resume2_stream")
    nodes = usage_breakdown(executed)
    assert [n.node_id for n in nodes if not n.replayed] == ["humanInputAgentflow_1", "llmAgentflow_2"]
    assert figures(request_usage(executed, events)) == (10, 12, 22)
    assert REAL_314["two_resume2_stream"]["model_calls"] == 1


# ------------------------------------------------- Flowise's recording, shaped as a real 3.1.4 run records it

U = {"input_tokens": 10, "output_tokens": 12, "total_tokens": 22, "input_token_details": {}, "output_token_details": {}}
SYSTEM = {"role": "system", "content": "You have a calculator."}
USER = {"role": "user", "content": "what is 2 + 2?"}
AGENT_TOOLS = [
    {
        "agentSelectedTool": "calculator",
        "agentSelectedToolRequiresHumanInput": True,
        "agentSelectedToolConfig": {"agentSelectedTool": "calculator"},
    }
]
AVAILABLE = [{"name": "calculator", "toolNode": {"label": "Calculator", "name": "calculator"}}]


def start() -> dict[str, Any]:
    return {
        "nodeId": "startAgentflow_0",
        "nodeLabel": "Start",
        "status": "FINISHED",
        "previousNodeIds": [],
        "data": {"id": "startAgentflow_0", "name": "startAgentflow", "input": {"question": "q"}, "output": {}},
    }


def tool_call_message(call_id: str, usage: dict[str, Any] = U, *, message_id: str | None = None) -> dict[str, Any]:
    message = {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"name": "calculator", "args": {"input": "2 + 2"}, "id": call_id, "type": "tool_call"}],
        "usage_metadata": usage,
    }
    if message_id:
        message["id"] = message_id
    return message


def tool_result(call_id: str) -> dict[str, Any]:
    return {"role": "tool", "content": "4", "tool_call_id": call_id, "name": "calculator"}


def agent(
    messages: list[dict[str, Any]],
    usage_metadata: dict[str, Any] | None,
    *,
    status: str = "FINISHED",
    waiting: bool = False,
    called: list[dict[str, Any]] | None = None,
    human_input: dict[str, Any] | None = None,
) -> dict[str, Any]:
    node_input: dict[str, Any] = {"messages": messages, "agentTools": AGENT_TOOLS}
    if human_input is not None:
        node_input["humanInput"] = human_input
    output: dict[str, Any] = {"content": "The tool said: 4.", "availableTools": AVAILABLE, "calledTools": called or []}
    if usage_metadata is not None:
        output["usageMetadata"] = usage_metadata
    if waiting:
        output["isWaitingForHumanInput"] = True
        output["humanInputAction"] = {
            "id": "a1",
            "mapping": {"approve": "Proceed", "reject": "Reject"},
            "elements": [
                {"type": "agentflowv2-approve-button", "label": "Proceed"},
                {"type": "agentflowv2-reject-button", "label": "Reject"},
            ],
            "data": {"nodeId": "agentAgentflow_0", "nodeLabel": "Careful Calculator", "input": node_input},
        }
    return {
        "nodeId": "agentAgentflow_0",
        "nodeLabel": "Careful Calculator",
        "status": status,
        "previousNodeIds": ["startAgentflow_0"],
        "data": {"id": "agentAgentflow_0", "name": "agentAgentflow", "input": node_input, "output": output},
    }


def flowise_agent_figure(last: dict[str, Any], tool_call_tokens: int) -> dict[str, Any]:
    """Agent.prepareOutputObject: the last call's figures, total = its total + tool_call_tokens."""
    return {**last, "total_tokens": last["total_tokens"] + tool_call_tokens, "tool_call_tokens": tool_call_tokens}


def llm(node_id: str, usage: dict[str, Any] | None = U) -> dict[str, Any]:
    output: dict[str, Any] = {"content": "Hello"}
    if usage is not None:
        output["usageMetadata"] = usage
    return {
        "nodeId": node_id,
        "nodeLabel": node_id,
        "status": "FINISHED",
        "data": {"id": node_id, "name": "llmAgentflow", "input": {"messages": [USER]}, "output": output},
    }


def human_input(status: str, decision: str | None = None) -> dict[str, Any]:
    """A Human Input entry; a resumed one gets the consumed humanInput spread into its input, as Flowise does."""
    node_input: dict[str, Any] = {"messages": [USER]}
    if decision:
        node_input.update(type=decision, startNodeId="humanInputAgentflow_0")
    return {
        "nodeId": "humanInputAgentflow_0",
        "nodeLabel": "Review",
        "status": status,
        "data": {"id": "humanInputAgentflow_0", "name": "humanInputAgentflow", "input": node_input, "output": {}},
    }


def stopped_for_approval() -> list[dict[str, Any]]:
    ck = tool_call_message("call_1", message_id="chatcmpl-ck")
    return [
        start(),
        agent(
            [SYSTEM, USER, ck],
            flowise_agent_figure(U, 22),
            status="STOPPED",
            waiting=True,
            called=ck["tool_calls"],
        ),
    ]


def resumed_proceed() -> list[dict[str, Any]]:
    ck = tool_call_message("call_1", message_id="chatcmpl-ck")
    return [
        start(),  # replayed from the stopped run
        agent(
            [SYSTEM, USER, ck, tool_result("call_1")],
            flowise_agent_figure(U, 44),  # Flowise re-counts the approval call: 10 / 12 / 66
            human_input={"type": "proceed", "startNodeId": "agentAgentflow_0"},
        ),
    ]


def resumed_reject() -> list[dict[str, Any]]:
    return [
        start(),
        agent(
            [SYSTEM, USER],  # Flowise removed the call that asked for the rejected tool
            flowise_agent_figure(U, 44),
            human_input={"type": "reject", "startNodeId": "agentAgentflow_0"},
        ),
    ]


def test_a_run_stopped_for_tool_approval_counts_the_asking_call_once() -> None:
    usage = request_usage(stopped_for_approval(), [U])
    assert figures(usage) == (10, 12, 22)


@pytest.mark.parametrize("how", ["interrupt", "node id"])
@pytest.mark.parametrize("executed", [resumed_proceed, resumed_reject])
def test_a_resumed_tool_approval_counts_only_the_new_call(how: str, executed: Any) -> None:
    interrupt = interrupt_from(None, stopped_for_approval())
    assert interrupt is not None
    resumed_from = interrupt if how == "interrupt" else interrupt.node_id
    nodes = usage_breakdown(executed(), resumed_from=resumed_from)
    assert [n.replayed for n in nodes] == [True, False]
    assert figures(request_usage(executed(), [U], resumed_from=resumed_from)) == (10, 12, 22)


def test_the_resumed_node_is_read_from_flowises_marker() -> None:
    # Flowise hands the resumed Agent the humanInput it consumed (input.humanInput.startNodeId == its node id)
    assert figures(request_usage(resumed_proceed(), None)) == (10, 12, 22)
    unmarked = resumed_proceed()
    del unmarked[1]["data"]["input"]["humanInput"]
    # without the marker and without resumed_from the stopped run's call counts again
    assert figures(request_usage(unmarked, None)) == (20, 24, 44)
    assert figures(request_usage(unmarked, None, resumed_from="agentAgentflow_0")) == (10, 12, 22)


def test_a_resumed_human_input_run_skips_the_replayed_nodes() -> None:
    executed = [start(), llm("llmAgentflow_0"), human_input("FINISHED", "proceed"), llm("llmAgentflow_1")]
    nodes = usage_breakdown(executed, resumed_from="humanInputAgentflow_0")
    assert [(n.node_id, n.replayed, len(n.calls)) for n in nodes] == [
        ("startAgentflow_0", True, 0),
        ("llmAgentflow_0", True, 0),
        ("humanInputAgentflow_0", False, 0),
        ("llmAgentflow_1", False, 1),
    ]
    assert figures(request_usage(executed, None, resumed_from="humanInputAgentflow_0")) == (10, 12, 22)
    assert figures(request_usage(executed, None)) == (10, 12, 22)  # read from the marker
    executed[2] = human_input("FINISHED")  # no marker, no resumed_from: the replayed LLM counts again
    assert figures(request_usage(executed, None)) == (20, 24, 44)


def test_resumed_node_missing_falls_back_to_streamed_figures() -> None:
    # a stream cut before the resumed node finished: everything in the snapshot is a replay
    executed = [start(), llm("llmAgentflow_0")]
    assert figures(request_usage(executed, [U], resumed_from="humanInputAgentflow_0")) == (10, 12, 22)
    assert request_usage(executed, None, resumed_from="humanInputAgentflow_0") is None


def test_chained_tool_calls_count_every_call_once() -> None:
    # Flowise's tool_call_tokens for 3 calls would be 22 + 22 + 22 + 22 (the middle call twice)
    messages = [SYSTEM, USER, tool_call_message("c1"), tool_result("c1"), tool_call_message("c2"), tool_result("c2")]
    executed = [start(), agent(messages, flowise_agent_figure(U, 88))]
    assert figures(request_usage(executed, None)) == (30, 36, 66)


def test_return_direct_tool_has_no_answering_call() -> None:
    # returnDirect: Flowise answers with the tool output; usageMetadata has only the tool-call total
    messages = [SYSTEM, USER, tool_call_message("c1"), tool_result("c1")]
    executed = [start(), agent(messages, {"total_tokens": 22, "tool_call_tokens": 22})]
    assert figures(request_usage(executed, None)) == (10, 12, 22)


def test_iteration_children_count_once() -> None:
    iteration = {
        "nodeId": "iterationAgentflow_0",
        "status": "FINISHED",
        "data": {"name": "iterationAgentflow", "output": {"content": "a\nb", "iterationResults": ["a", "b"]}},
    }
    children = [
        {**llm("llmAgentflow_1"), "data": {**llm("llmAgentflow_1")["data"], "iterationIndex": i}} for i in range(2)
    ]
    assert figures(request_usage([start(), iteration, *children], None)) == (20, 24, 44)


def test_checkpoint_messages_without_ids_match_by_content() -> None:
    stopped = stopped_for_approval()
    resumed = resumed_proceed()
    for entries in (stopped, resumed):
        for message in entries[1]["data"]["input"]["messages"]:
            message.pop("id", None)
    interrupt = interrupt_from(None, stopped)
    assert figures(request_usage(resumed, None, resumed_from=interrupt)) == (10, 12, 22)


def test_details_are_summed_and_total_is_recomputed() -> None:
    a = {"input_tokens": 7, "output_tokens": 3, "total_tokens": 999, "input_token_details": {"cache_read": 5}}
    b = {"prompt_tokens": 2, "completion_tokens": 4, "output_token_details": {"reasoning": 1}}
    usage = sum_usage([normalize_usage(a), normalize_usage(b)])
    assert figures(usage) == (9, 7, 16)
    assert usage is not None
    assert usage.model_extra == {"input_token_details": {"cache_read": 5}, "output_token_details": {"reasoning": 1}}


@pytest.mark.parametrize(
    "value",
    [None, {}, {"total_tokens": 5}, {"input_tokens": "5"}, {"input_tokens": True}, [1, 2], "22", 22],
)
def test_figures_without_an_input_output_split_are_not_usage(value: Any) -> None:
    assert normalize_usage(value) is None


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, True])
def test_impossible_counts_are_ignored(bad: Any) -> None:
    assert figures(normalize_usage({"input_tokens": bad, "output_tokens": 4})) == (0, 4, 4)


def test_node_usage_sums_its_calls() -> None:
    node = NodeUsage(calls=[Usage(input_tokens=1, output_tokens=2, total_tokens=3)] * 2)
    assert figures(node.usage) == (2, 4, 6)
    assert NodeUsage().usage is None


# ----------------------------------------------------------------------------------------------- properties

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(
    ["nodeId", "status", "data", "input", "output", "messages", "usageMetadata", "usage_metadata", "role", "id"]
)
SHAPED = st.recursive(
    st.none() | st.integers(-3, 50) | st.sampled_from(["assistant", "STOPPED", "agentAgentflow_0", "proceed"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=3), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(executed=JSON | SHAPED, stream=JSON | SHAPED, resumed=st.none() | st.text(max_size=20))
def test_never_raises_and_total_is_input_plus_output(executed: Any, stream: Any, resumed: str | None) -> None:
    usage = request_usage(executed, stream, resumed_from=resumed)
    if usage is not None:
        assert usage.total_tokens == usage.input_tokens + usage.output_tokens
        assert min(usage.input_tokens, usage.output_tokens) >= 0
    for node in usage_breakdown(executed, resumed_from=resumed):
        assert not (node.replayed and node.calls)


call_usage = st.fixed_dictionaries(
    {"input_tokens": st.integers(0, 10_000), "output_tokens": st.integers(0, 10_000)}
).map(lambda u: {**u, "total_tokens": u["input_tokens"] + u["output_tokens"]})


@st.composite
def flowise_agentflow(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Executed data as Flowise records it, with the model calls really made (ground truth)."""
    entries, calls = [start()], []
    for i in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):  # an LLM node: one call
            u = draw(call_usage)
            entries.append(llm(f"llmAgentflow_{i}", u))
            calls.append(u)
            continue
        rounds = draw(st.lists(call_usage, max_size=3))  # calls that asked for tools
        answer = draw(call_usage)
        messages: list[dict[str, Any]] = [SYSTEM, USER]
        for r, u in enumerate(rounds):
            messages += [tool_call_message(f"c{i}{r}", u, message_id=f"m{i}{r}"), tool_result(f"c{i}{r}")]
        # Agent.handleToolCalls: each level adds its first call's total, then the recursion's sum
        tool_call_tokens = sum(u["total_tokens"] for u in rounds) * 2 - (rounds[0]["total_tokens"] if rounds else 0)
        tool_call_tokens += answer["total_tokens"] if rounds else 0
        entry = agent(messages, flowise_agent_figure(answer, tool_call_tokens) if rounds else answer)
        entry["nodeId"] = f"agentAgentflow_{i + 10}"  # never the resumed node's id
        entries.append(entry)
        calls += [*rounds, answer]
    return entries, calls


@settings(max_examples=200, deadline=None)
@given(flowise_agentflow())
def test_counts_exactly_the_model_calls_flowise_made(run: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    entries, calls = run
    expected = (sum(c["input_tokens"] for c in calls), sum(c["output_tokens"] for c in calls)) if calls else None
    usage = request_usage(entries, None)
    assert (None if usage is None else (usage.input_tokens, usage.output_tokens)) == expected
    if usage is not None:
        assert usage.total_tokens == usage.input_tokens + usage.output_tokens


@settings(max_examples=100, deadline=None)
@given(flowise_agentflow(), st.sampled_from(["proceed", "reject"]))
def test_a_resumed_run_counts_only_what_follows_the_resumed_node(
    before: tuple[list[dict[str, Any]], list[dict[str, Any]]], decision: str
) -> None:
    replayed, _ = before
    stopped = [*replayed, *stopped_for_approval()[1:]]
    interrupt = interrupt_from(None, stopped)
    assert interrupt is not None
    resumed = resumed_proceed() if decision == "proceed" else resumed_reject()
    executed = [*replayed, *resumed[1:]]
    for resumed_from in (interrupt, "agentAgentflow_0", None):
        assert figures(request_usage(executed, None, resumed_from=resumed_from)) == (10, 12, 22)
