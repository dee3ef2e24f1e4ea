"""The core client (``FlowiseClient`` / ``AsyncFlowiseClient``) against the real Flowise 3.1.4, public API only.

Every behaviour is checked in the four ways a caller can ask: ``predict`` and ``stream``, sync and async
(``mode`` in :data:`e2e_support.MODES`). The fake LLM behind Flowise makes the answers deterministic
(``flows.CANNED_ANSWER`` / ``flows.TOOL_ANSWER``) and logs what Flowise sent it, which is how memory and
history are verified.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from e2e_support import (
    MODES,
    Outcome,
    is_streaming_mode,
    llm_chat_requests,
    llm_log_length,
    of_type,
    run_client,
)
from flows import (
    CANNED_ANSWER,
    EXPECTED_ANSWERS,
    FLOW_NAMES,
    NON_STREAMING_FLOWS,
    RETRIEVAL_TEXT,
    SAMPLE_QUESTIONS,
    TOOL_ANSWER,
)
from harness import RealFlowiseState

from flowise_integrations import (
    AgentFlowEvent,
    AgentFlowExecutedDataEvent,
    AgentTraceEvent,
    AsyncFlowiseClient,
    AuthenticationError,
    CalledToolsEvent,
    ChatTurn,
    EndEvent,
    FlowExecutionError,
    FlowiseAPIError,
    FlowiseClient,
    InternalServerError,
    MetadataEvent,
    NextAgentFlowEvent,
    NotFoundError,
    Prediction,
    SourceDocumentsEvent,
    StartEvent,
    TokenEvent,
    UsageMetadataEvent,
    UsedTool,
    UsedToolsEvent,
)

pytestmark = pytest.mark.timeout(120)

CALCULATOR = UsedTool(tool="calculator", toolInput={"input": "2 + 2"}, toolOutput="4")
UPSTREAM_ERROR = "400 fake upstream error (TRIGGER_ERROR)"
AGENTFLOWS = ("agentflow_v2_llm", "agentflow_v2_agent_tool")


def question(flow: str) -> str:
    return SAMPLE_QUESTIONS.get(flow, "hi")


def error_statuses(state: RealFlowiseState) -> set[str]:
    """An agentflow's status once its stream ended in ``error``. In queue mode the main server's ``error`` and the
    worker's ``agentFlowEvent: ERROR`` (relayed through Redis) race: either may come first, and the client stops
    reading at ``error``."""
    return {"ERROR", "INPROGRESS"} if state.is_queue else {"ERROR"}


def needs_llm_log(state: RealFlowiseState) -> None:
    if not state.fake_llm_log:
        pytest.skip("external server: no fake LLM request log")


async def ask(state: RealFlowiseState, mode: str, flow: str, q: str | None = None, **kwargs: object) -> Outcome:
    return await run_client(state, mode, state.flows[flow], question(flow) if q is None else q, **kwargs)


# ------------------------------------------------------------------------------------------ answers


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flow", FLOW_NAMES)
async def test_every_flow_answers(real_flowise: RealFlowiseState, flow: str, mode: str) -> None:
    out = await ask(real_flowise, mode, flow)
    result = out.result
    assert result.text == EXPECTED_ANSWERS[flow]
    assert result.finish_reason == "stop" and result.finished and result.error is None
    assert result.chat_id and result.chat_message_id and result.session_id
    assert result.question == question(flow)
    assert result.chatflow_id == real_flowise.flows[flow]
    streams = is_streaming_mode(mode) and flow not in NON_STREAMING_FLOWS
    assert result.streamed is streams
    if not is_streaming_mode(mode):
        return
    assert out.chat_id == result.chat_id  # chosen by the client, before the first event
    tokens = of_type(out.events, TokenEvent)
    assert "".join(t.data for t in tokens) == EXPECTED_ANSWERS[flow]
    assert type(out.events[-1]) is EndEvent
    assert type(out.events[-2]) is MetadataEvent
    assert out.events[-2].chat_id == result.chat_id
    starts = of_type(out.events, StartEvent)
    if flow in AGENTFLOWS or flow in NON_STREAMING_FLOWS:
        assert starts == []  # agentflow v2 sends no `start`; a JSON reply has none either
    else:
        assert len(starts) == 1 and out.events[0] == starts[0]
    if streams:
        assert len(tokens) > 1  # really token by token
    else:
        assert len(tokens) == 1  # the JSON reply delivered as events


SAME_IN_BOTH = (
    "text", "question", "memory_type", "source_documents", "used_tools", "usage", "follow_up_prompts",
    "finish_reason", "finished", "error",
)  # fmt: skip


@pytest.mark.parametrize("flow", FLOW_NAMES)
async def test_predict_and_stream_fold_the_same_prediction(real_flowise: RealFlowiseState, flow: str) -> None:
    """A JSON reply is folded through the same events as a stream, so both give the same ``Prediction``
    (``streamed``, ``execution_id`` and ``agent_flow_status`` aside: only one of the two carries them)."""
    predicted = (await ask(real_flowise, "predict", flow)).result.model_dump(include=set(SAME_IN_BOTH))
    streamed = (await ask(real_flowise, "stream", flow)).result.model_dump(include=set(SAME_IN_BOTH))
    differing = {k: (predicted[k], streamed[k]) for k in SAME_IN_BOTH if predicted[k] != streamed[k]}
    assert not differing, f"predict vs stream: {differing}"


def test_text_stream_yields_only_the_answer(real_flowise: RealFlowiseState) -> None:
    with FlowiseClient(real_flowise.base_url, real_flowise.api_key, timeout=30) as client:
        stream = client.stream(real_flowise.flows["agentflow_v2_llm"], "hi")
        pieces = list(stream.text_stream())
    assert "".join(pieces) == CANNED_ANSWER
    assert all(pieces)  # agentflow's empty tokens are skipped
    assert stream.result.text == CANNED_ANSWER


async def test_async_text_stream_yields_only_the_answer(real_flowise: RealFlowiseState) -> None:
    async with AsyncFlowiseClient(real_flowise.base_url, real_flowise.api_key, timeout=30) as client:
        stream = client.stream(real_flowise.flows["llm_chain"], "hi")
        pieces = [piece async for piece in stream.text_stream()]
    assert "".join(pieces) == CANNED_ANSWER
    assert stream.result.text == CANNED_ANSWER


# ------------------------------------------------------------------------------------------ extras


@pytest.mark.parametrize("mode", MODES)
async def test_retrieval_returns_source_documents(real_flowise: RealFlowiseState, mode: str) -> None:
    out = await ask(real_flowise, mode, "retrieval_qa")
    docs = out.result.source_documents
    assert len(docs) == 2
    for doc in docs:
        assert doc.metadata["source"] == "inline-test-doc"
        assert doc.page_content and doc.page_content in RETRIEVAL_TEXT
        assert set(doc.metadata["loc"]["lines"]) == {"from", "to"}
    if is_streaming_mode(mode):
        streamed = of_type(out.events, SourceDocumentsEvent)
        assert len(streamed) == 1 and streamed[0].documents == docs
        starts = of_type(out.events, StartEvent)
        # 3.x: the retrieval chain's `start` carries the first token...; 2.x: it is empty, like every chain's
        assert starts[0].data == ("Hello" if real_flowise.major >= 3 else "")
        assert out.result.text == EXPECTED_ANSWERS["retrieval_qa"]  # ...which is not counted twice


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flow", ["tool_agent", "tool_agent_detailed"])
async def test_tool_agent_reports_used_tools(real_flowise: RealFlowiseState, flow: str, mode: str) -> None:
    out = await ask(real_flowise, mode, flow)
    assert out.result.text == TOOL_ANSWER
    assert out.result.used_tools == [CALCULATOR]
    assert out.result.memory_type == "Buffer Memory"
    if not is_streaming_mode(mode):
        return
    assert [e.tools for e in of_type(out.events, UsedToolsEvent)] == [[CALCULATOR]]
    steps = [e.step for e in of_type(out.events, AgentTraceEvent)]
    if flow == "tool_agent_detailed" and real_flowise.is_queue:
        assert steps == []  # queue mode drops them: RedisEventPublisher has no agent-trace method
    elif flow == "tool_agent_detailed":
        assert steps == ["agent_action", "tool_start", "tool_end"]
    else:
        assert steps == []
    assert out.result.agent_reasoning == []  # detailed streaming is not multi-agent reasoning


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_agentflow_streams_its_progress_and_usage(real_flowise: RealFlowiseState, mode: str) -> None:
    out = await ask(real_flowise, mode, "agentflow_v2_llm")
    flow_statuses = [e.status for e in of_type(out.events, AgentFlowEvent)]
    assert flow_statuses == ["INPROGRESS", "FINISHED"]
    nodes = [(e.node_id, e.node_label, e.status) for e in of_type(out.events, NextAgentFlowEvent)]
    assert nodes == [
        ("startAgentflow_0", "Start", "INPROGRESS"),
        ("startAgentflow_0", "Start", "FINISHED"),
        ("llmAgentflow_0", "Translator", "INPROGRESS"),
        ("llmAgentflow_0", "Translator", "FINISHED"),
    ]
    executed = of_type(out.events, AgentFlowExecutedDataEvent)
    assert [len(e.data) for e in executed] == [1, 2]  # cumulative snapshots
    usage_events = of_type(out.events, UsageMetadataEvent)
    assert [u.usage.total_tokens for u in usage_events] == [22]
    result = out.result
    assert result.agent_flow_status == "FINISHED"
    assert [n["nodeId"] for n in result.agent_flow_executed_data] == ["startAgentflow_0", "llmAgentflow_0"]
    assert result.usage is not None
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.total_tokens) == (10, 12, 22)
    assert result.called_tools == []


@pytest.mark.parametrize("mode", ["predict", "apredict"])
async def test_agentflow_json_reply_carries_execution_and_usage(real_flowise: RealFlowiseState, mode: str) -> None:
    out = await ask(real_flowise, mode, "agentflow_v2_llm")
    result = out.result
    assert result.execution_id
    assert [n["nodeId"] for n in result.agent_flow_executed_data] == ["startAgentflow_0", "llmAgentflow_0"]
    assert all(n["status"] == "FINISHED" for n in result.agent_flow_executed_data)
    assert result.usage is not None and result.usage.total_tokens == 22


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_agentflow_agent_streams_its_tool_use(real_flowise: RealFlowiseState, mode: str) -> None:
    out = await ask(real_flowise, mode, "agentflow_v2_agent_tool")
    assert out.result.text == TOOL_ANSWER
    called = [e.tools for e in of_type(out.events, CalledToolsEvent)]
    announced = UsedTool(tool="calculator", toolInput={"input": "2 + 2"}, toolOutput="")
    assert called == [[announced], []]  # announced before the call, cleared when the node finishes
    assert [e.tools for e in of_type(out.events, UsedToolsEvent)] == [[CALCULATOR]]
    assert out.result.used_tools == [CALCULATOR]
    assert out.result.called_tools == []  # the last calledTools snapshot is empty
    assert out.result.usage is not None and out.result.usage.total_tokens > 0
    nodes = {e.node_label for e in of_type(out.events, NextAgentFlowEvent)}
    assert nodes == {"Start", "Calculator Agent"}


@pytest.mark.parametrize("mode", ["predict", "apredict"])
async def test_agentflow_agent_json_reply_reports_its_tool_use(real_flowise: RealFlowiseState, mode: str) -> None:
    """Flowise's JSON reply has no top-level ``usedTools`` for an agentflow: they sit in the Agent node's output
    (``agentFlowExecutedData[-1].data.output.usedTools``). A stream of the same flow gives them as a
    ``usedTools`` event, so ``predict`` and ``stream`` must agree on ``Prediction.used_tools``."""
    out = await ask(real_flowise, mode, "agentflow_v2_agent_tool")
    assert out.result.text == TOOL_ANSWER
    agent_output = out.result.agent_flow_executed_data[-1]["data"]["output"]
    assert agent_output["usedTools"] == [CALCULATOR.model_dump(by_alias=True, exclude_none=True)]
    assert out.result.usage is not None and out.result.usage.total_tokens > 0
    assert out.result.used_tools == [CALCULATOR]


# ------------------------------------------------------------------------------------ conversations


@pytest.mark.parametrize("mode", MODES)
async def test_session_memory_continues_over_two_turns(real_flowise: RealFlowiseState, mode: str) -> None:
    needs_llm_log(real_flowise)
    session = f"e2e-session-{uuid.uuid4()}"
    marker = f"my code word is {uuid.uuid4().hex[:10]}"
    first = await ask(real_flowise, mode, "conversation_chain", marker, session_id=session)
    assert first.result.session_id == session
    assert first.result.memory_type == "Buffer Memory"
    seen = llm_log_length(real_flowise)
    second = await ask(real_flowise, mode, "conversation_chain", "what is my code word?", session_id=session)
    assert second.result.session_id == session
    assert second.result.text == CANNED_ANSWER
    (request,) = llm_chat_requests(real_flowise, seen)
    sent = json.dumps(request["messages"])
    assert marker in sent and CANNED_ANSWER in sent  # turn 2 saw turn 1's question and answer
    assert "what is my code word?" in request["messages"][-1]["content"]


@pytest.mark.parametrize("mode", MODES)
async def test_agentflow_memory_continues_with_the_stream_chat_id(real_flowise: RealFlowiseState, mode: str) -> None:
    needs_llm_log(real_flowise)
    marker = f"my code word is {uuid.uuid4().hex[:10]}"
    first = await ask(real_flowise, "stream" if mode.startswith("p") else "astream", "agentflow_v2_llm", marker)
    assert first.chat_id and first.result.chat_id == first.chat_id
    seen = llm_log_length(real_flowise)
    second = await ask(real_flowise, mode, "agentflow_v2_llm", "and the code word?", chat_id=first.chat_id)
    assert second.result.chat_id == first.chat_id
    (request,) = llm_chat_requests(real_flowise, seen)
    assert marker in json.dumps(request["messages"])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flow", ["conversation_chain", "agentflow_v2_llm"])
async def test_history_is_sent_to_the_llm(real_flowise: RealFlowiseState, flow: str, mode: str) -> None:
    needs_llm_log(real_flowise)
    marker = uuid.uuid4().hex[:10]
    history = [
        ChatTurn(role="user", content=f"my name is {marker}"),
        {"role": "assistant", "content": f"Nice to meet you, {marker}."},
    ]
    seen = llm_log_length(real_flowise)
    out = await ask(real_flowise, mode, flow, "what is my name?", history=history)
    assert out.result.text == CANNED_ANSWER
    (request,) = llm_chat_requests(real_flowise, seen)
    turns = [(m["role"], m["content"]) for m in request["messages"] if m["role"] != "system"]
    assert turns == [
        ("user", f"my name is {marker}"),
        ("assistant", f"Nice to meet you, {marker}."),
        ("user", "what is my name?"),
    ]


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("mode", MODES)
async def test_protected_flow_with_the_key(real_flowise: RealFlowiseState, mode: str) -> None:
    out = await ask(real_flowise, mode, "llm_chain_protected", api_key=True)
    assert out.result.text == CANNED_ANSWER


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("key", [None, "wrong-key"])
async def test_protected_flow_without_a_valid_key(real_flowise: RealFlowiseState, mode: str, key: str | None) -> None:
    with pytest.raises(AuthenticationError) as info:
        await ask(real_flowise, mode, "llm_chain_protected", api_key=key)
    err = info.value
    assert "Unauthorized" in err.message
    if is_streaming_mode(mode):  # 200 + in-band `error` event
        assert err.status_code is None
        assert isinstance(err.partial, Prediction) and err.partial.text == ""
        assert err.partial.finish_reason == "error"
    else:  # Flowise answers 500 "... Unauthorized"
        assert err.status_code == 500
        assert err.message == "Error: predictionsServices.buildChatflow - Unauthorized"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flow", ["llm_chain", "agentflow_v2_llm"])
async def test_upstream_llm_error(real_flowise: RealFlowiseState, flow: str, mode: str) -> None:
    """The LLM answers HTTP 400: Flowise reports it in-band on a stream, as a 500 to a JSON request. Either way
    it is a ``FlowExecutionError`` (an ``InternalServerError``) carrying Flowise's own message."""
    node = "Error in LLM node: " if flow == "agentflow_v2_llm" else ""
    expected = f"Error: predictionsServices.buildChatflow - {node}{UPSTREAM_ERROR}"
    started = time.monotonic()
    with pytest.raises(FlowExecutionError) as info:
        await ask(real_flowise, mode, flow, "please TRIGGER_ERROR")
    err = info.value
    assert isinstance(err, InternalServerError)
    assert err.message == expected
    if is_streaming_mode(mode):
        assert err.status_code is None
        assert err.partial is not None and err.partial.finish_reason == "error"
        assert err.partial.error == expected and err.partial.text == ""
        if flow == "agentflow_v2_llm":
            assert err.partial.agent_flow_status in error_statuses(real_flowise)
    else:
        assert err.status_code == 500
        assert err.body["message"] == expected
    assert time.monotonic() - started < 10  # a 400 upstream is not retried


@pytest.mark.parametrize("mode", MODES)
async def test_unknown_chatflow_is_not_found_well_within_the_timeout(real_flowise: RealFlowiseState, mode: str) -> None:
    unknown = str(uuid.uuid4())
    started = time.monotonic()
    with pytest.raises(NotFoundError) as info:
        await run_client(real_flowise, mode, unknown, "hi", client_options={"timeout": 30.0, "diagnose_after": 1.0})
    elapsed = time.monotonic() - started
    before_3_0_13 = real_flowise.major < 3  # the lookup's own 500 escaped before Flowise 3.0.13
    assert info.value.status_code == (500 if before_3_0_13 and not is_streaming_mode(mode) else 404)
    assert unknown in info.value.message
    if is_streaming_mode(mode):  # Flowise never answers: diagnosed via GET /chatflows-streaming after 1 s
        assert 0.9 <= elapsed < 6, elapsed
        assert "not found" in info.value.message
    else:  # an immediate 404
        assert elapsed < 3, elapsed
        prefix = "Error: chatflowsService.getChatflowById - " if before_3_0_13 else ""
        assert info.value.message == f"{prefix}Chatflow {unknown} not found in the database!"


def test_unknown_chatflow_stream_leaves_nothing_behind(real_flowise: RealFlowiseState) -> None:
    """After the diagnosed ``NotFoundError`` and ``client.close()``, nothing may keep waiting for Flowise's
    never-coming answer: a script that hit an unknown chatflow must exit at once, not after the read timeout."""
    script = textwrap.dedent(
        f"""
        import uuid
        from flowise_integrations import FlowiseClient, NotFoundError
        with FlowiseClient({real_flowise.base_url!r}, timeout=8, diagnose_after=0.5) as client:
            try:
                client.stream(str(uuid.uuid4()), "hi").until_done()
            except NotFoundError:
                print("not found", flush=True)
        """
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    elapsed = time.monotonic() - started
    assert done.stdout.strip() == "not found", done.stderr
    assert elapsed < 5, f"the process lingered {elapsed:.1f} s: the unanswered request kept a non-daemon thread alive"


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_malformed_chatflow_id_is_diagnosed_too(real_flowise: RealFlowiseState, mode: str) -> None:
    with pytest.raises(NotFoundError):  # SQLite: "not found"; Postgres (queue mode): the uuid syntax error
        await run_client(real_flowise, mode, "not-a-uuid", "hi", client_options={"diagnose_after": 1.0})


# ------------------------------------------------------------------------------------------ abort


def _disconnects(state: RealFlowiseState) -> int:
    return sum(r.get("event") == "client_disconnected" for r in state.fake_llm_requests())


async def _wait_for_upstream_disconnect(state: RealFlowiseState, before: int) -> None:
    deadline = time.monotonic() + 5
    while _disconnects(state) == before:
        assert time.monotonic() < deadline, "Flowise kept streaming from the LLM: the run was not aborted"
        await asyncio.sleep(0.1)


def _cancel_sync(state: RealFlowiseState, flow_id: str) -> tuple[bool, list[str], str | None, bool]:
    with FlowiseClient(state.base_url, state.api_key, timeout=30) as client:
        stream = client.stream(flow_id, "SLOW_STREAM please")
        tokens: list[str] = []
        acknowledged = False
        for event in stream:
            if type(event) is TokenEvent and event.data:
                tokens.append(event.data)
                acknowledged = stream.cancel()
                break
        more = next(iter(stream), None) is not None
        return acknowledged, tokens, stream.chat_id, more


async def _cancel_async(state: RealFlowiseState, flow_id: str) -> tuple[bool, list[str], str | None, bool]:
    async with AsyncFlowiseClient(state.base_url, state.api_key, timeout=30) as client:
        stream = client.stream(flow_id, "SLOW_STREAM please")
        tokens: list[str] = []
        acknowledged = False
        async for event in stream:
            if type(event) is TokenEvent and event.data:
                tokens.append(event.data)
                acknowledged = await stream.cancel()
                break
        more = True
        try:
            await stream.__anext__()
        except StopAsyncIteration:
            more = False
        return acknowledged, tokens, stream.chat_id, more


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_cancel_aborts_a_slow_agentflow_on_the_server(real_flowise: RealFlowiseState, mode: str) -> None:
    """SLOW_STREAM: 40 tokens 250 ms apart. ``cancel()`` closes the stream and PUTs the abort; Flowise then drops
    the LLM stream mid-way (the fake LLM logs the disconnect, which merely closing our connection never causes:
    Flowise would read all 10 s of tokens and store the answer), and the next call works."""
    needs_llm_log(real_flowise)
    flow_id = real_flowise.flows["agentflow_v2_llm"]
    before = _disconnects(real_flowise)
    started = time.monotonic()
    if mode == "stream":
        acknowledged, tokens, chat_id, more = await asyncio.to_thread(_cancel_sync, real_flowise, flow_id)
    else:
        acknowledged, tokens, chat_id, more = await _cancel_async(real_flowise, flow_id)
    assert acknowledged
    assert tokens == ["slow0"]
    assert not more  # the stream stopped
    assert time.monotonic() - started < 5  # not 10 s of slow tokens
    await _wait_for_upstream_disconnect(real_flowise, before)
    assert time.monotonic() - started < 8
    assert chat_id
    async with AsyncFlowiseClient(real_flowise.base_url, real_flowise.api_key, timeout=30) as client:
        assert (await client.predict(flow_id, "hi")).text == CANNED_ANSWER  # the server is fine


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_abort_ends_a_running_stream_with_flowises_error(real_flowise: RealFlowiseState, mode: str) -> None:
    """``client.abort(flow, stream.chat_id)`` while still reading: Flowise acknowledges and the stream itself ends
    with its in-band error, carrying the partial answer."""
    flow_id = real_flowise.flows["agentflow_v2_llm"]
    started = time.monotonic()

    def sync() -> tuple[dict[str, object], FlowExecutionError]:
        with FlowiseClient(real_flowise.base_url, real_flowise.api_key, timeout=30) as client:
            stream = client.stream(flow_id, "SLOW_STREAM please")
            ack: dict[str, object] = {}
            with pytest.raises(FlowExecutionError) as info:
                for event in stream:
                    if type(event) is TokenEvent and event.data and not ack:
                        ack = client.abort(flow_id, stream.chat_id or "")
            return ack, info.value

    async def run_async() -> tuple[dict[str, object], FlowExecutionError]:
        async with AsyncFlowiseClient(real_flowise.base_url, real_flowise.api_key, timeout=30) as client:
            stream = client.stream(flow_id, "SLOW_STREAM please")
            ack: dict[str, object] = {}
            with pytest.raises(FlowExecutionError) as info:
                async for event in stream:
                    if type(event) is TokenEvent and event.data and not ack:
                        ack = await client.abort(flow_id, stream.chat_id or "")
            return ack, info.value

    ack, error = await asyncio.to_thread(sync) if mode == "stream" else await run_async()
    assert ack == {"status": 200, "message": "Chat message aborted"}
    assert time.monotonic() - started < 5
    assert "This operation was aborted" in error.message
    assert error.partial is not None
    assert error.partial.text.startswith("slow0") and "slow39" not in error.partial.text
    assert error.partial.agent_flow_status in error_statuses(real_flowise)


# ------------------------------------------------------------------------------------ non-streamable


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_flow_that_cannot_stream_delivers_json_as_events(real_flowise: RealFlowiseState, mode: str) -> None:
    out = await ask(real_flowise, mode, "llm_chain_model_streaming_off")
    assert [type(e) for e in out.events] == [TokenEvent, MetadataEvent, EndEvent]
    assert out.events[0].data == CANNED_ANSWER
    assert out.result.text == CANNED_ANSWER and out.result.streamed is False
    assert out.result.raw["isStreamValid"] is False  # the JSON body is kept


# ------------------------------------------------------------------------------------------ helpers


def test_server_helpers_sync(real_flowise: RealFlowiseState) -> None:
    flows = real_flowise.flows
    with FlowiseClient(real_flowise.base_url, real_flowise.api_key, timeout=30) as client:
        assert client.ping() is True
        assert client.version() == real_flowise.flowise_version
        assert client.is_streaming(flows["llm_chain"]) is True
        assert client.is_streaming(flows["llm_chain_model_streaming_off"]) is False
        result = client.predict(flows["llm_chain"], "remember me")
        rows = client.get_chat_messages(flows["llm_chain"], chat_id=result.chat_id)
    assert [(r["role"], r["content"]) for r in rows] == [("userMessage", "remember me"), ("apiMessage", CANNED_ANSWER)]
    assert rows[1]["id"] == result.chat_message_id


async def test_server_helpers_async(real_flowise: RealFlowiseState) -> None:
    flows = real_flowise.flows
    async with AsyncFlowiseClient(real_flowise.base_url, real_flowise.api_key, timeout=30) as client:
        assert await client.ping() is True
        assert await client.version() == real_flowise.flowise_version
        assert await client.is_streaming(flows["agentflow_v2_llm"]) is True
        assert await client.is_streaming(flows["llm_chain_model_streaming_off"]) is False
        with pytest.raises(FlowiseAPIError, match="not found"):  # Flowise answers this probe with a 500
            await client.is_streaming(str(uuid.uuid4()))
        result = await client.predict(flows["conversation_chain"], "remember me too")
        rows = await client.get_chat_messages(flows["conversation_chain"], chat_id=result.chat_id)
    assert [(r["role"], r["content"]) for r in rows] == [
        ("userMessage", "remember me too"),
        ("apiMessage", CANNED_ANSWER),
    ]


def test_ping_of_a_dead_server_is_false() -> None:
    with FlowiseClient("http://127.0.0.1:9", timeout=2, max_retries=0) as client:
        assert client.ping() is False
