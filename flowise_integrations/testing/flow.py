"""``FakeFlow``: the script of what one emulated chatflow, agentflow or multi-agent flow does."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .wire import Undefined

__all__ = ["DEFAULT_ANSWER", "DEFAULT_USAGE", "AgentflowNode", "FakeFlow", "FlowKind", "split_tokens"]

FlowKind = Literal["chatflow", "agentflow", "multiagent"]
AgentflowNode = Literal["llm", "agent"]

DEFAULT_ANSWER: Final = "Hello from the fake LLM! This answer is streamed token by token."
DEFAULT_USAGE: Final[dict[str, Any]] = {
    "input_tokens": 10,
    "output_tokens": 12,
    "total_tokens": 22,
    "input_token_details": {},
    "output_token_details": {},
}

_TOKEN = re.compile(r"\s*\S+")


def split_tokens(text: str) -> list[str]:
    """Split an answer the way the captured fake LLM streamed it: ``"Hello", " from", " the", ...``.

    The tokens always concatenate back to ``text`` (trailing whitespace rides on the last token).
    """
    tokens: list[str] = _TOKEN.findall(text)
    rest = text[sum(map(len, tokens)) :]
    if rest:
        if tokens:
            tokens[-1] += rest
        else:
            tokens.append(rest)
    return tokens


@dataclass
class FakeFlow:
    """What one flow answers and how; every field is optional.

    Content: ``answer`` (or ``respond(body) -> str`` computed from the request JSON), streamed as ``tokens``
    (default: :func:`split_tokens` of the answer; when given, the answer is their concatenation).

    Payloads (``None`` = not sent): ``source_documents``, ``used_tools``, ``agent_trace`` (Tool Agent
    detailed-streaming events), ``agent_reasoning`` / ``next_agents`` (multiagent steps), ``artifacts``,
    ``file_annotations``, ``flow_variables``, ``action``, ``thinking`` (agentflow reasoning chunks),
    ``usage`` (agentflow usageMetadata), ``follow_up_prompts``, ``memory_type``. ``source_documents`` may be
    ``UNDEFINED`` to send ``{"event":"sourceDocuments"}`` with no data key.

    Faults: ``api_key`` (flow-level key), ``error`` after ``error_after`` tokens, ``drop_after`` tokens then
    EOF, ``lose_tokens`` (queue-mode bug: only metadata + end), ``heartbeats``, ``http_errors`` (the first
    prediction requests get these ``(status, headers, body)`` replies), ``streaming=False`` (JSON only).

    Agentflow shape: ``node`` is the node after Start: ``"llm"`` (LLM "Translator") or ``"agent"`` (Agent
    "Calculator Agent", whose tools are the ``used_tools``: it announces them in ``calledTools`` before
    answering). ``memory_settings=False`` leaves the memory type/window/token-limit inputs out of the node's
    executed data, as in the hand-built flow of ``tests/fixtures/transcripts`` (UI/REST-built flows have them).
    """

    id: str | None = None
    name: str = "flow"
    kind: FlowKind = "chatflow"
    answer: str = DEFAULT_ANSWER
    tokens: list[str] | None = None
    respond: Callable[[dict[str, Any]], str] | None = None
    first_token_delay: float = 0.0
    token_delay: float = 0.0
    start_data: str | None = ""
    source_documents: list[dict[str, Any]] | Undefined | None = None
    used_tools: list[dict[str, Any]] | None = None
    agent_trace: list[dict[str, Any]] | None = None
    agent_reasoning: list[dict[str, Any]] | None = None
    next_agents: list[str | None] | None = None
    artifacts: list[dict[str, Any]] | None = None
    file_annotations: list[dict[str, Any]] | None = None
    flow_variables: dict[str, Any] | None = None
    action: dict[str, Any] | list[Any] | None = None
    thinking: list[str] | None = None
    thinking_duration: int = 1
    usage: dict[str, Any] | None = None
    follow_up_prompts: list[str] | None = None
    memory_type: str | None = None
    streaming: bool = True
    api_key: str | None = None
    error: str | None = None
    error_after: int = 0
    drop_after: int | None = None
    lose_tokens: bool = False
    heartbeats: int = 0
    heartbeat_interval: float = 0.0
    http_errors: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    node: AgentflowNode = "llm"
    memory_settings: bool = True

    def text_and_tokens(self, body: dict[str, Any]) -> tuple[str, list[str]]:
        """The final answer for this request and the tokens that stream it."""
        if self.respond is not None:
            text = self.respond(body)
            return text, split_tokens(text)
        if self.tokens is not None:
            return "".join(self.tokens), list(self.tokens)
        return self.answer, split_tokens(self.answer)

    def usage_metadata(self) -> dict[str, Any]:
        """The agentflow ``usageMetadata`` (the capture's numbers unless scripted)."""
        return dict(DEFAULT_USAGE) if self.usage is None else self.usage
