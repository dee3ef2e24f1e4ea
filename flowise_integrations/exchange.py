"""The I/O-free half of a prediction, shared by the sync and async clients.

Building the request, reading the response's kind, the retry policy, decoding frames to events, folding them,
and deciding how a stream ended all live here; ``client.py`` only moves bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from ._version import __version__
from .accumulator import PredictionAccumulator, events_from_json
from .errors import (
    FlowiseConnectionError,
    FlowiseError,
    FlowiseProtocolError,
    FlowiseTimeoutError,
    IncompleteStreamError,
    LostAnswerError,
    error_from_event,
)
from .events import (
    AgentReasoningEvent,
    ArtifactsEvent,
    FileAnnotationsEvent,
    FlowiseEvent,
    MalformedEvent,
    SourceDocumentsEvent,
    TokenEvent,
    UsedToolsEvent,
    decode_event,
)
from .models import Prediction, PredictionRequest
from .sse import SSEDecoder

__all__ = [
    "DEFAULT_TIMEOUT",
    "RetryPolicy",
    "StreamState",
    "build_prediction_request",
    "normalize_base_url",
    "resolve_api_key",
    "resolve_base_url",
    "response_kind",
    "transport_error",
]

DEFAULT_BASE_URL = "http://localhost:3000"
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
"""Reads may wait 60 s: more than twice Flowise's 30 s heartbeat, so a slow node never times out a live stream."""
USER_AGENT = f"flowise-integrations/{__version__}"
RETRYABLE_STATUS = frozenset({429, 502, 503, 504})

_loads = json.loads


def normalize_base_url(url: str) -> str:
    """``http://host:3000/`` and ``http://host:3000/api/v1`` both become ``http://host:3000``."""
    url = url.strip().rstrip("/")
    if url.endswith("/api/v1"):
        url = url[: -len("/api/v1")]
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {url!r}")
    return url


def resolve_base_url(base_url: str | None) -> str:
    """The explicit URL, else ``FLOWISE_BASE_URL``, else ``http://localhost:3000``."""
    return normalize_base_url(base_url or os.environ.get("FLOWISE_BASE_URL") or DEFAULT_BASE_URL)


def resolve_api_key(api_key: str | SecretStr | None) -> SecretStr | None:
    """The explicit key, else ``FLOWISE_API_KEY``; always a ``SecretStr`` (never printed)."""
    if isinstance(api_key, SecretStr):
        return api_key if api_key.get_secret_value() else None
    value = api_key if api_key is not None else os.environ.get("FLOWISE_API_KEY")
    return SecretStr(value) if value else None


def auth_headers(api_key: SecretStr | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key.get_secret_value()}"
    return headers


def build_prediction_request(
    base_url: str,
    chatflow_id: str,
    request: PredictionRequest,
    *,
    api_key: SecretStr | None,
    headers: dict[str, str] | None = None,
    timeout: httpx.Timeout | None = None,
) -> httpx.Request:
    """The one POST of a prediction."""
    if not chatflow_id or "/" in chatflow_id:
        raise ValueError(f"invalid chatflow id {chatflow_id!r}")
    all_headers = auth_headers(api_key)
    all_headers["Accept"] = "text/event-stream, application/json" if request.streaming else "application/json"
    if headers:
        all_headers.update(headers)
    extensions = {"timeout": timeout.as_dict()} if timeout is not None else None
    return httpx.Request(
        "POST",
        f"{base_url}/api/v1/prediction/{chatflow_id}",
        json=request.to_body(),
        headers=all_headers,
        extensions=extensions,
    )


ResponseKind = Literal["sse", "json", "html", "other"]


def response_kind(response: httpx.Response) -> ResponseKind:
    """How to read a 2xx response: by its Content-Type, never by what was asked for."""
    content_type = response.headers.get("content-type", "").lower()
    if "text/event-stream" in content_type:
        return "sse"
    if "json" in content_type:
        return "json"
    if "text/html" in content_type:
        return "html"
    return "other"


def unexpected_body_error(response: httpx.Response, content: bytes) -> FlowiseProtocolError:
    """A 2xx that is neither SSE nor a JSON object: usually a wrong base URL hitting Flowise's UI fallback."""
    kind = response.headers.get("content-type", "no content type")
    snippet = content[:120].decode("utf-8", errors="replace").strip()
    if response_kind(response) == "html":
        hint = (
            "Flowise serves its web UI for unknown routes: check that base_url is the server root "
            "(e.g. http://localhost:3000) and that this really is a Flowise server"
        )
    else:
        hint = "expected text/event-stream or a JSON object"
    return FlowiseProtocolError(
        f"unexpected {response.status_code} response ({kind}) from {response.request.url}: {hint}. "
        f"Body starts: {snippet!r}"
    )


def transport_error(exc: httpx.TransportError, *, partial: Prediction | None = None) -> FlowiseError:
    """Map an httpx transport failure to our tree (the URL is kept, credentials never are)."""
    url = ""
    with contextlib.suppress(RuntimeError):  # no request attached
        url = str(exc.request.url)
    if isinstance(exc, httpx.TimeoutException):
        phase = {
            httpx.ConnectTimeout: "connecting to",
            httpx.ReadTimeout: "waiting for data from",
            httpx.WriteTimeout: "sending to",
            httpx.PoolTimeout: "waiting for a free connection to",
        }.get(type(exc), "talking to")
        return FlowiseTimeoutError(f"timed out {phase} {url}", partial=partial)
    if partial is not None:
        return IncompleteStreamError(
            f"the connection to {url} broke mid-stream ({type(exc).__name__}: {exc}); "
            f"{len(partial.text)} characters of the answer were received",
            partial=partial,
        )
    return FlowiseConnectionError(f"cannot reach {url}: {type(exc).__name__}: {exc}")


class RetryPolicy:
    """Exponential backoff with full jitter, before the first byte of a response only.

    Retries connect errors (the request never reached the server) and 429/502/503/504 (honouring
    ``Retry-After``); never anything once a response body has started.
    """

    def __init__(self, max_retries: int = 2, *, initial: float = 0.5, maximum: float = 8.0) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.max_retries = max_retries
        self.initial = initial
        self.maximum = maximum

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.maximum, self.initial * 2**attempt))

    def after_exception(self, attempt: int, exc: httpx.TransportError) -> float | None:
        """Seconds to wait before retry ``attempt + 1``, or ``None`` to give up."""
        if attempt >= self.max_retries or not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return None
        return self._backoff(attempt)

    def after_status(self, attempt: int, status_code: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retrying a retryable status, or ``None`` to give up."""
        if attempt >= self.max_retries or status_code not in RETRYABLE_STATUS:
            return None
        if retry_after is not None:
            return min(retry_after, 60.0)
        return self._backoff(attempt)


class StreamState:
    """One prediction's decoding and folding, fed bytes by either client."""

    __slots__ = ("acc", "chat_id", "chatflow_id", "decoder", "streaming")

    def __init__(self, chatflow_id: str, chat_id: str | None, *, streaming: bool) -> None:
        self.chatflow_id = chatflow_id
        self.chat_id = chat_id
        self.streaming = streaming  # what was asked for; the response decides what is delivered
        self.acc = PredictionAccumulator(chatflow_id=chatflow_id, streamed=False)
        self.decoder = SSEDecoder()

    def start(self, response: httpx.Response) -> ResponseKind:
        """Note how the (2xx) response will be read."""
        kind = response_kind(response)
        self.acc.streamed = kind == "sse"
        return kind

    def feed(self, chunk: bytes) -> list[FlowiseEvent]:
        """Decode an SSE chunk into folded events."""
        frames = self.decoder.feed(chunk)
        return self._events(frames) if frames else []

    def eof(self) -> list[FlowiseEvent]:
        """The server closed the body."""
        frames = self.decoder.flush()
        return self._events(frames) if frames else []

    def _events(self, frames: list[Any]) -> list[FlowiseEvent]:
        out: list[FlowiseEvent] = []
        add = self.acc.add
        for frame in frames:
            data = frame[1]
            try:  # json.loads(bytes) would detect the encoding in Python: decoding first is 3x faster
                event = decode_event(_loads(data.decode()), data)
            except ValueError:  # JSONDecodeError, or invalid UTF-8 (UnicodeDecodeError)
                event = _lenient(data)
            add(event)
            out.append(event)
        return out

    def feed_json(self, response: httpx.Response, content: bytes) -> list[FlowiseEvent]:
        """A JSON reply, delivered as the events a stream would have carried."""
        try:
            body = _loads(content)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise unexpected_body_error(response, content)
        self.acc.raw = body
        events = events_from_json(body)
        for event in events:
            self.acc.add(event)
        return events

    @property
    def result(self) -> Prediction:
        return self.acc.prediction()

    def lost_answer(self) -> bool:
        """Flowise's queue-mode bug: ``metadata`` + ``end`` and nothing else, although the answer was stored."""
        acc = self.acc
        return acc.ended and acc.error is None and acc.content_events == 0 and not acc.saw_start

    def lost_answer_error(self, why: str) -> LostAnswerError:
        return LostAnswerError(
            f"Flowise ended the stream without sending the answer (chatMessageId "
            f"{self.acc.chat_message_id}; a known Flowise streaming bug): {why}",
            partial=self.result,
        )

    def recovered_events(self, rows: Any) -> list[FlowiseEvent]:
        """Events rebuilt from the stored chat message (``GET /chatmessage``), folded in."""
        message_id = self.acc.chat_message_id
        rows = rows if isinstance(rows, list) else []
        match = [r for r in rows if isinstance(r, dict) and r.get("role") == "apiMessage"]
        exact = [r for r in match if r.get("id") == message_id]
        candidates = exact or match[-1:]
        if not candidates:
            raise self.lost_answer_error("the stored message could not be found either")
        row = candidates[0]
        events: list[FlowiseEvent] = [TokenEvent(str(row.get("content") or ""))]
        for key, cls in (
            ("sourceDocuments", SourceDocumentsEvent),
            ("usedTools", UsedToolsEvent),
            ("agentReasoning", AgentReasoningEvent),
            ("artifacts", ArtifactsEvent),
            ("fileAnnotations", FileAnnotationsEvent),
        ):
            value = row.get(key)
            if isinstance(value, str):
                try:
                    value = _loads(value)
                except ValueError:
                    value = None
            if value:
                events.append(cls(value))
        for event in events:
            self.acc.add(event)
        self.acc.recovered = True
        return events

    def final_error(self) -> FlowiseError | None:
        """How the stream ended, as an exception to raise (``None`` = success)."""
        acc = self.acc
        if acc.error is not None:
            return error_from_event(acc.error, partial=self.result)
        if not acc.ended:
            pending = self.decoder.pending
            cut = f" and {pending} bytes of an unfinished event" if pending else ""
            return IncompleteStreamError(
                f"the stream from chatflow {self.chatflow_id} ended without Flowise's 'end' event "
                f"(connection closed early); kept {len(acc.text)} characters of the answer{cut}",
                partial=self.result,
            )
        return None


def _lenient(data: bytes) -> FlowiseEvent:
    text = data.decode("utf-8", errors="replace")
    try:
        return decode_event(_loads(text), text)
    except ValueError as exc:
        return MalformedEvent(text, f"invalid JSON: {exc}")
