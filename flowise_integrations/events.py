"""Typed stream events, and the decoder from one frame's JSON ``{"event", "data"}`` to one event.

Every event class has the wire name in ``event`` and the payload exactly as received in ``data``; typed views
of the payload are properties (built on demand, so token events cost one small object each). Events are plain
slotted dataclasses (treat them as read-only: a frozen dataclass costs three times as much to build). Names Flowise
adds in a later release arrive as :class:`UnknownEvent`, and a frame that is not valid JSON as
:class:`MalformedEvent`: nothing is dropped and nothing raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Union

from pydantic import ConfigDict, TypeAdapter

from .models import AgentReasoningStep, SourceDocument, Usage, UsedTool

__all__ = [
    "AbortEvent",
    "ActionEvent",
    "AgentFlowEvent",
    "AgentFlowExecutedDataEvent",
    "AgentReasoningEvent",
    "AgentTraceEvent",
    "ArtifactsEvent",
    "CalledToolsEvent",
    "CorrectionEvent",
    "EndEvent",
    "ErrorEvent",
    "FileAnnotationsEvent",
    "FlowiseEvent",
    "MalformedEvent",
    "MetadataEvent",
    "NextAgentEvent",
    "NextAgentFlowEvent",
    "SourceDocumentsEvent",
    "StartEvent",
    "TTSAbortEvent",
    "TTSDataEvent",
    "TTSEndEvent",
    "TTSStartEvent",
    "ThinkingEvent",
    "TokenEvent",
    "ToolEvent",
    "UnknownEvent",
    "UsageMetadataEvent",
    "UsedToolsEvent",
    "decode_event",
    "event_to_dict",
]

_DOCS = TypeAdapter(list[SourceDocument], config=ConfigDict(defer_build=True))
_TOOLS = TypeAdapter(list[UsedTool], config=ConfigDict(defer_build=True))
_STEPS = TypeAdapter(list[AgentReasoningStep], config=ConfigDict(defer_build=True))


def _as_list(data: Any) -> list[Any]:
    """The dict items of a list payload (a real multi-agent step sends ``[null]``): typed views never raise."""
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def _str_field(data: Any, key: str) -> str | None:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


@dataclass(slots=True)
class TokenEvent:
    """A piece of the answer. The answer is the concatenation of every token (empty ones occur)."""

    event: ClassVar[str] = "token"
    data: str


@dataclass(slots=True)
class StartEvent:
    """The stream started. ``data`` is NOT content (often the first token again, ``""``, or a reasoning list)."""

    event: ClassVar[str] = "start"
    data: Any = None


@dataclass(slots=True)
class ThinkingEvent:
    """Reasoning text from a reasoning model; the closing event has ``data == ""`` and ``duration`` (s)."""

    event: ClassVar[str] = "thinking"
    data: str = ""
    duration: float | None = None


@dataclass(slots=True)
class SourceDocumentsEvent:
    """Documents the flow retrieved (cumulative: replaces earlier ones)."""

    event: ClassVar[str] = "sourceDocuments"
    data: Any = None

    @property
    def documents(self) -> list[SourceDocument]:
        return _DOCS.validate_python(_as_list(self.data))


@dataclass(slots=True)
class UsedToolsEvent:
    """Tools the flow ran server-side, with inputs and outputs (cumulative: replaces earlier ones)."""

    event: ClassVar[str] = "usedTools"
    data: Any = None

    @property
    def tools(self) -> list[UsedTool]:
        return _TOOLS.validate_python(_as_list(self.data))


@dataclass(slots=True)
class CalledToolsEvent:
    """Tool calls an agentflow model requested, before they run (a snapshot; ``[]`` clears it)."""

    event: ClassVar[str] = "calledTools"
    data: Any = None

    @property
    def tools(self) -> list[UsedTool]:
        return _TOOLS.validate_python(_as_list(self.data))


@dataclass(slots=True)
class AgentReasoningEvent:
    """Multi-agent / sequential-agent steps so far (cumulative: replaces earlier ones)."""

    event: ClassVar[str] = "agentReasoning"
    data: Any = None

    @property
    def steps(self) -> list[AgentReasoningStep]:
        return _STEPS.validate_python(_as_list(self.data))


@dataclass(slots=True)
class NextAgentEvent:
    """The label of the next multi-agent worker."""

    event: ClassVar[str] = "nextAgent"
    data: Any = None


@dataclass(slots=True)
class AgentFlowEvent:
    """Agentflow v2 run status: ``INPROGRESS``, then ``FINISHED``/``STOPPED``/``ERROR``/``TERMINATED``."""

    event: ClassVar[str] = "agentFlowEvent"
    data: Any = None

    @property
    def status(self) -> str:
        return str(self.data)


@dataclass(slots=True)
class NextAgentFlowEvent:
    """Agentflow v2 node progress: ``{nodeId, nodeLabel, status, error?}``."""

    event: ClassVar[str] = "nextAgentFlow"
    data: Any = None

    @property
    def node_id(self) -> str | None:
        return _str_field(self.data, "nodeId")

    @property
    def node_label(self) -> str | None:
        return _str_field(self.data, "nodeLabel")

    @property
    def status(self) -> str | None:
        return _str_field(self.data, "status")

    @property
    def error(self) -> str | None:
        return _str_field(self.data, "error")


@dataclass(slots=True)
class AgentFlowExecutedDataEvent:
    """Agentflow v2: every executed node so far, with inputs and outputs (cumulative: replaces)."""

    event: ClassVar[str] = "agentFlowExecutedData"
    data: Any = None


@dataclass(slots=True)
class ActionEvent:
    """A human-in-the-loop action (agentflow human input, sequential-agent approval)."""

    event: ClassVar[str] = "action"
    data: Any = None


@dataclass(slots=True)
class ArtifactsEvent:
    """Artifacts (images, html...): ``[{type, data}]``."""

    event: ClassVar[str] = "artifacts"
    data: Any = None


@dataclass(slots=True)
class FileAnnotationsEvent:
    """File annotations: ``[{filePath, fileName}]``."""

    event: ClassVar[str] = "fileAnnotations"
    data: Any = None


@dataclass(slots=True)
class ToolEvent:
    """OpenAI Assistant: the name of the tool being called."""

    event: ClassVar[str] = "tool"
    data: Any = None


@dataclass(slots=True)
class UsageMetadataEvent:
    """Agentflow v2 token usage of one model call (summed over the run)."""

    event: ClassVar[str] = "usageMetadata"
    data: Any = None

    @property
    def usage(self) -> Usage:
        return Usage.model_validate(self.data if isinstance(self.data, dict) else {})


@dataclass(slots=True)
class MetadataEvent:
    """Ids of this turn, sent right before ``end`` on success. Never carries the answer text."""

    event: ClassVar[str] = "metadata"
    data: Any = None

    @property
    def chat_id(self) -> str | None:
        return _str_field(self.data, "chatId")

    @property
    def chat_message_id(self) -> str | None:
        return _str_field(self.data, "chatMessageId")

    @property
    def session_id(self) -> str | None:
        return _str_field(self.data, "sessionId")


@dataclass(slots=True)
class ErrorEvent:
    """The flow failed after the stream started. The client raises once the stream ends."""

    event: ClassVar[str] = "error"
    data: Any = None

    @property
    def message(self) -> str:
        return self.data if isinstance(self.data, str) else str(self.data)


@dataclass(slots=True)
class AbortEvent:
    """The run was aborted (``PUT /chatmessage/abort``); ``metadata`` and ``end`` still follow."""

    event: ClassVar[str] = "abort"
    data: Any = None


@dataclass(slots=True)
class EndEvent:
    """The last event of every complete stream (``data == "[DONE]"``)."""

    event: ClassVar[str] = "end"
    data: Any = None


@dataclass(slots=True)
class AgentTraceEvent:
    """Tool Agent detailed streaming: ``{step: agent_action|tool_start|tool_end|tool_error, ...}``."""

    event: ClassVar[str] = "agent_trace"
    data: Any = None

    @property
    def step(self) -> str | None:
        return _str_field(self.data, "step")


@dataclass(slots=True)
class TTSStartEvent:
    """Text-to-speech audio begins: ``{chatMessageId, format}``."""

    event: ClassVar[str] = "tts_start"
    data: Any = None


@dataclass(slots=True)
class TTSDataEvent:
    """A base64 audio chunk: ``{chatMessageId, audioChunk}``."""

    event: ClassVar[str] = "tts_data"
    data: Any = None


@dataclass(slots=True)
class TTSEndEvent:
    """Text-to-speech audio ended."""

    event: ClassVar[str] = "tts_end"
    data: Any = None


@dataclass(slots=True)
class TTSAbortEvent:
    """Text-to-speech was aborted; the server then ends the stream without ``end``."""

    event: ClassVar[str] = "tts_abort"
    data: Any = None


@dataclass(slots=True)
class CorrectionEvent:
    """Not from Flowise: the client found the streamed answer differs from the stored one and replaced it.

    ``data`` is ``{"text": <the stored answer>, "reason": "repeated" | "incomplete"}``; ``result.text`` is now the
    stored answer and ``result.recovered`` is ``True``. Sent just before ``end`` (see ``verify_answers``).
    """

    event: ClassVar[str] = "correction"
    data: Any = None

    @property
    def text(self) -> str:
        return _str_field(self.data, "text") or ""


@dataclass(slots=True)
class UnknownEvent:
    """An event name this version does not know, passed through untouched."""

    event: str
    data: Any = None


@dataclass(slots=True)
class MalformedEvent:
    """A frame whose data is not a JSON ``{"event": ...}`` object; ``raw`` is the frame's data as received."""

    event: ClassVar[str] = "<malformed>"
    raw: str
    reason: str

    @property
    def data(self) -> str:
        return self.raw


FlowiseEvent = Union[  # noqa: UP007  (a runtime alias: Python 3.10 has no `type` statement)
    TokenEvent,
    StartEvent,
    ThinkingEvent,
    SourceDocumentsEvent,
    UsedToolsEvent,
    CalledToolsEvent,
    AgentReasoningEvent,
    NextAgentEvent,
    AgentFlowEvent,
    NextAgentFlowEvent,
    AgentFlowExecutedDataEvent,
    ActionEvent,
    ArtifactsEvent,
    FileAnnotationsEvent,
    ToolEvent,
    UsageMetadataEvent,
    MetadataEvent,
    ErrorEvent,
    AbortEvent,
    EndEvent,
    AgentTraceEvent,
    TTSStartEvent,
    TTSDataEvent,
    TTSEndEvent,
    TTSAbortEvent,
    CorrectionEvent,
    UnknownEvent,
    MalformedEvent,
]

_PLAIN: dict[str, Any] = {
    cls.event: cls
    for cls in (
        StartEvent,
        SourceDocumentsEvent,
        UsedToolsEvent,
        CalledToolsEvent,
        AgentReasoningEvent,
        NextAgentEvent,
        AgentFlowEvent,
        NextAgentFlowEvent,
        AgentFlowExecutedDataEvent,
        ActionEvent,
        ArtifactsEvent,
        FileAnnotationsEvent,
        ToolEvent,
        UsageMetadataEvent,
        MetadataEvent,
        ErrorEvent,
        AbortEvent,
        EndEvent,
        AgentTraceEvent,
        TTSStartEvent,
        TTSDataEvent,
        TTSEndEvent,
        TTSAbortEvent,
    )
}


def decode_event(obj: Any, raw: str | bytes = "") -> FlowiseEvent:
    """Turn one decoded frame payload into a typed event. Never raises."""
    if type(obj) is not dict:
        return _malformed(raw, "frame data is not a JSON object")
    name = obj.get("event")
    data = obj.get("data")
    if name == "token":
        if type(data) is not str:
            data = "" if data is None else str(data)
        return TokenEvent(data)
    cls = _PLAIN.get(name)  # type: ignore[arg-type]
    if cls is not None:
        return cls(data)  # type: ignore[no-any-return]
    if name == "thinking":
        duration = obj.get("duration")
        return ThinkingEvent(
            data if isinstance(data, str) else ("" if data is None else str(data)),
            float(duration) if isinstance(duration, (int, float)) else None,
        )
    if isinstance(name, str):
        return UnknownEvent(name, data)
    return _malformed(raw, "frame has no string 'event' field")


def _malformed(raw: str | bytes, reason: str) -> MalformedEvent:
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return MalformedEvent(text, reason)


def event_to_dict(event: FlowiseEvent) -> dict[str, Any]:
    """The wire form ``{"event", "data"[, "duration"]}`` of an event (for logging, ``--json`` output...)."""
    out: dict[str, Any] = {"event": event.event, "data": event.data}
    if isinstance(event, ThinkingEvent) and event.duration is not None:
        out["duration"] = event.duration
    if isinstance(event, MalformedEvent):
        out["reason"] = event.reason
    return out
