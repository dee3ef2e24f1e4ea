"""LlamaIndex instrumentation events for what a Flowise flow reports besides its answer.

Each is a ``BaseEvent`` dispatched by the ``flowise_integrations.llama_index`` dispatcher (which propagates to
the root one) with the ``span_id`` of the LLM call that received it, also from inside stream generators.
Every item is reported once per call: ``sourceDocuments``/``usedTools``/``agentReasoning`` snapshots that repeat
earlier items do not repeat events. Listen with::

    from llama_index.core.instrumentation import Dispatcher, get_dispatcher  # type: ignore[attr-defined]
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler

    class Sources(BaseEventHandler):
        def handle(self, event, **kwargs):
            if isinstance(event, FlowiseSourceDocumentsEvent):
                print(event.span_id, [d.page_content for d in event.source_documents])

    get_dispatcher().add_event_handler(Sources())
"""

from __future__ import annotations

from typing import Any

from llama_index.core.instrumentation import Dispatcher, get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.events import BaseEvent
from pydantic import Field

from flowise_integrations.hitl import Interrupt
from flowise_integrations.models import AgentReasoningStep, Prediction, SourceDocument, Usage, UsedTool

__all__ = [
    "FlowiseAgentStepEvent",
    "FlowiseInstrumentationEvent",
    "FlowiseMetadataEvent",
    "FlowiseSourceDocumentsEvent",
    "FlowiseToolUsedEvent",
]

dispatcher: Dispatcher = get_dispatcher("flowise_integrations.llama_index")


class FlowiseInstrumentationEvent(BaseEvent):
    """Base of the Flowise events: which flow reported it."""

    chatflow_id: str

    @classmethod
    def class_name(cls) -> str:
        return "FlowiseInstrumentationEvent"


class FlowiseSourceDocumentsEvent(FlowiseInstrumentationEvent):
    """The flow retrieved documents (``sourceDocuments``)."""

    source_documents: list[SourceDocument]

    @classmethod
    def class_name(cls) -> str:
        return "FlowiseSourceDocumentsEvent"


class FlowiseToolUsedEvent(FlowiseInstrumentationEvent):
    """The flow ran a tool server-side (one ``usedTools`` item: name, input, output)."""

    tool: UsedTool

    @classmethod
    def class_name(cls) -> str:
        return "FlowiseToolUsedEvent"


class FlowiseAgentStepEvent(FlowiseInstrumentationEvent):
    """A multi-agent / sequential-agent step (one ``agentReasoning`` item)."""

    step: AgentReasoningStep

    @classmethod
    def class_name(cls) -> str:
        return "FlowiseAgentStepEvent"


class FlowiseMetadataEvent(FlowiseInstrumentationEvent):
    """The call finished: the ids Flowise assigned, follow-up prompts, the billable usage when the flow reports
    it, what a run stopped for a human asks (``interrupt``), and whether the answer was ``recovered``."""

    chat_id: str | None = None
    chat_message_id: str | None = None
    session_id: str | None = None
    follow_up_prompts: list[str] = Field(default_factory=list)
    usage: Usage | None = None
    interrupt: Interrupt | None = None
    recovered: bool = False

    @classmethod
    def class_name(cls) -> str:
        return "FlowiseMetadataEvent"


class EventReporter:
    """Dispatches one call's Flowise events, each item once, under the span id captured at the call."""

    __slots__ = ("_docs", "_span_id", "_steps", "_tools", "chatflow_id")

    def __init__(self, chatflow_id: str, span_id: str | None) -> None:
        self.chatflow_id = chatflow_id
        self._span_id = span_id
        self._docs: list[Any] = []
        self._tools = 0
        self._steps = 0

    def sources(self, documents: list[SourceDocument]) -> None:
        """Report a ``sourceDocuments`` snapshot unless it repeats the last one."""
        if documents and documents != self._docs:
            self._docs = documents
            dispatcher.event(FlowiseSourceDocumentsEvent(
                chatflow_id=self.chatflow_id, source_documents=documents, span_id=self._span_id
            ))  # fmt: skip

    def tools(self, tools: list[UsedTool]) -> None:
        """Report the tools of a cumulative ``usedTools`` snapshot not reported yet."""
        for tool in tools[self._tools :]:
            dispatcher.event(FlowiseToolUsedEvent(chatflow_id=self.chatflow_id, tool=tool, span_id=self._span_id))
        self._tools = max(self._tools, len(tools))

    def steps(self, steps: list[AgentReasoningStep]) -> list[AgentReasoningStep]:
        """Report (and return) the steps of a cumulative ``agentReasoning`` snapshot not reported yet."""
        new = steps[self._steps :]
        for step in new:
            dispatcher.event(FlowiseAgentStepEvent(chatflow_id=self.chatflow_id, step=step, span_id=self._span_id))
        self._steps = max(self._steps, len(steps))
        return new

    def finish(self, prediction: Prediction) -> None:
        """Report whatever the final prediction holds that was not reported live, then the metadata."""
        self.sources(prediction.source_documents)
        self.tools(prediction.used_tools)
        self.steps(prediction.agent_reasoning)
        dispatcher.event(FlowiseMetadataEvent(
            chatflow_id=self.chatflow_id,
            chat_id=prediction.chat_id,
            chat_message_id=prediction.chat_message_id,
            session_id=prediction.session_id,
            follow_up_prompts=prediction.follow_up_prompts,
            usage=prediction.usage,
            interrupt=prediction.interrupt,
            recovered=prediction.recovered,
            span_id=self._span_id,
        ))  # fmt: skip
