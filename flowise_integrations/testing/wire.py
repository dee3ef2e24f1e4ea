"""Byte-exact pieces of Flowise 3.1.x replies: ``JSON.stringify`` output, SSE frames, Express headers."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any, Final

from .actions import Chunk, Head

__all__ = [
    "HEARTBEAT",
    "UNDEFINED",
    "Undefined",
    "error_body",
    "express_etag",
    "global_headers",
    "http_date",
    "js_json",
    "js_number",
    "reason_phrase",
    "send_reply",
    "sse_event",
    "sse_head",
]


class Undefined:
    """JavaScript ``undefined``: a key holding it is left out by :func:`js_json` (``null`` inside arrays)."""

    _instance: Undefined | None = None

    def __new__(cls) -> Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Final = Undefined()
HEARTBEAT: Final = b":heartbeat\n\n"

_escape = json.encoder.encode_basestring  # escapes exactly like JSON.stringify (non-ASCII kept raw)


def js_number(value: float) -> str:
    """``Number.prototype.toString`` for a finite double (shortest round-trip digits, JS exponent rules)."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exp = repr(abs(value)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0").rstrip("0") or "0"
    # position of the decimal point relative to the first significant digit
    point = len(whole.lstrip("0")) if whole.strip("0") else -(len(frac) - len(frac.lstrip("0")))
    point += int(exp or 0)
    k = len(digits)
    if k <= point <= 21:
        text = digits + "0" * (point - k)
    elif 0 < point <= 21:
        text = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        e = point - 1
        text = digits[0] + ("." + digits[1:] if k > 1 else "") + ("e+" if e >= 0 else "e-") + str(abs(e))
    return sign + text


def _encode(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_escape(value))
    elif value is None or value is UNDEFINED:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(js_number(value) if math.isfinite(value) else "null")
    elif isinstance(value, Mapping):
        out.append("{")
        first = True
        for key, item in value.items():
            if item is UNDEFINED:
                continue
            if not first:
                out.append(",")
            first = False
            out.append(_escape(str(key)))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"not JSON serializable: {type(value).__name__}")


def js_json(value: Any) -> bytes:
    """UTF-8 bytes of ``JSON.stringify(value)``: compact, non-ASCII and U+2028 raw, ``undefined`` keys dropped."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8", "backslashreplace")  # lone surrogates -> \\udxxx, as V8 does


_NO_COLON_BEFORE_3_1_2: Final = frozenset({"end", "error", "abort"})


def sse_event(event: str, data: Any = UNDEFINED, duration: Any = UNDEFINED, *, colon: bool = True) -> bytes:
    """One SSE frame exactly as ``SSEStreamer`` writes it: ``message:\\ndata:<json>\\n\\n``.

    ``colon=False`` is the pre-3.1.2 dialect: ``end``, ``error`` and ``abort`` open with ``message`` (no colon).
    """
    opener = b"message\ndata:" if not colon and event in _NO_COLON_BEFORE_3_1_2 else b"message:\ndata:"
    return opener + js_json({"event": event, "data": data, "duration": duration}) + b"\n\n"


def express_etag(body: bytes) -> str:
    """Express's default weak ETag: ``W/"<length hex>-<base64 sha1, 27 chars>"``."""
    digest = base64.b64encode(hashlib.sha1(body).digest()).decode("ascii")[:27]
    return f'W/"{len(body):x}-{digest}"'


def http_date(timestamp: float | None = None) -> str:
    """An RFC 7231 ``Date`` value, as Node writes it."""
    return email.utils.formatdate(timestamp, usegmt=True)


def reason_phrase(status: int) -> str:
    """Node's reason phrase for a status code."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


_GLOBAL_HEADERS: Final = (
    ("Vary", "Origin"),
    ("Content-Security-Policy", "frame-ancestors 'self'"),
    ("X-Frame-Options", "SAMEORIGIN"),
)
_VARY_ONLY: Final = _GLOBAL_HEADERS[:1]


def global_headers(frame_headers: bool = True) -> tuple[tuple[str, str], ...]:
    """Headers every reply carries: ``Vary``, plus the iframe guards of 3.1.3+ (``frame_headers``)."""
    return _GLOBAL_HEADERS if frame_headers else _VARY_ONLY


def sse_head(frame_headers: bool = True) -> Head:
    """The status line and headers the prediction controller flushes before streaming."""
    return Head(
        200,
        "OK",
        (
            *global_headers(frame_headers),
            ("Content-Type", "text/event-stream"),
            ("Cache-Control", "no-cache"),
            ("Connection", "keep-alive"),
            ("X-Accel-Buffering", "no"),
            ("Date", http_date()),
            ("Transfer-Encoding", "chunked"),
        ),
    )


def send_reply(
    status: int,
    body: bytes,
    content_type: str,
    *,
    keep_alive: bool = True,
    extra: Iterable[tuple[str, str]] = (),
    etag: bool = True,
    frame_headers: bool = True,
) -> tuple[Head, Chunk]:
    """Express ``res.send``: global headers, ``extra``, Content-Type/Length, weak ETag, then Node's own."""
    headers = [*global_headers(frame_headers), *extra]
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", content_type))
    headers.append(("Content-Length", str(len(body))))
    if etag:
        headers.append(("ETag", express_etag(body)))
    headers.append(("Date", http_date()))
    headers.extend(
        (("Connection", "keep-alive"), ("Keep-Alive", "timeout=5")) if keep_alive else (("Connection", "close"),)
    )
    return Head(status, reason_phrase(status), tuple(headers)), Chunk(body)


def error_body(status: int, message: str) -> dict[str, Any]:
    """The JSON body of Flowise's error middleware."""
    return {"statusCode": status, "success": False, "message": message, "stack": {}}
