"""The emulator's agentflow v2 engine and multi-agent scripts beyond the captured flows: resume rules, errors,
aborts, branches, loops, usage, executions, and a property: no request body makes it fail to answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_emulator_agents import CALCULATOR, human_input_flow, tool_approval_flow

from flowise_integrations.testing import LLM, Agent, Condition, FakeFlow, FakeFlowise, HumanInput, Loop

KEY = "engine-key"
BASE = "http://flowise.test"


@pytest.fixture
def fake() -> FakeFlowise:
    return FakeFlowise(api_key=KEY)


@pytest.fixture
def http(fake: FakeFlowise) -> Iterator[httpx.Client]:
    with httpx.Client(transport=fake.transport(), base_url=BASE, headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


def events(body: bytes | str) -> list[tuple[str, Any]]:
    text = body.decode() if isinstance(body, bytes) else body
    frames = [json.loads(line[5:]) for line in text.split("\n") if line.startswith("data:")]
    return [(f["event"], f.get("data")) for f in frames]


def post(http: httpx.Client, flow_id: str, **body: Any) -> httpx.Response:
    return http.post(f"/api/v1/prediction/{flow_id}", json=body)


def statuses(frames: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    return [(d["nodeId"], d["status"]) for e, d in frames if e == "nextAgentFlow"]


# -- human input ---------------------------------------------------------------------------------------------------
def test_stop_is_found_by_the_executions_query_the_client_sends(fake: FakeFlowise, http: httpx.Client) -> None:
    flow_id = fake.add_flow(human_input_flow())
    stopped = post(http, flow_id, question="Draft it", chatId="c-1", streaming=True)
    frames = events(stopped.content)
    assert [d for e, d in frames if e == "agentFlowEvent"] == ["INPROGRESS", "STOPPED", "STOPPED"]
    assert "executionId" not in json.dumps([d for e, d in frames if e == "metadata"])  # the stream never says
    query = {"agentflowId": flow_id, "sessionId": "c-1", "state": "STOPPED", "page": 1, "limit": 1}
    found = http.get("/api/v1/executions", params=query).json()
    assert found["total"] == 1
    execution = found["data"][0]
    assert (execution["state"], execution["agentflow"]["id"]) == ("STOPPED", flow_id)
    resumed = post(http, flow_id, chatId="c-1", humanInput={"type": "proceed", "startNodeId": "humanInputAgentflow_0"})
    assert resumed.json()["executionId"] == execution["id"]
    assert http.get(f"/api/v1/executions/{execution['id']}").json()["state"] == "FINISHED"
    assert http.get("/api/v1/executions", params=query).json() == {"data": [], "total": 0}


def test_resume_takes_the_action_off_the_stopped_message(fake: FakeFlowise, http: httpx.Client) -> None:
    flow_id = fake.add_flow(human_input_flow())
    post(http, flow_id, question="Draft it", chatId="c-2")
    assert [r["action"] is not None for r in fake.chat_messages] == [False, True]
    post(http, flow_id, question="No", chatId="c-2", humanInput={"type": "reject", "feedback": "No"})
    rows = fake.chat_messages
    assert [r["action"] for r in rows] == [None] * 4
    assert [r["content"] for r in rows] == ["Draft it", "Draft: the meeting moves to 10am.\n\nSend this draft?",
                                            "No", "The draft was discarded."]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"humanInput": {"type": "proceed", "startNodeId": "nowhere"}},
         "Node nowhere not found in previous execution. This could indicate an invalid resume attempt or a modified flow."),
        ({"humanInput": {"type": "proceed"}, "chatId": "other"}, "No previous execution found for session other"),
    ],
)  # fmt: skip
def test_resume_refusals(fake: FakeFlowise, http: httpx.Client, body: dict[str, Any], message: str) -> None:
    flow_id = fake.add_flow(human_input_flow())
    post(http, flow_id, question="Draft it", chatId="c-3")
    refused = post(http, flow_id, **{"chatId": "c-3", **body})
    assert (refused.status_code, refused.json()["message"]) == (
        500,
        f"Error: predictionsServices.buildChatflow - {message}",
    )


def test_a_failed_resume_can_be_resumed_again(fake: FakeFlowise, http: httpx.Client) -> None:
    """ERROR right after the STOPPED node: Flowise drops the error and lets the same stop resume."""
    flow = tool_approval_flow()
    agent = flow.nodes[0]  # type: ignore[index]
    assert isinstance(agent, Agent)
    flow_id = fake.add_flow(flow)
    post(http, flow_id, question="what is 2 + 2?", chatId="c-4")
    bad = post(http, flow_id, chatId="c-4", humanInput={"type": "maybe", "startNodeId": "agentAgentflow_0"})
    assert "Invalid human input type. Expected 'proceed' or 'reject', but got 'maybe'" in bad.json()["message"]
    execution = http.get("/api/v1/executions", params={"sessionId": "c-4"}).json()["data"][0]
    assert [n["status"] for n in json.loads(execution["executionData"])] == ["FINISHED", "STOPPED", "ERROR"]
    good = post(http, flow_id, chatId="c-4", humanInput={"type": "proceed", "startNodeId": "agentAgentflow_0"})
    assert good.json()["text"] == "The tool said: 4."
    assert [n["status"] for n in good.json()["agentFlowExecutedData"]] == ["FINISHED", "FINISHED"]


def test_resume_by_session_id_reuses_the_execution(fake: FakeFlowise, http: httpx.Client) -> None:
    flow_id = fake.add_flow(human_input_flow())
    session = {"overrideConfig": {"sessionId": "s-1"}}
    stop = post(http, flow_id, question="Draft it", **session).json()
    resumed = post(http, flow_id, humanInput={"type": "proceed", "feedback": "ok"}, **session).json()
    assert (stop["chatId"], resumed["chatId"], resumed["sessionId"]) == ("s-1", "s-1", "s-1")
    assert resumed["executionId"] == stop["executionId"]
    assert "question" not in resumed
    assert [n["nodeId"] for n in resumed["agentFlowExecutedData"]] == [
        "startAgentflow_0", "llmAgentflow_0", "humanInputAgentflow_0", "llmAgentflow_1"]  # fmt: skip


# -- usage, aborts, branches, loops ------------------------------------------------------------------------------
def test_agent_with_a_tool_reports_flowise_node_totals(fake: FakeFlowise, http: httpx.Client) -> None:
    """Two model calls of 10/12 (22 each): each call streams its own usage; the node says 10/12/66."""
    flow_id = fake.add_flow(FakeFlow(kind="agentflow", nodes=[Agent(tools=[CALCULATOR])], answer="It is 4."))
    frames = events(post(http, flow_id, question="2 + 2?", streaming=True).content)
    assert [d["total_tokens"] for e, d in frames if e == "usageMetadata"] == [22]
    node = [d for e, d in frames if e == "agentFlowExecutedData"][-1][-1]["data"]["output"]["usageMetadata"]
    assert (node["input_tokens"], node["output_tokens"], node["total_tokens"], node["tool_call_tokens"]) == (
        10,
        12,
        66,
        44,
    )


def test_abort_between_nodes_terminates_the_run(fake: FakeFlowise) -> None:
    flow = FakeFlow(
        kind="agentflow", nodes=[LLM(id="a", label="A", answer="one"), LLM(id="b", label="B", answer="two")]
    )
    flow_id = fake.add_flow(flow)
    seen: list[tuple[str, Any]] = []
    body = {"question": "q", "chatId": "c-5", "streaming": True}
    finished_a = {"nodeId": "a", "nodeLabel": "A", "status": "FINISHED"}
    with (
        httpx.Client(transport=fake.transport(), base_url=BASE) as http,
        http.stream("POST", f"/api/v1/prediction/{flow_id}", json=body) as reply,
    ):
        for line in reply.iter_lines():
            if not line.startswith("data:"):
                continue
            frame = json.loads(line[5:])
            seen.append((frame["event"], frame.get("data")))
            if frame["event"] == "nextAgentFlow" and frame["data"] == finished_a:
                http.put(f"/api/v1/chatmessage/abort/{flow_id}/c-5")
    assert ("nextAgentFlow", {"nodeId": "b", "nodeLabel": "B", "status": "TERMINATED"}) in seen
    assert seen[-3:] == [("agentFlowEvent", "TERMINATED"),
                         ("error", "Error: predictionsServices.buildChatflow - Flow execution was cancelled"),
                         ("end", "[DONE]")]  # fmt: skip


@pytest.mark.parametrize(
    ("condition", "question", "branch"),
    [
        ({"type": "number", "value1": "{{ question }}", "operation": "larger", "value2": "10"}, "42", "big"),
        ({"type": "number", "value1": "{{ question }}", "operation": "larger", "value2": "10"}, "7", "else"),
        ({"type": "string", "value1": "{{ question }}", "operation": "regex", "value2": "^ab+c$"}, "abbc", "big"),
        ({"type": "string", "value1": "{{ question }}", "operation": "startsWith", "value2": "x"}, "abc", "else"),
    ],
)
def test_condition_picks_a_branch(
    fake: FakeFlowise, http: httpx.Client, condition: dict[str, Any], question: str, branch: str
) -> None:
    nodes = [Condition(conditions=[condition]), LLM(id="big", label="Big", answer="big"),
             LLM(id="else", label="Else", answer="else")]  # fmt: skip
    edges = [("conditionAgentflow_0", "big", 0), ("conditionAgentflow_0", "else", 1)]
    flow_id = fake.add_flow(FakeFlow(kind="agentflow", nodes=nodes, edges=edges))  # type: ignore[arg-type]
    reply = post(http, flow_id, question=question).json()
    assert reply["text"] == branch
    assert [n["nodeId"] for n in reply["agentFlowExecutedData"]] == ["startAgentflow_0", "conditionAgentflow_0", branch]


def test_loop_without_fallback_says_flowises_sentence(fake: FakeFlowise, http: httpx.Client) -> None:
    flow = FakeFlow(kind="agentflow", nodes=[LLM(answer="again"), Loop(target="llmAgentflow_0", max_loop_count=3)])
    reply = post(http, fake.add_flow(flow), question="go").json()
    assert reply["text"] == "Loop completed after reaching maximum iteration count of 3."
    assert [n["nodeId"] for n in reply["agentFlowExecutedData"]].count("llmAgentflow_0") == 3


def test_a_second_human_input_stops_again_after_a_resume(fake: FakeFlowise, http: httpx.Client) -> None:
    nodes = [HumanInput(id="first", label="First"), HumanInput(id="second", label="Second"), LLM(answer="done")]
    flow_id = fake.add_flow(FakeFlow(kind="agentflow", nodes=nodes))  # type: ignore[arg-type]
    assert post(http, flow_id, question="go", chatId="c-6").json()["action"]["data"]["nodeId"] == "first"
    again = post(http, flow_id, chatId="c-6", humanInput={"type": "proceed"}).json()
    assert again["action"]["data"]["nodeId"] == "second"
    done = post(http, flow_id, chatId="c-6", humanInput={"type": "proceed"}).json()
    assert (done["text"], "action" in done) == ("done", False)


# -- multi-agent -------------------------------------------------------------------------------------------------
def test_multiagent_default_has_the_real_null_items(fake: FakeFlowise, http: httpx.Client) -> None:
    flow_id = fake.add_flow(FakeFlow(kind="multiagent", answer="Paris."))
    frames = events(post(http, flow_id, question="Capital?", streaming=True).content)
    steps = [d for e, d in frames if e == "agentReasoning"][-1]
    assert [s["agentName"] for s in steps] == ["Supervisor", "Worker", "Supervisor"]
    assert (steps[1]["usedTools"], steps[1]["sourceDocuments"], steps[1]["artifacts"]) == ([None], [None], [None])
    assert [d for e, d in frames if e == "nextAgent"] == ["Worker"]
    assert ("token", "Paris.") in frames
    assert [(e, d) for e, d in frames if e in ("usedTools", "sourceDocuments", "artifacts")] == [
        ("usedTools", []), ("sourceDocuments", []), ("artifacts", [])]  # fmt: skip


# -- never fails to answer ---------------------------------------------------------------------------------------
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_HUMAN = st.fixed_dictionaries(
    {},
    optional={"type": st.sampled_from(["proceed", "reject", "maybe"]) | _JSON,
              "startNodeId": st.sampled_from(["humanInputAgentflow_0", "agentAgentflow_0", "x"]) | _JSON,
              "feedback": st.text(max_size=10) | _JSON},
)  # fmt: skip
_BODY = st.fixed_dictionaries(
    {},
    optional={"question": st.text(max_size=10) | _JSON, "form": _JSON, "history": _JSON, "humanInput": _HUMAN | _JSON,
              "chatId": st.sampled_from(["c", "d"]) | _JSON, "overrideConfig": _JSON,
              "streaming": st.booleans()},
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bodies=st.lists(_BODY, min_size=1, max_size=4))
def test_any_body_gets_an_answer(bodies: list[dict[str, Any]]) -> None:
    """Every body gets Flowise's kind of answer (JSON, an error body, or a stream ending in ``end``), never a crash."""
    fake = FakeFlowise()
    flows = [fake.add_flow(human_input_flow()), fake.add_flow(tool_approval_flow())]
    with httpx.Client(transport=fake.transport(), base_url=BASE, timeout=0.5) as http:
        for body in bodies:
            for flow_id in flows:
                try:
                    reply = http.post(f"/api/v1/prediction/{flow_id}", json=body)
                except httpx.ReadTimeout:  # Flowise's silent error path: a failure before SSE, streaming asked
                    continue
                if reply.headers["content-type"] == "text/event-stream":
                    assert events(reply.content)[-1] == ("end", "[DONE]")
                else:
                    assert reply.status_code in (200, 500)
                    assert isinstance(reply.json(), dict)
