"""What the emulator remembers: the requests it received and the chat-message rows it stored."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["RecordedRequest", "chat_message_row", "js_now_iso"]

_JSON_COLUMNS = (
    "sourceDocuments",
    "usedTools",
    "fileAnnotations",
    "agentReasoning",
    "reasonContent",
    "fileUploads",
    "artifacts",
    "action",
)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it. ``headers`` keys are lower-case; ``json`` is the parsed body or None."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = field(default=None, compare=False)

    @classmethod
    def build(cls, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> RecordedRequest:
        """Build from the request line target (``/path?query``), the raw header list and the body bytes."""
        parts = urlsplit(target)
        lowered: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            lowered[key] = f"{lowered[key]}, {value}" if key in lowered else value
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        return cls(method.upper(), parts.path or "/", dict(parse_qsl(parts.query)), lowered, body, parsed)


def js_now_iso() -> str:
    """``new Date().toJSON()``: ISO 8601 UTC with milliseconds and ``Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def chat_message_row(
    *,
    role: str,
    chatflowid: str,
    content: str,
    chat_id: str,
    session_id: str | None,
    memory_type: str | None = None,
    execution_id: str | None = None,
    created_date: str | None = None,
    message_id: str | None = None,
    **columns: Any,
) -> dict[str, Any]:
    """A ``ChatMessage`` row as ``GET /api/v1/chatmessage/{id}`` returns it (entity column order, nulls kept).

    ``columns`` sets the optional JSON columns (``sourceDocuments``, ``usedTools``, ``fileAnnotations``,
    ``agentReasoning``, ``reasonContent``, ``fileUploads``, ``artifacts``, ``action``, ``leadEmail``,
    ``followUpPrompts``); the API parses them, except ``followUpPrompts`` which stays a JSON string.
    """
    row: dict[str, Any] = {
        "id": message_id or str(uuid.uuid4()),
        "role": role,
        "chatflowid": chatflowid,
        "executionId": execution_id,
        "content": content,
    }
    for name in _JSON_COLUMNS:
        row[name] = columns.get(name)
    row.update(
        chatType="EXTERNAL",
        chatId=chat_id,
        memoryType=memory_type,
        sessionId=session_id,
        createdDate=created_date or js_now_iso(),
        leadEmail=columns.get("leadEmail"),
        followUpPrompts=columns.get("followUpPrompts"),
    )
    return row
