"""``ChatFlowise``: any Flowise chatflow or agentflow as a LangChain chat model."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, NoReturn

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field, model_validator
from typing_extensions import Self

from flowise_integrations._version import __version__
from flowise_integrations.client import AsyncFlowiseClient, FlowiseClient
from flowise_integrations.conversation import ConversationInput, to_prediction_input
from flowise_integrations.errors import FlowiseError
from flowise_integrations.events import TokenEvent
from flowise_integrations.hitl import Interrupt
from flowise_integrations.models import Prediction
from flowise_integrations.streams import AsyncFlowiseStream, FlowiseStream

from . import _langgraph
from ._batching import batches
from ._connection import FlowiseConnection
from ._convert import ChunkMapper, adispatch, dispatch, message_from_prediction, prediction_events, to_turns
from ._errors import to_model_error
from ._ids import configurable_of, current_configurable, derived_chat_id, memory_session
from ._structured import StructuredMethod, structured_runnable

__all__ = ["ChatFlowise", "get_interrupt"]

_PASSTHROUGH = frozenset(
    {"uploads", "form", "human_input", "lead_email", "extra_body", "headers", "timeout", "deadline"}
)
_RESUME_PASSTHROUGH = frozenset({"extra_body", "headers", "timeout", "deadline"})
_IGNORED = frozenset({"stream"})
_CONFIGURABLE = "flowise_configurable"  # how invoke/stream hand the run's config ids to _generate/_stream
_MISSING: Any = _langgraph._MISSING


def get_interrupt(message: BaseMessage) -> Interrupt | None:
    """The Flowise stop a message carries (``response_metadata["interrupt"]``), typed; ``None`` if it has none.

    Accepts the dict a checkpointer turns the object into.
    """
    value = message.response_metadata.get("interrupt") if isinstance(message, AIMessage) else None
    if isinstance(value, Interrupt):
        return value
    if isinstance(value, Mapping):
        try:
            return Interrupt.model_validate(dict(value))
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class _Resume:
    approve: bool
    feedback: str | None
    interrupt: Interrupt | None


@dataclass(frozen=True)
class _Call:
    chatflow_id: str
    question: str | None
    params: dict[str, Any]
    stops: Sequence[str]
    chat_id: str | None
    session_id: str | None
    resume: _Resume | None
    bridge: bool


class ChatFlowise(BaseChatModel, FlowiseConnection):
    """A Flowise chatflow or agentflow as a LangChain chat model.

    The flow does the work (its own model, prompt, retrieval, tools, memory); this class only sends the
    conversation and maps Flowise's events to LangChain chunks. Sources, server-side tool runs, agent reasoning,
    ids, ``recovered`` and a human-in-the-loop ``interrupt`` land in the final ``response_metadata``, in
    ``content_blocks``, and (inside a chain or graph) as ``flowise_*`` custom callback events, also written to a
    running LangGraph's ``stream_mode="custom"``.

    Example:
        ```python
        from flowise_integrations.langchain import ChatFlowise

        llm = ChatFlowise(chatflow_id="4c1f...", base_url="http://localhost:3000")
        for chunk in llm.stream("What does our refund policy say?"):
            print(chunk.text, end="")
        ```

    Per-call keyword arguments (``invoke(..., session_id=...)``): ``model`` (another chatflow id),
    ``session_id``, ``chat_id``, ``override_config`` (merged over the instance's), ``uploads``, ``form``,
    ``human_input``, ``lead_email``, ``extra_body``, ``headers``, ``timeout``, ``deadline``; and ``resume``
    (``True``/``False`` or ``{"approve": bool, "feedback": str}``) with an optional ``interrupt`` to answer a
    run that stopped for a human.

    Chats: one conversation is one Flowise chat. The chat id is ``chat_id`` (per call or on the instance),
    else ``configurable.flowise_chat_id``, else one derived from a LangGraph ``thread_id`` or a
    ``RunnableWithMessageHistory`` ``session_id``, else a fresh one per call; a chat id held by a running call
    is never sent twice at once (a fresh one is used, with a ``ChatIdInUseWarning``).

    Leaving a stream early (``break``, a cancelled task, Ctrl-C) aborts the run on the server
    (``abort_on_cancel=False`` opts out). Streaming yields one chunk per Flowise token; ``astream`` merges
    tokens that queued up while the consumer was busy into one chunk (no latency added).
    """

    chatflow_id: str = Field(alias="model")
    """The chatflow / agentflow id (also accepted as ``model``; override per call with ``model=``)."""
    session_id: str | None = None
    """Use Flowise's server-side memory: only the newest human message is sent (see the README). Per run:
    ``configurable.flowise_session_id``."""
    chat_id: str | None = None
    """The Flowise chat every call of this instance belongs to (default: see "Chats" above)."""
    derive_chat_id: bool = True
    """Derive a stable chat id from a LangGraph thread / message-history session."""
    override_config: dict[str, Any] | None = None
    """Flowise ``overrideConfig`` (the flow must allow overrides in its API configuration)."""
    streaming: bool = False
    """Stream even in ``invoke`` (also lets callbacks see tokens)."""
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Stop sequences, applied client-side: the answer is cut before the first one (the flow still runs to
    its end on the server, and its memory keeps the full answer)."""
    emit_custom_events: bool = True
    """Dispatch ``flowise_*`` custom events while running inside a chain or graph."""
    langgraph_interrupts: bool = False
    """Inside a LangGraph node, turn a Flowise stop for a human into LangGraph's ``interrupt(...)`` and answer the
    same Flowise run on ``Command(resume=...)`` (needs a checkpointer)."""

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

    # -- the run's config reaches the call -----------------------------------------------------------------

    @staticmethod
    def _with_configurable(config: RunnableConfig | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        ids = configurable_of(config)
        return {**kwargs, _CONFIGURABLE: ids} if ids else kwargs

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        return super().invoke(input, config, stop=stop, **self._with_configurable(config, kwargs))

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        return await super().ainvoke(input, config, stop=stop, **self._with_configurable(config, kwargs))

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        return super().stream(input, config, stop=stop, **self._with_configurable(config, kwargs))

    def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        return super().astream(input, config, stop=stop, **self._with_configurable(config, kwargs))

    # -- the call ----------------------------------------------------------------------------------------

    def _prepare(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> _Call:
        kwargs = dict(kwargs)
        configurable = kwargs.pop(_CONFIGURABLE, None) or current_configurable()
        chatflow_id = kwargs.pop("model", None) or self.chatflow_id
        chatflow_id = kwargs.pop("chatflow_id", None) or chatflow_id
        session_id = kwargs.pop("session_id", None) or configurable.get("flowise_session_id") or self.session_id
        chat_id = kwargs.pop("chat_id", None) or self.chat_id
        if chat_id is None and self.derive_chat_id:
            chat_id = derived_chat_id(configurable)
        override = kwargs.pop("override_config", None)
        if self.override_config:
            override = {**self.override_config, **(override or {})}
        bridge = self.langgraph_interrupts and _langgraph.in_graph()
        resume = self._resume(messages, kwargs.pop("resume", _MISSING), kwargs.pop("interrupt", None), bridge)
        if resume is not None and resume.interrupt is not None:  # the stop knows its chat: nothing else is sent
            conversation = ConversationInput(question="")
        else:
            conversation = to_prediction_input(to_turns(messages), server_memory=session_id is not None)
        history = conversation.history or None
        if session_id is None and chat_id is not None and history:  # Flowise's memory must not repeat the history
            session_id = memory_session(chat_id, conversation.question, history)
        uploads = [*conversation.uploads, *(kwargs.pop("uploads", None) or ())]
        params: dict[str, Any] = {
            "history": history,
            "uploads": uploads or None,
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
                f"model, session_id, chat_id, override_config, resume, interrupt, {', '.join(sorted(_PASSTHROUGH))}"
            )
        stops = stop if stop is not None else (self.stop or ())
        return _Call(chatflow_id, conversation.question, params, stops, chat_id, session_id, resume, bridge)

    @staticmethod
    def _resume(messages: list[BaseMessage], value: Any, interrupt: Any, bridge: bool) -> _Resume | None:
        """How this call answers a stopped run: the per-call ``resume``, or LangGraph's resume value."""
        if value is _MISSING and bridge:
            value = _langgraph.take_resume()
        if value is _MISSING or value is None:
            return None
        if interrupt is not None and not isinstance(interrupt, Interrupt):
            interrupt = Interrupt.model_validate(interrupt)
        if interrupt is None and not bridge:  # the stop this conversation ended on
            interrupt = next((i for m in reversed(messages) if (i := get_interrupt(m)) is not None), None)
        approve, feedback = _langgraph.parse_resume(value, interrupt)
        return _Resume(approve, feedback, interrupt)

    def _resume_options(self, call: _Call) -> dict[str, Any]:
        options = {k: v for k, v in call.params.items() if k in _RESUME_PASSTHROUGH or k == "override_config"}
        if call.resume is not None and call.resume.interrupt is None:
            options.update(chat_id=call.chat_id, session_id=call.session_id)
        return options

    def _options(self, call: _Call) -> dict[str, Any]:
        """The call's ids as wanted: the client leases the chat (a fresh one, with a warning, when it is taken)."""
        return {**call.params, "chat_id": call.chat_id, "session_id": call.session_id}

    def _predict(self, client: FlowiseClient, call: _Call) -> Prediction:
        abort = self.abort_on_cancel  # Ctrl-C: the client aborts the run in the background
        if call.resume is not None:
            resume = call.resume
            return client.resume(
                call.chatflow_id,
                approve=resume.approve,
                feedback=resume.feedback,
                interrupt=resume.interrupt,
                abort_on_cancel=abort,
                **self._resume_options(call),
            )
        return client.predict(call.chatflow_id, call.question, abort_on_cancel=abort, **self._options(call))

    async def _apredict(self, client: AsyncFlowiseClient, call: _Call) -> Prediction:
        abort = self.abort_on_cancel  # a cancelled task: the client aborts the run (shielded)
        if call.resume is not None:
            resume = call.resume
            return await client.resume(
                call.chatflow_id,
                approve=resume.approve,
                feedback=resume.feedback,
                interrupt=resume.interrupt,
                abort_on_cancel=abort,
                **self._resume_options(call),
            )
        return await client.predict(call.chatflow_id, call.question, abort_on_cancel=abort, **self._options(call))

    def _open_stream(self, client: FlowiseClient, call: _Call) -> FlowiseStream:
        if call.resume is not None:
            resume = call.resume
            return client.resume_stream(
                call.chatflow_id,
                approve=resume.approve,
                feedback=resume.feedback,
                interrupt=resume.interrupt,
                **self._resume_options(call),
            )
        return client.stream(call.chatflow_id, call.question, **self._options(call))

    def _open_astream(self, client: AsyncFlowiseClient, call: _Call) -> AsyncFlowiseStream:
        if call.resume is not None:
            resume = call.resume
            return client.resume_stream(
                call.chatflow_id,
                approve=resume.approve,
                feedback=resume.feedback,
                interrupt=resume.interrupt,
                **self._resume_options(call),
            )
        return client.stream(call.chatflow_id, call.question, **self._options(call))

    def _mapper(self, call: _Call) -> ChunkMapper:
        return ChunkMapper(call.chatflow_id, call.stops, custom_events=self.emit_custom_events)

    def _result(self, prediction: Prediction, call: _Call) -> ChatResult:
        message = message_from_prediction(prediction, call.chatflow_id, call.stops)
        return ChatResult(generations=[ChatGeneration(message=message)], llm_output={"model_name": call.chatflow_id})

    @staticmethod
    def _bridge(prediction: Prediction, call: _Call) -> None:
        """Inside a graph with the bridge on, a stop for a human pauses the graph (raises ``GraphInterrupt``)."""
        if call.bridge and prediction.interrupt is not None:
            _langgraph.ask_human(prediction.interrupt, call.chatflow_id)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._prepare(messages, stop, kwargs)
        try:
            prediction = self._predict(self.client, call)
        except FlowiseError as exc:
            raise to_model_error(exc) from exc
        if self.emit_custom_events:
            for event in prediction_events(prediction, call.chatflow_id):
                dispatch(event)
        self._bridge(prediction, call)
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
            prediction = await self._apredict(self.async_client, call)
        except FlowiseError as exc:
            raise to_model_error(exc) from exc
        if self.emit_custom_events:
            for event in prediction_events(prediction, call.chatflow_id):
                await adispatch(event)
        self._bridge(prediction, call)
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
        stream = self._open_stream(self.client, call)
        mapper.chat_id = stream.chat_id
        try:
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
        except BaseException:  # the consumer left (GeneratorExit, maybe from the GC), Ctrl-C...: stop the flow
            stream.cancel(wait=False) if self.abort_on_cancel else stream.close(wait=False)  # a queue put
            raise
        if run_manager is not None:
            run_manager.on_llm_new_token(last.text, chunk=last)
        yield last
        self._bridge(stream.result, call)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        call = self._prepare(messages, stop, kwargs)
        mapper = self._mapper(call)
        stream = self._open_astream(self.async_client, call)
        mapper.chat_id = stream.chat_id
        try:
            async with aclosing(batches(stream)) as received:
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
        except BaseException:  # the consumer left (GeneratorExit), the task was cancelled, ...: stop the flow
            with contextlib.suppress(Exception, asyncio.CancelledError):  # best effort; the abort is shielded
                await (stream.cancel() if self.abort_on_cancel else stream.aclose())
            raise
        if run_manager is not None:
            await run_manager.on_llm_new_token(last.text, chunk=last)
        yield last
        self._bridge(stream.result, call)

    # -- tools and structured output ---------------------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> NoReturn:
        """Not supported: a Flowise flow runs its own tools on the server. See the error for what to use."""
        raise NotImplementedError(
            "ChatFlowise cannot bind tools: a Flowise flow calls its own tools on the server (they are reported in "
            "response_metadata['used_tools']). To let an agent call Flowise flows, give it FlowiseTool or "
            "FlowiseToolkit tools (flowise_integrations.langchain) and use a tool-calling chat model for the agent."
        )

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: StructuredMethod = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Answers parsed into ``schema`` (a Pydantic class, TypedDict, JSON schema, or ``None`` with json_mode).

        Flowise has no JSON mode or tool calling to lean on, so the schema is sent as format instructions
        appended to the question and the answer is parsed (``method="json_schema"``; ``"function_calling"`` is
        accepted as the same); ``method="json_mode"`` only asks for JSON and leaves the format to your prompt.
        ``include_raw=True`` returns ``{"raw", "parsed", "parsing_error"}``. Streaming yields partial dicts
        for dict schemas; a Pydantic object once it validates. ``strict`` is accepted for compatibility
        (Pydantic schemas are always validated).
        """
        if kwargs:
            raise TypeError(f"with_structured_output got unexpected keyword argument(s) {sorted(kwargs)}")
        return structured_runnable(self, schema, method, include_raw)

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
