"""One prediction run: its resolved ids and script, and the step helpers every flow kind streams with."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from .actions import DROP, Chunk, Drop, Sleep
from .flow import FakeFlow
from .wire import HEARTBEAT, UNDEFINED, js_json, sse_event

__all__ = [
    "Event",
    "FlowAborted",
    "FlowFailure",
    "Run",
    "Step",
    "Turn",
    "delay",
    "follow_up_column",
    "follow_up_field",
    "heartbeat_steps",
    "token_steps",
]


@dataclass(frozen=True)
class Event:
    """One SSE event; ``UNDEFINED`` fields are left out of the JSON like JavaScript ``undefined``."""

    name: str
    data: Any = UNDEFINED
    duration: Any = UNDEFINED

    def frame(self) -> bytes:
        """The event's exact bytes on the wire."""
        return sse_event(self.name, self.data, self.duration)


Step: TypeAlias = "Event | Chunk | Sleep | Drop"
"""What a flow script yields: events, raw bytes (heartbeats), latency and connection cuts."""


class FlowFailure(Exception):
    """The flow threw; ``message`` is the node's error text (the server prefixes it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FlowAborted(Exception):
    """The run noticed ``PUT /chatmessage/abort`` (agentflows and multiagent flows only)."""


class Run:
    """An executing prediction, registered under ``<flowId>_<chatId>`` so the abort endpoint can reach it."""

    def __init__(self) -> None:
        self.aborted = threading.Event()


@dataclass
class Turn:
    """Everything one prediction needs; the flow scripts also record what they produced here."""

    flow_id: str
    flow: FakeFlow
    body: dict[str, Any]
    question: Any
    chat_id: str
    session_id: str
    chat_message_id: str
    execution_id: str
    text: str
    tokens: list[str]
    credential_id: str
    history: list[dict[str, Any]]
    run: Run = field(default_factory=Run)
    agent_reasoning: list[dict[str, Any]] = field(default_factory=list)
    executed_data: list[dict[str, Any]] = field(default_factory=list)
    reason_content: dict[str, Any] | None = None
    past_rows: list[dict[str, Any]] = field(default_factory=list)
    """The session's stored chat-message rows, oldest first (agentflow memory and resumes)."""
    executions: Any = None
    """The server's :class:`~.executions.ExecutionStore` (agentflows)."""
    user_content: str | None = None
    """What the stored user message says, when not the question (agentflows: form text, resume feedback)."""
    action: dict[str, Any] | None = None
    """The ``action`` this run ends with (a stopped agentflow's ``humanInputAction``)."""
    last_output: dict[str, Any] | None = None
    """The last executed node's output (agentflows: what the stored api message keeps)."""
    profile: Any = None
    """The server's :class:`~.versions.ServerProfile` (per-version behaviour)."""

    def check_abort(self) -> None:
        """Raise :class:`FlowAborted` if an abort arrived; classic chatflows never see the signal."""
        if self.flow.kind != "chatflow" and self.run.aborted.is_set():
            raise FlowAborted


def delay(seconds: float) -> Iterator[Step]:
    """Latency, if any."""
    if seconds > 0:
        yield Sleep(seconds)


def _fault(turn: Turn, index: int, last: bool) -> Iterator[Step]:
    flow = turn.flow
    if flow.drop_after is not None and (index == flow.drop_after or (last and flow.drop_after > index)):
        yield DROP
    if flow.error is not None and (index == flow.error_after or (last and flow.error_after > index)):
        raise FlowFailure(flow.error)


def token_steps(turn: Turn, tokens: list[str], prelude: Iterable[Event] = ()) -> Iterator[Step]:
    """Stream ``tokens`` with the scripted delays, error, drop and abort checks.

    ``prelude`` goes out together with the first token (``start`` rides on the first LLM chunk). The
    ``error``/``drop`` fire before token number ``error_after``/``drop_after`` (or after the last one).
    """
    flow = turn.flow
    for index, token in enumerate(tokens):
        if index:
            yield from delay(flow.token_delay)
        turn.check_abort()
        yield from _fault(turn, index, last=False)
        if index == 0:
            yield from prelude
        yield Event("token", token)
    if not tokens:
        turn.check_abort()
    yield from _fault(turn, len(tokens), last=True)
    if not tokens:
        yield from prelude


def heartbeat_steps(turn: Turn) -> Iterator[Step]:
    """``:heartbeat`` comments, as the 30 s keep-alive timer writes them during a long step."""
    for _ in range(turn.flow.heartbeats):
        yield from delay(turn.flow.heartbeat_interval)
        yield Chunk(HEARTBEAT)


def follow_up_column(turn: Turn) -> str | None:
    """``followUpPrompts`` as stored on the api message: one JSON string (the metadata event sends this)."""
    prompts = turn.flow.follow_up_prompts
    return None if prompts is None else js_json(prompts).decode("utf-8")


def follow_up_field(turn: Turn) -> Any:
    """``followUpPrompts`` as the JSON reply carries it: the stored JSON string, JSON-encoded again."""
    column = follow_up_column(turn)
    return UNDEFINED if column is None else js_json(column).decode("utf-8")
