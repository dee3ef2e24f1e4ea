"""``FlowiseTool``: a Flowise flow as a tool any LangChain / LangGraph agent can call.

What the model sees is only what it should choose: the ``question`` (or, for an agentflow whose Start node takes
a form, the form's fields). The Flowise session (server-side memory) is bound by the developer: the tool's
``session_id``, or per run ``config["configurable"]["flowise_session_id"]``; a session the model supplies is
ignored unless ``allow_model_session=True`` puts it in the schema. Each call runs on a chat of its own (or on its
session's), never on a chat another running call holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.documents import Document
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langchain_core.tools.base import ArgsSchema
from pydantic import BaseModel, Field, model_validator
from typing_extensions import Self

from flowise_integrations.discovery import FlowInfo, FormField, form_json_schema, validate_form
from flowise_integrations.errors import FlowiseError
from flowise_integrations.models import Prediction

from ._connection import FlowiseConnection
from ._convert import adispatch, dispatch, prediction_events
from ._ids import configurable_of
from ._tool_errors import FlowiseToolInputError, to_tool_error

if TYPE_CHECKING:
    from .chat_models import ChatFlowise

__all__ = ["FlowiseTool", "FlowiseToolInput", "FlowiseToolSessionInput"]

_SESSION_DESCRIPTION = "Optional Flowise session id, to continue an earlier conversation with the flow."


class FlowiseToolInput(BaseModel):
    """What an agent sends to a Flowise flow."""

    question: str = Field(description="The question or instruction for the flow, in plain language.")


class FlowiseToolSessionInput(FlowiseToolInput):
    """:class:`FlowiseToolInput` plus a session the model may choose (only with ``allow_model_session=True``)."""

    session_id: str | None = Field(default=None, description=_SESSION_DESCRIPTION)


@dataclass(frozen=True)
class _ToolCall:
    question: str | None
    form: dict[str, Any] | None
    session_id: str | None


class FlowiseTool(BaseTool, FlowiseConnection):
    """A chatflow or agentflow as a tool: ``question`` (or the Start form's fields) in, the answer out.

    The tool message's ``artifact`` (``response_format="content_and_artifact"``) holds what the flow used:
    ``source_documents`` (LangChain ``Document``s), ``used_tools`` (the tools the flow ran on the server),
    ``agent_reasoning``, ``usage``, the ids (``chatflow_id``, ``chat_id``, ``chat_message_id``, ``session_id``),
    and ``interrupt`` when the flow stopped for a human. A failing flow raises a ``FlowiseToolError`` (a
    ``ToolException``): with ``handle_tool_error=True`` the agent gets the error as the tool's answer.

    Example:
        ```python
        docs = FlowiseTool(
            name="search_policies",
            description="Answers questions about company policies, citing the policy documents.",
            chatflow_id="4c1f...",
            handle_tool_error=True,
        )
        ```
    """

    name: str
    description: str
    chatflow_id: str
    """The chatflow / agentflow id."""
    session_id: str | None = None
    """The Flowise session (server-side memory) of every call; per run, ``configurable.flowise_session_id``
    overrides it. ``None``: each call is a new conversation."""
    allow_model_session: bool = False
    """Let the model choose the session (``session_id`` appears in the schema). Off by default: a prompt could
    then read or write another user's memory."""
    form_fields: list[FormField] = Field(default_factory=list)
    """The Start form's fields of a form-input agentflow: the tool's arguments instead of ``question``."""
    flow: FlowInfo | None = Field(default=None, exclude=True)
    """The flow as the server described it (set by :class:`FlowiseToolkit`)."""
    override_config: dict[str, Any] | None = None
    """Flowise ``overrideConfig`` sent with every call."""
    emit_custom_events: bool = True
    """Dispatch the ``flowise_*`` custom events (sources, tools, ids) from the tool's run."""
    args_schema: ArgsSchema | None = None
    """Derived from the above unless given."""
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"

    @model_validator(mode="after")
    def _derive_args_schema(self) -> Self:
        if self.args_schema is None:
            self.args_schema = self._default_args_schema()
        return self

    def _default_args_schema(self) -> ArgsSchema:
        if not self.form_fields:
            return FlowiseToolSessionInput if self.allow_model_session else FlowiseToolInput
        schema = form_json_schema(self.form_fields)
        if self.allow_model_session:
            schema["properties"]["session_id"] = {"type": "string", "description": _SESSION_DESCRIPTION}
        title = self.flow.form_title if self.flow is not None else None
        return {"title": title or self.name, **schema}

    @classmethod
    def from_chat_model(cls, model: ChatFlowise, *, name: str | None = None, description: str | None = None) -> Self:
        """A tool over the same flow and connection settings as ``model``."""
        return cls(
            name=name or f"flowise_{model.chatflow_id}".replace("-", "_")[:64],
            description=description or f"Ask the Flowise flow {model.chatflow_id} a question; returns its answer.",
            chatflow_id=model.chatflow_id,
            session_id=model.session_id,
            override_config=model.override_config,
            emit_custom_events=model.emit_custom_events,
            **model._connection_fields(),
        )

    # -- the call --------------------------------------------------------------------------------------------

    def _call(self, question: str | None, fields: dict[str, Any], config: RunnableConfig | None) -> _ToolCall:
        model_session = fields.pop("session_id", None)
        if not self.allow_model_session:  # the model never saw it in the schema: an injection, or a guess
            model_session = None
        session = model_session or configurable_of(config).get("flowise_session_id") or self.session_id
        if not self.form_fields:
            if fields:
                raise FlowiseToolInputError(f"unexpected argument(s) {sorted(fields)}: this tool takes 'question'")
            if not isinstance(question, str) or not question.strip():
                raise FlowiseToolInputError("'question' is required: the question or instruction for the flow")
            return _ToolCall(question, None, session)
        if question is not None:
            fields = {"question": question, **fields}
        try:
            form = validate_form(self.form_fields, fields)
        except (TypeError, ValueError) as exc:
            raise FlowiseToolInputError(str(exc)) from exc
        return _ToolCall(None, form, session)  # Flowise refuses a question together with a form

    def _options(self, call: _ToolCall) -> dict[str, Any]:
        """A chat of the call's own, or its session's (the client leases it); aborted when the call is left."""
        return {
            "session_id": call.session_id,
            "form": call.form,
            "override_config": self.override_config,
            "abort_on_cancel": self.abort_on_cancel,  # Ctrl-C / a cancelled task: the client aborts the run
        }

    def _output(self, prediction: Prediction) -> tuple[str, dict[str, Any]]:
        artifact: dict[str, Any] = {
            "chatflow_id": self.chatflow_id,
            "chat_id": prediction.chat_id,
            "chat_message_id": prediction.chat_message_id,
            "session_id": prediction.session_id,
            "source_documents": [
                Document(page_content=d.page_content, metadata=d.metadata, id=d.id) for d in prediction.source_documents
            ],
            "used_tools": [t.model_dump(exclude_none=True) for t in prediction.used_tools],
            "agent_reasoning": [s.model_dump(exclude_none=True) for s in prediction.agent_reasoning],
            "finish_reason": prediction.finish_reason,
        }
        if prediction.usage is not None:
            artifact["usage"] = prediction.usage.model_dump(exclude_none=True)
        if prediction.interrupt is not None:
            artifact["interrupt"] = prediction.interrupt
        if prediction.recovered:
            artifact["recovered"] = True
        return prediction.text, artifact

    def _run(
        self,
        question: str | None = None,
        *,
        config: RunnableConfig,
        run_manager: CallbackManagerForToolRun | None = None,
        **fields: Any,
    ) -> tuple[str, dict[str, Any]]:
        call = self._call(question, fields, config)
        try:
            prediction = self.client.predict(self.chatflow_id, call.question, **self._options(call))
        except FlowiseError as exc:
            raise to_tool_error(exc) from exc
        if self.emit_custom_events:
            for event in prediction_events(prediction, self.chatflow_id):
                dispatch(event)
        return self._output(prediction)

    async def _arun(
        self,
        question: str | None = None,
        *,
        config: RunnableConfig,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
        **fields: Any,
    ) -> tuple[str, dict[str, Any]]:
        call = self._call(question, fields, config)
        try:
            prediction = await self.async_client.predict(self.chatflow_id, call.question, **self._options(call))
        except FlowiseError as exc:
            raise to_tool_error(exc) from exc
        if self.emit_custom_events:
            for event in prediction_events(prediction, self.chatflow_id):
                await adispatch(event)
        return self._output(prediction)
