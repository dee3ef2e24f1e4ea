"""``FlowiseClient`` and ``AsyncFlowiseClient``: the only code that does HTTP.

Both are thin shells over httpx: every decision (request, ids, deadline, response kind, retries, decoding,
folding, how a stream ended) is made by the I/O-free code in ``exchange.py``, so sync and async behave
identically. The streams themselves live in ``streams.py``; stopping a call from anywhere in ``_control.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, Literal, TypedDict, TypeVar, overload

import httpx
from pydantic import SecretStr
from typing_extensions import Unpack

from ._control import CURRENT_CALL, CallControl, janitor
from ._limiter import AsyncLimiter, Limiter, LoopBudget
from ._transport import AsyncShardedTransport, ShardedTransport
from .chats import ChatLease, lease
from .discovery import FlowInfo, parse_flow, parse_flow_list, prediction_refusal, validate_form
from .errors import (
    MAX_BODY_BYTES,
    BadRequestError,
    FlowiseError,
    FlowiseProtocolError,
    FlowiseTimeoutError,
    error_from_probe,
    error_from_response,
    parse_retry_after,
)
from .events import FlowiseEvent
from .exchange import (
    DEFAULT_TIMEOUT,
    CheckReason,
    Deadline,
    RetryPolicy,
    StreamState,
    auth_headers,
    build_prediction_request,
    checked_headers,
    encode_body,
    path_segment,
    resolve_api_key,
    resolve_base_url,
    resolve_credentials,
    transport_error,
    unexpected_body_error,
)
from .hitl import Interrupt, human_input_body
from .models import HistoryItem, HumanInput, Prediction, PredictionRequest, Upload
from .sse import DEFAULT_MAX_EVENT_SIZE
from .streams import ABORT_DEADLINE, AsyncFlowiseStream, FlowiseStream, Stopped

__all__ = ["AsyncFlowiseClient", "AsyncFlowiseStream", "FlowiseClient", "FlowiseStream", "PredictionOptions"]

_H = TypeVar("_H", httpx.Client, httpx.AsyncClient)
_PROBE_TIMEOUT = httpx.Timeout(10.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=64)
"""At most 1,000 connections; more concurrent calls wait in a FIFO queue in front of the pool."""
_DEFAULT_HEADERS = {"Accept-Encoding": "identity"}  # an SSE stream must never sit in a compressor's buffer
_NO_RELEASE: Callable[[], None] = lambda: None  # noqa: E731
_STORED_ROW_WAITS = (0.25, 0.5, 1.0, None)  # Flowise may store the message just after it sent `end`


class PredictionOptions(TypedDict, total=False):
    """Per-call options of ``predict`` and ``stream`` (declared once, for both clients).

    Attributes:
        session_id: server-side memory session (sent as ``overrideConfig.sessionId``).
        chat_id: conversation id; generated when neither it nor ``session_id`` is given. While a call runs, its
            chat (``chat_id``, else ``session_id``) is leased: a concurrent call of this process asking for the
            same chat on the same server runs on a fresh chat id instead (``ChatIdInUseWarning``).
        history: earlier turns (``ChatTurn`` or ``{"role", "content"}`` dicts), sent as Flowise ``history``.
        override_config: node overrides (must be enabled in the flow's API configuration).
        uploads: ``Upload`` objects or dicts (base64 data URI or URL).
        form: agentflow v2 form inputs.
        human_input: resume a stopped agentflow.
        lead_email: stored on the chat message.
        action: a sequential-agent action to answer.
        extra_body: extra top-level JSON keys.
        headers: extra HTTP headers.
        timeout: per-call httpx timeout (``None``: the client's).
        deadline: seconds for the whole call, stream included (absent: the client's; ``None``: none).
    """

    session_id: str | None
    chat_id: str | None
    history: Sequence[HistoryItem] | None
    override_config: dict[str, Any] | None
    uploads: Sequence[Upload | Mapping[str, Any]] | None
    form: dict[str, Any] | None
    human_input: HumanInput | dict[str, Any] | None
    lead_email: str | None
    action: dict[str, Any] | None
    extra_body: dict[str, Any] | None
    headers: Mapping[str, str] | None
    timeout: float | httpx.Timeout | None
    deadline: float | None


_BODY_KEYS = ("history", "override_config", "uploads", "form", "human_input", "lead_email", "action", "extra_body")


class _ClientBase(Generic[_H]):
    """Configuration and the I/O-free parts both clients share.

    Args:
        base_url: the server root (default ``FLOWISE_BASE_URL``, else ``http://localhost:3000``); a
            ``user:password@`` in it becomes HTTP Basic auth and is never shown.
        api_key: the Flowise API key (default ``FLOWISE_API_KEY``), sent as a bearer token; surrounding
            whitespace is stripped, a key with a control character inside is refused.
        timeout: httpx timeout (default: 60 s reads, which outlast Flowise's 30 s heartbeat; 10 s connect).
        deadline: default seconds for a whole call (connect, retries, waits and the entire stream); a missed
            deadline raises ``FlowiseTimeoutError`` with the partial answer. ``None``: no deadline.
        max_retries: retries of connect errors and 429/502/503/504, before the first byte only.
        max_retry_after: the longest ``Retry-After`` slept (a longer one raises ``RateLimitError`` at once).
        headers: extra headers on every request.
        http_client: your own httpx client (you close it); cancel and deadline then wake a silent read only
            at its read timeout.
        limits: connection limits of the client built here; at most ``max_connections`` calls are in flight,
            the rest wait first-in first-out (bounded by the deadline only: waiting there is load, not a fault).
        max_event_size: the largest single event (or JSON reply) accepted, in bytes (default 64 MiB).
        diagnose_after: seconds without response headers before asking whether a streamed flow exists at all.
        recover_lost_answers: fetch an answer Flowise stored but did not stream (needs an API key).
        verify_answers: compare a streamed answer with the one Flowise stored (one request at the end, needs an
            API key): ``True`` for every stream; ``"auto"`` (default) only where a stream shows a sign of loss (no
            token at all, or a run that restarted: a queue-mode job redelivered after its worker died), so it
            costs nothing on a sound stream; ``False`` never (a lost answer is still recovered).
        on_answer_mismatch: ``"recover"`` (default): the stored answer wins (the missing tail is streamed as a
            token, or a ``CorrectionEvent`` replaces the text; ``result.recovered`` is ``True``); ``"raise"``:
            ``AnswerMismatchError`` with the streamed ``partial`` and the ``stored_text``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        deadline: float | None = None,
        max_retries: int = 2,
        max_retry_after: float = 30.0,
        headers: Mapping[str, str] | None = None,
        http_client: _H | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        diagnose_after: float | None = 5.0,
        recover_lost_answers: bool = True,
        verify_answers: bool | Literal["auto"] = "auto",
        on_answer_mismatch: Literal["recover", "raise"] = "recover",
    ) -> None:
        self.base_url = resolve_base_url(base_url)
        self.api_key: SecretStr | None = resolve_api_key(api_key)
        self._basic = resolve_credentials(base_url)
        self._auth = auth_headers(self.api_key, self._basic)
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        Deadline(deadline)  # validate now
        self.deadline = deadline
        self.retry = RetryPolicy(max_retries, max_retry_after=max_retry_after)
        self.headers = checked_headers(headers)
        self.limits = limits
        if max_event_size < 1:
            raise ValueError("max_event_size must be positive")
        self.max_event_size = max_event_size
        self.diagnose_after = diagnose_after
        self.recover_lost_answers = recover_lost_answers
        if verify_answers not in (True, False, "auto") or on_answer_mismatch not in ("recover", "raise"):
            raise ValueError("verify_answers is True, False or 'auto'; on_answer_mismatch is 'recover' or 'raise'")
        if verify_answers is True and self.api_key is None:
            raise ValueError("verify_answers=True reads the stored message: it needs an api_key")
        self.verify_answers = verify_answers
        self.on_answer_mismatch = on_answer_mismatch
        self._http: _H | None = http_client
        self._owns_http = http_client is None
        self._http_lock = threading.Lock()
        self._answered: set[str] = set()  # flows that answered 2xx: no hang watch needed any more
        self._budget = LoopBudget()  # async only: fairness between many streams on one loop
        self._flows: dict[str, FlowInfo] = {}  # what list_flows/get_flow learned: refusals and forms checked locally

    def __repr__(self) -> str:
        key = "SecretStr('**********')" if self.api_key is not None else "None"
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={key})"

    # -- decisions shared by both clients ---------------------------------------------------------------

    def _needs_watch(self, state: StreamState) -> bool:
        """Watch for Flowise's silent hang until a flow has answered once (then it exists: send directly)."""
        return state.streaming and self.diagnose_after is not None and state.chatflow_id not in self._answered

    def _answering(self, state: StreamState) -> None:
        if len(self._answered) < 4096:
            self._answered.add(state.chatflow_id)

    def _deadline(self, options: Mapping[str, Any]) -> Deadline:
        return Deadline(options.get("deadline", self.deadline))

    def _prediction(
        self, chatflow_id: str, question: str | None, streaming: bool, options: PredictionOptions, resume: bool = False
    ) -> tuple[Callable[[], httpx.Request], StreamState, Deadline, ChatLease]:
        """Validate everything now (bad input raises here, before any request), then lease the call's chat (see
        ``chats.py``); the HTTP request is built later. The lease goes to the stream, which frees it when the call
        ends."""
        unknown = set(options) - set(PredictionOptions.__annotations__)
        if unknown:
            raise TypeError(f"unexpected keyword argument(s) {sorted(unknown)}")
        fields = {key: options.get(key) for key in _BODY_KEYS}
        info = self._flows.get(chatflow_id)
        if info is not None:
            refusal = prediction_refusal(info)
            if refusal is not None:
                raise BadRequestError(refusal)
            form = options.get("form")
            if info.form_fields and isinstance(form, Mapping):
                fields["form"] = validate_form(info.form_fields, form)  # ValueError names the bad field
        merged = {**self.headers, **checked_headers(options.get("headers"))}
        timeout = options.get("timeout")
        per_call = timeout if timeout is None or isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        path_segment(chatflow_id, "chatflow id")
        deadline = self._deadline(options)
        # Flowise only reveals a generated chatId at the very end of a stream; choosing it here (when neither id
        # is given) means the caller can abort a running stream and continue the conversation.
        held = lease(self.base_url, options.get("chat_id"), options.get("session_id"), resume=resume)
        chat_id, session_id = held.chat_id, held.session_id
        try:
            request = PredictionRequest(
                question=question, streaming=streaming, chat_id=chat_id, session_id=session_id, **fields
            )
            body = encode_body(request)
        except BaseException:
            held.release()
            raise

        def build() -> httpx.Request:
            return build_prediction_request(
                self.base_url, chatflow_id, body, streaming, auth=self._auth, headers=merged, timeout=per_call
            )

        state = StreamState(chatflow_id, chat_id or session_id, streaming=streaming, max_event_size=self.max_event_size)
        state.acc.sent_ids = (chat_id, session_id)
        return build, state, deadline, held

    def _url(self, path: str) -> str:
        return f"{self.base_url}/api/v1/{path}"

    def _learn(self, info: FlowInfo | None) -> FlowInfo | None:
        if info is not None and (info.id in self._flows or len(self._flows) < 4096):
            self._flows[info.id] = info
        return info

    def _flow_requests(self, chatflow_id: str) -> tuple[httpx.Request, httpx.Request]:
        segment = path_segment(chatflow_id, "chatflow id")
        return self._get(f"chatflows-streaming/{segment}"), self._get(f"chatflows-uploads/{segment}")

    def _detailed(self, info: FlowInfo, streaming: httpx.Response | None, uploads: httpx.Response | None) -> FlowInfo:
        def body(response: httpx.Response | None) -> Any:
            if response is None or response.status_code >= 400:
                return None
            with contextlib.suppress(ValueError):
                return response.json()
            return None

        return info.with_details(streaming=body(streaming), uploads=body(uploads))

    def _resume_options(
        self, interrupt: Interrupt | None, approve: bool, feedback: str | None, options: PredictionOptions
    ) -> tuple[str, PredictionOptions]:
        """The question and options that answer a stopped run (``Interrupt.resume_fields``, or Flowise's default)."""
        resumed = dict(options)
        if interrupt is not None and not (resumed.get("chat_id") or resumed.get("session_id")):
            resumed["chat_id"] = interrupt.chat_id  # the stop's own way: by chat id, by session, or both
            resumed["session_id"] = interrupt.session_id
            fields = interrupt.resume_fields(approve=approve, feedback=feedback)
        else:
            fields = {
                "question": feedback or ("Proceed" if approve else "Reject"),
                "humanInput": human_input_body(None, approve=approve, feedback=feedback),
            }
        if not resumed.get("chat_id") and not resumed.get("session_id"):
            raise ValueError("resume needs the stopped run's chat_id or session_id (or its interrupt)")
        if "humanInput" in fields:
            resumed["human_input"] = fields["humanInput"]
        if "action" in fields:
            resumed["action"] = fields["action"]
        return str(fields["question"]), resumed  # type: ignore[return-value]

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Request:
        return httpx.Request("GET", self._url(path), params=params, headers={**self._auth, **self.headers})

    def _timed(self, request: httpx.Request, deadline: Deadline, base: httpx.Timeout) -> None:
        """Set the request's timeouts: its own (or ``base``), clipped to what is left of the deadline."""
        own = request.extensions.get("timeout")
        timeout = httpx.Timeout(**own) if own else base
        request.extensions["timeout"] = deadline.clip(timeout).as_dict()

    def _abort_request(self, chatflow_id: str, chat_id: str) -> httpx.Request:
        flow, chat = path_segment(chatflow_id, "chatflow id"), path_segment(chat_id, "chat id")
        return httpx.Request(
            "PUT", self._url(f"chatmessage/abort/{flow}/{chat}"), headers={**self._auth, **self.headers}
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
        return self._get(
            f"chatmessage/{path_segment(chatflow_id, 'chatflow id')}", {k: v for k, v in params.items() if v}
        )

    def _messages(self, response: httpx.Response) -> list[dict[str, Any]]:
        result = self._json_or_raise(response)
        return [r for r in result if isinstance(r, dict)] if isinstance(result, list) else []

    def _probe_request(self, chatflow_id: str) -> httpx.Request:
        """``GET /chatflows-streaming/{id}``, with its own short timeout: the diagnosis of a silent hang."""
        request = self._get(f"chatflows-streaming/{path_segment(chatflow_id, 'chatflow id')}")
        request.extensions["timeout"] = _PROBE_TIMEOUT.as_dict()
        return request

    def _check_request(self, state: StreamState) -> tuple[CheckReason, httpx.Request] | None:
        """At ``end``: the stored-answer lookup due (lost, restarted, or verified answers), or the error to raise
        when it is due but cannot be made (no API key)."""
        reason = state.check_reason(self.verify_answers, can_look_up=self.api_key is not None)
        if reason is None or (reason == "lost" and not self.recover_lost_answers):
            if reason == "lost":
                raise state.lost_answer_error("recover_lost_answers is off")
            return None
        if self.api_key is None:
            if reason == "lost":
                raise state.lost_answer_error("set an API key on the client to recover it from the chat-message API")
            raise state.mismatch_error(reason, None, "it cannot be checked without an API key")
        meta = state.acc.metadata
        chat_id = meta.get("chatId") if isinstance(meta.get("chatId"), str) else state.chat_id
        message_id = state.acc.chat_message_id
        return reason, self._messages_request(state.chatflow_id, chat_id, None, message_id, None)

    def _execution_request(self, state: StreamState) -> httpx.Request | None:
        """Flowise streams no ``executionId``; for a run stopped for a human (where the id matters: it is the
        execution a resume continues) look it up, so stream and predict agree. Needs the key; best effort."""
        acc = state.acc
        if self.api_key is None or not acc.streamed or not acc.ended or acc.execution_id is not None:
            return None
        if acc.agent_flow_status != "STOPPED":
            return None
        meta = acc.metadata
        session = meta.get("sessionId") if isinstance(meta.get("sessionId"), str) else state.chat_id
        params = {"agentflowId": state.chatflow_id, "sessionId": session, "state": "STOPPED", "page": 1, "limit": 1}
        return self._get("executions", params)

    @staticmethod
    def _learn_execution(state: StreamState, response: httpx.Response | None) -> None:
        if response is None or response.status_code >= 400:
            return
        with contextlib.suppress(ValueError):
            body = response.json()
            rows = body.get("data") if isinstance(body, dict) else body
            if isinstance(rows, list) and rows and isinstance(rows[0], dict) and isinstance(rows[0].get("id"), str):
                state.acc.execution_id = rows[0]["id"]

    def _check_failed(self, state: StreamState, reason: CheckReason, exc: FlowiseError) -> FlowiseError:
        if reason == "lost":
            return state.lost_answer_error(f"recovering it failed: {exc}")
        if reason == "repeated":
            return state.mismatch_error(reason, None, f"looking up the stored message failed: {exc}")
        return exc

    def _is_streaming(self, chatflow_id: str, response: httpx.Response) -> bool:
        error = error_from_probe(chatflow_id, response.status_code, response.content)  # 500 "not found" -> 404
        if error is not None:
            raise error
        result = self._json_or_raise(response)
        return bool(result.get("isStreaming")) if isinstance(result, dict) else False

    def _json_or_raise(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.content, dict(response.headers))
        try:
            return response.json()
        except (ValueError, RecursionError):
            raise unexpected_body_error(response, response.content) from None

    def _retry_delay(
        self, attempt: int, response: httpx.Response, content: bytes, deadline: Deadline
    ) -> tuple[FlowiseError, float | None]:
        error = error_from_response(response.status_code, content, dict(response.headers))
        retry_after = parse_retry_after(response.headers.get("retry-after"))  # 429 and 503 both may say
        return error, self.retry.after_status(attempt, response.status_code, retry_after, deadline.remaining())

    def _transport_failure(
        self, exc: httpx.TransportError, attempt: int, control: CallControl, deadline: Deadline
    ) -> tuple[BaseException, float | None]:
        if control.stopped:
            return Stopped(), None
        if deadline.passed() or (isinstance(exc, httpx.TimeoutException) and deadline.remaining() == 0.0):
            return deadline.error(exc.request.url), None
        return transport_error(exc), self.retry.after_exception(attempt, exc, deadline.remaining())

    def _pool_timeout(self, request: httpx.Request, deadline: Deadline) -> FlowiseTimeoutError:
        if deadline.passed():
            return deadline.error(request.url)
        return FlowiseTimeoutError(f"timed out waiting for a free connection to {request.url}")


def _bounded(chunks: Any, limit: int) -> tuple[bytes, bool]:
    """Gather at most ``limit`` bytes; ``(content, cut)``."""
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(parts)[:limit], True
    return b"".join(parts), False


class FlowiseClient(_ClientBase[httpx.Client]):
    """Synchronous Flowise client (thread-safe; reuse one per process).

    Example:
        >>> client = FlowiseClient("http://localhost:3000", api_key="...")  # doctest: +SKIP
        >>> client.predict(chatflow_id, "What is Flowise?").text             # doctest: +SKIP
    """

    _limiter: Limiter | None = None

    @property
    def http(self) -> httpx.Client:
        """The underlying ``httpx.Client`` (created once, on first use)."""
        if self._http is None:
            with self._http_lock:
                if self._http is None:
                    transport = ShardedTransport(self.limits)
                    self._http = httpx.Client(timeout=self.timeout, transport=transport, headers=_DEFAULT_HEADERS)
        return self._http

    @property
    def limiter(self) -> Limiter | None:
        if self._limiter is None and self.limits.max_connections is not None:
            with self._http_lock:
                if self._limiter is None:
                    self._limiter = Limiter(self.limits.max_connections)
        return self._limiter

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
        abort_on_cancel: bool = False,
        **options: Unpack[PredictionOptions],
    ) -> Prediction:
        """Run a prediction without streaming and return the complete result (options: ``PredictionOptions``).

        ``abort_on_cancel``: a call left by Ctrl-C (any ``BaseException`` that is not an ``Exception``) also asks
        Flowise to abort the run, in the background; its chat stays leased until the abort was sent.
        """
        build, state, deadline, held = self._prediction(chatflow_id, question, False, options)
        return _finish(FlowiseStream(self, build, state, deadline, lease=held), abort_on_cancel)

    def stream(
        self, chatflow_id: str, question: str | None = None, **options: Unpack[PredictionOptions]
    ) -> FlowiseStream:
        """Start a streaming prediction: iterate the returned stream for typed events.

        One POST with ``streaming: true``; a flow that cannot stream answers JSON, which is delivered as the
        same events, so the consumer never has to care. Options: ``PredictionOptions``.
        """
        build, state, deadline, held = self._prediction(chatflow_id, question, True, options)
        return FlowiseStream(self, build, state, deadline, lease=held)

    @overload
    def abort(
        self, chatflow_id: str, chat_id: str, *, deadline: float | None = ..., wait: Literal[True] = ...
    ) -> dict[str, Any]: ...

    @overload
    def abort(self, chatflow_id: str, chat_id: str, *, deadline: float | None = ..., wait: Literal[False]) -> None: ...

    @overload
    def abort(
        self, chatflow_id: str, chat_id: str, *, deadline: float | None = ..., wait: bool = ...
    ) -> dict[str, Any] | None: ...

    def abort(
        self, chatflow_id: str, chat_id: str, *, deadline: float | None = None, wait: bool = True
    ) -> dict[str, Any] | None:
        """Ask Flowise to stop a running prediction (agentflows stop; a classic chatflow runs on).

        ``wait=False``: return at once; the request (ids checked here) is sent by a short-lived background thread
        within ``deadline`` (default 10 s), and the interpreter waits for it at exit.
        """
        request = self._abort_request(chatflow_id, chat_id)
        if wait:
            return self._abort_result(self._fetch(request, deadline))
        janitor.stop(abort=functools.partial(self._fetch, request, ABORT_DEADLINE if deadline is None else deadline))
        return None

    def ping(self, *, deadline: float | None = None) -> bool:
        """``True`` when the server answers ``GET /api/v1/ping``."""
        try:
            return self._is_pong(self._fetch(self._get("ping"), deadline))
        except FlowiseError:
            return False

    def version(self, *, deadline: float | None = None) -> str:
        """The server's Flowise version (``GET /api/v1/version``)."""
        result = self._json_or_raise(self._fetch(self._get("version"), deadline))
        return str(result.get("version", "")) if isinstance(result, dict) else ""

    def is_streaming(self, chatflow_id: str, *, deadline: float | None = None) -> bool:
        """Whether Flowise will stream this flow (``GET /api/v1/chatflows-streaming/{id}``)."""
        request = self._get(f"chatflows-streaming/{path_segment(chatflow_id, 'chatflow id')}")
        return self._is_streaming(chatflow_id, self._fetch(request, deadline))

    def get_chat_messages(
        self,
        chatflow_id: str,
        *,
        chat_id: str | None = None,
        session_id: str | None = None,
        message_id: str | None = None,
        order: str | None = None,
        deadline: float | None = None,
    ) -> list[dict[str, Any]]:
        """Stored chat messages of a flow (needs an API key with chat-message permission)."""
        request = self._messages_request(chatflow_id, chat_id, session_id, message_id, order)
        return self._messages(self._fetch(request, deadline))

    def list_flows(self, *, details: bool = True, deadline: float | None = None) -> list[FlowInfo]:
        """Every flow of the server (``GET /api/v1/chatflows``; the key needs ``chatflows:view``).

        With ``details`` (default), each flow's ``streaming`` and accepted ``uploads`` are asked too (two small
        requests per flow). What is learned here is remembered: predictions to a webhook or schedule flow then
        fail before any request, and a form flow's ``form=`` is validated against its fields.
        """
        limit = Deadline(deadline)
        flows = parse_flow_list(self._json_or_raise(self._fetch(self._get("chatflows"), limit)))
        if details:
            flows = [self._with_details(info, limit) for info in flows]
        return [info for info in map(self._learn, flows) if info is not None]

    def get_flow(self, chatflow_id: str, *, details: bool = True, deadline: float | None = None) -> FlowInfo:
        """One flow (``GET /api/v1/chatflows/{id}``), as :meth:`list_flows` describes it."""
        limit = Deadline(deadline)
        request = self._get(f"chatflows/{path_segment(chatflow_id, 'chatflow id')}")
        info = parse_flow(self._json_or_raise(self._fetch(request, limit)))
        if info is None:
            raise FlowiseProtocolError(f"GET /api/v1/chatflows/{chatflow_id} did not answer a chatflow")
        if details:
            info = self._with_details(info, limit)
        self._learn(info)
        return info

    def _with_details(self, info: FlowInfo, deadline: Deadline) -> FlowInfo:
        streaming, uploads = (self._try_fetch(r, deadline) for r in self._flow_requests(info.id))
        return self._detailed(info, streaming, uploads)

    def _try_fetch(self, request: httpx.Request, deadline: Deadline) -> httpx.Response | None:
        try:
            return self._fetch(request, deadline)
        except FlowiseError:
            return None

    def resume(
        self,
        chatflow_id: str,
        *,
        approve: bool,
        feedback: str | None = None,
        interrupt: Interrupt | None = None,
        abort_on_cancel: bool = False,
        **options: Unpack[PredictionOptions],
    ) -> Prediction:
        """Answer a run that stopped for a human (``prediction.interrupt``), and return the resumed run.

        Pass the stop's ``interrupt`` (it knows the node, the chat and the session), or the stopped run's
        ``chat_id``/``session_id``: Flowise then resumes that session's last stopped node. ``approve`` is Proceed
        or Reject; ``feedback`` reaches a Human Input node that asks for it. ``abort_on_cancel``: as on
        :meth:`predict`.
        """
        question, resumed = self._resume_options(interrupt, approve, feedback, options)
        build, state, deadline, held = self._prediction(chatflow_id, question, False, resumed, resume=True)
        state.acc.resumed_from = interrupt
        return _finish(FlowiseStream(self, build, state, deadline, lease=held), abort_on_cancel)

    def resume_stream(
        self,
        chatflow_id: str,
        *,
        approve: bool,
        feedback: str | None = None,
        interrupt: Interrupt | None = None,
        **options: Unpack[PredictionOptions],
    ) -> FlowiseStream:
        """:meth:`resume`, streamed."""
        question, resumed = self._resume_options(interrupt, approve, feedback, options)
        build, state, deadline, held = self._prediction(chatflow_id, question, True, resumed, resume=True)
        state.acc.resumed_from = interrupt
        return FlowiseStream(self, build, state, deadline, lease=held)

    # -- I/O --------------------------------------------------------------------------------------------

    def _fetch(self, request: httpx.Request, deadline: float | Deadline | None = None) -> httpx.Response:
        """One plain request (no retries), its body read with a bound, within the deadline."""
        limit = Deadline(deadline) if not isinstance(deadline, Deadline) else deadline
        self._timed(request, limit, self.http.timeout)
        release = self._admit(request, limit)
        try:
            response = self.http.send(request, stream=True)
            try:
                cap = MAX_BODY_BYTES + 1 if response.status_code >= 400 else self.max_event_size
                content, cut = _bounded(response.iter_bytes(), cap)
            finally:
                response.close()
        except httpx.TransportError as exc:
            raise (limit.error(request.url) if limit.passed() else transport_error(exc)) from exc
        finally:
            release()
        if cut and response.status_code < 400:
            raise unexpected_body_error(response, content[:120])
        return httpx.Response(response.status_code, headers=response.headers, content=content, request=request)

    def _admit(self, request: httpx.Request, deadline: Deadline) -> Callable[[], None]:
        limiter = self.limiter
        if limiter is None:
            return _NO_RELEASE
        if not limiter.acquire(deadline.remaining()):  # queueing is load, not a fault: only the deadline bounds it
            raise self._pool_timeout(request, deadline)
        return limiter.release

    def _read_body(self, response: httpx.Response, state: StreamState) -> bytes:
        content, cut = _bounded(response.iter_bytes(), state.max_event_size)
        if cut:
            raise state.protocol_error(f"the JSON reply is larger than {state.max_event_size} bytes")
        return content

    def _send(
        self, request: httpx.Request, state: StreamState, control: CallControl, deadline: Deadline
    ) -> tuple[httpx.Response, Callable[[], None]]:
        """Send with retries (before the first byte only); a 2xx response whose body is unread, and its release."""
        attempt = 0
        while True:
            if control.stopped:
                raise Stopped
            self._timed(request, deadline, self.http.timeout)
            release = self._admit(request, deadline)
            delay: float | None
            try:
                token = CURRENT_CALL.set(control)
                try:
                    if self._needs_watch(state):
                        response = self._send_watched(request, state, control, deadline)
                    else:
                        response = self.http.send(request, stream=True)
                finally:
                    CURRENT_CALL.reset(token)
            except httpx.TransportError as exc:
                release()
                failure, delay = self._transport_failure(exc, attempt, control, deadline)
                if delay is None:
                    if isinstance(exc, httpx.ReadTimeout) and state.streaming and not control.stopped:
                        self._raise_if_unknown_flow(state.chatflow_id, deadline)
                    raise failure from exc
            except BaseException:
                release()
                raise
            else:
                if response.status_code < 400:
                    self._answering(state)
                    return response, release
                try:
                    content, _ = _bounded(response.iter_bytes(), MAX_BODY_BYTES + 1)  # +1: the error sees the cut
                except httpx.TransportError:
                    content = b""
                finally:
                    response.close()
                    release()
                error, delay = self._retry_delay(attempt, response, content, deadline)
                if delay is None:
                    raise error
            _sleep(delay, control)
            attempt += 1

    def _send_watched(
        self, request: httpx.Request, state: StreamState, control: CallControl, deadline: Deadline
    ) -> httpx.Response:
        # Flowise never answers a streaming request for an unknown chatflow. If no headers arrive within
        # `diagnose_after`, ask GET /chatflows-streaming/{id} whether the flow exists, while still waiting.
        # The send runs in a daemon thread (an abandoned one never keeps the process alive); on any way out
        # (unknown flow, Ctrl-C, cancel) its socket is shut down at once, so the pool slot is freed at once.
        future: concurrent.futures.Future[httpx.Response] = concurrent.futures.Future()
        context = contextvars.copy_context()  # carries CURRENT_CALL: the send thread's socket is this call's

        def send() -> None:
            try:
                future.set_result(self.http.send(request, stream=True))
            except BaseException as exc:  # handed to the waiting caller
                future.set_exception(exc)

        threading.Thread(target=context.run, args=(send,), name="flowise-send", daemon=True).start()
        try:
            try:
                return future.result(timeout=self.diagnose_after)
            except concurrent.futures.TimeoutError:
                pass
            self._raise_if_unknown_flow(state.chatflow_id, deadline)
            return future.result()
        except BaseException:
            control.interrupt()
            future.add_done_callback(_close_response)
            raise

    def _raise_if_unknown_flow(self, chatflow_id: str, deadline: Deadline) -> None:
        try:
            response = self._fetch(self._probe_request(chatflow_id), deadline)
        except FlowiseError:
            return
        error = error_from_probe(chatflow_id, response.status_code, response.content)
        if error is not None:
            raise error

    def _check_answer(self, state: StreamState) -> list[FlowiseEvent]:
        """Recover or verify the answer at ``end`` (see ``verify_answers``); the stored row may land a moment late."""
        lookup = self._execution_request(state)
        if lookup is not None:
            self._learn_execution(state, self._try_fetch(lookup, Deadline(10.0)))
        due = self._check_request(state)
        if due is None:
            return []
        reason, request = due
        row = None
        for wait in _STORED_ROW_WAITS:
            try:
                row = state.stored_row(self._messages(self._fetch(request)), reason)
            except FlowiseError as exc:
                raise self._check_failed(state, reason, exc) from exc
            if row is not None or wait is None:
                break
            time.sleep(wait)
        return state.checked_events(reason, row, self.on_answer_mismatch)


class AsyncFlowiseClient(_ClientBase[httpx.AsyncClient]):
    """Asynchronous Flowise client: the same names as :class:`FlowiseClient`, awaited."""

    _limiter: AsyncLimiter | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying ``httpx.AsyncClient`` (created once, on first use)."""
        if self._http is None:
            with self._http_lock:
                if self._http is None:
                    transport = AsyncShardedTransport(self.limits)
                    self._http = httpx.AsyncClient(timeout=self.timeout, transport=transport, headers=_DEFAULT_HEADERS)
        return self._http

    @property
    def limiter(self) -> AsyncLimiter | None:
        if self._limiter is None and self.limits.max_connections is not None:
            self._limiter = AsyncLimiter(self.limits.max_connections)
        return self._limiter

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
        abort_on_cancel: bool = False,
        **options: Unpack[PredictionOptions],
    ) -> Prediction:
        """Run a prediction without streaming and return the complete result (options: ``PredictionOptions``).

        ``abort_on_cancel``: a cancelled call also asks Flowise to abort the run (shielded from a second
        cancellation; see :meth:`AsyncFlowiseStream.cancel`).
        """
        build, state, deadline, held = self._prediction(chatflow_id, question, False, options)
        return await _afinish(AsyncFlowiseStream(self, build, state, deadline, lease=held), abort_on_cancel)

    def stream(
        self, chatflow_id: str, question: str | None = None, **options: Unpack[PredictionOptions]
    ) -> AsyncFlowiseStream:
        """Start a streaming prediction: ``async for`` over the returned stream (options: ``PredictionOptions``)."""
        build, state, deadline, held = self._prediction(chatflow_id, question, True, options)
        return AsyncFlowiseStream(self, build, state, deadline, lease=held)

    async def abort(self, chatflow_id: str, chat_id: str, *, deadline: float | None = None) -> dict[str, Any]:
        """Ask Flowise to stop a running prediction (agentflows stop; a classic chatflow runs on)."""
        return self._abort_result(await self._fetch(self._abort_request(chatflow_id, chat_id), deadline))

    async def ping(self, *, deadline: float | None = None) -> bool:
        """``True`` when the server answers ``GET /api/v1/ping``."""
        try:
            return self._is_pong(await self._fetch(self._get("ping"), deadline))
        except FlowiseError:
            return False

    async def version(self, *, deadline: float | None = None) -> str:
        """The server's Flowise version (``GET /api/v1/version``)."""
        result = self._json_or_raise(await self._fetch(self._get("version"), deadline))
        return str(result.get("version", "")) if isinstance(result, dict) else ""

    async def is_streaming(self, chatflow_id: str, *, deadline: float | None = None) -> bool:
        """Whether Flowise will stream this flow (``GET /api/v1/chatflows-streaming/{id}``)."""
        request = self._get(f"chatflows-streaming/{path_segment(chatflow_id, 'chatflow id')}")
        return self._is_streaming(chatflow_id, await self._fetch(request, deadline))

    async def get_chat_messages(
        self,
        chatflow_id: str,
        *,
        chat_id: str | None = None,
        session_id: str | None = None,
        message_id: str | None = None,
        order: str | None = None,
        deadline: float | None = None,
    ) -> list[dict[str, Any]]:
        """Stored chat messages of a flow (needs an API key with chat-message permission)."""
        request = self._messages_request(chatflow_id, chat_id, session_id, message_id, order)
        return self._messages(await self._fetch(request, deadline))

    async def list_flows(self, *, details: bool = True, deadline: float | None = None) -> list[FlowInfo]:
        """Every flow of the server (see :meth:`FlowiseClient.list_flows`); details are asked concurrently."""
        limit = Deadline(deadline)
        flows = parse_flow_list(self._json_or_raise(await self._fetch(self._get("chatflows"), limit)))
        if details:
            flows = list(await asyncio.gather(*(self._with_details(info, limit) for info in flows)))
        return [info for info in map(self._learn, flows) if info is not None]

    async def get_flow(self, chatflow_id: str, *, details: bool = True, deadline: float | None = None) -> FlowInfo:
        """One flow (``GET /api/v1/chatflows/{id}``), as :meth:`list_flows` describes it."""
        limit = Deadline(deadline)
        request = self._get(f"chatflows/{path_segment(chatflow_id, 'chatflow id')}")
        info = parse_flow(self._json_or_raise(await self._fetch(request, limit)))
        if info is None:
            raise FlowiseProtocolError(f"GET /api/v1/chatflows/{chatflow_id} did not answer a chatflow")
        if details:
            info = await self._with_details(info, limit)
        self._learn(info)
        return info

    async def _with_details(self, info: FlowInfo, deadline: Deadline) -> FlowInfo:
        streaming, uploads = await asyncio.gather(*(self._try_fetch(r, deadline) for r in self._flow_requests(info.id)))
        return self._detailed(info, streaming, uploads)

    async def _try_fetch(self, request: httpx.Request, deadline: Deadline) -> httpx.Response | None:
        try:
            return await self._fetch(request, deadline)
        except FlowiseError:
            return None

    async def resume(
        self,
        chatflow_id: str,
        *,
        approve: bool,
        feedback: str | None = None,
        interrupt: Interrupt | None = None,
        abort_on_cancel: bool = False,
        **options: Unpack[PredictionOptions],
    ) -> Prediction:
        """Answer a run that stopped for a human (see :meth:`FlowiseClient.resume`)."""
        question, resumed = self._resume_options(interrupt, approve, feedback, options)
        build, state, deadline, held = self._prediction(chatflow_id, question, False, resumed, resume=True)
        state.acc.resumed_from = interrupt
        return await _afinish(AsyncFlowiseStream(self, build, state, deadline, lease=held), abort_on_cancel)

    def resume_stream(
        self,
        chatflow_id: str,
        *,
        approve: bool,
        feedback: str | None = None,
        interrupt: Interrupt | None = None,
        **options: Unpack[PredictionOptions],
    ) -> AsyncFlowiseStream:
        """:meth:`resume`, streamed (``async for``)."""
        question, resumed = self._resume_options(interrupt, approve, feedback, options)
        build, state, deadline, held = self._prediction(chatflow_id, question, True, resumed, resume=True)
        state.acc.resumed_from = interrupt
        return AsyncFlowiseStream(self, build, state, deadline, lease=held)

    # -- I/O --------------------------------------------------------------------------------------------

    async def _fetch(self, request: httpx.Request, deadline: float | Deadline | None = None) -> httpx.Response:
        """One plain request (no retries), its body read with a bound, within the deadline."""
        limit = Deadline(deadline) if not isinstance(deadline, Deadline) else deadline
        self._timed(request, limit, self.http.timeout)
        release = await self._admit(request, limit)
        try:
            response = await self.http.send(request, stream=True)
            try:
                cap = MAX_BODY_BYTES + 1 if response.status_code >= 400 else self.max_event_size
                content, cut = await _abounded(response.aiter_bytes(), cap)
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            raise (limit.error(request.url) if limit.passed() else transport_error(exc)) from exc
        finally:
            release()
        if cut and response.status_code < 400:
            raise unexpected_body_error(response, content[:120])
        return httpx.Response(response.status_code, headers=response.headers, content=content, request=request)

    async def _admit(self, request: httpx.Request, deadline: Deadline) -> Callable[[], None]:
        limiter = self.limiter
        if limiter is None:
            return _NO_RELEASE
        if not await limiter.acquire(deadline.remaining()):  # only the deadline bounds the queue
            raise self._pool_timeout(request, deadline)
        return limiter.release

    async def _read_body(self, response: httpx.Response, state: StreamState) -> bytes:
        content, cut = await _abounded(response.aiter_bytes(), state.max_event_size)
        if cut:
            raise state.protocol_error(f"the JSON reply is larger than {state.max_event_size} bytes")
        return content

    async def _send(
        self, request: httpx.Request, state: StreamState, control: CallControl, deadline: Deadline
    ) -> tuple[httpx.Response, Callable[[], None]]:
        """Send with retries (before the first byte only); a 2xx response whose body is unread, and its release."""
        attempt = 0
        while True:
            if control.stopped:
                raise Stopped
            self._timed(request, deadline, self.http.timeout)
            release = await self._admit(request, deadline)
            delay: float | None
            try:
                token = CURRENT_CALL.set(control)
                try:
                    if self._needs_watch(state):
                        response = await self._send_watched(request, state, control, deadline)
                    else:
                        response = await self.http.send(request, stream=True)
                finally:
                    CURRENT_CALL.reset(token)
            except httpx.TransportError as exc:
                release()
                failure, delay = self._transport_failure(exc, attempt, control, deadline)
                if delay is None:
                    if isinstance(exc, httpx.ReadTimeout) and state.streaming and not control.stopped:
                        await self._raise_if_unknown_flow(state.chatflow_id, deadline)
                    raise failure from exc
            except BaseException:
                release()
                raise
            else:
                if response.status_code < 400:
                    self._answering(state)
                    return response, release
                try:
                    content, _ = await _abounded(response.aiter_bytes(), MAX_BODY_BYTES + 1)
                except httpx.TransportError:
                    content = b""
                finally:
                    await response.aclose()
                    release()
                error, delay = self._retry_delay(attempt, response, content, deadline)
                if delay is None:
                    raise error
            await _asleep(delay, control)
            attempt += 1

    async def _send_watched(
        self, request: httpx.Request, state: StreamState, control: CallControl, deadline: Deadline
    ) -> httpx.Response:
        task = asyncio.ensure_future(self.http.send(request, stream=True))
        try:
            done, _ = await asyncio.wait((task,), timeout=self.diagnose_after)
            if not done:
                await self._raise_if_unknown_flow(state.chatflow_id, deadline)
            return await task
        except BaseException:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            raise

    async def _raise_if_unknown_flow(self, chatflow_id: str, deadline: Deadline) -> None:
        try:
            response = await self._fetch(self._probe_request(chatflow_id), deadline)
        except FlowiseError:
            return
        error = error_from_probe(chatflow_id, response.status_code, response.content)
        if error is not None:
            raise error

    async def _check_answer(self, state: StreamState) -> list[FlowiseEvent]:
        """Recover or verify the answer at ``end`` (see ``verify_answers``)."""
        lookup = self._execution_request(state)
        if lookup is not None:
            self._learn_execution(state, await self._try_fetch(lookup, Deadline(10.0)))
        due = self._check_request(state)
        if due is None:
            return []
        reason, request = due
        row = None
        for wait in _STORED_ROW_WAITS:
            try:
                row = state.stored_row(self._messages(await self._fetch(request)), reason)
            except FlowiseError as exc:
                raise self._check_failed(state, reason, exc) from exc
            if row is not None or wait is None:
                break
            await asyncio.sleep(wait)
        return state.checked_events(reason, row, self.on_answer_mismatch)


async def _abounded(chunks: Any, limit: int) -> tuple[bytes, bool]:
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(parts)[:limit], True
    return b"".join(parts), False


def _sleep(delay: float, control: CallControl) -> None:
    """A retry wait that a cancel or the deadline cuts short."""
    if control.wait(delay):
        raise Stopped


async def _asleep(delay: float, control: CallControl) -> None:
    until = time.monotonic() + delay
    while not control.stopped:
        left = until - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(left, 0.05))
    raise Stopped


def _close_response(future: concurrent.futures.Future[httpx.Response]) -> None:
    with contextlib.suppress(BaseException):
        future.result().close()


def _finish(stream: FlowiseStream, abort_on_cancel: bool) -> Prediction:
    """A non-streamed call, to its end; left by Ctrl-C, it is stopped in the background (aborted if asked)."""
    try:
        return stream.until_done()
    except BaseException as exc:
        if abort_on_cancel and not isinstance(exc, Exception):
            stream.cancel(wait=False)
        else:
            stream.close(wait=False)
        raise


async def _afinish(stream: AsyncFlowiseStream, abort_on_cancel: bool) -> Prediction:
    """The async twin of :func:`_finish`: a cancelled call is closed, and aborted if asked (best effort)."""
    try:
        return await stream.until_done()
    except BaseException as exc:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await (stream.cancel() if abort_on_cancel and not isinstance(exc, Exception) else stream.aclose())
        raise
