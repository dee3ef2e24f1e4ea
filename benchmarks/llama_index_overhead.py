"""Per-token cost of ``FlowiseLLM`` streaming, side by side with the core floor and ``OpenAILike``.

All contenders stream the same tokens from loopback servers in their own processes, interleaved round-robin,
``gc.collect()`` between samples; medians and ratios are printed.

- floor (sync/async): httpx + httpx-sse + ``json.loads`` per event over the FakeFlowise stream, nothing else;
- core (sync/async): ``FlowiseClient.stream`` / ``AsyncFlowiseClient.stream`` (typed events, folded Prediction);
- ``FlowiseLLM.stream_chat`` / ``stream_complete`` / ``astream_chat`` / ``astream_complete``;
- a bare ``CustomLLM`` (``stream_complete`` over httpx-sse, ~20 lines) and its inherited ``stream_chat``: what
  LlamaIndex's own per-response machinery costs, for reference;
- ``OpenAILike.stream_chat`` / ``astream_chat`` (llama-index-llms-openai-like) against an OpenAI-format
  chat-completions SSE stream of the same tokens (``benchmarks/_openai_server.py``).

The metric is the client's CPU time per token (``time.process_time``: the servers run in other processes and idle
waits are excluded); wall time is shown too. Goals: every FlowiseLLM streaming method <= 2.2x the floor and
<= 0.3x ``OpenAILike`` (same flavour: sync against ``stream_chat``, async against ``astream_chat``).

Then the one-off cost of ``FlowiseToolSpec`` for a server of ``--flows`` flows (one in five a form-input
agentflow): discovery (``from_server``: one ``GET /api/v1/chatflows`` + parsing, beside the core's own
``list_flows(details=False)``), the first ``to_tool_list()`` (each flow's argument model is built once), and
``with_session(...).to_tool_list()``, what a multi-user app pays per request.

Run: ``python benchmarks/llama_index_overhead.py [--tokens 2000] [--samples 9] [--flows 50]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import aconnect_sse, connect_sse

sys.path.insert(0, str(Path(__file__).parent))
from _flowise_server import flowise_server
from _openai_server import openai_server
from llama_index.core.base.llms.types import (
    ChatMessage,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.llms.openai_like import OpenAILike
from pydantic import PrivateAttr

from flowise_integrations import AsyncFlowiseClient, FlowiseClient
from flowise_integrations.events import TokenEvent
from flowise_integrations.llama_index import FlowiseLLM, FlowiseToolSpec

MESSAGES = [ChatMessage(role="user", content="hi")]
GOAL_FLOOR = 2.2
GOAL_OPENAI = 0.3


class BareCustomLLM(CustomLLM):
    """The least a CustomLLM can do: ``stream_complete`` over httpx-sse; everything else is inherited."""

    url: str
    _http: httpx.Client = PrivateAttr(default_factory=lambda: httpx.Client(timeout=60))

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text="".join(r.delta or "" for r in self.stream_complete(prompt)))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        def gen() -> CompletionResponseGen:
            text = ""
            with connect_sse(self._http, "POST", self.url, json={"question": prompt, "streaming": True}) as source:
                for sse in source.iter_sse():
                    event = json.loads(sse.data)
                    if event.get("event") == "token" and event["data"]:
                        text += event["data"]
                        yield CompletionResponse(text=text, delta=event["data"])

        return gen()


def floor_sync(http: httpx.Client, url: str) -> int:
    n = 0
    with connect_sse(http, "POST", url, json={"question": "hi", "streaming": True, "chatId": "bench"}) as source:
        for sse in source.iter_sse():
            if json.loads(sse.data).get("event") == "token":
                n += 1
    return n


async def floor_async(http: httpx.AsyncClient, url: str) -> int:
    n = 0
    async with aconnect_sse(http, "POST", url, json={"question": "hi", "streaming": True, "chatId": "bench"}) as src:
        async for sse in src.aiter_sse():
            if json.loads(sse.data).get("event") == "token":
                n += 1
    return n


def core_sync(client: FlowiseClient, flow: str) -> int:
    with client.stream(flow, "hi") as stream:
        return sum(1 for event in stream if type(event) is TokenEvent)


async def core_async(client: AsyncFlowiseClient, flow: str) -> int:
    n = 0
    async with client.stream(flow, "hi") as stream:
        async for event in stream:
            if type(event) is TokenEvent:
                n += 1
    return n


def llm_sync(responses: Any) -> int:
    return sum(1 for r in responses if r.delta)


async def llm_async(responses: Any) -> int:
    return sum([1 async for r in await responses if r.delta])


FORM_FIELDS = [
    {"type": "string", "label": "Name", "name": "name", "addOptions": ""},
    {"type": "number", "label": "Age", "name": "age", "addOptions": ""},
    {"type": "options", "label": "Plan", "name": "plan", "addOptions": [{"option": "basic"}, {"option": "pro"}]},
]


def toolspec_costs(n_flows: int, samples: int) -> None:
    """CPU and wall milliseconds (medians) of building tools for a server of ``n_flows`` flows."""
    flows: dict[str, dict[str, object]] = {
        f"flow{i}": (
            {"kind": "agentflow", "name": f"Sign-up form {i}", "input_type": "form", "form_fields": FORM_FIELDS,
             "form_description": f"Registers customer kind {i}."}
            if i % 5 == 0
            else {"name": f"Support flow {i}", "description": f"Answers questions about topic {i}."}
        )
        for i in range(n_flows)
    }  # fmt: skip
    with flowise_server(**flows) as server:
        client = FlowiseClient(server.base_url)
        listed = client.list_flows(details=False)
        shared = FlowiseToolSpec(listed, base_url=server.base_url)
        shared.to_tool_list()

        def discover() -> int:
            spec = FlowiseToolSpec.from_server(server.base_url)
            spec.close()
            return len(spec.flows)

        def fresh_client() -> int:
            with FlowiseClient(server.base_url) as new:
                return len(new.list_flows(details=False))

        steps: dict[str, Callable[[], int]] = {
            "core list_flows(details=False)": lambda: len(client.list_flows(details=False)),
            "core, new client + list_flows": fresh_client,
            "FlowiseToolSpec.from_server": discover,
            "first to_tool_list()": lambda: len(FlowiseToolSpec(listed, base_url=server.base_url).to_tool_list()),
            "with_session(...).to_tool_list()": lambda: len(shared.with_session("user-1").to_tool_list()),
        }
        cpu: dict[str, list[float]] = {name: [] for name in steps}
        wall: dict[str, list[float]] = {name: [] for name in steps}
        for name, build in steps.items():
            assert build() == n_flows, name
        for _ in range(samples):
            for name, build in steps.items():
                gc.collect()
                c0, w0 = time.process_time(), time.perf_counter()
                build()
                cpu[name].append((time.process_time() - c0) * 1e3)
                wall[name].append((time.perf_counter() - w0) * 1e3)
        client.close()
        shared.close()
    print(f"\nFlowiseToolSpec for {n_flows} flows ({n_flows // 5} of them forms): {samples} samples, medians\n")
    print(f"{'step':38} {'CPU ms':>10} {'wall ms':>10} {'per flow µs':>12}")
    for name in steps:
        med = statistics.median(cpu[name])
        print(f"{name:38} {med:10.2f} {statistics.median(wall[name]):10.2f} {med / n_flows * 1e3:12.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--flows", type=int, default=50, help="flows of the server for the FlowiseToolSpec costs")
    args = parser.parse_args()
    tokens = [f" tok{i}" for i in range(args.tokens)]
    loop = asyncio.new_event_loop()
    run = loop.run_until_complete
    with flowise_server(long={"tokens": tokens}) as flowise, openai_server(tokens) as openai_base_url:
        flow = flowise.flows["long"]
        url = f"{flowise.base_url}/api/v1/prediction/{flow}"
        http, ahttp = httpx.Client(timeout=60), httpx.AsyncClient(timeout=60)
        client, aclient = FlowiseClient(flowise.base_url), AsyncFlowiseClient(flowise.base_url)
        llm = FlowiseLLM(flow, base_url=flowise.base_url)
        openai = OpenAILike(model="bench", api_base=openai_base_url, api_key="bench", is_chat_model=True)
        bare = BareCustomLLM(url=url)

        contenders: dict[str, Callable[[], int]] = {
            "floor sync (httpx+httpx-sse+json)": lambda: floor_sync(http, url),
            "core FlowiseClient.stream": lambda: core_sync(client, flow),
            "FlowiseLLM.stream_chat": lambda: llm_sync(llm.stream_chat(MESSAGES)),
            "FlowiseLLM.stream_complete": lambda: llm_sync(llm.stream_complete("hi")),
            "bare CustomLLM.stream_complete": lambda: llm_sync(bare.stream_complete("hi")),
            "bare CustomLLM.stream_chat (default)": lambda: llm_sync(bare.stream_chat(MESSAGES)),
            "OpenAILike.stream_chat": lambda: llm_sync(openai.stream_chat(MESSAGES)),
            "floor async": lambda: run(floor_async(ahttp, url)),
            "core AsyncFlowiseClient.stream": lambda: run(core_async(aclient, flow)),
            "FlowiseLLM.astream_chat": lambda: run(llm_async(llm.astream_chat(MESSAGES))),
            "FlowiseLLM.astream_complete": lambda: run(llm_async(llm.astream_complete("hi"))),
            "OpenAILike.astream_chat": lambda: run(llm_async(openai.astream_chat(MESSAGES))),
        }
        cpu: dict[str, list[float]] = {name: [] for name in contenders}
        wall: dict[str, list[float]] = {name: [] for name in contenders}
        for name, contender in contenders.items():  # warm-up: imports, connections
            assert contender() == len(tokens), name
        for _ in range(args.samples):
            for name, contender in contenders.items():
                gc.collect()
                c0, w0 = time.process_time(), time.perf_counter()
                count = contender()
                c1, w1 = time.process_time(), time.perf_counter()
                assert count == len(tokens), (name, count)
                cpu[name].append((c1 - c0) / count * 1e6)
                wall[name].append((w1 - w0) / count * 1e6)
        run(aclient.aclose())
        run(ahttp.aclose())
        run(llm.aclose())
        client.close()
        llm.close()
        http.close()
    loop.close()
    report(contenders, cpu, wall, len(tokens), args.samples)
    toolspec_costs(args.flows, args.samples)


def report(names: Any, cpu: dict[str, list[float]], wall: dict[str, list[float]], tokens: int, samples: int) -> None:

    med = {name: statistics.median(values) for name, values in cpu.items()}
    print(f"\nClient CPU per token: {tokens} tokens per stream, {samples} interleaved samples, medians\n")
    print(f"{'contender':38} {'CPU µs/tok':>10} {'vs floor':>9} {'vs OpenAILike':>14} {'wall µs/tok':>12}")
    failures = []
    for name in names:
        is_async = name == "floor async" or name.startswith("core Async") or ".a" in name
        floor = med["floor async" if is_async else "floor sync (httpx+httpx-sse+json)"]
        openai = med["OpenAILike.astream_chat" if is_async else "OpenAILike.stream_chat"]
        ratio_floor, ratio_openai = med[name] / floor, med[name] / openai
        wall_us = statistics.median(wall[name])
        print(f"{name:38} {med[name]:10.2f} {ratio_floor:8.2f}x {ratio_openai:13.2f}x {wall_us:12.2f}")
        if name.startswith("FlowiseLLM") and (ratio_floor > GOAL_FLOOR or ratio_openai > GOAL_OPENAI):
            failures.append(name)
    verdict = f"MISSED by {', '.join(failures)}" if failures else "met"
    print(f"\ngoals: every FlowiseLLM method <= {GOAL_FLOOR}x the floor and <= {GOAL_OPENAI}x OpenAILike: {verdict}")


if __name__ == "__main__":
    main()
