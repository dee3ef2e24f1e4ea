"""Concurrency is real: 50 concurrent `ainvoke`/`astream` calls are all in flight at once.

No clock is read: each prediction is held until all fifty have arrived (`_overlap`), so the tests pass on a
loaded machine and fail on a serial implementation (the gate never fills).
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from _overlap import Gate, GatedTransport, barrier_server

from flowise_integrations.langchain import ChatFlowise
from flowise_integrations.testing import FakeFlow, FakeFlowise

N = 50
ANSWER = "Slow but steady."


async def _one(llm: ChatFlowise, mode: str, i: int) -> str:
    if mode == "ainvoke":
        return str((await llm.ainvoke(f"q{i}")).content)
    return "".join([chunk.text async for chunk in llm.astream(f"q{i}")])


async def _together(llm: ChatFlowise, mode: str) -> None:
    try:
        results = await asyncio.gather(*(_one(llm, mode, i) for i in range(N)))
    finally:
        await llm.aclose()
    assert results == [ANSWER] * N


@pytest.mark.usefixtures("no_sockets")
@pytest.mark.parametrize("mode", ["ainvoke", "astream"])
async def test_fifty_concurrent_calls_over_the_transport(mode: str) -> None:
    fake = FakeFlowise()
    flow = fake.add_flow(FakeFlow(answer=ANSWER))
    gate = Gate(N)
    http = httpx.AsyncClient(transport=GatedTransport(fake.async_transport(), gate))
    await _together(ChatFlowise(model=flow, base_url="http://flowise.test", http_async_client=http), mode)
    assert gate.peak == N, f"at most {gate.peak} of {N} calls were in flight at once"


@pytest.mark.parametrize("mode", ["ainvoke", "astream"])
async def test_fifty_concurrent_calls_over_loopback(mode: str) -> None:
    # real sockets to a threaded loopback server that answers only once all fifty predictions are in flight
    fake = FakeFlowise()
    flow = fake.add_flow(FakeFlow(answer=ANSWER))
    with barrier_server(fake, N) as (base_url, peak):
        await _together(ChatFlowise(model=flow, base_url=base_url), mode)
    assert peak[0] == N, f"the server saw at most {peak[0]} of {N} calls in flight at once"


@pytest.mark.usefixtures("no_sockets")
async def test_the_gate_sees_serial_calls_as_serial() -> None:
    # the proof's own check: one call at a time never fills the gate (it opens after its patience) -> peak 1
    fake = FakeFlowise()
    flow = fake.add_flow(FakeFlow(answer=ANSWER))
    gate = Gate(N, patience=0.01)
    http = httpx.AsyncClient(transport=GatedTransport(fake.async_transport(), gate))
    llm = ChatFlowise(model=flow, base_url="http://flowise.test", http_async_client=http)
    try:
        assert [await _one(llm, "ainvoke", i) for i in range(3)] == [ANSWER] * 3
    finally:
        await llm.aclose()
    assert gate.peak == 1
