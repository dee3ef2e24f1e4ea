"""Real async: concurrent calls overlap instead of queueing behind each other (CustomLLM's default would)."""

from __future__ import annotations

import asyncio
import time

import pytest
from _llama_index_support import ANSWER, CONVERSATION, MakeLLM

from flowise_integrations.testing import FakeFlow, FakeFlowise

LATENCY = 0.1
CONCURRENT = 20


async def _achat(llm: object) -> str:
    response = await llm.achat(CONVERSATION)  # type: ignore[attr-defined]
    return str(response.message.content)


async def _astream_chat(llm: object) -> str:
    text = ""
    async for response in await llm.astream_chat(CONVERSATION):  # type: ignore[attr-defined]
        text += response.delta or ""
    return text


@pytest.mark.parametrize("run", [_achat, _astream_chat], ids=["achat", "astream_chat"])
async def test_concurrent_calls_overlap(run: object, make_llm: MakeLLM, fake: FakeFlowise) -> None:
    llm = make_llm(fake.add_flow(FakeFlow(answer=ANSWER, first_token_delay=LATENCY)))
    await run(llm)  # warm-up: imports, connection
    start = time.perf_counter()
    assert await run(llm) == ANSWER
    one = time.perf_counter() - start
    start = time.perf_counter()
    answers = await asyncio.gather(*(run(llm) for _ in range(CONCURRENT)))
    many = time.perf_counter() - start
    assert answers == [ANSWER] * CONCURRENT
    assert one >= LATENCY
    # Serial calls would take CONCURRENT x LATENCY = 2 s; the floor keeps the bound generous on a loaded machine.
    assert many < max(2 * one, 2.5 * LATENCY), f"{CONCURRENT} concurrent calls took {many:.3f}s, one took {one:.3f}s"
