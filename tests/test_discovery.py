"""Discovery (``flowise_integrations.discovery``): chatflow rows of Flowise 3.1.x and 2.2.8 as ``FlowInfo``, the
Start node's input type and form, tool names, form schemas and validation, the webhook/schedule refusal."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from flowise_integrations.discovery import (
    FlowInfo,
    FlowUploads,
    FormField,
    form_json_schema,
    parse_flow,
    parse_flow_list,
    parse_streaming,
    parse_uploads,
    prediction_refusal,
    tool_name,
    validate_form,
)

# Recorded from a real Flowise 3.1.4 (2026-12-01): rows of GET /api/v1/chatflows (API key with every permission)
# with each flow's GET /chatflows-streaming/{id} and /chatflows-uploads/{id} answers. Trimmed: flowData keeps node
# ids, names, labels and the Start node's input-type/form/webhook/schedule inputs; the MCP token is replaced.
REAL_314_FLOWS: list[dict[str, Any]] = [
    json.loads(line)
    for line in (
        r"""{"row":{"id":"d1b9955e-5022-48e1-a165-25c1e6d21cae","name":"Review Draft (human input)","flowData":"{\"nodes\": [{\"id\": \"startAgentflow_0\", \"data\": {\"id\": \"startAgentflow_0\", \"name\": \"startAgentflow\", \"label\": \"Start\", \"inputs\": {\"startInputType\": \"chatInput\", \"formTitle\": \"\", \"formDescription\": \"\", \"formInputTypes\": \"\", \"webhookMethod\": \"POST\", \"scheduleType\": \"visualPicker\", \"scheduleCronExpression\": \"\", \"scheduleInputMode\": \"text\", \"scheduleDefaultInput\": \"\"}}}, {\"id\": \"llmAgentflow_0\", \"data\": {\"id\": \"llmAgentflow_0\", \"name\": \"llmAgentflow\", \"label\": \"Writer\", \"inputs\": {}}}, {\"id\": \"humanInputAgentflow_0\", \"data\": {\"id\": \"humanInputAgentflow_0\", \"name\": \"humanInputAgentflow\", \"label\": \"Review\", \"inputs\": {}}}, {\"id\": \"llmAgentflow_1\", \"data\": {\"id\": \"llmAgentflow_1\", \"name\": \"llmAgentflow\", \"label\": \"Finisher\", \"inputs\": {}}}, {\"id\": \"llmAgentflow_2\", \"data\": {\"id\": \"llmAgentflow_2\", \"name\": \"llmAgentflow\", \"label\": \"Rewriter\", \"inputs\": {}}}], \"edges\": [{\"source\": \"startAgentflow_0\", \"target\": \"llmAgentflow_0\"}, {\"source\": \"llmAgentflow_0\", \"target\": \"humanInputAgentflow_0\"}, {\"source\": \"humanInputAgentflow_0\", \"target\": \"llmAgentflow_1\"}, {\"source\": \"humanInputAgentflow_0\", \"target\": \"llmAgentflow_2\"}]}","deployed":false,"isPublic":false,"apikeyid":null,"chatbotConfig":null,"apiConfig":null,"analytic":null,"speechToText":null,"textToSpeech":null,"followUpPrompts":null,"category":"h4;explore","type":"AGENTFLOW","createdDate":"2026-12-01T09:35:43.000Z","updatedDate":"2026-12-01T09:35:43.000Z","mcpServerConfig":"{\"enabled\":true,\"token\":\"0123456789abcdef0123456789abcdef\",\"description\":\"Drafts text and asks a human to approve it.\",\"toolName\":\"review_draft\"}","webhookSecretConfigured":false,"workspaceId":"98e52ca1-85f5-46af-b657-893b4275009b"},"streaming":{"isStreaming":true},"uploads":{"isSpeechToTextEnabled":false,"isImageUploadAllowed":false,"isRAGFileUploadAllowed":false,"imgUploadSizeAndTypes":[],"fileUploadSizeAndTypes":[]}}""",
        r"""{"row":{"id":"2abfd781-3711-4db8-a7a5-8c532c248c08","name":"Careful Calculator (approval)","flowData":"{\"nodes\": [{\"id\": \"startAgentflow_0\", \"data\": {\"id\": \"startAgentflow_0\", \"name\": \"startAgentflow\", \"label\": \"Start\", \"inputs\": {\"startInputType\": \"chatInput\", \"formTitle\": \"\", \"formDescription\": \"\", \"formInputTypes\": \"\", \"webhookMethod\": \"POST\", \"scheduleType\": \"visualPicker\", \"scheduleCronExpression\": \"\", \"scheduleInputMode\": \"text\", \"scheduleDefaultInput\": \"\"}}}, {\"id\": \"agentAgentflow_0\", \"data\": {\"id\": \"agentAgentflow_0\", \"name\": \"agentAgentflow\", \"label\": \"Careful Calculator\", \"inputs\": {}}}], \"edges\": [{\"source\": \"startAgentflow_0\", \"target\": \"agentAgentflow_0\"}]}","deployed":false,"isPublic":false,"apikeyid":null,"chatbotConfig":null,"apiConfig":null,"analytic":null,"speechToText":null,"textToSpeech":null,"followUpPrompts":null,"category":"h4;explore","type":"AGENTFLOW","createdDate":"2026-12-01T09:35:43.000Z","updatedDate":"2026-12-01T09:35:43.000Z","mcpServerConfig":null,"webhookSecretConfigured":false,"workspaceId":"98e52ca1-85f5-46af-b657-893b4275009b"},"streaming":{"isStreaming":true},"uploads":{"isSpeechToTextEnabled":false,"isImageUploadAllowed":false,"isRAGFileUploadAllowed":false,"imgUploadSizeAndTypes":[],"fileUploadSizeAndTypes":[]}}""",
        r"""{"row":{"id":"3c71cfcf-9fe4-40f1-8e67-a4f028bd09de","name":"Sign-up Form","flowData":"{\"nodes\": [{\"id\": \"startAgentflow_0\", \"data\": {\"id\": \"startAgentflow_0\", \"name\": \"startAgentflow\", \"label\": \"Start\", \"inputs\": {\"startInputType\": \"formInput\", \"formTitle\": \"Sign up\", \"formDescription\": \"Tell us about you\", \"formInputTypes\": [{\"type\": \"string\", \"label\": \"Full Name\", \"name\": \"fullName\", \"addOptions\": \"\"}, {\"type\": \"number\", \"label\": \"Age\", \"name\": \"age\", \"addOptions\": \"\"}, {\"type\": \"boolean\", \"label\": \"Subscribe\", \"name\": \"subscribe\", \"addOptions\": \"\"}, {\"type\": \"options\", \"label\": \"Plan\", \"name\": \"plan\", \"addOptions\": [{\"option\": \"Free\"}, {\"option\": \"Pro\"}]}], \"webhookMethod\": \"POST\", \"scheduleType\": \"visualPicker\", \"scheduleCronExpression\": \"\", \"scheduleInputMode\": \"text\", \"scheduleDefaultInput\": \"\"}}}, {\"id\": \"llmAgentflow_0\", \"data\": {\"id\": \"llmAgentflow_0\", \"name\": \"llmAgentflow\", \"label\": \"Greeter\", \"inputs\": {}}}], \"edges\": [{\"source\": \"startAgentflow_0\", \"target\": \"llmAgentflow_0\"}]}","deployed":false,"isPublic":false,"apikeyid":null,"chatbotConfig":null,"apiConfig":null,"analytic":null,"speechToText":null,"textToSpeech":null,"followUpPrompts":null,"category":"h4;explore","type":"AGENTFLOW","createdDate":"2026-12-01T09:35:43.000Z","updatedDate":"2026-12-01T09:35:43.000Z","mcpServerConfig":null,"webhookSecretConfigured":false,"workspaceId":"98e52ca1-85f5-46af-b657-893b4275009b"},"streaming":{"isStreaming":true},"uploads":{"isSpeechToTextEnabled":false,"isImageUploadAllowed":false,"isRAGFileUploadAllowed":false,"imgUploadSizeAndTypes":[],"fileUploadSizeAndTypes":[]}}""",
        r"""{"row":{"id":"4576ea5c-e8cc-4af0-b6d9-3e3156a4ea4b","name":"Webhook Flow","flowData":"{\"nodes\": [{\"id\": \"startAgentflow_0\", \"data\": {\"id\": \"startAgentflow_0\", \"name\": \"startAgentflow\", \"label\": \"Start\", \"inputs\": {\"startInputType\": \"webhookTrigger\", \"formTitle\": \"\", \"formDescription\": \"\", \"formInputTypes\": \"\", \"webhookMethod\": \"PUT\", \"scheduleType\": \"visualPicker\", \"scheduleCronExpression\": \"\", \"scheduleInputMode\": \"text\", \"scheduleDefaultInput\": \"\"}}}, {\"id\": \"llmAgentflow_0\", \"data\": {\"id\": \"llmAgentflow_0\", \"name\": \"llmAgentflow\", \"label\": \"Hook\", \"inputs\": {}}}], \"edges\": [{\"source\": \"startAgentflow_0\", \"target\": \"llmAgentflow_0\"}]}","deployed":false,"isPublic":false,"apikeyid":null,"chatbotConfig":null,"apiConfig":null,"analytic":null,"speechToText":null,"textToSpeech":null,"followUpPrompts":null,"category":"h4;explore","type":"AGENTFLOW","createdDate":"2026-12-01T09:35:43.000Z","updatedDate":"2026-12-01T09:35:43.000Z","mcpServerConfig":null,"webhookSecretConfigured":false,"workspaceId":"98e52ca1-85f5-46af-b657-893b4275009b"},"streaming":{"isStreaming":true},"uploads":{"isSpeechToTextEnabled":false,"isImageUploadAllowed":false,"isRAGFileUploadAllowed":false,"imgUploadSizeAndTypes":[],"fileUploadSizeAndTypes":[]}}""",
        r"""{"row":{"id":"845efa25-ce94-4efe-851b-7e746ee0c8bc","name":"Weekly Report (schedule)","flowData":"{\"nodes\": [{\"id\": \"startAgentflow_0\", \"data\": {\"id\": \"startAgentflow_0\", \"name\": \"startAgentflow\", \"label\": \"Start\", \"inputs\": {\"startInputType\": \"scheduleInput\", \"formTitle\": \"\", \"formDescription\": \"\", \"formInputTypes\": \"\", \"webhookMethod\": \"POST\", \"scheduleType\": \"cronExpression\", \"scheduleCronExpression\": \"0 9 * * 1\", \"scheduleInputMode\": \"text\", \"scheduleDefaultInput\": \"report\"}}}, {\"id\": \"llmAgentflow_0\", \"data\": {\"id\": \"llmAgentflow_0\", \"name\": \"llmAgentflow\", \"label\": \"Cron\", \"inputs\": {}}}], \"edges\": [{\"source\": \"startAgentflow_0\", \"target\": \"llmAgentflow_0\"}]}","deployed":false,"isPublic":false,"apikeyid":null,"chatbotConfig":null,"apiConfig":null,"analytic":null,"speechToText":null,"textToSpeech":null,"followUpPrompts":null,"category":"h4;explore","type":"AGENTFLOW","createdDate":"2026-12-01T09:35:43.000Z","updatedDate":"2026-12-01T09:35:43.000Z","mcpServerConfig":null,"webhookSecretConfigured":false,"workspaceId":"98e52ca1-85f5-46af-b657-893b4275009b"},"streaming":{"isStreaming":true},"uploads":{"isSpeechToTextEnabled":false,"isImageUploadAllowed":false,"isRAGFileUploadAllowed":false,"imgUploadSizeAndTypes":[],"fileUploadSizeAndTypes":[]}}""",
        r"""{"row":{"id":"f0d6e0e8-2c96-4e62-a0f2-8eb363bd5242","name":"e2e-llm_chain","flowData":"{\"nodes\": [{\"id\": \"chatOpenAI_0\", \"data\": {\"id\": \"chatOpenAI_0\", \"name\": \"chatOpenAI\", \"label\": \"OpenAI\", \"inputs\": {}}}, {\"id\": \"promptTemplate_0\", \"data\": {\"id\": \"promptTemplate_0\", \"name\": \"promptTemplate\", \"label\": \"Prompt Template\", \"inputs\": {}}}, {\"id\": \"llmChain_0\", \"data\": {\"id\": \"llmChain_0\", \"name\": \"llmChain\", \"label\": \"LLM Chain\", \"inputs\": {}}}], \"edges\": [{\"source\": \"chatOpenAI_0\", \"target\": \"llmChain_0\"}, {\"source\": \"promptTemplate_0\", \"target\": \"llmChain_0\"}]}","deployed":false,"isPublic":false,"apikeyid":null,"chatbotConfig":null,"apiConfig":null,"analytic":null,"speechToText":null,"textToSpeech":null,"followUpPrompts":null,"category":null,"type":"CHATFLOW","createdDate":"2026-12-01T09:35:42.000Z","updatedDate":"2026-12-01T09:35:42.000Z","mcpServerConfig":null,"webhookSecretConfigured":false,"workspaceId":"98e52ca1-85f5-46af-b657-893b4275009b"},"streaming":{"isStreaming":true},"uploads":{"isSpeechToTextEnabled":false,"isImageUploadAllowed":false,"isRAGFileUploadAllowed":false,"imgUploadSizeAndTypes":[],"fileUploadSizeAndTypes":[]}}""",
        r"""{"row":{"id":"c6399942-6271-4d59-8c84-a81726a6962a","name":"e2e-llm_chain_model_streaming_off","flowData":"{\"nodes\": [{\"id\": \"chatOpenAI_0\", \"data\": {\"id\": \"chatOpenAI_0\", \"name\": \"chatOpenAI\", \"label\": \"OpenAI\", \"inputs\": {}}}, {\"id\": \"promptTemplate_0\", \"data\": {\"id\": \"promptTemplate_0\", \"name\": \"promptTemplate\", \"label\": \"Prompt Template\", \"inputs\": {}}}, {\"id\": \"llmChain_0\", \"data\": {\"id\": \"llmChain_0\", \"name\": \"llmChain\", \"label\": \"LLM Chain\", \"inputs\": {}}}], \"edges\": [{\"source\": \"chatOpenAI_0\", \"target\": \"llmChain_0\"}, {\"source\": \"promptTemplate_0\", \"target\": \"llmChain_0\"}]}","deployed":false,"isPublic":false,"apikeyid":null,"chatbotConfig":null,"apiConfig":null,"analytic":null,"speechToText":null,"textToSpeech":null,"followUpPrompts":null,"category":null,"type":"CHATFLOW","createdDate":"2026-12-01T09:35:42.000Z","updatedDate":"2026-12-01T09:35:42.000Z","mcpServerConfig":null,"webhookSecretConfigured":false,"workspaceId":"98e52ca1-85f5-46af-b657-893b4275009b"},"streaming":{"isStreaming":false},"uploads":{"isSpeechToTextEnabled":false,"isImageUploadAllowed":false,"isRAGFileUploadAllowed":false,"imgUploadSizeAndTypes":[],"fileUploadSizeAndTypes":[]}}""",
        r"""{"row":{"id":"cfe32690-371d-47f8-8d23-2c6dde095420","name":"e2e-llm_chain_protected","flowData":"{\"nodes\": [{\"id\": \"chatOpenAI_0\", \"data\": {\"id\": \"chatOpenAI_0\", \"name\": \"chatOpenAI\", \"label\": \"OpenAI\", \"inputs\": {}}}, {\"id\": \"promptTemplate_0\", \"data\": {\"id\": \"promptTemplate_0\", \"name\": \"promptTemplate\", \"label\": \"Prompt Template\", \"inputs\": {}}}, {\"id\": \"llmChain_0\", \"data\": {\"id\": \"llmChain_0\", \"name\": \"llmChain\", \"label\": \"LLM Chain\", \"inputs\": {}}}], \"edges\": [{\"source\": \"chatOpenAI_0\", \"target\": \"llmChain_0\"}, {\"source\": \"promptTemplate_0\", \"target\": \"llmChain_0\"}]}","deployed":false,"isPublic":false,"apikeyid":"f9dd4f12-d714-45e8-9a0f-7316eea21af2","chatbotConfig":null,"apiConfig":null,"analytic":null,"speechToText":null,"textToSpeech":null,"followUpPrompts":null,"category":null,"type":"CHATFLOW","createdDate":"2026-12-01T09:35:42.000Z","updatedDate":"2026-12-01T09:35:42.000Z","mcpServerConfig":null,"webhookSecretConfigured":false,"workspaceId":"98e52ca1-85f5-46af-b657-893b4275009b"},"streaming":{"isStreaming":true},"uploads":{"isSpeechToTextEnabled":false,"isImageUploadAllowed":false,"isRAGFileUploadAllowed":false,"imgUploadSizeAndTypes":[],"fileUploadSizeAndTypes":[]}}""",
    )
]
REAL_314_LIST_WITHOUT_KEY = (401, {"error": "Unauthorized Access"})
# The same from a real Flowise 2.2.8 (its whole GET /chatflows row; flowData trimmed to node ids and names).
REAL_228_FLOWS: list[dict[str, Any]] = [
    json.loads(line)
    for line in (
        r"""{"row":{"id":"4694c550-ba10-495d-ab40-e33a6dc0def1","name":"e2e-llm_chain","flowData":"{\"nodes\": [{\"id\": \"chatOpenAI_0\", \"data\": {\"name\": \"chatOpenAI\"}}, {\"id\": \"promptTemplate_0\", \"data\": {\"name\": \"promptTemplate\"}}, {\"id\": \"llmChain_0\", \"data\": {\"name\": \"llmChain\"}}], \"edges\": [{\"source\": \"chatOpenAI_0\", \"target\": \"llmChain_0\"}, {\"source\": \"promptTemplate_0\", \"target\": \"llmChain_0\"}]}","deployed":false,"isPublic":false,"apikeyid":null,"chatbotConfig":null,"apiConfig":null,"analytic":null,"speechToText":null,"followUpPrompts":null,"category":null,"type":"CHATFLOW","createdDate":"2026-12-01T10:07:01.000Z","updatedDate":"2026-12-01T10:07:01.000Z"},"streaming":{"isStreaming":true},"uploads":{"isSpeechToTextEnabled":false,"isImageUploadAllowed":false,"isRAGFileUploadAllowed":false,"imgUploadSizeAndTypes":[],"fileUploadSizeAndTypes":[]}}""",
        r"""{"row":{"id":"e0fd57ce-4fec-49e5-8d35-f3df136a9782","name":"e2e-llm_chain_protected","flowData":"{\"nodes\": [{\"id\": \"chatOpenAI_0\", \"data\": {\"name\": \"chatOpenAI\"}}, {\"id\": \"promptTemplate_0\", \"data\": {\"name\": \"promptTemplate\"}}, {\"id\": \"llmChain_0\", \"data\": {\"name\": \"llmChain\"}}], \"edges\": [{\"source\": \"chatOpenAI_0\", \"target\": \"llmChain_0\"}, {\"source\": \"promptTemplate_0\", \"target\": \"llmChain_0\"}]}","deployed":false,"isPublic":false,"apikeyid":"f51f33f478a6faa4b0322e254c4d6324","chatbotConfig":null,"apiConfig":null,"analytic":null,"speechToText":null,"followUpPrompts":null,"category":null,"type":"CHATFLOW","createdDate":"2026-12-01T10:07:01.000Z","updatedDate":"2026-12-01T10:07:01.000Z"},"streaming":{"isStreaming":true},"uploads":{"isSpeechToTextEnabled":false,"isImageUploadAllowed":false,"isRAGFileUploadAllowed":false,"imgUploadSizeAndTypes":[],"fileUploadSizeAndTypes":[]}}""",
    )
]

FORM_INPUTS: list[dict[str, Any]] = [
    {"type": "string", "label": "Full Name", "name": "fullName", "addOptions": ""},
    {"type": "number", "label": "Age", "name": "age", "addOptions": ""},
    {"type": "boolean", "label": "Subscribe", "name": "subscribe", "addOptions": ""},
    {"type": "options", "label": "Plan", "name": "plan", "addOptions": [{"option": "Free"}, {"option": "Pro"}]},
]
MCP_TOKEN = "e3b8072cbeb64c501defce237912f5b2"


def flow_data(start_inputs: dict[str, Any] | None) -> str:
    """``flowData`` as Flowise stores it: a JSON string of canvas nodes and edges."""
    nodes: list[dict[str, Any]] = [
        {"id": "stickyNoteAgentflow_0", "data": {"name": "stickyNoteAgentflow", "inputs": {"note": "hi"}}}
    ]
    if start_inputs is not None:
        nodes.append(
            {
                "id": "startAgentflow_0",
                "type": "agentFlow",
                "data": {"id": "startAgentflow_0", "name": "startAgentflow", "label": "Start", "inputs": start_inputs},
            }
        )
    nodes.append({"id": "llmAgentflow_0", "data": {"name": "llmAgentflow", "inputs": {}}})
    return json.dumps({"nodes": nodes, "edges": [], "viewport": {"x": 0, "y": 0, "zoom": 1}})


def row_314(name: str, kind: str = "AGENTFLOW", start: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A ``GET /api/v1/chatflows`` row of Flowise 3.1.4 (every column it returns)."""
    row = {
        "id": "d1b9955e-5022-48e1-a165-25c1e6d21cae",
        "name": name,
        "flowData": flow_data(start),
        "deployed": False,
        "isPublic": False,
        "apikeyid": None,
        "chatbotConfig": None,
        "apiConfig": None,
        "analytic": None,
        "speechToText": None,
        "textToSpeech": None,
        "followUpPrompts": None,
        "category": None,
        "type": kind,
        "createdDate": "2026-12-01T09:35:43.000Z",
        "updatedDate": "2026-12-01T09:35:43.000Z",
        "mcpServerConfig": None,
        "webhookSecretConfigured": False,
        "workspaceId": "98e52ca1-85f5-46af-b657-893b4275009b",
    }
    row.update(extra)
    return row


def row_228(name: str, **extra: Any) -> dict[str, Any]:
    """A Flowise 2.2.8 row: no workspace, MCP or TTS columns; ``type`` may be null; SQLite booleans."""
    row = {
        "id": "0f6a7c52-3b1e-4cf1-9a43-1a2b3c4d5e6f",
        "name": name,
        "flowData": json.dumps({"nodes": [{"id": "llmChain_0", "data": {"name": "llmChain"}}], "edges": []}),
        "deployed": 0,
        "isPublic": 1,
        "apikeyid": "",
        "chatbotConfig": None,
        "apiConfig": None,
        "analytic": None,
        "speechToText": None,
        "followUpPrompts": None,
        "category": None,
        "type": None,
        "createdDate": "2025-03-01T10:00:00.000Z",
        "updatedDate": "2025-03-01T10:00:00.000Z",
    }
    row.update(extra)
    return row


# -------------------------------------------------------------------------------------------------- rows


def real_flows() -> dict[str, FlowInfo]:
    infos = {}
    for flow in REAL_314_FLOWS:
        info = parse_flow(flow["row"], streaming=flow["streaming"], uploads=flow["uploads"])
        assert info is not None
        infos[info.name] = info
    return infos


def test_real_flow_list() -> None:
    listed = parse_flow_list([flow["row"] for flow in REAL_314_FLOWS])
    assert len(listed) == len(REAL_314_FLOWS)
    flows = real_flows()
    assert {name: (f.type, f.input_type, f.streaming) for name, f in flows.items()} == {
        "Review Draft (human input)": ("AGENTFLOW", "chat", True),
        "Careful Calculator (approval)": ("AGENTFLOW", "chat", True),
        "Sign-up Form": ("AGENTFLOW", "form", True),
        "Webhook Flow": ("AGENTFLOW", "webhook", True),
        "Weekly Report (schedule)": ("AGENTFLOW", "schedule", True),
        "e2e-llm_chain": ("CHATFLOW", "chat", True),
        "e2e-llm_chain_model_streaming_off": ("CHATFLOW", "chat", False),
        "e2e-llm_chain_protected": ("CHATFLOW", "chat", True),
    }
    assert [n for n, f in flows.items() if f.api_key_protected] == ["e2e-llm_chain_protected"]
    assert all(f.uploads == FlowUploads() for f in flows.values())  # nothing but text on these flows
    assert all(f.categories == ["h4", "explore"] for n, f in flows.items() if not n.startswith("e2e-"))
    review = flows["Review Draft (human input)"]
    assert (review.mcp_tool_name, review.description) == ("review_draft", "Drafts text and asks a human to approve it.")
    assert "0123456789abcdef0123456789abcdef" not in review.model_dump_json()
    form = flows["Sign-up Form"]
    assert (form.form_title, form.form_description) == ("Sign up", "Tell us about you")
    assert [(f.name, f.type, f.options) for f in form.form_fields] == [
        ("fullName", "string", []),
        ("age", "number", []),
        ("subscribe", "boolean", []),
        ("plan", "options", ["Free", "Pro"]),
    ]
    # the real server's answer to a prediction for each refused flow (HTTP 500, or a stream `error` event):
    # "This flow is configured as a Webhook Trigger. Call PUT /api/v1/webhook/<id> instead of the prediction API."
    # "This flow is configured as a Scheduled Trigger. It is fired by the scheduler and cannot be invoked via ..."
    webhook, schedule = flows["Webhook Flow"], flows["Weekly Report (schedule)"]
    assert f"Call PUT /api/v1/webhook/{webhook.id} instead of the prediction API" in (prediction_refusal(webhook) or "")
    assert "Schedule" in (prediction_refusal(schedule) or "")
    assert [n for n, f in flows.items() if prediction_refusal(f)] == ["Webhook Flow", "Weekly Report (schedule)"]
    assert parse_flow_list(REAL_314_LIST_WITHOUT_KEY[1]) == []


def test_real_228_rows() -> None:
    flows = {}
    for flow in REAL_228_FLOWS:
        info = parse_flow(flow["row"], streaming=flow["streaming"], uploads=flow["uploads"])
        assert info is not None
        flows[info.name] = info
    assert {n: (f.type, f.input_type, f.streaming, f.api_key_protected) for n, f in flows.items()} == {
        "e2e-llm_chain": ("CHATFLOW", "chat", True, False),
        "e2e-llm_chain_protected": ("CHATFLOW", "chat", True, True),
    }
    assert all(f.uploads == FlowUploads() and f.mcp_tool_name is None for f in flows.values())
    assert [f.name for f in parse_flow_list([flow["row"] for flow in REAL_228_FLOWS])] == list(flows)


def test_agentflow_row_with_mcp_config() -> None:
    mcp = {"enabled": True, "token": MCP_TOKEN, "description": "Drafts text, asks a human.", "toolName": "review_draft"}
    row = row_314(
        "Review Draft (human input)",
        start={"startInputType": "chatInput"},
        category="h4;explore; ",
        mcpServerConfig=json.dumps(mcp),
    )
    info = parse_flow(row)
    assert info is not None
    assert (info.id, info.name, info.type, info.is_agentflow) == (row["id"], row["name"], "AGENTFLOW", True)
    assert (info.input_type, info.form_fields) == ("chat", [])
    assert (info.description, info.mcp_tool_name) == ("Drafts text, asks a human.", "review_draft")
    assert (info.category, info.categories) == ("h4;explore; ", ["h4", "explore"])
    assert (info.deployed, info.is_public, info.api_key_protected) == (False, False, False)
    assert (info.streaming, info.uploads) == (None, None)  # those come from their own endpoints
    assert (info.created_date, info.updated_date) == (row["createdDate"], row["updatedDate"])
    assert info.suggested_tool_name() == "review_draft"
    assert info.tool_description == "Drafts text, asks a human."


def test_the_mcp_token_never_leaves_the_row() -> None:
    row = row_314("x", mcpServerConfig=json.dumps({"enabled": True, "token": MCP_TOKEN}))
    info = parse_flow(row)
    assert info is not None
    assert MCP_TOKEN not in repr(info)
    assert MCP_TOKEN not in info.model_dump_json()
    assert json.loads(info.raw["mcpServerConfig"])["token"] == "***"
    assert json.loads(row["mcpServerConfig"])["token"] == MCP_TOKEN  # the caller's row is not modified
    assert "flowData" not in repr(info)


def test_form_input_agentflow() -> None:
    start = {
        "startInputType": "formInput",
        "formTitle": "Sign up",
        "formDescription": "Tell us about you",
        "formInputTypes": FORM_INPUTS,
    }
    info = parse_flow(row_314("Sign-up Form", start=start))
    assert info is not None
    assert (info.input_type, info.form_title, info.form_description) == ("form", "Sign up", "Tell us about you")
    assert [(f.name, f.label, f.type, f.required, f.options) for f in info.form_fields] == [
        ("fullName", "Full Name", "string", True, []),
        ("age", "Age", "number", True, []),
        ("subscribe", "Subscribe", "boolean", True, []),
        ("plan", "Plan", "options", True, ["Free", "Pro"]),
    ]
    assert info.tool_description == "Tell us about you"
    assert prediction_refusal(info) is None


def test_form_fields_tolerate_odd_configs() -> None:
    inputs = [
        {"type": "options", "label": "Empty", "name": "empty", "addOptions": ""},  # nothing to choose: optional
        {"type": "options", "label": "Dup", "name": "dup", "addOptions": [{"option": "A"}, {"option": "A"}, {}]},
        {"type": "string", "label": "Again", "name": "dup"},  # a second field of the same name is dropped
        {"type": "string", "label": "No name"},
        {"type": "date", "label": "When", "name": "when"},  # a kind this package does not know: kept
        {"label": "Untyped", "name": "untyped"},
        "junk",
    ]
    info = parse_flow(row_314("f", start={"startInputType": "formInput", "formInputTypes": json.dumps(inputs)}))
    assert info is not None
    assert [(f.name, f.type, f.required, f.options) for f in info.form_fields] == [
        ("empty", "options", False, []),
        ("dup", "options", True, ["A"]),
        ("when", "date", True, []),
        ("untyped", "string", True, []),
    ]


@pytest.mark.parametrize(
    ("start", "input_type", "method"),
    [
        ({"startInputType": "webhookTrigger", "webhookMethod": "put"}, "webhook", "PUT"),
        ({"startInputType": "webhookTrigger"}, "webhook", "POST"),
        ({"startInputType": "scheduleInput", "scheduleCronExpression": "0 9 * * 1"}, "schedule", None),
    ],
)
def test_webhook_and_schedule_flows_are_refused_before_any_request(
    start: dict[str, Any], input_type: str, method: str | None
) -> None:
    info = parse_flow(row_314("Trigger", start=start))
    assert info is not None
    assert (info.input_type, info.webhook_method) == (input_type, method)
    refusal = prediction_refusal(info)
    assert refusal is not None
    assert info.id in refusal
    if method:
        # what Flowise 3.1.4 itself answers: "... Call PUT /api/v1/webhook/<id> instead of the prediction API."
        assert f"Call {method} /api/v1/webhook/{info.id} instead of the prediction API" in refusal
    else:
        assert "Schedule" in refusal


@pytest.mark.parametrize(
    ("start", "expected"),
    [(None, None), ({}, None), ({"startInputType": "laterInput"}, "laterInput"), ({"startInputType": 3}, None)],
)
def test_agentflow_without_a_known_start(start: dict[str, Any] | None, expected: str | None) -> None:
    info = parse_flow(row_314("odd", start=start))
    assert info is not None
    assert info.input_type == expected
    assert prediction_refusal(info) is None  # only what Flowise refuses is refused


def test_flowise_228_rows() -> None:
    info = parse_flow(row_228("Old chain"))
    assert info is not None
    assert (info.type, info.input_type, info.is_agentflow) == ("CHATFLOW", "chat", False)
    assert (info.deployed, info.is_public, info.api_key_protected) == (False, True, False)
    assert (info.description, info.mcp_tool_name) == (None, None)
    multi = parse_flow(row_228("Team", type="MULTIAGENT", apikeyid="k1"))
    assert multi is not None
    assert (multi.type, multi.input_type, multi.api_key_protected) == ("MULTIAGENT", "chat", True)


def test_unknown_type_is_kept() -> None:
    info = parse_flow(row_314("x", kind="WORKFLOW"))
    assert info is not None
    assert (info.type, info.input_type) == ("WORKFLOW", "chat")


def test_public_endpoint_rows_without_key_columns() -> None:
    row = {k: v for k, v in row_314("pub", start={"startInputType": "chatInput"}).items() if k != "apikeyid"}
    info = parse_flow(row)
    assert info is not None
    assert info.api_key_protected is None


@pytest.mark.parametrize("row", [None, [], "x", {}, {"id": ""}, {"id": 5, "name": "n"}])
def test_rows_without_an_id_are_not_flows(row: Any) -> None:
    assert parse_flow(row) is None


def test_flow_lists_plain_and_paged() -> None:
    rows = [row_314("a", start={"startInputType": "chatInput"}), {"name": "no id"}, row_228("b")]
    assert [f.name for f in parse_flow_list(rows)] == ["a", "b"]
    assert [f.name for f in parse_flow_list({"data": rows, "total": 3})] == ["a", "b"]
    assert parse_flow_list({"error": "Unauthorized Access"}) == []
    assert parse_flow_list("<html>") == []


# ---------------------------------------------------------------------------------- streaming and uploads


def test_streaming_and_uploads_endpoints() -> None:
    uploads = {
        "isSpeechToTextEnabled": True,
        "isImageUploadAllowed": True,
        "isRAGFileUploadAllowed": True,
        "imgUploadSizeAndTypes": [
            {"fileTypes": ["image/gif", "image/jpeg", "image/png", "image/webp", ""], "maxUploadSize": 5}
        ],
        "fileUploadSizeAndTypes": [{"fileTypes": [".pdf", ".txt"], "maxUploadSize": 500}, {"fileTypes": [".pdf"]}],
    }
    row = row_314("x", start={"startInputType": "chatInput"})
    row["chatbotConfig"] = json.dumps({"fullFileUpload": {"status": True}})
    info = parse_flow(row, streaming={"isStreaming": False}, uploads=uploads)
    assert info is not None
    assert info.streaming is False
    assert info.uploads == FlowUploads(
        isSpeechToTextEnabled=True,
        isImageUploadAllowed=True,
        isRAGFileUploadAllowed=True,
        image_types=["image/gif", "image/jpeg", "image/png", "image/webp"],
        image_max_mb=5.0,
        file_types=[".pdf", ".txt"],
        file_max_mb=500.0,
        full_files=True,
    )
    # a real 3.1.4 answer for a plain chain
    plain = {
        "isSpeechToTextEnabled": False,
        "isImageUploadAllowed": False,
        "isRAGFileUploadAllowed": False,
        "imgUploadSizeAndTypes": [],
        "fileUploadSizeAndTypes": [],
    }
    assert parse_uploads(plain) == FlowUploads()
    assert (parse_streaming({"isStreaming": True}), parse_streaming(True), parse_streaming("OK")) == (True, True, None)
    assert parse_uploads("OK") is None
    bare = parse_flow(row_314("y"))
    assert bare is not None
    assert bare.with_details(streaming={"isStreaming": True}).streaming is True


# -------------------------------------------------------------------------------------------- tool names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Review Draft (human input)", "review_draft_human_input"),  # Flowise's own MCP tool name rule
        ("  Café -- Crème brûlée!! ", "cafe_--_creme_brulee"),
        ("客服", "chatflow_tool"),
        ("", "chatflow_tool"),
        ("a" * 80, "a" * 64),
        ("x" * 63 + " y", "x" * 63),
    ],
)
def test_tool_name(name: str, expected: str) -> None:
    assert tool_name(name) == expected


def test_tool_names_are_unique() -> None:
    taken: list[str] = []
    for _ in range(3):
        taken.append(tool_name("Support Bot", taken))
    assert taken == ["support_bot", "support_bot_2", "support_bot_3"]
    assert tool_name("support bot", ["SUPPORT_BOT"]) == "support_bot_2"
    long = "z" * 64
    assert tool_name(long, [long]) == "z" * 62 + "_2"


@settings(max_examples=300, deadline=None)
@given(name=st.text(max_size=90), taken=st.lists(st.text(max_size=70), max_size=6))
def test_tool_name_is_always_valid_and_free(name: str, taken: list[str]) -> None:
    result = tool_name(name, taken)
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", result)
    assert result.casefold() not in {t.casefold() for t in taken}


# ----------------------------------------------------------------------------------------------- forms

FIELDS = [FormField.model_validate({**f, "options": [o["option"] for o in f["addOptions"] or []]}) for f in FORM_INPUTS]


def test_form_json_schema() -> None:
    assert form_json_schema(FIELDS) == {
        "type": "object",
        "properties": {
            "fullName": {"type": "string", "title": "Full Name", "description": "Full Name"},
            "age": {"type": "number", "title": "Age", "description": "Age"},
            "subscribe": {"type": "boolean", "title": "Subscribe", "description": "Subscribe"},
            "plan": {"type": "string", "enum": ["Free", "Pro"], "title": "Plan", "description": "Plan"},
        },
        "required": ["fullName", "age", "subscribe", "plan"],
        "additionalProperties": False,
    }
    odd = [
        FormField(name="when", type="date", description="Pick a day", default="2026-12-01"),
        FormField(name="any", type="options", required=False),
    ]
    assert form_json_schema(odd) == {
        "type": "object",
        "properties": {
            "when": {"description": "Pick a day", "default": "2026-12-01"},
            "any": {"type": "string"},
        },
        "required": ["when"],
        "additionalProperties": False,
    }
    jsonschema.Draft202012Validator.check_schema(form_json_schema(FIELDS))


def test_validate_form_coerces_what_agents_send() -> None:
    form = {"fullName": 42, "age": " 36.5 ", "subscribe": "Yes", "plan": "pro"}
    assert validate_form(FIELDS, form) == {"fullName": "42", "age": 36.5, "subscribe": True, "plan": "Pro"}
    assert validate_form(FIELDS, {"fullName": "Ada", "age": "7", "subscribe": 0, "plan": "Free"})["age"] == 7


@pytest.mark.parametrize(
    ("form", "field", "why"),
    [
        ({"age": 1, "subscribe": True, "plan": "Pro"}, "fullName", "is required"),
        ({"fullName": "A", "age": "old", "subscribe": True, "plan": "Pro"}, "age", "expected a number"),
        ({"fullName": "A", "age": math.nan, "subscribe": True, "plan": "Pro"}, "age", "finite"),
        ({"fullName": "A", "age": True, "subscribe": True, "plan": "Pro"}, "age", "boolean"),
        ({"fullName": "A", "age": 1, "subscribe": "maybe", "plan": "Pro"}, "subscribe", "true or false"),
        ({"fullName": "A", "age": 1, "subscribe": True, "plan": "Gold"}, "plan", "one of ['Free', 'Pro']"),
        ({"fullName": ["A"], "age": 1, "subscribe": True, "plan": "Pro"}, "fullName", "expected text"),
        ({"fullName": "A", "age": "  ", "subscribe": True, "plan": "Pro"}, "age", "is required"),
    ],
)
def test_validate_form_names_the_bad_field(form: dict[str, Any], field: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)) as info:
        validate_form(FIELDS, form)
    assert f"form field {field!r}" in str(info.value)


def test_unknown_keys_are_refused_unless_allowed() -> None:
    form = {"fullName": "A", "age": 1, "subscribe": True, "plan": "Pro", "nickname": "Ace"}
    with pytest.raises(ValueError, match="unknown form field\\(s\\) 'nickname'"):
        validate_form(FIELDS, form)
    assert validate_form(FIELDS, form, allow_extra=True)["nickname"] == "Ace"
    with pytest.raises(TypeError):
        validate_form(FIELDS, ["fullName"])  # type: ignore[arg-type]


def test_defaults_and_optional_fields() -> None:
    fields = [FormField(name="team", default="eng"), FormField(name="any", type="options", required=False)]
    assert validate_form(fields, {}) == {"team": "eng"}
    assert validate_form(fields, {"any": 3}) == {"team": "eng", "any": "3"}


values = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6) | st.lists(st.integers())


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["fullName", "age", "subscribe", "plan", "other"]), values))
def test_a_validated_form_matches_its_schema(form: dict[str, Any]) -> None:
    try:
        valid = validate_form(FIELDS, form)
    except ValueError as exc:
        message = str(exc)
    else:
        jsonschema.validate(valid, form_json_schema(FIELDS))
        return
    assert message.startswith(("form field ", "unknown form field"))


# ------------------------------------------------------------------------------------------- properties

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
COLUMNS = st.sampled_from(
    [
        *("id", "name", "type", "flowData", "category", "deployed", "isPublic", "apikeyid", "mcpServerConfig"),
        *("chatbotConfig", "createdDate", "nodes", "data", "inputs", "startInputType", "formInputTypes", "addOptions"),
    ]
)
SHAPED = st.recursive(
    st.none()
    | st.integers(-1, 2)
    | st.sampled_from(["AGENTFLOW", "startAgentflow", "formInput", "webhookTrigger", "options", "x", "{"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(COLUMNS, inner, max_size=6)
        | st.dictionaries(COLUMNS, inner, max_size=4).map(json.dumps)
    ),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(payload=JSON | SHAPED, details=JSON | SHAPED)
def test_never_raises_on_odd_payloads(payload: Any, details: Any) -> None:
    for info in parse_flow_list(payload) + parse_flow_list([payload]):
        assert isinstance(info, FlowInfo)
        info.with_details(streaming=details, uploads=details)
        prediction_refusal(info)
        form_json_schema(info.form_fields)
        info.suggested_tool_name()
    parse_uploads(details)
    parse_streaming(details)


@settings(max_examples=200, deadline=None)
@given(
    start=st.dictionaries(
        st.sampled_from(["startInputType", "formInputTypes", "formTitle", "webhookMethod"]), JSON | SHAPED
    )
)
def test_any_start_node_parses(start: dict[str, Any]) -> None:
    try:
        row = row_314("n", start=start)
    except (TypeError, ValueError):  # not JSON-serialisable (nan is fine, other odd floats too)
        assume(False)
    assert parse_flow(row) is not None
