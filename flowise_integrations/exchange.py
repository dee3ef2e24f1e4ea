"""The I/O-free half of a prediction, shared by the sync and async clients.

Building the request, reading the response's kind, the retry policy, decoding frames to events, folding them,
and deciding how a stream ended all live here; ``client.py`` only moves bytes.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import random
import re
import time
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx
from pydantic import SecretStr

from ._version import __version__
from .accumulator import PredictionAccumulator, events_from_json
from .errors import (
    AnswerMismatchError,
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
    CorrectionEvent,
    FileAnnotationsEvent,
    FlowiseEvent,
    MalformedEvent,
    SourceDocumentsEvent,
    TokenEvent,
    UsedToolsEvent,
    decode_event,
)
from .models import Prediction, PredictionRequest
from .sse import DEFAULT_MAX_EVENT_SIZE, EventTooLargeError, SSEDecoder

__all__ = [
    "DEFAULT_TIMEOUT",
    "Deadline",
    "RetryPolicy",
    "StreamState",
    "build_prediction_request",
    "normalize_base_url",
    "path_segment",
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


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def split_credentials(url: str) -> tuple[str, tuple[str, SecretStr] | None]:
    """Move a ``user:password@`` out of a URL: ``(url without it, (user, password))`` (never shown again)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=hostport)), (unquote(user), SecretStr(unquote(password)))


def normalize_base_url(url: str) -> str:
    """``http://host:3000/`` and ``http://host:3000/api/v1`` both become ``http://host:3000``.

    Credentials in the URL are removed (see :func:`split_credentials`); the error for a bad URL never shows them.
    """
    url, credentials = split_credentials(url.strip())
    url = url.rstrip("/")
    if url.endswith("/api/v1"):
        url = url[: -len("/api/v1")]
    if not url.startswith(("http://", "https://")):
        shown = url if credentials is None else "<a URL with credentials>"
        raise ValueError(f"base_url must start with http:// or https://, got {shown!r}")
    if _CONTROL.search(url) or any(c in url for c in " ?#"):
        raise ValueError("base_url must be a plain server root (no spaces, control characters, query or fragment)")
    return url


def resolve_base_url(base_url: str | None) -> str:
    """The explicit URL, else ``FLOWISE_BASE_URL``, else ``http://localhost:3000``."""
    return normalize_base_url(base_url or os.environ.get("FLOWISE_BASE_URL") or DEFAULT_BASE_URL)


def resolve_credentials(base_url: str | None) -> tuple[str, SecretStr] | None:
    """The ``user:password`` of the (explicit or environment) base URL, for HTTP Basic auth."""
    return split_credentials((base_url or os.environ.get("FLOWISE_BASE_URL") or DEFAULT_BASE_URL).strip())[1]


def resolve_api_key(api_key: str | SecretStr | None) -> SecretStr | None:
    """The explicit key, else ``FLOWISE_API_KEY``; always a ``SecretStr`` (never printed).

    Surrounding whitespace (a key read from a file with its newline) is stripped; a key with a control character
    inside is refused here, with a message that does not show it.
    """
    raw = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
    value = (raw if raw is not None else os.environ.get("FLOWISE_API_KEY") or "").strip()
    if not value:
        return None
    bad = _CONTROL.search(value)
    if bad is not None or not value.isascii():
        where = f"a control character at position {bad.start()}" if bad else "a non-ASCII character"
        raise ValueError(f"api_key contains {where}; an HTTP header cannot carry it (the key is not shown)")
    return SecretStr(value)


def checked_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Extra headers, refused before any request if a name or value could not be sent (values never shown)."""
    out: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not name or _CONTROL.search(name) or ":" in name or " " in name:
            raise ValueError(f"invalid HTTP header name {name!r}")
        if not isinstance(value, str) or _CONTROL.search(value.strip("\t ")):
            raise ValueError(f"the value of header {name!r} contains a control character (the value is not shown)")
        out[name] = value.strip()
    return out


def auth_headers(api_key: SecretStr | None, basic: tuple[str, SecretStr] | None = None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key.get_secret_value()}"
    elif basic is not None:
        token = f"{basic[0]}:{basic[1].get_secret_value()}".encode()
        headers["Authorization"] = f"Basic {base64.b64encode(token).decode('ascii')}"
    return headers


def path_segment(value: str, what: str = "id") -> str:
    """One URL path segment, percent-encoded; ``ValueError`` (before any request) for what cannot be one.

    Nothing a caller passes as an id can leave its segment: ``/``, ``?``, ``#`` and ``%`` are encoded, and the
    dot segments ``.`` and ``..`` (which URL normalisation would resolve) are refused, as are control characters.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    if value in (".", "..") or _CONTROL.search(value):
        raise ValueError(f"invalid {what} {value!r}: not usable as a URL path segment")
    return quote(value, safe="")


class Deadline:
    """A wall-clock budget for a whole call: connect, retries, waits and the entire stream."""

    __slots__ = ("at", "seconds")

    def __init__(self, seconds: float | None) -> None:
        if seconds is not None and (not isinstance(seconds, (int, float)) or math.isnan(seconds) or seconds <= 0):
            raise ValueError(f"deadline must be a positive number of seconds or None, got {seconds!r}")
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        """Seconds left (never negative), or ``None`` without a deadline."""
        return None if self.at is None else max(0.0, self.at - time.monotonic())

    def passed(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def clip(self, timeout: httpx.Timeout) -> httpx.Timeout:
        """Every phase's timeout, made no longer than what is left of the deadline."""
        left = self.remaining()
        if left is None:
            return timeout
        left = max(left, 0.001)

        def cap(value: float | None) -> float:
            return left if value is None else min(value, left)

        return httpx.Timeout(
            connect=cap(timeout.connect), read=cap(timeout.read), write=cap(timeout.write), pool=cap(timeout.pool)
        )

    def error(self, url: object, partial: Prediction | None = None) -> FlowiseTimeoutError:
        got = f"; kept {len(partial.text)} characters of the answer" if partial is not None else ""
        return FlowiseTimeoutError(f"the call to {url} missed its deadline of {self.seconds} s{got}", partial=partial)


def build_prediction_request(
    base_url: str,
    chatflow_id: str,
    body: bytes,
    streaming: bool,
    *,
    auth: Mapping[str, str],
    headers: dict[str, str] | None = None,
    timeout: httpx.Timeout | None = None,
) -> httpx.Request:
    """The one POST of a prediction (``body``: :func:`encode_body`; ``auth``: User-Agent and Authorization)."""
    segment = path_segment(chatflow_id, "chatflow id")
    all_headers = dict(auth)
    all_headers["Accept"] = "text/event-stream, application/json" if streaming else "application/json"
    all_headers["Content-Type"] = "application/json"
    if headers:
        all_headers.update(headers)
    extensions = {"timeout": timeout.as_dict()} if timeout is not None else None
    return httpx.Request(
        "POST",
        f"{base_url}/api/v1/prediction/{segment}",
        content=body,
        headers=all_headers,
        extensions=extensions,
    )


def encode_body(request: PredictionRequest) -> bytes:
    """The JSON body of a prediction, as httpx would encode it (``ValueError`` for NaN or what JSON cannot hold)."""
    try:
        return json.dumps(request.to_body(), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except TypeError as exc:
        raise ValueError(f"the prediction request cannot be sent as JSON: {exc}") from None


ResponseKind = Literal["sse", "json", "html", "other"]
CheckReason = Literal["lost", "repeated", "always"]


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
    """Map an httpx transport failure to our tree (the URL is kept; credentials and header values never are)."""
    url = ""
    with contextlib.suppress(RuntimeError):  # no request attached
        url = str(exc.request.url.copy_with(username=None, password=None))
    if isinstance(exc, httpx.LocalProtocolError):  # its text can quote a header value: never show it
        return FlowiseConnectionError(f"cannot send the request to {url}: httpx refused it as invalid HTTP")
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

    def __init__(
        self, max_retries: int = 2, *, initial: float = 0.5, maximum: float = 8.0, max_retry_after: float = 30.0
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.max_retries = max_retries
        self.initial = initial
        self.maximum = maximum
        self.max_retry_after = max_retry_after  # a longer Retry-After is an answer ("not now"), not a wait

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.maximum, self.initial * 2**attempt))

    @staticmethod
    def _within(delay: float, left: float | None) -> float | None:
        return delay if left is None or delay < left else None

    def after_exception(self, attempt: int, exc: httpx.TransportError, left: float | None = None) -> float | None:
        """Seconds to wait before retry ``attempt + 1``, or ``None`` to give up (also when the deadline is nearer)."""
        if attempt >= self.max_retries or not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return None
        return self._within(self._backoff(attempt), left)

    def after_status(
        self, attempt: int, status_code: int, retry_after: float | None, left: float | None = None
    ) -> float | None:
        """Seconds to wait before retrying a retryable status, or ``None`` to give up now.

        A ``Retry-After`` longer than ``max_retry_after`` or than what is left of the deadline is never slept:
        the error is raised at once, with ``retry_after`` set for the caller to decide.
        """
        if attempt >= self.max_retries or status_code not in RETRYABLE_STATUS:
            return None
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return self._within(retry_after, left)
        return self._within(self._backoff(attempt), left)


class StreamState:
    """One prediction's decoding and folding, fed bytes by either client."""

    __slots__ = ("acc", "chat_id", "chatflow_id", "decoder", "max_event_size", "streaming")

    def __init__(
        self, chatflow_id: str, chat_id: str | None, *, streaming: bool, max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    ) -> None:
        self.chatflow_id = chatflow_id
        self.chat_id = chat_id
        self.streaming = streaming  # what was asked for; the response decides what is delivered
        self.max_event_size = max_event_size
        self.acc = PredictionAccumulator(chatflow_id=chatflow_id, streamed=False)
        self.decoder = SSEDecoder(max_event_size)

    def start(self, response: httpx.Response) -> ResponseKind:
        """Note how the (2xx) response will be read."""
        kind = response_kind(response)
        self.acc.streamed = kind == "sse"
        return kind

    def feed(self, chunk: bytes) -> list[FlowiseEvent]:
        """Decode an SSE chunk into folded events."""
        decoder = self.decoder
        try:
            frames = decoder.feed(chunk)
        except EventTooLargeError as exc:
            raise self.protocol_error(str(exc)) from None
        events = self._events(frames) if frames else []
        if decoder.error is not None:  # the frames before the oversized event are folded into the partial
            raise self.protocol_error(str(decoder.error))
        return events

    def eof(self) -> list[FlowiseEvent]:
        """The server closed the body."""
        frames = self.decoder.flush()
        return self._events(frames) if frames else []

    def protocol_error(self, why: str) -> FlowiseProtocolError:
        return FlowiseProtocolError(
            f"chatflow {self.chatflow_id}: {why} (max_event_size={self.max_event_size}); "
            f"kept {len(self.acc.text)} characters of the answer",
            partial=self.result,
        )

    def _events(self, frames: list[Any]) -> list[FlowiseEvent]:
        out: list[FlowiseEvent] = []
        add = self.acc.add
        for frame in frames:
            data = frame[1]
            try:  # json.loads(bytes) would detect the encoding in Python: decoding first is 3x faster
                event = decode_event(_loads(data.decode()), data)
            except (ValueError, RecursionError):  # JSONDecodeError, invalid UTF-8, absurdly deep nesting
                event = self._lenient(data)
            add(event)
            out.append(event)
        return out

    def _lenient(self, data: bytes) -> FlowiseEvent:
        text = data.decode("utf-8", errors="replace")
        try:
            event = decode_event(_loads(text), text)
        except (ValueError, RecursionError) as exc:
            return MalformedEvent(text, f"invalid JSON: {exc}")
        if type(event) is not MalformedEvent:  # valid JSON once invalid UTF-8 was replaced: delivered, and counted
            self.acc.malformed.append(text)
        return event

    def feed_json(self, response: httpx.Response, content: bytes) -> list[FlowiseEvent]:
        """A JSON reply, delivered as the events a stream would have carried."""
        try:
            body = _loads(content)
        except (ValueError, RecursionError):
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

    def cancelled(self) -> None:
        """The caller stopped the stream (``cancel()``): what was received stays, marked ``cancelled``."""
        self.acc.cancelled = True

    def broken(self, exc: httpx.TransportError) -> FlowiseError:
        """The connection failed mid-stream: the flow's own error, if it already sent one, wins."""
        if self.acc.error is not None:
            return error_from_event(self.acc.error, partial=self.result)
        return transport_error(exc, partial=self.result)

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

    def check_reason(self, verify: bool | Literal["auto"], *, can_look_up: bool = True) -> CheckReason | None:
        """Whether the answer must be looked up at ``end``: ``lost`` (nothing streamed), ``repeated`` (the run
        restarted), ``always`` (``verify_answers=True``); ``None`` when nothing is due.

        A run restarted when a second ``start`` came, or, since Flowise sends ``start`` once per client, when the
        answer's opening tokens came again later (a queue-mode job redelivered after its worker died streams the
        whole answer again). That second sign can be a real answer repeating itself, so it only asks for a
        lookup when one ``can_look_up`` (a false alarm then costs one request and changes nothing).
        """
        if self.lost_answer():
            return "lost"
        acc = self.acc
        if verify is False or acc.error is not None or acc.chat_message_id is None:
            return None
        if acc.starts > 1 or (can_look_up and _opening_repeats(acc.tokens)):
            return "repeated"
        return "always" if verify is True else None

    def stored_row(self, rows: Any, reason: CheckReason) -> dict[str, Any] | None:
        """This turn's stored answer among chat-message rows (a lost answer may take the newest one)."""
        message_id = self.acc.chat_message_id
        rows = rows if isinstance(rows, list) else []
        match = [r for r in rows if isinstance(r, dict) and r.get("role") == "apiMessage"]
        exact = [r for r in match if r.get("id") == message_id]
        candidates = exact or (match[-1:] if reason == "lost" else [])
        return candidates[0] if candidates else None

    def checked_events(
        self, reason: CheckReason, row: dict[str, Any] | None, on_mismatch: Literal["recover", "raise"]
    ) -> list[FlowiseEvent]:
        """What the stored answer changes, folded in: nothing, the missing tail, or a correction (or raise)."""
        if reason == "lost":
            return self.recovered_events(row)
        if row is None:
            if reason == "repeated":
                raise self.mismatch_error(reason, None, "its stored message could not be found")
            return []
        stored, streamed = str(row.get("content") or ""), self.acc.text
        if stored == streamed:
            return []
        if on_mismatch == "raise":
            raise self.mismatch_error(reason, stored, "it differs from the stored message")
        if stored.startswith(streamed) and reason != "repeated":
            events: list[FlowiseEvent] = [TokenEvent(stored[len(streamed) :])]
        else:
            why = "repeated" if reason == "repeated" or stored in streamed else "incomplete"
            events = [CorrectionEvent({"text": stored, "reason": why})]
        for event in events:
            self.acc.add(event)
        self.acc.recovered = True
        return events

    def mismatch_error(self, reason: CheckReason, stored: str | None, why: str) -> AnswerMismatchError:
        what = "restarted mid-stream (a queue-mode job redelivered)" if reason == "repeated" else "was verified"
        return AnswerMismatchError(
            f"the answer of chatflow {self.chatflow_id} (chatMessageId {self.acc.chat_message_id}) {what}, and "
            f"{why}: streamed {len(self.acc.text)} characters, stored "
            f"{'unknown' if stored is None else len(stored)}",
            stored_text=stored,
            partial=self.result,
        )

    def recovered_events(self, row: dict[str, Any] | None) -> list[FlowiseEvent]:
        """Events rebuilt from the stored chat message (``GET /chatmessage``), folded in."""
        if row is None:
            raise self.lost_answer_error("the stored message could not be found either")
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


def _opening_repeats(tokens: list[str], size: int = 3) -> bool:
    """Whether the first ``size`` non-empty tokens come again, in order, later in the stream."""
    words = [t for t in tokens if t]
    opening = words[:size]
    if len(opening) < size or len(words) < 2 * size:
        return False
    first = opening[0]
    return any(words[i : i + size] == opening for i in range(1, len(words) - size + 1) if words[i] == first)
