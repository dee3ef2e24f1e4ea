"""What ChatFlowise costs per streamed token, next to the floor, a minimal hand-written model and ChatOpenAI.

Contenders (sync ``stream`` and async ``astream`` each), all reading the same tokens from loopback servers that
run in their own processes:

- floor: httpx + httpx-sse + ``json.loads`` per event over the FakeFlowise stream (no LangChain at all);
- minimal BaseChatModel: ~20 lines over httpx-sse yielding ``AIMessageChunk``s (LangChain's own per-chunk
  machinery, nothing else): the reference for the <= 2.0x goal;
- ChatFlowise: this package;
- ChatOpenAI: langchain-openai against ``_openai_server.py`` streaming the same tokens (reference for <= 0.25x).

The metric is the client's CPU time per token (``time.process_time``: the servers' work and idle waits are
excluded), median over interleaved samples with ``gc.collect()`` before each; wall time is shown too. Then
1,000 concurrent ``astream`` calls of 200 tokens run in a fresh subprocess that reports errors and peak RSS.

Run: ``python benchmarks/langchain_overhead.py [--tokens 2000] [--samples 9] [--streams 1000]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import aconnect_sse, connect_sse
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

sys.path.insert(0, str(Path(__file__).parent))
from _flowise_server import flowise_server
from _openai_server import openai_server

from flowise_integrations.langchain import ChatFlowise

# -- the contenders -------------------------------------------------------------------------------------------


Result = tuple[str, int]
"""The streamed text and how many pieces (events or chunks) carried it."""


def floor_sync(http: httpx.Client, url: str) -> Result:
    parts = []
    with connect_sse(http, "POST", url, json={"question": "hi", "streaming": True}) as source:
        for sse in source.iter_sse():
            obj = json.loads(sse.data)
            if obj.get("event") == "token":
                parts.append(obj["data"])
    return "".join(parts), len(parts)


async def floor_async(http: httpx.AsyncClient, url: str) -> Result:
    parts = []
    async with aconnect_sse(http, "POST", url, json={"question": "hi", "streaming": True}) as source:
        async for sse in source.aiter_sse():
            obj = json.loads(sse.data)
            if obj.get("event") == "token":
                parts.append(obj["data"])
    return "".join(parts), len(parts)


class MinimalFlowiseChat(BaseChatModel):
    """The least a hand-written BaseChatModel over httpx-sse can do for a Flowise stream."""

    url: str
    http: httpx.Client
    ahttp: httpx.AsyncClient

    @property
    def _llm_type(self) -> str:
        return "minimal-flowise"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        raise NotImplementedError

    def _chunk(self, obj: dict[str, Any]) -> ChatGenerationChunk | None:
        event = obj.get("event")
        if event == "token":
            return ChatGenerationChunk(message=AIMessageChunk(content=obj["data"]))
        if event == "end":
            return ChatGenerationChunk(message=AIMessageChunk(content="", chunk_position="last"))
        return None

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: Any = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kw: Any,
    ) -> Iterator[ChatGenerationChunk]:
        body = {"question": messages[-1].text, "streaming": True}
        with connect_sse(self.http, "POST", self.url, json=body) as source:
            for sse in source.iter_sse():
                chunk = self._chunk(json.loads(sse.data))
                if chunk is not None:
                    if run_manager:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: Any = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kw: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        body = {"question": messages[-1].text, "streaming": True}
        async with aconnect_sse(self.ahttp, "POST", self.url, json=body) as source:
            async for sse in source.aiter_sse():
                chunk = self._chunk(json.loads(sse.data))
                if chunk is not None:
                    if run_manager:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk


def collect(model: BaseChatModel) -> Result:
    parts = [chunk.text for chunk in model.stream("hi") if chunk.text]
    return "".join(parts), len(parts)


async def acollect(model: BaseChatModel) -> Result:
    parts = [chunk.text async for chunk in model.astream("hi") if chunk.text]
    return "".join(parts), len(parts)


def _chat_openai(base_url: str) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="gpt-bench", base_url=base_url, api_key="sk-bench", max_retries=0)  # type: ignore[arg-type]


# -- per-token cost -------------------------------------------------------------------------------------------


def per_token(n_tokens: int, samples: int, delay: float) -> dict[str, dict[str, float]]:
    """Median client CPU and wall time per token, and pieces per stream, of every contender."""
    tokens = [f" tok{i}" for i in range(n_tokens)]
    expected = "".join(tokens)
    with (
        flowise_server(long={"tokens": tokens, "token_delay": delay}) as flowise,
        openai_server(tokens, token_delay=delay) as openai_url,
    ):
        flow = flowise.flows["long"]
        url = f"{flowise.base_url}/api/v1/prediction/{flow}"
        loop = asyncio.new_event_loop()
        http, ahttp = httpx.Client(timeout=60), httpx.AsyncClient(timeout=60)
        minimal = MinimalFlowiseChat(url=url, http=http, ahttp=ahttp)
        ours = ChatFlowise(model=flow, base_url=flowise.base_url)
        openai = _chat_openai(openai_url)
        contenders: dict[str, Callable[[], Result]] = {
            "floor sync (httpx+httpx-sse+json)": lambda: floor_sync(http, url),
            "minimal BaseChatModel .stream": lambda: collect(minimal),
            "ChatFlowise.stream": lambda: collect(ours),
            "ChatOpenAI.stream": lambda: collect(openai),
            "floor async": lambda: loop.run_until_complete(floor_async(ahttp, url)),
            "minimal BaseChatModel .astream": lambda: loop.run_until_complete(acollect(minimal)),
            "ChatFlowise.astream": lambda: loop.run_until_complete(acollect(ours)),
            "ChatOpenAI.astream": lambda: loop.run_until_complete(acollect(openai)),
        }
        cpu: dict[str, list[float]] = {name: [] for name in contenders}
        wall: dict[str, list[float]] = {name: [] for name in contenders}
        pieces: dict[str, list[int]] = {name: [] for name in contenders}
        for run in contenders.values():  # warm-up: connections, imports, caches
            run()
        for _ in range(samples):
            for name, run in contenders.items():
                gc.collect()
                c0, w0 = time.process_time(), time.perf_counter()
                text, count = run()
                c1, w1 = time.process_time(), time.perf_counter()
                assert text == expected, name
                cpu[name].append((c1 - c0) / n_tokens * 1e6)
                wall[name].append((w1 - w0) / n_tokens * 1e6)
                pieces[name].append(count)
        ours.close()
        loop.run_until_complete(ours.aclose())
        loop.run_until_complete(ahttp.aclose())
        http.close()
        loop.close()
    return {
        name: {
            "cpu": statistics.median(cpu[name]),
            "wall": statistics.median(wall[name]),
            "pieces": statistics.median(pieces[name]),
        }
        for name in contenders
    }


def print_table(title: str, results: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}\n")
    header = f"{'contender':36} {'CPU µs/tok':>10} {'vs floor':>9} {'vs minimal':>10} {'vs OpenAI':>9}"
    print(f"{header} {'wall µs/tok':>11} {'chunks':>7}")
    for mode, suffix, floor_name in (("sync", ".stream", "floor sync (httpx+httpx-sse+json)"),
                                     ("async", ".astream", "floor async")):  # fmt: skip
        floor = results[floor_name]["cpu"]
        minimal = results[f"minimal BaseChatModel {suffix}"]["cpu"]
        openai = results[f"ChatOpenAI{suffix}"]["cpu"]
        for name, value in results.items():
            if (name.endswith(".astream") or name == "floor async") != (mode == "async"):
                continue
            c = value["cpu"]
            print(
                f"{name:36} {c:10.2f} {c / floor:8.2f}x {c / minimal:9.2f}x {c / openai:8.2f}x "
                f"{value['wall']:11.2f} {value['pieces']:7.0f}"
            )
        ours = results[f"ChatFlowise{suffix}"]["cpu"]
        print(
            f"  -> ChatFlowise{suffix}: {ours / minimal:.2f}x the minimal model (goal <= 2.0x), "
            f"{ours / openai:.2f}x ChatOpenAI (goal <= 0.25x)"
        )


# -- 1,000 concurrent astreams (in a fresh process) ---------------------------------------------------------------


def _rss_mb() -> float:
    """Peak RSS of this process in MB (VmHWM: ru_maxrss would include the parent's peak, kept across exec)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20 if sys.platform == "darwin" else 1024)


async def _many(model: BaseChatModel, streams: int, tokens: int) -> dict[str, Any]:
    expected = "".join(f" t{i}" for i in range(tokens))

    async def one(i: int) -> Result:
        return await acollect(model)

    start = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(streams)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    wrong = [r for r in results if not isinstance(r, BaseException) and r[0] != expected]
    chunks = [r[1] for r in results if not isinstance(r, BaseException)]
    return {
        "seconds": time.perf_counter() - start,
        "errors": len(errors) + len(wrong),
        "first_error": repr(errors[0]) if errors else None,
        "chunks": statistics.median(chunks) if chunks else 0,
    }


def memory_child(spec: dict[str, Any]) -> None:
    if spec["kind"] == "flowise":
        model: BaseChatModel = ChatFlowise(model=spec["flow"], base_url=spec["base_url"], timeout=120)
    else:
        model = _chat_openai(spec["base_url"])
    baseline = _rss_mb()
    result = asyncio.run(_many(model, spec["streams"], spec["tokens"]))
    print(json.dumps({**result, "baseline_mb": baseline, "peak_mb": _rss_mb()}), flush=True)


def concurrent(kind: str, base_url: str, flow: str | None, streams: int, tokens: int) -> dict[str, Any]:
    spec = {"kind": kind, "base_url": base_url, "flow": flow, "streams": streams, "tokens": tokens}
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", json.dumps(spec)], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -- report ---------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=2000, help="tokens per stream in the burst runs")
    parser.add_argument("--paced-tokens", type=int, default=400, help="tokens per stream in the paced runs")
    parser.add_argument("--delay", type=float, default=0.0005, help="seconds between tokens in the paced runs")
    parser.add_argument("--samples", type=int, default=9)
    parser.add_argument("--streams", type=int, default=1000, help="concurrent astreams (0: skip)")
    parser.add_argument("--stream-tokens", type=int, default=200)
    parser.add_argument("--skip-openai-memory", action="store_true", help="do not run ChatOpenAI's 1,000 streams")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(json.loads(args.memory_child))
        return

    print_table(
        f"Per-token client cost, paced: {args.paced_tokens} tokens {args.delay * 1e3:g} ms apart (as from an LLM; "
        f"one token per read, so one chunk per token for everyone), {args.samples} samples, medians",
        per_token(args.paced_tokens, args.samples, args.delay),
    )
    print_table(
        f"Per-token client cost, burst: {args.tokens} tokens as fast as the server writes them, "
        f"{args.samples} samples, medians (ChatFlowise.astream merges tokens that queued up: see 'chunks')",
        per_token(args.tokens, args.samples, 0.0),
    )
    print()

    if args.streams:
        tokens = [f" t{i}" for i in range(args.stream_tokens)]
        print(f"{args.streams} concurrent astreams of {args.stream_tokens} tokens (fresh process each)\n")
        print(
            f"{'client':12} {'errors':>6} {'seconds':>8} {'chunks/stream':>13} {'baseline MB':>12} {'peak RSS MB':>12}"
        )
        with flowise_server(mem={"tokens": tokens}) as flowise:
            rows = {"ChatFlowise": concurrent("flowise", flowise.base_url, flowise.flows["mem"], args.streams,
                                              args.stream_tokens)}  # fmt: skip
        if not args.skip_openai_memory:
            with openai_server(tokens) as openai_url:
                rows["ChatOpenAI"] = concurrent("openai", openai_url, None, args.streams, args.stream_tokens)
        for name, row in rows.items():
            print(
                f"{name:12} {row['errors']:6d} {row['seconds']:8.2f} {row['chunks']:13.0f} "
                f"{row['baseline_mb']:12.1f} {row['peak_mb']:12.1f}"
            )
            if row["first_error"]:
                print(f"  first error: {row['first_error']}")
        print("\ngoal: 0 errors and <= 150 MB peak RSS for ChatFlowise")


if __name__ == "__main__":
    main()
