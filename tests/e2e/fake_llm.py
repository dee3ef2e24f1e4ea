#!/usr/bin/env python3
"""A fake OpenAI-compatible server (stdlib only, loopback) that drives the real Flowise in e2e tests.

Endpoints:
  GET  /v1/models            one model
  POST /v1/chat/completions  canned answer, streamed word by word or not; tool calls; triggers
  POST /v1/embeddings        deterministic 16-dim vectors (``encoding_format: "base64"`` honoured)

Chat behaviour, decided from the request:
  * the last user message contains ``TRIGGER_ERROR`` -> HTTP 400 in OpenAI's error shape
    (400 is not retried by openai-node/LangChain, so Flowise fails fast);
  * the ``route`` tool is offered (a multi-agent Supervisor) -> a call to it naming the first worker that
    has not spoken yet (workers' messages carry their ``name``), else ``FINISH``;
  * a ``role: "tool"`` message is present -> ``The tool said: <last tool result>.``;
  * ``tools`` are offered -> one call to ``calculator`` (or else the first tool), ``{"input": "2 + 2"}``;
  * a system message says ``REPLY_WITH: <text>`` -> exactly that text (Flowise resolves ``{{ $form.x }}``,
    ``{{ $iteration.item }}``... in it first, so the answer shows what reached the model);
  * the last user message contains ``SLOW_STREAM`` -> 40 tokens, 250 ms apart (for abort tests);
  * otherwise :data:`CANNED_ANSWER`.

Usage is :data:`USAGE` (10 / 12 / 22) unless a system message says ``USAGE: <in>/<out>`` (text replies) or
``TOOL_USAGE: <in>/<out>`` (tool-call replies), so each node of a flow can bill its own, known amount.

Every request is appended to a JSON-lines log (``--log``), as ``{"t", "method", "path", "body"}``; each chat
answer then adds ``{"t", "event": "chat_reply", "reply_to", "text", "tool", "usage", "stream"}`` (what the model
said and billed: the ground truth for usage tests); a client that disconnects mid-stream adds
``{"t", "event": "client_disconnected", "path"}``.

Usage: ``python fake_llm.py [--port 0] [--port-file F] [--log F] [--token-delay 0.02]``
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import hashlib
import json
import math
import re
import struct
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CANNED_ANSWER = "Hello from the fake LLM! This answer is streamed token by token."
MODEL = "fake-gpt"
EMBEDDING_DIM = 16
TRIGGER_ERROR = "TRIGGER_ERROR"
SLOW_STREAM = "SLOW_STREAM"
SLOW_TOKENS = 40
SLOW_DELAY_S = 0.25
USAGE = {"prompt_tokens": 10, "completion_tokens": 12, "total_tokens": 22}
ROUTE_TOOL = "route"  # the multi-agent Supervisor's router tool
FINISH = "FINISH"
DIRECTIVE = re.compile(r"\b(REPLY_WITH|USAGE|TOOL_USAGE):[ \t]*([^\n<]*)")
USAGE_VALUE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def split_tokens(text: str) -> list[str]:
    """Word tokens, each carrying its leading space: ``"a b"`` -> ``["a", " b"]``."""
    words = text.split(" ")
    return [words[0], *(" " + w for w in words[1:])] if text else []


def fake_embedding(text: str) -> list[float]:
    """A deterministic unit vector derived from the text's SHA-256."""
    digest = hashlib.sha256(text.encode()).digest()
    vec = [(b - 127.5) / 127.5 for b in digest[:EMBEDDING_DIM]]
    norm = math.sqrt(sum(x * x for x in vec)) or 1.0
    return [x / norm for x in vec]


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


@dataclasses.dataclass(frozen=True)
class Reply:
    """What to answer: text, or one tool call, and the usage to bill for it."""

    text: str = ""
    tool_name: str | None = None
    tool_args: str = ""
    delay: float | None = None  # per-token delay override (slow mode)
    usage: dict[str, int] = dataclasses.field(default_factory=lambda: dict(USAGE))


def directives(req: dict[str, Any]) -> dict[str, str]:
    """``REPLY_WITH`` / ``USAGE`` / ``TOOL_USAGE`` lines of the request's system messages (the last one wins)."""
    found: dict[str, str] = {}
    for message in req.get("messages") or []:
        if message.get("role") in ("system", "developer"):
            for key, value in DIRECTIVE.findall(_text_of(message.get("content"))):
                found[key] = value.strip()
    return found


def usage_from(value: str | None) -> dict[str, int]:
    """``"11/13"`` -> OpenAI usage ``{prompt_tokens: 11, completion_tokens: 13, total_tokens: 24}``."""
    match = USAGE_VALUE.match(value or "")
    if match is None:
        return dict(USAGE)
    prompt, completion = int(match[1]), int(match[2])
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def route_args(req: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The Supervisor's ``route`` call: the first worker without a (named) message yet, else ``FINISH``."""
    properties = schema.get("properties") or {}
    options = [str(o) for o in (properties.get("next") or {}).get("enum") or [] if o != FINISH]
    spoken = {str(m["name"]) for m in req.get("messages") or [] if m.get("name")}
    nxt = next((o for o in options if o not in spoken), FINISH)
    args: dict[str, Any] = dict.fromkeys(schema.get("required", []), "test")
    args.update(reasoning=f"route to {nxt}", next=nxt, instructions=f"{nxt}: answer the user")
    return args


def choose_reply(req: dict[str, Any]) -> Reply:
    messages = req.get("messages") or []
    said = directives(req)
    tools = [t.get("function", {}) for t in req.get("tools") or []]
    tool_usage = usage_from(said.get("TOOL_USAGE") or said.get("USAGE"))
    route = next((t for t in tools if t.get("name") == ROUTE_TOOL), None)
    if route is not None:
        args = route_args(req, route.get("parameters") or {})
        return Reply(tool_name=ROUTE_TOOL, tool_args=json.dumps(args), usage=tool_usage)
    text_usage = usage_from(said.get("USAGE"))
    tool_results = [m for m in messages if m.get("role") == "tool"]
    if tool_results:
        return Reply(text=f"The tool said: {_text_of(tool_results[-1].get('content'))}.", usage=text_usage)
    if tools:
        names = [str(t.get("name", "")) for t in tools]
        name = next((n for n in names if "calculator" in n.lower()), names[0])
        if "calculator" in name.lower():
            args = {"input": "2 + 2"}
        else:  # fill required string parameters of any other tool
            schema = next(t for t in tools if t.get("name") == name).get("parameters") or {}
            args = dict.fromkeys(schema.get("required", []), "test")
        return Reply(tool_name=name, tool_args=json.dumps(args), usage=tool_usage)
    if SLOW_STREAM in last_user_text(req):
        return Reply(text=" ".join(f"slow{i}" for i in range(SLOW_TOKENS)), delay=SLOW_DELAY_S, usage=text_usage)
    return Reply(text=said.get("REPLY_WITH") or CANNED_ANSWER, usage=text_usage)


def last_user_text(req: dict[str, Any]) -> str:
    user = [m for m in req.get("messages") or [] if m.get("role") == "user"]
    return _text_of(user[-1].get("content")) if user else ""


class FakeLLMServer(ThreadingHTTPServer):
    """The HTTP server; ``log_path`` and ``token_delay`` configure the handler."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, log_path: Path | None = None, token_delay: float = 0.02) -> None:
        super().__init__(address, FakeLLMHandler)
        self.log_path = log_path
        self.token_delay = token_delay
        self._log_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def record(self, entry: dict[str, Any]) -> None:
        if self.log_path is None:
            return
        line = json.dumps({"t": time.time(), **entry}) + "\n"
        with self._log_lock, self.log_path.open("a") as fh:
            fh.write(line)


class FakeLLMHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeLLM/1.0"
    server: FakeLLMServer

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"fake_llm: {format % args}\n")

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        self.server.record({"method": "GET", "path": path, "body": None})
        if path in ("/v1/models", "/models"):
            self._send_json(
                200, {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "fake"}]}
            )
        elif path in ("", "/health"):
            self._send_json(200, {"ok": True})
        else:
            self._send_json(404, {"error": {"message": f"not found: {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = {}
        path = self.path.split("?")[0].rstrip("/")
        self.server.record({"method": "POST", "path": path, "body": body})
        if path.endswith("/chat/completions"):
            self._chat(body)
        elif path.endswith("/embeddings"):
            self._embeddings(body)
        else:
            self._send_json(404, {"error": {"message": f"not found: {self.path}", "type": "not_found"}})

    def _embeddings(self, req: dict[str, Any]) -> None:
        inputs = req.get("input", "")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        data = []
        for i, item in enumerate(inputs):
            vec = fake_embedding(item if isinstance(item, str) else json.dumps(item))
            embedding: Any = vec
            if req.get("encoding_format") == "base64":  # openai-node's default
                embedding = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        tokens = sum(len(str(t).split()) for t in inputs)
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": req.get("model", "fake-embed"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _chat(self, req: dict[str, Any]) -> None:
        if TRIGGER_ERROR in last_user_text(req):
            self._send_json(
                400,
                {
                    "error": {
                        "message": f"fake upstream error ({TRIGGER_ERROR})",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "fake_error",
                    }
                },
            )
            return
        reply = choose_reply(req)
        self.server.record(
            {
                "event": "chat_reply",
                "reply_to": self.path.split("?")[0].rstrip("/"),
                "text": reply.text if reply.tool_name is None else None,
                "tool": None if reply.tool_name is None else {"name": reply.tool_name, "arguments": reply.tool_args},
                "usage": reply.usage,
                "stream": bool(req.get("stream")),
            }
        )
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        created, model = int(time.time()), req.get("model") or MODEL
        call_id = f"call_{uuid.uuid4().hex[:8]}"
        if not req.get("stream"):
            if reply.delay:
                time.sleep(reply.delay * SLOW_TOKENS)
            if reply.tool_name is None:
                message: dict[str, Any] = {"role": "assistant", "content": reply.text}
                finish = "stop"
            else:
                message = {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": reply.tool_name, "arguments": reply.tool_args},
                        }
                    ],
                }
                finish = "tool_calls"
            self._send_json(
                200,
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                    "usage": reply.usage,
                },
            )
            return

        def frame(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            chunk = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }
            return b"data: " + json.dumps(chunk).encode() + b"\n\n"

        def delta(d: dict[str, Any], finish: str | None = None) -> bytes:
            return frame([{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}])

        def frames() -> Iterator[tuple[float, bytes]]:
            yield 0.0, delta({"role": "assistant", "content": ""})
            if reply.tool_name is None:
                pause = self.server.token_delay if reply.delay is None else reply.delay
                for token in split_tokens(reply.text):
                    yield pause, delta({"content": token})
                yield 0.0, delta({}, "stop")
            else:
                yield (
                    0.0,
                    delta(
                        {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": call_id,
                                    "type": "function",
                                    "function": {"name": reply.tool_name, "arguments": ""},
                                }
                            ]
                        }
                    ),
                )
                for i in range(0, len(reply.tool_args), 6):
                    piece = reply.tool_args[i : i + 6]
                    yield 0.0, delta({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                yield 0.0, delta({}, "tool_calls")
            if (req.get("stream_options") or {}).get("include_usage"):
                yield 0.0, frame([], usage=reply.usage)
            yield 0.0, b"data: [DONE]\n\n"

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for pause, data in frames():
                if pause:
                    time.sleep(pause)
                self.wfile.write(data)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.server.record({"event": "client_disconnected", "path": self.path})


@contextlib.contextmanager
def serve_in_thread(*, log_path: Path | None = None, token_delay: float = 0.0) -> Iterator[FakeLLMServer]:
    """Run the fake LLM on a free loopback port in a background thread (for in-process tests)."""
    server = FakeLLMServer(("127.0.0.1", 0), log_path=log_path, token_delay=token_delay)
    thread = threading.Thread(target=server.serve_forever, name="fake-llm", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fake OpenAI-compatible server for e2e tests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    parser.add_argument("--log", type=Path, help="append every request as a JSON line")
    parser.add_argument("--token-delay", type=float, default=0.02, help="seconds between streamed tokens")
    args = parser.parse_args(argv)
    server = FakeLLMServer((args.host, args.port), log_path=args.log, token_delay=args.token_delay)
    if args.port_file:
        tmp = args.port_file.with_suffix(".tmp")
        tmp.write_text(str(server.server_address[1]))
        tmp.replace(args.port_file)
    print(f"fake_llm listening on {server.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
