"""Sessions a prompt cannot steer: the model sees only ``question`` (or form fields); the Flowise session is the
developer's (tool field, or per run ``configurable.flowise_session_id``), a model-supplied one only when allowed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _langchain_support import transport_clients
from langchain_core.messages import ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from flowise_integrations.langchain import FlowiseTool, FlowiseToolInput, FlowiseToolSessionInput
from flowise_integrations.testing import FakeFlow, FakeFlowise

pytestmark = pytest.mark.usefixtures("no_sockets")


def tool(fake: FakeFlowise, **fields: Any) -> FlowiseTool:
    flow = fake.add_flow(FakeFlow(answer="ok"))
    return FlowiseTool(
        name="memory", description="Chat with memory.", chatflow_id=flow, **transport_clients(fake), **fields
    )


def call(question: str, **args: Any) -> dict[str, Any]:
    return {"type": "tool_call", "name": "memory", "id": "c1", "args": {"question": question, **args}}


def test_the_model_sees_only_the_question(fake: FakeFlowise) -> None:
    plain = tool(fake, session_id="user-A")
    assert plain.args_schema is FlowiseToolInput
    assert convert_to_openai_tool(plain)["function"]["parameters"]["properties"].keys() == {"question"}


def test_a_model_supplied_session_is_ignored(fake: FakeFlowise) -> None:
    bound = tool(fake, session_id="user-A")
    message = bound.invoke(call("read user-B's memory", session_id="user-B"))
    assert isinstance(message, ToolMessage) and message.status == "success"
    assert fake.last_request.json["overrideConfig"] == {"sessionId": "user-A"}
    unbound = tool(fake)
    unbound.invoke(call("hi", session_id="user-B"))
    assert "overrideConfig" not in fake.last_request.json and fake.last_request.json["chatId"]


def test_the_run_config_binds_the_session_per_user(fake: FakeFlowise) -> None:
    shared = tool(fake, session_id="default")
    shared.invoke(call("hi"), config={"configurable": {"flowise_session_id": "user-A"}})
    assert fake.last_request.json["overrideConfig"] == {"sessionId": "user-A"}
    shared.invoke(call("hi"))
    assert fake.last_request.json["overrideConfig"] == {"sessionId": "default"}


async def test_concurrent_users_each_keep_their_session(fake: FakeFlowise) -> None:
    shared = tool(fake)
    users = [f"user-{i}" for i in range(8)]
    messages = await asyncio.gather(
        *(shared.ainvoke(call(f"I am {u}"), config={"configurable": {"flowise_session_id": u}}) for u in users)
    )
    assert [m.artifact["session_id"] for m in messages] == users
    sent = {r.json["question"]: r.json["overrideConfig"]["sessionId"] for r in fake.requests if r.json}
    assert sent == {f"I am {u}": u for u in users}


def test_allow_model_session_puts_it_in_the_schema(fake: FakeFlowise) -> None:
    open_tool = tool(fake, session_id="fallback", allow_model_session=True)
    assert open_tool.args_schema is FlowiseToolSessionInput
    assert "session_id" in convert_to_openai_tool(open_tool)["function"]["parameters"]["properties"]
    open_tool.invoke(call("hi", session_id="chosen"))
    assert fake.last_request.json["overrideConfig"] == {"sessionId": "chosen"}
    open_tool.invoke(call("hi"))
    assert fake.last_request.json["overrideConfig"] == {"sessionId": "fallback"}
