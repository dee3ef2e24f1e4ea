"""Concurrency is real: 50 concurrent calls against a 100 ms flow take about as long as one."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from _langchain_support import server_process, transport_clients

from flowise_integrations.langchain import ChatFlowise
from flowise_integrations.testing import FakeFlow, FakeFlowise

LATENCY = 0.1
N = 50
ANSWER = "Slow but steady."


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, str]]:
    with server_process(slow={"answer": ANSWER, "first_token_delay": LATENCY}) as (base_url, flows):
        yield base_url, flows["slow"]


async def _one(llm: ChatFlowise, mode: str, i: int) -> str:
    if mode == "ainvoke":
        return str((await llm.ainvoke(f"q{i}")).content)
    return "".join([chunk.text async for chunk in llm.astream(f"q{i}")])


async def _single_and_together(llm: ChatFlowise, mode: str) -> tuple[float, float]:
    await _one(llm, mode, -1)  # warm up
    gc.collect()
    gc.freeze()  # what earlier tests left on the heap must not make this test's garbage collections slower
    try:
        return await _measure(llm, mode)
    finally:
        gc.unfreeze()


async def _measure(llm: ChatFlowise, mode: str) -> tuple[float, float]:
    start = time.perf_counter()
    await _one(llm, mode, 0)
    single = time.perf_counter() - start
    start = time.perf_counter()
    results = await asyncio.gather(*(_one(llm, mode, i) for i in range(N)))
    together = time.perf_counter() - start
    assert results == [ANSWER] * N
    assert single >= LATENCY
    return single, together


@pytest.fixture
async def loopback_llm(server: tuple[str, str]) -> AsyncIterator[ChatFlowise]:
    base_url, flow = server
    llm = ChatFlowise(model=flow, base_url=base_url)
    yield llm
    await llm.aclose()


@pytest.mark.usefixtures("no_sockets")
@pytest.mark.parametrize("mode", ["ainvoke", "astream"])
async def test_fifty_concurrent_calls_over_the_transport(mode: str) -> None:
    fake = FakeFlowise()
    flow = fake.add_flow(FakeFlow(answer=ANSWER, first_token_delay=LATENCY))
    single, together = await _single_and_together(ChatFlowise(model=flow, **transport_clients(fake)), mode)
    assert together < 2 * single, f"{N} concurrent calls took {together:.3f}s, one took {single:.3f}s"


@pytest.mark.parametrize("mode", ["ainvoke", "astream"])
async def test_fifty_concurrent_calls_over_loopback(loopback_llm: ChatFlowise, mode: str) -> None:
    # A real server in another process, real sockets. The bound is looser than over the transport: httpx's
    # connection pool (httpcore) does O(connections^2) bookkeeping per request, which alone turns 50 concurrent
    # raw-httpx streams against this server into 2-6x one call (httpx2, with the fixed pool: 1.5x). Blocking
    # anywhere would make it ~50x.
    single, together = await _single_and_together(loopback_llm, mode)
    assert together < 10 * single, f"{N} concurrent calls took {together:.3f}s, one took {single:.3f}s"
