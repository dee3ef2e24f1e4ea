"""Fixtures for the LlamaIndex wing: a FakeFlowise with scripted flows, LLM factories over transport/loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_socket

pytest.importorskip("llama_index.core")

from _llama_index_support import ANSWER, SOURCES, TOOLS, Collector, MakeLLM
from llama_index.core.instrumentation import get_dispatcher

from flowise_integrations.llama_index import FlowiseLLM
from flowise_integrations.testing import FakeFlow, FakeFlowise


@pytest.fixture
def events() -> Iterator[Collector]:
    root = get_dispatcher()
    collector = Collector()
    root.add_event_handler(collector)
    yield collector
    root.event_handlers.remove(collector)


@pytest.fixture
def fake() -> FakeFlowise:
    return FakeFlowise()


@pytest.fixture
def rag_flow(fake: FakeFlowise) -> str:
    return fake.add_flow(FakeFlow(answer=ANSWER, source_documents=SOURCES, used_tools=TOOLS))


@pytest.fixture(params=["transport", "loopback"])
async def make_llm(request: pytest.FixtureRequest, fake: FakeFlowise) -> AsyncIterator[MakeLLM]:
    """``make_llm(flow_id, **fields)``: a FlowiseLLM on the emulator, in-process or over a real socket."""
    made: list[FlowiseLLM] = []
    if request.param == "transport":  # in-process, and proven so: no network socket may be opened
        pytest_socket.disable_socket(allow_unix_socket=True)

        def make(flow_id: str, **kwargs: Any) -> FlowiseLLM:
            llm = FlowiseLLM(
                flow_id,
                base_url="http://flowise.test",
                http_client=httpx.Client(transport=fake.transport()),
                async_http_client=httpx.AsyncClient(transport=fake.async_transport()),
                **kwargs,
            )
            made.append(llm)
            return llm

        try:
            yield make
        finally:
            pytest_socket.enable_socket()
    else:
        with fake.serve() as base_url:

            def make(flow_id: str, **kwargs: Any) -> FlowiseLLM:
                llm = FlowiseLLM(flow_id, base_url=base_url, **kwargs)
                made.append(llm)
                return llm

            try:
                yield make
            finally:
                for llm in made:
                    llm.close()
                    await llm.aclose()
