"""The Workflow recipe: a Flowise human-input stop becomes an ``InputRequiredEvent``; the human's
``HumanResponseEvent`` resumes the same execution. Replayed from real Flowise 3.1.4 stop/resume captures (the
resume body must be exactly what Flowise's UI sent to the real server), including a run paused, serialized
and resumed from a fresh context."""

from __future__ import annotations

from typing import Any

import pytest
from _replay import Replay, request_of
from llama_index.core.base.llms.types import ChatResponse
from llama_index.core.workflow import Context, HumanResponseEvent, InputRequiredEvent

from flowise_integrations.hitl import Interrupt
from flowise_integrations.llama_index import (
    FlowiseHumanInputWorkflow,
    FlowiseHumanResponseEvent,
    FlowiseInputRequiredEvent,
    FlowiseLLM,
    FlowiseTextEvent,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")  # workflows inspect pydantic members


def workflow_for(replay: Replay) -> FlowiseHumanInputWorkflow:
    return FlowiseHumanInputWorkflow(FlowiseLLM("flow", base_url="http://flowise.test", **replay.clients()), timeout=30)


def run_kwargs(stop: str) -> dict[str, Any]:
    """The question and the ids the stop capture was recorded with."""
    request = request_of(stop)
    kwargs: dict[str, Any] = {"question": request["question"]}
    if "chatId" in request:
        kwargs["chat_id"] = request["chatId"]
    if "overrideConfig" in request:
        kwargs["session_id"] = request["overrideConfig"]["sessionId"]
    return kwargs


def streamed(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "streaming": True}  # the workflow always streams (a JSON capture answers it just as well)


CASES = [
    ("af_human_input_chat_stream_stop_then_proceed", "af_human_input_chat_stream_resume_proceed", "prompt"),
    ("af_human_input_session_nonstream_stop_then_reject", "af_human_input_session_nonstream_resume_reject", "prompt"),
    ("af_tool_approval_stream_stop_then_reject", "af_tool_approval_stream_resume_reject", "tool"),
    ("sequential_approval_stream_stop_then_approve", "sequential_approval_stream_resume_approve", "tool"),
]


@pytest.mark.parametrize(("stop", "resume", "asks"), CASES)
async def test_a_stop_is_an_input_required_event_and_the_answer_resumes_it(stop: str, resume: str, asks: str) -> None:
    replay = Replay(stop, resume)
    handler = workflow_for(replay).run(**run_kwargs(stop))
    requests: list[FlowiseInputRequiredEvent] = []
    text = ""
    answer = request_of(resume)
    async for event in handler.stream_events():
        if isinstance(event, FlowiseTextEvent):
            text += event.delta
        elif isinstance(event, FlowiseInputRequiredEvent):
            assert isinstance(event, InputRequiredEvent)  # what LlamaIndex's own HITL tooling listens for
            requests.append(event)
            if "humanInput" in answer:
                approve, feedback = answer["humanInput"]["type"] == "proceed", answer["humanInput"].get("feedback")
            else:
                approve, feedback = answer["question"] == event.interrupt.label(True), None
            handler.ctx.send_event(FlowiseHumanResponseEvent(approve=approve, feedback=feedback))
    result = await handler
    (request,) = requests
    assert isinstance(request.interrupt, Interrupt) and request.decisions == request.interrupt.decisions
    if asks == "prompt":
        assert request.prefix == request.interrupt.prompt and request.prefix in request.text
        assert not request.interrupt.tool_calls
    else:
        assert request.interrupt.tool_calls
        assert request.prefix.endswith('Approve the tool call(s) calculator({"input": "2 + 2"})?')
    assert replay.sent[0] == streamed(request_of(stop))
    assert replay.sent[1] == streamed(request_of(resume))  # the same execution, resumed as Flowise's UI does
    assert isinstance(result, ChatResponse)
    assert result.additional_kwargs["finish_reason"] == "stop" and result.additional_kwargs["interrupt"] is None
    assert text.endswith(result.message.content or "")


async def test_a_paused_run_resumes_from_its_serialized_context() -> None:
    stop, resume = "af_human_input_session_stream_stop_then_proceed", "af_human_input_session_stream_resume_proceed"
    replay = Replay(stop, resume)
    workflow = workflow_for(replay)
    handler = workflow.run(**run_kwargs(stop))
    async for event in handler.stream_events():
        if isinstance(event, FlowiseInputRequiredEvent):
            break
    saved = handler.ctx.to_dict()  # e.g. stored between two requests of a web app
    await handler.cancel_run()

    restored = Context.from_dict(workflow, saved)
    handler = workflow.run(ctx=restored)
    handler.ctx.send_event(FlowiseHumanResponseEvent(approve=True, feedback="Looks good"))
    result = await handler
    assert replay.sent[1] == request_of(resume)
    assert result.additional_kwargs["finish_reason"] == "stop"


async def test_a_run_that_does_not_stop_just_ends() -> None:
    replay = Replay("af_human_input_chat_stream_resume_proceed")  # any finished run
    handler = workflow_for(replay).run(question="hi", chat_id="c-1")
    events = [event async for event in handler.stream_events()]
    result = await handler
    assert not [e for e in events if isinstance(e, (InputRequiredEvent, HumanResponseEvent))]
    assert result.additional_kwargs["finish_reason"] == "stop"
    assert replay.sent[0]["chatId"] == "c-1"
