"""Human in the loop through the LlamaIndex wing, replayed from real Flowise 3.1.4 stop/resume captures.

For every recorded pair (Human Input by chat id and by session id, proceed and reject, streamed or not; an Agent's
tool approval; sequential agents): ``FlowiseLLM`` surfaces the stop as a typed ``Interrupt`` in
``additional_kwargs`` (and JSON in ``raw``), ``resume`` sends exactly the body Flowise's UI sent to the real
server, and each response bills only its own model calls. ``FlowiseQueryEngine`` does the same through
``metadata`` and ``resume``.
"""

from __future__ import annotations

from typing import Any

import pytest
from _llama_index_support import Collector
from _replay import STOP_RESUME_PAIRS, Replay, billed, request_of
from llama_index.core.base.llms.types import ChatMessage, ChatResponse
from llama_index.core.base.response.schema import AsyncStreamingResponse, Response, StreamingResponse

from flowise_integrations.hitl import Interrupt
from flowise_integrations.llama_index import FlowiseLLM, FlowiseMetadataEvent, FlowiseQueryEngine

pytestmark = pytest.mark.skipif(not STOP_RESUME_PAIRS, reason="no stop/resume captures recorded")


def llm_for(stop: str, replay: Replay, **kwargs: Any) -> FlowiseLLM:
    """A FlowiseLLM that asks the way the stop capture was recorded (its chat id and/or session)."""
    request = request_of(stop)
    return FlowiseLLM(
        "flow",
        base_url="http://flowise.test",
        chat_id=request.get("chatId"),
        session_id=(request.get("overrideConfig") or {}).get("sessionId"),
        **replay.clients(),
        **kwargs,
    )


def decision(resume: str, interrupt: Interrupt) -> tuple[bool, str | None]:
    """What the human decided in the resume capture."""
    request = request_of(resume)
    if "humanInput" in request:
        return request["humanInput"]["type"] == "proceed", request["humanInput"].get("feedback")
    return request["question"] == interrupt.label(True), None


async def final(responses: Any, aio: bool) -> ChatResponse:
    items = [r async for r in responses] if aio else list(responses)
    assert items[-1].additional_kwargs["finish_reason"] is not None
    last: ChatResponse = items[-1]
    return last


def usage_of(response: ChatResponse) -> tuple[int, int]:
    usage = response.additional_kwargs["usage"]
    return (0, 0) if usage is None else (usage.input_tokens, usage.output_tokens)


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(("stop", "resume"), STOP_RESUME_PAIRS)
async def test_llm_surfaces_the_stop_and_resumes_like_flowises_ui(
    stop: str, resume: str, aio: bool, events: Collector
) -> None:
    replay = Replay(stop, resume)
    llm = llm_for(stop, replay)
    streaming = bool(request_of(stop).get("streaming"))
    messages = [ChatMessage(role="user", content=request_of(stop)["question"])]
    if streaming:
        stopped = await final(await llm.astream_chat(messages) if aio else llm.stream_chat(messages), aio)
    else:
        stopped = await llm.achat(messages) if aio else llm.chat(messages)
    assert replay.sent[0] == request_of(stop)

    extra = stopped.additional_kwargs
    interrupt = extra["interrupt"]
    assert isinstance(interrupt, Interrupt) and extra["finish_reason"] == "stopped"
    assert stopped.raw["interrupt"] == interrupt.model_dump(mode="json")
    assert [e.interrupt for e in events.of(FlowiseMetadataEvent)] == [interrupt]  # for instrumentation too
    v2 = interrupt.protocol == "agentflow_v2"
    if v2:
        assert extra["agent_flow_status"] == "STOPPED" and interrupt.node_id
        assert usage_of(stopped) == billed(stop)

    approve, feedback = decision(resume, interrupt)
    if streaming:
        responses = (
            await llm.astream_resume(interrupt, approve=approve, feedback=feedback)
            if aio
            else llm.stream_resume(interrupt, approve=approve, feedback=feedback)
        )
        resumed = await final(responses, aio)
    else:
        resumed = (
            await llm.aresume(interrupt, approve=approve, feedback=feedback)
            if aio
            else llm.resume(interrupt, approve=approve, feedback=feedback)
        )
    assert replay.sent[1] == request_of(resume)  # exactly what resumed the real run
    assert resumed.additional_kwargs["finish_reason"] == "stop" and resumed.additional_kwargs["interrupt"] is None
    assert "interrupt" not in resumed.raw
    if v2:
        assert usage_of(resumed) == billed(resume)  # this request's model calls only, not the replayed ones


HUMAN_INPUT = [
    ("af_human_input_chat_nonstream_stop_then_proceed", "af_human_input_chat_nonstream_resume_proceed"),
    ("af_human_input_session_stream_stop_then_reject", "af_human_input_session_stream_resume_reject"),
]


@pytest.mark.parametrize(("stop", "resume"), HUMAN_INPUT)
def test_query_engine_surfaces_the_stop_and_resumes_it(stop: str, resume: str) -> None:
    replay = Replay(stop, resume)
    streaming = bool(request_of(stop).get("streaming"))
    engine = FlowiseQueryEngine(llm_for(stop, replay), streaming=streaming)
    response = engine.query(request_of(stop)["question"])
    if streaming:
        assert isinstance(response, StreamingResponse)
        "".join(response.response_gen)
    interrupt = response.metadata["interrupt"]  # type: ignore[index]
    assert isinstance(interrupt, Interrupt) and engine.last_interrupt == interrupt
    assert response.metadata["finish_reason"] == "stopped"  # type: ignore[index]
    assert response.metadata["usage"].input_tokens == billed(stop)[0]  # type: ignore[index]

    approve, feedback = decision(resume, interrupt)
    resumed = engine.resume(approve, feedback)
    text = "".join(resumed.response_gen) if isinstance(resumed, StreamingResponse) else str(resumed)
    assert replay.sent[1] == request_of(resume)
    assert text and resumed.metadata["finish_reason"] == "stop"  # type: ignore[index]
    assert engine.last_interrupt is None
    with pytest.raises(ValueError, match="nothing to resume"):
        engine.resume(True)


@pytest.mark.parametrize("streaming", [False, True], ids=["response", "streaming"])
async def test_query_engine_resumes_async_and_with_an_explicit_interrupt(streaming: bool) -> None:
    stop, resume = (
        ("af_human_input_session_stream_stop_then_proceed", "af_human_input_session_stream_resume_proceed")
        if streaming
        else ("af_human_input_session_nonstream_stop_then_proceed", "af_human_input_session_nonstream_resume_proceed")
    )
    replay = Replay(stop, resume)
    engine = FlowiseQueryEngine(llm_for(stop, replay), streaming=streaming)
    response = await engine.aquery(request_of(stop)["question"])
    if isinstance(response, AsyncStreamingResponse):
        [t async for t in response.async_response_gen()]
    interrupt = response.metadata["interrupt"]  # type: ignore[union-attr,index]
    other = FlowiseQueryEngine(llm_for(stop, replay), streaming=streaming)  # e.g. another request of a web app
    resumed = await other.aresume(True, "Looks good", interrupt=interrupt)
    if isinstance(resumed, AsyncStreamingResponse):
        [t async for t in resumed.async_response_gen()]
    else:
        assert isinstance(resumed, Response)
    assert replay.sent[1] == request_of(resume)
    assert resumed.metadata["finish_reason"] == "stop"  # type: ignore[index]


def test_resume_needs_an_interrupt() -> None:
    llm = FlowiseLLM("flow", base_url="http://flowise.test")
    with pytest.raises(TypeError, match="Interrupt"):
        llm.resume({"nodeId": "x"}, approve=True)  # type: ignore[arg-type]


def test_an_interrupt_without_ids_resumes_in_the_llms_own_session() -> None:
    replay = Replay("af_human_input_session_nonstream_resume_proceed")
    llm = FlowiseLLM("flow", base_url="http://flowise.test", session_id="s-1", **replay.clients())
    bare = Interrupt(kind="human_input", node_id="humanInputAgentflow_0")
    llm.resume(bare, approve=True)
    assert replay.sent == [{
        "question": "Proceed",
        "overrideConfig": {"sessionId": "s-1"},
        "humanInput": {"type": "proceed"},
    }]  # fmt: skip
