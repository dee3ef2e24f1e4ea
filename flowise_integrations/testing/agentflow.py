"""Agentflow v2 (Start -> LLM "Translator", the captured template): node events, executed data, JSON reply."""

from __future__ import annotations

import time
from collections.abc import Iterator
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
from .wire import UNDEFINED

__all__ = ["CANCELLED", "api_columns", "events", "result"]

START_ID: Final = "startAgentflow_0"
LLM_ID: Final = "llmAgentflow_0"
LLM_LABEL: Final = "Translator"
CANCELLED: Final = "Flow execution was cancelled"
_SYSTEM: Final = "You are a helpful assistant."


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


def _model_config(turn: Turn) -> dict[str, Any]:
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
        "llmModel": "chatOpenAI",
        "FLOWISE_CREDENTIAL_ID": turn.credential_id,
    }


def _llm_output(turn: Turn, started: int, ended: int) -> dict[str, Any]:
    flow = turn.flow
    usage = flow.usage_metadata()
    output: dict[str, Any] = {
        "content": turn.text,
        "timeMetadata": {"start": started, "end": ended, "delta": ended - started},
        "calledTools": [],
        "usageMetadata": usage,
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
    output.update(_payloads(turn))
    if turn.reason_content is not None:
        output["reasonContent"] = turn.reason_content
    return output


def _llm_entry(turn: Turn, started: int, ended: int) -> dict[str, Any]:
    user = {"role": "user", "content": turn.question}
    return {
        "nodeId": LLM_ID,
        "nodeLabel": LLM_LABEL,
        "data": {
            "id": LLM_ID,
            "name": "llmAgentflow",
            "input": {
                "messages": [{"role": "system", "content": _SYSTEM}, *turn.history, user],
                "llmModel": "chatOpenAI",
                "llmEnableMemory": True,
                "llmReturnResponseAs": "userMessage",
                "llmModelConfig": _model_config(turn),
            },
            "output": _llm_output(turn, started, ended),
            "state": {},
            "chatHistory": [user, {"role": "user", "content": turn.text, "name": LLM_LABEL.lower()}],
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


def _failed(turn: Turn, status: str, message: str) -> Iterator[Step]:
    """A node failure: ``nextAgentFlow`` ERROR/TERMINATED, the executed data so far, the flow status."""
    yield Event("nextAgentFlow", _node(LLM_ID, LLM_LABEL, status, error=message if status == "ERROR" else UNDEFINED))
    turn.executed_data.append(
        {
            "nodeId": LLM_ID,
            "nodeLabel": LLM_LABEL,
            "previousNodeIds": [START_ID],
            "data": {"id": LLM_ID, "name": "llmAgentflow", "error": message},
            "status": status,
        }
    )
    yield Event("agentFlowExecutedData", list(turn.executed_data))
    yield Event("agentFlowEvent", status)


def events(turn: Turn) -> Iterator[Step]:
    """The captured agentflow_v2 sequence; errors and aborts end it the way ``executeAgentFlow`` does."""
    flow = turn.flow
    yield from delay(flow.first_token_delay)
    yield Event("agentFlowEvent", "INPROGRESS")
    yield Event("nextAgentFlow", _node(START_ID, "Start", "INPROGRESS"))
    yield Event("nextAgentFlow", _node(START_ID, "Start", "FINISHED"))
    turn.executed_data = [_start_entry(turn)]
    yield Event("agentFlowExecutedData", list(turn.executed_data))
    yield Event("nextAgentFlow", _node(LLM_ID, LLM_LABEL, "INPROGRESS"))
    started = _now_ms()
    try:
        yield from token_steps(turn, turn.tokens, _thinking_prelude(turn))
        yield Event("token", "")  # the finish-reason chunk
        yield Event("token", "")  # the usage chunk
        yield from heartbeat_steps(turn)
        turn.check_abort()
    except FlowAborted:
        yield from _failed(turn, "TERMINATED", CANCELLED)
        raise FlowFailure(CANCELLED) from None
    except FlowFailure as exc:
        yield from _failed(turn, "ERROR", exc.message)
        raise
    for name, value in _payloads(turn):
        yield Event(name, value)
    yield Event("calledTools", [])
    yield Event("usageMetadata", flow.usage_metadata())
    turn.executed_data.append(_llm_entry(turn, started, _now_ms()))
    yield Event("nextAgentFlow", _node(LLM_ID, LLM_LABEL, "FINISHED"))
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
