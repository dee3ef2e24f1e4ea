"""Agentflow V1 (``MULTIAGENT``) on the real Flowise, every version: Supervisor/Worker and Sequential Agents.

A worker without tools makes Flowise send ``"usedTools":[null],"sourceDocuments":[null],"artifacts":[null]`` in
its reasoning step (both 2.2.8 and 3.1.4): every mode must still give the answer, the steps and the tools. Flows
from ``flows_agents.py``; the fake model routes the Supervisor to each worker once, then ``FINISH``.
"""

from __future__ import annotations

from typing import Any

import flows_agents as fa
import pytest
from agents_support import conversation, event_names, log_mark, model_replies, needs_model_log, reported
from e2e_support import MODES, Outcome, is_streaming_mode, llm_chat_requests, run_client
from flows import CANNED_ANSWER
from harness import RealFlowiseState

from flowise_integrations import AsyncFlowiseClient, FlowiseClient, Prediction

pytestmark = pytest.mark.timeout(120)

CALCULATOR = ("calculator", {"input": "2 + 2"}, "4")


async def call(state: RealFlowiseState, mode: str, flow: str, question: str, **options: Any) -> Outcome:
    needs_model_log(state)
    return await run_client(state, mode, state.flows[flow], question, **options)


def steps(result: Prediction) -> list[tuple[str, list[str]]]:
    return [(s.agent_name or "", [str(m) for m in s.messages]) for s in result.agent_reasoning]


def tools(result: Prediction) -> list[tuple[str, Any, Any]]:
    return [(t.tool, t.tool_input, t.tool_output) for t in result.used_tools]


@pytest.mark.parametrize("mode", MODES)
async def test_supervisor_with_a_worker_without_tools(real_flowise: RealFlowiseState, mode: str) -> None:
    mark = log_mark(real_flowise)
    out = await call(real_flowise, mode, fa.SUPERVISOR, fa.SAMPLE_INPUTS[fa.SUPERVISOR]["question"])
    result = out.result
    assert result.text == fa.TOOL_ANSWER and result.finish_reason == "stop"
    assert steps(result) == [
        ("Supervisor", []),
        ("Researcher", [fa.RESEARCH_NOTES]),  # the worker without tools: its step carries the [null] items
        ("Supervisor", []),
        ("Calculator", [fa.TOOL_ANSWER]),
        ("Supervisor", []),
    ]
    researcher, calculator = result.agent_reasoning[1], result.agent_reasoning[3]
    assert researcher.used_tools == [] and researcher.source_documents == []
    assert [(t.tool, t.tool_input, t.tool_output) for t in calculator.used_tools] == [CALCULATOR]
    assert [s.next for s in result.agent_reasoning if s.agent_name == "Supervisor"] == [
        "researcher",
        "calculator",
        "FINISH",
    ]
    replies = model_replies(real_flowise, mark)
    routes = [r["tool"]["name"] for r in replies if r["tool"]]
    assert routes == ["route", "route", "calculator", "route"]
    assert reported(result) == (0, 0, 0)  # multi-agent flows report no usage, whatever the model billed
    if is_streaming_mode(mode):
        names = event_names(out.events)
        assert names[0] == "start" and names[-6:] == [
            "token",
            "usedTools",
            "sourceDocuments",
            "artifacts",
            "metadata",
            "end",
        ]
        assert [e.data for e in out.events if e.event == "nextAgent"] == ["Researcher", "Calculator"]
        assert names.count("token") == 1  # the whole answer as one token


@pytest.mark.parametrize("mode", MODES)
async def test_supervisor_reports_the_tools_its_workers_used(real_flowise: RealFlowiseState, mode: str) -> None:
    result = (await call(real_flowise, mode, fa.SUPERVISOR, fa.SAMPLE_INPUTS[fa.SUPERVISOR]["question"])).result
    assert tools(result) == [CALCULATOR]


@pytest.mark.parametrize("mode", MODES)
async def test_sequential_agent_with_a_tool(real_flowise: RealFlowiseState, mode: str) -> None:
    mark = log_mark(real_flowise)
    result = (await call(real_flowise, mode, fa.SEQUENTIAL, fa.SAMPLE_INPUTS[fa.SEQUENTIAL]["question"])).result
    assert result.text == fa.TOOL_ANSWER and result.finish_reason == "stop"
    assert steps(result) == [("Helper", [fa.TOOL_ANSWER])]
    assert [(t.tool, t.tool_input, t.tool_output) for t in result.agent_reasoning[0].used_tools] == [CALCULATOR]
    assert result.memory_type == "Agent Memory"
    assert [r["tool"]["name"] if r["tool"] else r["text"] for r in model_replies(real_flowise, mark)] == [
        "calculator",
        fa.TOOL_ANSWER,
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_sequential_agent_reports_the_tool_it_used(real_flowise: RealFlowiseState, mode: str) -> None:
    result = (await call(real_flowise, mode, fa.SEQUENTIAL, fa.SAMPLE_INPUTS[fa.SEQUENTIAL]["question"])).result
    assert tools(result) == [CALCULATOR]


@pytest.mark.parametrize("decision", ["approve", "reject"])
@pytest.mark.parametrize("mode", MODES)
async def test_sequential_interrupt_then_answer(real_flowise: RealFlowiseState, mode: str, decision: str) -> None:
    """Agentflow V1 approval: the run stops before the tool with an ``action``; sending it back with the
    approve / reject label as the question (same chatId) runs or refuses the tool."""
    ids = conversation("chat", f"seq-{decision}")
    mark = log_mark(real_flowise)
    stop = await call(real_flowise, mode, fa.SEQUENTIAL_APPROVAL, "what is 2 + 2?", **ids)
    stopped = stop.result
    assert stopped.finish_reason == "stopped"
    action = stopped.action
    assert action is not None and action["mapping"]["approve"] == "Yes" and action["mapping"]["reject"] == "No"
    assert [(c["name"], c["args"]) for c in action["mapping"]["toolCalls"]] == [("calculator", {"input": "2 + 2"})]
    assert not any(m.get("role") == "tool" for r in llm_chat_requests(real_flowise, mark) for m in r["messages"])
    assert stopped.text == CANNED_ANSWER  # the model's answer to Flowise's approval prompt
    if is_streaming_mode(mode):
        assert event_names(stop.events)[-6:] == [
            "action",
            "usedTools",
            "sourceDocuments",
            "artifacts",
            "metadata",
            "end",
        ]

    mark = log_mark(real_flowise)
    label = action["mapping"][decision]
    resumed = (await call(real_flowise, mode, fa.SEQUENTIAL_APPROVAL, label, action=action, **ids)).result
    assert resumed.finish_reason == "stop" and resumed.action is None
    requests = llm_chat_requests(real_flowise, mark)
    tool_messages = [str(m.get("content")) for r in requests for m in r["messages"] if m.get("role") == "tool"]
    if decision == "approve":
        assert resumed.text == fa.TOOL_ANSWER and tool_messages == ["4"]
    else:
        assert len(tool_messages) == 1 and "denied by user" in tool_messages[0]
        assert resumed.text == f"The tool said: {tool_messages[0]}."


async def typed_resume(state: RealFlowiseState, mode: str, flow: str, **options: Any) -> Prediction:
    """``client.resume`` / ``resume_stream`` in ``mode`` (sync calls run in a thread)."""
    import asyncio

    fid = state.flows[flow]
    if mode in ("predict", "stream"):

        def sync() -> Prediction:
            with FlowiseClient(state.base_url, state.api_key, timeout=30) as client:
                if mode == "predict":
                    return client.resume(fid, **options)
                with client.resume_stream(fid, **options) as stream:
                    list(stream)
                return stream.result

        return await asyncio.to_thread(sync)
    async with AsyncFlowiseClient(state.base_url, state.api_key, timeout=30) as aclient:
        if mode == "apredict":
            return await aclient.resume(fid, **options)
        async with aclient.resume_stream(fid, **options) as astream:
            async for _ in astream:
                pass
        return astream.result


@pytest.mark.parametrize("mode", MODES)
async def test_sequential_interrupt_through_the_typed_api(real_flowise: RealFlowiseState, mode: str) -> None:
    stopped = (await call(real_flowise, mode, fa.SEQUENTIAL_APPROVAL, "what is 2 + 2?")).result
    interrupt = stopped.interrupt
    assert interrupt is not None and interrupt.kind == "tool_approval"
    assert [(d.value, d.label) for d in interrupt.decisions] == [("proceed", "Yes"), ("reject", "No")]
    assert [(c.name, c.args) for c in interrupt.tool_calls] == [("calculator", {"input": "2 + 2"})]
    resumed = await typed_resume(real_flowise, mode, fa.SEQUENTIAL_APPROVAL, approve=True, interrupt=interrupt)
    assert resumed.text == fa.TOOL_ANSWER and resumed.interrupt is None
