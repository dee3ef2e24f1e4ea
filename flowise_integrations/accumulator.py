"""Fold events into a :class:`~flowise_integrations.models.Prediction`: the one place that knows the rules.

- ``token`` and ``thinking`` text append;
- cumulative payloads (``sourceDocuments``, ``usedTools``, ``calledTools``, ``agentReasoning``,
  ``agentFlowExecutedData``, ``artifacts``, ``fileAnnotations``, ``action``) replace what came before;
- usage is what this request billed: the model calls recorded in the executed agentflow nodes (``usage.py``: per
  call, ``total = input + output``, nodes replayed from before a human-input stop excluded), else the sum of the
  streamed ``usageMetadata`` events;
- ``metadata`` brings the ids; ``followUpPrompts`` is JSON-decoded however many times it was encoded;
- ``start`` is never content.

A JSON reply is turned into the same events (:func:`events_from_json`), so a stream and a JSON reply fold into
the same ``Prediction`` through the same code.
"""

from __future__ import annotations

import json
from typing import Any

from .events import (
    AbortEvent,
    ActionEvent,
    AgentFlowEvent,
    AgentFlowExecutedDataEvent,
    AgentReasoningEvent,
    ArtifactsEvent,
    CalledToolsEvent,
    CorrectionEvent,
    EndEvent,
    ErrorEvent,
    FileAnnotationsEvent,
    FlowiseEvent,
    MalformedEvent,
    MetadataEvent,
    SourceDocumentsEvent,
    StartEvent,
    ThinkingEvent,
    TokenEvent,
    TTSAbortEvent,
    UsageMetadataEvent,
    UsedToolsEvent,
)
from .hitl import interrupt_from, run_status
from .models import AgentReasoningStep, Prediction, SourceDocument, Usage, UsedTool, _as_opt_str
from .usage import request_usage

__all__ = ["PredictionAccumulator", "decode_follow_up_prompts", "events_from_json"]

# event class -> Prediction field it replaces
_SNAPSHOTS: dict[type, str] = {
    SourceDocumentsEvent: "source_documents",
    UsedToolsEvent: "used_tools",
    CalledToolsEvent: "called_tools",
    AgentReasoningEvent: "agent_reasoning",
    AgentFlowExecutedDataEvent: "agent_flow_executed_data",
    ArtifactsEvent: "artifacts",
    FileAnnotationsEvent: "file_annotations",
}
_NOT_CONTENT = (StartEvent, MetadataEvent, EndEvent, CorrectionEvent)


def decode_follow_up_prompts(value: Any) -> list[str]:
    """Decode ``followUpPrompts`` however many times it was JSON-encoded (JSON replies: twice; metadata: once)."""
    for _ in range(8):
        if not isinstance(value, str):
            break
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    if isinstance(value, list):
        return [v if isinstance(v, str) else json.dumps(v) for v in value]
    return []


class PredictionAccumulator:
    """Mutable fold state; ``prediction()`` snapshots it as a ``Prediction``."""

    __slots__ = (
        "_snapshots",
        "_thinking",
        "_tokens",
        "aborted",
        "agent_flow_status",
        "cancelled",
        "chatflow_id",
        "content_events",
        "ended",
        "error",
        "execution_id",
        "malformed",
        "metadata",
        "raw",
        "recovered",
        "resumed_from",
        "saw_start",
        "sent_ids",
        "starts",
        "streamed",
        "streamed_usage",
        "thinking_duration",
        "usage",
    )

    def __init__(self, *, chatflow_id: str | None = None, streamed: bool = True) -> None:
        self.chatflow_id = chatflow_id
        self.streamed = streamed
        self._tokens: list[str] = []
        self._thinking: list[str] = []
        self._snapshots: dict[str, Any] = {}
        self.thinking_duration: float | None = None
        self.usage: Usage | None = None
        self.metadata: dict[str, Any] = {}
        self.raw: dict[str, Any] | None = None
        self.error: str | None = None
        self.agent_flow_status: str | None = None
        self.malformed: list[str] = []
        self.saw_start = False
        self.execution_id: str | None = None  # looked up for a stopped stream (Flowise streams none)
        self.starts = 0  # more than one: the run restarted (a queue-mode job redelivered to another worker)
        self.ended = False
        self.aborted = False
        self.recovered = False
        self.cancelled = False
        self.resumed_from: Any = None  # the Interrupt (or node id) a resume answered: its replayed nodes are not billed
        self.streamed_usage: list[Any] = []  # usageMetadata payloads a stream really carried
        self.sent_ids: tuple[str | None, str | None] | None = None  # (chatId, sessionId) the request carried
        self.content_events = 0

    @property
    def text(self) -> str:
        """The answer so far."""
        return "".join(self._tokens)

    @property
    def tokens(self) -> list[str]:
        """The tokens so far, as they came (the list itself: do not change it)."""
        return self._tokens

    @property
    def chat_message_id(self) -> str | None:
        return _as_opt_str(self.metadata.get("chatMessageId"))

    def add(self, event: FlowiseEvent) -> None:
        """Fold one event."""
        cls = type(event)
        if cls is TokenEvent:
            self._tokens.append(event.data)
            self.content_events += 1
            return
        if cls not in _NOT_CONTENT:
            self.content_events += 1
        field = _SNAPSHOTS.get(cls)
        if field is not None:
            self._snapshots[field] = event.data
        elif cls is MetadataEvent:
            if isinstance(event.data, dict):
                self.metadata.update(event.data)
        elif cls is EndEvent or cls is TTSAbortEvent:  # tts_abort closes the stream without `end`
            self.ended = True
        elif cls is StartEvent:
            self.saw_start = True
            self.starts += 1
        elif cls is CorrectionEvent:
            self._tokens = [event.text]  # type: ignore[union-attr]
            self.recovered = True
        elif cls is ErrorEvent:
            self.error = event.message  # type: ignore[union-attr]
        elif cls is ThinkingEvent:
            self._thinking.append(event.data)
            if event.duration is not None:  # type: ignore[union-attr]
                self.thinking_duration = event.duration  # type: ignore[union-attr]
        elif cls is UsageMetadataEvent:
            usage = event.usage  # type: ignore[union-attr]
            self.usage = usage if self.usage is None else self.usage + usage
            if self.streamed:
                self.streamed_usage.append(event.data)
        elif cls is AgentFlowEvent:
            self.agent_flow_status = event.status  # type: ignore[union-attr]
        elif cls is ActionEvent:
            self._snapshots["action"] = event.data
        elif cls is AbortEvent:
            self.aborted = True
        elif cls is MalformedEvent:
            self.malformed.append(event.raw)  # type: ignore[union-attr]

    def _finish_reason(self) -> Any:
        if self.error is not None:
            return "error"
        if self.cancelled and not self.ended:
            return "cancelled"
        if self.aborted:
            return "abort"
        if not self.ended:
            return "incomplete"
        if self.agent_flow_status == "STOPPED" or self._snapshots.get("action") or self.metadata.get("action"):
            return "stopped"
        return "stop"

    def prediction(self) -> Prediction:
        """The ``Prediction`` folded so far."""
        snaps = self._snapshots
        meta = self.metadata
        raw = self.raw if self.raw is not None else dict(meta)
        action = snaps.get("action") or meta.get("action")
        flow_vars = meta.get("flowVariables")
        executed = snaps.get("agent_flow_executed_data")
        status = self.agent_flow_status or (run_status(executed) if self.ended else None)
        finish_reason = self._finish_reason()
        ids = {
            "chat_id": _as_opt_str(meta.get("chatId")),
            "session_id": _as_opt_str(meta.get("sessionId")),
            "execution_id": _as_opt_str(raw.get("executionId")) or self.execution_id,
        }
        interrupt = None
        if finish_reason == "stopped" or status == "STOPPED":
            stop_ids = dict(ids)
            if self.sent_ids is not None:  # resume the way the stop was asked: by chat id, or by session
                sent_chat, sent_session = self.sent_ids
                stop_ids["chat_id"] = sent_chat or (None if sent_session else ids["chat_id"])
                stop_ids["session_id"] = sent_session
            interrupt = interrupt_from(action, executed, status=status, text=self.text, **stop_ids)
        if executed is not None:
            usage = request_usage(executed, self.streamed_usage or None, resumed_from=self.resumed_from)
        else:
            usage = self.usage
        text = self.text
        if not text and self.streamed and self.ended and status == "FINISHED":
            text = _final_output(executed)  # e.g. an Iteration ending the flow streams no token
        return Prediction(
            text=text,
            chatflow_id=self.chatflow_id,
            chat_message_id=_as_opt_str(meta.get("chatMessageId")),
            question=_as_opt_str(meta.get("question")),
            memory_type=_as_opt_str(meta.get("memoryType")),
            **ids,
            json_output=raw.get("json"),
            source_documents=_list_of(SourceDocument, snaps.get("source_documents")),
            used_tools=_list_of(UsedTool, snaps.get("used_tools")),
            called_tools=_list_of(UsedTool, snaps.get("called_tools")),
            agent_reasoning=_list_of(AgentReasoningStep, snaps.get("agent_reasoning")),
            agent_flow_executed_data=_dicts(snaps.get("agent_flow_executed_data")),
            agent_flow_status=status,
            artifacts=_dicts(snaps.get("artifacts")),
            file_annotations=_dicts(snaps.get("file_annotations")),
            follow_up_prompts=decode_follow_up_prompts(meta.get("followUpPrompts")),
            flow_variables=flow_vars if isinstance(flow_vars, dict) else {},
            action=action if isinstance(action, dict) else None,
            interrupt=interrupt,
            usage=usage,
            thinking="".join(self._thinking),
            thinking_duration=self.thinking_duration,
            streamed=self.streamed,
            finished=self.ended,
            finish_reason=finish_reason,
            error=self.error,
            recovered=self.recovered,
            malformed_frames=list(self.malformed),
            raw=raw,
        )


def _final_output(executed: Any) -> str:
    """The answer a JSON reply would carry: the last executed node's ``output.content``."""
    for node in reversed(executed if isinstance(executed, list) else []):
        output = (node.get("data") or {}).get("output") if isinstance(node, dict) else None
        content = output.get("content") if isinstance(output, dict) else None
        if isinstance(content, str) and content:
            return content
    return ""


def _list_of(model: Any, value: Any) -> list[Any]:
    if not isinstance(value, list):
        return []
    return [model.model_validate(v) for v in value if isinstance(v, dict)]  # lenient models: never raises


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


_METADATA_KEYS = (
    "chatId",
    "chatMessageId",
    "question",
    "sessionId",
    "memoryType",
    "followUpPrompts",
    "flowVariables",
    "action",
)


_PAYLOADS: tuple[tuple[str, Any], ...] = (
    ("sourceDocuments", SourceDocumentsEvent),
    ("usedTools", UsedToolsEvent),
    ("agentReasoning", AgentReasoningEvent),
    ("artifacts", ArtifactsEvent),
    ("fileAnnotations", FileAnnotationsEvent),
)


def _node_outputs(body: dict[str, Any]) -> list[dict[str, Any]]:
    outputs = []
    nodes = body.get("agentFlowExecutedData")
    for node in nodes if isinstance(nodes, list) else ():
        output = (node.get("data") or {}).get("output") if isinstance(node, dict) else None
        if isinstance(output, dict):
            outputs.append(output)
    return outputs


def events_from_json(body: dict[str, Any]) -> list[FlowiseEvent]:
    """The events a stream would have carried for this JSON reply, in stream order.

    An agentflow v2 reply has no top-level ``usedTools``/``sourceDocuments``/...: they sit in each executed
    node's output, and are gathered from there (in node order).
    """
    events: list[FlowiseEvent] = []
    text = body.get("text")
    if isinstance(text, str) and text:
        events.append(TokenEvent(text))
    outputs = _node_outputs(body)
    steps = (
        [s for s in body.get("agentReasoning") or () if isinstance(s, dict)]
        if isinstance(body.get("agentReasoning"), list)
        else []
    )
    for key, cls in _PAYLOADS:
        if key in body:
            events.append(cls(body[key]))
            continue
        # an agentflow v2 reply keeps them in the executed nodes' outputs, a multi-agent one in its steps
        gathered = [item for output in outputs if isinstance(output.get(key), list) for item in output[key]]
        if not gathered and key in ("usedTools", "sourceDocuments"):
            gathered = [i for st in steps if isinstance(st.get(key), list) for i in st[key] if isinstance(i, dict)]
        if gathered:
            events.append(cls(gathered))
    if "agentFlowExecutedData" in body:
        events.append(AgentFlowExecutedDataEvent(body["agentFlowExecutedData"]))
    for output in outputs:
        reason = output.get("reasonContent")  # a reasoning model's thinking: {thinking, thinkingDuration}
        if isinstance(reason, dict) and isinstance(reason.get("thinking"), str):
            duration = reason.get("thinkingDuration")
            seconds = float(duration) if isinstance(duration, (int, float)) else None
            events.append(ThinkingEvent(reason["thinking"], seconds))
        elif isinstance(reason, str) and reason:
            events.append(ThinkingEvent(reason))
        usage = output.get("usageMetadata")
        if isinstance(usage, dict):
            events.append(UsageMetadataEvent(usage))
    if isinstance(body.get("action"), dict):
        events.append(ActionEvent(body["action"]))
    events.append(MetadataEvent({k: body[k] for k in _METADATA_KEYS if k in body}))
    events.append(EndEvent("[DONE]"))
    return events
