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

__all__ = ["api_columns", "events", "result", "supervisor_step", "worker_step"]


def supervisor_step(next_agent: str, instructions: str, team: list[str]) -> dict[str, Any]:
    """A Supervisor's reasoning step: it routes to ``next_agent`` (a worker's name, lower case, or FINISH).

    Its ``state`` is its whole output and its ``nodeId`` is empty: the supervisor sends no message.
    """
    state = {"next": next_agent, "instructions": instructions, "team_members": ", ".join(team)}
    return {"agentName": "Supervisor", "messages": [], "next": next_agent, "instructions": instructions,
            "usedTools": [], "sourceDocuments": [], "artifacts": [], "state": state, "nodeId": ""}  # fmt: skip


def worker_step(
    name: str,
    message: str,
    node_id: str,
    *,
    used_tools: list[dict[str, Any]] | None = None,
    source_documents: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A Worker's step: one message; ``[null]`` for each payload its message does not carry, as Flowise
    flattens ``message.additional_kwargs?.usedTools`` (and sources, artifacts) over the worker's messages."""
    nothing: list[Any] = [None]
    return {"agentName": name, "messages": [message], "usedTools": used_tools or nothing,
            "sourceDocuments": source_documents or nothing, "artifacts": nothing, "state": {},
            "nodeId": node_id}  # fmt: skip


def _steps(turn: Turn) -> list[dict[str, Any]]:
    """The scripted steps, else Supervisor -> Worker -> Supervisor (FINISH), the worker answering."""
    flow = turn.flow
    if flow.agent_reasoning is not None:
        return flow.agent_reasoning
    docs = flow.source_documents if isinstance(flow.source_documents, list) else None
    return [
        supervisor_step("worker", "worker: answer the user", ["worker"]),
        worker_step("Worker", turn.text, "worker_0", used_tools=flow.used_tools, source_documents=docs),
        supervisor_step("FINISH", "FINISH: answer the user", ["worker"]),
    ]


def _next_agent(turn: Turn, index: int, step: dict[str, Any], steps: list[dict[str, Any]]) -> str | None:
    """``nextAgent``: the label of the agent a step routes to (``mapNameToLabel``), unless it finishes."""
    scripted = turn.flow.next_agents
    if scripted is not None:
        return scripted[index] if index < len(scripted) else None
    nxt = step.get("next")
    if not isinstance(nxt, str) or nxt in ("", "FINISH", "END"):
        return None
    names = (s.get("agentName") for s in steps)
    return next((n for n in names if isinstance(n, str) and n.lower() == nxt.lower()), nxt)


def _totals(turn: Turn) -> list[tuple[str, Any]]:
    flow = turn.flow
    docs = flow.source_documents if isinstance(flow.source_documents, list) else []
    return [("usedTools", flow.used_tools or []), ("sourceDocuments", docs), ("artifacts", flow.artifacts or [])]


def events(turn: Turn) -> Iterator[Step]:
    """``start`` (the reasoning array), (``agentReasoning``, ``nextAgent``)*, one token, totals; or ``abort``."""
    flow = turn.flow
    yield from delay(flow.first_token_delay)
    steps = _steps(turn)
    try:
        for index, step in enumerate(steps):
            if index:
                yield from delay(flow.token_delay)
            turn.check_abort()
            turn.agent_reasoning.append(step)
            if index == 0 and flow.start_data is not None:
                yield Event("start", list(turn.agent_reasoning))
            yield Event("agentReasoning", list(turn.agent_reasoning))
            label = _next_agent(turn, index, step, steps)
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
