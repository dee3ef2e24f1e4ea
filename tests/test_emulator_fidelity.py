"""FakeFlowise against the real Flowise 3.1.4 captures: status line, header order/values and body bytes.

Every capture in ``tests/fixtures/transcripts`` is replayed (its request body against a FakeFlow configured like
the captured flow) over the loopback server with a raw socket and over the in-process transport. Only what
differs per run is normalised: UUIDs (numbered by first appearance, so equal ids must stay equal), the Date
header, ``timeMetadata`` numbers, and ETag/Content-Length (each checked against its own raw body first).
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from _captures import TRANSCRIPTS, load_capture

from flowise_integrations.testing import FakeFlow, FakeFlowise
from flowise_integrations.testing.wire import express_etag

UNKNOWN = "00000000-0000-0000-0000-000000000000"
FLOW_KEY = "flow-secret-key"
DOCS = [
    {
        "pageContent": "Paris is the capital of France.",
        "metadata": {"loc": {"lines": {"from": 5, "to": 5}}, "source": "inline-test-doc"},
    },
    {
        "pageContent": "Flowise is an open source low-code tool for building LLM apps.",
        "metadata": {"loc": {"lines": {"from": 1, "to": 1}}, "source": "inline-test-doc"},
    },
]
CALCULATOR = [{"tool": "calculator", "toolInput": {"input": "2 + 2"}, "toolOutput": "4"}]
SSE_FRAME = re.compile(rb"message:\ndata:[^\n]*\n\n|:heartbeat\n\n")
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME_METADATA = re.compile(rb'"timeMetadata":\{"start":\d+,"end":\d+,"delta":\d+\}')
HTTP_DATE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$"
)


def _agent_trace() -> list[dict[str, Any]]:
    """The Tool Agent's detailed-streaming payloads are flow content: take them from the capture."""
    events = [
        json.loads(f[len(b"message:\ndata:") :])
        for f in SSE_FRAME.findall(load_capture("tool_agent_detailed_stream").body)
    ]
    return [e["data"] for e in events if e["event"] == "agent_trace"]


def _tool_agent(**extra: Any) -> FakeFlow:
    return FakeFlow(answer="The tool said: 4.", used_tools=CALCULATOR, memory_type="Buffer Memory", **extra)


@dataclass(frozen=True)
class Case:
    """How to reproduce one capture: the flow, and the request (body taken from ``NAME.request.json``)."""

    flow: Callable[[], FakeFlow] | None
    method: str = "POST"
    endpoint: str = "prediction"
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    flow_id: str | None = None


def _retrieval() -> FakeFlow:
    return FakeFlow(start_data="Hello", source_documents=DOCS)


CASES: dict[str, Case] = {
    "llm_chain_stream": Case(FakeFlow),
    "llm_chain_nonstream": Case(FakeFlow),
    "missing_question": Case(FakeFlow, body=b"{}"),
    "conversation_stream": Case(lambda: FakeFlow(memory_type="Buffer Memory")),
    "conversation_nonstream": Case(lambda: FakeFlow(memory_type="Buffer Memory")),
    "retrieval_stream": Case(_retrieval),
    "retrieval_stream.sse_record.raw": Case(_retrieval, body=b'{"question":"What is Flowise?","streaming":true}'),
    "retrieval_nonstream": Case(_retrieval),
    "tool_agent_stream": Case(_tool_agent),
    "tool_agent_stream.sse_record.raw": Case(_tool_agent, body=b'{"question":"what is 2 + 2?","streaming":true}'),
    "tool_agent_nonstream": Case(_tool_agent),
    "tool_agent_detailed_stream": Case(lambda: _tool_agent(agent_trace=_agent_trace())),
    "tool_agent_detailed_nonstream": Case(lambda: _tool_agent(agent_trace=_agent_trace())),
    # a hand-built flow: its LLM node has no memory type/window/token-limit inputs (UI-built flows do)
    "agentflow_v2_stream": Case(lambda: FakeFlow(kind="agentflow", memory_settings=False)),
    "agentflow_v2_nonstream": Case(lambda: FakeFlow(kind="agentflow", memory_settings=False)),
    "llm_chain_error_stream": Case(lambda: FakeFlow(error="400 fake upstream error (TRIGGER_ERROR)")),
    "llm_chain_error_nonstream": Case(lambda: FakeFlow(error="400 fake upstream error (TRIGGER_ERROR)")),
    "protected_no_key_stream": Case(lambda: FakeFlow(api_key=FLOW_KEY)),
    "protected_no_key_nonstream": Case(lambda: FakeFlow(api_key=FLOW_KEY)),
    "protected_with_key_stream": Case(
        lambda: FakeFlow(api_key=FLOW_KEY), headers={"Authorization": f"Bearer {FLOW_KEY}"}
    ),
    "streaming_off_model_stream_requested": Case(lambda: FakeFlow(streaming=False)),
    "unknown_chatflow_nonstream": Case(None, body=b'{"question":"hi"}', flow_id=UNKNOWN),
    "chatflows_streaming_llm_chain": Case(FakeFlow, method="GET", endpoint="chatflows-streaming"),
    "chatflows_streaming_llm_chain_model_streaming_off": Case(
        lambda: FakeFlow(streaming=False), method="GET", endpoint="chatflows-streaming"
    ),
    "no_tiktoken_shim_llm_chain_stream.raw": Case(
        lambda: FakeFlow(heartbeats=5), body=b'{"question":"hi","streaming":true}'
    ),
}
HANGING = "unknown_chatflow_stream"  # empty capture: the server never answers


@dataclass
class Exchange:
    """One response as a client saw it, plus how the body arrived (HTTP chunks / stream parts)."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    parts: list[bytes]


# -- normalisation ---------------------------------------------------------------------------------------
def normalize_body(body: bytes) -> bytes:
    ids: dict[bytes, bytes] = {}
    body = UUID.sub(lambda m: ids.setdefault(m.group(), b"<uuid-%d>" % len(ids)), body)
    return TIME_METADATA.sub(b'"timeMetadata":<time>', body)


def normalize_headers(headers: list[tuple[str, str]], body: bytes) -> list[tuple[str, str]]:
    """Check the per-run headers against their own body, then replace them by placeholders."""
    out = []
    for name, value in headers:
        if name == "Date":
            assert HTTP_DATE.match(value), value
            value = "<date>"
        elif name == "ETag":
            assert value == express_etag(body)
            value = "<etag>"
        elif name == "Content-Length":
            assert int(value) == len(body)
            value = "<length>"
        out.append((name, value))
    return out


def normalized(status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> tuple[Any, ...]:
    return status, reason, normalize_headers(headers, body), normalize_body(body)


# -- clients ---------------------------------------------------------------------------------------------
class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            self._fill()
        out, self.buf = self.buf.split(marker, 1)
        return out

    def exactly(self, size: int) -> bytes:
        while len(self.buf) < size:
            self._fill()
        out, self.buf = self.buf[:size], self.buf[size:]
        return out


def raw_request(base_url: str, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> bytes:
    """The request curl sent when the captures were recorded."""
    host = base_url.removeprefix("http://")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "User-Agent: curl/8.5.0", "Accept: */*"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def socket_exchange(base_url: str, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Exchange:
    """Send raw bytes, parse the raw reply: status line, header list, de-chunked body and its chunks."""
    port = int(base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw_request(base_url, method, path, body, headers))
        reader = _Reader(sock)
        status_line, *header_lines = reader.until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        _, status, reason = status_line.split(" ", 2)
        header_list = [(k, v) for k, _, v in (line.partition(": ") for line in header_lines)]
        fields = {k.lower(): v for k, v in header_list}
        parts = []
        if fields.get("transfer-encoding") == "chunked":
            while (size := int(reader.until(b"\r\n"), 16)) > 0:
                parts.append(reader.exactly(size))
                assert reader.exactly(2) == b"\r\n"
            assert reader.until(b"\r\n") == b""
        else:
            parts.append(reader.exactly(int(fields["content-length"])))
    return Exchange(int(status), reason, header_list, b"".join(parts), parts)


def transport_exchange(
    fake: FakeFlowise, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> Exchange:
    sent = dict(headers, **({"Content-Type": "application/json"} if body is not None else {}))
    with (
        httpx.Client(transport=fake.transport(), base_url="http://flowise.test") as client,
        client.stream(method, path, content=body, headers=sent) as response,
    ):
        parts = list(response.iter_raw())
        header_list = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw]
        return Exchange(response.status_code, response.reason_phrase, header_list, b"".join(parts), parts)


# -- the tests -------------------------------------------------------------------------------------------
def test_every_capture_is_covered() -> None:
    files = {p.name.removesuffix(".txt") for p in TRANSCRIPTS.glob("*.txt")}
    files -= {n for n in files if n.endswith((".timing", ".summary"))}
    assert files == {*CASES, HANGING}


def test_captured_etags_follow_expresss_algorithm() -> None:
    for name in CASES:
        capture = load_capture(name)
        etags = [v for k, v in capture.headers if k == "ETag"]
        if etags:
            assert etags == [express_etag(capture.body)]


def _request_for(name: str, case: Case, fake: FakeFlowise) -> tuple[str, bytes | None]:
    flow_id = case.flow_id or fake.add_flow(case.flow() if case.flow else None)
    capture = load_capture(name)
    body = case.body
    if body is None and case.method == "POST":
        assert capture.request is not None
        body = json.dumps(capture.request, separators=(",", ":"), ensure_ascii=False).encode()
    return f"/api/v1/{case.endpoint}/{flow_id}", body


@pytest.mark.parametrize("mode", ["loopback", "transport"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_replay_matches_capture(name: str, mode: str) -> None:
    case = CASES[name]
    capture = load_capture(name)
    fake = FakeFlowise()
    path, body = _request_for(name, case, fake)
    if mode == "loopback":
        with fake.serve() as base_url:
            got = socket_exchange(base_url, case.method, path, body, case.headers)
    else:
        got = transport_exchange(fake, case.method, path, body, case.headers)

    assert normalized(got.status, got.reason, got.headers, got.body) == normalized(
        capture.status, capture.reason, capture.headers, capture.body
    )
    if capture.content_type == "text/event-stream":  # one HTTP chunk (stream part) per event, as Node writes
        frames = SSE_FRAME.findall(capture.body)
        assert b"".join(frames) == capture.body
        assert [normalize_body(p) for p in got.parts] == [normalize_body(f) for f in frames]


REAL_CAPTURES = TRANSCRIPTS.parent / "real_captures"  # recorded by tests/e2e/refresh_captures.py
PER_RUN = re.compile(rb"call_[0-9a-f]{8}|chatcmpl-[0-9a-f]{12}|http://127\.0\.0\.1:\d+/v1")


@pytest.mark.parametrize("mode", ["stream", "nonstream"])
@pytest.mark.parametrize(
    ("name", "flow"),
    [
        ("agentflow_v2_llm", FakeFlow(kind="agentflow")),
        ("agentflow_v2_agent_tool", FakeFlow(kind="agentflow", node="agent", answer="The tool said: 4.",
                                             used_tools=CALCULATOR)),
    ],
)  # fmt: skip
def test_agentflow_matches_the_ui_built_flow_captures(name: str, flow: FakeFlow, mode: str) -> None:
    """The e2e harness's UI-built agentflows (LLM node; Agent node with a calculator), body bytes."""
    raw = (REAL_CAPTURES / f"{name}_{mode}.txt").read_bytes()
    request = json.loads((REAL_CAPTURES / f"{name}_{mode}.request.json").read_text())
    fake = FakeFlowise()
    got = transport_exchange(
        fake, "POST", f"/api/v1/prediction/{fake.add_flow(flow)}", json.dumps(request).encode(), {}
    )
    expected = raw.partition(b"\r\n\r\n")[2]
    assert normalize_body(PER_RUN.sub(b"<per-run>", got.body)) == normalize_body(PER_RUN.sub(b"<per-run>", expected))


def test_unknown_chatflow_stream_capture_is_silence_over_loopback() -> None:
    assert (TRANSCRIPTS / f"{HANGING}.txt").read_bytes() == b""
    fake = FakeFlowise()
    with fake.serve() as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=0.4) as sock:
            body = b'{"question":"hi","streaming":true}'
            sock.sendall(raw_request(base_url, "POST", f"/api/v1/prediction/{UNKNOWN}", body, {}))
            with pytest.raises(TimeoutError):
                sock.recv(1)
    assert fake.last_request.json == {"question": "hi", "streaming": True}


def test_unknown_chatflow_stream_capture_is_a_read_timeout_over_the_transport() -> None:
    fake = FakeFlowise()
    with httpx.Client(transport=fake.transport(), timeout=0.2) as client, pytest.raises(httpx.ReadTimeout):
        client.post(f"http://flowise.test/api/v1/prediction/{UNKNOWN}", json={"question": "hi", "streaming": True})
    assert fake.last_request.path == f"/api/v1/prediction/{UNKNOWN}"
