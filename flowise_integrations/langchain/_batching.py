"""Read an async event stream in a helper task, so the consumer gets everything that arrived while it was busy.

httpx hands over a streamed body one HTTP chunk (one Flowise event) at a time, whatever is already buffered, so
a consumer that falls behind would otherwise turn every token into its own LangChain chunk, and LangChain keeps
every chunk of a run until the run ends. With a reader task, each batch is what queued up: one event while the
consumer keeps up, many when it is behind; merging them adds no latency.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

from flowise_integrations.events import FlowiseEvent

__all__ = ["batches"]


async def batches(events: AsyncIterator[FlowiseEvent]) -> AsyncGenerator[list[FlowiseEvent], None]:
    """Lists of events, in order; an error of ``events`` is raised after the events before it.

    Use it under ``contextlib.aclosing`` so that leaving early stops the reader before ``events`` is closed.
    """
    loop = asyncio.get_running_loop()
    buffer: list[FlowiseEvent] = []
    waiter: asyncio.Future[None] | None = None
    finished = False
    failure: BaseException | None = None

    def wake() -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def pump() -> None:
        nonlocal finished, failure
        try:
            async for event in events:
                buffer.append(event)
                wake()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed over, raised by the consumer after the events before it
            failure = exc
        finally:
            finished = True
            wake()

    task = loop.create_task(pump())
    try:
        while True:
            if buffer:
                batch = buffer[:]
                buffer.clear()
                yield batch
            elif finished:
                break
            else:
                waiter = loop.create_future()
                await waiter
                waiter = None
        if failure is not None:
            raise failure
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait((task,))
