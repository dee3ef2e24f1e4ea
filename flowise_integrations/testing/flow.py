"""``FakeFlow``: the script of what one emulated chatflow, agentflow or multi-agent flow does."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .nodes import LLM, Agent, AgentflowNode, Edge
from .wire import Undefined

__all__ = ["DEFAULT_ANSWER", "DEFAULT_USAGE", "FakeFlow", "FlowKind", "InputType", "NodeKind", "split_tokens"]

FlowKind = Literal["chatflow", "agentflow", "multiagent"]
NodeKind = Literal["llm", "agent"]
InputType = Literal["chat", "form", "webhook", "schedule"]
_TYPES: Final = {"chatflow": "CHATFLOW", "agentflow": "AGENTFLOW", "multiagent": "MULTIAGENT"}

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
    ``file_annotations``, ``flow_variables``, ``action`` (chatflows and multi-agent interrupts; an agentflow
    stops through its ``HumanInput`` / approval ``Agent`` nodes), ``thinking`` (agentflow reasoning chunks),
    ``usage`` (agentflow usageMetadata), ``follow_up_prompts``, ``memory_type``. ``source_documents`` may be
    ``UNDEFINED`` to send ``{"event":"sourceDocuments"}`` with no data key.

    Faults: ``api_key`` (flow-level key), ``error`` after ``error_after`` tokens, ``drop_after`` tokens then
    EOF, ``lose_tokens`` (queue-mode bug: only metadata + end), ``heartbeats``, ``http_errors`` (the first
    prediction requests get these ``(status, headers, body)`` replies), ``streaming=False`` (JSON only).

    Agentflow shape: ``nodes`` (see :mod:`~flowise_integrations.testing.nodes`: ``LLM``, ``Agent``,
    ``HumanInput``, ``Condition``, ``Iteration``, ``Loop``, ``DirectReply``) run after the Start node, linked
    by ``edges`` (``(source, target[, output])``; default: one chain in list order, the Start node first). The
    node whose ``answer`` is None answers the flow's ``answer``/``tokens``/``respond`` and carries the flow's
    payloads; the flow's faults (``error``, ``drop_after``...) and delays strike the node that streams. Stops
    and resumes (``humanInput`` in the request) work as on Flowise 3.x: executions are kept per session, a
    resume continues the stopped execution (same id, the executed data from before the stop included).
    Without ``nodes``, ``node`` picks the captured single node after Start: ``"llm"`` (LLM "Translator") or
    ``"agent"`` (Agent "Calculator Agent", whose tools are the ``used_tools``). ``memory_settings=False``
    leaves the memory type/window/token-limit inputs out of that node's executed data, as in the hand-built
    flow of ``tests/fixtures/transcripts``. ``count_tokens`` counts tokens for the ``estimatedTokenUsage``
    LangChain adds to silent (non-streamed) model calls (default: a close approximation of tiktoken).

    Discovery (``GET /chatflows``, ``/chatflows/{id}``, ``/chatflows-uploads/{id}``): ``name``, ``description``
    (Flowise 3.1.3+ keeps it in the flow's MCP config), ``category``, ``deployed``, ``is_public``,
    ``flow_type`` (default from ``kind``; ``"ASSISTANT"`` for an assistant), the Start node's ``input_type``
    (``chat``, ``form`` with ``form_title``/``form_description``/``form_fields`` as Flowise's
    ``formInputTypes`` rows ``{"type", "label", "name", "addOptions"}``, ``webhook`` with ``webhook_method``,
    ``schedule``), and the uploads it accepts: ``image_uploads``, ``file_upload_types``, ``speech_to_text``.
    A webhook or schedule agentflow refuses predictions with Flowise's message.

    Multi-agent interrupts: ``on_action`` maps ``"approve"``/``"reject"`` to the script that answers when the
    request sends the ``action`` back with ``question`` equal to that decision's label.
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
    node: NodeKind = "llm"
    memory_settings: bool = True
    nodes: list[AgentflowNode] | None = None
    edges: list[Edge] | None = None
    count_tokens: Callable[[str], int] | None = None
    description: str | None = None
    category: str | None = None
    deployed: bool = False
    is_public: bool = False
    flow_type: str | None = None
    input_type: InputType = "chat"
    form_title: str = ""
    form_description: str = ""
    form_fields: list[dict[str, Any]] = field(default_factory=list)
    webhook_method: str = "POST"
    image_uploads: bool = False
    file_upload_types: list[str] | None = None
    speech_to_text: bool = False
    on_action: dict[str, FakeFlow] | None = None

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

    @property
    def chatflow_type(self) -> str:
        """The row's ``type``: ``flow_type``, else CHATFLOW / AGENTFLOW / MULTIAGENT from ``kind``."""
        return self.flow_type or _TYPES[self.kind]

    def agentflow_nodes(self) -> list[AgentflowNode]:
        """The nodes after Start: ``nodes``, or the single captured node ``node`` names."""
        if self.nodes is not None:
            return list(self.nodes)
        if self.node == "agent":
            system = "You are a helpful assistant with a calculator."
            return [Agent(label="Calculator Agent", system=system, tools=list(self.used_tools or []),
                          memory_settings=self.memory_settings)]  # fmt: skip
        return [LLM(label="Translator", memory_settings=self.memory_settings)]
