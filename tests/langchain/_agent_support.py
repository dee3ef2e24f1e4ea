"""A scripted tool-calling chat model for agent-loop tests: it calls the tools it is told to, then sums up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable


class ScriptedAgentModel(BaseChatModel):
    """Turn 1: the scripted ``calls`` (``{"name", "args"}``); afterwards: one line per tool answer,
    ``<tool> [<status>]: <content>``, so a test can see what the agent got back."""

    calls: list[dict[str, Any]]

    @property
    def _llm_type(self) -> str:
        return "scripted-agent"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if results:
            message = AIMessage("\n".join(f"{m.name} [{m.status}]: {m.content}" for m in results))
        else:
            calls = [{**call, "id": f"call-{i}", "type": "tool_call"} for i, call in enumerate(self.calls)]
            message = AIMessage("", tool_calls=calls)
        return ChatResult(generations=[ChatGeneration(message=message)])
