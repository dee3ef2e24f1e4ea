"""FlowiseToolkit over the emulator's discovery endpoints: one tool per flow, named, described, the form's fields
as the schema, webhook/schedule flows left out, include/exclude, sync and async construction."""

from __future__ import annotations

from typing import Any

import pytest
from _langchain_support import transport_clients
from langchain_core.utils.function_calling import convert_to_openai_tool

from flowise_integrations import AuthenticationError
from flowise_integrations.langchain import FlowiseTool, FlowiseToolInput, FlowiseToolkit
from flowise_integrations.testing import FakeFlow, FakeFlowise

pytestmark = pytest.mark.usefixtures("no_sockets")

KEY = "workspace-key"
FORM = [
    {"type": "string", "label": "Email", "name": "email"},
    {"type": "number", "label": "Priority", "name": "priority"},
    {"type": "options", "label": "Team", "name": "team", "addOptions": [{"option": "billing"}, {"option": "tech"}]},
]


@pytest.fixture
def server() -> tuple[FakeFlowise, dict[str, str]]:
    fake = FakeFlowise(api_key=KEY)
    ids = {
        "policies": fake.add_flow(
            FakeFlow(name="Company Policies", description="Answers policy questions.", answer="30 days.")
        ),
        "policies_2": fake.add_flow(FakeFlow(name="company policies!", answer="Other policies.")),
        "cafe": fake.add_flow(FakeFlow(name="Café menu", category="food;internal")),
        "ticket": fake.add_flow(
            FakeFlow(
                name="Open ticket",
                kind="agentflow",
                input_type="form",
                form_title="Ticket",
                form_description="Opens a support ticket.",
                form_fields=FORM,
                answer="Ticket opened.",
            )
        ),
        "hook": fake.add_flow(FakeFlow(name="Nightly hook", kind="agentflow", input_type="webhook")),
        "cron": fake.add_flow(FakeFlow(name="Nightly report", kind="agentflow", input_type="schedule")),
    }
    return fake, ids


def connection(fake: FakeFlowise) -> dict[str, Any]:
    return {"api_key": KEY, **transport_clients(fake)}


def test_one_tool_per_callable_flow(server: tuple[FakeFlowise, dict[str, str]]) -> None:
    fake, ids = server
    toolkit = FlowiseToolkit.from_server(**connection(fake))
    tools = toolkit.get_tools()
    names = {t.chatflow_id: t.name for t in tools}
    assert {names[ids["cafe"]], names[ids["ticket"]]} == {"cafe_menu", "open_ticket"}
    assert {names[ids["policies"]], names[ids["policies_2"]]} == {"company_policies", "company_policies_2"}
    # a clash is numbered by creation (then id), not by the listing's order (Flowise lists recent edits first)
    again = FlowiseToolkit.from_flows(list(reversed(toolkit.flows)), **connection(fake)).get_tools()
    assert {t.chatflow_id: t.name for t in again} == names
    assert all(isinstance(t, FlowiseTool) for t in tools)
    by_name = {t.name: t for t in tools}
    policies = by_name[names[ids["policies"]]]
    assert policies.description == "Answers policy questions."
    assert by_name["cafe_menu"].description == 'Execute the "Café menu" flow'
    assert by_name["open_ticket"].description == "Opens a support ticket."
    assert policies.args_schema is FlowiseToolInput
    assert [f.id for f in toolkit.flows] == [t.chatflow_id for t in tools]  # the server's order
    assert toolkit.get_tools() == tools  # built once
    assert policies.invoke({"question": "Refunds?"}) == "30 days."
    assert fake.last_request.headers["authorization"] == f"Bearer {KEY}"


def test_form_flow_tool_takes_the_form(server: tuple[FakeFlowise, dict[str, str]]) -> None:
    fake, _ = server
    (ticket,) = FlowiseToolkit.from_server(**connection(fake), include=["Open ticket"]).get_tools()
    parameters = convert_to_openai_tool(ticket)["function"]["parameters"]
    assert isinstance(ticket.tool_call_schema, dict) and ticket.tool_call_schema["title"] == "Ticket"
    assert parameters["properties"]["team"] == {"type": "string", "enum": ["billing", "tech"], "description": "Team"}
    assert parameters["required"] == ["email", "priority", "team"]
    assert ticket.invoke({"email": "ada@example.com", "priority": "3", "team": "Tech"}) == "Ticket opened."
    assert fake.last_request.json["form"] == {"email": "ada@example.com", "priority": 3, "team": "tech"}


def test_include_exclude_and_refused_flows(server: tuple[FakeFlowise, dict[str, str]]) -> None:
    fake, ids = server
    picked = FlowiseToolkit.from_server(**connection(fake), include=[ids["cafe"], "Company Policies"])
    assert sorted(t.chatflow_id for t in picked.get_tools()) == sorted([ids["cafe"], ids["policies"]])
    rest = FlowiseToolkit.from_server(**connection(fake), exclude=lambda flow: "internal" in flow.categories)
    assert "cafe_menu" not in [t.name for t in rest.get_tools()]
    agentflows = FlowiseToolkit.from_server(**connection(fake), include=lambda flow: flow.is_agentflow)
    assert [t.name for t in agentflows.get_tools()] == ["open_ticket"]  # the webhook/schedule ones are left out
    with pytest.raises(ValueError, match="Webhook Trigger"):
        FlowiseToolkit.from_server(**connection(fake), include=["Nightly hook"])
    with pytest.raises(TypeError, match="not one string"):
        FlowiseToolkit.from_server(**connection(fake), include="Company Policies")  # type: ignore[arg-type]


async def test_async_construction_and_calls(server: tuple[FakeFlowise, dict[str, str]]) -> None:
    fake, ids = server
    toolkit = await FlowiseToolkit.afrom_server(**connection(fake), session_id="user-1")
    tools = {t.chatflow_id: t for t in toolkit.get_tools()}
    assert await tools[ids["policies"]].ainvoke({"question": "Refunds?"}) == "30 days."
    assert fake.last_request.json["overrideConfig"] == {"sessionId": "user-1"}
    assert all(t.client is toolkit.client for t in tools.values())  # one connection pool for every tool


def test_listing_needs_a_key(server: tuple[FakeFlowise, dict[str, str]]) -> None:
    fake, _ = server
    with pytest.raises(AuthenticationError):
        FlowiseToolkit.from_server(**transport_clients(fake))
