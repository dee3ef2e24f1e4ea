"""``ChatFlowise``: any Flowise chatflow or agentflow as a LangChain chat model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field, model_validator
from typing_extensions import Self

from flowise_integrations._version import __version__
from flowise_integrations.conversation import to_prediction_input
from flowise_integrations.errors import FlowiseError
from flowise_integrations.events import TokenEvent
from flowise_integrations.models import Prediction

from ._batching import batches
from ._connection import FlowiseConnection
from ._convert import ChunkMapper, adispatch, dispatch, message_from_prediction, prediction_events, to_turns
from ._errors import to_model_error

__all__ = ["ChatFlowise"]

_PASSTHROUGH = frozenset(
    {"chat_id", "uploads", "form", "human_input", "lead_email", "extra_body", "headers", "timeout"}
)
_IGNORED = frozenset({"stream"})


@dataclass(frozen=True)
class _Call:
    chatflow_id: str
    params: dict[str, Any]
    stops: Sequence[str]


class ChatFlowise(BaseChatModel, FlowiseConnection):
    """A Flowise chatflow or agentflow as a LangChain chat model.

    The flow does the work (its own model, prompt, retrieval, tools, memory); this class only sends the
    conversation and maps Flowise's events to LangChain chunks. Sources, server-side tool runs, agent reasoning
    and ids land in the final ``response_metadata``, in ``content_blocks``, and (inside a chain or graph) as
    ``flowise_*`` custom callback events.

    Example:
        ```python
        from flowise_integrations.langchain import ChatFlowise

        llm = ChatFlowise(chatflow_id="4c1f...", base_url="http://localhost:3000")
        for chunk in llm.stream("What does our refund policy say?"):
            print(chunk.text, end="")
        ```

    Per-call keyword arguments (``invoke(..., session_id=...)``): ``model`` (another chatflow id),
    ``session_id``, ``chat_id``, ``override_config`` (merged over the instance's), ``uploads``, ``form``,
    ``human_input``, ``lead_email``, ``extra_body``, ``headers``, ``timeout``.

    Streaming yields one chunk per Flowise token. ``astream`` reads the stream in a helper task and merges
    tokens that queued up while the consumer was busy into one chunk (no latency added; LangChain keeps every
    chunk of a run until it ends, so a lagging consumer would otherwise pay a chunk object per token).
    """

    chatflow_id: str = Field(alias="model")
    """The chatflow / agentflow id (also accepted as ``model``; override per call with ``model=``)."""
    session_id: str | None = None
    """Use Flowise's server-side memory: only the newest human message is sent (see the README)."""
    override_config: dict[str, Any] | None = None
    """Flowise ``overrideConfig`` (the flow must allow overrides in its API configuration)."""
    streaming: bool = False
    """Stream even in ``invoke`` (also lets callbacks see tokens)."""
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Stop sequences, applied client-side: the answer is cut before the first one (the flow still runs to
    its end on the server, and its memory keeps the full answer)."""
    emit_custom_events: bool = True
    """Dispatch ``flowise_*`` custom events while running inside a chain or graph."""

    @model_validator(mode="after")
    def _set_flowise_version(self) -> Self:
        self._add_version("flowise-integrations", __version__)
        return self

    # -- LangChain metadata ----------------------------------------------------------------------------

    @property
    def model(self) -> str:
        """The chatflow id (LangChain's usual name for it)."""
        return self.chatflow_id

    @property
    def _llm_type(self) -> str:
        return "flowise-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"chatflow_id": self.chatflow_id, "base_url": self.base_url}

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["flowise_integrations", "langchain", "chat_models"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"api_key": "FLOWISE_API_KEY"}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="flowise",
            ls_model_name=kwargs.get("model") or kwargs.get("chatflow_id") or self.chatflow_id,
            ls_model_type="chat",
        )
        if stops := stop or self.stop:
            params["ls_stop"] = stops
        return params

    # -- the call ----------------------------------------------------------------------------------------

    def _prepare(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> _Call:
        kwargs = dict(kwargs)
        chatflow_id = kwargs.pop("model", None) or self.chatflow_id
        chatflow_id = kwargs.pop("chatflow_id", None) or chatflow_id
        session_id = kwargs.pop("session_id", None) or self.session_id
        override = kwargs.pop("override_config", None)
        if self.override_config:
            override = {**self.override_config, **(override or {})}
        conversation = to_prediction_input(to_turns(messages), server_memory=session_id is not None)
        uploads = [*conversation.uploads, *(kwargs.pop("uploads", None) or ())]
        params: dict[str, Any] = {
            "question": conversation.question,
            "history": conversation.history or None,
            "uploads": uploads or None,
            "session_id": session_id,
            "override_config": override or None,
        }
        for key in list(kwargs):
            if key in _PASSTHROUGH:
                params[key] = kwargs.pop(key)
            elif key in _IGNORED:
                kwargs.pop(key)
        if kwargs:
            raise TypeError(
                f"ChatFlowise got unexpected keyword argument(s) {sorted(kwargs)}; per-call options are: "
                f"model, session_id, override_config, {', '.join(sorted(_PASSTHROUGH))}"
            )
        stops = stop if stop is not None else (self.stop or ())
        return _Call(chatflow_id, params, stops)

    def _mapper(self, call: _Call) -> ChunkMapper:
        return ChunkMapper(call.chatflow_id, call.stops, custom_events=self.emit_custom_events)

    def _result(self, prediction: Prediction, call: _Call) -> ChatResult:
        message = message_from_prediction(prediction, call.chatflow_id, call.stops)
        return ChatResult(generations=[ChatGeneration(message=message)], llm_output={"model_name": call.chatflow_id})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._prepare(messages, stop, kwargs)
        try:
            prediction = self.client.predict(call.chatflow_id, **call.params)
        except FlowiseError as exc:
            raise to_model_error(exc) from exc
        if self.emit_custom_events:
            for event in prediction_events(prediction, call.chatflow_id):
                dispatch(event)
        return self._result(prediction, call)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._prepare(messages, stop, kwargs)
        try:
            prediction = await self.async_client.predict(call.chatflow_id, **call.params)
        except FlowiseError as exc:
            raise to_model_error(exc) from exc
        if self.emit_custom_events:
            for event in prediction_events(prediction, call.chatflow_id):
                await adispatch(event)
        return self._result(prediction, call)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        call = self._prepare(messages, stop, kwargs)
        mapper = self._mapper(call)
        try:
            with self.client.stream(call.chatflow_id, **call.params) as stream:
                mapper.chat_id = stream.chat_id
                for event in stream:
                    chunk, custom = mapper.feed(event)
                    if custom is not None:
                        dispatch(custom)
                    if chunk is not None:
                        if run_manager is not None:
                            run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                        yield chunk
                last = mapper.finish(stream.result)
        except FlowiseError as exc:
            raise to_model_error(exc) from exc
        if run_manager is not None:
            run_manager.on_llm_new_token(last.text, chunk=last)
        yield last

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        call = self._prepare(messages, stop, kwargs)
        mapper = self._mapper(call)
        try:
            async with (
                self.async_client.stream(call.chatflow_id, **call.params) as stream,
                aclosing(batches(stream)) as received,
            ):
                mapper.chat_id = stream.chat_id
                async for batch in received:
                    end = len(batch) - 1
                    for i, event in enumerate(batch):
                        chunk, custom = mapper.feed(event, i < end and type(batch[i + 1]) is TokenEvent)
                        if custom is not None:
                            await adispatch(custom)
                        if chunk is not None:
                            if run_manager is not None:
                                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                            yield chunk
                last = mapper.finish(stream.result)
        except FlowiseError as exc:
            raise to_model_error(exc) from exc
        if run_manager is not None:
            await run_manager.on_llm_new_token(last.text, chunk=last)
        yield last

    # -- tools -----------------------------------------------------------------------------------------

    def as_tool(
        self,
        args_schema: type[BaseModel] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        arg_types: dict[str, type] | None = None,
    ) -> BaseTool:
        """This flow as a :class:`FlowiseTool` (``question`` in, answer out, sources as the artifact).

        With ``args_schema`` or ``arg_types``, LangChain's generic ``Runnable.as_tool`` is used instead.
        """
        if args_schema is not None or arg_types is not None:
            return super().as_tool(args_schema, name=name, description=description, arg_types=arg_types)
        from .tools import FlowiseTool

        return FlowiseTool.from_chat_model(self, name=name, description=description)
