"""Property tests: our byte-level SSE decoder decodes exactly like httpx-sse, however the bytes are chunked."""

from __future__ import annotations

import json

import httpx
from httpx_sse import EventSource
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowise_integrations.events import TokenEvent
from flowise_integrations.exchange import StreamState
from flowise_integrations.sse import SSEDecoder

# Text that stresses every trap: SSE delimiters, U+2028/U+2029/U+0085 (str.splitlines() breaks on them),
# "data:" inside content, CR, emoji (4-byte UTF-8) and other multi-byte characters.
TRICKY = st.lists(
    st.sampled_from(
        [*list('ab :\r\n\t{}"\\'), "data:", "message", "\u2028", "\u2029", "\x85", "é", "中", "😀", "\x00"]
    ),
    max_size=25,
).map("".join)


def _httpx_sse(chunks: list[bytes]) -> list[tuple[str, str, str, int | None]]:
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=iter(chunks))
    return [(e.event, e.data, e.id, e.retry) for e in EventSource(response).iter_sse()]


def _ours(chunks: list[bytes]) -> list[tuple[str, str, str, int | None]]:
    decoder = SSEDecoder()
    frames = [f for chunk in chunks for f in decoder.feed(chunk)] + decoder.flush()
    return [(ev, data.decode("utf-8", errors="replace"), eid, retry) for ev, data, eid, retry in frames]


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks, last = [], 0
    for p in [*points, len(data)]:
        if p > last:
            chunks.append(data[last:p])
            last = p
    return chunks or [data]


@st.composite
def sse_streams(draw: st.DrawFn) -> bytes:
    """Arbitrary spec-shaped (and mis-shaped) SSE: fields, comments, blank lines, every line ending."""
    eol = st.sampled_from([b"\n", b"\r\n", b"\r"])
    parts: list[bytes] = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["data", "data ", "event", "id", "retry", "comment", "blank", "message", "junk"]))
        value = draw(TRICKY).replace("\r", "").replace("\n", "").encode("utf-8", errors="surrogatepass")
        line = {
            "data": b"data:" + value,
            "data ": b"data: " + value,
            "event": b"event:" + value,
            "id": b"id:" + value,
            "retry": b"retry:" + str(draw(st.integers(-5, 5000))).encode(),
            "comment": b":" + value,
            "blank": b"",
            "message": b"message" + draw(st.sampled_from([b"", b":"])),
            "junk": value,
        }[kind]
        parts.append(line + draw(eol))
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from([b"", b"\r", b"data:tail", b"\n"])))
    return b"".join(parts)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(stream=sse_streams(), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_decodes_exactly_like_httpx_sse(stream: bytes, cuts: list[int]) -> None:
    chunks = _split(stream, cuts)
    assert _ours(chunks) == _httpx_sse(chunks)


@settings(max_examples=200)
@given(raw=st.binary(max_size=200), cuts=st.lists(st.integers(0, 1000), max_size=8))
def test_arbitrary_bytes_decode_like_httpx_sse(raw: bytes, cuts: list[int]) -> None:
    """Even garbage (invalid UTF-8 included) decodes identically."""
    chunks = _split(raw, cuts)
    assert _ours(chunks) == _httpx_sse(chunks)


def _flowise_frame(obj: object, *, colon: bool = True) -> bytes:
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return (b"message:\n" if colon else b"message\n") + b"data:" + text.encode() + b"\n\n"


@settings(max_examples=300)
@given(
    tokens=st.lists(TRICKY, min_size=1, max_size=15),
    cuts=st.lists(st.integers(0, 100_000), max_size=20),
    crlf=st.booleans(),
    old_dialect=st.booleans(),
    heartbeat=st.booleans(),
)
def test_any_split_of_a_flowise_stream_yields_the_same_events(
    tokens: list[str], cuts: list[int], crlf: bool, old_dialect: bool, heartbeat: bool
) -> None:
    body = b"".join(_flowise_frame({"event": "token", "data": t}) for t in tokens)
    if heartbeat:
        body = b":heartbeat\n\n" + body + b":heartbeat\n\n"
    body += _flowise_frame({"event": "end", "data": "[DONE]"}, colon=not old_dialect)
    if crlf:
        body = body.replace(b"\n", b"\r\n")
    state = StreamState("flow", None, streaming=True)
    events = [e for chunk in _split(body, cuts) for e in state.feed(chunk)] + state.eof()
    assert [e.data for e in events if isinstance(e, TokenEvent)] == tokens
    assert events[-1].event == "end"
    assert state.result.text == "".join(tokens)
    assert state.final_error() is None


def test_split_inside_a_multibyte_character() -> None:
    body = _flowise_frame({"event": "token", "data": "😀 and \u2028 data: x"})
    for i in range(1, len(body)):
        state = StreamState("flow", None, streaming=True)
        events = state.feed(body[:i]) + state.feed(body[i:])
        assert [e.data for e in events] == ["😀 and \u2028 data: x"]


def test_official_sdk_corruption_case_is_kept_verbatim() -> None:
    """The `flowise` SDK strips every "data:" from a line; we keep the token exactly."""
    state = StreamState("flow", None, streaming=True)
    events = state.feed(_flowise_frame({"event": "token", "data": "see data:image/png;base64,AAA"}))
    assert events[0].data == "see data:image/png;base64,AAA"


@settings(max_examples=300)
@given(
    parts=st.lists(
        st.one_of(
            TRICKY.map(lambda t: _flowise_frame({"event": "token", "data": t})),  # the one-frame fast path
            st.sampled_from(
                [
                    b"retry:5\n",
                    b"id:7\n",
                    b"event:x\n",
                    b"message:\ndata:a\r\n\n",
                    b"\n",
                    b":hb\n\n",
                    b"message:\ndata:{}\n\n\n",
                    b"message:\ndata:x\ndata:y\n\n",
                    b"data:",
                ]
            ),
        ),
        max_size=12,
    )
)
def test_fast_path_for_whole_flowise_frames_matches_httpx_sse(parts: list[bytes]) -> None:
    """Chunks that are exactly one Flowise frame take a shortcut; mixed with pending state it must still agree."""
    assert _ours(parts) == _httpx_sse(parts)
