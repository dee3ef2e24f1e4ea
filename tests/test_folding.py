"""The fold rules (append / replace / sum / decode), conversation mapping, and request models."""

from __future__ import annotations

import json
import warnings

import pytest

from flowise_integrations import (
    AgentReasoningEvent,
    ChatTurn,
    EndEvent,
    ErrorEvent,
    MetadataEvent,
    PredictionAccumulator,
    PredictionRequest,
    SourceDocumentsEvent,
    StartEvent,
    ThinkingEvent,
    TokenEvent,
    Turn,
    Upload,
    UsageMetadataEvent,
    UsedToolsEvent,
    event_to_dict,
    to_prediction_input,
)
from flowise_integrations.accumulator import decode_follow_up_prompts, events_from_json
from flowise_integrations.events import ActionEvent, AgentFlowEvent, CalledToolsEvent, decode_event


def fold(*events: object) -> PredictionAccumulator:
    acc = PredictionAccumulator(chatflow_id="flow")
    for event in events:
        acc.add(event)  # type: ignore[arg-type]
    return acc


def test_start_is_never_content_and_tokens_append() -> None:
    result = fold(
        StartEvent("Hello"), TokenEvent("Hello"), TokenEvent(""), TokenEvent(" world"), EndEvent()
    ).prediction()
    assert result.text == "Hello world"
    assert result.finish_reason == "stop"


def test_cumulative_payloads_replace() -> None:
    result = fold(
        UsedToolsEvent([{"tool": "a", "toolInput": {}, "toolOutput": "1"}]),
        UsedToolsEvent(
            [{"tool": "a", "toolInput": {}, "toolOutput": "1"}, {"tool": "b", "toolInput": {}, "toolOutput": "2"}]
        ),
        SourceDocumentsEvent([{"pageContent": "old", "metadata": {}}]),
        SourceDocumentsEvent([{"pageContent": "new", "metadata": {"source": "s"}}]),
        AgentReasoningEvent([{"agentName": "w1", "messages": ["m1"]}]),
        AgentReasoningEvent([{"agentName": "w1", "messages": ["m1"]}, {"agentName": "w2", "messages": ["m2"]}]),
        CalledToolsEvent([{"tool": "x", "toolInput": {}, "toolOutput": ""}]),
        CalledToolsEvent([]),
    ).prediction()
    assert [t.tool for t in result.used_tools] == ["a", "b"]
    assert [d.page_content for d in result.source_documents] == ["new"]
    assert [s.agent_name for s in result.agent_reasoning] == ["w1", "w2"]
    assert result.agent_reasoning[1].text == "m2"
    assert result.called_tools == []  # `[]` clears the pending calls


def test_agentflow_usage_is_summed_over_model_calls() -> None:
    usage = {"input_tokens": 10, "output_tokens": 12, "total_tokens": 22}
    result = fold(UsageMetadataEvent(usage), UsageMetadataEvent(usage)).prediction()
    assert result.usage is not None
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.total_tokens) == (20, 24, 44)


def test_thinking_appends_and_keeps_the_duration() -> None:
    result = fold(
        ThinkingEvent("Let me "), ThinkingEvent("think."), ThinkingEvent("", 3.0), TokenEvent("42")
    ).prediction()
    assert result.thinking == "Let me think."
    assert result.thinking_duration == 3.0
    assert result.text == "42"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (json.dumps(json.dumps(["Q1", "Q2"])), ["Q1", "Q2"]),  # JSON replies: double-encoded
        (json.dumps(["Q1", "Q2"]), ["Q1", "Q2"]),  # metadata event: single-encoded
        (["Q1"], ["Q1"]),  # already decoded
        (json.dumps(json.dumps(json.dumps(["deep"]))), ["deep"]),
        ("not json at all", ["not json at all"]),
        ("", []),
        (None, []),
    ],
)
def test_follow_up_prompts_are_decoded_however_encoded(value: object, expected: list[str]) -> None:
    assert decode_follow_up_prompts(value) == expected


def test_metadata_ids_and_finish_reasons() -> None:
    meta = MetadataEvent(
        {
            "chatId": "c",
            "chatMessageId": "m",
            "sessionId": "s",
            "memoryType": "Buffer Memory",
            "followUpPrompts": '["a"]',
            "flowVariables": {"v": 1},
        }
    )
    result = fold(TokenEvent("x"), meta, EndEvent("[DONE]")).prediction()
    assert (result.chat_id, result.chat_message_id, result.session_id) == ("c", "m", "s")
    assert result.follow_up_prompts == ["a"]
    assert result.flow_variables == {"v": 1}
    assert fold(ErrorEvent("boom"), EndEvent()).prediction().finish_reason == "error"
    assert fold(TokenEvent("x")).prediction().finish_reason == "incomplete"
    stopped = fold(AgentFlowEvent("STOPPED"), ActionEvent({"id": "a", "mapping": {}}), EndEvent()).prediction()
    assert stopped.finish_reason == "stopped"
    assert stopped.action == {"id": "a", "mapping": {}}


def test_json_reply_and_stream_fold_to_the_same_prediction() -> None:
    body = {
        "text": "Answer",
        "sourceDocuments": [{"pageContent": "d", "metadata": {}}],
        "usedTools": [{"tool": "calc", "toolInput": {"input": "1+1"}, "toolOutput": "2"}],
        "question": "q",
        "chatId": "c",
        "chatMessageId": "m",
        "sessionId": "c",
        "followUpPrompts": json.dumps(json.dumps(["next?"])),
        "executionId": "e",
        "agentFlowExecutedData": [
            {
                "nodeId": "llm",
                "data": {"output": {"usageMetadata": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}}},
            }
        ],
    }
    acc = fold(*events_from_json(body))
    acc.raw = body
    from_json = acc.prediction()
    streamed = fold(
        TokenEvent("Ans"),
        TokenEvent("wer"),
        SourceDocumentsEvent(body["sourceDocuments"]),
        UsedToolsEvent(body["usedTools"]),
        UsageMetadataEvent({"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}),
        MetadataEvent(
            {
                "chatId": "c",
                "chatMessageId": "m",
                "sessionId": "c",
                "question": "q",
                "followUpPrompts": json.dumps(["next?"]),
            }
        ),
        EndEvent(),
    ).prediction()
    for field in (
        "text",
        "chat_id",
        "chat_message_id",
        "session_id",
        "question",
        "source_documents",
        "used_tools",
        "usage",
        "follow_up_prompts",
        "finish_reason",
    ):
        assert getattr(from_json, field) == getattr(streamed, field), field
    assert from_json.execution_id == "e"


def test_decode_event_never_raises() -> None:
    assert decode_event({"event": "token", "data": 5}).data == "5"
    assert decode_event({"event": "token"}).data == ""
    assert decode_event([1, 2]).event == "<malformed>"
    assert decode_event({"data": "x"}).event == "<malformed>"
    thinking = decode_event({"event": "thinking", "data": "", "duration": 3})
    assert event_to_dict(thinking) == {"event": "thinking", "data": "", "duration": 3.0}


# -- conversation ------------------------------------------------------------------------------------


def test_client_side_memory_sends_history_and_keeps_system_turns() -> None:
    turns = [Turn("system", "Be brief."), Turn("user", "hi"), Turn("assistant", "hello"), Turn("user", "and?")]
    result = to_prediction_input(turns)
    assert result.question == "and?"
    assert result.history == [
        {"role": "userMessage", "content": "Be brief."},
        {"role": "userMessage", "content": "hi"},
        {"role": "apiMessage", "content": "hello"},
    ]


def test_server_side_memory_sends_only_the_newest_user_turn_and_system() -> None:
    turns = [Turn("system", "Be brief."), Turn("user", "hi"), Turn("assistant", "hello"), Turn("user", "and?")]
    result = to_prediction_input(turns, server_memory=True)
    assert result.question == "and?"
    assert result.history == [{"role": "userMessage", "content": "Be brief."}]


def test_uploads_of_the_question_are_sent_and_earlier_ones_warned_about() -> None:
    image = Upload.from_bytes(b"img", name="a.png")
    turns = [Turn("user", "look", uploads=[image]), Turn("assistant", "nice"), Turn("user", "again", uploads=[image])]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = to_prediction_input(turns)
    assert result.uploads == [image]
    assert "cannot be sent" in str(caught[0].message)


def test_a_conversation_must_end_with_a_user_turn() -> None:
    with pytest.raises(ValueError, match="at least one user"):
        to_prediction_input([Turn("system", "x")])
    with pytest.raises(ValueError, match="ends with an assistant message"):
        to_prediction_input([Turn("user", "x"), Turn("assistant", "y")])


# -- request models ----------------------------------------------------------------------------------


def test_request_body_omits_unset_fields() -> None:
    assert PredictionRequest(question="hi").to_body() == {"question": "hi"}
    body = PredictionRequest(question="hi", streaming=True, session_id="s", override_config={"t": 1}).to_body()
    assert body == {"question": "hi", "streaming": True, "overrideConfig": {"t": 1, "sessionId": "s"}}


@pytest.mark.parametrize("role", ["user", "human", "userMessage", "system"])
def test_history_user_roles(role: str) -> None:
    body = PredictionRequest(question="q", history=[{"role": role, "content": "c"}]).to_body()
    assert body["history"] == [{"role": "userMessage", "content": "c"}]


def test_history_rejects_unknown_roles_and_non_text() -> None:
    with pytest.raises(ValueError, match="unknown history role"):
        PredictionRequest(question="q", history=[{"role": "tool", "content": "c"}]).to_body()
    with pytest.raises(TypeError, match="must be a string"):
        PredictionRequest(question="q", history=[{"role": "user", "content": ["x"]}]).to_body()
    assert ChatTurn(role="assistant", content="a").role == "assistant"


def test_upload_helpers(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "note.txt"
    path.write_bytes(b"hello")
    upload = Upload.from_path(path)
    assert upload.model_dump() == {
        "type": "file",
        "name": "note.txt",
        "mime": "text/plain",
        "data": "data:text/plain;base64,aGVsbG8=",
    }
    assert Upload.from_url("https://x.test/a/b.jpg", mime="image/jpeg").name == "b.jpg"


def test_agentflow_json_reply_gathers_tools_from_the_executed_nodes() -> None:
    """A real agentflow v2 (Start -> Agent with a calculator) JSON reply: tools only inside the node output."""
    from pathlib import Path

    raw = (Path(__file__).parent / "fixtures" / "real_captures" / "agentflow_v2_agent_tool_nonstream.txt").read_bytes()
    body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert "usedTools" not in body
    acc = fold(*events_from_json(body))
    acc.raw = body
    result = acc.prediction()
    assert [(t.tool, t.tool_input, t.tool_output) for t in result.used_tools] == [
        ("calculator", {"input": "2 + 2"}, "4")
    ]
    assert result.text == "The tool said: 4."
    assert result.usage is not None
    assert result.usage.total_tokens > 0


def test_agentflow_usage_is_the_same_streamed_or_not() -> None:
    """Flowise streams usage for one model call of a tool-calling Agent node (22) and reports 66 for the node;
    the two model calls really used 20 in / 24 out = 44, streamed or not (issue 12: usage you can bill by)."""
    from pathlib import Path

    from flowise_integrations.exchange import StreamState

    captures = Path(__file__).parent / "fixtures" / "real_captures"
    body = json.loads((captures / "agentflow_v2_agent_tool_nonstream.txt").read_bytes().split(b"\r\n\r\n", 1)[1])
    acc = fold(*events_from_json(body))
    acc.raw = body
    from_json = acc.prediction()
    state = StreamState("flow", None, streaming=True)
    state.feed((captures / "agentflow_v2_agent_tool_stream.txt").read_bytes().split(b"\r\n\r\n", 1)[1])
    streamed = state.result
    assert streamed.usage == from_json.usage
    assert from_json.usage is not None
    assert (from_json.usage.input_tokens, from_json.usage.output_tokens, from_json.usage.total_tokens) == (20, 24, 44)
    assert [t.tool for t in streamed.used_tools] == [t.tool for t in from_json.used_tools] == ["calculator"]
