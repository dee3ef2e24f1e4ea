"""Smoke tests of the e2e harness: every flow of the real Flowise answers, with raw httpx."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from flows import (
    CANNED_ANSWER,
    EXPECTED_ANSWERS,
    FLOW_NAMES,
    NON_STREAMING_FLOWS,
    PROTECTED_FLOWS,
    SAMPLE_QUESTIONS,
)
from harness import RealFlowiseState

TIMEOUT = httpx.Timeout(60.0, connect=5.0)
USED_CALCULATOR = {"tool": "calculator", "toolInput": {"input": "2 + 2"}, "toolOutput": "4"}


def parse_sse(raw: bytes) -> list[dict[str, Any]]:
    """Flowise's ``message:\\ndata:{json}\\n\\n`` frames -> the JSON payloads (comments dropped)."""
    events = []
    for block in raw.decode().split("\n\n"):
        data = [line[5:] for line in block.split("\n") if line.startswith("data:")]
        if data:
            events.append(json.loads("\n".join(data)))
    return events


def headers_for(flow: str, state: RealFlowiseState, *, with_key: bool | None = None) -> dict[str, str]:
    send_key = flow in PROTECTED_FLOWS if with_key is None else with_key
    return {"Authorization": f"Bearer {state.api_key}"} if send_key else {}


def predict(
    state: RealFlowiseState, flow: str, body: dict[str, Any], *, with_key: bool | None = None
) -> httpx.Response:
    return httpx.post(
        state.prediction_url(flow), json=body, headers=headers_for(flow, state, with_key=with_key), timeout=TIMEOUT
    )


def predict_stream(
    state: RealFlowiseState, flow: str, body: dict[str, Any], *, with_key: bool | None = None
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    resp = predict(state, flow, {**body, "streaming": True}, with_key=with_key)
    assert resp.headers["content-type"].startswith("text/event-stream"), resp.text[:300]
    return resp, parse_sse(resp.content)


def tokens(events: list[dict[str, Any]]) -> str:
    return "".join(e["data"] for e in events if e["event"] == "token")


def question(flow: str) -> str:
    return SAMPLE_QUESTIONS.get(flow, "hi")


@pytest.mark.parametrize("flow", FLOW_NAMES)
def test_every_flow_answers_without_streaming(real_flowise: RealFlowiseState, flow: str) -> None:
    resp = predict(real_flowise, flow, {"question": question(flow)})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["text"] == EXPECTED_ANSWERS[flow]
    assert body["question"] == question(flow)
    assert body["chatId"] and body["chatMessageId"] and body["sessionId"]


@pytest.mark.parametrize("flow", FLOW_NAMES)
def test_every_flow_answers_streaming(real_flowise: RealFlowiseState, flow: str) -> None:
    if flow in NON_STREAMING_FLOWS:  # model streaming off: plain JSON although streaming was asked for
        resp = predict(real_flowise, flow, {"question": question(flow), "streaming": True})
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/json")
        assert resp.json()["text"] == EXPECTED_ANSWERS[flow]
        return
    resp, events = predict_stream(real_flowise, flow, {"question": question(flow)})
    assert resp.status_code == 200
    names = [e["event"] for e in events]
    assert names[-2:] == ["metadata", "end"], names
    assert events[-1]["data"] == "[DONE]"
    assert tokens(events) == EXPECTED_ANSWERS[flow]
    assert events[-2]["data"]["question"] == question(flow)


def test_streamability_endpoint(real_flowise: RealFlowiseState) -> None:
    def is_streaming(flow: str) -> bool:
        url = f"{real_flowise.base_url}/api/v1/chatflows-streaming/{real_flowise.flows[flow]}"
        return bool(httpx.get(url, timeout=TIMEOUT).json()["isStreaming"])

    assert is_streaming("llm_chain")
    assert not is_streaming("llm_chain_model_streaming_off")


def test_retrieval_returns_source_documents(real_flowise: RealFlowiseState) -> None:
    body = predict(real_flowise, "retrieval_qa", {"question": "What is Flowise?"}).json()
    docs = body["sourceDocuments"]
    assert docs and all({"pageContent", "metadata"} <= d.keys() for d in docs)
    assert docs[0]["metadata"]["source"] == "inline-test-doc"
    _, events = predict_stream(real_flowise, "retrieval_qa", {"question": "What is Flowise?"})
    streamed = [e["data"] for e in events if e["event"] == "sourceDocuments"]
    assert len(streamed) == 1 and streamed[0] == docs


@pytest.mark.parametrize("flow", ["tool_agent", "tool_agent_detailed"])
def test_tool_agent_reports_used_tools(real_flowise: RealFlowiseState, flow: str) -> None:
    body = predict(real_flowise, flow, {"question": "what is 2 + 2?"}).json()
    assert body["usedTools"] == [USED_CALCULATOR]
    _, events = predict_stream(real_flowise, flow, {"question": "what is 2 + 2?"})
    used = [e["data"] for e in events if e["event"] == "usedTools"]
    assert used == [[USED_CALCULATOR]]
    traces = [e["data"]["step"] for e in events if e["event"] == "agent_trace"]
    if flow == "tool_agent_detailed" and real_flowise.is_queue:
        assert traces == []  # queue mode drops them: RedisEventPublisher has no agent-trace method
    elif flow == "tool_agent_detailed":
        assert {"agent_action", "tool_start", "tool_end"} <= set(traces)
    else:
        assert traces == []


def test_agentflow_streams_usage_metadata(real_flowise: RealFlowiseState) -> None:
    _, events = predict_stream(real_flowise, "agentflow_v2_llm", {"question": "hi"})
    names = {e["event"] for e in events}
    assert {"agentFlowEvent", "nextAgentFlow", "agentFlowExecutedData", "usageMetadata"} <= names
    assert "start" not in names
    usage = next(e["data"] for e in events if e["event"] == "usageMetadata")
    assert usage["total_tokens"] == 22
    body = predict(real_flowise, "agentflow_v2_llm", {"question": "hi"}).json()
    assert body["executionId"] and body["agentFlowExecutedData"]


def test_agentflow_agent_uses_calculator_tool(real_flowise: RealFlowiseState) -> None:
    _, events = predict_stream(real_flowise, "agentflow_v2_agent_tool", {"question": "what is 2 + 2?"})
    called = [e["data"] for e in events if e["event"] == "calledTools"]
    assert called[0] == [{**USED_CALCULATOR, "toolOutput": ""}]  # announced before the call
    assert [e["data"] for e in events if e["event"] == "usedTools"] == [[USED_CALCULATOR]]
    assert any(e["event"] == "usageMetadata" for e in events)
    body = predict(real_flowise, "agentflow_v2_agent_tool", {"question": "what is 2 + 2?"}).json()
    assert body["text"] == "The tool said: 4."
    assert "usedTools" not in body  # only inside the agent node's output
    agent = body["agentFlowExecutedData"][-1]["data"]["output"]
    assert agent["usedTools"] == [USED_CALCULATOR]


def test_protected_flow_without_key_is_unauthorized(real_flowise: RealFlowiseState) -> None:
    resp = predict(real_flowise, "llm_chain_protected", {"question": "hi"}, with_key=False)
    assert resp.status_code == 500
    assert "Unauthorized" in resp.json()["message"]
    resp, events = predict_stream(real_flowise, "llm_chain_protected", {"question": "hi"}, with_key=False)
    assert resp.status_code == 200
    assert [e["event"] for e in events] == ["error", "end"]
    assert "Unauthorized" in events[0]["data"]


def test_protected_flow_with_key_streams_tokens(real_flowise: RealFlowiseState) -> None:
    _, events = predict_stream(real_flowise, "llm_chain_protected", {"question": "hi"}, with_key=True)
    assert tokens(events) == CANNED_ANSWER


def test_upstream_error_is_reported_in_band(real_flowise: RealFlowiseState) -> None:
    resp = predict(real_flowise, "llm_chain", {"question": "please TRIGGER_ERROR"})
    assert resp.status_code == 500
    assert "fake upstream error (TRIGGER_ERROR)" in resp.json()["message"]
    resp, events = predict_stream(real_flowise, "llm_chain", {"question": "please TRIGGER_ERROR"})
    assert resp.status_code == 200
    names = [e["event"] for e in events]
    assert names[-2:] == ["error", "end"] and "metadata" not in names
    assert "TRIGGER_ERROR" in events[-2]["data"]


def test_unknown_chatflow(real_flowise: RealFlowiseState) -> None:
    url = f"{real_flowise.base_url}/api/v1/prediction/{uuid.uuid4()}"
    resp = httpx.post(url, json={"question": "hi"}, timeout=TIMEOUT)
    # before 3.0.13 the lookup's own 500 ("chatflowsService.getChatflowById - Chatflow ... not found") escapes
    assert resp.status_code == (404 if real_flowise.major >= 3 else 500)
    assert "not found" in resp.json()["message"]
    # Flowise bug (2.2.8 and 3.1.4): a streaming request that fails before the SSE starts gets no response at all.
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url, json={"question": "hi", "streaming": True}, timeout=httpx.Timeout(3.0, connect=5.0))


def test_session_memory_reaches_the_llm(real_flowise: RealFlowiseState) -> None:
    if real_flowise.fake_llm_log is None:
        pytest.skip("external server: no fake LLM request log")
    session = f"sess-{uuid.uuid4()}"
    marker = f"remember {uuid.uuid4().hex[:8]}"
    first = predict(real_flowise, "conversation_chain", {"question": marker, "overrideConfig": {"sessionId": session}})
    assert first.json()["sessionId"] == session
    predict(real_flowise, "conversation_chain", {"question": "and again?", "overrideConfig": {"sessionId": session}})
    last = [r for r in real_flowise.fake_llm_requests() if r.get("path") == "/v1/chat/completions"][-1]
    assert marker in json.dumps(last["body"]["messages"])


def test_agentflow_stream_can_be_aborted(real_flowise: RealFlowiseState) -> None:
    """SLOW_STREAM (40 tokens, 250 ms apart) cut short by ``PUT /api/v1/chatmessage/abort/{flow}/{chat}``.

    Only agentflows honour it; on chatflows (LLM chain, conversation chain) the abort answers 200 but
    the stream runs to completion.
    """
    flow = "agentflow_v2_llm"
    chat_id = str(uuid.uuid4())
    abort_url = f"{real_flowise.base_url}/api/v1/chatmessage/abort/{real_flowise.flows[flow]}/{chat_id}"
    body = {"question": "SLOW_STREAM please", "streaming": True, "chatId": chat_id}
    disconnects_before = sum(r.get("event") == "client_disconnected" for r in real_flowise.fake_llm_requests())
    raw, aborted = b"", False
    with httpx.stream("POST", real_flowise.prediction_url(flow), json=body, timeout=TIMEOUT) as resp:
        for chunk in resp.iter_bytes():
            raw += chunk
            if not aborted and b'"data":"slow0"' in raw:
                abort = httpx.put(abort_url, timeout=TIMEOUT)
                assert abort.json() == {"status": 200, "message": "Chat message aborted"}
                aborted = True
    events = parse_sse(raw)
    assert aborted
    assert tokens(events).startswith("slow0") and "slow39" not in tokens(events)  # cut short, not run out
    names = [e["event"] for e in events]
    if real_flowise.is_queue:
        # the worker's `agentFlowEvent: ERROR` (through Redis) races the main server's `error`: before it, after
        # it, or after `end` (then it is lost)
        assert names[-1] == "end" and "error" in names[-3:]
        statuses = [e["data"] for e in events if e["event"] == "agentFlowEvent"]
        assert statuses[0] == "INPROGRESS" and statuses[1:] in ([], ["ERROR"])
    else:
        assert names[-3:] == ["agentFlowEvent", "error", "end"]
        assert events[-3]["data"] == "ERROR"
    assert "This operation was aborted" in next(e["data"] for e in events if e["event"] == "error")
    if real_flowise.fake_llm_log:  # Flowise dropped the upstream LLM stream too
        deadline = time.monotonic() + 3
        while (
            sum(r.get("event") == "client_disconnected" for r in real_flowise.fake_llm_requests()) == disconnects_before
        ):
            assert time.monotonic() < deadline, "the fake LLM never saw the disconnect"
            time.sleep(0.1)
