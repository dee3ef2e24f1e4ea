"""What the emulator tells about its flows: chatflow rows, their ``flowData``, upload settings, execution rows.

Row columns follow the ``ChatFlow`` entity of the emulated version (2.x has no ``textToSpeech``/``workspaceId``;
3.1.3+ adds ``mcpServerConfig`` and ``webhookSecretConfigured``). ``flowData`` is a small but well-formed
canvas: an agentflow's Start node carries the input type and the form as Flowise's Start node does.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any, Final

from .agentgraph import START_ID, Graph
from .agentnodes import node_name
from .flow import FakeFlow
from .nodes import Agent, Condition, DirectReply, HumanInput, Iteration, Loop
from .versions import ServerProfile
from .wire import js_json

__all__ = ["chatflow_row", "flow_data", "uploads_config"]

_INPUT_TYPES: Final = {
    "chat": "chatInput",
    "form": "formInput",
    "webhook": "webhookTrigger",
    "schedule": "scheduleInput",
}
_IMAGE_TYPES: Final = ["image/gif", "image/jpeg", "image/png", "image/webp", ""]
_TOOL_NAME: Final = re.compile(r"[^a-zA-Z0-9_-]+")


def _stable_id(*parts: str) -> str:
    """A UUID that stays the same for the same inputs (an API key's id, an MCP token)."""
    return str(uuid.UUID(hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32], version=4))


def _start_inputs(flow: FakeFlow) -> dict[str, Any]:
    """The Start node's inputs as the canvas saves them (only what a client reads is filled in)."""
    return {
        "startInputType": _INPUT_TYPES[flow.input_type],
        "formTitle": flow.form_title,
        "formDescription": flow.form_description,
        "formInputTypes": [dict(f) for f in flow.form_fields] if flow.form_fields else "",
        "webhookMethod": flow.webhook_method,
        "webhookContentType": "application/json",
        "webhookInputMode": "text",
        "webhookResponseMode": "sync",
        "scheduleType": "visualPicker",
        "scheduleTimezone": "UTC",
        "scheduleInputMode": "text",
        "startEphemeralMemory": "",
        "startState": "",
        "startPersistState": "",
    }


def _node_inputs(node: Any) -> dict[str, Any]:
    if isinstance(node, Agent):
        names = dict.fromkeys(t.get("tool") or "tool" for t in node.tools)
        tools = [{"agentSelectedTool": name, "agentSelectedToolRequiresHumanInput": True if node.approval else "",
                  "agentSelectedToolConfig": {"agentSelectedTool": name}} for name in names]  # fmt: skip
        return {"agentModel": "chatOpenAI", "agentTools": tools, "agentEnableMemory": node.memory}
    if isinstance(node, HumanInput):
        return {"humanInputDescriptionType": "fixed", "humanInputDescription": node.description,
                "humanInputEnableFeedback": node.feedback}  # fmt: skip
    if isinstance(node, Condition):
        return {"conditions": node.conditions}
    if isinstance(node, Iteration):
        return {"iterationInput": node.items}
    if isinstance(node, Loop):
        return {
            "loopBackToNode": node.target,
            "maxLoopCount": node.max_loop_count,
            "fallbackMessage": node.fallback or "",
        }
    if isinstance(node, DirectReply):
        return {"directReplyMessage": node.message}
    return {"llmModel": "chatOpenAI", "llmEnableMemory": node.memory}


def _canvas_node(node_id: str, name: str, label: str, category: str, inputs: dict[str, Any], x: int) -> dict[str, Any]:
    kind = "agentFlow" if category == "Agent Flows" else "customNode"
    data = {"label": label, "name": name, "category": category, "inputs": inputs, "outputs": {}, "id": node_id}
    return {"id": node_id, "position": {"x": x, "y": 100}, "type": kind, "data": data}


def _agentflow_canvas(flow: FakeFlow) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    graph = Graph.build(flow.agentflow_nodes(), flow.edges)
    nodes = [_canvas_node(START_ID, "startAgentflow", "Start", "Agent Flows", _start_inputs(flow), 100)]
    for i, node in enumerate(n for n in graph.nodes.values() if n.id != START_ID):
        nodes.append(
            _canvas_node(node.id, node_name(node), node.label, "Agent Flows", _node_inputs(node), 500 + 400 * i)
        )
        if isinstance(node, Iteration):
            for body in node.body:
                child = _canvas_node(body.id, node_name(body), body.label, "Agent Flows", _node_inputs(body), 0)
                child.update(parentNode=node.id, extent="parent")
                nodes.append(child)
    edges = [{"source": source, "sourceHandle": f"{source}-output-{output}", "target": target, "targetHandle": target,
              "type": "agentFlow", "id": f"{source}-{output}-{target}"}
             for source, children in graph.children.items() for target, output in children]  # fmt: skip
    return nodes, edges


def _chatflow_canvas(flow: FakeFlow) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    model_inputs = {"modelName": "fake-gpt", "streaming": flow.streaming, "allowImageUploads": flow.image_uploads}
    model = _canvas_node("chatOpenAI_0", "chatOpenAI", "ChatOpenAI", "Chat Models", model_inputs, 100)
    if flow.kind == "multiagent":
        supervisor = _canvas_node("supervisor_0", "supervisor", "Supervisor", "Multi Agents", {}, 500)
        worker = _canvas_node("worker_0", "worker", "Worker", "Multi Agents", {"workerName": "Worker"}, 900)
        nodes = [model, supervisor, worker]
        links = [("chatOpenAI_0", "supervisor_0"), ("supervisor_0", "worker_0")]
    else:
        nodes = [model, _canvas_node("llmChain_0", "llmChain", "LLM Chain", "Chains", {}, 500)]
        links = [("chatOpenAI_0", "llmChain_0")]
    edges = [{"source": s, "sourceHandle": f"{s}-output", "target": t, "targetHandle": f"{t}-input",
              "type": "buttonedge", "id": f"{s}-{t}"} for s, t in links]  # fmt: skip
    return nodes, edges


def flow_data(flow: FakeFlow) -> str:
    """The row's ``flowData``: a JSON string of ``{nodes, edges, viewport}``."""
    nodes, edges = _agentflow_canvas(flow) if flow.kind == "agentflow" else _chatflow_canvas(flow)
    return js_json({"nodes": nodes, "edges": edges, "viewport": {"x": 0, "y": 0, "zoom": 0.5}}).decode("utf-8")


def _mcp_config(flow_id: str, flow: FakeFlow) -> str | None:
    if not flow.description:
        return None
    tool = _TOOL_NAME.sub("_", flow.name).strip("_")[:64] or "flow"
    config = {"enabled": True, "token": _stable_id("mcp", flow_id).replace("-", ""), "description": flow.description,
              "toolName": tool}  # fmt: skip
    return js_json(config).decode("utf-8")


def chatflow_row(
    flow_id: str, flow: FakeFlow, created: str, workspace_id: str, profile: ServerProfile
) -> dict[str, Any]:
    """The ``ChatFlow`` entity as ``GET /api/v1/chatflows[/{id}]`` returns it (JSON columns as strings)."""
    row: dict[str, Any] = {
        "id": flow_id,
        "name": flow.name,
        "flowData": flow_data(flow),
        "deployed": flow.deployed,
        "isPublic": flow.is_public,
        "apikeyid": _stable_id("apikey", flow.api_key) if flow.api_key else None,
        "chatbotConfig": None,
        "apiConfig": None,
        "analytic": None,
        "speechToText": js_json({"openAIWhisper": {"status": True}}).decode() if flow.speech_to_text else None,
    }
    if profile.workspaces:
        row["textToSpeech"] = None
    row["followUpPrompts"] = js_json({"status": True}).decode() if flow.follow_up_prompts else None
    row["category"] = flow.category
    row["type"] = flow.chatflow_type
    row["createdDate"] = created
    row["updatedDate"] = created
    if profile.mcp_columns:
        row["mcpServerConfig"] = _mcp_config(flow_id, flow)
        row["webhookSecretConfigured"] = False
    if profile.workspaces:
        row["workspaceId"] = workspace_id
    return row


def uploads_config(flow: FakeFlow) -> dict[str, Any]:
    """``GET /api/v1/chatflows-uploads/{id}``: what the flow accepts (images, RAG files, speech)."""
    images = [{"fileTypes": list(_IMAGE_TYPES), "maxUploadSize": 5}] if flow.image_uploads else []
    files = [{"fileTypes": list(flow.file_upload_types), "maxUploadSize": 500}] if flow.file_upload_types else []
    return {
        "isSpeechToTextEnabled": flow.speech_to_text,
        "isImageUploadAllowed": bool(images),
        "isRAGFileUploadAllowed": bool(files),
        "imgUploadSizeAndTypes": images,
        "fileUploadSizeAndTypes": files,
    }
