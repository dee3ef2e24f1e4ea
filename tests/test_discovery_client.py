"""Discovery through the client, replayed from a real Flowise 3.1.4 (list, get, streaming, uploads), and what the
client does with what it learned: refuse webhook/schedule flows and validate forms before any request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowise_integrations import AsyncFlowiseClient, FlowiseClient
from flowise_integrations.errors import BadRequestError, PermissionDeniedError

CAPTURES = Path(__file__).parent / "fixtures" / "real_captures"
MANIFEST = json.loads((CAPTURES / "manifest.json").read_text())
IDS: dict[str, str] = next(iter(MANIFEST["runs"].values()))["flow_ids"]
NAMES = {flow_id: name for name, flow_id in IDS.items()}


def body_of(capture: str) -> Any:
    return json.loads((CAPTURES / f"{capture}.txt").read_bytes().partition(b"\r\n\r\n")[2])


def server(rows: Any = None) -> tuple[list[httpx.Request], httpx.MockTransport]:
    """Answers the discovery routes from the captures (a flow without a capture: 404), records everything."""
    seen: list[httpx.Request] = []
    # the recorded list is one page; the whole list is the recorded rows of GET /chatflows/{id}
    every = [body_of(p.name[:-4]) for p in sorted(CAPTURES.glob("chatflows_get_*.txt"))]
    listing = every if rows is None else rows

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        parts = request.url.path.split("/")[3:]
        if parts == ["chatflows"]:
            return httpx.Response(200, json=listing)
        route, flow_id = parts[0], parts[-1]
        name = NAMES.get(flow_id, "")
        capture = {"chatflows": "chatflows_get_", "chatflows-streaming": "chatflows_streaming_"}.get(route)
        if route == "chatflows-uploads":
            capture = "chatflows_uploads_"
        if capture and (CAPTURES / f"{capture}{name}.txt").exists():
            return httpx.Response(200, json=body_of(f"{capture}{name}"))
        if route == "prediction":
            return httpx.Response(200, json={"text": "ok"})
        return httpx.Response(404, json={"message": f"{flow_id} not found"})

    return seen, httpx.MockTransport(handle)


def test_list_flows_types_every_real_flow_with_streaming_and_uploads() -> None:
    seen, transport = server()
    client = FlowiseClient("http://flowise.test", api_key="k", http_client=httpx.Client(transport=transport))
    flows = {NAMES.get(info.id, info.name): info for info in client.list_flows()}
    assert set(flows) >= {"af_human_input", "af_form", "af_tool_approval", "multiagent_supervisor"}
    assert flows["af_human_input"].type == "AGENTFLOW" and flows["af_human_input"].input_type == "chat"
    assert flows["multiagent_supervisor"].type == "MULTIAGENT"
    form = flows["af_form"]
    assert form.input_type == "form" and form.form_fields
    assert form.streaming is True  # from /chatflows-streaming
    assert flows["multiagent_supervisor"].streaming is not None
    assert all(r.headers["authorization"] == "Bearer k" for r in seen)
    assert "mcpServerToken" not in repr(form)


async def test_get_flow_async_and_without_details() -> None:
    _, transport = server()
    client = AsyncFlowiseClient("http://flowise.test", http_client=httpx.AsyncClient(transport=transport))
    info = await client.get_flow(IDS["af_form"])
    assert info.id == IDS["af_form"] and info.input_type == "form" and info.streaming is True
    bare = await client.get_flow(IDS["af_form"], details=False)
    assert bare.streaming is None


def test_a_form_is_validated_before_any_request() -> None:
    seen, transport = server()
    client = FlowiseClient("http://flowise.test", http_client=httpx.Client(transport=transport))
    info = client.get_flow(IDS["af_form"])
    seen.clear()
    field = info.form_fields[0]
    bad: Any = {"definitely": "wrong"} if field.type in ("number", "boolean") else object()
    with pytest.raises((ValueError, TypeError), match=field.name):
        client.predict(info.id, form={field.name: bad})
    assert seen == []


@pytest.mark.parametrize(("start", "says"), [("webhookTrigger", "Webhook Trigger"), ("scheduleInput", "Schedule")])
def test_a_webhook_or_schedule_flow_is_refused_before_any_request(start: str, says: str) -> None:
    row = body_of("chatflows_get_af_form")
    flow_data = json.loads(row["flowData"])
    for node in flow_data["nodes"]:
        if node["data"].get("name") == "startAgentflow":
            node["data"]["inputs"]["startInputType"] = start
    row["flowData"] = json.dumps(flow_data)
    seen, transport = server(rows=[row])
    client = FlowiseClient("http://flowise.test", http_client=httpx.Client(transport=transport))
    client.list_flows(details=False)
    seen.clear()
    with pytest.raises(BadRequestError, match=says):
        client.predict(row["id"], "hi")
    with pytest.raises(BadRequestError, match=says):
        client.stream(row["id"], "hi")
    assert seen == []


def test_listing_without_the_permission_is_a_typed_error() -> None:
    forbidden = httpx.MockTransport(lambda r: httpx.Response(403, json={"message": "Forbidden: chatflows:view"}))
    client = FlowiseClient("http://flowise.test", http_client=httpx.Client(transport=forbidden))
    with pytest.raises(PermissionDeniedError, match="chatflows:view"):
        client.list_flows()


def test_a_flowise_refusal_after_the_fact_is_a_bad_request_not_a_flow_failure() -> None:
    message = (
        "Error: predictionsServices.buildChatflow - This flow is configured as a Webhook Trigger. "
        "Call POST /api/v1/webhook/x instead of the prediction API."
    )
    refusing = httpx.MockTransport(lambda r: httpx.Response(500, json={"statusCode": 500, "message": message}))
    client = FlowiseClient("http://flowise.test", http_client=httpx.Client(transport=refusing))
    with pytest.raises(BadRequestError, match="Webhook Trigger"):
        client.predict("x", "hi")
