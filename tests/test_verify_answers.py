"""Answer verification (issue 13): the streamed answer against the one Flowise stored.

The wire shapes are the ones the queue-mode rig recorded on a real Flowise 3.1.4 (tests/e2e/test_queue_rig_e2e.py):
a publish block cuts tokens out of the middle while the stream ends normally; a worker killed mid-stream gets its
job redelivered, so the client sees the first tokens, then the whole answer again (a second ``start``).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from flowise_integrations import AsyncFlowiseClient, FlowiseClient
from flowise_integrations.errors import AnswerMismatchError
from flowise_integrations.events import CorrectionEvent, TokenEvent

ANSWER = " ".join(f"slow{i}" for i in range(10))
WORDS = [f"slow{i}" if i == 0 else f" slow{i}" for i in range(10)]


def frame(event: str, data: object) -> bytes:
    return b"message:\ndata:" + json.dumps({"event": event, "data": data}).encode() + b"\n\n"


def body(tokens: list[str], *, starts: int = 1) -> bytes:
    out = frame("start", "")
    for token in tokens:
        if token == "<restart>":
            out += frame("start", "") if starts > 1 else b""
        else:
            out += frame("token", token)
    return out + frame("metadata", {"chatId": "c1", "chatMessageId": "m1"}) + frame("end", "[DONE]")


def server(stream: bytes, stored: str | None, *, late: int = 0) -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []
    lookups = [0]

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=stream)
        lookups[0] += 1
        rows: list[dict[str, Any]] = [{"id": "u1", "role": "userMessage", "content": "hi"}]
        if stored is not None and lookups[0] > late:
            rows.append({"id": "m1", "role": "apiMessage", "content": stored})
        return httpx.Response(200, json=rows)

    return seen, httpx.MockTransport(handle)


def client(transport: httpx.MockTransport, **kwargs: Any) -> FlowiseClient:
    return FlowiseClient(
        "http://flowise.test", api_key="k", http_client=httpx.Client(transport=transport), diagnose_after=None, **kwargs
    )


def test_a_sound_stream_costs_nothing_by_default() -> None:
    seen, transport = server(body(WORDS), ANSWER)
    result = client(transport).stream("flow", "hi").until_done()
    assert result.text == ANSWER and not result.recovered
    assert [r.method for r in seen] == ["POST"]


def test_verify_always_looks_once_and_changes_nothing_when_they_agree() -> None:
    seen, transport = server(body(WORDS), ANSWER)
    result = client(transport, verify_answers=True).stream("flow", "hi").until_done()
    assert result.text == ANSWER and not result.recovered
    assert [r.method for r in seen] == ["POST", "GET"]
    assert seen[1].url.params["chatId"] == "c1" and seen[1].url.params["messageId"] == "m1"


def test_a_cut_tail_is_streamed_as_the_missing_token() -> None:
    _, transport = server(body(WORDS[:6]), ANSWER)
    stream = client(transport, verify_answers=True).stream("flow", "hi")
    events = list(stream)
    assert [e.data for e in events if isinstance(e, TokenEvent)][-1] == ANSWER[len("".join(WORDS[:6])) :]
    assert stream.result.text == ANSWER and stream.result.recovered


def test_tokens_lost_mid_stream_are_corrected() -> None:
    """The rig's publish block: 'slow3'..'slow5' never arrived, the stream ended normally."""
    _, transport = server(body(WORDS[:3] + WORDS[6:]), ANSWER)
    stream = client(transport, verify_answers=True).stream("flow", "hi")
    corrections = [e for e in stream if isinstance(e, CorrectionEvent)]
    assert [c.data["reason"] for c in corrections] == ["incomplete"]
    assert stream.result.text == ANSWER and stream.result.recovered and stream.result.finish_reason == "stop"


def test_a_redelivered_job_is_detected_for_free_and_corrected() -> None:
    """The rig's killed worker: three tokens, then the whole answer again after a second ``start``."""
    seen, transport = server(body([*WORDS[:3], "<restart>", *WORDS], starts=2), ANSWER)
    stream = client(transport).stream("flow", "hi")  # verify_answers="auto"
    corrections = [e for e in stream if isinstance(e, CorrectionEvent)]
    assert [c.data for c in corrections] == [{"text": ANSWER, "reason": "repeated"}]
    assert stream.result.text == ANSWER and stream.result.recovered
    assert [r.method for r in seen] == ["POST", "GET"]


def test_a_redelivery_without_a_key_is_a_typed_error_not_a_silent_repeat() -> None:
    _, transport = server(body([*WORDS[:3], "<restart>", *WORDS], starts=2), ANSWER)
    plain = FlowiseClient("http://flowise.test", http_client=httpx.Client(transport=transport), diagnose_after=None)
    with pytest.raises(AnswerMismatchError, match="restarted mid-stream") as info:
        plain.stream("flow", "hi").until_done()
    assert info.value.stored_text is None
    assert info.value.partial is not None and info.value.partial.text.count("slow0") == 2


def test_raise_on_mismatch_keeps_both_answers() -> None:
    streamed = WORDS[:3] + WORDS[6:]
    _, transport = server(body(streamed), ANSWER)
    with pytest.raises(AnswerMismatchError, match="differs from the stored message") as info:
        client(transport, verify_answers=True, on_answer_mismatch="raise").stream("flow", "hi").until_done()
    assert info.value.stored_text == ANSWER
    assert info.value.partial is not None and info.value.partial.text == "".join(streamed)


def test_a_stored_row_that_lands_late_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("flowise_integrations.client._STORED_ROW_WAITS", (0.0, 0.0, 0.0, None))
    seen, transport = server(body(WORDS[:3] + WORDS[6:]), ANSWER, late=2)
    result = client(transport, verify_answers=True).stream("flow", "hi").until_done()
    assert result.text == ANSWER and result.recovered
    assert [r.method for r in seen] == ["POST", "GET", "GET", "GET"]


def test_verify_always_needs_a_key() -> None:
    with pytest.raises(ValueError, match="needs an api_key"):
        FlowiseClient("http://flowise.test", verify_answers=True)
    with pytest.raises(ValueError, match="verify_answers"):
        FlowiseClient("http://flowise.test", verify_answers="sometimes")  # type: ignore[arg-type]


async def test_async_redelivery_is_corrected_too() -> None:
    _, transport = server(body([*WORDS[:3], "<restart>", *WORDS], starts=2), ANSWER)
    aclient = AsyncFlowiseClient("http://flowise.test", api_key="k", diagnose_after=None,
                                 http_client=httpx.AsyncClient(transport=transport))  # fmt: skip
    result = await aclient.stream("flow", "hi").until_done()
    assert result.text == ANSWER and result.recovered


def test_a_redelivery_without_a_second_start_is_caught_by_its_repeated_opening() -> None:
    """Flowise sends ``start`` once per client, so a redelivered run shows only as its opening tokens again."""
    seen, transport = server(body([*WORDS[:3], *WORDS]), ANSWER)
    stream = client(transport).stream("flow", "hi")  # verify_answers="auto"
    corrections = [e for e in stream if isinstance(e, CorrectionEvent)]
    assert [c.data["reason"] for c in corrections] == ["repeated"]
    assert stream.result.text == ANSWER and stream.result.recovered
    assert [r.method for r in seen] == ["POST", "GET"]


def test_an_answer_that_repeats_its_opening_costs_one_lookup_and_stays() -> None:
    chant = ["Go", " team", "!", "Go", " team", "!"]
    seen, transport = server(body(chant), "".join(chant))
    result = client(transport).stream("flow", "hi").until_done()
    assert result.text == "".join(chant) and not result.recovered
    assert [r.method for r in seen] == ["POST", "GET"]


def test_without_a_key_a_repeated_opening_alone_is_not_an_error() -> None:
    """Only a certain restart (a second ``start``) raises without a key; a repeated opening may be a real answer."""
    _, transport = server(body([*WORDS[:3], *WORDS]), ANSWER)
    plain = FlowiseClient("http://flowise.test", http_client=httpx.Client(transport=transport), diagnose_after=None)
    result = plain.stream("flow", "hi").until_done()
    assert result.text.count("slow0") == 2 and not result.recovered
