"""``FlowiseClient`` and ``AsyncFlowiseClient``: the only code that does HTTP.

Both are thin shells over httpx: every decision (request, response kind, retries, decoding, folding, how a
stream ended) is made by the I/O-free code in ``exchange.py``, so sync and async behave identically.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Generic, TypeVar

import httpx
from pydantic import SecretStr

from .errors import FlowiseAPIError, FlowiseError, error_from_probe, error_from_response
from .events import EndEvent, FlowiseEvent, TokenEvent
from .exchange import (
    DEFAULT_TIMEOUT,
    RetryPolicy,
    StreamState,
    auth_headers,
    build_prediction_request,
    resolve_api_key,
    resolve_base_url,
    transport_error,
    unexpected_body_error,
)
from .models import HistoryItem, HumanInput, Prediction, PredictionRequest, Upload

__all__ = ["AsyncFlowiseClient", "AsyncFlowiseStream", "FlowiseClient", "FlowiseStream"]

_H = TypeVar("_H", httpx.Client, httpx.AsyncClient)
_PROBE_TIMEOUT = httpx.Timeout(10.0)
_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=64)
_DEFAULT_HEADERS = {"Accept-Encoding": "identity"}  # an SSE stream must never sit in a compressor's buffer


class _ClientBase(Generic[_H]):
    """Configuration and the I/O-free parts both clients share."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        headers: Mapping[str, str] | None = None,
        http_client: _H | None = None,
        diagnose_after: float | None = 5.0,
        recover_lost_answers: bool = True,
    ) -> None:
        self.base_url = resolve_base_url(base_url)
        self.api_key: SecretStr | None = resolve_api_key(api_key)
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.retry = RetryPolicy(max_retries)
        self.headers = dict(headers or {})
        self.diagnose_after = diagnose_after
        self.recover_lost_answers = recover_lost_answers
        self._http: _H | None = http_client
        self._owns_http = http_client is None
        self._answered: set[str] = set()  # flows that sent response headers: no hang watch needed any more

    def _needs_watch(self, state: StreamState) -> bool:
        """Watch for Flowise's silent hang until a flow has answered once (then it exists: send directly)."""
        return state.streaming and self.diagnose_after is not None and state.chatflow_id not in self._answered

    def _answering(self, state: StreamState) -> None:
        if len(self._answered) < 4096:
            self._answered.add(state.chatflow_id)

    def __repr__(self) -> str:
        key = "SecretStr('**********')" if self.api_key is not None else "None"
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={key})"

    def _url(self, path: str) -> str:
        return f"{self.base_url}/api/v1/{path}"

    def _prediction(
        self,
        chatflow_id: str,
        question: str | None,
        *,
        streaming: bool,
        session_id: str | None,
        chat_id: str | None,
        history: Sequence[HistoryItem] | None,
        override_config: dict[str, Any] | None,
        uploads: Sequence[Upload | Mapping[str, Any]] | None,
        form: dict[str, Any] | None,
        human_input: HumanInput | dict[str, Any] | None,
        lead_email: str | None,
        action: dict[str, Any] | None,
        extra_body: dict[str, Any] | None,
        headers: Mapping[str, str] | None,
        timeout: float | httpx.Timeout | None,
    ) -> tuple[httpx.Request, StreamState]:
        # Flowise only reveals a generated chatId at the very end of a stream; choosing it here means the
        # caller can abort a running stream and continue the conversation.
        if chat_id is None and session_id is None:
            chat_id = str(uuid.uuid4())
        request = PredictionRequest(
            question=question,
            streaming=streaming,
            chat_id=chat_id,
            session_id=session_id,
            history=history,
            override_config=override_config,
            uploads=uploads,
            form=form,
            human_input=human_input,
            lead_email=lead_email,
            action=action,
            extra_body=extra_body,
        )
        merged = {**self.headers, **(headers or {})}
        per_call = timeout if timeout is None or isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        http_request = build_prediction_request(
            self.base_url, chatflow_id, request, api_key=self.api_key, headers=merged, timeout=per_call
        )
        return http_request, StreamState(chatflow_id, chat_id or session_id, streaming=streaming)

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Request:
        return httpx.Request("GET", self._url(path), params=params, headers=auth_headers(self.api_key))

    def _abort_request(self, chatflow_id: str, chat_id: str) -> httpx.Request:
        return httpx.Request(
            "PUT", self._url(f"chatmessage/abort/{chatflow_id}/{chat_id}"), headers=auth_headers(self.api_key)
        )

    def _abort_result(self, response: httpx.Response) -> dict[str, Any]:
        result: Any = self._json_or_raise(response)
        return result if isinstance(result, dict) else {"result": result}

    @staticmethod
    def _is_pong(response: httpx.Response) -> bool:
        return response.status_code == 200 and response.text.strip() == "pong"

    def _messages_request(
        self, chatflow_id: str, chat_id: str | None, session_id: str | None, message_id: str | None, order: str | None
    ) -> httpx.Request:
        params = {"chatId": chat_id, "sessionId": session_id, "messageId": message_id, "order": order}
        return self._get(f"chatmessage/{chatflow_id}", {k: v for k, v in params.items() if v})

    def _messages(self, response: httpx.Response) -> list[dict[str, Any]]:
        result = self._json_or_raise(response)
        return [r for r in result if isinstance(r, dict)] if isinstance(result, list) else []

    def _probe_request(self, chatflow_id: str) -> httpx.Request:
        """``GET /chatflows-streaming/{id}``, with its own short timeout: the diagnosis of a silent hang."""
        request = self._get(f"chatflows-streaming/{chatflow_id}")
        request.extensions["timeout"] = _PROBE_TIMEOUT.as_dict()
        return request

    def _recovery_request(self, state: StreamState) -> httpx.Request:
        """The chat-message lookup of a lost answer, or the error to raise when it cannot be recovered."""
        if self.api_key is None or not self.recover_lost_answers:
            raise state.lost_answer_error("set an API key on the client to recover it from the chat-message API")
        meta = state.acc.metadata
        return self._messages_request(state.chatflow_id, meta.get("chatId"), None, state.acc.chat_message_id, None)

    def _is_streaming(self, chatflow_id: str, response: httpx.Response) -> bool:
        error = error_from_probe(chatflow_id, response.status_code, response.content)  # 500 "not found" -> 404
        if error is not None:
            raise error
        return bool(self._json_or_raise(response).get("isStreaming"))

    def _json_or_raise(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.content, dict(response.headers))
        try:
            return response.json()
        except ValueError:
            raise unexpected_body_error(response, response.content) from None


_PREDICTION_DOC = """
        Args:
            chatflow_id: the chatflow or agentflow id.
            question: the user's message (optional for agentflows started by ``form``).
            session_id: server-side memory session (sent as ``overrideConfig.sessionId``).
            chat_id: conversation id; generated when neither it nor ``session_id`` is given.
            history: earlier turns (``ChatTurn`` or ``{"role", "content"}`` dicts), sent as Flowise ``history``.
            override_config: node overrides (must be enabled in the flow's API configuration).
            uploads: ``Upload`` objects or dicts (base64 data URI or URL).
            form: agentflow v2 form inputs.  human_input: resume a stopped agentflow.
            lead_email: stored on the chat message.  action: a sequential-agent action to answer.
            extra_body: extra top-level JSON keys.  headers: extra HTTP headers.  timeout: per-call timeout.
"""


class _StreamBase:
    """What both stream flavours expose besides iteration."""

    def __init__(self, request: httpx.Request, state: StreamState) -> None:
        self._request = request
        self._state = state
        self._response: httpx.Response | None = None

    @property
    def chatflow_id(self) -> str:
        return self._state.chatflow_id

    @property
    def chat_id(self) -> str | None:
        """The conversation id, known before the first event (use it to abort or continue)."""
        return self._state.chat_id

    @property
    def result(self) -> Prediction:
        """The prediction folded from the events received so far."""
        return self._state.result

    @property
    def response(self) -> httpx.Response | None:
        """The HTTP response, once the request was sent."""
        return self._response


class FlowiseStream(_StreamBase):
    """A running prediction: an iterator of typed events and a context manager.

    ``result`` is the :class:`Prediction` folded so far; leaving the ``with`` block, ``close()`` or breaking out
    of the loop closes the connection at once; ``cancel()`` also asks Flowise to abort the run.
    """

    def __init__(self, client: FlowiseClient, request: httpx.Request, state: StreamState) -> None:
        super().__init__(request, state)
        self._client = client
        self._iterator = self._iterate()

    def open(self) -> FlowiseStream:
        """Send the request and check the status (done lazily by the first iteration otherwise)."""
        if self._response is None:
            self._response = self._client._send(self._request, self._state)
        return self

    def __enter__(self) -> FlowiseStream:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[FlowiseEvent]:
        return self._iterator

    def __next__(self) -> FlowiseEvent:
        return next(self._iterator)

    def _iterate(self) -> Generator[FlowiseEvent, None, None]:
        state = self._state
        response = self.open()._response
        assert response is not None
        try:
            kind = state.start(response)
            if kind == "sse":
                feed = state.feed
                for chunk in response.iter_bytes():
                    for event in feed(chunk):
                        if type(event) is EndEvent and state.lost_answer():
                            yield from self._client._recover(state)
                        yield event
                yield from state.eof()
            elif kind == "json":
                yield from state.feed_json(response, response.read())
            else:
                raise unexpected_body_error(response, response.read())
        except httpx.TransportError as exc:
            raise transport_error(exc, partial=state.result) from exc
        finally:
            response.close()
        error = state.final_error()
        if error is not None:
            raise error

    def text_stream(self) -> Iterator[str]:
        """Only the answer's text, token by token (empty tokens skipped)."""
        for event in self._iterator:
            if type(event) is TokenEvent and event.data:
                yield event.data

    def until_done(self) -> Prediction:
        """Consume the rest of the stream and return the final prediction."""
        for _ in self._iterator:
            pass
        return self.result

    def close(self) -> None:
        """Close the connection now (Flowise keeps running the flow: see ``cancel``)."""
        self._iterator.close()
        if self._response is not None:
            self._response.close()

    def cancel(self) -> bool:
        """Close the connection and ask Flowise to abort the run. Returns whether Flowise acknowledged."""
        self.close()
        if not self.chat_id:
            return False
        try:
            self._client.abort(self.chatflow_id, self.chat_id)
        except FlowiseError:
            return False
        return True


class FlowiseClient(_ClientBase[httpx.Client]):
    """Synchronous Flowise client (thread-safe; reuse one per process).

    Example:
        >>> client = FlowiseClient("http://localhost:3000", api_key="...")  # doctest: +SKIP
        >>> client.predict(chatflow_id, "What is Flowise?").text             # doctest: +SKIP
    """

    @property
    def http(self) -> httpx.Client:
        """The underlying ``httpx.Client`` (created on first use)."""
        if self._http is None:
            self._http = httpx.Client(timeout=self.timeout, limits=_LIMITS, headers=_DEFAULT_HEADERS)
        return self._http

    def close(self) -> None:
        if self._http is not None and self._owns_http:
            self._http.close()

    def __enter__(self) -> FlowiseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def predict(
        self,
        chatflow_id: str,
        question: str | None = None,
        *,
        session_id: str | None = None,
        chat_id: str | None = None,
        history: Sequence[HistoryItem] | None = None,
        override_config: dict[str, Any] | None = None,
        uploads: Sequence[Upload | Mapping[str, Any]] | None = None,
        form: dict[str, Any] | None = None,
        human_input: HumanInput | dict[str, Any] | None = None,
        lead_email: str | None = None,
        action: dict[str, Any] | None = None,
        extra_body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> Prediction:
        """Run a prediction without streaming and return the complete result."""
        request, state = self._prediction(
            chatflow_id, question, streaming=False, session_id=session_id, chat_id=chat_id, history=history,
            override_config=override_config, uploads=uploads, form=form, human_input=human_input,
            lead_email=lead_email, action=action, extra_body=extra_body, headers=headers, timeout=timeout,
        )  # fmt: skip
        return FlowiseStream(self, request, state).until_done()

    def stream(
        self,
        chatflow_id: str,
        question: str | None = None,
        *,
        session_id: str | None = None,
        chat_id: str | None = None,
        history: Sequence[HistoryItem] | None = None,
        override_config: dict[str, Any] | None = None,
        uploads: Sequence[Upload | Mapping[str, Any]] | None = None,
        form: dict[str, Any] | None = None,
        human_input: HumanInput | dict[str, Any] | None = None,
        lead_email: str | None = None,
        action: dict[str, Any] | None = None,
        extra_body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> FlowiseStream:
        """Start a streaming prediction: iterate the returned stream for typed events.

        One POST with ``streaming: true``; a flow that cannot stream answers JSON, which is delivered as the
        same events, so the consumer never has to care.
        """
        request, state = self._prediction(
            chatflow_id, question, streaming=True, session_id=session_id, chat_id=chat_id, history=history,
            override_config=override_config, uploads=uploads, form=form, human_input=human_input,
            lead_email=lead_email, action=action, extra_body=extra_body, headers=headers, timeout=timeout,
        )  # fmt: skip
        return FlowiseStream(self, request, state)

    predict.__doc__ = (predict.__doc__ or "") + _PREDICTION_DOC
    stream.__doc__ = (stream.__doc__ or "") + _PREDICTION_DOC

    def abort(self, chatflow_id: str, chat_id: str) -> dict[str, Any]:
        """Ask Flowise to stop a running prediction (effective for agentflows and multi-agent flows)."""
        return self._abort_result(self._plain(self._abort_request(chatflow_id, chat_id)))

    def ping(self) -> bool:
        """``True`` when the server answers ``GET /api/v1/ping``."""
        try:
            return self._is_pong(self._plain(self._get("ping")))
        except FlowiseError:
            return False

    def version(self) -> str:
        """The server's Flowise version (``GET /api/v1/version``)."""
        return str(self._json_or_raise(self._plain(self._get("version"))).get("version", ""))

    def is_streaming(self, chatflow_id: str) -> bool:
        """Whether Flowise will stream this flow (``GET /api/v1/chatflows-streaming/{id}``)."""
        response = self._plain(self._get(f"chatflows-streaming/{chatflow_id}"))
        return self._is_streaming(chatflow_id, response)

    def get_chat_messages(
        self,
        chatflow_id: str,
        *,
        chat_id: str | None = None,
        session_id: str | None = None,
        message_id: str | None = None,
        order: str | None = None,
    ) -> list[dict[str, Any]]:
        """Stored chat messages of a flow (needs an API key with chat-message permission)."""
        request = self._messages_request(chatflow_id, chat_id, session_id, message_id, order)
        return self._messages(self._plain(request))

    # -- I/O --------------------------------------------------------------------------------------------

    def _plain(self, request: httpx.Request) -> httpx.Response:
        try:
            return self.http.send(request)
        except httpx.TransportError as exc:
            raise transport_error(exc) from exc

    def _send(self, request: httpx.Request, state: StreamState) -> httpx.Response:
        """Send with retries (before the first byte only); return a 2xx response whose body is unread."""
        attempt = 0
        while True:
            try:
                if self._needs_watch(state):
                    response = self._send_watched(request, state)
                else:
                    response = self.http.send(request, stream=True)
                self._answering(state)
            except httpx.TransportError as exc:
                delay = self.retry.after_exception(attempt, exc)
                if delay is None:
                    if isinstance(exc, httpx.ReadTimeout) and state.streaming:
                        self._raise_if_unknown_flow(state.chatflow_id)
                    raise transport_error(exc) from exc
            else:
                if response.status_code < 400:
                    return response
                error = _read_error(response, response.read())
                delay = self.retry.after_status(attempt, response.status_code, _retry_after(error))
                if delay is None:
                    raise error
            time.sleep(delay)
            attempt += 1

    def _send_watched(self, request: httpx.Request, state: StreamState) -> httpx.Response:
        # Flowise never answers a streaming request for an unknown chatflow. If no headers arrive within
        # `diagnose_after`, ask GET /chatflows-streaming/{id} whether the flow exists, while still waiting.
        # The send runs in a daemon thread: an abandoned one (unknown flow) never keeps the process alive.
        future: concurrent.futures.Future[httpx.Response] = concurrent.futures.Future()

        def send() -> None:
            try:
                future.set_result(self.http.send(request, stream=True))
            except BaseException as exc:  # handed to the waiting caller
                future.set_exception(exc)

        threading.Thread(target=send, name="flowise-send", daemon=True).start()
        try:
            return future.result(timeout=self.diagnose_after)
        except concurrent.futures.TimeoutError:
            pass
        try:
            self._raise_if_unknown_flow(state.chatflow_id)
        except FlowiseError:
            future.add_done_callback(_close_response)
            raise
        return future.result()

    def _raise_if_unknown_flow(self, chatflow_id: str) -> None:
        try:
            response = self.http.send(self._probe_request(chatflow_id))
        except httpx.TransportError:
            return
        error = error_from_probe(chatflow_id, response.status_code, response.content)
        if error is not None:
            raise error

    def _recover(self, state: StreamState) -> list[FlowiseEvent]:
        request = self._recovery_request(state)
        try:
            rows = self._messages(self._plain(request))
        except FlowiseError as exc:
            raise state.lost_answer_error(f"recovering it failed: {exc}") from exc
        return state.recovered_events(rows)


class AsyncFlowiseStream(_StreamBase):
    """The async twin of :class:`FlowiseStream`: ``async with`` / ``async for``."""

    def __init__(self, client: AsyncFlowiseClient, request: httpx.Request, state: StreamState) -> None:
        super().__init__(request, state)
        self._client = client
        self._iterator = self._iterate()

    async def open(self) -> AsyncFlowiseStream:
        """Send the request and check the status (done lazily by the first iteration otherwise)."""
        if self._response is None:
            self._response = await self._client._send(self._request, self._state)
        return self

    async def __aenter__(self) -> AsyncFlowiseStream:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[FlowiseEvent]:
        return self._iterator

    async def __anext__(self) -> FlowiseEvent:
        return await self._iterator.__anext__()

    async def _iterate(self) -> AsyncGenerator[FlowiseEvent, None]:
        state = self._state
        response = (await self.open())._response
        assert response is not None
        try:
            kind = state.start(response)
            if kind == "sse":
                feed = state.feed
                async for chunk in response.aiter_bytes():
                    for event in feed(chunk):
                        if type(event) is EndEvent and state.lost_answer():
                            for recovered in await self._client._recover(state):
                                yield recovered
                        yield event
                for event in state.eof():
                    yield event
            elif kind == "json":
                for event in state.feed_json(response, await response.aread()):
                    yield event
            else:
                raise unexpected_body_error(response, await response.aread())
        except httpx.TransportError as exc:
            raise transport_error(exc, partial=state.result) from exc
        finally:
            await response.aclose()
        error = state.final_error()
        if error is not None:
            raise error

    async def text_stream(self) -> AsyncIterator[str]:
        """Only the answer's text, token by token (empty tokens skipped)."""
        async for event in self._iterator:
            if type(event) is TokenEvent and event.data:
                yield event.data

    async def until_done(self) -> Prediction:
        """Consume the rest of the stream and return the final prediction."""
        async for _ in self._iterator:
            pass
        return self.result

    async def aclose(self) -> None:
        """Close the connection now (Flowise keeps running the flow: see ``cancel``)."""
        await self._iterator.aclose()
        if self._response is not None:
            await self._response.aclose()

    async def cancel(self) -> bool:
        """Close the connection and ask Flowise to abort the run. Returns whether Flowise acknowledged."""
        await self.aclose()
        if not self.chat_id:
            return False
        try:
            await self._client.abort(self.chatflow_id, self.chat_id)
        except FlowiseError:
            return False
        return True


class AsyncFlowiseClient(_ClientBase[httpx.AsyncClient]):
    """Asynchronous Flowise client: the same names as :class:`FlowiseClient`, awaited."""

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying ``httpx.AsyncClient`` (created on first use, per instance)."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.timeout, limits=_LIMITS, headers=_DEFAULT_HEADERS)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None and self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncFlowiseClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def predict(
        self,
        chatflow_id: str,
        question: str | None = None,
        *,
        session_id: str | None = None,
        chat_id: str | None = None,
        history: Sequence[HistoryItem] | None = None,
        override_config: dict[str, Any] | None = None,
        uploads: Sequence[Upload | Mapping[str, Any]] | None = None,
        form: dict[str, Any] | None = None,
        human_input: HumanInput | dict[str, Any] | None = None,
        lead_email: str | None = None,
        action: dict[str, Any] | None = None,
        extra_body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> Prediction:
        """Run a prediction without streaming and return the complete result."""
        request, state = self._prediction(
            chatflow_id, question, streaming=False, session_id=session_id, chat_id=chat_id, history=history,
            override_config=override_config, uploads=uploads, form=form, human_input=human_input,
            lead_email=lead_email, action=action, extra_body=extra_body, headers=headers, timeout=timeout,
        )  # fmt: skip
        return await AsyncFlowiseStream(self, request, state).until_done()

    def stream(
        self,
        chatflow_id: str,
        question: str | None = None,
        *,
        session_id: str | None = None,
        chat_id: str | None = None,
        history: Sequence[HistoryItem] | None = None,
        override_config: dict[str, Any] | None = None,
        uploads: Sequence[Upload | Mapping[str, Any]] | None = None,
        form: dict[str, Any] | None = None,
        human_input: HumanInput | dict[str, Any] | None = None,
        lead_email: str | None = None,
        action: dict[str, Any] | None = None,
        extra_body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> AsyncFlowiseStream:
        """Start a streaming prediction: ``async for`` over the returned stream for typed events."""
        request, state = self._prediction(
            chatflow_id, question, streaming=True, session_id=session_id, chat_id=chat_id, history=history,
            override_config=override_config, uploads=uploads, form=form, human_input=human_input,
            lead_email=lead_email, action=action, extra_body=extra_body, headers=headers, timeout=timeout,
        )  # fmt: skip
        return AsyncFlowiseStream(self, request, state)

    predict.__doc__ = (predict.__doc__ or "") + _PREDICTION_DOC
    stream.__doc__ = (stream.__doc__ or "") + _PREDICTION_DOC

    async def abort(self, chatflow_id: str, chat_id: str) -> dict[str, Any]:
        """Ask Flowise to stop a running prediction (effective for agentflows and multi-agent flows)."""
        return self._abort_result(await self._plain(self._abort_request(chatflow_id, chat_id)))

    async def ping(self) -> bool:
        """``True`` when the server answers ``GET /api/v1/ping``."""
        try:
            return self._is_pong(await self._plain(self._get("ping")))
        except FlowiseError:
            return False

    async def version(self) -> str:
        """The server's Flowise version (``GET /api/v1/version``)."""
        return str(self._json_or_raise(await self._plain(self._get("version"))).get("version", ""))

    async def is_streaming(self, chatflow_id: str) -> bool:
        """Whether Flowise will stream this flow (``GET /api/v1/chatflows-streaming/{id}``)."""
        response = await self._plain(self._get(f"chatflows-streaming/{chatflow_id}"))
        return self._is_streaming(chatflow_id, response)

    async def get_chat_messages(
        self,
        chatflow_id: str,
        *,
        chat_id: str | None = None,
        session_id: str | None = None,
        message_id: str | None = None,
        order: str | None = None,
    ) -> list[dict[str, Any]]:
        """Stored chat messages of a flow (needs an API key with chat-message permission)."""
        request = self._messages_request(chatflow_id, chat_id, session_id, message_id, order)
        return self._messages(await self._plain(request))

    # -- I/O --------------------------------------------------------------------------------------------

    async def _plain(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self.http.send(request)
        except httpx.TransportError as exc:
            raise transport_error(exc) from exc

    async def _send(self, request: httpx.Request, state: StreamState) -> httpx.Response:
        """Send with retries (before the first byte only); return a 2xx response whose body is unread."""
        attempt = 0
        while True:
            try:
                if self._needs_watch(state):
                    response = await self._send_watched(request, state)
                else:
                    response = await self.http.send(request, stream=True)
                self._answering(state)
            except httpx.TransportError as exc:
                delay = self.retry.after_exception(attempt, exc)
                if delay is None:
                    if isinstance(exc, httpx.ReadTimeout) and state.streaming:
                        await self._raise_if_unknown_flow(state.chatflow_id)
                    raise transport_error(exc) from exc
            else:
                if response.status_code < 400:
                    return response
                error = _read_error(response, await response.aread())
                delay = self.retry.after_status(attempt, response.status_code, _retry_after(error))
                if delay is None:
                    raise error
            await asyncio.sleep(delay)
            attempt += 1

    async def _send_watched(self, request: httpx.Request, state: StreamState) -> httpx.Response:
        task = asyncio.ensure_future(self.http.send(request, stream=True))
        try:
            done, _ = await asyncio.wait((task,), timeout=self.diagnose_after)
            if not done:
                await self._raise_if_unknown_flow(state.chatflow_id)
            return await task
        except BaseException:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            raise

    async def _raise_if_unknown_flow(self, chatflow_id: str) -> None:
        try:
            response = await self.http.send(self._probe_request(chatflow_id))
        except httpx.TransportError:
            return
        error = error_from_probe(chatflow_id, response.status_code, response.content)
        if error is not None:
            raise error

    async def _recover(self, state: StreamState) -> list[FlowiseEvent]:
        request = self._recovery_request(state)
        try:
            rows = self._messages(await self._plain(request))
        except FlowiseError as exc:
            raise state.lost_answer_error(f"recovering it failed: {exc}") from exc
        return state.recovered_events(rows)


def _read_error(response: httpx.Response, content: bytes) -> FlowiseAPIError:
    return error_from_response(response.status_code, content, dict(response.headers))


def _retry_after(error: FlowiseAPIError) -> float | None:
    return getattr(error, "retry_after", None)


def _close_response(future: concurrent.futures.Future[httpx.Response]) -> None:
    with contextlib.suppress(BaseException):
        future.result().close()
