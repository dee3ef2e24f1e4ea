"""The emulator's discovery endpoints against the real 3.1.4 and 2.2.8 captures, and their own rules.

``/chatflows-streaming/{id}`` and ``/chatflows-uploads/{id}`` replay byte for byte. Chatflow rows
(``/chatflows/{id}``, ``/chatflows``) keep the real column order and value types, the same values where they do not
depend on the run, and a ``flowData`` from which the client's own parser derives the same ``FlowInfo`` (the canvas
itself is the flow's content: the emulator's is smaller than the UI's, so its bytes are not compared).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_emulator_agents import (
    CAPTURES,
    Recorded,
    condition_flow,
    form_flow,
    human_input_flow,
    iteration_flow,
    loop_flow,
    recorded,
    sequential_approval_flow,
    sequential_flow,
    supervisor_flow,
    tool_approval_flow,
)
from test_emulator_fidelity import normalize_headers, transport_exchange

from flowise_integrations.discovery import FlowInfo, parse_flow, parse_uploads
from flowise_integrations.testing import LLM, FakeFlow, FakeFlowise

OLD = Path(__file__).parent / "fixtures" / "real_captures_2.2.8"
KEY = "discovery-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
FLOWS: dict[str, Any] = {
    "af_human_input": human_input_flow,
    "af_tool_approval": tool_approval_flow,
    "af_condition": condition_flow,
    "af_iteration": iteration_flow,
    "af_loop": loop_flow,
    "af_form": form_flow,
    "multiagent_supervisor": supervisor_flow,
    "sequential_agents": sequential_flow,
    "sequential_approval": sequential_approval_flow,
    "llm_chain": FakeFlow,
    "llm_chain_model_streaming_off": lambda: FakeFlow(streaming=False),
}
NEW_ONLY = ("af_human_input", "af_tool_approval", "af_condition", "af_iteration", "af_loop", "af_form")


def _named(flow: str) -> FakeFlow:
    script: FakeFlow = FLOWS[flow]()
    script.name = f"e2e-{flow}"
    return script


def _cases(kind: str) -> list[Any]:
    out = []
    for directory, version in ((CAPTURES, "3.1.4"), (OLD, "2.2.8")):
        for flow in FLOWS:
            if (directory / f"chatflows_{kind}_{flow}.txt").exists():
                out.append(pytest.param(directory, version, flow, id=f"{version}-{flow}"))
    return out


def _get(fake: FakeFlowise, path: str, headers: dict[str, str] | None = None) -> Any:
    return transport_exchange(fake, "GET", path, None, headers or {})


@pytest.mark.parametrize(("directory", "version", "flow"), _cases("streaming") + _cases("uploads"))
def test_streaming_and_uploads_replay(directory: Path, version: str, flow: str) -> None:
    fake = FakeFlowise(version=version)
    flow_id = fake.add_flow(_named(flow))
    for kind in ("streaming", "uploads"):
        name = f"chatflows_{kind}_{flow}"
        if not (directory / f"{name}.txt").exists():
            continue
        capture = recorded(name, directory)
        got = _get(fake, f"/api/v1/chatflows-{kind}/{flow_id}")
        assert (got.status, got.body) == (capture.status, capture.body), name
        assert normalize_headers(got.headers, got.body) == normalize_headers(capture.headers, capture.body)


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return [(k, _shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


_PER_RUN = ("id", "flowData", "createdDate", "updatedDate", "workspaceId")


def _same_row(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert _shape(got) == _shape(want)
    assert {k: v for k, v in got.items() if k not in _PER_RUN} == {k: v for k, v in want.items() if k not in _PER_RUN}
    for side in (got, want):
        canvas = json.loads(side["flowData"])
        assert set(canvas) == {"nodes", "edges", "viewport"}
    mine, theirs = parse_flow(got), parse_flow(want)
    assert isinstance(mine, FlowInfo) and isinstance(theirs, FlowInfo)
    ignore = {"id", "created_date", "updated_date", "raw"}
    assert mine.model_dump(exclude=ignore) == theirs.model_dump(exclude=ignore)


@pytest.mark.parametrize(("directory", "version", "flow"), _cases("get"))
def test_chatflow_row_matches(directory: Path, version: str, flow: str) -> None:
    fake = FakeFlowise(version=version, api_key=KEY)
    flow_id = fake.add_flow(_named(flow))
    capture: Recorded = recorded(f"chatflows_get_{flow}", directory)
    got = _get(fake, f"/api/v1/chatflows/{flow_id}", AUTH)
    assert got.status == capture.status
    assert normalize_headers(got.headers, got.body)[:-4] == normalize_headers(capture.headers, capture.body)[:-4]
    _same_row(json.loads(got.body), json.loads(capture.body))


@pytest.mark.parametrize(("directory", "version"), [(CAPTURES, "3.1.4"), (OLD, "2.2.8")])
def test_chatflow_list_matches(directory: Path, version: str) -> None:
    """3.x pages and filters by type (``{data, total}``); 2.x lists every flow and ignores both."""
    fake = FakeFlowise(version=version, api_key=KEY)
    names = [n for n in FLOWS if version == "3.1.4" or n not in NEW_ONLY]
    ids = {fake.add_flow(_named(n)): n for n in names}
    capture = recorded("chatflows_list", directory)
    got = _get(fake, "/api/v1/chatflows?type=AGENTFLOW&page=1&limit=1", AUTH)
    body, want = json.loads(got.body), json.loads(capture.body)
    assert _shape(body) == _shape(want)
    if version == "3.1.4":
        assert body["total"] == sum(1 for n in names if n in NEW_ONLY)
        assert [ids[r["id"]] for r in body["data"]] == ["af_form"]  # newest first
    else:
        assert [ids[r["id"]] for r in body] == names


def test_3x_list_without_paging_is_a_plain_list_and_negative_paging_is_refused() -> None:
    fake = FakeFlowise(api_key=KEY)
    fake.add_flow(FakeFlow(name="a"))
    fake.add_flow(FakeFlow(name="b", kind="agentflow"))
    assert [r["name"] for r in json.loads(_get(fake, "/api/v1/chatflows", AUTH).body)] == ["b", "a"]
    assert [r["name"] for r in json.loads(_get(fake, "/api/v1/chatflows?type=CHATFLOW", AUTH).body)] == ["a"]
    refused = _get(fake, "/api/v1/chatflows?page=-1&limit=2", AUTH)
    assert (refused.status, json.loads(refused.body)["message"]) == (412, "Error: page cannot be negative!")
    assert _get(fake, "/api/v1/chatflows").status == 401


@pytest.mark.parametrize(
    ("version", "flow_id", "status", "message"),
    [
        ("3.1.4", "00000000-0000-4000-8000-000000000000", 404,
         "Chatflow 00000000-0000-4000-8000-000000000000 not found in the database!"),
        ("3.1.4", "not-a-uuid", 400, "Invalid Chatflow ID"),
        ("2.2.8", "not-a-uuid", 500,
         "Error: chatflowsService.getChatflowById - Chatflow not-a-uuid not found in the database!"),
    ],
)  # fmt: skip
def test_unknown_chatflow_rows(version: str, flow_id: str, status: int, message: str) -> None:
    got = _get(FakeFlowise(version=version, api_key=KEY), f"/api/v1/chatflows/{flow_id}", AUTH)
    assert (got.status, json.loads(got.body)["message"]) == (status, message)


def test_discovery_fields_reach_the_client_parser() -> None:
    """Every FakeFlow discovery field shows in the row and uploads the way the client reads them."""
    fields = [{"type": "options", "label": "Plan", "name": "plan", "addOptions": [{"option": "a"}]}]
    flow = FakeFlow(kind="agentflow", name="Billing Bot", description="Answers billing questions", category="a;b",
                    deployed=True, is_public=True, input_type="form", form_title="T", form_description="D",
                    form_fields=fields, image_uploads=True, file_upload_types=[".pdf"], speech_to_text=True,
                    api_key="flow-key")  # fmt: skip
    fake = FakeFlowise(api_key=KEY)
    flow_id = fake.add_flow(flow)
    row = json.loads(_get(fake, f"/api/v1/chatflows/{flow_id}", AUTH).body)
    uploads = parse_uploads(json.loads(_get(fake, f"/api/v1/chatflows-uploads/{flow_id}").body))
    info = parse_flow(row, streaming={"isStreaming": True}, uploads=uploads)
    assert info is not None
    assert (info.name, info.type, info.description, info.categories) == (
        "Billing Bot", "AGENTFLOW", "Answers billing questions", ["a", "b"])  # fmt: skip
    assert (info.deployed, info.is_public, info.api_key_protected, info.mcp_tool_name) == (
        True,
        True,
        True,
        "Billing_Bot",
    )
    assert (info.input_type, info.form_title, info.form_description) == ("form", "T", "D")
    assert [(f.name, f.type, f.options) for f in info.form_fields] == [("plan", "options", ["a"])]
    assert info.uploads is not None and info.uploads.images and info.uploads.rag_files and info.uploads.speech_to_text
    assert info.uploads.file_types == [".pdf"]
    assert "flow-key" not in json.dumps(row)


@pytest.mark.parametrize(
    ("input_type", "message"),
    [
        ("webhook", "This flow is configured as a Webhook Trigger. Call PUT /api/v1/webhook/{id} instead of the "
         "prediction API."),
        ("schedule", "This flow is configured as a Scheduled Trigger. It is fired by the scheduler and cannot be "
         "invoked via the API. Change the Start node Input Type to Chat or Form to call it from the prediction API."),
    ],
)  # fmt: skip
def test_trigger_flows_refuse_predictions(input_type: str, message: str) -> None:
    """3.1.3+: before any event (JSON: a 500 with the prefix; streaming: error, end)."""
    fake = FakeFlowise()
    flow_id = fake.add_flow(FakeFlow(kind="agentflow", input_type=input_type, webhook_method="put"))  # type: ignore[arg-type]
    expected = "Error: predictionsServices.buildChatflow - " + message.format(id=flow_id)
    with httpx.Client(transport=fake.transport(), base_url="http://flowise.test") as http:
        plain = http.post(f"/api/v1/prediction/{flow_id}", json={"question": "hi"})
        streamed = http.post(f"/api/v1/prediction/{flow_id}", json={"question": "hi", "streaming": True})
    assert (plain.status_code, plain.json()["message"]) == (500, expected)
    frames = [json.loads(line[5:]) for line in streamed.text.split("\n") if line.startswith("data:")]
    assert frames == [{"event": "error", "data": expected}, {"event": "end", "data": "[DONE]"}]
    row = json.loads(_get(fake, f"/api/v1/chatflows/{flow_id}").body)
    info = parse_flow(row)
    assert info is not None and info.input_type == input_type
    assert not fake.chat_messages


def test_agentflow_canvas_lists_the_scripted_nodes_and_edges() -> None:
    fake = FakeFlowise()
    flow_id = fake.add_flow(human_input_flow())
    canvas = json.loads(json.loads(_get(fake, f"/api/v1/chatflows/{flow_id}").body)["flowData"])
    assert [(n["id"], n["data"]["name"]) for n in canvas["nodes"]] == [
        ("startAgentflow_0", "startAgentflow"), ("llmAgentflow_0", "llmAgentflow"),
        ("humanInputAgentflow_0", "humanInputAgentflow"), ("llmAgentflow_1", "llmAgentflow"),
        ("directReplyAgentflow_0", "directReplyAgentflow")]  # fmt: skip
    assert [(e["source"], e["sourceHandle"], e["target"]) for e in canvas["edges"]][-2:] == [
        ("humanInputAgentflow_0", "humanInputAgentflow_0-output-0", "llmAgentflow_1"),
        ("humanInputAgentflow_0", "humanInputAgentflow_0-output-1", "directReplyAgentflow_0")]  # fmt: skip
    single = fake.add_flow(FakeFlow(kind="agentflow", nodes=[LLM(label="Only")]))
    only = json.loads(json.loads(_get(fake, f"/api/v1/chatflows/{single}").body)["flowData"])
    assert [n["data"]["label"] for n in only["nodes"]] == ["Start", "Only"]
