"""Small helpers shared by the e2e test modules (not tests themselves).

* :func:`parse_sse_frames` splits a raw Flowise SSE body into frames (prefix lines + JSON payload);
* :func:`shape` reduces a JSON value to its *shape*: dict keys in order and the JSON type of every leaf
  (values of strings, numbers and booleans ignored, so ids, dates and counts never matter);
* :func:`wire_summary` turns one raw HTTP exchange into a comparable summary (status, content type, stable
  headers, event names with payload shapes, or the JSON body's shape);
* :func:`llm_chat_requests` reads the fake LLM's request log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from harness import RealFlowiseState

from flowise_integrations import AsyncFlowiseClient, FlowiseClient, FlowiseEvent, Prediction

E = TypeVar("E")

# Headers whose values change on every request (or with the body's length).
VOLATILE_HEADERS = frozenset({"date", "etag", "content-length"})


@dataclass(frozen=True)
class Frame:
    """One SSE frame: the non-``data:`` lines (``message:``) and the decoded ``data:`` JSON."""

    prefix: tuple[str, ...]
    payload: Any
    comment: bool = False


def parse_sse_frames(raw: bytes) -> list[Frame]:
    """Flowise's ``message:\\ndata:{json}\\n\\n`` blocks -> frames (``:heartbeat`` comments kept as such)."""
    frames: list[Frame] = []
    for block in raw.decode("utf-8").split("\n\n"):
        if not block:
            continue
        lines = block.split("\n")
        if all(line.startswith(":") for line in lines):
            frames.append(Frame(tuple(lines), None, comment=True))
            continue
        data = [line[len("data:") :] for line in lines if line.startswith("data:")]
        prefix = tuple(line for line in lines if not line.startswith("data:"))
        frames.append(Frame(prefix, json.loads("\n".join(data)) if data else None))
    return frames


def sse_events(raw: bytes) -> list[dict[str, Any]]:
    """Only the JSON payloads (``{"event", "data"}``), comments dropped."""
    return [f.payload for f in parse_sse_frames(raw) if not f.comment]


def _is_json_text(value: str) -> bool:
    return value[:1] in ("{", "[") and value[-1:] in ("}", "]")


def shape(value: Any, *, parse_json_strings: bool = True) -> Any:
    """The shape of a JSON value: ordered ``(key, shape)`` pairs for objects, element shapes for arrays.

    Leaves become their JSON type name (``"str"``, ``"number"``, ``"bool"``, ``"null"``). Strings holding JSON
    objects/arrays (Flowise's ``agent_trace.action``, ``followUpPrompts``) are shaped as ``("json", shape)``.
    """
    if isinstance(value, dict):
        return ("object", tuple((k, shape(v, parse_json_strings=parse_json_strings)) for k, v in value.items()))
    if isinstance(value, list):
        return ("array", tuple(shape(v, parse_json_strings=parse_json_strings) for v in value))
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    if isinstance(value, str):
        if parse_json_strings and _is_json_text(value):
            try:
                return ("json", shape(json.loads(value), parse_json_strings=parse_json_strings))
            except ValueError:
                pass
        return "str"
    return type(value).__name__


def shape_text(value: Any, indent: int = 0) -> str:
    """A readable, diffable rendering of :func:`shape` output (one key per line)."""
    pad = "  " * indent
    if isinstance(value, tuple) and value and value[0] == "object":
        if not value[1]:
            return "{}"
        inner = "".join(f"\n{pad}  {k}: {shape_text(v, indent + 1)}" for k, v in value[1])
        return "{" + inner + f"\n{pad}}}"
    if isinstance(value, tuple) and value and value[0] == "array":
        if not value[1]:
            return "[]"
        return "[" + "".join(f"\n{pad}  - {shape_text(v, indent + 1)}" for v in value[1]) + f"\n{pad}]"
    if isinstance(value, tuple) and value and value[0] == "json":
        return "json-string " + shape_text(value[1], indent)
    return str(value)


@dataclass
class WireSummary:
    """What must agree between the real server and the emulator for one request."""

    status: int
    content_type: str
    headers: tuple[tuple[str, str], ...]
    events: list[tuple[tuple[str, ...], str, Any]] = field(default_factory=list)  # (prefix, name, data shape)
    json_shape: Any = None

    def render(self) -> str:
        lines = [f"HTTP {self.status} {self.content_type}", *(f"{k}: {v}" for k, v in self.headers)]
        for prefix, name, data in self.events:
            lines.append(f"{'|'.join(prefix)} {name}: {shape_text(data, 1)}")
        if self.json_shape is not None:
            lines.append(shape_text(self.json_shape))
        return "\n".join(lines)


def wire_summary(response: httpx.Response) -> WireSummary:
    """Summarize a fully read response (SSE or JSON) for a real-vs-emulator comparison."""
    headers = tuple(
        (k.lower(), "<volatile>" if k.lower() in VOLATILE_HEADERS else v) for k, v in response.headers.multi_items()
    )
    summary = WireSummary(response.status_code, response.headers.get("content-type", ""), headers)
    if summary.content_type.startswith("text/event-stream"):
        for frame in parse_sse_frames(response.content):
            if frame.comment:  # `:heartbeat`: Flowise's 30 s timer ticks into whichever streams are open
                continue
            payload = frame.payload
            name = payload.get("event") if isinstance(payload, dict) else "<not an object>"
            others = {k: v for k, v in payload.items() if k != "event"} if isinstance(payload, dict) else payload
            summary.events.append((frame.prefix, str(name), shape(others)))
    else:
        summary.json_shape = shape(json.loads(response.content)) if response.content else None
    return summary


def first_difference(real: WireSummary, fake: WireSummary) -> str:
    """A precise, human-readable list of every difference between two summaries (``""`` if equal)."""
    out: list[str] = []
    if (real.status, real.content_type) != (fake.status, fake.content_type):
        out.append(
            f"status/content-type: real {real.status} {real.content_type!r} vs emulator {fake.status} {fake.content_type!r}"
        )
    if real.headers != fake.headers:
        out.append(f"headers:\n  real     {list(real.headers)}\n  emulator {list(fake.headers)}")
    real_names = [e[1] for e in real.events]
    fake_names = [e[1] for e in fake.events]
    if real_names != fake_names:
        out.append(f"event names:\n  real     {real_names}\n  emulator {fake_names}")
    else:
        for i, (r, f) in enumerate(zip(real.events, fake.events, strict=True)):
            if r[0] != f[0]:
                out.append(f"event #{i} {r[1]!r}: frame prefix real {r[0]} vs emulator {f[0]}")
            out += [f"event #{i} {r[1]!r}: {line}" for line in shape_diff(r[2], f[2])]
    if real.json_shape != fake.json_shape:
        out += [f"JSON body: {line}" for line in shape_diff(real.json_shape, fake.json_shape)]
    return "\n".join(out)


def llm_chat_requests(state: RealFlowiseState, since: int = 0) -> list[dict[str, Any]]:
    """Bodies of the chat-completion requests the fake LLM logged (from log entry ``since`` on)."""
    return [
        r["body"] for r in state.fake_llm_requests()[since:] if str(r.get("path", "")).endswith("/chat/completions")
    ]


def llm_log_length(state: RealFlowiseState) -> int:
    return len(state.fake_llm_requests())


def message_texts(messages: Iterable[dict[str, Any]]) -> list[str]:
    """The text of every message of an OpenAI chat request (content parts joined)."""
    out = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        out.append("" if content is None else str(content))
    return out


def shape_diff(real: Any, fake: Any, path: str = "$") -> list[str]:
    """Where two :func:`shape` values differ, as ``path: what`` lines (empty when equal)."""
    if real == fake:
        return []
    kinds = {type(real), type(fake)}
    if kinds == {tuple} and real[0] == fake[0] == "object":
        rk, fk = [k for k, _ in real[1]], [k for k, _ in fake[1]]
        out = []
        if rk != fk:
            missing = [k for k in rk if k not in fk]
            extra = [k for k in fk if k not in rk]
            if missing:
                out.append(f"{path}: keys only on the real server: {missing}")
            if extra:
                out.append(f"{path}: keys only in the emulator: {extra}")
            if not missing and not extra:
                out.append(f"{path}: key order differs: real {rk} vs emulator {fk}")
        fd = dict(fake[1])
        for k, v in real[1]:
            if k in fd:
                out += shape_diff(v, fd[k], f"{path}.{k}")
        return out
    if kinds == {tuple} and real[0] == fake[0] == "array":
        if len(real[1]) != len(fake[1]):
            return [f"{path}: {len(real[1])} items on the real server vs {len(fake[1])} in the emulator"]
        return [
            line
            for i, (r, f) in enumerate(zip(real[1], fake[1], strict=True))
            for line in shape_diff(r, f, f"{path}[{i}]")
        ]
    if kinds == {tuple} and real[0] == fake[0] == "json":
        return shape_diff(real[1], fake[1], f"{path}<json>")
    return [f"{path}: real {_short(real)} vs emulator {_short(fake)}"]


def _short(s: Any) -> str:
    text = shape_text(s)
    return text if len(text) < 80 else text[:77] + "..."


# --------------------------------------------------------------------------------------- client runner

MODES = ("predict", "stream", "apredict", "astream")
"""How a test drives the core client: sync/async x JSON/stream."""


@dataclass
class Outcome:
    """The folded result of one call, plus every typed event when it was streamed."""

    result: Prediction
    events: list[FlowiseEvent]
    chat_id: str | None = None  # the stream's chat id, known before the first event


def is_streaming_mode(mode: str) -> bool:
    return mode.endswith("stream")


async def run_client(
    state: RealFlowiseState,
    mode: str,
    chatflow_id: str,
    question: str | None,
    *,
    api_key: str | bool | None = True,
    client_options: dict[str, Any] | None = None,
    **call: Any,
) -> Outcome:
    """One prediction on the real server through the public client in ``mode`` (:data:`MODES`).

    ``api_key=True`` uses the server's key, ``None``/``False`` none, a string that key. Exceptions propagate.
    """
    key = state.api_key if api_key is True else (api_key or None)
    return await run_client_at(state.base_url, key, mode, chatflow_id, question, client_options=client_options, **call)


async def run_client_at(
    base_url: str,
    api_key: str | None,
    mode: str,
    chatflow_id: str,
    question: str | None,
    *,
    client_options: dict[str, Any] | None = None,
    sync_http: Callable[[], httpx.Client] | None = None,
    async_http: Callable[[], httpx.AsyncClient] | None = None,
    **call: Any,
) -> Outcome:
    """Like :func:`run_client` for any server; ``sync_http``/``async_http`` make the httpx client to use."""
    options: dict[str, Any] = {"timeout": 30.0, **(client_options or {})}
    if mode in ("predict", "stream"):

        def sync() -> Outcome:
            http = sync_http() if sync_http else None
            with FlowiseClient(base_url, api_key, http_client=http, **options) as client:
                try:
                    if mode == "predict":
                        return Outcome(client.predict(chatflow_id, question, **call), [])
                    with client.stream(chatflow_id, question, **call) as stream:
                        events = list(stream)
                    return Outcome(stream.result, events, stream.chat_id)
                finally:
                    if http is not None:
                        http.close()

        return await asyncio.to_thread(sync)
    http = async_http() if async_http else None
    try:
        async with AsyncFlowiseClient(base_url, api_key, http_client=http, **options) as client:
            if mode == "apredict":
                return Outcome(await client.predict(chatflow_id, question, **call), [])
            async with client.stream(chatflow_id, question, **call) as stream:
                events = [event async for event in stream]
            return Outcome(stream.result, events, stream.chat_id)
    finally:
        if http is not None:
            await http.aclose()


def of_type(events: Iterable[FlowiseEvent], cls: type[E]) -> list[E]:
    return [e for e in events if type(e) is cls]
