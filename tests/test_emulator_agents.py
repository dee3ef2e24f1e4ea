"""FakeFlowise against the real Flowise 3.1.4 agent captures, byte for byte (ids, times and estimates aside).

Each flow of ``tests/e2e/flows_agents.py`` is scripted here the way a user would script it with
:mod:`flowise_integrations.testing.nodes`; each recorded sequence (a stop, then its resume; an execution looked up
in between) is replayed in order against one emulator, over the in-process transport and over the loopback
server. Normalised on both sides: UUIDs (numbered by first appearance across the sequence, so an execution id
that must repeat does), ``timeMetadata``, dates, the fake model's per-run ids and URL, and LangChain's
``estimatedTokenUsage`` (tiktoken counts the emulator only approximates). Headers are checked as in
``test_emulator_fidelity.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from test_emulator_fidelity import normalize_headers, socket_exchange, transport_exchange

from flowise_integrations.testing import (
    DEFAULT_ANSWER,
    LLM,
    Agent,
    Condition,
    DirectReply,
    FakeFlow,
    FakeFlowise,
    HumanInput,
    Iteration,
    Loop,
    supervisor_step,
    worker_step,
)

CAPTURES = Path(__file__).parent / "fixtures" / "real_captures"
API_KEY = "agents-workspace-key"

# -- the flows of tests/e2e/flows_agents.py, as emulator scripts -------------------------------------------------
DRAFT = "Draft: the meeting moves to 10am."
SENT = "The approved draft was sent."
TOOL_ANSWER = "The tool said: 4."
TOOL_DECLINED = "Understood, I will not use the calculator."
CALCULATOR = {"tool": "calculator", "toolInput": {"input": "2 + 2"}, "toolOutput": "4"}
FORM_FIELDS = [
    {"type": "string", "label": "Name", "name": "name", "addOptions": ""},
    {"type": "number", "label": "Age", "name": "age", "addOptions": ""},
    {"type": "boolean", "label": "Subscribed", "name": "subscribed", "addOptions": ""},
    {"type": "options", "label": "Plan", "name": "plan", "addOptions": [{"option": "basic"}, {"option": "pro"}]},
]
FORM_REPLY = "Hello {{ $form.name }}, age {{ $form.age }}, plan {{ $form.plan }}, subscribed {{ $form.subscribed }}."


def script(reply: str | None = None, usage: tuple[int, int] | None = None, tool: tuple[int, int] | None = None) -> str:
    """The system message that scripts the harness's fake model (it shows in the nodes' messages)."""
    lines = ["You are a scripted test node."]
    lines += [f"REPLY_WITH: {reply}"] if reply is not None else []
    lines += [f"USAGE: {usage[0]}/{usage[1]}"] if usage else []
    lines += [f"TOOL_USAGE: {tool[0]}/{tool[1]}"] if tool else []
    return "\n".join(lines)


def scripted_llm(node_id: str, label: str, reply: str, usage: tuple[int, int], **extra: Any) -> LLM:
    return LLM(id=node_id, label=label, answer=reply, system=script(reply, usage), usage=usage, **extra)


def human_input_flow() -> FakeFlow:
    """Start -> LLM "Drafter" -> Human Input "Review" -> proceed: LLM "Sender" / reject: Direct Reply "Discard"."""
    nodes = [
        scripted_llm("llmAgentflow_0", "Drafter", DRAFT, (11, 13)),
        HumanInput(label="Review", description="Send this draft?"),
        scripted_llm("llmAgentflow_1", "Sender", SENT, (17, 19)),
        DirectReply("The draft was discarded.", label="Discard"),
    ]
    edges = [
        ("llmAgentflow_0", "humanInputAgentflow_0"),
        ("humanInputAgentflow_0", "llmAgentflow_1", 0),
        ("humanInputAgentflow_0", "directReplyAgentflow_0", 1),
    ]
    return FakeFlow(kind="agentflow", name="e2e-af_human_input", nodes=nodes, edges=edges)  # type: ignore[arg-type]


def tool_approval_flow() -> FakeFlow:
    agent = Agent(label="Approval Agent", system=script(TOOL_DECLINED, (13, 11), (7, 3)), usage=(13, 11),
                  tool_usage=(7, 3), tools=[CALCULATOR], approval=True, answer=TOOL_ANSWER,
                  declined=TOOL_DECLINED)  # fmt: skip
    return FakeFlow(kind="agentflow", name="e2e-af_tool_approval", nodes=[agent])


def condition_flow() -> FakeFlow:
    weather = {"type": "string", "value1": "{{ question }}", "operation": "contains", "value2": "weather"}
    nodes = [
        Condition(label="Is Weather", conditions=[weather]),
        scripted_llm("llmAgentflow_0", "Weather", "It is sunny today.", (5, 3)),
        scripted_llm("llmAgentflow_1", "General", "That is not about the weather.", (6, 4)),
    ]
    edges = [("conditionAgentflow_0", "llmAgentflow_0", 0), ("conditionAgentflow_0", "llmAgentflow_1", 1)]
    return FakeFlow(kind="agentflow", nodes=nodes, edges=edges)  # type: ignore[arg-type]


def iteration_flow() -> FakeFlow:
    per_item = scripted_llm("llmAgentflow_0", "Per Item", "item {{ $iteration.item }}", (3, 2), memory=False)
    items = [{"item": v} for v in ("alpha", "beta", "gamma")]
    return FakeFlow(kind="agentflow", nodes=[Iteration(label="Each Item", items=items, body=[per_item])])


def loop_flow() -> FakeFlow:
    writer = scripted_llm("llmAgentflow_0", "Writer", "Another draft.", (4, 6))
    again = Loop(target="llmAgentflow_0", label="Again", max_loop_count=2, fallback="Stopped after two drafts.")
    return FakeFlow(kind="agentflow", nodes=[writer, again])


def form_flow() -> FakeFlow:
    greeter = scripted_llm("llmAgentflow_0", "Greeter", FORM_REPLY, (8, 9))
    return FakeFlow(kind="agentflow", name="e2e-af_form", nodes=[greeter], input_type="form", form_title="Sign-up",
                    form_description="Tell us about you", form_fields=FORM_FIELDS)  # fmt: skip


def supervisor_flow() -> FakeFlow:
    team = ["researcher", "calculator"]
    steps = [
        supervisor_step("researcher", "researcher: answer the user", team),
        worker_step("Researcher", "Research notes: Paris is the capital of France.", "worker_0"),
        supervisor_step("calculator", "calculator: answer the user", team),
        worker_step("Calculator", TOOL_ANSWER, "worker_1", used_tools=[CALCULATOR]),
        supervisor_step("FINISH", "FINISH: answer the user", team),
    ]
    return FakeFlow(kind="multiagent", name="e2e-multiagent_supervisor", answer=TOOL_ANSWER, agent_reasoning=steps,
                    used_tools=[CALCULATOR])  # fmt: skip


def _helper(message: str, used: list[Any], nothing: list[Any]) -> list[dict[str, Any]]:
    return [{"agentName": "Helper", "messages": [message], "usedTools": used, "sourceDocuments": nothing,
             "artifacts": nothing, "state": {}, "nodeName": "seqAgent", "nodeId": "seqAgent_0"}]  # fmt: skip


def sequential_flow() -> FakeFlow:
    return FakeFlow(kind="multiagent", answer=TOOL_ANSWER, agent_reasoning=_helper(TOOL_ANSWER, [CALCULATOR], [None]),
                    used_tools=[CALCULATOR], memory_type="Agent Memory")  # fmt: skip


DENIED = ("The tool said: Tool calculator call denied by user. Acknowledge that, and DONT perform further actions. "
          "Only ask if user have other questions.")  # fmt: skip
SEQ_ACTION = {
    "id": "00000000-0000-4000-8000-000000000001",
    "mapping": {"approve": "Yes", "reject": "No",
                "toolCalls": [{"name": "calculator", "args": {"input": "2 + 2"}, "id": "call_00000001",
                               "type": "tool_call"}]},
    "elements": [{"type": "approve-button", "label": "Yes"}, {"type": "reject-button", "label": "No"}],
}  # fmt: skip


def sequential_approval_flow() -> FakeFlow:
    memory = "Agent Memory"
    approved = FakeFlow(answer=TOOL_ANSWER, agent_reasoning=_helper(TOOL_ANSWER, [CALCULATOR], []),
                        used_tools=[CALCULATOR], memory_type=memory)  # fmt: skip
    rejected = FakeFlow(answer=DENIED, agent_reasoning=_helper(DENIED, [None], [None]), memory_type=memory)
    pending = {**CALCULATOR, "toolOutput": ""}
    return FakeFlow(kind="multiagent", name="e2e-sequential_approval", answer=DEFAULT_ANSWER,
                    agent_reasoning=_helper("", [None], [None]), used_tools=[pending], memory_type=memory,
                    action=SEQ_ACTION, on_action={"approve": approved, "reject": rejected})  # fmt: skip


# -- replaying recorded sequences -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recorded:
    """One capture: status, header list, body; the request body for POSTs."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    request: dict[str, Any] | None


def recorded(name: str, directory: Path = CAPTURES) -> Recorded:
    head, _, body = (directory / f"{name}.txt").read_bytes().partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    _, status, reason = status_line.split(" ", 2)
    request_path = directory / f"{name}.request.json"
    request = json.loads(request_path.read_text()) if request_path.exists() else None
    headers = [(k, v) for k, _, v in (line.partition(": ") for line in lines)]
    return Recorded(int(status), reason, headers, body, request)


UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
Q = rb'\\*"'  # a quote, escaped or not (execution rows hold the executed data as a JSON string)
TIMES = re.compile(Q + rb"timeMetadata" + Q + rb":\{" + Q + rb"start" + Q + rb":\d+," + Q + rb"end" + Q + rb":\d+,"
                   + Q + rb"delta" + Q + rb":\d+\}")  # fmt: skip
ESTIMATE = re.compile(Q + rb"estimatedTokenUsage" + Q + rb":\{[^}]*\}")
DATES = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
PER_RUN = re.compile(rb"call_[0-9a-f]{8}|chatcmpl-[0-9a-f]{12}|http://127\.0\.0\.1:\d+/v1|\b[0-9a-f]{32}\b")


def normalize_all(bodies: list[bytes]) -> list[bytes]:
    """Normalise a sequence of bodies with one numbering of UUIDs (ids that must repeat still do)."""
    ids: dict[bytes, bytes] = {}
    out = []
    for body in bodies:
        body = UUID.sub(lambda m: ids.setdefault(m.group(), b"<uuid-%d>" % len(ids)), body)
        body = TIMES.sub(b"<time>", ESTIMATE.sub(b"<estimate>", body))
        out.append(PER_RUN.sub(b"<per-run>", DATES.sub(b"<date>", body)))
    return out


@dataclass(frozen=True)
class Step:
    """One request of a sequence: a POST of the capture's body, or a GET whose path is filled from the context."""

    capture: str
    path: str | None = None  # GET template: {id}, {executionId}, {chatId}
    with_key: bool = False


@dataclass(frozen=True)
class Sequence:
    flow: Callable[[], FakeFlow]
    steps: list[Step] = field(default_factory=list)


def _posts(*names: str) -> list[Step]:
    return [Step(n) for n in names]


def _stop_resume(prefix: str, decisions: tuple[str, ...] = ("proceed", "reject")) -> dict[str, list[Step]]:
    return {f"{prefix}_{d}": _posts(f"{prefix}_stop_then_{d}", f"{prefix}_resume_{d}") for d in decisions}


def _sequences() -> dict[str, Sequence]:
    out: dict[str, Sequence] = {}
    for mode in ("chat_stream", "chat_nonstream", "session_stream", "session_nonstream"):
        for name, steps in _stop_resume(f"af_human_input_{mode}").items():
            out[name] = Sequence(human_input_flow, steps)
    for mode in ("stream", "nonstream"):
        for name, steps in _stop_resume(f"af_tool_approval_{mode}").items():
            out[name] = Sequence(tool_approval_flow, steps)
        for name, steps in _stop_resume(f"sequential_approval_{mode}", ("approve", "reject")).items():
            out[name] = Sequence(sequential_approval_flow, steps)
        out[f"af_condition_{mode}"] = Sequence(condition_flow, _posts(f"af_condition_true_{mode}",
                                                                    f"af_condition_else_{mode}"))  # fmt: skip
        out[f"af_iteration_{mode}"] = Sequence(iteration_flow, _posts(f"af_iteration_{mode}"))
        out[f"af_loop_{mode}"] = Sequence(loop_flow, _posts(f"af_loop_{mode}"))
        out[f"af_form_{mode}"] = Sequence(form_flow, _posts(f"af_form_{mode}"))
        out[f"multiagent_supervisor_{mode}"] = Sequence(supervisor_flow, _posts(f"multiagent_supervisor_{mode}"))
        out[f"sequential_agents_{mode}"] = Sequence(sequential_flow, _posts(f"sequential_agents_{mode}"))
    out["af_form_with_question"] = Sequence(form_flow, _posts("af_form_with_question_nonstream"))
    out["af_human_input_bare_resume"] = Sequence(
        human_input_flow,
        _posts("af_human_input_bare_resume_stop", "af_human_input_bare_resume_proceed",
               "af_human_input_resume_finished_nonstream", "af_human_input_resume_finished_stream"),
    )  # fmt: skip
    out["af_human_input_unknown_session"] = Sequence(
        human_input_flow, _posts("af_human_input_resume_unknown_session_nonstream")
    )
    execution = "/api/v1/executions/{executionId}"
    messages = "/api/v1/chatmessage/{id}?chatId={chatId}"
    out["af_human_input_execution_lookups"] = Sequence(
        human_input_flow,
        [
            Step("af_human_input_exec_stop"),
            Step("executions_af_human_input_stopped", execution, with_key=True),
            Step("executions_list_af_human_input_stopped", "/api/v1/executions?agentflowId={id}&sessionId={chatId}",
                 with_key=True),
            Step("chatmessage_af_human_input_stopped", messages, with_key=True),
            Step("af_human_input_exec_resume_proceed"),
            Step("executions_af_human_input_resumed", execution, with_key=True),
            Step("chatmessage_af_human_input_resumed", messages, with_key=True),
        ],
    )  # fmt: skip
    return out


SEQUENCES = _sequences()
EXPECTED_DRIFT = {
    "executions_list_af_human_input_stopped": "the listed execution's agentflow row holds the flow's canvas "
    "(flowData), which the emulator builds smaller than the UI",
}


def test_every_agent_capture_is_replayed() -> None:
    """Every 3.1.4 agent-flow capture (predictions, executions, chat messages) belongs to a sequence."""
    replayed = {step.capture for seq in SEQUENCES.values() for step in seq.steps}
    prefixes = ("af_", "multiagent_", "sequential_", "executions_", "chatmessage_")
    names = {p.name.removesuffix(".txt") for p in CAPTURES.glob("*.txt") if p.name.startswith(prefixes)}
    assert names == replayed


def _path(step: Step, flow_id: str, context: dict[str, str]) -> str:
    if step.path is None:
        return f"/api/v1/prediction/{flow_id}"
    return step.path.format(id=flow_id, **context)


def _learn(context: dict[str, str], request: dict[str, Any] | None, body: bytes) -> None:
    if request is not None:
        session = (request.get("overrideConfig") or {}).get("sessionId")
        context["chatId"] = request.get("chatId") or session or context.get("chatId", "")
    try:
        reply = json.loads(body)
    except ValueError:
        return
    if isinstance(reply, dict) and isinstance(reply.get("executionId"), str):
        context["executionId"] = reply["executionId"]


@pytest.mark.parametrize("mode", ["transport", "loopback"])
@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_agent_sequence_matches_the_captures(name: str, mode: str) -> None:
    sequence = SEQUENCES[name]
    fake = FakeFlowise(api_key=API_KEY)
    flow_id = fake.add_flow(sequence.flow())
    context: dict[str, str] = {}
    got_bodies, want_bodies = [], []
    with fake.serve() as base_url:
        for step in sequence.steps:
            capture = recorded(step.capture)
            method = "GET" if step.path else "POST"
            body = json.dumps(capture.request).encode() if method == "POST" else None
            headers = {"Authorization": f"Bearer {API_KEY}"} if step.with_key else {}
            path = _path(step, flow_id, context)
            if mode == "transport":
                got = transport_exchange(fake, method, path, body, headers)
            else:
                got = socket_exchange(base_url, method, path, body, headers)
            _learn(context, capture.request, got.body)
            assert (got.status, got.reason) == (capture.status, capture.reason), step.capture
            assert normalize_headers(got.headers, got.body) == normalize_headers(capture.headers, capture.body)
            if step.capture in EXPECTED_DRIFT:
                _assert_same_shape(json.loads(got.body), json.loads(capture.body), step.capture)
                continue
            got_bodies.append(got.body)
            want_bodies.append(capture.body)
    for step, got_body, want_body in zip(
        [s for s in sequence.steps if s.capture not in EXPECTED_DRIFT],
        normalize_all(got_bodies),
        normalize_all(want_bodies),
        strict=True,
    ):
        assert got_body == want_body, step.capture


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


def _assert_same_shape(got: Any, want: Any, what: str) -> None:
    assert _shape(got) == _shape(want), what


def _drifted(make: Callable[[], FakeFlow], change: Callable[[FakeFlow], None]) -> Callable[[], FakeFlow]:
    def build() -> FakeFlow:
        flow = make()
        change(flow)
        return flow

    return build


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("af_human_input_chat_stream_proceed", lambda f: setattr(f.nodes[2], "usage", (17, 20))),  # type: ignore[index]
        ("af_human_input_session_nonstream_reject", lambda f: setattr(f.nodes[1], "feedback", False)),  # type: ignore[index]
        ("af_tool_approval_stream_reject", lambda f: setattr(f.nodes[0], "tool_usage", (7, 4))),  # type: ignore[index]
        ("af_loop_stream", lambda f: setattr(f.nodes[1], "max_loop_count", 3)),  # type: ignore[index]
        ("multiagent_supervisor_nonstream", lambda f: f.agent_reasoning[1].update(usedTools=[])),  # type: ignore[index]
    ],
    ids=["usage", "feedback-switch", "tool-usage", "loop-count", "null-items"],
)
def test_the_comparison_catches_drift(name: str, change: Callable[[FakeFlow], None], monkeypatch: Any) -> None:
    """Self-test: a script that differs from the real flow in one detail fails the replay."""
    sequence = SEQUENCES[name]
    monkeypatch.setitem(SEQUENCES, name, Sequence(_drifted(sequence.flow, change), sequence.steps))
    with pytest.raises(AssertionError):
        test_agent_sequence_matches_the_captures(name, "transport")
