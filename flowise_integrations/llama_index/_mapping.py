"""LlamaIndex messages -> a Flowise request; Flowise events -> LlamaIndex responses (I/O-free, sync and async)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, Literal, Optional, TypeVar

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.schema import NodeWithScore, TextNode

from flowise_integrations.conversation import Turn, to_prediction_input
from flowise_integrations.events import (
    AgentReasoningEvent,
    CorrectionEvent,
    FlowiseEvent,
    SourceDocumentsEvent,
    ThinkingEvent,
    TokenEvent,
    UsedToolsEvent,
)
from flowise_integrations.models import AgentReasoningStep, Prediction, SourceDocument, Upload

from .events import EventReporter

__all__ = [
    "REQUEST_KWARGS",
    "ResponseMapper",
    "chat_response",
    "completion_response",
    "image_upload",
    "prediction_input",
    "source_nodes",
    "to_turns",
]

R = TypeVar("R", ChatResponse, CompletionResponse)
MakeResponse = Callable[[str, Optional[str], str, dict[str, Any], Any], R]  # noqa: UP045  (a runtime alias)
"""``(text so far, delta, thinking so far, additional_kwargs, raw) -> response``."""

REQUEST_KWARGS = frozenset({
    "chat_id", "session_id", "override_config", "uploads", "form", "human_input", "lead_email", "action",
    "extra_body", "headers", "timeout", "deadline",
})  # fmt: skip
"""Per-call keyword arguments passed on to the prediction (others, e.g. LlamaIndex's own, are ignored)."""

_ROLES: dict[str, Literal["user", "assistant", "system"]] = {
    MessageRole.USER: "user",
    MessageRole.ASSISTANT: "assistant",
    MessageRole.MODEL: "assistant",
    MessageRole.CHATBOT: "assistant",
    MessageRole.SYSTEM: "system",
    MessageRole.DEVELOPER: "system",
    MessageRole.TOOL: "user",
    MessageRole.FUNCTION: "user",
}
_SKIPPED_BLOCKS = (ThinkingBlock, ToolCallBlock)  # our own replies carry thinking; neither is content to send


def image_upload(block: ImageBlock) -> Upload:
    """An ``ImageBlock`` as a Flowise upload: a URL stays a URL, anything else becomes a base64 data URI."""
    mime = block.image_mimetype or "image/png"
    name = f"image.{mime.rsplit('/', 1)[-1]}"
    if block.image is None and block.path is None and block.url is not None:
        url = str(block.url)
        if url.startswith("data:"):
            return Upload(type="file", name=name, mime=mime, data=url)
        return Upload.from_url(url, mime=mime)
    data = block.resolve_image(as_base64=True).read().decode("ascii")
    if block.path is not None:
        name = block.path.name
    return Upload(type="file", name=name, mime=mime, data=f"data:{mime};base64,{data}")


def to_turns(messages: Sequence[ChatMessage]) -> list[Turn]:
    """LlamaIndex messages as neutral turns: text blocks joined, image blocks as uploads.

    Tool/function messages count as user turns (Flowise has no tool role); thinking and tool-call blocks are
    skipped; other media (audio, video, documents) raise ``ValueError``.
    """
    turns: list[Turn] = []
    for message in messages:
        texts: list[str] = []
        uploads: list[Upload] = []
        for block in message.blocks:
            if isinstance(block, TextBlock):
                texts.append(block.text)
            elif isinstance(block, ImageBlock):
                uploads.append(image_upload(block))
            elif not isinstance(block, _SKIPPED_BLOCKS):
                raise ValueError(f"Flowise accepts text and images in chat messages, not {type(block).__name__}")
        role = _ROLES.get(message.role, "user")
        turns.append(Turn(role, "\n".join(texts), tuple(uploads)))
    return turns


def prediction_input(
    messages: Sequence[ChatMessage],
    *,
    session_id: str | None,
    override_config: dict[str, Any] | None,
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    """The keyword arguments of ``FlowiseClient.predict``/``stream`` for these messages.

    With a ``session_id`` Flowise's memory holds the conversation, so only the newest user turn is sent;
    otherwise earlier turns go as ``history``. A per-call ``override_config`` merges over ``override_config``.
    With a ``form`` (a form-input agentflow) the form is the input and the messages are not sent: Flowise
    refuses a question and a form together.
    """
    request = {key: value for key, value in kwargs.items() if key in REQUEST_KWARGS}
    request["session_id"] = session_id
    override = {**(override_config or {}), **(kwargs.get("override_config") or {})}
    request["override_config"] = override or None
    if kwargs.get("form"):
        request["question"] = request["history"] = None
        request["uploads"] = list(kwargs.get("uploads") or ()) or None
        return request
    conversation = to_prediction_input(to_turns(messages), server_memory=session_id is not None)
    request["question"] = conversation.question
    request["history"] = conversation.history or None
    uploads = [*conversation.uploads, *(kwargs.get("uploads") or ())]
    request["uploads"] = uploads or None
    return request


def chat_response(text: str, delta: str | None, thinking: str, extra: dict[str, Any], raw: Any) -> ChatResponse:
    """A ``ChatResponse`` with the text so far (after a ``ThinkingBlock`` when the model reasoned)."""
    blocks: list[Any] = [ThinkingBlock(content=thinking), TextBlock(text=text)] if thinking else [TextBlock(text=text)]
    return ChatResponse(
        message=ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks), delta=delta, additional_kwargs=extra, raw=raw
    )


def completion_response(
    text: str, delta: str | None, thinking: str, extra: dict[str, Any], raw: Any
) -> CompletionResponse:
    """A ``CompletionResponse`` with the text so far."""
    return CompletionResponse(text=text, delta=delta, additional_kwargs=extra, raw=raw)


def _steps_text(steps: list[AgentReasoningStep]) -> str:
    return "".join(f"{step.agent_name or step.node_name or 'agent'}: {step.text}\n" for step in steps)


class ResponseMapper(Generic[R]):
    """One call's mapping from Flowise events to responses; the sync and async paths both feed it.

    ``step`` returns a response for each event that changes what the caller sees (a token, thinking, a new
    agent step) and reports sources, tools and steps as instrumentation events; ``final`` builds the last
    response, which carries the extras.
    """

    __slots__ = ("_make", "reporter", "text", "thinking")
    _make: MakeResponse[R]

    def __init__(self, make: MakeResponse[R], reporter: EventReporter) -> None:
        self._make = make
        self.reporter = reporter
        self.text = ""
        self.thinking = ""

    def step(self, event: FlowiseEvent) -> R | None:
        cls = type(event)
        if cls is TokenEvent:
            delta: str = event.data
            if not delta:
                return None
            self.text = text = self.text + delta
            return self._make(text, delta, self.thinking, {}, None)
        if cls is ThinkingEvent:
            if not event.data:
                return None
            self.thinking += event.data
            return self._make(self.text, "", self.thinking, {"thinking_delta": event.data}, None)
        if cls is SourceDocumentsEvent:
            self.reporter.sources(event.documents)  # type: ignore[union-attr]
        elif cls is UsedToolsEvent:
            self.reporter.tools(event.tools)  # type: ignore[union-attr]
        elif cls is AgentReasoningEvent:
            new = self.reporter.steps(event.steps)  # type: ignore[union-attr]
            if new:
                return self._make(self.text, "", self.thinking, {"thinking_delta": _steps_text(new)}, None)
        elif cls is CorrectionEvent:  # the client replaced the streamed text with the answer Flowise stored
            self.text = event.text  # type: ignore[union-attr]
            return self._make(self.text, "", self.thinking, {"correction": event.data}, None)
        return None

    def final(self, prediction: Prediction, *, streaming: bool) -> R:
        """The last response: the whole text, the extras in ``additional_kwargs``, the payload in ``raw``.

        Streamed, its ``delta`` is ``""``, unless the answer holds text no token carried (an Iteration ending a
        flow streams none): then that text is the delta, so the deltas still join to the final text.
        """
        self.reporter.finish(prediction)
        if not streaming:
            return self._make(prediction.text, None, prediction.thinking, extras(prediction), raw_payload(prediction))
        text, delta = self.text, ""
        if prediction.text != text and prediction.text.startswith(text):
            text, delta = prediction.text, prediction.text[len(text) :]
            self.text = text
        return self._make(text, delta, self.thinking, extras(prediction), raw_payload(prediction))


def extras(prediction: Prediction) -> dict[str, Any]:
    """What a final response carries in ``additional_kwargs``.

    Besides the ids and payloads: ``interrupt`` (a typed :class:`~flowise_integrations.hitl.Interrupt` when the
    run stopped for a human, else ``None``), ``usage`` (the billable :class:`~flowise_integrations.Usage` of this
    request, or ``None``), ``recovered`` (the answer was completed from the one Flowise stored), ``execution_id``
    and ``agent_flow_status`` (agentflows).
    """
    out: dict[str, Any] = {
        "chatflow_id": prediction.chatflow_id,
        "chat_id": prediction.chat_id,
        "chat_message_id": prediction.chat_message_id,
        "session_id": prediction.session_id,
        "source_documents": prediction.source_documents,
        "used_tools": prediction.used_tools,
        "agent_reasoning": prediction.agent_reasoning,
        "follow_up_prompts": prediction.follow_up_prompts,
        "finish_reason": prediction.finish_reason,
        "interrupt": prediction.interrupt,
        "usage": prediction.usage,
        "recovered": prediction.recovered,
        "execution_id": prediction.execution_id,
        "agent_flow_status": prediction.agent_flow_status,
    }
    if prediction.thinking:
        out["thinking"] = prediction.thinking
    return out


def raw_payload(prediction: Prediction) -> dict[str, Any]:
    """Flowise's payload, plus JSON-ready ``usage`` (billable input/output/total tokens, when the flow reports
    usage), ``interrupt`` (when the run stopped for a human) and ``recovered`` (when true)."""
    raw = dict(prediction.raw)
    if prediction.usage is not None:
        raw["usage"] = prediction.usage.model_dump()
    if prediction.interrupt is not None:
        raw["interrupt"] = prediction.interrupt.model_dump(mode="json")
    if prediction.recovered:
        raw["recovered"] = True
    return raw


def source_nodes(documents: Sequence[SourceDocument]) -> list[NodeWithScore]:
    """Flowise ``sourceDocuments`` as LlamaIndex nodes (``TextNode(text=pageContent, metadata=...)``)."""
    nodes: list[NodeWithScore] = []
    for doc in documents:
        node = TextNode(text=doc.page_content, metadata=dict(doc.metadata))
        if doc.id:
            node.id_ = doc.id
        nodes.append(NodeWithScore(node=node, score=None))
    return nodes
