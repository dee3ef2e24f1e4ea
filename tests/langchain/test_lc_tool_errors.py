"""A failing flow is an error the agent can read (``handle_tool_error``), and still the core error type."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from _langchain_support import transport_clients
from langchain_core.messages import ToolMessage
from langchain_core.tools import ToolException

from flowise_integrations import BadRequestError, FlowExecutionError, FlowiseError, NotFoundError
from flowise_integrations.discovery import FormField
from flowise_integrations.errors import InternalServerError
from flowise_integrations.langchain import (
    FlowiseTool,
    FlowiseToolBadRequestError,
    FlowiseToolError,
    FlowiseToolExecutionError,
    FlowiseToolInputError,
    FlowiseToolNotFoundError,
    to_tool_error,
)
from flowise_integrations.testing import FakeFlow, FakeFlowise

pytestmark = pytest.mark.usefixtures("no_sockets")

FAILURE = "The LLM provider is down"


def tool(fake: FakeFlowise, flow: str, **fields: Any) -> FlowiseTool:
    return FlowiseTool(name="broken", description="A flow.", chatflow_id=flow, **transport_clients(fake), **fields)


def call(**args: Any) -> dict[str, Any]:
    return {"type": "tool_call", "name": "broken", "id": "c9", "args": args}


def test_a_failing_flow_raises_a_tool_exception_that_is_the_core_error(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(error=FAILURE))
    with pytest.raises(FlowExecutionError) as caught:
        tool(fake, flow).invoke({"question": "hi"})
    error = caught.value
    assert isinstance(error, FlowiseToolExecutionError) and isinstance(error, ToolException)
    assert isinstance(error, InternalServerError) and error.status_code == 500 and FAILURE in str(error)
    assert isinstance(error.__cause__, FlowExecutionError) and not isinstance(error.__cause__, ToolException)


async def test_handle_tool_error_gives_the_agent_the_failure(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(error=FAILURE))
    handled = tool(fake, flow, handle_tool_error=True)
    for message in (handled.invoke(call(question="hi")), await handled.ainvoke(call(question="hi"))):
        assert isinstance(message, ToolMessage) and message.status == "error" and message.tool_call_id == "c9"
        assert FAILURE in str(message.content)


def test_unknown_flow_and_bad_request_keep_their_core_types(fake: FakeFlowise) -> None:
    with pytest.raises(BadRequestError) as bad:
        tool(fake, "no-such-flow").invoke({"question": "hi"})
    assert isinstance(bad.value, FlowiseToolBadRequestError)
    twin = to_tool_error(NotFoundError("Chatflow x not found", status_code=404, body={"message": "nope"}))
    assert isinstance(twin, FlowiseToolNotFoundError) and isinstance(twin, NotFoundError)
    assert (twin.status_code, twin.body) == (404, {"message": "nope"})
    assert to_tool_error(twin) is twin
    again = pickle.loads(pickle.dumps(twin))  # an error crossing processes (multiprocessing, Ray) stays typed
    assert type(again) is FlowiseToolNotFoundError and again.status_code == 404


def test_bad_arguments_are_tool_errors_before_any_request(fake: FakeFlowise) -> None:
    flow = fake.add_flow(FakeFlow(kind="agentflow"))
    form = tool(fake, flow, form_fields=[FormField(name="priority", type="number", label="Priority")])
    with pytest.raises(FlowiseToolInputError, match="'priority'"):
        form.invoke({"priority": "urgent"})
    message = tool(fake, flow, handle_tool_error=True).invoke(call(question="  "))
    assert message.status == "error" and "'question' is required" in message.content
    assert fake.requests == []
    assert issubclass(FlowiseToolInputError, FlowiseToolError) and issubclass(FlowiseToolInputError, ValueError)
    assert issubclass(FlowiseToolError, FlowiseError)
