"""Shared pieces of the LlamaIndex wing's tests: the eight call modes, the scripted answers, an event collector."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from pydantic import Field

from flowise_integrations.llama_index import FlowiseLLM

ANSWER = "Paris is the capital of France."
SOURCES = [
    {"pageContent": "Paris is the capital and largest city of France.", "metadata": {"source": "wiki.txt", "page": 1}},
    {"pageContent": "France is a country in Western Europe.", "metadata": {"source": "atlas.pdf"}},
]
TOOLS = [{"tool": "search", "toolInput": {"query": "capital of France"}, "toolOutput": "Paris"}]
CONVERSATION = [
    ChatMessage(role="system", content="Answer briefly."),
    ChatMessage(role="user", content="Hi!"),
    ChatMessage(role="assistant", content="Hello, how can I help?"),
    ChatMessage(role="user", content="What is the capital of France?"),
]


@dataclass(frozen=True)
class Mode:
    """One of the eight ways to call an LLM."""

    api: str  # "chat" | "complete"
    stream: bool
    aio: bool

    @property
    def method(self) -> str:
        name = f"stream_{self.api}" if self.stream else self.api
        return f"a{name}" if self.aio else name

    def __str__(self) -> str:
        return self.method


MODES = [Mode(api, stream, aio) for aio in (False, True) for api in ("chat", "complete") for stream in (False, True)]
MODE_PARAMS = [pytest.param(mode, id=str(mode)) for mode in MODES]

Response = ChatResponse | CompletionResponse


async def call(llm: FlowiseLLM, mode: Mode, messages: list[ChatMessage] | None = None, **kwargs: Any) -> list[Response]:
    """Call ``llm`` the ``mode`` way; return every response (one unless streaming)."""
    messages = messages or CONVERSATION
    arg: Any = messages if mode.api == "chat" else messages[-1].content
    method = getattr(llm, mode.method)
    if not mode.aio:
        out = method(arg, **kwargs)
        return list(out) if mode.stream else [out]
    out = await method(arg, **kwargs)
    return [r async for r in out] if mode.stream else [out]


def text_of(response: Response) -> str:
    return (response.message.content or "") if isinstance(response, ChatResponse) else response.text


class Collector(BaseEventHandler):
    """Records every instrumentation event."""

    events: list[BaseEvent] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "Collector"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)

    def of(self, cls: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]


MakeLLM = Callable[..., FlowiseLLM]
