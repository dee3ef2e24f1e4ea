"""``FakeFlowise(version="2.2.8")`` against the real Flowise 2.2.8 captures, and what each version changes.

The 2.2.8 captures replay like the 3.1.4 ones (``test_emulator_agents.py`` normalisation, in order, over the
transport and the loopback server). Then the per-version facts, each against both sides of its boundary.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_emulator_agents import (
    CALCULATOR,
    TOOL_ANSWER,
    normalize_all,
    recorded,
    sequential_approval_flow,
    sequential_flow,
    supervisor_flow,
)
from test_emulator_fidelity import normalize_headers, socket_exchange, transport_exchange

from flowise_integrations.testing import FakeFlow, FakeFlowise

OLD = Path(__file__).parent / "fixtures" / "real_captures_2.2.8"
UNKNOWN = "00000000-0000-0000-0000-000000000000"
FLOW_KEY = "flow-secret-key"
DOCS = [
    {"pageContent": "Paris is the capital of France.",
     "metadata": {"loc": {"lines": {"from": 5, "to": 5}}, "source": "inline-test-doc"}},
    {"pageContent": "Flowise is an open source low-code tool for building LLM apps.",
     "metadata": {"loc": {"lines": {"from": 1, "to": 1}}, "source": "inline-test-doc"}},
]  # fmt: skip
ANSWER_2X = ["", "Hello", " from", " the", " fake", " LLM!", " This", " answer", " is", " streamed", " token", " by",
             " token.", "", ""]  # fmt: skip


def _trace() -> list[dict[str, Any]]:
    """The Tool Agent's detailed-streaming payloads are flow content: taken from the capture."""
    body = recorded("tool_agent_detailed_stream", OLD).body
    events = [json.loads(m) for m in re.findall(rb"data:([^\n]*)\n\n", body)]
    return [e["data"] for e in events if e["event"] == "agent_trace"]


def _tool_agent(**extra: Any) -> FakeFlow:
    return FakeFlow(answer=TOOL_ANSWER, used_tools=[CALCULATOR], memory_type="Buffer Memory", **extra)


FLOWS_2X: dict[str, Any] = {
    "llm_chain": FakeFlow,
    "conversation_chain": lambda: FakeFlow(memory_type="Buffer Memory"),
    "retrieval_qa": lambda: FakeFlow(tokens=ANSWER_2X, source_documents=DOCS),
    "tool_agent": _tool_agent,
    "tool_agent_detailed": lambda: _tool_agent(agent_trace=_trace()),
    "llm_chain_model_streaming_off": lambda: FakeFlow(streaming=False),
    "llm_chain_protected": lambda: FakeFlow(api_key=FLOW_KEY),
    "protected_no_key": lambda: FakeFlow(api_key=FLOW_KEY),
    "llm_chain_error": lambda: FakeFlow(error="400 fake upstream error (TRIGGER_ERROR)"),
    "missing_question": FakeFlow,
    "multiagent_supervisor": supervisor_flow,
    "sequential_agents": sequential_flow,
}
SEQUENCES_2X: dict[str, tuple[Any, list[str]]] = {
    f"{flow}_{mode}": (make, [f"{flow}_{mode}"])
    for flow, make in FLOWS_2X.items()
    if flow != "missing_question"
    for mode in ("stream", "nonstream")
}
SEQUENCES_2X["missing_question"] = (FakeFlow, ["missing_question"])
for _mode in ("stream", "nonstream"):
    for _decision in ("approve", "reject"):
        _prefix = f"sequential_approval_{_mode}"
        SEQUENCES_2X[f"{_prefix}_{_decision}"] = (
            sequential_approval_flow,
            [f"{_prefix}_stop_then_{_decision}", f"{_prefix}_resume_{_decision}"],
        )


def test_every_2x_prediction_capture_is_replayed() -> None:
    names = {p.name.removesuffix(".request.json") for p in OLD.glob("*.request.json")}
    replayed = {n for _, steps in SEQUENCES_2X.values() for n in steps} | {"unknown_chatflow_nonstream",
                                                                           "unknown_chatflow_stream"}  # fmt: skip
    assert names == replayed


@pytest.mark.parametrize("mode", ["transport", "loopback"])
@pytest.mark.parametrize("name", sorted(SEQUENCES_2X))
def test_2x_sequence_matches_the_captures(name: str, mode: str) -> None:
    make, steps = SEQUENCES_2X[name]
    fake = FakeFlowise(version="2.2.8")
    flow_id = fake.add_flow(make())
    got_bodies, want_bodies = [], []
    with fake.serve() as base_url:
        for step in steps:
            capture = recorded(step, OLD)
            body = json.dumps(capture.request).encode()
            headers = {"Authorization": f"Bearer {FLOW_KEY}"} if step.startswith("llm_chain_protected") else {}
            path = f"/api/v1/prediction/{flow_id}"
            if mode == "transport":
                got = transport_exchange(fake, "POST", path, body, headers)
            else:
                got = socket_exchange(base_url, "POST", path, body, headers)
            assert (got.status, got.reason) == (capture.status, capture.reason), step
            assert normalize_headers(got.headers, got.body) == normalize_headers(capture.headers, capture.body)
            got_bodies.append(got.body)
            want_bodies.append(capture.body)
    assert normalize_all(got_bodies) == normalize_all(want_bodies)


def test_2x_unknown_chatflow_is_a_500_in_json_and_silence_when_streaming() -> None:
    fake = FakeFlowise(version="2.2.8")
    capture = recorded("unknown_chatflow_nonstream", OLD)
    got = transport_exchange(fake, "POST", f"/api/v1/prediction/{UNKNOWN}", b'{"question":"hi"}', {})
    assert (got.status, got.body) == (capture.status, capture.body)
    assert normalize_headers(got.headers, got.body) == normalize_headers(capture.headers, capture.body)
    malformed = transport_exchange(fake, "POST", "/api/v1/prediction/not-a-uuid", b'{"question":"hi"}', {})
    assert malformed.status == 500
    assert json.loads(malformed.body)["message"] == (
        "Error: chatflowsService.getChatflowById - Chatflow not-a-uuid not found in the database!"
    )
    assert (OLD / "unknown_chatflow_stream.txt").read_bytes() == b""  # Flowise never answers
    with httpx.Client(transport=fake.transport(), timeout=0.2) as http, pytest.raises(httpx.ReadTimeout):
        http.post(f"http://flowise.test/api/v1/prediction/{UNKNOWN}", json={"question": "hi", "streaming": True})


@pytest.mark.parametrize(("version", "status"), [("3.0.12", 500), ("3.0.13", 404), ("3.1.4", 404)])
def test_unknown_chatflow_status_by_version(version: str, status: int) -> None:
    fake = FakeFlowise(version=version)
    got = transport_exchange(fake, "POST", f"/api/v1/prediction/{UNKNOWN}", b'{"question":"hi"}', {})
    assert got.status == status


# -- per-version facts -------------------------------------------------------------------------------------------
def _stream_bytes(fake: FakeFlowise, flow: FakeFlow, body: dict[str, Any] | None = None) -> bytes:
    flow_id = fake.add_flow(flow)
    payload = json.dumps(body or {"question": "hi", "streaming": True}).encode()
    return transport_exchange(fake, "POST", f"/api/v1/prediction/{flow_id}", payload, {}).body


@pytest.mark.parametrize(("version", "colon"), [("2.2.8", False), ("3.1.1", False), ("3.1.2", True)])
def test_end_error_and_abort_lose_their_colon_before_3_1_2(version: str, colon: bool) -> None:
    opener = b"message:\ndata:" if colon else b"message\ndata:"
    ok = _stream_bytes(FakeFlowise(version=version), FakeFlow(tokens=["x"]))
    assert ok.endswith(opener + b'{"event":"end","data":"[DONE]"}\n\n')
    assert b'message:\ndata:{"event":"token","data":"x"}' in ok  # the other events keep the colon
    failed = _stream_bytes(FakeFlowise(version=version), FakeFlow(tokens=["x"], error="boom"))
    assert opener + b'{"event":"error","data":"Error: predictionsServices.buildChatflow - boom"}' in failed


@pytest.mark.parametrize(("version", "beats"), [("2.2.8", 0), ("3.1.4", 2)])
def test_heartbeats_exist_from_3_1_2(version: str, beats: int) -> None:
    body = _stream_bytes(FakeFlowise(version=version), FakeFlow(tokens=["x"], heartbeats=2))
    assert body.count(b":heartbeat\n\n") == beats


@pytest.mark.parametrize(("version", "framed"), [("2.2.8", False), ("3.1.2", False), ("3.1.3", True)])
def test_frame_guard_headers_from_3_1_3(version: str, framed: bool) -> None:
    fake = FakeFlowise(version=version)
    got = transport_exchange(fake, "GET", "/api/v1/ping", None, {})
    names = [k for k, _ in got.headers]
    assert ("Content-Security-Policy" in names) is framed
    assert ("X-Frame-Options" in names) is framed
    assert names[0] == "Vary"


def test_2x_rewrites_an_upstream_key_error_its_own_way() -> None:
    flow = FakeFlow(error="401 Incorrect API key provided: sk-***")
    old = _stream_bytes(FakeFlowise(version="2.2.8"), flow)
    new = _stream_bytes(FakeFlowise(version="3.1.4"), flow)
    assert b'"data":"401 Invalid model key or Incorrect local model configuration."' in old
    assert "401 Unauthorized \u2013 check your API key".encode() in new


@pytest.mark.parametrize(("version", "needs_key"), [("2.2.8", True), ("3.0.13", True), ("3.1.0", False)])
def test_abort_needs_the_workspace_key_before_3_1_0(version: str, needs_key: bool) -> None:
    fake = FakeFlowise(version=version, api_key="workspace-key")
    with httpx.Client(transport=fake.transport(), base_url="http://flowise.test") as http:
        anonymous = http.put(f"/api/v1/chatmessage/abort/{UNKNOWN}/chat-1")
        keyed = http.put(f"/api/v1/chatmessage/abort/{UNKNOWN}/chat-1",
                         headers={"Authorization": "Bearer workspace-key"})  # fmt: skip
    assert anonymous.status_code == (401 if needs_key else 200)
    if needs_key:
        assert anonymous.json() == {"error": "Unauthorized Access"}
    assert keyed.json() == {"status": 200, "message": "Chat message aborted"}


@pytest.mark.parametrize(("version", "passes"), [("2.2.8", True), ("3.1.4", False)])
def test_internal_header_passes_the_2x_gate(version: str, passes: bool) -> None:
    fake = FakeFlowise(version=version, api_key="workspace-key")
    fake.add_flow(FakeFlow())
    with httpx.Client(transport=fake.transport(), base_url="http://flowise.test") as http:
        got = http.get("/api/v1/chatflows", headers={"x-request-from": "internal"})
    assert got.status_code == (200 if passes else 401)


def test_2x_metadata_has_no_action_but_the_action_event_stays() -> None:
    action = {"id": "a-1", "mapping": {"approve": "Yes", "reject": "No"}, "elements": []}
    flow = FakeFlow(kind="multiagent", action=action)
    old = _stream_bytes(FakeFlowise(version="2.2.8"), flow)
    new = _stream_bytes(FakeFlowise(version="3.1.4"), flow)
    meta = [json.loads(m)["data"] for m in re.findall(rb'data:(\{"event":"metadata"[^\n]*)\n\n', old + new)]
    assert ["action" in m for m in meta] == [False, True]
    assert old.count(b'"event":"action"') == new.count(b'"event":"action"') == 1


def test_2x_chat_rows_have_no_execution_columns() -> None:
    fake = FakeFlowise(version="2.2.8", api_key="k")
    flow_id = fake.add_flow(FakeFlow(tokens=["x"]))
    with httpx.Client(transport=fake.transport(), base_url="http://flowise.test") as http:
        http.post(f"/api/v1/prediction/{flow_id}", json={"question": "hi", "chatId": "c"})
        rows = http.get(f"/api/v1/chatmessage/{flow_id}", headers={"Authorization": "Bearer k"}).json()
        unknown = http.get(f"/api/v1/chatmessage/{UNKNOWN}", headers={"Authorization": "Bearer k"})
    assert [r["role"] for r in rows] == ["userMessage", "apiMessage"]
    assert all(not {"executionId", "reasonContent", "execution"} & set(r) for r in rows)
    assert unknown.json() == []  # 2.x does not check that the flow exists
