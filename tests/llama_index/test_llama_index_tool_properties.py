"""Properties of ``FlowiseToolSpec`` over arbitrary input: any flow a server describes becomes a valid tool, and
whatever arguments a model sends, a tool answers with a ``ToolOutput`` (an error output for bad ones, sent to
no server), never an exception."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from llama_index.core.tools import ToolOutput

from flowise_integrations.discovery import FlowInfo, FormField
from flowise_integrations.llama_index import FlowiseToolSpec

TEXT = st.text(max_size=12)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
FIELD = st.builds(
    FormField,
    name=st.sampled_from(["name", "class", "_private", "model_config", "a b", "", "ünï", "age", "x-y"]) | TEXT,
    label=TEXT,
    type=st.sampled_from(["string", "number", "boolean", "options", "date", ""]),
    required=st.booleans(),
    options=st.lists(TEXT, max_size=3),
)
FLOW = st.builds(
    FlowInfo,
    id=st.uuids().map(str),
    name=TEXT,
    type=st.sampled_from(["CHATFLOW", "AGENTFLOW", "MULTIAGENT", "ASSISTANT"]),
    description=st.none() | st.text(max_size=1500),
    input_type=st.sampled_from([None, "chat", "form", "webhook", "schedule"]),
    form_fields=st.lists(FIELD, max_size=5),
    mcp_tool_name=st.none() | TEXT,
)


def offline_spec(flows: list[FlowInfo]) -> tuple[FlowiseToolSpec, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"text": "ok", "chatId": "c", "chatMessageId": "m"})

    transport = httpx.MockTransport(answer)
    spec = FlowiseToolSpec(
        flows,
        base_url="http://flowise.test",
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )
    return spec, sent


@settings(max_examples=150, deadline=None)
@given(st.lists(FLOW, max_size=6))
def test_any_described_flow_becomes_a_valid_tool(flows: list[FlowInfo]) -> None:
    spec, _ = offline_spec(flows)
    tools = spec.to_tool_list()
    assert len(tools) == len([f for f in flows if f.input_type not in ("webhook", "schedule")])
    names = [t.metadata.get_name() for t in tools]
    assert len({n.casefold() for n in names}) == len(names)
    for tool in tools:
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", tool.metadata.get_name())
        openai = tool.metadata.to_openai_tool()  # a function-calling API accepts it (1,024-character description)
        properties = openai["function"]["parameters"]["properties"]
        info = tool.flow  # type: ignore[attr-defined]
        if info.input_type == "form" and info.form_fields:
            assert set(properties) == {f.name for f in info.form_fields}
        else:
            assert list(properties) == ["question"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    flow=FLOW,
    args=st.lists(JSON, max_size=2),
    kwargs=st.dictionaries(TEXT, JSON, max_size=4)
    | st.fixed_dictionaries({"question": JSON})
    | st.fixed_dictionaries({"question": st.text(min_size=1)})
    | st.dictionaries(st.sampled_from(["name", "age", "class", "a b", "question", "session_id"]), JSON, max_size=4),
)
async def test_any_arguments_give_a_tool_output(flow: FlowInfo, args: list[Any], kwargs: dict[str, Any]) -> None:
    spec, sent = offline_spec([flow.model_copy(update={"input_type": flow.input_type or "chat"})])
    tools = spec.to_tool_list()
    if not tools:  # a webhook or schedule flow: no tool
        return
    (tool,) = tools
    for output in (tool.call(*args, **kwargs), await tool.acall(*args, **kwargs)):
        assert isinstance(output, ToolOutput)
        if output.is_error:
            assert output.content.startswith("Error: invalid arguments") and isinstance(output.exception, ValueError)
        else:
            assert output.content == "ok"
    event("sent to the server" if sent else "refused before any request")
    for body in sent:  # what reached the server is the question or a form, never a model-chosen session
        assert set(body) <= {"question", "form", "chatId"}
