"""Read the raw Flowise captures in ``tests/fixtures/transcripts`` (status line, CRLF headers, body bytes)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRANSCRIPTS = Path(__file__).parent / "fixtures" / "transcripts"


@dataclass(frozen=True)
class Capture:
    name: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    request: dict[str, Any] | None

    @property
    def content_type(self) -> str:
        return {k.lower(): v for k, v in self.headers}.get("content-type", "")


def load_capture(name: str) -> Capture:
    """Parse ``NAME.txt`` (+ ``NAME.request.json`` when present)."""
    raw = (TRANSCRIPTS / f"{name}.txt").read_bytes()
    request_path = TRANSCRIPTS / f"{name}.request.json"
    request = json.loads(request_path.read_text()) if request_path.exists() else None
    if not raw:
        return Capture(name, 0, "", [], b"", request)
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    _, status, reason = status_line.split(" ", 2)
    headers = [tuple(line.split(": ", 1)) for line in header_lines]
    return Capture(name, int(status), reason, [(k, v) for k, v in headers], body, request)


def capture_names() -> list[str]:
    """Every prediction capture (``*.txt`` with a request body), sorted."""
    return sorted(p.name[: -len(".request.json")] for p in TRANSCRIPTS.glob("*.request.json"))
