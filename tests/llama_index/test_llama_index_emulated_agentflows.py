"""The wing's agent features end to end over the emulator's own agentflows and discovery endpoints:
``FlowiseToolSpec.from_server`` on a scripted server, and Human Input stop/resume through ``FlowiseLLM``,
``FlowiseQueryEngine`` and the Workflow recipe, in-process and over a real socket."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from _llama_index_support import ANSWER, SOURCES

from flowise_integrations import Interrupt, Prediction
from flowise_integrations.llama_index import (
    FlowiseHumanInputWorkflow,
    FlowiseHumanResponseEvent,
    FlowiseInputRequiredEvent,
    FlowiseLLM,
    FlowiseQueryEngine,
    FlowiseTextEvent,
    FlowiseToolSpec,
)
from flowise_integrations.testing import FakeFlow, FakeFlowise
from flowise_integrations.testing.nodes import LLM, DirectReply, HumanInput

KEY = "workspace-key"
DRAFT = "Draft: the meeting moves to 10am."
SENT = "The draft was sent."
DISCARDED = "The draft was discarded."
REVIEW = "Send this draft?"
FORM_FIELDS = [
    {"type": "string", "label": "Name", "name": "name", "addOptions": ""},
    {"type": "options", "label": "Plan", "name": "plan", "addOptions": [{"option": "basic"}, {"option": "pro"}]},
]


def review_flow() -> FakeFlow:
    """Start -> Drafter -> Human Input -> proceed: Sender / reject: Direct Reply (the e2e flow's shape)."""
    return FakeFlow(
        kind="agentflow",
        name="Review a draft",
        nodes=[
            LLM(id="llmAgentflow_0", label="Drafter", answer=DRAFT, usage=(11, 13)),
            HumanInput(description=REVIEW),
            LLM(id="llmAgentflow_1", label="Sender", answer=SENT, usage=(17, 19)),
            DirectReply(message=DISCARDED),
        ],
        edges=[
            ("startAgentflow_0", "llmAgentflow_0"),
            ("llmAgentflow_0", "humanInputAgentflow_0"),
            ("humanInputAgentflow_0", "llmAgentflow_1", 0),
            ("humanInputAgentflow_0", "directReplyAgentflow_0", 1),
        ],
    )


@pytest.fixture
def fake() -> FakeFlowise:
    return FakeFlowise(api_key=KEY)


@pytest.fixture(params=["transport", "loopback"])
def connect(request: pytest.FixtureRequest, fake: FakeFlowise) -> Any:
    """Keyword arguments that point a wing object at the emulator, in-process or over a socket."""
    if request.param == "transport":
        yield {
            "base_url": "http://flowise.test",
            "http_client": httpx.Client(transport=fake.transport()),
            "async_http_client": httpx.AsyncClient(transport=fake.async_transport()),
        }
    else:
        with fake.serve() as base_url:
            yield {"base_url": base_url}


# ------------------------------------------------------------------------------------------ discovery


@pytest.mark.parametrize("aio", [False, True], ids=["from_server", "afrom_server"])
async def test_tool_spec_from_the_emulated_server(aio: bool, fake: FakeFlowise, connect: dict[str, Any]) -> None:
    fake.add_flow(FakeFlow(name="Company policies", description="Answers policy questions.", answer=ANSWER,
                           source_documents=SOURCES))  # fmt: skip
    fake.add_flow(FakeFlow(kind="agentflow", name="Sign-up", input_type="form", form_fields=FORM_FIELDS,
                           form_description="Registers a customer.",
                           respond=lambda body: f"Welcome {body['form']['name']} ({body['form']['plan']})"))  # fmt: skip
    hook = fake.add_flow(FakeFlow(kind="agentflow", name="Inbound hook", input_type="webhook"))
    fake.add_flow(FakeFlow(name="Internal"))
    options = {"include": ["Company policies", "sign-up", hook], "session_id": "user-1", **connect}
    if aio:
        spec = await FlowiseToolSpec.afrom_server(api_key=KEY, **options)
    else:
        spec = FlowiseToolSpec.from_server(api_key=KEY, **options)
    tools = {tool.metadata.name: tool for tool in spec.to_tool_list()}
    assert sorted(tools) == ["company_policies", "sign-up"]  # the server lists the newest first
    assert spec.skipped.keys() == {hook}  # Flowise refuses predictions to a webhook flow
    assert tools["company_policies"].metadata.description == "Answers policy questions."
    assert tools["sign-up"].metadata.description == "Registers a customer."
    assert list(tools["sign-up"].metadata.get_parameters_dict()["properties"]) == ["name", "plan"]

    policies = await tools["company_policies"].acall(question="Refunds?")
    assert policies.content == ANSWER and isinstance(policies.raw_output, Prediction)
    assert policies.raw_output.source_documents and policies.raw_output.session_id == "user-1"
    signed = tools["sign-up"].call(name="Ada", plan="PRO")
    assert signed.content == "Welcome Ada (pro)"
    wrong = tools["sign-up"].call(name="Ada", plan="gold")
    assert wrong.is_error and "'plan'" in wrong.content and "basic" in wrong.content


def test_listing_needs_the_workspace_key(fake: FakeFlowise, connect: dict[str, Any]) -> None:
    from flowise_integrations import AuthenticationError

    fake.add_flow(FakeFlow(name="Any"))
    with pytest.raises(AuthenticationError):
        FlowiseToolSpec.from_server(**connect)


# ------------------------------------------------------------------------------------------ human input


@pytest.mark.parametrize("approve", [True, False], ids=["proceed", "reject"])
async def test_llm_stops_and_resumes_an_emulated_human_input(
    approve: bool, fake: FakeFlowise, connect: dict[str, Any]
) -> None:
    flow = fake.add_flow(review_flow())
    llm = FlowiseLLM(flow, chat_id="review-1", **connect)
    stopped = [r async for r in await llm.astream_chat([_user("Draft a note")])][-1]
    interrupt = stopped.additional_kwargs["interrupt"]
    assert isinstance(interrupt, Interrupt) and interrupt.node_id == "humanInputAgentflow_0"
    assert stopped.message.content == f"{DRAFT}\n\n{REVIEW}" and interrupt.chat_id == "review-1"
    resumed = llm.resume(interrupt, approve=approve, feedback="ok")
    assert resumed.message.content == (SENT if approve else DISCARDED)
    assert resumed.additional_kwargs["interrupt"] is None
    usage = resumed.additional_kwargs["usage"]
    billed = (usage.input_tokens, usage.output_tokens) if usage else (0, 0)
    assert billed == ((17, 19) if approve else (0, 0))  # the Sender only; the Drafter is not billed twice
    resume_body = fake.requests[-1].json
    assert resume_body["humanInput"] == {
        "type": "proceed" if approve else "reject",
        "startNodeId": "humanInputAgentflow_0",
        "feedback": "ok",
    }


@pytest.mark.parametrize("streaming", [False, True], ids=["response", "streaming"])
def test_query_engine_stops_and_resumes_an_emulated_human_input(
    streaming: bool, fake: FakeFlowise, connect: dict[str, Any]
) -> None:
    engine = FlowiseQueryEngine(chatflow_id=fake.add_flow(review_flow()), session_id="user-9", streaming=streaming,
                                **connect)  # fmt: skip
    response = engine.query("Draft a note")
    text = "".join(response.response_gen) if streaming else str(response)  # type: ignore[union-attr]
    assert text.endswith(REVIEW) and engine.last_interrupt is not None
    resumed = engine.resume(True)
    assert ("".join(resumed.response_gen) if streaming else str(resumed)) == SENT  # type: ignore[union-attr]
    assert engine.last_interrupt is None


@pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")  # workflows inspect pydantic members
@pytest.mark.parametrize("approve", [True, False], ids=["proceed", "reject"])
async def test_workflow_recipe_over_the_emulator(approve: bool, fake: FakeFlowise, connect: dict[str, Any]) -> None:
    llm = FlowiseLLM(fake.add_flow(review_flow()), **connect)
    handler = FlowiseHumanInputWorkflow(llm, timeout=30).run(question="Draft a note", session_id="user-3")
    text = ""
    asked: list[FlowiseInputRequiredEvent] = []
    async for event in handler.stream_events():
        if isinstance(event, FlowiseTextEvent):
            text += event.delta
        elif isinstance(event, FlowiseInputRequiredEvent):
            asked.append(event)
            handler.ctx.send_event(FlowiseHumanResponseEvent(approve=approve))
    result = await handler
    (request,) = asked
    assert request.prefix.endswith(REVIEW) and [d.label for d in request.decisions] == ["Proceed", "Reject"]
    expected = SENT if approve else DISCARDED
    assert result.message.content == expected and text == f"{DRAFT}\n\n{REVIEW}{expected}"
    assert result.additional_kwargs["session_id"] == "user-3"


async def test_a_tool_whose_flow_stops_hands_the_interrupt_to_the_developer(
    fake: FakeFlowise, connect: dict[str, Any]
) -> None:
    fake.add_flow(review_flow())
    spec = FlowiseToolSpec.from_server(api_key=KEY, session_id="user-5", **connect)
    (tool,) = spec.to_tool_list()
    output = await tool.acall(question="Draft a note")
    assert not output.is_error and output.content == f"{DRAFT}\n\n{REVIEW}"
    interrupt = output.raw_output.interrupt
    assert isinstance(interrupt, Interrupt) and interrupt.session_id == "user-5"
    done = await spec.async_client.resume(spec.flows[0].id, interrupt=interrupt, approve=True)
    assert done.text == SENT


def _user(text: str) -> Any:
    from llama_index.core.base.llms.types import ChatMessage

    return ChatMessage(role="user", content=text)
