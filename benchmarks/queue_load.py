"""100 concurrent streams against a real Flowise 3.1.4: normal mode vs queue mode (two workers), side by side.

Each setup is started by the e2e harness (``tests/e2e/harness.py``; install first with ``python
tests/e2e/harness.py install``), one after the other, and gets the same load: ``--streams`` concurrent
streaming predictions (a mix of LLM chain, conversation chain with memory, tool agent and Agentflow V2, or
``--flows`` of your choice), in ``--rounds`` rounds. Per setup it reports:

- ``ok``: the stream ended with ``metadata`` + ``end`` and its tokens are exactly the flow's answer;
- ``lost``: it ended normally but with fewer (or no) tokens: the queue-mode lost-answer symptom;
- ``error``: an in-band ``error`` event (e.g. ``SQLITE_BUSY``), an HTTP error or a broken connection;
- wall time per round, median and p95 stream time, the server side's peak RSS.

Setups: ``normal`` (one process, SQLite), ``queue-postgres`` (main + 2 workers + Redis + Postgres) and, with
``--sqlite-queue``, ``queue-sqlite`` (the same on one shared SQLite file, which Flowise does not support well).

Run: ``python benchmarks/queue_load.py [--streams 100] [--rounds 3] [--sqlite-queue] [--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

E2E = Path(__file__).resolve().parent.parent / "tests" / "e2e"
sys.path.insert(0, str(E2E))
from flows import EXPECTED_ANSWERS, SAMPLE_QUESTIONS  # noqa: E402
from harness import RealFlowiseState, start_real_flowise  # noqa: E402

DEFAULT_FLOWS = ("llm_chain", "conversation_chain", "tool_agent", "agentflow_v2_llm")
SETUPS: dict[str, dict[str, Any]] = {
    "normal": {"target": "3.1.4"},
    "queue-postgres": {"target": "3.1.4-queue", "postgres": True},
    "queue-sqlite": {"target": "3.1.4-queue", "postgres": False},
}


@dataclass
class Outcome:
    kind: str  # ok | lost | error
    seconds: float
    detail: str = ""


@dataclass
class Round:
    wall: float
    outcomes: list[Outcome] = field(default_factory=list)


def _events(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for block in raw.decode(errors="replace").split("\n\n"):
        data = [line[5:] for line in block.split("\n") if line.startswith("data:")]
        if data:
            out.append(json.loads("\n".join(data)))
    return out


async def _one(http: httpx.AsyncClient, state: RealFlowiseState, flow: str) -> Outcome:
    body: dict[str, Any] = {"question": SAMPLE_QUESTIONS.get(flow, "hi"), "streaming": True}
    if flow == "conversation_chain":
        body["overrideConfig"] = {"sessionId": f"load-{uuid.uuid4()}"}
    started = time.perf_counter()
    try:
        resp = await http.post(state.prediction_url(flow), json=body)
    except httpx.HTTPError as exc:
        return Outcome("error", time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - started
    if resp.status_code != 200:
        return Outcome("error", seconds, f"HTTP {resp.status_code}: {resp.text[:120]}")
    events = _events(resp.content)
    names = [e.get("event") for e in events]
    errors = [str(e.get("data")) for e in events if e.get("event") == "error"]
    if errors:
        return Outcome("error", seconds, errors[0][:160])
    text = "".join(str(e["data"]) for e in events if e.get("event") == "token")
    if names[-2:] != ["metadata", "end"]:
        return Outcome("error", seconds, f"ended with {names[-2:]}")
    if text != EXPECTED_ANSWERS[flow]:
        return Outcome("lost", seconds, f"{len(text)} of {len(EXPECTED_ANSWERS[flow])} characters")
    return Outcome("ok", seconds)


async def _round(state: RealFlowiseState, flows: list[str], streams: int) -> Round:
    limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)
    async with httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=10.0), limits=limits) as http:
        started = time.perf_counter()
        outcomes = await asyncio.gather(*(_one(http, state, flows[i % len(flows)]) for i in range(streams)))
        return Round(time.perf_counter() - started, list(outcomes))


def _peak_rss(state: RealFlowiseState, stop: threading.Event, peak: dict[str, float]) -> None:
    while not stop.is_set():
        total = sum(state.memory_mb().values())
        peak["mb"] = max(peak.get("mb", 0.0), total)
        stop.wait(0.5)


def run_setup(name: str, *, streams: int, rounds: int, flows: list[str]) -> dict[str, Any]:
    spec = SETUPS[name]
    print(f"[{name}] starting {spec['target']} ...", file=sys.stderr, flush=True)
    with start_real_flowise(spec["target"], postgres=bool(spec.get("postgres", True))) as state:
        warm = asyncio.run(_round(state, flows, len(flows)))  # every flow once, not counted
        assert all(o.kind == "ok" for o in warm.outcomes), [o.detail for o in warm.outcomes]
        stop, peak = threading.Event(), dict[str, float]()
        sampler = threading.Thread(target=_peak_rss, args=(state, stop, peak), daemon=True)
        sampler.start()
        results = []
        for n in range(rounds):
            result = asyncio.run(_round(state, flows, streams))
            kinds = [o.kind for o in result.outcomes]
            print(
                f"[{name}] round {n + 1}: {kinds.count('ok')} ok, {kinds.count('lost')} lost, "
                f"{kinds.count('error')} errors in {result.wall:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            results.append(result)
        stop.set()
        sampler.join()
        start_seconds = state.timings.get("start_total")
    outcomes = [o for r in results for o in r.outcomes]
    seconds = sorted(o.seconds for o in outcomes)
    details = sorted({o.detail for o in outcomes if o.kind != "ok"})
    return {
        "setup": name,
        "start_s": start_seconds,
        "streams": streams * rounds,
        "ok": sum(o.kind == "ok" for o in outcomes),
        "lost": sum(o.kind == "lost" for o in outcomes),
        "error": sum(o.kind == "error" for o in outcomes),
        "wall_s": [round(r.wall, 2) for r in results],
        "median_stream_s": round(statistics.median(seconds), 2),
        "p95_stream_s": round(seconds[int(0.95 * (len(seconds) - 1))], 2),
        "peak_rss_mb": round(peak.get("mb", 0.0)),
        "errors_seen": details[:5],
    }


def _table(rows: list[dict[str, Any]]) -> str:
    head = "| setup | streams | ok | lost | errors | wall per round (s) | median / p95 stream (s) | peak RSS (MB) |"
    lines = [head, "| --- | ---: | ---: | ---: | ---: | --- | --- | ---: |"]
    for r in rows:
        lines.append(
            f"| {r['setup']} | {r['streams']} | {r['ok']} | {r['lost']} | {r['error']} | "
            f"{', '.join(f'{w:.1f}' for w in r['wall_s'])} | {r['median_stream_s']} / {r['p95_stream_s']} | "
            f"{r['peak_rss_mb']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=100, help="concurrent streams per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flows", nargs="+", default=list(DEFAULT_FLOWS), choices=sorted(EXPECTED_ANSWERS))
    parser.add_argument("--sqlite-queue", action="store_true", help="also queue mode on one shared SQLite file")
    parser.add_argument("--setups", nargs="+", choices=list(SETUPS), help="exactly these setups")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    setups = args.setups or ["normal", "queue-postgres", *(["queue-sqlite"] if args.sqlite_queue else [])]
    rows = [run_setup(s, streams=args.streams, rounds=args.rounds, flows=args.flows) for s in setups]
    print(_table(rows))
    for row in rows:
        if row["errors_seen"]:
            print(f"{row['setup']}: {row['errors_seen']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
