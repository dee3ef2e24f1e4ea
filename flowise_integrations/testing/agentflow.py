"""Agentflow v2 (Start -> LLM "Translator" or Agent "Calculator Agent", as captured): events, executed data."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from .turn import (
    Event,
    FlowAborted,
    FlowFailure,
    Step,
    Turn,
    delay,
    follow_up_column,
    follow_up_field,
    heartbeat_steps,
    token_steps,
)
from .wire import UNDEFINED, js_json

__all__ = ["ABORTED", "api_columns", "events", "result"]

START_ID: Final = "startAgentflow_0"
ABORTED: Final = "This operation was aborted"
_TOOL_DESCRIPTIONS: Final = {
    "calculator": "Useful for getting the result of a math expression. The input to this tool should be a valid "
    "mathematical expression that could be executed by a simple calculator."
}


@dataclass(frozen=True)
class _NodeSpec:
    """The node after Start: its id, component name, label, input-key prefix, system prompt, error wording."""

    id: str
    name: str
    label: str
    prefix: str
    system: str
    kind: str


_LLM: Final = _NodeSpec("llmAgentflow_0", "llmAgentflow", "Translator", "llm", "You are a helpful assistant.", "LLM")
_AGENT: Final = _NodeSpec(
    "agentAgentflow_0",
    "agentAgentflow",
    "Calculator Agent",
    "agent",
    "You are a helpful assistant with a calculator.",
    "Agent",
)


def _spec(turn: Turn) -> _NodeSpec:
    return _AGENT if turn.flow.node == "agent" else _LLM


def _node(node_id: str, label: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"nodeId": node_id, "nodeLabel": label, "status": status, **extra}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _start_entry(turn: Turn) -> dict[str, Any]:
    question = {"question": turn.question}
    return {
        "nodeId": START_ID,
        "nodeLabel": "Start",
        "data": {"id": START_ID, "name": "startAgentflow", "input": question, "output": question, "state": {}},
        "previousNodeIds": [],
        "status": "FINISHED",
    }


def _model_config(turn: Turn, prefix: str) -> dict[str, Any]:
    return {
        "cache": "",
        "modelName": "fake-gpt",
        "temperature": 0,
        "streaming": True,
        "maxTokens": "",
        "topP": "",
        "frequencyPenalty": "",
        "presencePenalty": "",
        "timeout": "",
        "strictToolCalling": "",
        "stopSequence": "",
        "basepath": "http://127.0.0.1:4999/v1",
        "proxyUrl": "",
        "baseOptions": "",
        "allowImageUploads": "",
        "imageResolution": "low",
        "reasoningEffort": "",
        f"{prefix}Model": "chatOpenAI",
        "FLOWISE_CREDENTIAL_ID": turn.credential_id,
    }


def _tools(turn: Turn) -> list[dict[str, Any]]:
    """The Agent node's tool calls: one per ``used_tools`` entry, all in one LLM round."""
    if turn.flow.node != "agent":
        return []
    call = "call_" + turn.execution_id[:6]
    return [
        {"name": t.get("tool") or "tool", "args": t.get("toolInput", {}), "id": f"{call}{i:02x}", "type": "tool_call"}
        for i, t in enumerate(turn.flow.used_tools or [])
    ]


def _tool_round(calls: list[dict[str, Any]]) -> list[Event]:
    """The tool-calling LLM round: empty tokens (role, name, 6-char argument pieces, finish, usage), announced."""
    if not calls:
        return []
    chunks = 3 + sum(1 + -(-len(json.dumps(c["args"])) // 6) for c in calls)
    announced = [{"tool": c["name"], "toolInput": c["args"], "toolOutput": ""} for c in calls]
    return [Event("token", "")] * chunks + [Event("calledTools", announced)]


def _tool_messages(turn: Turn, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The assistant message with the tool calls and the tool results, as the Agent node appends them."""
    if not calls:
        return []
    functions = [
        {
            "index": i,
            "id": c["id"],
            "type": "function",
            "function": {"name": c["name"], "arguments": json.dumps(c["args"])},
        }
        for i, c in enumerate(calls)
    ]
    assistant = {
        "role": "assistant",
        "content": "",
        "tool_calls": calls,
        "additional_kwargs": {"tool_calls": functions},
        "usage_metadata": turn.flow.usage_metadata(),
        "id": "chatcmpl-" + turn.execution_id.replace("-", "")[-12:],
    }
    results = []
    for call, used in zip(calls, turn.flow.used_tools or [], strict=False):
        output = used.get("toolOutput", "")
        content = output if isinstance(output, str) else js_json(output).decode("utf-8")
        results.append({"role": "tool", "content": content, "tool_call_id": call["id"], "name": call["name"],
                        "additional_kwargs": {}})  # fmt: skip
    return [assistant, *results]


def _available_tools(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tools: dict[str, dict[str, Any]] = {}
    for c in calls:
        name, args = c["name"], c["args"]
        properties = {k: {"type": "string"} for k in args} if isinstance(args, dict) else {}
        schema = {"type": "object", "properties": properties, "additionalProperties": False}
        tools.setdefault(name, {"name": name, "description": _TOOL_DESCRIPTIONS.get(name, name), "schema": schema,
                                "toolNode": {"label": name.replace("_", " ").title(), "name": name}})  # fmt: skip
    return list(tools.values())


def _node_input(turn: Turn, spec: _NodeSpec, calls: list[dict[str, Any]]) -> dict[str, Any]:
    p = spec.prefix
    user = {"role": "user", "content": turn.question}
    system = {"role": "system", "content": spec.system}
    inputs: dict[str, Any] = {
        "messages": [system, *turn.history, user, *_tool_messages(turn, calls)],
        f"{p}Model": "chatOpenAI",
    }
    if spec is _AGENT:
        inputs["agentTools"] = [
            {"agentSelectedTool": name, "agentSelectedToolRequiresHumanInput": "",
             "agentSelectedToolConfig": {"agentSelectedTool": name}}
            for name in dict.fromkeys(c["name"] for c in calls)
        ]  # fmt: skip
    inputs[f"{p}EnableMemory"] = True
    if turn.flow.memory_settings:
        inputs.update(
            {f"{p}MemoryType": "allMessages", f"{p}MemoryWindowSize": "20", f"{p}MemoryMaxTokenLimit": "2000"}
        )
    inputs[f"{p}ReturnResponseAs"] = "userMessage"
    inputs[f"{p}ModelConfig"] = _model_config(turn, p)
    return inputs


def _node_output(turn: Turn, spec: _NodeSpec, calls: list[dict[str, Any]], started: int, ended: int) -> dict[str, Any]:
    usage = turn.flow.usage_metadata()
    node_usage = usage
    if spec is _AGENT:  # the tool rounds' totals (the calling response's and the answer's), added on
        extra = 2 * usage.get("total_tokens", 0) if calls else 0
        node_usage = {**usage, "total_tokens": usage.get("total_tokens", 0) + extra, "tool_call_tokens": extra}
    output: dict[str, Any] = {
        "content": turn.text,
        "timeMetadata": {"start": started, "end": ended, "delta": ended - started},
        "calledTools": [],
        "usageMetadata": node_usage,
        "responseMetadata": {
            "prompt": 0,
            "completion": 0,
            "model_provider": "openai",
            "usage": {
                "prompt_tokens": usage.get("input_tokens", 0),
                "completion_tokens": usage.get("output_tokens", 0),
                "total_tokens": usage.get("total_tokens", 0),
            },
            "finish_reason": "stop",
            "model_name": "fake-gpt",
        },
    }
    extras = _payloads(turn)
    if calls:  # prepareOutputObject: usedTools, sourceDocuments, artifacts, availableTools, fileAnnotations
        at = next((i for i, (name, _) in enumerate(extras) if name == "fileAnnotations"), len(extras))
        extras.insert(at, ("availableTools", _available_tools(calls)))
    output.update(extras)
    if turn.reason_content is not None:
        output["reasonContent"] = turn.reason_content
    return output


def _node_entry(turn: Turn, spec: _NodeSpec, started: int, ended: int) -> dict[str, Any]:
    calls = _tools(turn)
    flow = turn.flow
    answer: dict[str, Any] = {"role": "user", "content": turn.text, "name": spec.label.lower().replace(" ", "_")}
    extras = {"artifacts": flow.artifacts, "fileAnnotations": flow.file_annotations,
              "usedTools": flow.used_tools if spec is _AGENT else None}  # fmt: skip
    extras = {k: v for k, v in extras.items() if v}
    if extras:
        answer["additional_kwargs"] = extras
    return {
        "nodeId": spec.id,
        "nodeLabel": spec.label,
        "data": {
            "id": spec.id,
            "name": spec.name,
            "input": _node_input(turn, spec, calls),
            "output": _node_output(turn, spec, calls, started, ended),
            "state": {},
            "chatHistory": [{"role": "user", "content": turn.question}, answer],
        },
        "previousNodeIds": [START_ID],
        "status": "FINISHED",
    }


def _payloads(turn: Turn) -> list[tuple[str, Any]]:
    flow = turn.flow
    pairs: list[tuple[str, Any]] = [
        ("usedTools", flow.used_tools),
        ("sourceDocuments", flow.source_documents),
        ("artifacts", flow.artifacts),
        ("fileAnnotations", flow.file_annotations),
    ]
    return [(name, value) for name, value in pairs if value is not None and value is not UNDEFINED]


def _thinking_prelude(turn: Turn) -> list[Event]:
    """The role chunk's empty token, then reasoning chunks (each also an empty token), then the closer."""
    prelude = [Event("token", "")]
    pieces = turn.flow.thinking
    if pieces:
        for piece in pieces:
            prelude += [Event("thinking", piece), Event("token", "")]
        prelude.append(Event("thinking", "", turn.flow.thinking_duration))
        turn.reason_content = {"thinking": "".join(pieces), "thinkingDuration": turn.flow.thinking_duration}
    return prelude


def _failed(turn: Turn, spec: _NodeSpec, message: str) -> Iterator[Step]:
    """A node failure: ``nextAgentFlow`` ERROR, the executed data so far, the flow status."""
    yield Event("nextAgentFlow", _node(spec.id, spec.label, "ERROR", error=message))
    turn.executed_data.append(
        {
            "nodeId": spec.id,
            "nodeLabel": spec.label,
            "previousNodeIds": [START_ID],
            "data": {"id": spec.id, "name": spec.name, "error": message},
            "status": "ERROR",
        }
    )
    yield Event("agentFlowExecutedData", list(turn.executed_data))
    yield Event("agentFlowEvent", "ERROR")


def events(turn: Turn) -> Iterator[Step]:
    """The captured agentflow_v2 sequence; errors and aborts end it the way ``executeAgentFlow`` does."""
    flow = turn.flow
    spec = _spec(turn)
    yield from delay(flow.first_token_delay)
    yield Event("agentFlowEvent", "INPROGRESS")
    yield Event("nextAgentFlow", _node(START_ID, "Start", "INPROGRESS"))
    yield Event("nextAgentFlow", _node(START_ID, "Start", "FINISHED"))
    turn.executed_data = [_start_entry(turn)]
    yield Event("agentFlowExecutedData", list(turn.executed_data))
    yield Event("nextAgentFlow", _node(spec.id, spec.label, "INPROGRESS"))
    started = _now_ms()
    try:
        prelude = _tool_round(_tools(turn)) + _thinking_prelude(turn)
        yield from token_steps(turn, turn.tokens, prelude)
        yield Event("token", "")  # the finish-reason chunk
        yield Event("token", "")  # the usage chunk
        yield from heartbeat_steps(turn)
        turn.check_abort()
    except FlowAborted:  # the node's LLM call throws the AbortError; the node reports it like any error
        message = f"Error in {spec.kind} node: {ABORTED}"
        yield from _failed(turn, spec, message)
        raise FlowFailure(message) from None
    except FlowFailure as exc:
        yield from _failed(turn, spec, exc.message)
        raise
    for name, value in _payloads(turn):
        yield Event(name, value)
    yield Event("calledTools", [])
    yield Event("usageMetadata", flow.usage_metadata())
    turn.executed_data.append(_node_entry(turn, spec, started, _now_ms()))
    yield Event("nextAgentFlow", _node(spec.id, spec.label, "FINISHED"))
    yield Event("agentFlowExecutedData", list(turn.executed_data))
    if flow.action is not None:
        yield Event("agentFlowEvent", "STOPPED")
        yield Event("action", flow.action)
    else:
        yield Event("agentFlowEvent", "FINISHED")


def _without_credentials(value: Any) -> Any:
    """``_removeCredentialId``: the JSON reply (not the stream!) drops every ``FLOWISE_CREDENTIAL_ID``."""
    if isinstance(value, list):
        return [_without_credentials(item) for item in value]
    if isinstance(value, dict):
        return {k: _without_credentials(v) for k, v in value.items() if k != "FLOWISE_CREDENTIAL_ID"}
    return value


def result(turn: Turn) -> dict[str, Any]:
    """The JSON reply of ``executeAgentFlow``."""
    body: dict[str, Any] = {
        "text": turn.text or " ",
        "question": turn.question,
        "form": turn.body.get("form", UNDEFINED),
        "chatId": turn.chat_id,
        "chatMessageId": turn.chat_message_id,
        "followUpPrompts": follow_up_field(turn),
        "executionId": turn.execution_id,
        "agentFlowExecutedData": _without_credentials(turn.executed_data),
    }
    if turn.flow.action is not None:
        body["action"] = turn.flow.action
    body["sessionId"] = turn.session_id
    return body


def api_columns(turn: Turn) -> dict[str, Any]:
    """Optional columns of the stored api message."""
    columns: dict[str, Any] = dict(_payloads(turn))
    if turn.reason_content is not None:
        columns["reasonContent"] = turn.reason_content
    columns["followUpPrompts"] = follow_up_column(turn)
    if turn.flow.action is not None:
        columns["action"] = turn.flow.action
    return columns
