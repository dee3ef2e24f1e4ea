"""``FlowiseLLM``: a Flowise chatflow or agentflow as a LlamaIndex LLM, chat-native with real async."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Generator, Sequence
from typing import Any

import httpx
from llama_index.core.base.llms.generic_utils import prompt_to_messages
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.constants import DEFAULT_CONTEXT_WINDOW, DEFAULT_NUM_OUTPUTS
from llama_index.core.instrumentation.span import active_span_id
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from pydantic import Field, PrivateAttr, SecretStr, field_validator

from flowise_integrations.client import AsyncFlowiseClient, AsyncFlowiseStream, FlowiseClient, FlowiseStream
from flowise_integrations.errors import FlowiseError
from flowise_integrations.exchange import normalize_base_url, resolve_api_key, resolve_base_url
from flowise_integrations.hitl import Interrupt

from ._clients import Clients
from ._mapping import MakeResponse, R, ResponseMapper, chat_response, completion_response, prediction_input
from .events import EventReporter

__all__ = ["FlowiseLLM"]

_CONNECT_TIMEOUT = 10.0
_RESUME = "flowise_resume"  # the per-call key that carries a resume from resume() into chat()
_RESUME_OPTIONS = ("override_config", "extra_body", "headers", "timeout", "deadline", "lead_email")


class _Call:
    """One prepared call: which flow, the request's keyword arguments, its event mapper, and (for a resume) the
    stop it answers."""

    __slots__ = ("chatflow_id", "mapper", "request", "resume")

    def __init__(
        self,
        chatflow_id: str,
        request: dict[str, Any],
        mapper: ResponseMapper[Any],
        resume: _Resume | None = None,
    ) -> None:
        self.chatflow_id = chatflow_id
        self.request = request
        self.mapper = mapper
        self.resume = resume


class _Resume:
    """The answer to a stopped run: its interrupt, the decision and the feedback."""

    __slots__ = ("approve", "feedback", "interrupt")

    def __init__(self, interrupt: Interrupt, approve: bool, feedback: str | None) -> None:
        self.interrupt = interrupt
        self.approve = approve
        self.feedback = feedback


class FlowiseLLM(CustomLLM):
    """A Flowise chatflow or agentflow as a LlamaIndex LLM.

    The conversation goes as Flowise ``history`` (never flattened into a prompt); with a ``session_id`` Flowise's
    own memory holds it and only the newest user message is sent. Async methods are natively async. Streamed
    responses carry the text so far and the ``delta``; the last one carries ``source_documents``,
    ``used_tools``, ``agent_reasoning``, the ids, ``interrupt`` (a run stopped for a human: answer it with
    :meth:`resume`), the billable ``usage`` and ``recovered`` in ``additional_kwargs``, Flowise's payload (with
    ``usage``) in ``raw``. Failures raise the ``FlowiseError`` tree with the partial answer.

    Calls are bounded by ``deadline``; a stream left early (``break``, a cancelled task, Ctrl-C) is aborted on
    the server (``abort_on_cancel``). Two calls running at once never share a chat id: Flowise would mix their
    answers, so the second gets a fresh one (and a ``ChatIdInUseWarning``).

    Example:
        >>> llm = FlowiseLLM(chatflow_id="...", base_url="http://localhost:3000")  # doctest: +SKIP
        >>> llm.chat([ChatMessage(role="user", content="What is Flowise?")]).message.content  # doctest: +SKIP
    """

    chatflow_id: str = Field(description="The chatflow or agentflow id.")
    base_url: str = Field(
        default_factory=lambda: resolve_base_url(None),
        description="Flowise server root; defaults to FLOWISE_BASE_URL, then http://localhost:3000.",
    )
    api_key: SecretStr | None = Field(
        default_factory=lambda: resolve_api_key(None),
        exclude=True,
        repr=False,
        description="The flow's API key; defaults to FLOWISE_API_KEY.",
    )
    session_id: str | None = Field(default=None, description="Use Flowise's server-side memory for this session.")
    chat_id: str | None = Field(
        default=None,
        description="The Flowise chat of every call (one conversation, one chat in Flowise's logs); unset: a new "
        "chat per call. Flowise also keys a flow's memory by it when there is no session_id.",
    )
    override_config: dict[str, Any] | None = Field(default=None, description="Node overrides sent with each call.")
    headers: dict[str, str] | None = Field(default=None, exclude=True, repr=False, description="Extra HTTP headers.")
    timeout: float | None = Field(default=60.0, description="Seconds to wait for data (None: forever).")
    deadline: float | None = Field(
        default=None, gt=0, description="Seconds for a whole call, stream included (None: no limit)."
    )
    abort_on_cancel: bool = Field(
        default=True, description="Abort the run on the server when a call is left early (break, cancel, Ctrl-C)."
    )
    max_retries: int = Field(default=2, ge=0, description="Retries before the first byte (connect errors, 429/5xx).")
    context_window: int = Field(default=DEFAULT_CONTEXT_WINDOW, gt=0, description="For LlamaIndex's prompt packing.")
    num_output: int = Field(default=DEFAULT_NUM_OUTPUTS, gt=0, description="For LlamaIndex's prompt packing.")

    _clients: Clients = PrivateAttr(default_factory=lambda: Clients())

    def __init__(
        self,
        chatflow_id: str,
        *,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        **kwargs: Any,
    ) -> None:
        """Args beyond the fields: ``http_client``/``async_http_client`` are used instead of building httpx ones."""
        super().__init__(chatflow_id=chatflow_id, **kwargs)
        self._clients = Clients(http_client, async_http_client)

    @field_validator("base_url")
    @classmethod
    def _normalize_base_url(cls, value: str) -> str:
        return normalize_base_url(value)

    @field_validator("api_key")
    @classmethod
    def _empty_key_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return resolve_api_key(value) if value is not None else None

    @classmethod
    def class_name(cls) -> str:
        return "FlowiseLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.num_output,
            is_chat_model=True,
            is_function_calling_model=False,
            model_name=self.chatflow_id,
        )

    # -- clients ----------------------------------------------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        timeout = (
            None if self.timeout is None else httpx.Timeout(self.timeout, connect=min(self.timeout, _CONNECT_TIMEOUT))
        )
        return {"timeout": timeout, "max_retries": self.max_retries, "headers": self.headers}

    @property
    def client(self) -> FlowiseClient:
        """The sync client (built on first use)."""
        return self._clients.get_sync(
            lambda http: FlowiseClient(self.base_url, self.api_key, http_client=http, **self._client_options())
        )

    @property
    def async_client(self) -> AsyncFlowiseClient:
        """The async client of the running event loop (built on first use in each loop)."""
        return self._clients.get_async(
            lambda http: AsyncFlowiseClient(self.base_url, self.api_key, http_client=http, **self._client_options())
        )

    def close(self) -> None:
        """Close the sync client's connections (an injected ``http_client`` stays open)."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close this event loop's async client (an injected ``async_http_client`` stays open)."""
        await self._clients.aclose()

    # -- one call ---------------------------------------------------------------------------------------

    def _prepare(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any], make: MakeResponse[R]) -> _Call:
        """Build the request and the mapper; called in the method body, where the LLM span is active."""
        chatflow_id = kwargs.get("chatflow_id") or self.chatflow_id
        resume = kwargs.get(_RESUME)
        if resume is None:
            session_id = kwargs.get("session_id", self.session_id)
            request = prediction_input(
                messages, session_id=session_id, override_config=self.override_config, kwargs=kwargs
            )
            request["chat_id"] = kwargs.get("chat_id", self.chat_id)
        else:
            resume = _Resume(resume["interrupt"], bool(resume["approve"]), resume.get("feedback"))
            request = {key: kwargs[key] for key in _RESUME_OPTIONS if key in kwargs}
            override = {**(self.override_config or {}), **(kwargs.get("override_config") or {})}
            request["override_config"] = override or None
            if not (resume.interrupt.chat_id or resume.interrupt.session_id):  # the stop did not say: ours
                request["chat_id"] = kwargs.get("chat_id", self.chat_id)
                request["session_id"] = kwargs.get("session_id", self.session_id)
        request["deadline"] = kwargs.get("deadline", self.deadline)
        reporter = EventReporter(chatflow_id, active_span_id.get())
        return _Call(chatflow_id, request, ResponseMapper(make, reporter), resume)

    def _predict(self, call: _Call) -> Any:
        resume = call.resume
        abort = self.abort_on_cancel  # Ctrl-C: the client aborts the run in the background
        if resume is None:
            prediction = self.client.predict(call.chatflow_id, abort_on_cancel=abort, **call.request)
        else:
            prediction = self.client.resume(
                call.chatflow_id,
                interrupt=resume.interrupt,
                approve=resume.approve,
                feedback=resume.feedback,
                abort_on_cancel=abort,
                **call.request,
            )
        return call.mapper.final(prediction, streaming=False)

    def _open(self, call: _Call) -> FlowiseStream:
        resume = call.resume
        if resume is None:
            return self.client.stream(call.chatflow_id, **call.request)
        return self.client.resume_stream(
            call.chatflow_id,
            interrupt=resume.interrupt,
            approve=resume.approve,
            feedback=resume.feedback,
            **call.request,
        )

    def _stream(self, call: _Call) -> Generator[Any, None, None]:
        stream = self._open(call)  # the client leases the chat until the call ends (see flowise_integrations.chats)
        try:
            step = call.mapper.step
            for event in stream:
                response = step(event)
                if response is not None:
                    yield response
        except FlowiseError:  # the stream ended by itself (and closed itself)
            raise
        except BaseException:  # left early: break, a dropped generator (maybe closed by the GC inside a lock)
            stream.cancel(wait=False) if self.abort_on_cancel else stream.close(wait=False)  # a queue put
            raise
        yield call.mapper.final(stream.result, streaming=True)

    async def _apredict(self, call: _Call) -> Any:
        resume = call.resume
        abort = self.abort_on_cancel  # a cancelled task: the client aborts the run (shielded)
        if resume is None:
            prediction = await self.async_client.predict(call.chatflow_id, abort_on_cancel=abort, **call.request)
        else:
            prediction = await self.async_client.resume(
                call.chatflow_id,
                interrupt=resume.interrupt,
                approve=resume.approve,
                feedback=resume.feedback,
                abort_on_cancel=abort,
                **call.request,
            )
        return call.mapper.final(prediction, streaming=False)

    def _aopen(self, call: _Call) -> AsyncFlowiseStream:
        resume = call.resume
        if resume is None:
            return self.async_client.stream(call.chatflow_id, **call.request)
        return self.async_client.resume_stream(
            call.chatflow_id,
            interrupt=resume.interrupt,
            approve=resume.approve,
            feedback=resume.feedback,
            **call.request,
        )

    async def _astream(self, call: _Call) -> AsyncGenerator[Any, None]:
        stream = self._aopen(call)
        try:
            step = call.mapper.step
            async for event in stream:
                response = step(event)
                if response is not None:
                    yield response
        except FlowiseError:
            raise
        except BaseException:  # left early: break + aclose, a cancelled task
            with contextlib.suppress(Exception, asyncio.CancelledError):  # best effort; the abort is shielded
                await (stream.cancel() if self.abort_on_cancel else stream.aclose())
            raise
        yield call.mapper.final(stream.result, streaming=True)

    # -- chat (native) ----------------------------------------------------------------------------------

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Ask the flow; earlier messages go as Flowise ``history``."""
        result: ChatResponse = self._predict(self._prepare(messages, kwargs, chat_response))
        return result

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Stream the flow's answer: text so far + ``delta``; the extras on the last response."""
        return self._stream(self._prepare(messages, kwargs, chat_response))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        result: ChatResponse = await self._apredict(self._prepare(messages, kwargs, chat_response))
        return result

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        return self._astream(self._prepare(messages, kwargs, chat_response))

    # -- completion (the chat path with one user message) -----------------------------------------------

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """The prompt as the only user message of a chat."""
        result: CompletionResponse = self._predict(
            self._prepare(prompt_to_messages(prompt), kwargs, completion_response)
        )
        return result

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        return self._stream(self._prepare(prompt_to_messages(prompt), kwargs, completion_response))

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        call = self._prepare(prompt_to_messages(prompt), kwargs, completion_response)
        result: CompletionResponse = await self._apredict(call)
        return result

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        return self._astream(self._prepare(prompt_to_messages(prompt), kwargs, completion_response))

    # -- human in the loop ------------------------------------------------------------------------------

    def resume(
        self, interrupt: Interrupt, *, approve: bool, feedback: str | None = None, **kwargs: Any
    ) -> ChatResponse:
        """Answer a run that stopped for a human (a response's ``additional_kwargs["interrupt"]``); returns the
        resumed run's response (which may stop again). ``approve``: Proceed or Reject; ``feedback`` reaches a
        Human Input node that asks for it. The stop's own chat and session are used; Flowise stores the decision
        (or the feedback) as the turn's user message, which is also the message LlamaIndex's events show."""
        response: ChatResponse = self.chat(
            _resume_messages(interrupt, approve, feedback), **_resume_kwargs(interrupt, approve, feedback, kwargs)
        )
        return response

    def stream_resume(
        self, interrupt: Interrupt, *, approve: bool, feedback: str | None = None, **kwargs: Any
    ) -> ChatResponseGen:
        """:meth:`resume`, streamed like :meth:`stream_chat`."""
        responses: ChatResponseGen = self.stream_chat(
            _resume_messages(interrupt, approve, feedback), **_resume_kwargs(interrupt, approve, feedback, kwargs)
        )
        return responses

    async def aresume(
        self, interrupt: Interrupt, *, approve: bool, feedback: str | None = None, **kwargs: Any
    ) -> ChatResponse:
        """:meth:`resume`, natively async."""
        response: ChatResponse = await self.achat(
            _resume_messages(interrupt, approve, feedback), **_resume_kwargs(interrupt, approve, feedback, kwargs)
        )
        return response

    async def astream_resume(
        self, interrupt: Interrupt, *, approve: bool, feedback: str | None = None, **kwargs: Any
    ) -> ChatResponseAsyncGen:
        """:meth:`resume`, streamed like :meth:`astream_chat`."""
        responses: ChatResponseAsyncGen = await self.astream_chat(
            _resume_messages(interrupt, approve, feedback), **_resume_kwargs(interrupt, approve, feedback, kwargs)
        )
        return responses


def _resume_messages(interrupt: Interrupt, approve: bool, feedback: str | None) -> list[ChatMessage]:
    """The user turn a resume stands for: what Flowise's UI sends (and stores) as the question."""
    if not isinstance(interrupt, Interrupt):
        raise TypeError(f"resume needs the Interrupt of the stopped run, got {type(interrupt).__name__}")
    question = interrupt.resume_fields(approve=approve, feedback=feedback)["question"]
    return [ChatMessage(role=MessageRole.USER, content=str(question))]


def _resume_kwargs(interrupt: Interrupt, approve: bool, feedback: str | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**kwargs, _RESUME: {"interrupt": interrupt, "approve": approve, "feedback": feedback}}
