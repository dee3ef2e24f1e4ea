"""Thousands of concurrent streams on one event loop: completions, errors, wall time, worst loop stall, peak RSS.

Every contender runs in its own fresh process (so peak RSS is its own) against the same FakeFlowise loopback
server (in yet another process), one after the other:

- ``core``: ``AsyncFlowiseClient.stream(...)`` to the end (typed events, folded ``Prediction``), default settings;
- ``langchain``: ``ChatFlowise.astream(...)`` to the end;
- ``raw``: httpx + httpx-sse + ``json.loads`` per event, behind the same FIFO limiter (1,000 in flight);
- ``raw-unlimited``: the same with only httpx's pool (1,000 connections) and no limiter: what wave 1 did.

The worst stall is the longest the loop failed to run a 10 ms ticker (minus the 10 ms). A run that has not
finished after ``--limit`` seconds is reported as such.

Run: ``python benchmarks/concurrency.py [--streams 1000 5000] [--tokens 200] [--contenders core langchain raw]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _flowise_server import flowise_server

CONTENDERS = ("core", "langchain", "raw", "raw-unlimited")


async def _ticker(worst: list[float], stop: asyncio.Event) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        worst[0] = max(worst[0], now - last - 0.01)
        last = now


async def _core(url: str, flow: str, n: int, pool: int | None) -> list[Any]:
    import httpx

    from flowise_integrations import AsyncFlowiseClient

    limits = {} if pool is None else {"limits": httpx.Limits(max_connections=pool, max_keepalive_connections=pool)}
    async with AsyncFlowiseClient(url, **limits) as client:  # type: ignore[arg-type]

        async def one() -> int:
            return len((await client.stream(flow, "hi").until_done()).text)

        return await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)


async def _langchain(url: str, flow: str, n: int) -> list[Any]:
    from flowise_integrations.langchain import ChatFlowise

    model = ChatFlowise(model=flow, base_url=url)

    async def one() -> int:
        size = 0
        async for chunk in model.astream("hi"):
            size += len(chunk.text)
        return size

    try:
        return await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
    finally:
        await model.aclose()


async def _raw(url: str, flow: str, n: int, *, limited: bool) -> list[Any]:
    import httpx
    from httpx_sse import aconnect_sse

    from flowise_integrations._limiter import AsyncLimiter

    limiter = AsyncLimiter(1000)
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(60, pool=None)) as http:

        async def one() -> int:
            if limited:
                await limiter.acquire(None)
            try:
                size = 0
                body = {"question": "hi", "streaming": True}
                async with aconnect_sse(http, "POST", f"/api/v1/prediction/{flow}", json=body) as source:
                    async for sse in source.aiter_sse():
                        obj = json.loads(sse.data)
                        if obj.get("event") == "token":
                            size += len(obj["data"])
                return size
            finally:
                if limited:
                    limiter.release()

        return await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)


async def _measure(contender: str, url: str, flow: str, n: int, pool: int | None) -> dict[str, Any]:
    worst = [0.0]
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(worst, stop))
    started = time.perf_counter()
    if contender == "core":
        results = await _core(url, flow, n, pool)
    elif contender == "langchain":
        results = await _langchain(url, flow, n)
    else:
        results = await _raw(url, flow, n, limited=contender == "raw")
    wall = time.perf_counter() - started
    stop.set()
    await ticker
    errors = [r for r in results if isinstance(r, BaseException)]
    return {
        "completed": len(results) - len(errors),
        "errors": len(errors),
        "first_error": repr(errors[0])[:160] if errors else "",
        "wall_s": round(wall, 2),
        "worst_stall_s": round(worst[0], 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _worker(argv: list[str]) -> None:
    contender, url, flow, n = argv[0], argv[1], argv[2], int(argv[3])
    pool = int(argv[4]) if len(argv) > 4 and argv[4] != "default" else None
    print(json.dumps(asyncio.run(_measure(contender, url, flow, n, pool))), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--limit", type=float, default=300.0, help="seconds before a run counts as hung")
    parser.add_argument("--pool", default="default", help="max_connections for `core` (default: the client's)")
    args = parser.parse_args()
    tokens = [f"t{i} " for i in range(args.tokens)]
    columns = ("contender", "streams", "done", "errors", "wall s", "worst stall s", "peak RSS MB")
    widths = (-14, 7, 6, 6, 7, 13, 11)
    header = " ".join(f"{c:<{-w}}" if w < 0 else f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))
    print(f"{args.tokens} tokens per stream; server: FakeFlowise loopback in its own process\n{header}")
    with flowise_server(flow={"tokens": tokens}) as server:
        for n in args.streams:
            for contender in args.contenders:
                cmd = [
                    sys.executable,
                    __file__,
                    "--worker",
                    contender,
                    server.base_url,
                    server.flows["flow"],
                    str(n),
                    args.pool,
                ]
                try:
                    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.limit, check=False)
                    row = json.loads(out.stdout.strip().splitlines()[-1])
                except subprocess.TimeoutExpired:
                    print(f"{contender:<14} {n:>7} did not finish within {args.limit:.0f} s (event loop frozen)")
                    continue
                except (IndexError, ValueError):
                    print(f"{contender:<14} {n:>7} crashed: {out.stderr.strip()[-300:]}")
                    continue
                print(
                    f"{contender:<14} {n:>7} {row['completed']:>6} {row['errors']:>6} {row['wall_s']:>7} "
                    f"{row['worst_stall_s']:>13} {row['peak_rss_mb']:>11}"
                    + (f"   first error: {row['first_error']}" if row["errors"] else "")
                )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2:])
    else:
        main()
