"""The standard-style suite: every test runs sync/async x chat/complete x stream/non-stream x transport/loopback."""

from __future__ import annotations

import pytest
from _llama_index_support import ANSWER, CONVERSATION, MODE_PARAMS, SOURCES, Collector, MakeLLM, Mode, call, text_of
from llama_index.core.base.llms.types import ChatResponse, CompletionResponse, ThinkingBlock
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler, TokenCountingHandler
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatInProgressEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionInProgressEvent,
    LLMCompletionStartEvent,
)

from flowise_integrations.errors import AuthenticationError, FlowExecutionError, FlowiseAPIError, NotFoundError
from flowise_integrations.llama_index import (
    FlowiseAgentStepEvent,
    FlowiseMetadataEvent,
    FlowiseSourceDocumentsEvent,
    FlowiseToolUsedEvent,
)
from flowise_integrations.models import SourceDocument, UsedTool
from flowise_integrations.testing import FakeFlow, FakeFlowise

pytestmark = pytest.mark.parametrize("mode", MODE_PARAMS)


async def test_text_deltas_and_extras(mode: Mode, make_llm: MakeLLM, rag_flow: str) -> None:
    responses = await call(make_llm(rag_flow), mode)
    final = responses[-1]
    assert isinstance(final, ChatResponse if mode.api == "chat" else CompletionResponse)
    assert text_of(final) == ANSWER
    if mode.stream:
        assert len(responses) > 2
        assert all(r.delta is not None for r in responses)
        assert "".join(r.delta or "" for r in responses) == ANSWER
        for r in responses[:-1]:  # each response carries the text so far
            assert ANSWER.startswith(text_of(r))
    else:
        assert final.delta is None
    extra = final.additional_kwargs
    assert extra["source_documents"] == [SourceDocument.model_validate(d) for d in SOURCES]
    assert extra["used_tools"] == [
        UsedTool(tool="search", tool_input={"query": "capital of France"}, tool_output="Paris")
    ]
    assert extra["agent_reasoning"] == []
    assert extra["chat_id"] and extra["chat_message_id"] and extra["finish_reason"] == "stop"
    assert final.raw["chatMessageId"] == extra["chat_message_id"]


async def test_history_is_sent_as_flowise_history(
    mode: Mode, make_llm: MakeLLM, rag_flow: str, fake: FakeFlowise
) -> None:
    await call(make_llm(rag_flow), mode)
    body = fake.last_request.json
    assert body["question"] == "What is the capital of France?"
    if mode.api == "chat":
        assert body["history"] == [
            {"role": "userMessage", "content": "Answer briefly."},
            {"role": "userMessage", "content": "Hi!"},
            {"role": "apiMessage", "content": "Hello, how can I help?"},
        ]
    else:
        assert "history" not in body
    assert body.get("streaming", False) is mode.stream


async def test_server_memory_sends_only_the_question(
    mode: Mode, make_llm: MakeLLM, rag_flow: str, fake: FakeFlowise
) -> None:
    responses = await call(
        make_llm(rag_flow, session_id="s-1", override_config={"temperature": 0}), mode, chat_id="c-9"
    )
    body = fake.last_request.json
    assert body["question"] == "What is the capital of France?"
    assert body["overrideConfig"] == {"temperature": 0, "sessionId": "s-1"}
    assert body["chatId"] == "c-9"
    if mode.api == "chat":  # the system turn is never dropped; user/assistant turns live in Flowise's memory
        assert body["history"] == [{"role": "userMessage", "content": "Answer briefly."}]
    assert responses[-1].additional_kwargs["session_id"] == "s-1"


async def test_callbacks_and_events_fire_once(mode: Mode, make_llm: MakeLLM, rag_flow: str, events: Collector) -> None:
    debug = LlamaDebugHandler()
    llm = make_llm(rag_flow, callback_manager=CallbackManager([debug]))
    responses = await call(llm, mode)
    llm_events = debug.get_event_pairs(CBEventType.LLM)
    assert len(llm_events) == 1 and len(debug.get_events()) == 2
    assert llm_events[0][1].payload is not None
    chat_events = (LLMChatStartEvent, LLMChatInProgressEvent, LLMChatEndEvent)
    completion_events = (LLMCompletionStartEvent, LLMCompletionInProgressEvent, LLMCompletionEndEvent)
    mine, other = (chat_events, completion_events) if mode.api == "chat" else (completion_events, chat_events)
    start, progress, end = (events.of(cls) for cls in mine)
    assert (len(start), len(end)) == (1, 1)
    assert len(progress) == (len(responses) if mode.stream else 0)
    assert not any(events.of(cls) for cls in other)
    assert text_of(end[0].response) == ANSWER
    span_id = start[0].span_id
    assert span_id and span_id.startswith(f"FlowiseLLM.{mode.method}-")
    sources, tools, metadata = (
        events.of(c) for c in (FlowiseSourceDocumentsEvent, FlowiseToolUsedEvent, FlowiseMetadataEvent)
    )
    assert (len(sources), len(tools), len(metadata)) == (1, 1, 1)
    assert [d.page_content for d in sources[0].source_documents] == [d["pageContent"] for d in SOURCES]
    assert tools[0].tool.tool == "search"
    assert metadata[0].chat_message_id == responses[-1].additional_kwargs["chat_message_id"]
    assert {e.span_id for e in (*sources, *tools, *metadata)} == {span_id}
    assert not events.of(FlowiseAgentStepEvent)


async def test_in_band_error_is_typed_with_partial_answer(
    mode: Mode, make_llm: MakeLLM, fake: FakeFlowise, events: Collector
) -> None:
    flow = fake.add_flow(FakeFlow(answer="one two three four", error="the model is down", error_after=2))
    received: list[str] = []
    llm = make_llm(flow)
    with pytest.raises(FlowiseAPIError) as info:
        if mode.stream:
            method = getattr(llm, mode.method)
            arg = CONVERSATION if mode.api == "chat" else "hi"
            if mode.aio:
                async for r in await method(arg):
                    received.append(r.delta)
            else:
                for r in method(arg):
                    received.append(r.delta)
        else:
            await call(llm, mode)
    assert "the model is down" in str(info.value)
    if mode.stream:  # in-band `error` event after two tokens: what arrived is kept
        assert isinstance(info.value, FlowExecutionError)
        assert info.value.partial is not None and info.value.partial.text == "one two" == "".join(received)
    else:
        assert info.value.status_code == 500
    assert len(events.of(ExceptionEvent)) == (1 if mode.stream else 0)  # the decorators report stream errors once


async def test_authentication_error_never_shows_the_key(mode: Mode, make_llm: MakeLLM, fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(api_key="right-key"))
    with pytest.raises(AuthenticationError) as info:
        await call(make_llm(flow, api_key="wrong-key-123"), mode)
    assert "wrong-key-123" not in str(info.value) and "wrong-key-123" not in repr(info.value)
    responses = await call(make_llm(flow, api_key="right-key"), mode)
    assert text_of(responses[-1])


async def test_unknown_flow_is_not_found(mode: Mode, make_llm: MakeLLM) -> None:
    llm = make_llm("00000000-0000-0000-0000-000000000000")
    if mode.stream:  # Flowise never answers: the core diagnoses after `diagnose_after` (5 s by default)
        llm.client.diagnose_after = llm.async_client.diagnose_after = 0.2
    with pytest.raises(NotFoundError):
        await call(llm, mode)


async def test_agentflow_thinking_and_usage(mode: Mode, make_llm: MakeLLM, fake: FakeFlowise) -> None:
    flow = fake.add_flow(
        FakeFlow(
            kind="agentflow",
            answer="Done it.",
            thinking=["Let me ", "think."],
            usage={"input_tokens": 5, "output_tokens": 3, "total_tokens": 8},
        )
    )
    counter = TokenCountingHandler(tokenizer=str.split)
    responses = await call(make_llm(flow, callback_manager=CallbackManager([counter])), mode)
    final = responses[-1]
    assert text_of(final) == "Done it."
    assert final.raw["usage"] == {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}
    assert (counter.prompt_llm_token_count, counter.completion_llm_token_count) == (5, 3)
    if not mode.stream:
        return  # the core does not fold a JSON reply's reasonContent into Prediction.thinking (yet)
    assert final.additional_kwargs["thinking"] == "Let me think."
    thinking = [r.additional_kwargs["thinking_delta"] for r in responses if "thinking_delta" in r.additional_kwargs]
    assert thinking == ["Let me ", "think."]
    if mode.api == "chat":
        block = final.message.blocks[0]
        assert isinstance(block, ThinkingBlock) and block.content == "Let me think."


async def test_multiagent_steps(mode: Mode, make_llm: MakeLLM, fake: FakeFlowise, events: Collector) -> None:
    steps = [
        {"agentName": "Researcher", "messages": ["found X"], "next": "Writer"},
        {"agentName": "Writer", "messages": ["wrote Y"]},
    ]
    flow = fake.add_flow(FakeFlow(kind="multiagent", answer="Team answer.", agent_reasoning=steps))
    responses = await call(make_llm(flow), mode)
    assert text_of(responses[-1]) == "Team answer."
    assert [s.agent_name for s in responses[-1].additional_kwargs["agent_reasoning"]] == ["Researcher", "Writer"]
    assert [e.step.agent_name for e in events.of(FlowiseAgentStepEvent)] == ["Researcher", "Writer"]  # once each
    if mode.stream:
        thinking = "".join(r.additional_kwargs.get("thinking_delta", "") for r in responses)
        assert thinking == "Researcher: found X\nWriter: wrote Y\n"
