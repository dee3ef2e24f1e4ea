"""Classic chatflows (LLM/Conversation/Retrieval chains, Tool Agent): their event order and JSON reply."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .turn import Event, Step, Turn, delay, follow_up_column, follow_up_field, heartbeat_steps, token_steps
from .wire import UNDEFINED

__all__ = ["api_columns", "events", "result"]


def _payloads(turn: Turn) -> list[tuple[str, Any]]:
    """The node-result extras in ``finalRes`` order (Tool Agent: sourceDocuments, usedTools, artifacts)."""
    flow = turn.flow
    pairs: list[tuple[str, Any]] = [
        ("sourceDocuments", flow.source_documents),
        ("usedTools", flow.used_tools),
        ("artifacts", flow.artifacts),
        ("fileAnnotations", flow.file_annotations),
    ]
    return [(name, value) for name, value in pairs if value is not None]


def events(turn: Turn) -> Iterator[Step]:
    """``start`` (with the first token), ``agent_trace``*, ``token``*, payload events."""
    flow = turn.flow
    yield from delay(flow.first_token_delay)
    prelude = [] if flow.start_data is None else [Event("start", flow.start_data)]
    prelude += [Event("agent_trace", trace) for trace in flow.agent_trace or []]
    yield from token_steps(turn, turn.tokens, prelude)
    yield from heartbeat_steps(turn)
    for name, value in _payloads(turn):
        yield Event(name, value)


def result(turn: Turn) -> dict[str, Any]:
    """The JSON reply: node result first, then what ``executeFlow`` adds, in its order."""
    flow = turn.flow
    body: dict[str, Any] = {"text": turn.text}
    body.update((name, value) for name, value in _payloads(turn) if value is not UNDEFINED)
    if flow.action is not None:
        body["action"] = flow.action
    body.update(
        question=turn.question,
        chatId=turn.chat_id,
        chatMessageId=turn.chat_message_id,
        followUpPrompts=follow_up_field(turn),
        isStreamValid=False,
        sessionId=turn.session_id,
    )
    if flow.memory_type:
        body["memoryType"] = flow.memory_type
    if flow.flow_variables:
        body["flowVariables"] = flow.flow_variables
    return body


def api_columns(turn: Turn) -> dict[str, Any]:
    """Optional columns of the stored api message."""
    columns = {name: value for name, value in _payloads(turn) if value is not UNDEFINED}
    if turn.flow.action is not None:
        columns["action"] = turn.flow.action
    columns["followUpPrompts"] = follow_up_column(turn)
    return columns
