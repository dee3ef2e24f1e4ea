"""The LlamaIndex wing's agent features against the real Flowise servers: ``FlowiseToolSpec`` from the live
server's flows (a ``FunctionAgent`` using them and surviving a failing flow), a stream left early aborting an
agentflow on the server, and Human Input through ``FlowiseQueryEngine`` and ``FlowiseHumanInputWorkflow``.

The abort is proven by the fake model's own log: Flowise only drops its upstream model stream (logged as
``client_disconnected``) when the run is aborted; merely closing our connection lets the run finish.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import flows_agents as fa
import pytest
from agents_support import log_mark, model_replies, needs_agentflow_v2, needs_model_log
from flows import CANNED_ANSWER, TOOL_ANSWER
from harness import RealFlowiseState

pytest.importorskip("llama_index.core")
li = pytest.importorskip("flowise_integrations.llama_index")

from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult  # noqa: E402
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock  # noqa: E402
from llama_index.core.llms.mock import MockFunctionCallingLLM  # noqa: E402

from flowise_integrations import Interrupt, Prediction  # noqa: E402

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect"),  # workflows inspect pydantic members
]

STOP_TEXT = f"{fa.DRAFT}\n\n{fa.REVIEW_PROMPT}"
DISCONNECT_WAIT = 15.0  # the upstream disconnect follows the abort within a second; generous for a loaded machine


def spec_for(state: RealFlowiseState, *names: str, **options: Any) -> Any:
    """A tool spec discovered from the live server, keeping the flows ``names``."""
    return li.FlowiseToolSpec.from_server(
        state.base_url, state.api_key, include=[state.flows[n] for n in names], timeout=30, **options
    )


def disconnects(state: RealFlowiseState) -> int:
    return sum(r.get("event") == "client_disconnected" for r in state.fake_llm_requests())


async def upstream_dropped(state: RealFlowiseState, before: int) -> bool:
    """Whether Flowise dropped its model stream (the run was aborted) within :data:`DISCONNECT_WAIT`."""
    until = time.monotonic() + DISCONNECT_WAIT
    while disconnects(state) == before:
        if time.monotonic() > until:
            return False
        await asyncio.sleep(0.1)
    return True


# ------------------------------------------------------------------------------------------ tool spec


def test_tool_spec_from_the_live_servers_flows(real_flowise: RealFlowiseState) -> None:
    spec = spec_for(real_flowise, "tool_agent", "llm_chain")
    tools = {tool.metadata.name: tool for tool in spec.to_tool_list()}
    agent_tool = tools[spec.tool_name(real_flowise.flows["tool_agent"])]
    assert set(tools) == {spec.tool_name(real_flowise.flows[n]) for n in ("tool_agent", "llm_chain")}
    assert list(agent_tool.metadata.get_parameters_dict()["properties"]) == ["question"]
    output = agent_tool.call(question="what is 2 + 2?")
    assert not output.is_error and output.content == TOOL_ANSWER
    prediction = output.raw_output
    assert isinstance(prediction, Prediction)
    assert [(t.tool, t.tool_output) for t in prediction.used_tools] == [("calculator", "4")]
    spec.close()


async def test_a_live_form_flow_is_a_tool_with_the_forms_fields(real_flowise: RealFlowiseState) -> None:
    needs_agentflow_v2(real_flowise)
    spec = await li.FlowiseToolSpec.afrom_server(
        real_flowise.base_url, real_flowise.api_key, include=[real_flowise.flows[fa.FORM]], timeout=30
    )
    (tool,) = spec.to_tool_list()
    properties = tool.metadata.get_parameters_dict()["properties"]
    assert list(properties) == [f["name"] for f in fa.FORM_FIELDS] and properties["plan"]["enum"] == ["basic", "pro"]
    output = await tool.acall(name="Ada", age="36", subscribed="yes", plan="Pro")  # as a model might send them
    assert not output.is_error
    assert output.content == "Hello Ada, age 36, plan pro, subscribed true."
    assert output.raw_output.usage.total_tokens == sum(fa.NODE_USAGE["form"])
    await spec.aclose()


def _agent_script(names: dict[str, str]) -> Any:
    """Ask the failing flow first, then the calculator flow; answer with both tool outputs."""
    calls = [(names["llm_chain"], {"question": "TRIGGER_ERROR now"}), (names["tool_agent"], {"question": "2 + 2?"})]

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        results = [m for m in messages if m.role == MessageRole.TOOL]
        if len(results) < len(calls):
            name, args = calls[len(results)]
            return ChatMessage(role="assistant", blocks=[
                ToolCallBlock(tool_call_id=f"call-{len(results)}", tool_name=name, tool_kwargs=args)
            ])  # fmt: skip
        return ChatMessage(role="assistant", content=" | ".join(str(m.content) for m in results))

    return respond


async def test_function_agent_uses_live_flows_and_survives_a_failing_one(real_flowise: RealFlowiseState) -> None:
    spec = spec_for(real_flowise, "tool_agent", "llm_chain", session_id="e2e-li-agent")
    names = {n: spec.tool_name(real_flowise.flows[n]) for n in ("tool_agent", "llm_chain")}
    brain = MockFunctionCallingLLM(response_generator=_agent_script(names), is_chat_model=True)
    agent = FunctionAgent(tools=spec.to_tool_list(), llm=brain, name="main", description="main agent")
    handler = agent.run(user_msg="Use the flows")
    results = [e async for e in handler.stream_events() if isinstance(e, ToolCallResult)]
    answer = str((await handler).response.content)
    assert [(r.tool_name, r.tool_output.is_error) for r in results] == [
        (names["llm_chain"], True),
        (names["tool_agent"], False),
    ]
    failed, answered = answer.split(" | ")
    assert failed.startswith("Error: the flow ") and "failed" in failed
    assert answered == TOOL_ANSWER
    assert results[1].tool_output.raw_output.session_id == "e2e-li-agent"  # bound by us, not by the model
    await spec.aclose()


# ------------------------------------------------------------------------------------------ abort


@pytest.mark.parametrize("method", ["stream_chat", "astream_chat"])
async def test_leaving_a_stream_early_aborts_the_agentflow(real_flowise: RealFlowiseState, method: str) -> None:
    needs_agentflow_v2(real_flowise)
    needs_model_log(real_flowise)
    llm = li.FlowiseLLM(
        real_flowise.flows["agentflow_v2_llm"], base_url=real_flowise.base_url, api_key=real_flowise.api_key
    )
    messages = [ChatMessage(role="user", content="SLOW_STREAM please")]
    before = disconnects(real_flowise)
    if method == "stream_chat":

        def first_token() -> str | None:
            for response in llm.stream_chat(messages):
                if response.delta:
                    return response.delta
            return None

        delta = await asyncio.to_thread(first_token)  # the break drops the generator: the wing aborts the run
    else:
        responses = await llm.astream_chat(messages)
        delta = None
        async for response in responses:
            if response.delta:
                delta = response.delta
                break
        await responses.aclose()
        del responses
    assert delta == "slow0"
    assert await upstream_dropped(real_flowise, before), "Flowise kept streaming from the model: no abort"
    assert (await llm.achat([ChatMessage(role="user", content="hi")])).message.content == CANNED_ANSWER
    llm.close()
    await llm.aclose()


async def test_a_cancelled_tool_call_aborts_the_agentflow(real_flowise: RealFlowiseState) -> None:
    needs_agentflow_v2(real_flowise)
    needs_model_log(real_flowise)
    spec = spec_for(real_flowise, "agentflow_v2_llm")
    (tool,) = spec.to_tool_list()
    before = disconnects(real_flowise)
    mark = log_mark(real_flowise)
    task = asyncio.create_task(tool.acall(question="SLOW_STREAM please"))
    until = time.monotonic() + DISCONNECT_WAIT
    while not any(
        str(r.get("path", "")).endswith("/chat/completions") for r in real_flowise.fake_llm_requests()[mark:]
    ):
        assert time.monotonic() < until, "the flow never reached the model"
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await upstream_dropped(real_flowise, before), "Flowise kept streaming from the model: no abort"
    await spec.aclose()


# ------------------------------------------------------------------------------------------ human input


@pytest.mark.parametrize("decision", ["proceed", "reject"])
async def test_human_input_through_the_workflow(real_flowise: RealFlowiseState, decision: str) -> None:
    needs_agentflow_v2(real_flowise)
    needs_model_log(real_flowise)
    llm = li.FlowiseLLM(
        real_flowise.flows[fa.HUMAN_INPUT], base_url=real_flowise.base_url, api_key=real_flowise.api_key
    )
    workflow = li.FlowiseHumanInputWorkflow(llm, timeout=120)
    session = f"e2e-li-wf-{decision}-{time.monotonic_ns()}"
    mark = log_mark(real_flowise)
    handler = workflow.run(question=fa.SAMPLE_INPUTS[fa.HUMAN_INPUT]["question"], session_id=session)
    asked: list[Any] = []
    text = ""
    async for event in handler.stream_events():
        if isinstance(event, li.FlowiseTextEvent):
            text += event.delta
        elif isinstance(event, li.FlowiseInputRequiredEvent):
            asked.append(event)
            feedback = "Looks good" if decision == "proceed" else "Not this one"
            handler.ctx.send_event(li.FlowiseHumanResponseEvent(approve=decision == "proceed", feedback=feedback))
    result = await handler
    (request,) = asked
    assert request.prefix == request.interrupt.prompt and request.prefix.endswith(fa.REVIEW_PROMPT)
    assert request.text == STOP_TEXT
    assert isinstance(request.interrupt, Interrupt) and request.interrupt.node_id == "humanInputAgentflow_0"
    assert [d.label for d in request.decisions] == ["Proceed", "Reject"]
    expected = fa.SENT if decision == "proceed" else fa.DISCARDED
    assert result.message.content == expected and text == STOP_TEXT + expected
    assert result.additional_kwargs["session_id"] == session
    replies = model_replies(real_flowise, mark)
    assert [r["text"] for r in replies] == ([fa.DRAFT, fa.SENT] if decision == "proceed" else [fa.DRAFT])
    usage = result.additional_kwargs["usage"]
    if decision == "proceed":  # the resumed run bills the Sender only, not the Drafter replayed before the stop
        assert (usage.input_tokens, usage.output_tokens) == fa.NODE_USAGE["sender"]
    else:
        assert usage is None or usage.total_tokens == 0
    await llm.aclose()


@pytest.mark.parametrize("streaming", [False, True], ids=["response", "streaming"])
def test_query_engine_stops_and_resumes_on_the_live_server(real_flowise: RealFlowiseState, streaming: bool) -> None:
    needs_agentflow_v2(real_flowise)
    chat_id = f"e2e-li-qe-{int(streaming)}-{time.monotonic_ns()}"
    engine = li.FlowiseQueryEngine(
        chatflow_id=real_flowise.flows[fa.HUMAN_INPUT],
        base_url=real_flowise.base_url,
        api_key=real_flowise.api_key,
        chat_id=chat_id,
        streaming=streaming,
    )
    response = engine.query(fa.SAMPLE_INPUTS[fa.HUMAN_INPUT]["question"])
    text = "".join(response.response_gen) if streaming else str(response)
    assert text == STOP_TEXT
    assert response.metadata["finish_reason"] == "stopped" and engine.last_interrupt is not None
    assert engine.last_interrupt.chat_id == chat_id
    resumed = engine.resume(True, "Ship it")
    resumed_text = "".join(resumed.response_gen) if streaming else str(resumed)
    assert resumed_text == fa.SENT and resumed.metadata["finish_reason"] == "stop"
    assert engine.last_interrupt is None
    engine.llm.close()


# ------------------------------------------------------------------------------------------ agent flows, FlowiseLLM

METHODS = ["chat", "stream_chat", "achat", "astream_chat"]
CALCULATOR = ("calculator", {"input": "2 + 2"}, "4")


async def final_response(llm: Any, method: str, messages: list[ChatMessage], **kwargs: Any) -> Any:
    """The last response of ``llm.<method>``; a streamed one's deltas must join to its text."""
    if method == "chat":
        return await asyncio.to_thread(llm.chat, messages, **kwargs)
    if method == "achat":
        return await llm.achat(messages, **kwargs)
    if method == "stream_chat":
        responses = await asyncio.to_thread(lambda: list(llm.stream_chat(messages, **kwargs)))
    else:
        responses = [r async for r in await llm.astream_chat(messages, **kwargs)]
    assert "".join(r.delta or "" for r in responses) == responses[-1].message.content
    return responses[-1]


async def resumed_response(llm: Any, method: str, interrupt: Interrupt, approve: bool, feedback: str | None) -> Any:
    if method == "chat":
        return await asyncio.to_thread(lambda: llm.resume(interrupt, approve=approve, feedback=feedback))
    if method == "achat":
        return await llm.aresume(interrupt, approve=approve, feedback=feedback)
    if method == "stream_chat":
        return (
            await asyncio.to_thread(lambda: list(llm.stream_resume(interrupt, approve=approve, feedback=feedback)))
        )[-1]
    return [r async for r in await llm.astream_resume(interrupt, approve=approve, feedback=feedback)][-1]


def usage_of(response: Any) -> tuple[int, int]:
    usage = response.additional_kwargs["usage"]
    return (0, 0) if usage is None else (usage.input_tokens, usage.output_tokens)


def billed_since(state: RealFlowiseState, mark: int) -> tuple[int, int]:
    replies = model_replies(state, mark)
    return sum(int(r["usage"]["prompt_tokens"]) for r in replies), sum(
        int(r["usage"]["completion_tokens"]) for r in replies
    )


def llm_of(state: RealFlowiseState, flow: str, **fields: Any) -> Any:
    return li.FlowiseLLM(state.flows[flow], base_url=state.base_url, api_key=state.api_key, timeout=30, **fields)


@pytest.mark.parametrize("decision", ["proceed", "reject"])
@pytest.mark.parametrize("by", ["chat_id", "session_id"])
@pytest.mark.parametrize("method", METHODS)
async def test_human_input_through_flowise_llm(
    real_flowise: RealFlowiseState, method: str, by: str, decision: str
) -> None:
    needs_agentflow_v2(real_flowise)
    needs_model_log(real_flowise)
    llm = llm_of(real_flowise, fa.HUMAN_INPUT, **{by: f"e2e-li-hi-{method}-{decision}-{time.monotonic_ns()}"})
    mark = log_mark(real_flowise)
    stopped = await final_response(llm, method, [ChatMessage(role="user", content="Draft a note about the meeting.")])
    assert stopped.message.content == STOP_TEXT and stopped.additional_kwargs["finish_reason"] == "stopped"
    interrupt = stopped.additional_kwargs["interrupt"]
    assert interrupt.kind == "human_input" and interrupt.node_id == "humanInputAgentflow_0"
    assert usage_of(stopped) == billed_since(real_flowise, mark) == fa.NODE_USAGE["drafter"]
    mark = log_mark(real_flowise)
    resumed = await resumed_response(llm, method, interrupt, decision == "proceed", "Fine by me")
    assert resumed.message.content == (fa.SENT if decision == "proceed" else fa.DISCARDED)
    assert resumed.additional_kwargs["interrupt"] is None and resumed.additional_kwargs["finish_reason"] == "stop"
    assert usage_of(resumed) == billed_since(real_flowise, mark)  # the Sender (or nothing), never the Drafter again
    assert usage_of(resumed) == (fa.NODE_USAGE["sender"] if decision == "proceed" else (0, 0))
    await llm.aclose()


@pytest.mark.parametrize("decision", ["proceed", "reject"])
@pytest.mark.parametrize("method", METHODS)
async def test_tool_approval_through_flowise_llm(real_flowise: RealFlowiseState, method: str, decision: str) -> None:
    needs_agentflow_v2(real_flowise)
    needs_model_log(real_flowise)
    llm = llm_of(real_flowise, fa.TOOL_APPROVAL, chat_id=f"e2e-li-ta-{method}-{decision}-{time.monotonic_ns()}")
    mark = log_mark(real_flowise)
    stopped = await final_response(llm, method, [ChatMessage(role="user", content="what is 2 + 2?")])
    interrupt = stopped.additional_kwargs["interrupt"]
    assert interrupt.kind == "tool_approval" and [c.name for c in interrupt.tool_calls] == ["calculator"]
    assert stopped.additional_kwargs["used_tools"] == []  # announced, not run
    assert usage_of(stopped) == billed_since(real_flowise, mark) == fa.NODE_USAGE["approval_tool_call"]
    mark = log_mark(real_flowise)
    resumed = await resumed_response(llm, method, interrupt, decision == "proceed", None)
    tools = [(t.tool, t.tool_input, t.tool_output) for t in resumed.additional_kwargs["used_tools"]]
    if decision == "proceed":
        assert resumed.message.content == TOOL_ANSWER and tools == [CALCULATOR]
    else:
        assert resumed.message.content == fa.TOOL_DECLINED and tools == []
    assert usage_of(resumed) == billed_since(real_flowise, mark) == fa.NODE_USAGE["approval_answer"]
    await llm.aclose()


BRANCHES = {
    "condition": (fa.CONDITION, {"question": fa.SAMPLE_INPUTS[fa.CONDITION]["question"]}, fa.WEATHER, (5, 3)),
    "iteration": (fa.ITERATION, {"question": "Go through the list."},
                  "\n".join(f"item {v}" for v in fa.ITERATION_ITEMS), (9, 6)),
    "loop": (fa.LOOP, {"question": fa.SAMPLE_INPUTS[fa.LOOP]["question"]}, fa.LOOP_FALLBACK, (8, 12)),
    "form": (fa.FORM, {"form": fa.SAMPLE_INPUTS[fa.FORM]["form"]}, "Hello Ada, age 36, plan pro, subscribed true.",
             fa.NODE_USAGE["form"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BRANCHES))
@pytest.mark.parametrize("method", METHODS)
async def test_agentflow_shapes_through_flowise_llm(real_flowise: RealFlowiseState, method: str, case: str) -> None:
    needs_agentflow_v2(real_flowise)
    needs_model_log(real_flowise)
    flow, inputs, text, usage = BRANCHES[case]
    llm = llm_of(real_flowise, flow)
    mark = log_mark(real_flowise)
    question = inputs.get("question", "")  # a form flow: the form is the input, the message is not sent
    response = await final_response(llm, method, [ChatMessage(role="user", content=question)], form=inputs.get("form"))
    assert response.message.content == text and response.additional_kwargs["finish_reason"] == "stop"
    assert usage_of(response) == billed_since(real_flowise, mark) == usage
    await llm.aclose()


@pytest.mark.parametrize("method", METHODS)
async def test_supervisor_and_workers_through_flowise_llm(real_flowise: RealFlowiseState, method: str) -> None:
    needs_model_log(real_flowise)
    llm = llm_of(real_flowise, fa.SUPERVISOR)
    response = await final_response(
        llm, method, [ChatMessage(role="user", content=fa.SAMPLE_INPUTS[fa.SUPERVISOR]["question"])]
    )
    extra = response.additional_kwargs
    assert response.message.content == TOOL_ANSWER
    assert [s.agent_name for s in extra["agent_reasoning"]] == [
        "Supervisor", "Researcher", "Supervisor", "Calculator", "Supervisor"
    ]  # fmt: skip
    assert [(t.tool, t.tool_input, t.tool_output) for t in extra["used_tools"]] == [CALCULATOR]
    assert extra["usage"] is None  # multi-agent flows report no usage
    await llm.aclose()
