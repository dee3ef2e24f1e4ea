"""``FlowiseLLM``: a Flowise chatflow or agentflow as a LlamaIndex LLM, chat-native with real async."""

from __future__ import annotations

import asyncio
import weakref
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
)
from llama_index.core.constants import DEFAULT_CONTEXT_WINDOW, DEFAULT_NUM_OUTPUTS
from llama_index.core.instrumentation.span import active_span_id
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from pydantic import Field, PrivateAttr, SecretStr, field_validator

from flowise_integrations.client import AsyncFlowiseClient, FlowiseClient
from flowise_integrations.exchange import normalize_base_url, resolve_api_key, resolve_base_url

from ._mapping import MakeResponse, R, ResponseMapper, chat_response, completion_response, prediction_input
from .events import EventReporter

__all__ = ["FlowiseLLM"]

_CONNECT_TIMEOUT = 10.0


class _Call:
    """One prepared call: which flow, the request's keyword arguments, and its event mapper."""

    __slots__ = ("chatflow_id", "mapper", "request")

    def __init__(self, chatflow_id: str, request: dict[str, Any], mapper: ResponseMapper[Any]) -> None:
        self.chatflow_id = chatflow_id
        self.request = request
        self.mapper = mapper


class _Clients:
    """An instance's clients: built lazily, the async ones per event loop. Copies and unpickled instances start
    with none built (connections are not state); a deep copy keeps the injected httpx clients."""

    __slots__ = ("async_http", "by_loop", "http", "sync")

    def __init__(self, http: httpx.Client | None = None, async_http: httpx.AsyncClient | None = None) -> None:
        self.http = http
        self.async_http = async_http
        self.sync: FlowiseClient | None = None
        self.by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncFlowiseClient] = (
            weakref.WeakKeyDictionary()
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> _Clients:
        return _Clients(self.http, self.async_http)

    def __reduce__(self) -> tuple[type[_Clients], tuple[()]]:
        return _Clients, ()


class FlowiseLLM(CustomLLM):
    """A Flowise chatflow or agentflow as a LlamaIndex LLM.

    The conversation goes as Flowise ``history`` (never flattened into a prompt); with a ``session_id`` Flowise's
    own memory holds it and only the newest user message is sent. Async methods are natively async. Streamed
    responses carry the text so far and the ``delta``; the last one carries ``source_documents``,
    ``used_tools``, ``agent_reasoning`` and the ids in ``additional_kwargs``, Flowise's payload (with ``usage``
    when the flow reports it) in ``raw``. Failures raise the ``FlowiseError`` tree with the partial answer.

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
    override_config: dict[str, Any] | None = Field(default=None, description="Node overrides sent with each call.")
    headers: dict[str, str] | None = Field(default=None, exclude=True, repr=False, description="Extra HTTP headers.")
    timeout: float | None = Field(default=60.0, description="Seconds to wait for data (None: forever).")
    max_retries: int = Field(default=2, ge=0, description="Retries before the first byte (connect errors, 429/5xx).")
    context_window: int = Field(default=DEFAULT_CONTEXT_WINDOW, gt=0, description="For LlamaIndex's prompt packing.")
    num_output: int = Field(default=DEFAULT_NUM_OUTPUTS, gt=0, description="For LlamaIndex's prompt packing.")

    _clients: _Clients = PrivateAttr(default_factory=lambda: _Clients())

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
        self._clients = _Clients(http_client, async_http_client)

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
        clients = self._clients
        if clients.sync is None:
            clients.sync = FlowiseClient(
                self.base_url, self.api_key, http_client=clients.http, **self._client_options()
            )
        return clients.sync

    @property
    def async_client(self) -> AsyncFlowiseClient:
        """The async client of the running event loop (built on first use in each loop)."""
        clients = self._clients
        loop = asyncio.get_running_loop()
        client = clients.by_loop.get(loop)
        if client is None:
            client = AsyncFlowiseClient(
                self.base_url, self.api_key, http_client=clients.async_http, **self._client_options()
            )
            clients.by_loop[loop] = client
        return client

    def close(self) -> None:
        """Close the sync client's connections (an injected ``http_client`` stays open)."""
        client, self._clients.sync = self._clients.sync, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close this event loop's async client (an injected ``async_http_client`` stays open)."""
        client = self._clients.by_loop.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    # -- one call ---------------------------------------------------------------------------------------

    def _prepare(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any], make: MakeResponse[R]) -> _Call:
        """Build the request and the mapper; called in the method body, where the LLM span is active."""
        chatflow_id = kwargs.get("chatflow_id") or self.chatflow_id
        session_id = kwargs.get("session_id", self.session_id)
        request = prediction_input(messages, session_id=session_id, override_config=self.override_config, kwargs=kwargs)
        return _Call(chatflow_id, request, ResponseMapper(make, EventReporter(chatflow_id, active_span_id.get())))

    def _predict(self, call: _Call) -> Any:
        return call.mapper.final(self.client.predict(call.chatflow_id, **call.request), streaming=False)

    def _stream(self, call: _Call) -> Generator[Any, None, None]:
        step = call.mapper.step
        with self.client.stream(call.chatflow_id, **call.request) as stream:
            for event in stream:
                response = step(event)
                if response is not None:
                    yield response
            yield call.mapper.final(stream.result, streaming=True)

    async def _apredict(self, call: _Call) -> Any:
        prediction = await self.async_client.predict(call.chatflow_id, **call.request)
        return call.mapper.final(prediction, streaming=False)

    async def _astream(self, call: _Call) -> AsyncGenerator[Any, None]:
        step = call.mapper.step
        async with self.async_client.stream(call.chatflow_id, **call.request) as stream:
            async for event in stream:
                response = step(event)
                if response is not None:
                    yield response
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
