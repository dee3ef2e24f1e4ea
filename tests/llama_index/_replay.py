"""Replaying real Flowise 3.1.4 captures (``tests/fixtures/real_captures``) to the wing: each prediction request is
answered with the next recorded reply, byte for byte, and every request body is kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

CAPTURES = Path(__file__).parent.parent / "fixtures" / "real_captures"

STOP_RESUME_PAIRS = sorted(
    (p.name.removesuffix(".request.json"), p.name.removesuffix(".request.json").replace("_stop_then_", "_resume_"))
    for p in CAPTURES.glob("*_stop_then_*.request.json")
)
"""Every recorded (stop, resume) pair: Human Input by chat and session id, tool approval, sequential agents."""


def request_of(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((CAPTURES / f"{name}.request.json").read_text())
    return body


def response_of(name: str) -> httpx.Response:
    """The recorded reply (status, headers, body), without the framing headers httpx recomputes."""
    head, _, body = (CAPTURES / f"{name}.txt").read_bytes().partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = [tuple(line.split(b": ", 1)) for line in head.split(b"\r\n")[1:]]
    keep = [(k, v) for k, v in headers if k.lower() not in (b"transfer-encoding", b"content-length")]
    return httpx.Response(status, headers=keep, content=body)


def billed(name: str) -> tuple[int, int]:
    """(input, output) tokens the fake model billed while the capture was recorded."""
    calls = json.loads((CAPTURES / f"{name}.llm.json").read_text())["calls"]
    usage = [c["reply"]["usage"] for c in calls if c["reply"].get("usage")]
    return sum(u["prompt_tokens"] for u in usage), sum(u["completion_tokens"] for u in usage)


class Replay:
    """Answers predictions with ``names`` in order (an abort gets Flowise's acknowledgement); ``sent`` keeps bodies."""

    def __init__(self, *names: str) -> None:
        self.names = list(names)
        self.sent: list[dict[str, Any]] = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and "/chatmessage/abort/" in request.url.path:
            return httpx.Response(200, json={"status": 200, "message": "Chat message aborted"})
        self.sent.append(json.loads(request.content))
        return response_of(self.names.pop(0))

    def clients(self) -> dict[str, Any]:
        """``http_client``/``async_http_client`` for ``FlowiseLLM``."""
        return {
            "http_client": httpx.Client(transport=self.transport),
            "async_http_client": httpx.AsyncClient(transport=self.transport),
        }
