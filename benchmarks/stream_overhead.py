"""Per-token cost and time to first token of ``stream()``, side by side with the floor and the official SDK.

All contenders read the same loopback FakeFlowise stream (server in its own process), interleaved round-robin,
``gc.collect()`` between samples; medians and ratios are printed.

- floor (sync/async): httpx + httpx-sse + ``json.loads`` per event, nothing else;
- ours (sync/async): ``FlowiseClient.stream`` / ``AsyncFlowiseClient.stream``: typed events, folded ``Prediction``;
- flowise 1.0.4 (the official SDK, ``requests``; pre-flight GET, then POST; yields raw JSON strings which its
  users must ``json.loads``).

Run: ``python benchmarks/stream_overhead.py [--tokens 2000] [--samples 15]``
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

import httpx
from httpx_sse import aconnect_sse, connect_sse

sys.path.insert(0, str(Path(__file__).parent))
from _flowise_server import flowise_server

from flowise_integrations import AsyncFlowiseClient, FlowiseClient
from flowise_integrations.events import TokenEvent

Body = dict[str, object]


def floor_sync(http: httpx.Client, url: str, body: Body, first: list[float]) -> int:
    n = 0
    with connect_sse(http, "POST", url, json=body) as source:
        for sse in source.iter_sse():
            obj = json.loads(sse.data)
            if obj.get("event") == "token":
                if not n:
                    first.append(time.perf_counter())
                n += 1
    return n


async def floor_async(http: httpx.AsyncClient, url: str, body: Body, first: list[float]) -> int:
    n = 0
    async with aconnect_sse(http, "POST", url, json=body) as source:
        async for sse in source.aiter_sse():
            obj = json.loads(sse.data)
            if obj.get("event") == "token":
                if not n:
                    first.append(time.perf_counter())
                n += 1
    return n


def ours_sync(client: FlowiseClient, flow: str, first: list[float]) -> int:
    n = 0
    with client.stream(flow, "hi") as stream:
        for event in stream:
            if type(event) is TokenEvent:
                if not n:
                    first.append(time.perf_counter())
                n += 1
    return n


async def ours_async(client: AsyncFlowiseClient, flow: str, first: list[float]) -> int:
    n = 0
    async with client.stream(flow, "hi") as stream:
        async for event in stream:
            if type(event) is TokenEvent:
                if not n:
                    first.append(time.perf_counter())
                n += 1
    return n


def official_sdk(base_url: str, flow: str, first: list[float]) -> int:
    from flowise import Flowise, PredictionData

    n = 0
    for chunk in Flowise(base_url=base_url).create_prediction(
        PredictionData(chatflowId=flow, question="hi", streaming=True)
    ):
        obj = json.loads(chunk)
        if obj.get("event") == "token":
            if not n:
                first.append(time.perf_counter())
            n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args()
    n_tokens = args.tokens
    with flowise_server(long={"tokens": [f" tok{i}" for i in range(n_tokens)]}, short={"tokens": ["Hi", "!"]}) as srv:
        long_flow, short_flow = srv.flows["long"], srv.flows["short"]
        http = httpx.Client(timeout=60)
        ahttp_holder: list[httpx.AsyncClient] = []
        client = FlowiseClient(srv.base_url)
        aclient = AsyncFlowiseClient(srv.base_url)
        loop = asyncio.new_event_loop()

        def url(flow: str) -> str:
            return f"{srv.base_url}/api/v1/prediction/{flow}"

        def body(flow: str) -> Body:
            return {"question": "hi", "streaming": True, "chatId": "bench"}

        def ahttp() -> httpx.AsyncClient:
            if not ahttp_holder:
                ahttp_holder.append(httpx.AsyncClient(timeout=60))
            return ahttp_holder[0]

        contenders: dict[str, Callable[[str, list[float]], int]] = {
            "floor sync (httpx+httpx-sse+json)": lambda f, first: floor_sync(http, url(f), body(f), first),
            "ours sync  (FlowiseClient.stream)": lambda f, first: ours_sync(client, f, first),
            "floor async": lambda f, first: loop.run_until_complete(floor_async(ahttp(), url(f), body(f), first)),
            "ours async (AsyncFlowiseClient.stream)": lambda f, first: loop.run_until_complete(
                ours_async(aclient, f, first)
            ),
            "official SDK flowise 1.0.4": lambda f, first: official_sdk(srv.base_url, f, first),
        }
        per_token: dict[str, list[float]] = {name: [] for name in contenders}
        ttft: dict[str, list[float]] = {name: [] for name in contenders}
        for run in contenders.values():  # warm-up: connections, imports
            run(long_flow, [])
            run(short_flow, [])
        for _ in range(args.samples):
            for name, run in contenders.items():
                gc.collect()
                first: list[float] = []
                start = time.perf_counter()
                count = run(long_flow, first)
                elapsed = time.perf_counter() - start
                assert count == n_tokens, (name, count)
                per_token[name].append(elapsed / n_tokens * 1e6)
                gc.collect()
                first = []
                start = time.perf_counter()
                run(short_flow, first)
                ttft[name].append((first[0] - start) * 1e6)
        loop.run_until_complete(aclient.aclose())
        if ahttp_holder:
            loop.run_until_complete(ahttp_holder[0].aclose())
        client.close()
        http.close()

    med = {name: statistics.median(v) for name, v in per_token.items()}
    med_ttft = {name: statistics.median(v) for name, v in ttft.items()}
    floor_s, floor_a = med["floor sync (httpx+httpx-sse+json)"], med["floor async"]
    ttft_s, ttft_a = med_ttft["floor sync (httpx+httpx-sse+json)"], med_ttft["floor async"]
    print(f"\n{n_tokens} tokens per stream, {args.samples} interleaved samples, medians (µs)\n")
    print(f"{'contender':42} {'µs/token':>9} {'vs floor':>9} {'TTFT µs':>9} {'vs floor':>9}")
    for name in contenders:
        is_async = "async" in name
        f, t = (floor_a, ttft_a) if is_async else (floor_s, ttft_s)
        print(f"{name:42} {med[name]:9.2f} {med[name] / f:8.2f}x {med_ttft[name]:9.0f} {med_ttft[name] / t:8.2f}x")
    ours = med["ours sync  (FlowiseClient.stream)"]
    sdk = med["official SDK flowise 1.0.4"]
    print(
        f"\nours sync vs official SDK per token: {ours / sdk:.2f}x; "
        f"TTFT: {med_ttft['ours sync  (FlowiseClient.stream)'] / med_ttft['official SDK flowise 1.0.4']:.2f}x"
    )


if __name__ == "__main__":
    main()
