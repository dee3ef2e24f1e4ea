"""Multi-agent / sequential-agent flows (agentflow v1, ``buildAgentGraph``): reasoning steps, one token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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

__all__ = ["api_columns", "events", "result"]


def _steps(turn: Turn) -> list[dict[str, Any]]:
    if turn.flow.agent_reasoning is not None:
        return turn.flow.agent_reasoning
    empty: dict[str, Any] = {"usedTools": [], "sourceDocuments": [], "artifacts": [], "state": {}}
    return [
        {"agentName": "Supervisor", "messages": [], "next": "Worker", "instructions": "Answer the question.", **empty,
         "nodeId": "supervisorAgent_0"},
        {"agentName": "Worker", "messages": [turn.text], **empty, "nodeId": "workerAgent_0"},
    ]  # fmt: skip


def _next_agent(turn: Turn, index: int, step: dict[str, Any]) -> str | None:
    scripted = turn.flow.next_agents
    if scripted is not None:
        return scripted[index] if index < len(scripted) else None
    nxt = step.get("next")
    return nxt if isinstance(nxt, str) and nxt not in ("", "FINISH", "END") else None


def _totals(turn: Turn) -> list[tuple[str, Any]]:
    flow = turn.flow
    docs = flow.source_documents if isinstance(flow.source_documents, list) else []
    return [("usedTools", flow.used_tools or []), ("sourceDocuments", docs), ("artifacts", flow.artifacts or [])]


def events(turn: Turn) -> Iterator[Step]:
    """``start`` (the reasoning array), (``agentReasoning``, ``nextAgent``)*, one token, totals; or ``abort``."""
    flow = turn.flow
    yield from delay(flow.first_token_delay)
    try:
        for index, step in enumerate(_steps(turn)):
            if index:
                yield from delay(flow.token_delay)
            turn.check_abort()
            turn.agent_reasoning.append(step)
            if index == 0 and flow.start_data is not None:
                yield Event("start", list(turn.agent_reasoning))
            yield Event("agentReasoning", list(turn.agent_reasoning))
            label = _next_agent(turn, index, step)
            if label is not None:
                yield Event("nextAgent", label)
        yield from token_steps(turn, [turn.text])
    except FlowAborted:
        turn.text = ""
        yield Event("abort", "[DONE]")
        return
    except FlowFailure as exc:
        raise FlowFailure(f"Error buildAgentGraph - {exc.message}") from None
    yield from heartbeat_steps(turn)
    if flow.action is not None:
        yield Event("action", flow.action)
    for name, value in _totals(turn):
        yield Event(name, value)


def result(turn: Turn) -> dict[str, Any]:
    """The JSON reply ``utilBuildChatflow`` assembles for multi-agent flows."""
    flow = turn.flow
    body: dict[str, Any] = {
        "text": turn.text,
        "question": turn.question,
        "chatId": turn.chat_id,
        "chatMessageId": turn.chat_message_id,
        "sessionId": turn.session_id,
    }
    if flow.memory_type:
        body["memoryType"] = flow.memory_type
    if turn.agent_reasoning:
        body["agentReasoning"] = turn.agent_reasoning
    if flow.action:
        body["action"] = flow.action
    if flow.flow_variables:
        body["flowVariables"] = flow.flow_variables
    body["followUpPrompts"] = follow_up_field(turn)
    return body


def api_columns(turn: Turn) -> dict[str, Any]:
    """Optional columns of the stored api message (only non-empty totals are stored)."""
    columns: dict[str, Any] = {name: value for name, value in _totals(turn) if value}
    if turn.agent_reasoning:
        columns["agentReasoning"] = turn.agent_reasoning
    if turn.flow.action:
        columns["action"] = turn.flow.action
    columns["followUpPrompts"] = follow_up_column(turn)
    return columns
