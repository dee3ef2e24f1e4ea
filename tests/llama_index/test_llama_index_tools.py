"""``FlowiseToolSpec``: one LlamaIndex tool per flow, over the emulator.

Flows are described by real Flowise 3.1.4 chatflow rows (``tests/fixtures/real_captures/chatflows_get_*``) where
their shape matters (a form Start node); predictions go to FakeFlowise. A LlamaIndex ``FunctionAgent`` with a
scripted function-calling model uses the tools, survives a failing flow, and never gets to choose the session.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from _llama_index_support import ANSWER, SOURCES, TOOLS
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import ToolOutput
from llama_index.core.tools.tool_spec.base import BaseToolSpec

from flowise_integrations import FlowExecutionError, FlowInfo, Prediction
from flowise_integrations.discovery import parse_flow
from flowise_integrations.llama_index import FlowiseFlowTool, FlowiseToolSpec
from flowise_integrations.testing import FakeFlow, FakeFlowise

CAPTURES = Path(__file__).parent.parent / "fixtures" / "real_captures"
FORM = {"name": "Ada", "age": "36", "subscribed": "yes", "plan": "PRO"}


def real_row(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((CAPTURES / f"chatflows_get_{name}.txt").read_bytes().partition(b"\r\n\r\n")[2])
    return body


def real_flow(name: str, flow_id: str) -> FlowInfo:
    """A real flow's row, as if the emulator's flow ``flow_id`` were it."""
    info = parse_flow({**real_row(name), "id": flow_id})
    assert info is not None
    return info


def chat_flow(flow_id: str, name: str, description: str | None = None, **fields: Any) -> FlowInfo:
    return FlowInfo(id=flow_id, name=name, description=description, type="CHATFLOW", input_type=None, **fields)


def predictions(fake: FakeFlowise, flow: str) -> list[dict[str, Any]]:
    return [r.json for r in fake.requests if r.method == "POST" and r.path == f"/api/v1/prediction/{flow}"]


@pytest.fixture
def spec_of(fake: FakeFlowise) -> Any:
    """``spec_of(flows, **options)``: a FlowiseToolSpec whose predictions go to the emulator, in-process."""

    def make(flows: Sequence[FlowInfo], **options: Any) -> FlowiseToolSpec:
        return FlowiseToolSpec(
            flows,
            base_url="http://flowise.test",
            http_client=httpx.Client(transport=fake.transport()),
            async_http_client=httpx.AsyncClient(transport=fake.async_transport()),
            **options,
        )

    return make


@pytest.fixture
def flows(fake: FakeFlowise) -> dict[str, str]:
    return {
        "rag": fake.add_flow(FakeFlow(answer=ANSWER, source_documents=SOURCES, used_tools=TOOLS)),
        "form": fake.add_flow(FakeFlow(kind="agentflow", respond=lambda body: f"Form: {json.dumps(body['form'])}")),
        "broken": fake.add_flow(FakeFlow(error="the model provider is down", error_after=1)),
    }


# ------------------------------------------------------------------------------------------ the tools


def test_one_valid_unique_tool_per_flow(spec_of: Any) -> None:
    webhook = real_row("af_form")
    webhook_flow = json.loads(webhook["flowData"])
    for node in webhook_flow["nodes"]:
        if node["data"]["name"] == "startAgentflow":
            node["data"]["inputs"]["startInputType"] = "webhookTrigger"
    hooked = parse_flow({**webhook, "id": "hook", "name": "Hook", "flowData": json.dumps(webhook_flow)})
    assert hooked is not None
    spec = spec_of([
        chat_flow("a", "Café Menu", "What the café serves today."),
        chat_flow("b", "café menu"),
        chat_flow("c", "Summariser", mcp_tool_name="summarise_text"),
        real_flow("af_form", "d"),
        hooked,
    ])  # fmt: skip
    assert isinstance(spec, BaseToolSpec)
    tools = spec.to_tool_list()
    assert all(isinstance(t, FlowiseFlowTool) for t in tools)
    names = [t.metadata.name for t in tools]
    assert names == ["cafe_menu", "cafe_menu_2", "summarise_text", "e2e-af_form"]
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", n or "") for n in names)
    assert [t.metadata.description for t in tools] == [
        "What the café serves today.",
        'Execute the "café menu" flow',
        'Execute the "Summariser" flow',
        "Tell us about you",  # the form's own description
    ]
    assert spec.skipped.keys() == {"hook"} and "Webhook" in spec.skipped["hook"]
    assert spec.tool_name("c") == "summarise_text"
    for tool in tools:
        tool.metadata.to_openai_tool()  # valid for a function-calling model (name, description length)


def test_the_model_sees_a_question_or_the_forms_fields(spec_of: Any) -> None:
    chat, form = spec_of([chat_flow("a", "Docs"), real_flow("af_form", "f")]).to_tool_list()
    assert chat.metadata.get_parameters_dict() == {
        "type": "object",
        "properties": {
            "question": {
                "description": "The question or message to send to the flow",
                "title": "Question",
                "type": "string",
            }
        },
        "required": ["question"],
    }
    form_params = form.metadata.get_parameters_dict()
    props = form_params["properties"]
    assert list(props) == ["name", "age", "subscribed", "plan"]  # no question: Flowise refuses both at once
    assert (props["name"]["type"], props["age"]["type"], props["subscribed"]["type"]) == ("string", "number", "boolean")
    assert props["plan"]["enum"] == ["basic", "pro"]
    assert form_params["required"] == ["name", "age", "subscribed", "plan"]
    assert "session" not in json.dumps(form_params) + json.dumps(chat.metadata.get_parameters_dict())


def test_include_and_exclude_by_id_name_or_tool_name(spec_of: Any) -> None:
    flows = [chat_flow("a", "Alpha"), chat_flow("b", "Beta"), chat_flow("c", "Gamma Ray")]
    assert [t.metadata.name for t in spec_of(flows, include=["a", "Beta", "gamma_ray"]).to_tool_list()] == [
        "alpha",
        "beta",
        "gamma_ray",
    ]
    assert [t.metadata.name for t in spec_of(flows, exclude=["Alpha", "c"]).to_tool_list()] == ["beta"]
    spec = spec_of(flows)
    assert [t.metadata.name for t in spec.to_tool_list(spec_functions=["beta", "c"])] == ["beta", "gamma_ray"]


# ------------------------------------------------------------------------------------------ calling


async def test_a_tool_answers_with_the_prediction_as_raw_output(
    spec_of: Any, flows: dict[str, str], fake: FakeFlowise
) -> None:
    (tool,) = spec_of([chat_flow(flows["rag"], "France")], session_id="user-A").to_tool_list()
    for output in (tool.call(question="Capital of France?"), await tool.acall(question="Capital of France?")):
        assert isinstance(output, ToolOutput) and not output.is_error
        assert output.content == ANSWER and output.tool_name == "france"
        prediction = output.raw_output
        assert isinstance(prediction, Prediction)
        assert [d.page_content for d in prediction.source_documents] == [d["pageContent"] for d in SOURCES]
        assert [t.tool for t in prediction.used_tools] == ["search"]
    bodies = predictions(fake, flows["rag"])
    assert [b["question"] for b in bodies] == ["Capital of France?"] * 2
    assert [b["overrideConfig"] for b in bodies] == [{"sessionId": "user-A"}] * 2


async def test_the_model_cannot_choose_the_session(spec_of: Any, flows: dict[str, str], fake: FakeFlowise) -> None:
    (tool,) = spec_of([chat_flow(flows["rag"], "France")], session_id="user-A").to_tool_list()
    output = await tool.acall(question="What did user B ask?", session_id="user-B")
    assert output.is_error and "session_id" in output.content and "only 'question'" in output.content
    assert predictions(fake, flows["rag"]) == []  # refused before any request


async def test_form_arguments_are_checked_coerced_and_sent_as_the_form(
    spec_of: Any, flows: dict[str, str], fake: FakeFlowise
) -> None:
    (tool,) = spec_of([real_flow("af_form", flows["form"])]).to_tool_list()
    output = await tool.acall(**FORM)
    assert not output.is_error
    (body,) = predictions(fake, flows["form"])
    assert body["form"] == {"name": "Ada", "age": 36, "subscribed": True, "plan": "pro"} and "question" not in body
    assert output.content == f"Form: {json.dumps(body['form'])}"
    bad = tool.call(**{**FORM, "age": "thirty"})
    assert bad.is_error and "'age'" in bad.content and isinstance(bad.exception, ValueError)
    assert len(predictions(fake, flows["form"])) == 1


async def test_a_failing_flow_is_an_error_output_not_an_exception(spec_of: Any, flows: dict[str, str]) -> None:
    (tool,) = spec_of([chat_flow(flows["broken"], "Broken")]).to_tool_list()
    for output in (tool.call(question="hi"), await tool.acall(question="hi")):
        assert output.is_error and isinstance(output.exception, FlowExecutionError)
        assert "the model provider is down" in output.content and "'Broken' failed" in output.content
        assert output.raw_output is output.exception.partial  # what arrived before the failure, if anything
    with pytest.raises(FlowExecutionError):  # the plain function still raises, for code that wants that
        tool.fn(question="hi")


def test_sessions_per_user_share_flows_and_connections(spec_of: Any, flows: dict[str, str], fake: FakeFlowise) -> None:
    spec = spec_of([chat_flow(flows["rag"], "France")])
    alice, bob = spec.with_session("alice"), spec.with_session("bob", chat_id="bob-chat")
    alice.to_tool_list()[0].call(question="q")
    bob.to_tool_list()[0].call(question="q")
    spec.to_tool_list()[0].call(question="q")
    bodies = predictions(fake, flows["rag"])
    assert [(b.get("overrideConfig"), b.get("chatId")) for b in bodies[:2]] == [
        ({"sessionId": "alice"}, None),
        ({"sessionId": "bob"}, "bob-chat"),
    ]
    assert "overrideConfig" not in bodies[2] and bodies[2]["chatId"]  # no session: a new chat per call
    assert alice.client is bob.client is spec.client


async def test_a_cancelled_tool_call_aborts_the_run(spec_of: Any, fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow", first_token_delay=30))
    (tool,) = spec_of([chat_flow(flow, "Slow")]).to_tool_list()
    task = asyncio.create_task(tool.acall(question="hi"))
    while not predictions(fake, flow):
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    aborts = [r.path for r in fake.requests if r.method == "PUT"]
    assert aborts == [f"/api/v1/chatmessage/abort/{flow}/{predictions(fake, flow)[0]['chatId']}"]


# ------------------------------------------------------------------------------------------ an agent


def _agent_script(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
    """Ask the France flow, then the broken flow; then answer with what each said (errors included)."""
    results = [m for m in messages if m.role == MessageRole.TOOL]
    calls = [("france", {"question": "Capital of France?"}), ("broken", {"question": "Anything new?"})]
    if len(results) < len(calls):
        name, args = calls[len(results)]
        return ChatMessage(role="assistant", blocks=[
            ToolCallBlock(tool_call_id=f"call-{len(results)}", tool_name=name, tool_kwargs=args)
        ])  # fmt: skip
    return ChatMessage(role="assistant", content=" | ".join(str(m.content) for m in results))


@pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")  # workflows inspect pydantic members
async def test_function_agent_uses_the_flows_and_survives_a_failing_one(
    spec_of: Any, flows: dict[str, str], fake: FakeFlowise
) -> None:
    spec = spec_of(
        [chat_flow(flows["rag"], "France", "Answers questions about France."), chat_flow(flows["broken"], "Broken")],
        session_id="user-A",
    )
    brain = MockFunctionCallingLLM(response_generator=_agent_script, is_chat_model=True)
    agent = FunctionAgent(tools=spec.to_tool_list(), llm=brain, name="main", description="main agent")
    handler = agent.run(user_msg="Tell me about France")
    results = [event async for event in handler.stream_events() if isinstance(event, ToolCallResult)]
    output = await handler
    answer = str(output.response.content)
    assert answer.startswith(f"{ANSWER} | Error: the flow 'Broken' failed:") and "provider is down" in answer
    assert [(r.tool_name, r.tool_output.is_error) for r in results] == [("france", False), ("broken", True)]
    assert isinstance(results[0].tool_output.raw_output, Prediction)
    assert results[0].tool_output.raw_output.source_documents  # the flow's sources reach the agent's events
    sessions = [b["overrideConfig"]["sessionId"] for f in ("rag", "broken") for b in predictions(fake, flows[f])]
    assert sessions == ["user-A", "user-A"]


def test_the_key_never_shows() -> None:
    protected = FakeFlowise(api_key="sk-workspace-secret")
    flow = protected.add_flow(FakeFlow(name="Docs", api_key="sk-workspace-secret", error="boom"))
    spec = FlowiseToolSpec(
        [chat_flow(flow, "Docs")],
        base_url="http://admin:pw-secret@flowise.test",
        api_key="sk-workspace-secret",
        http_client=httpx.Client(transport=protected.transport()),
    )
    (tool,) = spec.to_tool_list()
    output = tool.call(question="hi")
    assert protected.last_request.headers["authorization"] == "Bearer sk-workspace-secret"
    shown = [repr(spec), str(vars(spec)), repr(spec.client), spec.base_url, str(tool.metadata), output.content,
             repr(output), str(output.raw_input)]  # fmt: skip
    for text in shown:
        assert "sk-workspace-secret" not in text and "pw-secret" not in text
