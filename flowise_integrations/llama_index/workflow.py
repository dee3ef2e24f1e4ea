"""Human in the loop as a LlamaIndex Workflow: a Flowise stop becomes an ``InputRequiredEvent``, the human's
``HumanResponseEvent`` resumes the same Flowise execution.

The recipe, runnable as is::

    workflow = FlowiseHumanInputWorkflow(FlowiseLLM(chatflow_id=..., base_url=...), timeout=None)
    handler = workflow.run(question="Draft a note about the meeting.", session_id="user-42")
    async for event in handler.stream_events():
        if isinstance(event, FlowiseTextEvent):
            print(event.delta, end="")
        elif isinstance(event, FlowiseInputRequiredEvent):     # the flow waits: ask the human
            approve = input(f"{event.prefix} [y/n] ") == "y"
            handler.ctx.send_event(FlowiseHumanResponseEvent(approve=approve))
    response = await handler                                    # the final ChatResponse

The interrupt is kept in the workflow's context store, so a paused run survives ``ctx.to_dict()`` and can be
resumed later (another request of a web app, another process) with ``Context.from_dict``.
"""

from __future__ import annotations

import json
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, ChatResponseAsyncGen, MessageRole
from llama_index.core.workflow import (
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)

from flowise_integrations.hitl import Decision, Interrupt

from .llms import FlowiseLLM

__all__ = [
    "FlowiseHumanInputWorkflow",
    "FlowiseHumanResponseEvent",
    "FlowiseInputRequiredEvent",
    "FlowiseTextEvent",
]

_INTERRUPT = "flowise_interrupt"
_RUN_KWARGS = ("chat_id", "session_id", "override_config", "form", "uploads", "deadline")


class FlowiseTextEvent(Event):
    """A piece of the flow's answer, streamed as it arrives."""

    delta: str


class FlowiseInputRequiredEvent(InputRequiredEvent):
    """The flow stopped for a human: ``prefix`` is what it asks (the node's prompt, or the tool calls awaiting
    approval), ``decisions`` Flowise's own buttons, ``interrupt`` the full typed request. Answer with a
    :class:`FlowiseHumanResponseEvent`."""

    prefix: str
    text: str = ""
    decisions: list[Decision]
    interrupt: Interrupt


class FlowiseHumanResponseEvent(HumanResponseEvent):
    """The human's decision: proceed (``approve=True``) or reject, with optional ``feedback`` for a Human Input
    node that asks for it."""

    approve: bool
    feedback: str | None = None


def _prompt(interrupt: Interrupt) -> str:
    """What to ask the human: the node's prompt, and the tool calls awaiting approval."""
    parts = [interrupt.prompt] if interrupt.prompt else []
    if interrupt.tool_calls:
        calls = ", ".join(f"{call.name}({json.dumps(call.args, default=str)})" for call in interrupt.tool_calls)
        parts.append(f"Approve the tool call(s) {calls}?")
    return "\n\n".join(parts) or f"{interrupt.node_label or 'The flow'} waits for a human decision."


class FlowiseHumanInputWorkflow(Workflow):
    """Runs a Flowise flow and pauses at each of its human-input stops.

    ``run(question=..., session_id=..., chat_id=..., form=...)`` asks the flow (streaming its text as
    :class:`FlowiseTextEvent`); a stop (Human Input node, an Agent's tool approval, a sequential-agent
    interrupt) is streamed as :class:`FlowiseInputRequiredEvent`; the :class:`FlowiseHumanResponseEvent` sent
    back resumes the same execution, which may stop again. The result is the flow's final ``ChatResponse`` (its
    ``additional_kwargs`` hold sources, tools, usage).
    """

    def __init__(self, llm: FlowiseLLM, **workflow_kwargs: Any) -> None:
        super().__init__(**workflow_kwargs)
        self.llm = llm

    @step
    async def ask(self, ctx: Context, ev: StartEvent) -> FlowiseInputRequiredEvent | StopEvent:
        """Send the question (or the form) to the flow."""
        question = ev.get("question") or ev.get("user_msg") or ""
        options = {key: ev.get(key) for key in _RUN_KWARGS if ev.get(key) is not None}
        messages = [ChatMessage(role=MessageRole.USER, content=str(question))]
        return await self._settle(ctx, await self.llm.astream_chat(messages, **options))

    @step
    async def answer(self, ctx: Context, ev: FlowiseHumanResponseEvent) -> FlowiseInputRequiredEvent | StopEvent:
        """Resume the stopped execution with the human's decision."""
        interrupt = await ctx.store.get(_INTERRUPT, default=None)
        if interrupt is None:
            raise ValueError("a FlowiseHumanResponseEvent arrived, but no Flowise run is waiting for one")
        stop = interrupt if isinstance(interrupt, Interrupt) else Interrupt.model_validate(interrupt)
        responses = await self.llm.astream_resume(stop, approve=ev.approve, feedback=ev.feedback)
        return await self._settle(ctx, responses)

    async def _settle(self, ctx: Context, responses: ChatResponseAsyncGen) -> FlowiseInputRequiredEvent | StopEvent:
        """Stream the run; then either ask the human (and remember what for) or finish."""
        last: ChatResponse | None = None
        async for response in responses:
            if response.delta:
                ctx.write_event_to_stream(FlowiseTextEvent(delta=response.delta))
            last = response
        if last is None:  # pragma: no cover - the wing always yields a final response
            raise RuntimeError("the flow's stream ended without a response")
        interrupt = last.additional_kwargs.get("interrupt")
        if not isinstance(interrupt, Interrupt):
            await ctx.store.set(_INTERRUPT, None)
            return StopEvent(result=last)
        await ctx.store.set(_INTERRUPT, interrupt.model_dump(mode="json"))
        return FlowiseInputRequiredEvent(
            prefix=_prompt(interrupt),
            text=last.message.content or "",
            decisions=interrupt.decisions,
            interrupt=interrupt,
        )
