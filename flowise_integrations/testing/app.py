"""The emulated Flowise server as one pure request -> reply function: middleware order, gate, routes."""

from __future__ import annotations

import json
from typing import Any, Final
from urllib.parse import parse_qsl, unquote

from .actions import Chunk, Reply
from .endpoints import Endpoints
from .prediction import error_reply, predict
from .records import RecordedRequest
from .state import ServerState
from .wire import js_json, send_reply

__all__ = ["FlowiseApp"]

# ``WHITELIST_URLS`` prefixes that a client library can reach (no workspace API key needed)
_PUBLIC: Final = (
    "/api/v1/verify/apikey/",
    "/api/v1/chatflows/apikey/",
    "/api/v1/public-chatflows",
    "/api/v1/public-chatbotConfig",
    "/api/v1/public-executions",
    "/api/v1/prediction/",
    "/api/v1/webhook/",
    "/api/v1/chatflows-streaming",
    "/api/v1/chatflows-uploads",
    "/api/v1/feedback",
    "/api/v1/leads",
    "/api/v1/get-upload-file",
    "/api/v1/ip",
    "/api/v1/ping",
    "/api/v1/version",
    "/api/v1/attachments",
    "/api/v1/settings",
    "/api/v1/text-to-speech/generate",
    "/api/v1/text-to-speech/abort",
)
_ABORT: Final = "/api/v1/chatmessage/abort"  # whitelisted since 3.1.0
_JSON: Final = "application/json; charset=utf-8"
_UI_PAGE: Final = (
    b'<!doctype html><html lang="en"><head><meta charset="utf-8"/><link rel="icon" href="/favicon.ico"/>'
    b'<meta name="viewport" content="width=device-width,initial-scale=1"/><title>Flowise - Build AI Agents, '
    b'Visually</title><script type="module" crossorigin src="/assets/index.js"></script></head><body>'
    b'<noscript>You need to enable JavaScript to run this app.</noscript><div id="root"></div></body></html>'
)
_UI_HEADERS: Final = (
    ("Accept-Ranges", "bytes"),
    ("Cache-Control", "public, max-age=0"),
    ("Last-Modified", "Tue, 24 Nov 2026 09:00:00 GMT"),
    ("ETag", f'W/"{len(_UI_PAGE):x}-19ab5a7e0c0"'),
)


class FlowiseApp:
    """Maps each request to a lazy :data:`Reply`; the transports and the loopback server only move bytes."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.endpoints = Endpoints(state)

    def handle(self, request: RecordedRequest) -> Reply:
        """Record the request, then answer it (``HEAD`` gets the headers only)."""
        self.state.record(request)
        reply = self._route(request)
        return _headers_only(reply) if request.method == "HEAD" else reply

    def _route(self, request: RecordedRequest) -> Reply:
        keep_alive = request.headers.get("connection", "").lower() != "close"
        body, problem = _parse_body(request)  # express.json() runs before everything else
        if problem is not None:
            return error_reply(request, 400, problem, self.state.profile)
        path = request.path
        if "/api/v1/" not in path.lower():
            return self._ui_page(keep_alive)
        if "/api/v1/" not in path or not self._passes_gate(request):
            return iter(send_reply(401, js_json({"error": "Unauthorized Access"}), _JSON, keep_alive=keep_alive,
                                   frame_headers=self.state.profile.frame_headers))  # fmt: skip
        if not path.startswith("/api/v1/"):
            return self._ui_page(keep_alive)
        parts = [unquote(p) for p in path[len("/api/v1/") :].split("/")]
        if len(parts) > 1 and parts[-1] == "":
            parts.pop()  # Express's non-strict routing ignores one trailing slash
        method = "GET" if request.method == "HEAD" else request.method
        reply = self._dispatch(request, method, parts[0].lower(), parts, body)
        return reply if reply is not None else self._ui_page(keep_alive)

    def _dispatch(
        self, request: RecordedRequest, method: str, route: str, parts: list[str], body: dict[str, Any]
    ) -> Reply | None:
        ep, n = self.endpoints, len(parts)
        if route == "prediction" and method == "POST" and n <= 2:
            return predict(self.state, request, body, parts[1] if n == 2 else "")
        if method == "GET" and n == 1 and route in ("ping", "version"):
            if route == "ping":
                frame = self.state.profile.frame_headers
                return iter(send_reply(200, b"pong", "text/html; charset=utf-8", keep_alive=_alive(request),
                                       frame_headers=frame))  # fmt: skip
            return ep.json(request, {"version": self.state.version})
        if route == "chatmessage" and method == "PUT" and n == 4 and parts[1].lower() == "abort":
            self.state.abort(parts[2], parts[3])
            return ep.json(request, {"status": 200, "message": "Chat message aborted"})
        if method != "GET":
            return None
        if route == "chatflows-streaming" and n == 2:
            return ep.streaming(request, parts[1])
        if route == "chatflows-uploads" and n == 2:
            return ep.uploads(request, parts[1])
        if route == "chatflows" and n == 1:
            return ep.chatflows(request)
        if route == "chatflows" and n == 2 and parts[1].lower() != "apikey":
            return ep.chatflow(request, parts[1])
        if route == "chatmessage" and n == 2:
            return ep.chat_messages(request, parts[1])
        if route == "executions" and self.state.profile.at_least(3):
            return ep.executions(request) if n == 1 else ep.execution(request, parts[1]) if n == 2 else None
        return None

    def _passes_gate(self, request: RecordedRequest) -> bool:
        """The API-key gate: whitelisted paths, 2.x's ``x-request-from: internal``, or the workspace key."""
        path, profile = request.path, self.state.profile
        if path.startswith(_PUBLIC) or (profile.abort_is_public and path.startswith(_ABORT)):
            return True
        if profile.internal_header_passes_gate and request.headers.get("x-request-from") == "internal":
            return True
        return self._has_workspace_key(request)

    def _has_workspace_key(self, request: RecordedRequest) -> bool:
        if self.state.api_key is None:
            return True
        supplied = request.headers.get("authorization", "").split("Bearer ")[-1]
        return bool(supplied) and supplied == self.state.api_key

    def _ui_page(self, keep_alive: bool) -> Reply:
        """The React app's index.html: Express's fallback for every route nobody handled."""
        return iter(
            send_reply(
                200,
                _UI_PAGE,
                "text/html; charset=UTF-8",
                keep_alive=keep_alive,
                extra=_UI_HEADERS,
                etag=False,
                frame_headers=self.state.profile.frame_headers,
            )
        )


def _alive(request: RecordedRequest) -> bool:
    return request.headers.get("connection", "").lower() != "close"


def _parse_body(request: RecordedRequest) -> tuple[dict[str, Any], str | None]:
    """``express.json()`` / ``express.urlencoded()``: the body object, or body-parser's error message."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = request.body
    if content_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8", "replace"))), None
    if content_type != "application/json" or not raw:
        return {}, None
    text = raw.decode("utf-8", "replace")
    stripped = text.lstrip(" \t\n\r")
    if not stripped.startswith(("{", "[")):  # strict mode
        return {}, _v8_syntax_error(text, len(text) - len(stripped))
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return {}, _v8_syntax_error(text, exc.pos)
    return (value if isinstance(value, dict) else {}), None


def _v8_syntax_error(text: str, pos: int) -> str:
    """Approximately the ``SyntaxError`` message V8's ``JSON.parse`` gives."""
    if pos >= len(text.rstrip()):
        return "Unexpected end of JSON input"
    snippet = text if len(text) <= 32 else text[:32] + "..."
    return f"Unexpected token '{text[pos]}', \"{snippet}\" is not valid JSON"


def _headers_only(reply: Reply) -> Reply:
    for action in reply:
        if not isinstance(action, Chunk):
            yield action
