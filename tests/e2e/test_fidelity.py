"""Fidelity: the emulator (``FakeFlowise``) must answer like the real Flowise 3.1.4 does.

For each flow kind, the same request goes to the real server and to a ``FakeFlow`` scripted to be the same flow.
Compared, for streaming and JSON replies alike:

* status, content type and headers (values of ``Date``, ``ETag``, ``Content-Length`` aside);
* the event sequence: each frame's prefix lines, event name and payload *shape* (object keys in order, JSON type
  of every leaf, recursively; ids, dates and numbers aside), and the JSON body's shape, key order included;
* the stable values (answer tokens, error messages, agentflow statuses, node ids/labels, tool and document
  payloads), see :func:`stable_values`;
* what the core client folds from each (``Prediction`` shape and stable fields, or the same exception).

A failure lists every difference as ``path: what`` lines; that is the emulator drifting from the real server.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from e2e_support import (
    MODES,
    first_difference,
    parse_sse_frames,
    run_client_at,
    shape,
    shape_diff,
    wire_summary,
)
from flows import CANNED_ANSWER, TOOL_ANSWER
from harness import RealFlowiseState

from flowise_integrations import FlowiseError, Prediction
from flowise_integrations.testing import FakeFlow, FakeFlowise

pytestmark = pytest.mark.timeout(120)

TIMEOUT = httpx.Timeout(30.0, connect=5.0)
CALCULATOR = {"tool": "calculator", "toolInput": {"input": "2 + 2"}, "toolOutput": "4"}
# The retrieval chain's two chunks (memoryVectorStore topK 2 over flows.RETRIEVAL_TEXT, split by lines).
SOURCE_DOCUMENTS = [
    {
        "pageContent": "Paris is the capital of France.",
        "metadata": {"loc": {"lines": {"from": 5, "to": 5}}, "source": "inline-test-doc"},
    },
    {
        "pageContent": "Flowise is an open source low-code tool for building LLM apps.",
        "metadata": {"loc": {"lines": {"from": 1, "to": 1}}, "source": "inline-test-doc"},
    },
]
_TOOL_CALL = {"input": "2 + 2"}


def _agent_action(major: int = 3) -> str:
    """The Tool Agent's ``agent_action`` trace: a JSON string of the LangChain AgentAction (as 3.1.4 sends it;
    2.x: no ``model_provider``, no token details, ``tool_calls`` after ``usage_metadata``)."""
    kwargs: dict[str, Any] = {
        "content": "",
        "additional_kwargs": {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_00000000",
                    "type": "function",
                    "function": {"name": "calculator", "arguments": json.dumps(_TOOL_CALL)},
                }
            ]
        },
        "response_metadata": {
            "prompt": 0,
            "completion": 0,
            "model_provider": "openai",
            "usage": {"prompt_tokens": 10, "completion_tokens": 12, "total_tokens": 22},
            "finish_reason": "tool_calls",
            "model_name": "fake-gpt",
        },
        "tool_call_chunks": [
            {
                "name": "calculator",
                "args": json.dumps(_TOOL_CALL),
                "id": "call_00000000",
                "index": 0,
                "type": "tool_call_chunk",
            }
        ],
        "tool_calls": [{"name": "calculator", "args": _TOOL_CALL, "id": "call_00000000", "type": "tool_call"}],
        "id": "chatcmpl-000000000000",
        "usage_metadata": {
            "input_tokens": 10,
            "output_tokens": 12,
            "total_tokens": 22,
            "input_token_details": {},
            "output_token_details": {},
        },
        "invalid_tool_calls": [],
    }
    if major < 3:
        del kwargs["response_metadata"]["model_provider"]
        for key in ("input_token_details", "output_token_details"):
            del kwargs["usage_metadata"][key]
        kwargs["tool_calls"] = kwargs.pop("tool_calls")
        kwargs["invalid_tool_calls"] = kwargs.pop("invalid_tool_calls")
    action = {
        "tool": "calculator",
        "toolInput": _TOOL_CALL,
        "toolCallId": "call_00000000",
        "log": 'Invoking "calculator" with {"input":"2 + 2"}\n',
        "messageLog": [
            {"lc": 1, "type": "constructor", "id": ["langchain_core", "messages", "AIMessageChunk"], "kwargs": kwargs}
        ],
    }
    return json.dumps(action, separators=(",", ":"))


RUN, PARENT = "01a20d64-0a39-7098-b0eb-c43f44476dcb", "01a20d64-0a42-760e-8ae6-63ad541e010c"


def agent_trace(major: int = 3) -> list[dict[str, Any]]:
    """The Tool Agent's detailed-streaming steps (2.x: ``tool_start`` carries the bare tool input)."""
    tool_input = json.dumps(_TOOL_CALL, separators=(",", ":")) if major >= 3 else _TOOL_CALL["input"]
    return [
        {"step": "agent_action", "action": _agent_action(major), "runId": RUN, "parentRunId": None},
        {"step": "tool_start", "name": "unknown-tool", "input": tool_input, "runId": PARENT, "parentRunId": RUN},
        {"step": "tool_end", "output": "4", "runId": PARENT, "parentRunId": RUN},
    ]


AGENT_TRACE = agent_trace()


@dataclass
class Case:
    """One flow kind: the real flow, the equivalent emulator script, and the request bodies (turns) to send."""

    id: str
    flow: str
    script: FakeFlow
    turns: list[dict[str, Any]]
    with_key: bool = False
    drift: str | None = None
    """A known, reported difference of the emulator: the case is a strict xfail until the emulator is fixed."""
    on_target: Callable[[RealFlowiseState], FakeFlow] | None = None
    """The script for a given target, when the flow itself answers differently there (else ``script``)."""

    def script_for(self, state: RealFlowiseState) -> FakeFlow:
        return self.on_target(state) if self.on_target is not None else self.script

    def param(self) -> Any:
        marks = [pytest.mark.xfail(strict=True, reason=self.drift)] if self.drift else []
        return pytest.param(self, id=self.id, marks=marks)


def _retrieval_script(state: RealFlowiseState) -> FakeFlow:
    """3.x: ``start`` carries the first token. 2.x: an empty ``start``, an empty token before and two after."""
    if state.major >= 3:
        return FakeFlow(start_data="Hello", source_documents=SOURCE_DOCUMENTS)
    words = CANNED_ANSWER.split(" ")
    tokens = ["", words[0], *(" " + w for w in words[1:]), "", ""]
    return FakeFlow(start_data="", tokens=tokens, source_documents=SOURCE_DOCUMENTS)


def _detailed_tool_agent_script(state: RealFlowiseState) -> FakeFlow:
    """Queue mode relays no ``agent_trace`` (RedisEventPublisher has no method for it)."""
    trace = None if state.is_queue else agent_trace(state.major)
    return FakeFlow(answer=TOOL_ANSWER, used_tools=[CALCULATOR], memory_type="Buffer Memory", agent_trace=trace)


def _cases() -> list[Case]:
    session = f"fidelity-session-{uuid.uuid4()}"
    chat = str(uuid.uuid4())
    history = [
        {"role": "userMessage", "content": "my name is Ada"},
        {"role": "apiMessage", "content": "Hello Ada."},
    ]
    return [
        Case("llm_chain", "llm_chain", FakeFlow(), [{"question": "hi"}]),
        Case(
            "conversation_two_turns",
            "conversation_chain",
            FakeFlow(memory_type="Buffer Memory"),
            [
                {"question": "hi", "overrideConfig": {"sessionId": session}},
                {"question": "again?", "overrideConfig": {"sessionId": session}},
            ],
        ),
        Case(
            "retrieval",
            "retrieval_qa",
            FakeFlow(start_data="Hello", source_documents=SOURCE_DOCUMENTS),
            [{"question": "What is Flowise?"}],
            on_target=_retrieval_script,
        ),
        Case(
            "tool_agent",
            "tool_agent",
            FakeFlow(answer=TOOL_ANSWER, used_tools=[CALCULATOR], memory_type="Buffer Memory"),
            [{"question": "what is 2 + 2?"}],
        ),
        Case(
            "tool_agent_detailed",
            "tool_agent_detailed",
            FakeFlow(answer=TOOL_ANSWER, used_tools=[CALCULATOR], memory_type="Buffer Memory", agent_trace=AGENT_TRACE),
            [{"question": "what is 2 + 2?"}],
            on_target=_detailed_tool_agent_script,
        ),
        Case(
            "agentflow_v2_llm",
            "agentflow_v2_llm",
            FakeFlow(kind="agentflow"),
            [{"question": "hi"}],
        ),
        Case(
            "agentflow_v2_memory_and_history",
            "agentflow_v2_llm",
            FakeFlow(kind="agentflow"),
            [{"question": "hi", "chatId": chat, "history": history}, {"question": "and my name?", "chatId": chat}],
        ),
        Case(
            "agentflow_v2_agent_tool",
            "agentflow_v2_agent_tool",
            FakeFlow(kind="agentflow", node="agent", answer=TOOL_ANSWER, used_tools=[CALCULATOR]),
            [{"question": "what is 2 + 2?"}],
        ),
        Case(
            "agentflow_v2_upstream_error",
            "agentflow_v2_llm",
            FakeFlow(kind="agentflow", error="Error in LLM node: 400 fake upstream error (TRIGGER_ERROR)"),
            [{"question": "please TRIGGER_ERROR"}],
        ),
        Case("protected_without_key", "llm_chain_protected", FakeFlow(api_key="<set per test>"), [{"question": "hi"}]),
        Case(
            "protected_with_key",
            "llm_chain_protected",
            FakeFlow(api_key="<set per test>"),
            [{"question": "hi"}],
            with_key=True,
        ),
        Case(
            "upstream_error",
            "llm_chain",
            FakeFlow(error="400 fake upstream error (TRIGGER_ERROR)"),
            [{"question": "please TRIGGER_ERROR"}],
        ),
        Case("non_streamable", "llm_chain_model_streaming_off", FakeFlow(streaming=False), [{"question": "hi"}]),
    ]


CASES = _cases()


# ------------------------------------------------------------------------------------------ plumbing


class Sides:
    """The same request, to the real server and to the emulator (in-process transport)."""

    def __init__(self, state: RealFlowiseState, fake: FakeFlowise) -> None:
        self.state = state
        self.fake = fake
        self.real_http = httpx.Client(base_url=state.base_url, timeout=TIMEOUT)
        self.fake_http = httpx.Client(transport=fake.transport(), base_url="http://flowise.test", timeout=TIMEOUT)

    def close(self) -> None:
        self.real_http.close()
        self.fake_http.close()

    def headers(self, with_key: bool) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.state.api_key}"} if with_key else {}

    def post(
        self, real_id: str, fake_id: str, body: dict[str, Any], *, with_key: bool
    ) -> tuple[httpx.Response, httpx.Response]:
        headers = self.headers(with_key)
        real = self.real_http.post(f"/api/v1/prediction/{real_id}", json=body, headers=headers)
        fake = self.fake_http.post(f"/api/v1/prediction/{fake_id}", json=body, headers=headers)
        return real, fake

    def get(self, real_path: str, fake_path: str) -> tuple[httpx.Response, httpx.Response]:
        headers = self.headers(True)
        return self.real_http.get(real_path, headers=headers), self.fake_http.get(fake_path, headers=headers)


@pytest.fixture(scope="module")
def sides(real_flowise: RealFlowiseState) -> Iterator[Sides]:
    fake = FakeFlowise(version=real_flowise.version, api_key=real_flowise.api_key)
    s = Sides(real_flowise, fake)
    yield s
    s.close()


def _fake_flow(sides: Sides, case: Case) -> str:
    script = case.script_for(sides.state)
    if script.api_key is not None:  # the flow is protected by the real server's key
        script = dataclasses.replace(script, api_key=sides.state.api_key)
    return sides.fake.add_flow(script)


_VALUE_EVENTS = frozenset({"start", "token", "agentFlowEvent", "error", "end", "usedTools", "calledTools",
                           "sourceDocuments", "usageMetadata", "action"})  # fmt: skip


def stable_values(response: httpx.Response) -> list[Any]:
    """The values that do not change from run to run (ids, dates, timings and URLs left out)."""
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        body = json.loads(response.content) if response.content else None
        if not isinstance(body, dict):
            return [body]
        keep = ("text", "question", "statusCode", "success", "message", "memoryType", "isStreamValid",
                "sourceDocuments", "usedTools")  # fmt: skip
        values: list[Any] = [(k, body[k]) for k in keep if k in body]
        values += [("node", n["nodeId"], n["nodeLabel"], n["status"]) for n in body.get("agentFlowExecutedData") or []]
        return values
    values = []
    for frame in parse_sse_frames(response.content):
        if frame.comment:
            continue
        name, data = frame.payload.get("event"), frame.payload.get("data")
        if name in _VALUE_EVENTS:
            values.append((name, data))
        elif name == "nextAgentFlow":
            values.append((name, {k: data.get(k) for k in ("nodeId", "nodeLabel", "status", "error")}))
        elif name == "agentFlowExecutedData":
            values.append((name, [(n["nodeId"], n["nodeLabel"], n["status"]) for n in data]))
        elif name == "agent_trace":
            values.append((name, data.get("step")))
        elif name == "metadata":
            values.append((name, {k: data[k] for k in ("question", "memoryType") if k in data}))
        else:
            values.append((name, None))
    return values


def _value_diff(real: list[Any], fake: list[Any]) -> str:
    if real == fake:
        return ""
    lines = [f"stable values differ ({len(real)} real vs {len(fake)} emulator items):"]
    for i in range(max(len(real), len(fake))):
        r = real[i] if i < len(real) else "<missing>"
        f = fake[i] if i < len(fake) else "<missing>"
        if r != f:
            lines.append(f"  #{i}: real {r!r}\n       emulator {f!r}")
    return "\n".join(lines)


_ERROR_STATUS_FRAME = b'"event":"agentFlowEvent","data":"ERROR"'


def without_error_status(response: httpx.Response) -> httpx.Response:
    """The response minus its ``agentFlowEvent: ERROR`` frames. In queue mode that frame comes from the worker
    through Redis and races the main server's ``error`` (before it, after it, or after ``end``: lost), so only
    the rest of a failed agentflow stream can be compared."""
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        return response
    blocks = [b for b in response.content.split(b"\n\n") if _ERROR_STATUS_FRAME not in b]
    return httpx.Response(response.status_code, headers=response.headers, content=b"\n\n".join(blocks))


def assert_same_reply(real: httpx.Response, fake: httpx.Response, what: str, *, queue: bool = False) -> None:
    if queue:
        real, fake = without_error_status(real), without_error_status(fake)
    problems = [
        first_difference(wire_summary(real), wire_summary(fake)),
        _value_diff(stable_values(real), stable_values(fake)),
    ]
    report = "\n".join(p for p in problems if p)
    assert not report, f"emulator differs from the real Flowise ({what}):\n{report}"


# ------------------------------------------------------------------------------------------ the wire


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_emulator_replies_like_the_real_server(sides: Sides, case: Case, streaming: bool) -> None:
    fake_id = _fake_flow(sides, case)
    real_id = sides.state.flows[case.flow]
    for n, turn in enumerate(case.turns, 1):
        body = {**turn, "streaming": True} if streaming else dict(turn)
        if streaming and "chatId" in body:  # a fresh conversation per mode
            body["chatId"] = body["chatId"][:-4] + "5555"
        real, fake = sides.post(real_id, fake_id, body, with_key=case.with_key)
        mode = "streaming" if streaming else "JSON"
        assert_same_reply(real, fake, f"{case.id}, turn {n}, {mode}", queue=sides.state.is_queue)


@pytest.mark.parametrize(
    ("drifted", "modes", "expected"),
    [
        (FakeFlow(memory_type="Buffer Memory"), (False, True), "keys only in the emulator: ['memoryType']"),
        (FakeFlow(start_data=None), (True,), "event names"),
        (FakeFlow(answer="Hello from a drifted emulator."), (False, True), "stable values differ"),
        (FakeFlow(follow_up_prompts=["more?"]), (False, True), "keys only in the emulator: ['followUpPrompts']"),
    ],
    ids=["extra-key", "missing-event", "other-tokens", "extra-payload"],
)
def test_the_comparison_catches_drift(sides: Sides, drifted: FakeFlow, modes: tuple[bool, ...], expected: str) -> None:
    """Self-test: an emulator that answered differently from the real ``llm_chain`` is reported, precisely."""
    fake_id = sides.fake.add_flow(drifted)
    for streaming in modes:
        body = {"question": "hi", **({"streaming": True} if streaming else {})}
        real, fake = sides.post(sides.state.flows["llm_chain"], fake_id, body, with_key=False)
        with pytest.raises(AssertionError, match="emulator differs") as info:
            assert_same_reply(real, fake, "drift self-test")
        assert expected in str(info.value)


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "sse"])
def test_unknown_chatflow(sides: Sides, streaming: bool) -> None:
    """JSON: the same 404 body. Streaming: neither answers at all (Flowise's hang, emulated)."""
    unknown = str(uuid.uuid4())
    if not streaming:
        real, fake = sides.post(unknown, unknown, {"question": "hi"}, with_key=False)
        assert_same_reply(real, fake, "unknown chatflow, JSON")
        real, fake = sides.post("not-a-uuid", "not-a-uuid", {"question": "hi"}, with_key=False)
        assert_same_reply(real, fake, "malformed chatflow id, JSON")
        return
    short = httpx.Timeout(1.5, connect=5.0)
    for http in (sides.real_http, sides.fake_http):
        with pytest.raises(httpx.ReadTimeout):  # both hang: nothing at all comes back
            http.post(f"/api/v1/prediction/{unknown}", json={"question": "hi", "streaming": True}, timeout=short)


def test_other_endpoints(sides: Sides) -> None:
    flows = sides.state.flows
    streamable = sides.fake.add_flow(FakeFlow())
    not_streamable = sides.fake.add_flow(FakeFlow(streaming=False))
    unknown = str(uuid.uuid4())
    pairs = {
        "ping": ("/api/v1/ping", "/api/v1/ping"),
        "version": ("/api/v1/version", "/api/v1/version"),
        "streaming: yes": (
            f"/api/v1/chatflows-streaming/{flows['llm_chain']}",
            f"/api/v1/chatflows-streaming/{streamable}",
        ),
        "streaming: no": (
            f"/api/v1/chatflows-streaming/{flows['llm_chain_model_streaming_off']}",
            f"/api/v1/chatflows-streaming/{not_streamable}",
        ),
        "streaming: unknown": (f"/api/v1/chatflows-streaming/{unknown}", f"/api/v1/chatflows-streaming/{unknown}"),
    }
    problems = []
    for what, (real_path, fake_path) in pairs.items():
        real, fake = sides.get(real_path, fake_path)
        if (real.status_code, real.headers.get("content-type")) != (fake.status_code, fake.headers.get("content-type")):
            problems.append(f"{what}: real {real.status_code} {real.headers.get('content-type')} vs emulator "
                            f"{fake.status_code} {fake.headers.get('content-type')}")  # fmt: skip
            continue
        if "json" in (real.headers.get("content-type") or ""):
            diff = shape_diff(shape(real.json()), shape(fake.json()))
            values = (_strip_id(real.json(), unknown), _strip_id(fake.json(), unknown))
            if diff or (what != "version" and values[0] != values[1]):
                problems.append(f"{what}: {diff or values}")
        elif real.text != fake.text:
            problems.append(f"{what}: real {real.text!r} vs emulator {fake.text!r}")
    assert not problems, "emulator differs from the real Flowise:\n" + "\n".join(problems)


def _strip_id(value: Any, flow_id: str) -> Any:
    return json.loads(json.dumps(value).replace(flow_id, "<id>"))


def test_stored_chat_messages(sides: Sides) -> None:
    """``GET /api/v1/chatmessage/{id}?chatId=`` after one prediction: the same rows, the same columns."""
    problems = []
    for flow, script, question in (
        ("llm_chain", FakeFlow(), "hi"),
        (
            "tool_agent",
            FakeFlow(answer=TOOL_ANSWER, used_tools=[CALCULATOR], memory_type="Buffer Memory"),
            "what is 2 + 2?",
        ),
        ("agentflow_v2_llm", FakeFlow(kind="agentflow"), "hi"),
    ):
        fake_id, real_id, chat = sides.fake.add_flow(script), sides.state.flows[flow], str(uuid.uuid4())
        sides.post(real_id, fake_id, {"question": question, "chatId": chat}, with_key=False)
        real, fake = sides.get(
            f"/api/v1/chatmessage/{real_id}?chatId={chat}", f"/api/v1/chatmessage/{fake_id}?chatId={chat}"
        )
        if real.status_code != fake.status_code:
            problems.append(f"{flow}: HTTP {real.status_code} vs emulator {fake.status_code}")
            continue
        problems += [f"{flow}: {line}" for line in shape_diff(shape(real.json()), shape(fake.json()))]
        roles = ([r["role"] for r in real.json()], [r["role"] for r in fake.json()])
        if roles[0] != roles[1]:
            problems.append(f"{flow}: roles {roles[0]} vs emulator {roles[1]}")
    assert not problems, "emulator differs from the real Flowise:\n" + "\n".join(problems)


def _slow_agentflow() -> FakeFlow:
    # fake_llm.py's SLOW_STREAM: 40 tokens 250 ms apart, after the role chunk's empty token
    return FakeFlow(
        kind="agentflow", tokens=[("" if i == 0 else " ") + f"slow{i}" for i in range(40)], token_delay=0.25
    )


def _aborted(http: httpx.Client, flow_id: str) -> httpx.Response:
    chat = str(uuid.uuid4())
    body = {"question": "SLOW_STREAM please", "streaming": True, "chatId": chat}
    raw, aborted = b"", False
    with http.stream("POST", f"/api/v1/prediction/{flow_id}", json=body) as response:
        for chunk in response.iter_bytes():
            raw += chunk
            if not aborted and b'"data":"slow0"' in raw:
                ack = http.put(f"/api/v1/chatmessage/abort/{flow_id}/{chat}")
                assert ack.json() == {"status": 200, "message": "Chat message aborted"}
                aborted = True
    assert aborted
    return httpx.Response(response.status_code, headers=response.headers, content=raw)


def test_abort_of_a_streaming_agentflow(sides: Sides) -> None:
    """``PUT /chatmessage/abort`` while the LLM node streams (tokens collapsed: how many arrive is timing)."""
    real = _aborted(sides.real_http, sides.state.flows["agentflow_v2_llm"])
    fake = _aborted(sides.fake_http, sides.fake.add_flow(_slow_agentflow()))
    if sides.state.is_queue:
        real, fake = without_error_status(real), without_error_status(fake)
    real_summary, fake_summary = (_collapse_tokens(wire_summary(r)) for r in (real, fake))
    values = [_collapse_value_tokens(stable_values(r)) for r in (real, fake)]
    report = "\n".join(p for p in (first_difference(real_summary, fake_summary), _value_diff(*values)) if p)
    assert not report, f"emulator differs from the real Flowise (aborted agentflow stream):\n{report}"


def _collapse_tokens(summary: Any) -> Any:
    events = []
    for event in summary.events:
        if event[1] == "token" and events and events[-1][1] == "token*":
            continue
        events.append((event[0], "token*", event[2]) if event[1] == "token" else event)
    summary.events = events
    return summary


def _collapse_value_tokens(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value[0] == "token":
            if out and out[-1][0] == "token*":
                continue
            value = ("token*", None)
        out.append(value)
    return out


# ------------------------------------------------------------------------------------------ the client


def _folded(result: Prediction) -> dict[str, Any]:
    """The stable part of a Prediction: every field's shape, plus the values that do not change per run."""
    dumped = result.model_dump(mode="json")
    return {
        "shape": shape({k: v for k, v in dumped.items() if k != "chatflow_id"}),
        "values": {
            k: dumped[k]
            for k in (
                "text",
                "question",
                "memory_type",
                "source_documents",
                "used_tools",
                "called_tools",
                "usage",
                "agent_flow_status",
                "streamed",
                "finished",
                "finish_reason",
                "error",
                "follow_up_prompts",
            )
        },
    }


SINGLE_TURN = [c.param() for c in CASES if len(c.turns) == 1]


async def _outcome(run: Any) -> tuple[Any, ...]:
    try:
        outcome = await run
    except FlowiseError as exc:
        partial = _folded(exc.partial) if exc.partial is not None else None
        return (type(exc).__name__, exc.message, getattr(exc, "status_code", None), partial)
    return ("ok", _folded(outcome.result), [e.event for e in outcome.events])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", SINGLE_TURN)
async def test_client_folds_the_same_prediction(sides: Sides, case: Case, mode: str) -> None:
    """What a consumer of the core client sees is the same against the emulator and the real server."""
    fake_id = _fake_flow(sides, case)
    key = sides.state.api_key if case.with_key else None
    question = case.turns[0]["question"]
    real = await _outcome(run_client_at(sides.state.base_url, key, mode, sides.state.flows[case.flow], question))
    fake = await _outcome(
        run_client_at(
            "http://flowise.test",
            key,
            mode,
            fake_id,
            question,
            sync_http=lambda: httpx.Client(transport=sides.fake.transport(), timeout=TIMEOUT),
            async_http=lambda: httpx.AsyncClient(transport=sides.fake.async_transport(), timeout=TIMEOUT),
        )
    )
    if real[0] == "ok" and fake[0] == "ok":
        problems = shape_diff(real[1]["shape"], fake[1]["shape"])
        if real[1]["values"] != fake[1]["values"]:
            problems.append(f"values: real {real[1]['values']}\n        emulator {fake[1]['values']}")
        if real[2] != fake[2]:
            problems.append(f"events: real {real[2]}\n        emulator {fake[2]}")
        assert not problems, "the client folds differently:\n" + "\n".join(problems)
    elif sides.state.is_queue:  # what the partial holds depends on the error/status race (see without_error_status)
        assert real[:3] == fake[:3]
        assert (real[3] or {}).get("values", {}).get("text") == (fake[3] or {}).get("values", {}).get("text")
    else:
        assert real == fake


def test_helper_constants_match_the_harness() -> None:
    """The scripts above use the fake LLM's fixed answers."""
    assert FakeFlow().answer == CANNED_ANSWER
    assert "".join(FakeFlow(answer=TOOL_ANSWER).text_and_tokens({})[1]) == TOOL_ANSWER
