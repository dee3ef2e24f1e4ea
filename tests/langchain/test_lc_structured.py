"""``with_structured_output`` (format instructions + parsing) and ``bind_tools``'s message."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from flowise_integrations.langchain import ChatFlowise, FlowiseTool
from flowise_integrations.testing import FakeFlow, FakeFlowise

pytestmark = pytest.mark.usefixtures("no_sockets")

MakeLLM = Callable[..., ChatFlowise]


class Ticket(BaseModel):
    """A support ticket."""

    title: str = Field(description="one line")
    priority: int


class TicketDict(TypedDict):
    title: str
    priority: int


ANSWER = {"title": "Refund not received", "priority": 2}


def json_flow(fake: FakeFlowise, text: str = json.dumps(ANSWER), **kwargs: Any) -> str:
    return fake.add_flow(FakeFlow(tokens=[text[i : i + 7] for i in range(0, len(text), 7)], **kwargs))


def test_pydantic_schema_is_sent_as_instructions_and_parsed(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = json_flow(fake, f"```json\n{json.dumps(ANSWER)}\n```")
    ticket = make_llm(flow).with_structured_output(Ticket).invoke("My refund never arrived, it is urgent-ish.")
    assert ticket == Ticket(**ANSWER)
    question = fake.last_request.json["question"]
    head, _, schema = question.rpartition("\n")
    assert head.startswith("My refund never arrived, it is urgent-ish.\n\nAnswer with one JSON object only")
    assert json.loads(schema)["properties"].keys() == {"title", "priority"}
    assert "A support ticket" in head


def test_instructions_go_on_the_newest_human_message(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = json_flow(fake)
    messages = [SystemMessage("Be terse."), HumanMessage("first"), AIMessage("ok"), HumanMessage("make a ticket")]
    assert make_llm(flow).with_structured_output(TicketDict).invoke(messages) == ANSWER
    body = fake.last_request.json
    assert body["question"].startswith("make a ticket\n\nAnswer with one JSON object only")
    assert "first" in json.dumps(body["history"]) and "JSON" not in json.dumps(body["history"])


def test_dict_schemas_stream_partial_objects(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = json_flow(fake)
    structured = make_llm(flow).with_structured_output(TicketDict)
    parts = list(structured.stream("ticket"))
    assert len(parts) > 2 and parts[-1] == ANSWER
    assert {"title"} <= parts[1].keys() and parts[0] != ANSWER  # partial objects first, growing
    pydantic_parts = list(make_llm(flow).with_structured_output(Ticket).stream("ticket"))
    assert pydantic_parts[-1] == Ticket(**ANSWER) and all(isinstance(p, Ticket) for p in pydantic_parts)


async def test_json_schema_dict_async(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = json_flow(fake)
    schema = Ticket.model_json_schema()
    assert await make_llm(flow).with_structured_output(schema).ainvoke("ticket") == ANSWER
    parts = [p async for p in make_llm(flow).with_structured_output(schema).astream("ticket")]
    assert parts[-1] == ANSWER


def test_json_mode_only_asks_for_json(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    flow = json_flow(fake)
    assert make_llm(flow).with_structured_output(method="json_mode").invoke("ticket as JSON") == ANSWER
    question = fake.last_request.json["question"]
    assert question.endswith("no code fences, no comments.") and "schema" not in question
    assert make_llm(flow).with_structured_output(Ticket, method="json_mode").invoke("t") == Ticket(**ANSWER)


def test_include_raw_keeps_the_message_and_the_parsing_error(fake: FakeFlowise, make_llm: MakeLLM) -> None:
    good = make_llm(json_flow(fake)).with_structured_output(Ticket, include_raw=True).invoke("t")
    assert good["parsed"] == Ticket(**ANSWER) and good["parsing_error"] is None
    assert isinstance(good["raw"], AIMessage) and good["raw"].response_metadata["model_provider"] == "flowise"
    bad = make_llm(json_flow(fake, "Sorry, I cannot do JSON.")).with_structured_output(Ticket, include_raw=True)
    result = bad.invoke("t")
    assert result["parsed"] is None and result["parsing_error"] is not None
    assert result["raw"].content == "Sorry, I cannot do JSON."


def test_structured_output_arguments_are_checked(make_llm: MakeLLM) -> None:
    llm = make_llm("flow")
    with pytest.raises(ValueError, match="needs a schema"):
        llm.with_structured_output(None)
    with pytest.raises(ValueError, match="method must be"):
        llm.with_structured_output(Ticket, method="xml")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected"):
        llm.with_structured_output(Ticket, tools=[])
    assert llm.with_structured_output(Ticket, method="function_calling", strict=True) is not None


def test_bind_tools_names_the_tools_to_use_instead(make_llm: MakeLLM) -> None:
    with pytest.raises(NotImplementedError) as caught:
        make_llm("flow").bind_tools([FlowiseTool(name="x", description="x", chatflow_id="f")])
    assert "FlowiseTool" in str(caught.value) and "FlowiseToolkit" in str(caught.value)
