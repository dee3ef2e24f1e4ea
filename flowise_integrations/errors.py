"""The exception tree, and the I/O-free mapping from what Flowise answered to it.

Every error keeps Flowise's own ``message`` verbatim, and every error raised while a prediction was running
carries the partial :class:`~flowise_integrations.models.Prediction` folded so far (``error.partial``), so
nothing the server already sent is lost.
"""

from __future__ import annotations

import json
import re
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Prediction

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "FlowExecutionError",
    "FlowiseAPIError",
    "FlowiseConnectionError",
    "FlowiseError",
    "FlowiseProtocolError",
    "FlowiseTimeoutError",
    "IncompleteStreamError",
    "InternalServerError",
    "AnswerMismatchError",
    "LostAnswerError",
    "NotFoundError",
    "NotResumableError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "error_from_response",
    "error_from_event",
]


class FlowiseError(Exception):
    """Base of every error this package raises.

    Attributes:
        message: the human-readable message (Flowise's own text when the server sent one).
        partial: what was received before the failure, when a prediction was under way.
    """

    def __init__(self, message: str, *, partial: Prediction | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.partial = partial

    def __str__(self) -> str:
        return self.message


class FlowiseConnectionError(FlowiseError):
    """The server could not be reached, or the connection broke before a response arrived."""


class FlowiseTimeoutError(FlowiseConnectionError, TimeoutError):
    """A connect, read, write or pool timeout expired."""


class FlowiseProtocolError(FlowiseError):
    """The server answered something that is not the Flowise protocol (an HTML page, a non-JSON body...)."""


class IncompleteStreamError(FlowiseError):
    """The event stream ended (EOF, dropped connection) without Flowise's ``end`` event."""


class LostAnswerError(IncompleteStreamError):
    """Flowise finished the stream without sending any answer (its queue-mode token-loss bug).

    The answer was stored server-side: ``chat_message_id`` identifies it. Set an API key on the client to have
    it recovered automatically from the chat-message API.
    """


class AnswerMismatchError(IncompleteStreamError):
    """The streamed answer is not the answer Flowise stored (queue mode: tokens lost while Redis did not relay
    them, or a job redelivered after a worker died, which repeats text).

    Raised with ``on_answer_mismatch="raise"``; ``partial`` is what was streamed, ``stored_text`` what Flowise
    stored (``None`` when it could not be looked up).
    """

    def __init__(self, message: str, *, stored_text: str | None = None, partial: Prediction | None = None) -> None:
        super().__init__(message, partial=partial)
        self.stored_text = stored_text


class FlowiseAPIError(FlowiseError):
    """Flowise (or a gateway in front of it) refused or failed the request.

    Attributes:
        status_code: the HTTP status, or ``None`` for an in-band ``error`` event on a 200 stream.
        body: the decoded JSON body, or the raw text when it was not JSON.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body: Any = None,
        partial: Prediction | None = None,
    ) -> None:
        super().__init__(message, partial=partial)
        self.status_code = status_code
        self.body = body

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status_code})" if self.status_code else self.message


class BadRequestError(FlowiseAPIError):
    """400/412/422: the request is malformed (bad chatflow id, bad JSON...)."""


class NotResumableError(BadRequestError):
    """A resume found no stopped execution to continue (it finished, was resumed already, another prediction ran
    in the same session since, or the session never ran): Flowise's ``Cannot resume execution ... state`` and
    ``No previous execution found for session ...``."""


class AuthenticationError(FlowiseAPIError):
    """401, or Flowise's 500/in-band ``... Unauthorized``: the API key is missing or wrong."""


class PermissionDeniedError(FlowiseAPIError):
    """403: the key lacks a permission, or the origin is not allowed."""


class NotFoundError(FlowiseAPIError):
    """404: the chatflow (or route) does not exist."""


class PayloadTooLargeError(FlowiseAPIError):
    """413: the body exceeds the server's ``FLOWISE_FILE_SIZE_LIMIT``."""


class RateLimitError(FlowiseAPIError):
    """429: the flow's rate limit was hit. ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InternalServerError(FlowiseAPIError):
    """5xx: the flow or the server failed."""


class FlowExecutionError(InternalServerError):
    """The flow itself failed (its LLM, a tool, a node...): the same class whether Flowise said so with an
    in-band ``error`` event on a stream (``status_code`` is ``None``; ``partial`` holds what was received
    before) or with its 500 ``predictionsServices.buildChatflow - ...`` JSON reply.
    """


_UNAUTHORIZED = re.compile(r"\bUnauthorized\b")
_FLOW_FAILED = re.compile(r"predictionsServices\.build\w* - ")
_NOT_FOUND = re.compile(r"not found", re.IGNORECASE)
# usage errors Flowise reports as flow failures (500 / in-band): they are the caller's to fix
_REFUSED_TRIGGER = re.compile(r"This flow is configured as a (?:Webhook|Scheduled) Trigger")
_NOT_RESUMABLE = re.compile(r"Cannot resume execution|No previous execution found for session")
# a malformed id on a Postgres-backed server: the database refuses the lookup (500); SQLite says "not found"
_MALFORMED_ID = re.compile(r"invalid input syntax for type uuid", re.IGNORECASE)
# Flowise before 3.0.13 answers an unknown chatflow with a 500 from its chatflow lookup
_UNKNOWN_FLOW = re.compile(r"getChatflowById - .*not found|Chatflow \S+ not found", re.IGNORECASE)

MAX_MESSAGE_CHARS = 2_000
"""An error message keeps at most this much of what the server said (Flowise's own ``message`` first)."""
MAX_BODY_BYTES = 16_384
"""At most this much of an error response's body is read and kept (``error.body``)."""


_CUT_MESSAGE = re.compile(r'^\s*\{.*?"(?:message|error)"\s*:\s*"((?:[^"\\]|\\.)*)', re.DOTALL)


def _unescape(fragment: str) -> str:
    try:
        return str(json.loads(f'"{fragment}"'))
    except ValueError:
        return fragment


def _shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import datetime, timezone

        when = parsedate_to_datetime(value)
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _decode_body(content: bytes) -> tuple[Any, str]:
    """Return ``(decoded body, message)``: Flowise's ``message``, a gateway's ``error``, or the text.

    Both are bounded: the body to :data:`MAX_BODY_BYTES` (as text when it was cut or is not JSON), the message
    to :data:`MAX_MESSAGE_CHARS`.
    """
    cut = len(content) > MAX_BODY_BYTES
    text = content[:MAX_BODY_BYTES].decode("utf-8", errors="replace").strip()
    if cut:
        text += f"... [cut at {MAX_BODY_BYTES} bytes]"
        found = _CUT_MESSAGE.search(text)  # a JSON body too big to parse: still put Flowise's message first
        return text, _shorten(_unescape(found.group(1)) if found else text)
    try:
        body: Any = json.loads(text)
    except (ValueError, RecursionError):
        return text, _shorten(text)
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return body, _shorten(value)
    return body, _shorten(text)


def error_from_response(
    status_code: int,
    content: bytes,
    headers: dict[str, str] | None = None,
    *,
    partial: Prediction | None = None,
) -> FlowiseAPIError:
    """Map an HTTP error response (status >= 400) to the matching exception, keeping Flowise's message."""
    body, message = _decode_body(content)
    if not message:
        message = f"Flowise answered HTTP {status_code} with an empty body"
    kwargs: dict[str, Any] = {"status_code": status_code, "body": body, "partial": partial}
    if status_code == 429:
        retry_after = parse_retry_after((headers or {}).get("retry-after"))
        return RateLimitError(message, retry_after=retry_after, **kwargs)
    cls: type[FlowiseAPIError]
    if status_code == 401 or (status_code == 500 and _UNAUTHORIZED.search(message)):
        cls = AuthenticationError
    elif status_code == 403:
        cls = PermissionDeniedError
    elif status_code == 404 or (
        status_code == 500 and (_UNKNOWN_FLOW.search(message) or _MALFORMED_ID.search(message))
    ):
        cls = NotFoundError  # before 3.0.13 an unknown flow is a 500; on Postgres a malformed id is the db's 500
    elif status_code in (400, 500) and _NOT_RESUMABLE.search(message):
        cls = NotResumableError
    elif status_code in (400, 500) and _REFUSED_TRIGGER.search(message):
        cls = BadRequestError
    elif status_code == 413:
        cls = PayloadTooLargeError
    elif status_code in (400, 412, 422):
        cls = BadRequestError
    elif status_code == 500 and _FLOW_FAILED.search(message):
        cls = FlowExecutionError
    elif status_code >= 500:
        cls = InternalServerError
    else:
        cls = FlowiseAPIError
    return cls(message, **kwargs)


def error_from_event(message: str, *, partial: Prediction | None = None) -> FlowiseAPIError:
    """Map Flowise's in-band ``error`` event (HTTP 200) to an exception carrying the partial answer."""
    message = _shorten(message)
    if _UNAUTHORIZED.search(message):
        return AuthenticationError(message, partial=partial)
    if _NOT_RESUMABLE.search(message):
        return NotResumableError(message, partial=partial)
    if _REFUSED_TRIGGER.search(message):
        return BadRequestError(message, partial=partial)
    return FlowExecutionError(message, partial=partial)


def error_from_probe(chatflow_id: str, status_code: int, content: bytes) -> FlowiseAPIError | None:
    """Interpret ``GET /chatflows-streaming/{id}`` after a streaming request got no response headers.

    Flowise never answers a streaming prediction for an unknown or malformed chatflow id. Returns the error to
    raise instead of a bare timeout, or ``None`` when the flow exists (the server is merely slow).
    """
    if status_code < 400:
        return None
    body, message = _decode_body(content)
    hint = "Flowise does not answer streaming requests for unknown chatflows"
    if status_code == 404 or _NOT_FOUND.search(message) or _MALFORMED_ID.search(message):
        return NotFoundError(
            f"Chatflow {chatflow_id} not found ({hint}; diagnosed with GET /chatflows-streaming): {message}",
            status_code=404,
            body=body,
        )
    if status_code == 400:
        return BadRequestError(f"Invalid chatflow id {chatflow_id!r}: {message}", status_code=400, body=body)
    return None
