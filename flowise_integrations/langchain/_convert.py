"""LangChain messages -> conversation turns, and Flowise events / predictions -> LangChain chunks and messages.

Everything here is I/O-free (the custom-event helpers at the end only call LangChain callbacks) and shared by the
sync and async paths of ``ChatFlowise`` and by ``FlowiseTool``.
"""

from __future__ import annotations

import contextlib
import mimetypes
from collections.abc import Sequence
from typing import Any, Literal, cast

from langchain_core.callbacks import adispatch_custom_event, dispatch_custom_event
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ChatMessage, SystemMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGenerationChunk

from flowise_integrations.conversation import Turn
from flowise_integrations.events import (
    ActionEvent,
    AgentFlowEvent,
    AgentReasoningEvent,
    AgentTraceEvent,
    ArtifactsEvent,
    CalledToolsEvent,
    FlowiseEvent,
    MetadataEvent,
    NextAgentEvent,
    NextAgentFlowEvent,
    SourceDocumentsEvent,
    ThinkingEvent,
    TokenEvent,
    UsageMetadataEvent,
    UsedToolsEvent,
)
from flowise_integrations.models import AgentReasoningStep, Prediction, Upload

from ._langgraph import stream_writer

__all__ = [
    "CUSTOM_EVENTS",
    "ChunkMapper",
    "CustomEvent",
    "StopFilter",
    "adispatch",
    "dispatch",
    "message_from_prediction",
    "prediction_events",
    "response_metadata",
    "to_turns",
    "truncate",
]

PROVIDER = "flowise"
CustomEvent = tuple[str, dict[str, Any]]
"""A custom callback event to dispatch: ``(name, {"chatflow_id", "chat_id", "data"})``."""

CUSTOM_EVENTS: dict[type, str] = {
    SourceDocumentsEvent: "flowise_source_documents",
    UsedToolsEvent: "flowise_used_tools",
    CalledToolsEvent: "flowise_called_tools",
    AgentReasoningEvent: "flowise_agent_reasoning",
    AgentTraceEvent: "flowise_agent_trace",
    NextAgentEvent: "flowise_next_agent",
    NextAgentFlowEvent: "flowise_agentflow_node",
    AgentFlowEvent: "flowise_agentflow_status",
    ActionEvent: "flowise_action",
    ArtifactsEvent: "flowise_artifacts",
    UsageMetadataEvent: "flowise_usage",
    MetadataEvent: "flowise_metadata",
}
"""Which stream events become which custom callback event (``astream_events`` ``on_custom_event``)."""


# -- messages -> turns -------------------------------------------------------------------------------------

_Role = Literal["user", "assistant", "system"]
_CHAT_ROLES: dict[str, _Role] = {
    "user": "user", "human": "user", "assistant": "assistant", "ai": "assistant", "system": "system",
    "developer": "system",
}  # fmt: skip
_UPLOAD_TYPES = {"image": "file", "audio": "audio", "file": "file:full"}


def _role(message: BaseMessage) -> _Role:
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, ChatMessage):
        return _CHAT_ROLES.get(message.role.lower(), "user")
    return "user"  # human, and tool/function results (Flowise has no tool role; the LlamaIndex wing agrees)


def _upload(block: dict[str, Any], n: int) -> Upload:
    kind = block["type"]
    mime = block.get("mime_type")
    name = block.get("filename") or (block.get("extras") or {}).get("filename")
    if block.get("base64"):
        mime = mime or "application/octet-stream"
        subtype = mime.partition("/")[2].partition(";")[0]
        ext = mimetypes.guess_extension(mime) or (f".{subtype}" if subtype.isalnum() else "")
        return Upload.model_validate(
            {
                "type": _UPLOAD_TYPES[kind],
                "name": name or f"{kind}-{n}{ext}",
                "mime": mime,
                "data": f"data:{mime};base64,{block['base64']}",
            }
        )
    url = block.get("url")
    if url and kind == "image":
        mime = mime or mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/png"
        return Upload.from_url(url, name=name, mime=mime)
    raise ValueError(
        f"cannot send this {kind} block to Flowise: uploads need base64 data (or, for images, a URL); "
        f"got keys {sorted(block)}"
    )


def to_turns(messages: Sequence[BaseMessage]) -> list[Turn]:
    """LangChain messages as neutral turns: text, uploads (image/audio/file blocks) and ``name``."""
    turns: list[Turn] = []
    for message in messages:
        role = _role(message)
        if isinstance(message.content, str):
            turns.append(Turn(role, message.content, (), message.name))
            continue
        texts: list[str] = []
        uploads: list[Upload] = []
        for block in cast("list[dict[str, Any]]", message.content_blocks):
            kind = block.get("type")
            if kind == "text":
                texts.append(block.get("text") or "")
            elif kind in _UPLOAD_TYPES:
                uploads.append(_upload(block, len(uploads) + 1))
        turns.append(Turn(role, "".join(texts), tuple(uploads), message.name))
    return turns


# -- stop sequences (applied client-side) ------------------------------------------------------------------


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def truncate(text: str, stops: Sequence[str]) -> str:
    """``text`` cut before the first occurrence of any stop sequence."""
    cut = _first_stop(text, stops) if stops else None
    return text if cut is None else text[:cut]


class StopFilter:
    """Streams text up to the first stop sequence, holding back just enough to catch one split across tokens."""

    __slots__ = ("_buffer", "_keep", "_stops", "done")

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._keep = max((len(s) for s in self._stops), default=1) - 1
        self._buffer = ""
        self.done = False

    def feed(self, text: str) -> str:
        """The text that is now safe to emit."""
        if self.done:
            return ""
        text = self._buffer + text
        cut = _first_stop(text, self._stops)
        if cut is not None:
            self.done = True
            self._buffer = ""
            return text[:cut]
        keep = self._keep
        if len(text) <= keep:
            self._buffer = text
            return ""
        self._buffer = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """Whatever is held back, at the end of the stream."""
        text, self._buffer = self._buffer, ""
        return "" if self.done else text


# -- predictions -> metadata / messages --------------------------------------------------------------------


def _dumps(items: Sequence[Any]) -> list[dict[str, Any]]:
    return [item.model_dump(exclude_none=True) for item in items]


def _step_text(step: AgentReasoningStep) -> str:
    text = step.text or (f"next: {step.next}" if step.next else "")
    if not text:
        return ""
    return f"{step.agent_name}: {text}\n" if step.agent_name else f"{text}\n"


def reasoning_text(prediction: Prediction) -> str:
    """Reasoning-model thinking, then multi-agent steps, as one text (the ``reasoning`` content)."""
    return prediction.thinking + "".join(_step_text(step) for step in prediction.agent_reasoning)


def response_metadata(prediction: Prediction, model_name: str) -> dict[str, Any]:
    """The final ``response_metadata``: ids, finish reason and every Flowise extra (snake_case)."""
    metadata: dict[str, Any] = {
        "model_provider": PROVIDER,
        "model_name": model_name,
        "finish_reason": prediction.finish_reason,
        "chat_id": prediction.chat_id,
        "chat_message_id": prediction.chat_message_id,
        "session_id": prediction.session_id,
        "source_documents": _dumps(prediction.source_documents),
        "used_tools": _dumps(prediction.used_tools),
        "agent_reasoning": _dumps(prediction.agent_reasoning),
        "follow_up_prompts": list(prediction.follow_up_prompts),
    }
    optional = {
        "interrupt": prediction.interrupt,
        "recovered": prediction.recovered,
        "action": prediction.action,
        "artifacts": prediction.artifacts,
        "file_annotations": prediction.file_annotations,
        "agent_flow_status": prediction.agent_flow_status,
        "execution_id": prediction.execution_id,
        "flow_variables": prediction.flow_variables,
    }
    metadata.update((key, value) for key, value in optional.items() if value)
    return metadata


def usage_metadata(prediction: Prediction) -> UsageMetadata | None:
    """Agentflow token usage (summed over its model calls); classic chatflows report none."""
    usage = prediction.usage
    if usage is None:
        return None
    result: dict[str, Any] = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    for key in ("input_token_details", "output_token_details"):
        details = getattr(usage, key, None)
        if isinstance(details, dict) and details:
            result[key] = details
    return cast("UsageMetadata", result)


def message_from_prediction(prediction: Prediction, model_name: str, stops: Sequence[str] = ()) -> AIMessage:
    """The ``AIMessage`` of a non-streamed call (same metadata as the final stream chunk)."""
    reasoning = reasoning_text(prediction)
    return AIMessage(
        content=truncate(prediction.text, stops),
        id=prediction.chat_message_id,
        additional_kwargs={"reasoning_content": reasoning} if reasoning else {},
        response_metadata=response_metadata(prediction, model_name),
        usage_metadata=usage_metadata(prediction),
    )


def _payload(event: FlowiseEvent) -> Any:
    if isinstance(event, SourceDocumentsEvent):
        return _dumps(event.documents)
    if isinstance(event, (UsedToolsEvent, CalledToolsEvent)):
        return _dumps(event.tools)
    if isinstance(event, AgentReasoningEvent):
        return _dumps(event.steps)
    return event.data


def prediction_events(prediction: Prediction, chatflow_id: str) -> list[CustomEvent]:
    """The custom events a finished (non-streamed) prediction amounts to."""
    head = {"chatflow_id": chatflow_id, "chat_id": prediction.chat_id}
    ids = {
        "chatId": prediction.chat_id,
        "chatMessageId": prediction.chat_message_id,
        "sessionId": prediction.session_id,
    }
    events: list[CustomEvent] = []
    for name, items in (
        ("flowise_source_documents", prediction.source_documents),
        ("flowise_used_tools", prediction.used_tools),
        ("flowise_agent_reasoning", prediction.agent_reasoning),
    ):
        if items:
            events.append((name, {**head, "data": _dumps(items)}))
    events.append(("flowise_metadata", {**head, "data": {k: v for k, v in ids.items() if v is not None}}))
    return events


# -- events -> chunks ----------------------------------------------------------------------------------------

_NOTHING: tuple[None, None] = (None, None)


def _reasoning_chunk(text: str) -> ChatGenerationChunk:
    return ChatGenerationChunk(
        message=AIMessageChunk(
            content="", additional_kwargs={"reasoning_content": text}, response_metadata={"model_provider": PROVIDER}
        )
    )


class ChunkMapper:
    """One call's event -> chunk converter (the same object drives ``_stream`` and ``_astream``).

    ``feed`` returns the chunk to yield (or ``None``) and the custom event to dispatch (or ``None``);
    ``finish`` builds the ``chunk_position="last"`` chunk from the folded prediction. With ``more=True`` a
    token's text is held and merged into the next token's chunk (used for tokens that were already waiting).
    """

    __slots__ = ("_held", "_steps_sent", "_stop", "chat_id", "custom_events", "model_name")

    def __init__(self, model_name: str, stops: Sequence[str] = (), *, custom_events: bool = True) -> None:
        self.model_name = model_name
        self.chat_id: str | None = None
        self.custom_events = custom_events
        self._stop = StopFilter(stops) if any(stops) else None
        self._steps_sent = 0
        self._held: list[str] = []

    def feed(self, event: FlowiseEvent, more: bool = False) -> tuple[ChatGenerationChunk | None, CustomEvent | None]:
        """Map one event (``more``: the next event is a token that has already arrived)."""
        cls = type(event)
        if cls is TokenEvent:
            text: str = event.data
            if self._stop is not None:
                text = self._stop.feed(text)
            if more:
                if text:
                    self._held.append(text)
                return _NOTHING
            if self._held:
                self._held.append(text)
                text = "".join(self._held)
                self._held.clear()
            if not text:
                return _NOTHING
            message = AIMessageChunk(content=text, response_metadata={"model_provider": PROVIDER})
            return ChatGenerationChunk(message=message), None
        if cls is ThinkingEvent:
            return (_reasoning_chunk(event.data) if event.data else None), None
        chunk = None
        if cls is AgentReasoningEvent:
            steps = cast("AgentReasoningEvent", event).steps
            text = "".join(_step_text(step) for step in steps[self._steps_sent :])
            self._steps_sent = len(steps)
            chunk = _reasoning_chunk(text) if text else None
        name = CUSTOM_EVENTS.get(cls)
        if name is None or not self.custom_events:
            return chunk, None
        return chunk, (name, {"chatflow_id": self.model_name, "chat_id": self.chat_id, "data": _payload(event)})

    def finish(self, prediction: Prediction) -> ChatGenerationChunk:
        """The last chunk: held-back text, Flowise's message id, usage and every extra in metadata."""
        held = "".join(self._held)  # text held for a token that never came (a stream cut short)
        message = AIMessageChunk(
            content=held + (self._stop.flush() if self._stop is not None else ""),
            id=prediction.chat_message_id,
            response_metadata=response_metadata(prediction, self.model_name),
            usage_metadata=usage_metadata(prediction),
            chunk_position="last",
        )
        return ChatGenerationChunk(message=message)


# -- custom events ---------------------------------------------------------------------------------------------


def _write(event: CustomEvent) -> None:
    writer = stream_writer()
    if writer is not None:
        name, payload = event
        writer({"event": name, **payload})


def dispatch(event: CustomEvent) -> None:
    """Dispatch a custom event to the enclosing run, and to a running LangGraph's ``stream_mode="custom"``;
    a no-op when there is neither (a direct model call)."""
    with contextlib.suppress(RuntimeError):  # "Unable to dispatch an adhoc event without a parent run id"
        dispatch_custom_event(*event)
    _write(event)


async def adispatch(event: CustomEvent) -> None:
    """The async twin of :func:`dispatch`."""
    with contextlib.suppress(RuntimeError):
        await adispatch_custom_event(*event)
    _write(event)
