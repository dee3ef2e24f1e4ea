"""``FlowiseTool``: a Flowise flow as a tool any LangChain / LangGraph agent can call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.documents import Document
from langchain_core.tools import BaseTool
from langchain_core.tools.base import ArgsSchema
from pydantic import BaseModel, Field
from typing_extensions import Self

from flowise_integrations.errors import FlowiseError
from flowise_integrations.models import Prediction

from ._connection import FlowiseConnection
from ._convert import adispatch, dispatch, prediction_events
from ._errors import to_model_error

if TYPE_CHECKING:
    from .chat_models import ChatFlowise

__all__ = ["FlowiseTool", "FlowiseToolInput"]


class FlowiseToolInput(BaseModel):
    """What an agent sends to a Flowise flow."""

    question: str = Field(description="The question or instruction for the flow, in plain language.")
    session_id: str | None = Field(
        default=None, description="Optional Flowise session id, to continue an earlier conversation with the flow."
    )


class FlowiseTool(BaseTool, FlowiseConnection):
    """A chatflow or agentflow as a tool: ``question`` in, the answer out.

    The tool message's ``artifact`` (``response_format="content_and_artifact"``) holds what the flow used:
    ``source_documents`` (LangChain ``Document``s), ``used_tools``, ``agent_reasoning`` and the ids
    (``chatflow_id``, ``chat_id``, ``chat_message_id``, ``session_id``).

    Example:
        ```python
        docs = FlowiseTool(
            name="search_policies",
            description="Answers questions about company policies, citing the policy documents.",
            chatflow_id="4c1f...",
        )
        ```
    """

    name: str
    description: str
    chatflow_id: str
    """The chatflow / agentflow id."""
    session_id: str | None = None
    """Default Flowise session (server-side memory) when the agent gives none."""
    override_config: dict[str, Any] | None = None
    """Flowise ``overrideConfig`` sent with every call."""
    emit_custom_events: bool = True
    """Dispatch the ``flowise_*`` custom events (sources, tools, ids) from the tool's run."""
    args_schema: ArgsSchema | None = FlowiseToolInput
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"

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
            base_url=model.base_url,
            api_key=model.api_key,
            timeout=model.timeout,
            max_retries=model.max_retries,
            default_headers=model.default_headers,
            http_client=model.http_client,
            http_async_client=model.http_async_client,
        )

    def _params(self, session_id: str | None) -> dict[str, Any]:
        return {"session_id": session_id or self.session_id, "override_config": self.override_config}

    def _output(self, prediction: Prediction) -> tuple[str, dict[str, Any]]:
        artifact = {
            "chatflow_id": self.chatflow_id,
            "chat_id": prediction.chat_id,
            "chat_message_id": prediction.chat_message_id,
            "session_id": prediction.session_id,
            "source_documents": [
                Document(page_content=d.page_content, metadata=d.metadata, id=d.id) for d in prediction.source_documents
            ],
            "used_tools": [t.model_dump(exclude_none=True) for t in prediction.used_tools],
            "agent_reasoning": [s.model_dump(exclude_none=True) for s in prediction.agent_reasoning],
        }
        return prediction.text, artifact

    def _run(
        self, question: str, session_id: str | None = None, run_manager: CallbackManagerForToolRun | None = None
    ) -> tuple[str, dict[str, Any]]:
        try:
            prediction = self.client.predict(self.chatflow_id, question, **self._params(session_id))
        except FlowiseError as exc:
            raise to_model_error(exc) from exc
        if self.emit_custom_events:
            for event in prediction_events(prediction, self.chatflow_id):
                dispatch(event)
        return self._output(prediction)

    async def _arun(
        self,
        question: str,
        session_id: str | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> tuple[str, dict[str, Any]]:
        try:
            prediction = await self.async_client.predict(self.chatflow_id, question, **self._params(session_id))
        except FlowiseError as exc:
            raise to_model_error(exc) from exc
        if self.emit_custom_events:
            for event in prediction_events(prediction, self.chatflow_id):
                await adispatch(event)
        return self._output(prediction)
