"""FakeFlowise behaviour: scripting, faults, side endpoints, the gate, transports and the loopback server."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from flowise_integrations.testing import UNDEFINED, FakeFlow, FakeFlowise, split_tokens
from flowise_integrations.testing.wire import js_json, sse_event

KEY = "workspace-key"
BASE = "http://flowise.test"
FRAME = re.compile(rb"message:\ndata:([^\n]*)\n\n|:heartbeat\n\n")


def events(body: bytes) -> list[dict[str, Any]]:
    """Every SSE event; a heartbeat comment becomes ``{"event": ":heartbeat"}``."""
    frames = FRAME.findall(body)
    assert len(b"".join(FRAME.sub(b"", body))) == 0, body
    return [json.loads(f) if f else {"event": ":heartbeat"} for f in frames]


def names(body: bytes) -> list[str]:
    return [e["event"] for e in events(body)]


def tokens(body: bytes) -> list[str]:
    return [e["data"] for e in events(body) if e["event"] == "token"]


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def fake() -> FakeFlowise:
    return FakeFlowise(api_key=KEY)


@pytest.fixture
def client(fake: FakeFlowise) -> Iterator[httpx.Client]:
    with httpx.Client(transport=fake.transport(), base_url=BASE, timeout=5) as http:
        yield http


@pytest.fixture
def served(fake: FakeFlowise) -> Iterator[str]:
    with fake.serve() as base_url:
        yield base_url


def stream(client: httpx.Client, flow_id: str, **body: Any) -> httpx.Response:
    return client.post(f"/api/v1/prediction/{flow_id}", json={"question": "hi", "streaming": True, **body})


def predict(client: httpx.Client, flow_id: str, **body: Any) -> httpx.Response:
    return client.post(f"/api/v1/prediction/{flow_id}", json={"question": "hi", **body})


# -- wire format -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": "é\u2028中", "b": "\n\t\x01\"\\"}, '{"a":"é\u2028中","b":"\\n\\t\\u0001\\"\\\\"}'),
        ({"a": UNDEFINED, "b": [UNDEFINED, None], "c": True}, '{"b":[null,null],"c":true}'),
        ([1.0, 0.1, 1e21, 1e-7, 0.00001, 123.456, -2.5, 1e300, float("nan")],
         "[1,0.1,1e+21,1e-7,0.00001,123.456,-2.5,1e+300,null]"),
        ("\ud800", '"\\ud800"'),
    ],
)  # fmt: skip
def test_js_json_is_json_stringify(value: Any, expected: str) -> None:
    assert js_json(value) == expected.encode("utf-8")


def test_sse_frames_leave_undefined_out() -> None:
    assert sse_event("sourceDocuments") == b'message:\ndata:{"event":"sourceDocuments"}\n\n'
    assert sse_event("thinking", "", 3) == b'message:\ndata:{"event":"thinking","data":"","duration":3}\n\n'


@pytest.mark.parametrize("text", ["Hello from the fake LLM!", "  lead", "trail \n", "   ", "", "a\u2028b c"])
def test_split_tokens_round_trips(text: str) -> None:
    assert "".join(split_tokens(text)) == text


# -- scripting -------------------------------------------------------------------------------------------
def test_defaults_and_recorded_requests(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(FakeFlow())
    response = stream(client, flow, chatId="c-1")
    assert names(response.content) == ["start", *["token"] * 12, "metadata", "end"]
    assert "".join(tokens(response.content)) == "Hello from the fake LLM! This answer is streamed token by token."
    meta = events(response.content)[-2]["data"]
    assert list(meta) == ["chatId", "chatMessageId", "question", "sessionId"]
    assert meta["chatId"] == meta["sessionId"] == "c-1"
    request = fake.last_request
    assert (request.method, request.path, request.json["chatId"]) == ("POST", f"/api/v1/prediction/{flow}", "c-1")
    assert request.headers["content-type"] == "application/json"
    assert len(fake.requests) == 1
    fake.reset()
    assert fake.requests == []


def test_respond_computes_the_answer_from_the_body(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(FakeFlow(respond=lambda body: f"You said: {body['question']} ({len(body['history'])})"))
    response = stream(client, flow, question="ping", history=[{"role": "userMessage", "content": "x"}])
    assert tokens(response.content) == ["You", " said:", " ping", " (1)"]
    assert predict(client, flow, question="pong", history=[]).json()["text"] == "You said: pong (0)"


def test_explicit_tokens_define_the_answer(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(FakeFlow(tokens=["Hel", "lo", " ✓\u2028"]))
    assert tokens(stream(client, flow).content) == ["Hel", "lo", " ✓\u2028"]
    assert predict(client, flow).json()["text"] == "Hello ✓\u2028"


def test_chatflow_payload_events_and_json_order(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(
        FakeFlow(
            tokens=["ok"],
            source_documents=[{"pageContent": "p", "metadata": {}}],
            used_tools=[{"tool": "t", "toolInput": {}, "toolOutput": "o"}],
            artifacts=[{"type": "png", "data": "f.png"}],
            file_annotations=[{"filePath": "a", "fileName": "b"}],
            flow_variables={"v": 1},
            action={"id": "a-1"},
            follow_up_prompts=["Q1", "Q2"],
            memory_type="Buffer Memory",
        )
    )
    body = stream(client, flow).content
    assert names(body) == ["start", "token", "sourceDocuments", "usedTools", "artifacts", "fileAnnotations",
                           "metadata", "end"]  # fmt: skip
    meta = events(body)[-2]["data"]
    assert list(meta) == ["chatId", "chatMessageId", "question", "sessionId", "memoryType", "followUpPrompts",
                          "flowVariables", "action"]  # fmt: skip
    assert meta["followUpPrompts"] == '["Q1","Q2"]'  # one JSON string
    reply = predict(client, flow).json()
    assert list(reply) == ["text", "sourceDocuments", "usedTools", "artifacts", "fileAnnotations", "action",
                           "question", "chatId", "chatMessageId", "followUpPrompts", "isStreamValid", "sessionId",
                           "memoryType", "flowVariables"]  # fmt: skip
    assert json.loads(json.loads(reply["followUpPrompts"])) == ["Q1", "Q2"]  # double-encoded


def test_undefined_source_documents_is_an_event_without_data(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(FakeFlow(tokens=["x"], source_documents=UNDEFINED))
    assert b'message:\ndata:{"event":"sourceDocuments"}\n\n' in stream(client, flow).content
    assert "sourceDocuments" not in predict(client, flow).json()


def test_start_data_none_sends_no_start(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(FakeFlow(tokens=["x"], start_data=None))
    assert names(stream(client, flow).content) == ["token", "metadata", "end"]


def test_missing_question_is_left_out(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(FakeFlow(tokens=["x"]))
    response = client.post(f"/api/v1/prediction/{flow}", json={"streaming": "true"})
    assert list(events(response.content)[-2]["data"]) == ["chatId", "chatMessageId", "sessionId"]
    assert "question" not in client.post(f"/api/v1/prediction/{flow}", json={}).json()


def test_session_ids_and_memory_rows(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(FakeFlow(memory_type="Buffer Memory", tokens=["a"]))
    first = predict(client, flow, overrideConfig={"sessionId": "s-1"}).json()
    assert (first["chatId"], first["sessionId"], first["memoryType"]) == ("s-1", "s-1", "Buffer Memory")
    second = predict(client, flow, chatId="c-2", overrideConfig={"sessionId": "s-1"}).json()
    assert (second["chatId"], second["sessionId"]) == ("c-2", "s-1")
    rows = [r for r in fake.chat_messages if r["sessionId"] == "s-1"]
    assert [(r["role"], r["content"]) for r in rows] == [("userMessage", "hi"), ("apiMessage", "a")] * 2
    assert rows[1]["id"] == first["chatMessageId"]
    assert {r["memoryType"] for r in rows} == {"Buffer Memory"}
    assert list(rows[0]) == ["id", "role", "chatflowid", "executionId", "content", "sourceDocuments", "usedTools",
                             "fileAnnotations", "agentReasoning", "reasonContent", "fileUploads", "artifacts", "action",
                             "chatType", "chatId", "memoryType", "sessionId", "createdDate", "leadEmail",
                             "followUpPrompts"]  # fmt: skip
    assert rows[0]["chatType"] == "EXTERNAL"
    no_memory = fake.add_flow(FakeFlow(tokens=["a"]))
    predict(client, no_memory, chatId="c-3")
    assert {r["memoryType"] for r in fake.chat_messages if r["chatId"] == "c-3"} == {""}  # ``label || ''``


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"chatId": 5}, "Invalid chatId: must be a string"),
        ({"overrideConfig": {"sessionId": 7}}, "Invalid sessionId: must be a string"),
    ],
)
def test_invalid_ids_fail_in_band_or_as_500(
    fake: FakeFlowise, client: httpx.Client, body: dict[str, Any], message: str
) -> None:
    flow = fake.add_flow(FakeFlow())
    full = f"Error: predictionsServices.buildChatflow - {message}"
    assert events(stream(client, flow, **body).content) == [
        {"event": "error", "data": full},
        {"event": "end", "data": "[DONE]"},
    ]
    response = predict(client, flow, **body)
    assert (response.status_code, response.json()) == (
        500,
        {"statusCode": 500, "success": False, "message": full, "stack": {}},
    )


# -- agentflow and multiagent ----------------------------------------------------------------------------
def test_agentflow_thinking_usage_and_memory(fake: FakeFlowise, client: httpx.Client) -> None:
    usage = {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    flow = fake.add_flow(
        FakeFlow(kind="agentflow", tokens=["A", "B"], thinking=["hm", "m"], thinking_duration=4, usage=usage)
    )
    body = stream(client, flow, chatId="c-1").content
    assert [(e["event"], e.get("data"), e.get("duration")) for e in events(body)[5:12]] == [
        ("token", "", None),
        ("thinking", "hm", None),
        ("token", "", None),
        ("thinking", "m", None),
        ("token", "", None),
        ("thinking", "", 4),
        ("token", "A", None),
    ]
    assert {"event": "usageMetadata", "data": usage} in events(body)
    reply = predict(client, flow, chatId="c-1", question="again").json()
    assert list(reply) == ["text", "question", "chatId", "chatMessageId", "executionId", "agentFlowExecutedData",
                           "sessionId"]  # fmt: skip
    llm = reply["agentFlowExecutedData"][1]["data"]
    assert llm["input"]["messages"] == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "AB"},
        {"role": "user", "content": "again"},
    ]
    assert llm["output"]["reasonContent"] == {"thinking": "hmm", "thinkingDuration": 4}
    assert "FLOWISE_CREDENTIAL_ID" not in json.dumps(reply)
    assert fake.credential_id in body.decode()  # the stream leaks it, the JSON reply does not
    rows = fake.chat_messages
    assert rows[-1]["executionId"] == reply["executionId"] and rows[-1]["memoryType"] is None
    stored = client.get(f"/api/v1/chatmessage/{flow}?chatId=c-1", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert isinstance(stored[-1]["execution"]["workspaceId"], str)
    assert list(llm["input"])[2:6] == ["llmEnableMemory", "llmMemoryType", "llmMemoryWindowSize",
                                       "llmMemoryMaxTokenLimit"]  # fmt: skip


def test_agentflow_agent_node_calls_its_tools(fake: FakeFlowise, client: httpx.Client) -> None:
    calc = {"tool": "calculator", "toolInput": {"input": "2 + 2"}, "toolOutput": "4"}
    flow = fake.add_flow(FakeFlow(kind="agentflow", node="agent", answer="It is 4.", used_tools=[calc]))
    found = events(stream(client, flow).content)
    called = [e["data"] for e in found if e["event"] == "calledTools"]
    assert called == [[{**calc, "toolOutput": ""}], []]  # announced before the answer, then the final []
    assert tokens(stream(client, flow).content) == [""] * 8 + ["It", " is", " 4."] + [""] * 2
    assert {"event": "usedTools", "data": [calc]} in found
    agent = predict(client, flow).json()["agentFlowExecutedData"][1]
    assert (agent["nodeId"], agent["nodeLabel"]) == ("agentAgentflow_0", "Calculator Agent")
    assert [m["role"] for m in agent["data"]["input"]["messages"]] == ["system", "user", "assistant", "tool"]
    assert agent["data"]["output"]["usageMetadata"]["tool_call_tokens"] == 44
    assert [t["name"] for t in agent["data"]["output"]["availableTools"]] == ["calculator"]


def test_agentflow_error_sequence(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow", tokens=["a", "b", "c"], error="boom", error_after=2))
    found = events(stream(client, flow).content)
    assert [e["event"] for e in found][-7:] == ["token", "token", "nextAgentFlow", "agentFlowExecutedData",
                                                "agentFlowEvent", "error", "end"]  # fmt: skip
    assert found[-5]["data"] == {
        "nodeId": "llmAgentflow_0",
        "nodeLabel": "Translator",
        "status": "ERROR",
        "error": "boom",
    }
    assert found[-4]["data"][-1]["data"] == {"id": "llmAgentflow_0", "name": "llmAgentflow", "error": "boom"}
    assert found[-3]["data"] == "ERROR"
    assert found[-2]["data"] == "Error: predictionsServices.buildChatflow - boom"
    assert fake.chat_messages == []


def test_agentflow_rejects_bad_history(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow"))
    response = predict(client, flow, history=[{"role": "user", "content": "x"}])
    assert response.status_code == 500
    assert response.json()["message"].startswith("Error: predictionsServices.buildChatflow - Invalid history format.")


def test_multiagent_steps_and_json(fake: FakeFlowise, client: httpx.Client) -> None:
    steps = [{"agentName": "Boss", "messages": [], "next": "Coder"}, {"agentName": "Coder", "messages": ["done"]}]
    flow = fake.add_flow(FakeFlow(kind="multiagent", answer="All done.", agent_reasoning=steps, next_agents=["Coder"]))
    found = events(stream(client, flow).content)
    assert [e["event"] for e in found] == ["start", "agentReasoning", "nextAgent", "agentReasoning", "token",
                                           "usedTools", "sourceDocuments", "artifacts", "metadata", "end"]  # fmt: skip
    assert found[0]["data"] == steps[:1] and found[3]["data"] == steps
    assert found[4]["data"] == "All done."
    assert [e["data"] for e in found[5:8]] == [[], [], []]
    reply = predict(client, flow).json()
    assert list(reply) == ["text", "question", "chatId", "chatMessageId", "sessionId", "agentReasoning"]


# -- faults ----------------------------------------------------------------------------------------------
def test_error_after_tokens(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(FakeFlow(tokens=["a", "b", "c"], error="LLM down", error_after=2))
    assert names(stream(client, flow).content) == ["start", "token", "token", "error", "end"]
    assert predict(client, flow).json()["message"] == "Error: predictionsServices.buildChatflow - LLM down"


def test_flow_api_key(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(FakeFlow(api_key="flow-key", tokens=["x"]))
    assert events(stream(client, flow).content)[0]["data"] == "Error: predictionsServices.buildChatflow - Unauthorized"
    assert predict(client, flow, streaming=False).status_code == 500
    wrong = client.post(
        f"/api/v1/prediction/{flow}", json={"streaming": True}, headers={"Authorization": "Bearer nope"}
    )
    assert names(wrong.content) == ["error", "end"]
    authed = client.post(
        f"/api/v1/prediction/{flow}", json={"question": "hi"}, headers={"Authorization": "Bearer flow-key"}
    )
    assert authed.json()["text"] == "x"


def test_http_errors_then_normal_service(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(
        FakeFlow(tokens=["ok"], http_errors=[(429, {"Retry-After": "1"}, b"Too many requests"), (503, {}, b"busy")])
    )
    first = stream(client, flow)
    assert (first.status_code, first.content, first.headers["retry-after"]) == (429, b"Too many requests", "1")
    assert [k for k, _ in first.headers.raw][3:6] == [b"Retry-After", b"Content-Type", b"Content-Length"]
    assert first.headers["content-type"] == "text/html; charset=utf-8"
    assert predict(client, flow).status_code == 503
    assert predict(client, flow).json()["text"] == "ok"


def test_heartbeats_come_after_the_tokens(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(FakeFlow(tokens=["a"], heartbeats=2, heartbeat_interval=0.05))
    start = time.perf_counter()
    body = stream(client, flow).content
    assert time.perf_counter() - start >= 0.1
    assert names(body) == ["start", "token", ":heartbeat", ":heartbeat", "metadata", "end"]


def test_lose_tokens_sends_only_metadata_and_end(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(FakeFlow(answer="stored anyway", lose_tokens=True))
    body = stream(client, flow).content
    assert names(body) == ["metadata", "end"]
    message_id = events(body)[0]["data"]["chatMessageId"]
    stored = client.get(
        f"/api/v1/chatmessage/{flow}", params={"messageId": message_id}, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert [r["content"] for r in stored.json()] == ["stored anyway"]


def test_drop_after_over_the_transport(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(FakeFlow(tokens=["a", "b", "c"], drop_after=2))
    received = bytearray()
    request = {"question": "hi", "streaming": True}
    with (
        client.stream("POST", f"/api/v1/prediction/{flow}", json=request) as response,
        pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"),
    ):
        for part in response.iter_raw():
            received += part
    assert names(bytes(received)) == ["start", "token", "token"]
    assert [r["content"] for r in fake.chat_messages] == ["hi", "abc"]  # the run finished server-side
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        predict(client, flow)


def test_drop_after_over_loopback_is_eof_without_end(fake: FakeFlowise, served: str) -> None:
    flow = fake.add_flow(FakeFlow(tokens=["a", "b", "c"], drop_after=1))
    with socket.create_connection(("127.0.0.1", int(served.rsplit(":", 1)[1])), timeout=2) as sock:
        body = b'{"question":"hi","streaming":true}'
        sock.sendall(b"POST /api/v1/prediction/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (flow.encode(), len(body), body))  # fmt: skip
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    assert b'"event":"token","data":"a"' in raw
    assert b'"event":"end"' not in raw and not raw.endswith(b"0\r\n\r\n")
    wait_for(lambda: fake.open_connections == 0)


def test_first_token_delay_beyond_read_timeout(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(FakeFlow(first_token_delay=5))
    with client.stream("POST", f"/api/v1/prediction/{flow}", json={"streaming": True}, timeout=0.1) as response:
        assert response.status_code == 200  # SSE headers are flushed before the flow runs
        with pytest.raises(httpx.ReadTimeout):
            response.read()


# -- hangs -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flow_id", ["00000000-0000-4000-8000-000000000000", "not-a-uuid"])
def test_pre_sse_errors_hang_over_loopback(fake: FakeFlowise, served: str, flow_id: str) -> None:
    with httpx.Client(base_url=served, timeout=0.5) as http:
        start = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            stream(http, flow_id)
        assert time.perf_counter() - start > 0.45  # the read timeout, not an answer (a lower bound only)
        wait_for(lambda: fake.open_connections == 0)  # httpx dropped the timed-out connection; we noticed
        assert fake.last_request.path == f"/api/v1/prediction/{flow_id}"
        json_mode = predict(http, flow_id, streaming="false")
    assert (json_mode.status_code, json_mode.json()["message"]) == (
        (400, "Invalid Chatflow ID")
        if flow_id == "not-a-uuid"
        else (404, f"Chatflow {flow_id} not found in the database!")
    )
    wait_for(lambda: fake.open_connections == 0)


def test_non_streamable_flow_error_with_streaming_hangs(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(FakeFlow(streaming=False, error="bad"))
    with pytest.raises(httpx.ReadTimeout):
        client.post(f"/api/v1/prediction/{flow}", json={"streaming": True}, timeout=0.2)
    assert predict(client, flow).status_code == 500


def test_stop_releases_a_request_hung_on_the_transport(fake: FakeFlowise) -> None:
    outcome: list[BaseException] = []

    def hang() -> None:
        with httpx.Client(transport=fake.transport(), base_url=BASE, timeout=30) as http:
            try:
                stream(http, "00000000-0000-4000-8000-000000000000")
            except httpx.HTTPError as exc:
                outcome.append(exc)

    thread = threading.Thread(target=hang)
    thread.start()
    wait_for(lambda: len(fake.requests) == 1)
    fake.stop()
    thread.join(2)
    assert isinstance(outcome[0], httpx.RemoteProtocolError)


async def test_async_transport_hang_and_stream(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(tokens=["x", "y"], token_delay=0.01))
    async with httpx.AsyncClient(transport=fake.async_transport(), base_url=BASE, timeout=0.2) as http:
        response = await http.post(f"/api/v1/prediction/{flow}", json={"streaming": True})
        assert tokens(response.content) == ["x", "y"]
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/api/v1/prediction/bad-id", json={"streaming": True})


# -- abort -----------------------------------------------------------------------------------------------
def _stream_then_abort(
    fake: FakeFlowise, client: httpx.Client, flow: FakeFlow, marker: bytes = b'"event":"token"'
) -> list[dict[str, Any]]:
    """Stream, and call the abort endpoint once the third ``marker`` event has arrived."""
    flow_id = fake.add_flow(flow)
    body = bytearray()
    with client.stream("POST", f"/api/v1/prediction/{flow_id}", json={"question": "hi", "streaming": True,
                                                                         "chatId": "c-9"}) as response:  # fmt: skip
        for part in response.iter_raw():
            body += part
            if marker in part and bytes(body).count(marker) == 3:
                aborted = client.put(f"/api/v1/chatmessage/abort/{flow_id}/c-9")
                assert aborted.json() == {"status": 200, "message": "Chat message aborted"}
    return events(bytes(body))


def test_abort_fails_the_streaming_agentflow_node(fake: FakeFlowise, client: httpx.Client) -> None:
    found = _stream_then_abort(fake, client, FakeFlow(kind="agentflow", tokens=list("abcdefgh"), token_delay=0.01))
    assert [e["event"] for e in found][-5:] == [
        "nextAgentFlow",
        "agentFlowExecutedData",
        "agentFlowEvent",
        "error",
        "end",
    ]
    error = "Error in LLM node: This operation was aborted"  # Flowise 3.1.4: the LLM call's AbortError
    assert found[-5]["data"] == {
        "nodeId": "llmAgentflow_0",
        "nodeLabel": "Translator",
        "status": "ERROR",
        "error": error,
    }
    assert found[-4]["data"][-1]["status"] == "ERROR"
    assert found[-3]["data"] == "ERROR"
    assert found[-2]["data"] == f"Error: predictionsServices.buildChatflow - {error}"


def test_abort_a_multiagent_flow(fake: FakeFlowise, client: httpx.Client) -> None:
    steps = [{"agentName": f"A{i}", "messages": []} for i in range(6)]
    flow = FakeFlow(kind="multiagent", agent_reasoning=steps, token_delay=0.01)
    found = _stream_then_abort(fake, client, flow, marker=b'"event":"agentReasoning"')
    assert [e["event"] for e in found][-3:] == ["abort", "metadata", "end"]
    assert "token" not in [e["event"] for e in found]


def test_abort_does_not_reach_a_chatflow(fake: FakeFlowise, client: httpx.Client) -> None:
    found = _stream_then_abort(fake, client, FakeFlow(tokens=list("abcdefgh"), token_delay=0.01))
    assert [e["data"] for e in found if e["event"] == "token"] == list("abcdefgh")
    assert found[-2]["event"] == "metadata"


# -- side endpoints and the gate -------------------------------------------------------------------------
def test_ping_version_streaming_check(fake: FakeFlowise, client: httpx.Client) -> None:
    ping = client.get("/api/v1/ping")
    assert (ping.text, ping.headers["content-type"], ping.headers["etag"]) == (
        "pong",
        "text/html; charset=utf-8",
        'W/"4-DlFKBmK8tp3IY5U9HOJuPUDoGoc"',
    )
    assert client.get("/api/v1/version").json() == {"version": "3.1.4"}
    older = httpx.Client(transport=FakeFlowise(version="3.0.1").transport(), base_url=BASE)
    assert older.get("/api/v1/version").content == b'{"version":"3.0.1"}'
    flow = fake.add_flow(FakeFlow(streaming=False))
    assert client.get(f"/api/v1/chatflows-streaming/{flow}").json() == {"isStreaming": False}
    unknown = client.get("/api/v1/chatflows-streaming/nope")
    assert (unknown.status_code, unknown.json()["message"]) == (
        500,
        "Error: chatflowsService.checkIfChatflowIsValidForStreaming - Chatflow nope not found",
    )


def test_chat_messages_need_the_workspace_key(fake: FakeFlowise, client: httpx.Client) -> None:
    flow = fake.add_flow(FakeFlow(tokens=["x"]))
    predict(client, flow, chatId="c-1")
    predict(client, flow, chatId="c-2")
    url = f"/api/v1/chatmessage/{flow}"
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        denied = client.get(url, headers=headers)
        assert (denied.status_code, denied.content) == (401, b'{"error":"Unauthorized Access"}')
    auth = {"Authorization": f"Bearer {KEY}"}
    rows = client.get(url, params={"chatId": "c-2", "order": "DESC"}, headers=auth).json()
    assert [(r["role"], r["chatId"], r["execution"]) for r in rows] == [
        ("apiMessage", "c-2", None),
        ("userMessage", "c-2", None),
    ]
    assert len(client.get(url, headers=auth).json()) == 4
    assert client.get(url, params={"chatType": '["INTERNAL"]'}, headers=auth).json() == []
    assert client.get("/api/v1/chatmessage/00000000-0000-4000-8000-000000000000", headers=auth).status_code == 500


def test_gate_ui_fallback_and_body_parser(fake: FakeFlowise, client: httpx.Client) -> None:
    assert client.get("/API/V1/ping").json() == {"error": "Unauthorized Access"}
    ui = client.get("/api/v1/no-such-route", headers={"Authorization": f"Bearer {KEY}"})
    assert (ui.status_code, ui.headers["content-type"]) == (200, "text/html; charset=UTF-8")
    assert client.get("/api/v1/prediction/x").headers["content-type"].startswith("text/html")  # GET: no route
    assert client.get("/api/v1/no-such-route").status_code == 401  # not whitelisted: the key is checked first
    bad = client.post(
        "/api/v1/prediction/x", content=b'{"streaming":true,', headers={"Content-Type": "application/json"}
    )
    assert (bad.status_code, bad.json()["statusCode"]) == (400, 400)
    assert client.head("/api/v1/ping").content == b""
    assert (
        FakeFlowise(api_key=None)
        .transport()
        .handle_request(httpx.Request("GET", f"{BASE}/api/v1/chatmessage/x"))
        .status_code
        == 500
    )  # no workspace key configured: the gate lets everything through


# -- loopback server -------------------------------------------------------------------------------------
def test_keep_alive_chunked_request_and_connection_close(fake: FakeFlowise, served: str) -> None:
    flow = fake.add_flow(FakeFlow(tokens=["x"]))
    with socket.create_connection(("127.0.0.1", int(served.rsplit(":", 1)[1])), timeout=2) as sock:
        payload = b'{"question":"hi"}'
        sock.sendall(b"POST /api/v1/prediction/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (flow.encode(), len(payload), payload)
                     + b"GET /api/v1/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # fmt: skip
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    first, second = raw.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert b'"text":"x"' in first and b"Keep-Alive: timeout=5" in first
    assert second.endswith(b"Connection: close\r\n\r\npong")
    assert fake.last_request.json is None and fake.requests[0].json == {"question": "hi"}


def test_client_disconnect_mid_stream_frees_the_connection(fake: FakeFlowise, served: str) -> None:
    flow = fake.add_flow(FakeFlow(tokens=["t"] * 500, token_delay=0.01))
    with (
        httpx.Client(base_url=served) as http,
        http.stream("POST", f"/api/v1/prediction/{flow}", json={"streaming": True}) as response,
    ):
        parts = response.iter_raw()  # keep a reference: a collected generator closes the response
        next(parts)
        assert fake.open_connections == 1
    wait_for(lambda: fake.open_connections == 0)
    wait_for(lambda: len(fake.chat_messages) == 2)  # Flowise finishes the run although nobody listens


def test_start_stop_restart(fake: FakeFlowise) -> None:
    with fake as base_url:
        assert fake.start() == base_url == fake.base_url
        assert httpx.get(f"{base_url}/api/v1/ping").text == "pong"
    assert fake.base_url is None and fake.open_connections == 0
    with fake.serve() as again:
        assert httpx.get(f"{again}/api/v1/version").json() == {"version": "3.1.4"}


async def test_200_concurrent_streams_over_loopback(fake: FakeFlowise, served: str) -> None:
    flow = fake.add_flow(FakeFlow(tokens=[f"w{i} " for i in range(20)], token_delay=0.01))
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=served, limits=limits, timeout=30) as http:

        async def one(i: int) -> list[str]:
            response = await http.post(f"/api/v1/prediction/{flow}", json={"streaming": True, "chatId": f"c{i}"})
            return tokens(response.content)

        results = await asyncio.gather(*(one(i) for i in range(200)))
    assert all(r == [f"w{i} " for i in range(20)] for r in results)
    assert {m["chatId"] for m in fake.chat_messages} == {f"c{i}" for i in range(200)}
    wait_for(lambda: fake.open_connections == 0)
