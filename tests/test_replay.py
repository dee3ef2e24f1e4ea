"""Every real Flowise 3.1.4 capture replays through the client to the right events and Prediction, sync and async."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from _captures import Capture, capture_names, load_capture

from flowise_integrations import (
    AsyncFlowiseClient,
    AuthenticationError,
    FlowExecutionError,
    FlowiseClient,
    FlowiseError,
    InternalServerError,
    Prediction,
)

ANSWER = "Hello from the fake LLM! This answer is streamed token by token."
TOOL_ANSWER = "The tool said: 4."


def _handler(capture: Capture) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        headers = [(k, v) for k, v in capture.headers if k.lower() not in ("transfer-encoding", "content-length")]
        return httpx.Response(capture.status, headers=headers, content=capture.body)

    return handle


def _sync_run(capture: Capture, mode: str) -> tuple[list[str], Prediction | FlowiseError]:
    http = httpx.Client(transport=httpx.MockTransport(_handler(capture)))
    client = FlowiseClient("http://flowise.test", http_client=http, diagnose_after=None)
    names: list[str] = []
    try:
        if mode == "predict":
            return names, client.predict("flow", "hi")
        with client.stream("flow", "hi") as stream:
            for event in stream:
                names.append(event.event)
        return names, stream.result
    except FlowiseError as exc:
        return names, exc


async def _async_run(capture: Capture, mode: str) -> tuple[list[str], Prediction | FlowiseError]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(_handler(capture)))
    client = AsyncFlowiseClient("http://flowise.test", http_client=http, diagnose_after=None)
    names: list[str] = []
    try:
        if mode == "predict":
            return names, await client.predict("flow", "hi")
        async with client.stream("flow", "hi") as stream:
            async for event in stream:
                names.append(event.event)
        return names, stream.result
    except FlowiseError as exc:
        return names, exc


EXPECTED: dict[str, dict[str, Any]] = {
    "llm_chain": {"text": ANSWER},
    "conversation": {"text": ANSWER, "memory_type": "Buffer Memory", "session_id": "sess-1795514215"},
    "retrieval": {"text": ANSWER, "sources": 2},
    "tool_agent": {"text": TOOL_ANSWER, "tools": ["calculator"], "memory_type": "Buffer Memory"},
    "tool_agent_detailed": {"text": TOOL_ANSWER, "tools": ["calculator"]},
    "agentflow_v2": {"text": ANSWER, "usage": (10, 12, 22), "nodes": 2},
    "streaming_off_model": {"text": ANSWER},
    "protected_with_key": {"text": ANSWER},
}


def _expected(name: str) -> dict[str, Any] | None:
    for prefix, expected in EXPECTED.items():
        if name.startswith(prefix):
            return expected
    return None


def _check(name: str, capture: Capture, names: list[str], outcome: Prediction | FlowiseError) -> None:
    if name.startswith("protected_no_key"):
        assert isinstance(outcome, AuthenticationError)
        assert outcome.message == "Error: predictionsServices.buildChatflow - Unauthorized"
        return
    if name.startswith("llm_chain_error"):
        assert type(outcome) is FlowExecutionError  # the same class for both modes
        assert isinstance(outcome, InternalServerError)
        assert outcome.message == "Error: predictionsServices.buildChatflow - 400 fake upstream error (TRIGGER_ERROR)"
        if name.endswith("_stream"):
            assert outcome.partial is not None and outcome.partial.text == ""
            assert names in ([], ["error", "end"])  # predict() collects no names
        else:
            assert outcome.status_code == 500
        return
    expected = _expected(name)
    assert expected is not None, name
    assert isinstance(outcome, Prediction), outcome
    assert outcome.text == expected["text"]
    assert outcome.finish_reason == "stop" and outcome.finished
    assert outcome.chat_id and outcome.chat_message_id and outcome.session_id
    assert outcome.streamed == ("text/event-stream" in capture.content_type)
    assert len(outcome.source_documents) == expected.get("sources", 0)
    if expected.get("sources"):
        assert outcome.source_documents[0].page_content == "Paris is the capital of France."
        assert outcome.source_documents[0].metadata["source"] == "inline-test-doc"
    assert [t.tool for t in outcome.used_tools] == expected.get("tools", [])
    if expected.get("tools"):
        assert outcome.used_tools[0].tool_input == {"input": "2 + 2"} and outcome.used_tools[0].tool_output == "4"
    if "usage" in expected:
        assert outcome.usage is not None
        assert (outcome.usage.input_tokens, outcome.usage.output_tokens, outcome.usage.total_tokens) == expected[
            "usage"
        ]
        assert len(outcome.agent_flow_executed_data) == expected["nodes"]
    else:
        assert outcome.usage is None
    if "memory_type" in expected:
        assert outcome.memory_type == expected["memory_type"]
    if "session_id" in expected:
        assert outcome.session_id == expected["session_id"]
    if names:
        assert names[-1] == "end" and names[-2] == "metadata"
        if name == "agentflow_v2_stream":
            assert "start" not in names and names[0] == "agentFlowEvent"


CAPTURES = [n for n in capture_names() if load_capture(n).status]


@pytest.mark.parametrize("mode", ["stream", "predict"])
@pytest.mark.parametrize("name", CAPTURES)
def test_capture_replays_sync(name: str, mode: str) -> None:
    capture = load_capture(name)
    names, outcome = _sync_run(capture, mode)
    _check(name, capture, names, outcome)


@pytest.mark.parametrize("mode", ["stream", "predict"])
@pytest.mark.parametrize("name", CAPTURES)
async def test_capture_replays_async(name: str, mode: str) -> None:
    capture = load_capture(name)
    names, outcome = await _async_run(capture, mode)
    _check(name, capture, names, outcome)


def test_stream_events_of_the_retrieval_capture() -> None:
    """The exact typed event sequence, `start` carrying the first token but not counted as content."""
    names, outcome = _sync_run(load_capture("retrieval_stream"), "stream")
    assert names == ["start"] + ["token"] * 12 + ["sourceDocuments", "metadata", "end"]
    assert isinstance(outcome, Prediction)
    assert outcome.text.startswith("Hello from")  # not "HelloHello from"


def test_heartbeats_before_metadata_are_ignored() -> None:
    """The no-tiktoken capture: tokens, five `:heartbeat` comments, then (here) the tail Flowise sent later."""
    raw = load_capture("llm_chain_stream")
    body = raw.body.replace(
        b'message:\ndata:{"event":"metadata"', b":heartbeat\n\n" * 5 + b'message:\ndata:{"event":"metadata"'
    )
    capture = Capture(raw.name, raw.status, raw.reason, raw.headers, body, raw.request)
    names, outcome = _sync_run(capture, "stream")
    assert isinstance(outcome, Prediction) and outcome.text == ANSWER
    assert names.count("token") == 12
