"""Real async: concurrent calls are all in flight at once instead of queueing (CustomLLM's default would).

No clock is read: each prediction is held until all of them have arrived (`_overlap`), so the tests pass on a
loaded machine and fail on a serial implementation (the gate never fills).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest
from _llama_index_support import ANSWER, CONVERSATION
from _overlap import Gate, GatedTransport, barrier_server

from flowise_integrations.llama_index import FlowiseLLM
from flowise_integrations.testing import FakeFlow, FakeFlowise

CONCURRENT = 20
Run = Callable[[FlowiseLLM], Awaitable[str]]


async def _achat(llm: FlowiseLLM) -> str:
    response = await llm.achat(CONVERSATION)
    return str(response.message.content)


async def _astream_chat(llm: FlowiseLLM) -> str:
    text = ""
    async for response in await llm.astream_chat(CONVERSATION):
        text += response.delta or ""
    return text


async def _together(llm: FlowiseLLM, run: Run) -> None:
    try:
        answers = await asyncio.gather(*(run(llm) for _ in range(CONCURRENT)))
    finally:
        await llm.aclose()
    assert answers == [ANSWER] * CONCURRENT


@pytest.mark.parametrize("run", [_achat, _astream_chat], ids=["achat", "astream_chat"])
async def test_concurrent_calls_overlap_over_the_transport(run: Run) -> None:
    fake = FakeFlowise()
    flow = fake.add_flow(FakeFlow(answer=ANSWER))
    gate = Gate(CONCURRENT)
    http = httpx.AsyncClient(transport=GatedTransport(fake.async_transport(), gate))
    await _together(FlowiseLLM(flow, base_url="http://flowise.test", async_http_client=http), run)
    assert gate.peak == CONCURRENT, f"at most {gate.peak} of {CONCURRENT} calls were in flight at once"


@pytest.mark.parametrize("run", [_achat, _astream_chat], ids=["achat", "astream_chat"])
async def test_concurrent_calls_overlap_over_loopback(run: Run) -> None:
    fake = FakeFlowise()
    flow = fake.add_flow(FakeFlow(answer=ANSWER))
    with barrier_server(fake, CONCURRENT) as (base_url, peak):
        await _together(FlowiseLLM(flow, base_url=base_url), run)
    assert peak[0] == CONCURRENT, f"the server saw at most {peak[0]} of {CONCURRENT} calls in flight at once"
