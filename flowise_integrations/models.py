"""Request and result types (pydantic v2): what goes in, what comes out.

Field names are snake_case; Flowise's camelCase names are accepted as aliases, and ``to_body()`` /
``model_dump(by_alias=True)`` give back the wire shape. Every result type keeps unknown fields (``extra``),
so nothing a newer Flowise sends is dropped.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from .hitl import Interrupt

__all__ = [
    "AgentReasoningStep",
    "ChatTurn",
    "HistoryItem",
    "HumanInput",
    "Prediction",
    "PredictionRequest",
    "SourceDocument",
    "Upload",
    "Usage",
    "UsedTool",
]


def _as_str(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _as_opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) or value is None else str(value)


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return [v for v in value if v is not None] if isinstance(value, list) else []


def _as_dicts(value: Any) -> list[Any]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _as_opt_dicts(value: Any) -> list[Any] | None:
    return None if value is None else _as_dicts(value)


def _as_count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    try:
        return max(0, int(value))
    except (OverflowError, ValueError):  # inf, nan
        return 0


# Lenient wire types: whatever JSON a server sends, a result model is built (nulls and odd shapes are dropped or
# coerced, never raised); the payload as received stays in the event's ``data`` and the prediction's ``raw``.
WireStr = Annotated[str, BeforeValidator(_as_str)]
WireOptStr = Annotated[Union[str, None], BeforeValidator(_as_opt_str)]  # noqa: UP007
WireDict = Annotated[dict[str, Any], BeforeValidator(_as_dict)]
WireList = Annotated[list[Any], BeforeValidator(_as_list)]
WireCount = Annotated[int, BeforeValidator(_as_count)]


class _WireModel(BaseModel):
    model_config = ConfigDict(defer_build=True, populate_by_name=True, extra="allow")


class SourceDocument(_WireModel):
    """A retrieved document (a LangChain ``Document`` on the server): ``pageContent`` + ``metadata``."""

    page_content: WireStr = Field(default="", alias="pageContent")
    metadata: WireDict = Field(default_factory=dict)
    id: WireOptStr = None


class UsedTool(_WireModel):
    """A tool the flow ran server-side (``usedTools``), or asked for (``calledTools``, no output yet)."""

    tool: WireStr = ""
    tool_input: Any = Field(default=None, alias="toolInput")
    tool_output: Any = Field(default=None, alias="toolOutput")
    source_documents: Annotated[list[SourceDocument] | None, BeforeValidator(_as_opt_dicts)] = Field(
        default=None, alias="sourceDocuments"
    )
    error: WireOptStr = None


class AgentReasoningStep(_WireModel):
    """One multi-agent / sequential-agent step (``agentReasoning`` item)."""

    agent_name: WireStr = Field(default="", alias="agentName")
    messages: WireList = Field(default_factory=list)
    next: WireOptStr = None
    instructions: WireOptStr = None
    used_tools: Annotated[list[UsedTool], BeforeValidator(_as_dicts)] = Field(default_factory=list, alias="usedTools")
    source_documents: Annotated[list[SourceDocument], BeforeValidator(_as_dicts)] = Field(
        default_factory=list, alias="sourceDocuments"
    )
    artifacts: WireList = Field(default_factory=list)
    state: WireDict = Field(default_factory=dict)
    node_name: WireOptStr = Field(default=None, alias="nodeName")
    node_id: WireOptStr = Field(default=None, alias="nodeId")

    @property
    def text(self) -> str:
        """The step's messages joined as text."""
        return "\n".join(m if isinstance(m, str) else str(m) for m in self.messages)


class Usage(_WireModel):
    """Token usage as agentflow v2 reports it (LangChain ``UsageMetadata``); classic chatflows report none."""

    input_tokens: WireCount = 0
    output_tokens: WireCount = 0
    total_tokens: WireCount = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )


class ChatTurn(BaseModel):
    """One framework-neutral conversation turn."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    role: Literal["user", "assistant", "system"]
    content: str
    name: str | None = None


HistoryItem = Union[ChatTurn, Mapping[str, Any]]  # noqa: UP007
"""A history entry: a :class:`ChatTurn`, or a dict ``{"role", "content"}`` (roles ``user``/``human``/
``userMessage`` and ``assistant``/``ai``/``apiMessage``), or Flowise's legacy ``{"type", "message"}``."""

_USER_ROLES = {"user", "human", "usermessage"}
_ASSISTANT_ROLES = {"assistant", "ai", "apimessage"}


def history_item_to_wire(item: HistoryItem) -> dict[str, str]:
    """Normalise one history entry to Flowise's ``{"role": "userMessage"|"apiMessage", "content"}``."""
    if isinstance(item, ChatTurn):
        role: Any = item.role
        content: Any = item.content
    else:
        role = item.get("role", item.get("type"))
        content = item.get("content", item.get("message"))
    if not isinstance(content, str):
        raise TypeError(f"history content must be a string, got {type(content).__name__}: {item!r}")
    key = role.lower() if isinstance(role, str) else role
    if key in _USER_ROLES or key == "system":
        return {"role": "userMessage", "content": content}
    if key in _ASSISTANT_ROLES:
        return {"role": "apiMessage", "content": content}
    raise ValueError(f"unknown history role {role!r} (use 'user' or 'assistant')")


class Upload(BaseModel):
    """An inline upload: a base64 data URI (``type="file"``/``"audio"``/``"file:rag"``) or a URL."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    type: Literal["file", "url", "audio", "file:rag", "file:full"] = "file"
    name: str
    mime: str
    data: str

    @classmethod
    def from_bytes(cls, data: bytes, *, name: str, mime: str | None = None, type: str = "file") -> Upload:
        """Encode raw bytes as a ``data:<mime>;base64,...`` upload."""
        mime = mime or mimetypes.guess_type(name)[0] or "application/octet-stream"
        uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        return cls.model_validate({"type": type, "name": name, "mime": mime, "data": uri})

    @classmethod
    def from_path(cls, path: str | Path, *, mime: str | None = None, type: str = "file") -> Upload:
        """Read a local file into a base64 upload."""
        p = Path(path)
        return cls.from_bytes(p.read_bytes(), name=p.name, mime=mime, type=type)

    @classmethod
    def from_url(cls, url: str, *, name: str | None = None, mime: str = "image/png") -> Upload:
        """An image by URL (Flowise fetches it)."""
        return cls(type="url", name=name or url.rsplit("/", 1)[-1] or "image", mime=mime, data=url)


class HumanInput(BaseModel):
    """Resume an agentflow v2 execution that stopped at a human-input node (or a tool approval)."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True, frozen=True)

    type: Literal["proceed", "reject"]
    start_node_id: str | None = Field(default=None, alias="startNodeId")
    feedback: str | None = None


class PredictionRequest(BaseModel):
    """Everything one prediction call can send. ``to_body()`` gives the exact JSON Flowise receives."""

    model_config = ConfigDict(defer_build=True, arbitrary_types_allowed=True)

    question: str | None = None
    streaming: bool = False
    chat_id: str | None = None
    session_id: str | None = None
    history: Sequence[HistoryItem] | None = None
    override_config: dict[str, Any] | None = None
    uploads: Sequence[Upload | Mapping[str, Any]] | None = None
    form: dict[str, Any] | None = None
    human_input: HumanInput | dict[str, Any] | None = None
    lead_email: str | None = None
    action: dict[str, Any] | None = None
    extra_body: dict[str, Any] | None = None

    def to_body(self) -> dict[str, Any]:
        """The JSON body, camelCase, without unset fields."""
        body: dict[str, Any] = {}
        if self.question is not None:
            body["question"] = self.question
        if self.streaming:
            body["streaming"] = True
        if self.chat_id is not None:
            body["chatId"] = self.chat_id
        override = dict(self.override_config or {})
        if self.session_id is not None:
            override["sessionId"] = self.session_id
        if override:
            body["overrideConfig"] = override
        if self.history:
            body["history"] = [history_item_to_wire(item) for item in self.history]
        if self.uploads:
            body["uploads"] = [u.model_dump() if isinstance(u, Upload) else dict(u) for u in self.uploads]
        if self.form is not None:
            body["form"] = self.form
        if self.human_input is not None:
            hi = self.human_input
            body["humanInput"] = (
                hi.model_dump(by_alias=True, exclude_none=True) if isinstance(hi, HumanInput) else dict(hi)
            )
        if self.lead_email is not None:
            body["leadEmail"] = self.lead_email
        if self.action is not None:
            body["action"] = self.action
        if self.extra_body:
            body.update(self.extra_body)
        return body


class Prediction(BaseModel):
    """The result of one prediction, from a JSON reply or folded from a stream of events.

    ``text`` is the answer (for a stream: the concatenated ``token`` events). ``raw`` keeps the JSON body (or,
    for a stream, the ``metadata`` payload), so anything not modelled here is still at hand.
    """

    model_config = ConfigDict(defer_build=True, arbitrary_types_allowed=True)

    text: str = ""
    chatflow_id: str | None = None
    chat_id: str | None = None
    chat_message_id: str | None = None
    session_id: str | None = None
    question: str | None = None
    memory_type: str | None = None
    execution_id: str | None = None
    json_output: Any = None
    source_documents: list[SourceDocument] = Field(default_factory=list)
    used_tools: list[UsedTool] = Field(default_factory=list)
    called_tools: list[UsedTool] = Field(default_factory=list)
    agent_reasoning: list[AgentReasoningStep] = Field(default_factory=list)
    agent_flow_executed_data: list[dict[str, Any]] = Field(default_factory=list)
    agent_flow_status: str | None = None
    artifacts: list[dict[str, Any]] = Field(default_factory=list)
    file_annotations: list[dict[str, Any]] = Field(default_factory=list)
    follow_up_prompts: list[str] = Field(default_factory=list)
    flow_variables: dict[str, Any] = Field(default_factory=dict)
    action: dict[str, Any] | None = None
    interrupt: Interrupt | None = None
    """What a run stopped for a human asks (``finish_reason == "stopped"``): answer it with ``client.resume``."""
    usage: Usage | None = None
    """The model calls of this request (``total = input + output``); Flowise's own per-node figures stay in
    ``agent_flow_executed_data``."""
    thinking: str = ""
    thinking_duration: float | None = None
    streamed: bool = False
    finished: bool = False
    finish_reason: Literal["stop", "error", "abort", "stopped", "incomplete", "cancelled"] | None = None
    error: str | None = None
    recovered: bool = False
    malformed_frames: list[str] = Field(default_factory=list)
    raw: dict[str, Any] = Field(default_factory=dict)
