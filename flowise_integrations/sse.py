"""A byte-level Server-Sent Events decoder: linear in line length, bounded in memory.

It decodes exactly like ``httpx-sse`` (spec line splitting on CRLF/CR/LF, ``:`` comments, one optional space
after the colon, multi-line ``data`` joined with ``\\n``, httpx-sse's dispatch rule) - a hypothesis test proves
it - but works on bytes: lines are split before any UTF-8 decoding, so a multi-byte character split across
network chunks, or a token holding U+2028, can never break a frame, and the frame's data goes to ``json.loads``
without a text round trip. That is what makes typed events cost less than the httpx + httpx-sse floor.

An unfinished line is kept as a list of chunks and joined once, when its end arrives, so a 50 MB token costs
one copy, not one per network chunk. One event (its unfinished line plus its ``data`` lines) may not exceed
``max_event_size`` bytes: past that, :class:`EventTooLargeError` is raised instead of growing without bound.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "EventTooLargeError", "SSEDecoder", "SSEFrame"]

DEFAULT_MAX_EVENT_SIZE = 64 * 1024 * 1024
"""64 MiB: far above any real Flowise event (a JSON reply or an executed-data snapshot), far below a leak."""

SSEFrame = tuple[str, bytes, str, "int | None"]
"""One dispatched event: ``(event type, data as UTF-8 bytes, last event id, retry)``."""


class EventTooLargeError(ValueError):
    """One SSE event grew past the decoder's ``max_event_size``."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"one server-sent event exceeded {limit} bytes ({size} bytes buffered without an event end)")
        self.size = size
        self.limit = limit


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


class SSEDecoder:
    """Incremental decoder: ``feed(chunk)`` returns the frames completed by that chunk."""

    __slots__ = (
        "_data",
        "_data_size",
        "_event",
        "_idle",
        "_last_id",
        "_limit",
        "_parts",
        "_parts_size",
        "_retry",
        "error",
    )

    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        if max_event_size < 1:
            raise ValueError("max_event_size must be positive")
        self._limit = max_event_size
        self._parts: list[bytes] = []  # the unfinished line, as received (never joined until it ends)
        self._parts_size = 0
        self._data: list[bytes] = []
        self._data_size = 0
        self._event = ""
        self._last_id = ""
        self._retry: int | None = None
        self._idle = True  # no partial line or event pending: the one-frame fast path applies
        self.error: EventTooLargeError | None = None
        """Set once an event outgrew the cap; ``feed`` returned the frames before it and raises from then on."""

    @property
    def pending(self) -> int:
        """Bytes received that do not (yet) form a complete event."""
        return self._parts_size + self._data_size

    def feed(self, chunk: bytes) -> list[SSEFrame]:
        """Decode one network chunk.

        Raises :class:`EventTooLargeError` when an event outgrows the cap; the frames completed before it in the
        same chunk are returned first (and :attr:`error` is set), the error is raised by the next call.
        """
        if self.error is not None:
            raise self.error
        if (  # Flowise writes exactly one `message:\ndata:{json}\n\n` per chunk: take it whole
            self._idle
            and chunk[:14] == b"message:\ndata:"
            and chunk.find(b"\n", 14) == len(chunk) - 2
            and chunk[-1:] == b"\n"
            and b"\r" not in chunk
        ):
            if len(chunk) - 16 > self._limit:
                raise EventTooLargeError(len(chunk) - 16, self._limit)
            return [("message", chunk[14:-2], self._last_id, None)]
        parts = self._parts
        if b"\n" not in chunk and b"\r" not in chunk and not (parts and parts[-1][-1:] == b"\r"):
            if chunk:  # still the same line: keep the piece, copy nothing
                parts.append(chunk)
                self._parts_size += len(chunk)
                self._idle = False
                self._guard(self._check)
            return []
        if parts:
            parts.append(chunk)
            buf = b"".join(parts)
            parts.clear()
        else:
            buf = chunk
        hold_cr = False
        if b"\r" in buf:
            if buf[-1:] == b"\r":  # may be the first half of a CRLF: decide with the next chunk
                buf = buf[:-1]
                hold_cr = True
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        tail = lines.pop()
        if hold_cr:
            tail += b"\r"
        if tail:
            parts.append(tail)
        self._parts_size = len(tail)
        out: list[SSEFrame] = []
        if lines:
            self._guard(lambda: self._lines(lines, out))
        self._idle = not (tail or self._data or self._event or self._retry is not None)
        self._guard(self._check)
        if self.error is not None and not out:
            raise self.error
        return out

    def flush(self) -> list[SSEFrame]:
        """End of stream: a trailing lone CR still ends a line; an unterminated event is discarded."""
        if self.error is not None:
            raise self.error
        tail = b"".join(self._parts)
        self._parts.clear()
        self._parts_size = 0
        self._idle = False
        if tail[-1:] == b"\r":
            tail = tail[:-1]
        elif not tail:
            return []
        out: list[SSEFrame] = []
        self._lines([tail], out)
        return out

    def _guard(self, step: Callable[[], object]) -> None:
        if self.error is None:
            try:
                step()
            except EventTooLargeError as exc:
                self.error = exc
                self._parts.clear()
                self._data.clear()
                self._parts_size = self._data_size = 0

    def _check(self) -> None:
        size = self._parts_size + self._data_size
        if size > self._limit:
            raise EventTooLargeError(size, self._limit)

    def _lines(self, lines: list[bytes], out: list[SSEFrame]) -> None:
        data = self._data
        for line in lines:
            if not line:
                if data or self._event or self._last_id or self._retry is not None:
                    joined = data[0] if len(data) == 1 else b"\n".join(data)
                    if len(joined) > self._limit:
                        raise EventTooLargeError(len(joined), self._limit)
                    out.append((self._event or "message", joined, self._last_id, self._retry))
                    data.clear()
                    self._data_size = 0
                    self._event = ""
                    self._retry = None
                continue
            if line[:5] == b"data:":
                value = line[5:]
                data.append(value[1:] if value[:1] == b" " else value)
                self._data_size += len(value)
                continue
            if line[0] == 58:  # b":" comment (Flowise's ":heartbeat")
                continue
            field, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if field == b"data":
                data.append(value)
                self._data_size += len(value)
            elif field == b"event":
                self._event = _text(value)
            elif field == b"id":
                if b"\0" not in value:
                    self._last_id = _text(value)
            elif field == b"retry":
                with contextlib.suppress(ValueError):
                    self._retry = int(_text(value))
        if self._data_size > self._limit:
            raise EventTooLargeError(self._data_size, self._limit)
