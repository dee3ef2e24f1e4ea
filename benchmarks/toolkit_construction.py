"""What building a FlowiseToolkit costs for a server with N flows (default 50), against FakeFlowise in its own process.

Contenders, each timed from nothing to a list of tools (new clients every sample, so connection setup counts):

- floor: ``FlowiseClient.list_flows(details=False)`` alone (one GET /chatflows and parsing the rows);
- ``FlowiseToolkit.from_server(...).get_tools()`` (the floor + one FlowiseTool per flow);
- ``await FlowiseToolkit.afrom_server(...)`` then ``get_tools()``;
- ``FlowiseToolkit.from_flows(flows).get_tools()`` (no request: the tools alone);
- reference: ``list_flows(details=True)`` (two more requests per flow: streaming and uploads).

A third of the flows are form-input agentflows (their tools get a JSON schema from the form), the rest chatflows.
Wall and CPU time per build, median over samples; then the tools' count and a sample tool name.

Run: ``python benchmarks/toolkit_construction.py [--flows 50] [--samples 15]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _flowise_server import flowise_server

from flowise_integrations import AsyncFlowiseClient, FlowiseClient
from flowise_integrations.langchain import FlowiseToolkit

FORM = [
    {"type": "string", "label": "Email", "name": "email"},
    {"type": "number", "label": "Priority", "name": "priority"},
    {"type": "options", "label": "Team", "name": "team", "addOptions": [{"option": "billing"}, {"option": "tech"}]},
]


def flows_spec(n: int) -> dict[str, dict[str, Any]]:
    spec: dict[str, dict[str, Any]] = {}
    for i in range(n):
        if i % 3 == 2:
            spec[f"form{i}"] = {
                "name": f"Ticket form {i}",
                "kind": "agentflow",
                "input_type": "form",
                "form_fields": FORM,
                "description": "Opens a ticket.",
            }
        else:
            spec[f"chat{i}"] = {"name": f"Support flow {i}", "description": f"Answers questions about topic {i}."}
    return spec


def measure(run: Callable[[], int], samples: int) -> dict[str, float]:
    run()  # warm-up: imports, pydantic schema builds
    wall: list[float] = []
    cpu: list[float] = []
    count = 0
    for _ in range(samples):
        gc.collect()
        c0, w0 = time.process_time(), time.perf_counter()
        count = run()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return {"wall_ms": statistics.median(wall) * 1e3, "cpu_ms": statistics.median(cpu) * 1e3, "count": count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, default=50)
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args()
    key = None
    with flowise_server(**flows_spec(args.flows)) as server:
        url = server.base_url
        loop = asyncio.new_event_loop()

        def floor() -> int:
            with FlowiseClient(url, key) as client:
                return len(client.list_flows(details=False))

        def detailed() -> int:
            with FlowiseClient(url, key) as client:
                return len(client.list_flows(details=True))

        def toolkit() -> int:
            kit = FlowiseToolkit.from_server(base_url=url)
            tools = kit.get_tools()
            kit.close()
            return len(tools)

        async def atoolkit() -> int:
            kit = await FlowiseToolkit.afrom_server(base_url=url)
            tools = kit.get_tools()
            await kit.aclose()
            return len(tools)

        with FlowiseClient(url, key) as client:
            flows = client.list_flows(details=False)

        def from_flows() -> int:
            return len(FlowiseToolkit.from_flows(flows, base_url=url).get_tools())

        async def afloor() -> int:
            async with AsyncFlowiseClient(url, key) as client:
                return len(await client.list_flows(details=False))

        rows = {
            "floor: list_flows(details=False)": measure(floor, args.samples),
            "FlowiseToolkit.from_server + get_tools": measure(toolkit, args.samples),
            "floor async: list_flows(details=False)": measure(lambda: loop.run_until_complete(afloor()), args.samples),
            "FlowiseToolkit.afrom_server + get_tools": measure(
                lambda: loop.run_until_complete(atoolkit()), args.samples
            ),
            "FlowiseToolkit.from_flows + get_tools": measure(from_flows, args.samples),
            "reference: list_flows(details=True)": measure(detailed, args.samples),
        }
        loop.close()
        sample = FlowiseToolkit.from_flows(flows, base_url=url).get_tools()
    print(f"\nToolkit construction for {args.flows} flows ({args.samples} samples, medians)\n")
    print(f"{'contender':42} {'wall ms':>9} {'CPU ms':>8} {'per flow µs':>12} {'items':>6}")
    for name, row in rows.items():
        per_flow = row["wall_ms"] * 1e3 / args.flows
        print(f"{name:42} {row['wall_ms']:9.2f} {row['cpu_ms']:8.2f} {per_flow:12.1f} {row['count']:6.0f}")
    overhead = (
        rows["FlowiseToolkit.from_server + get_tools"]["wall_ms"] - rows["floor: list_flows(details=False)"]["wall_ms"]
    )
    per_tool = overhead * 1e3 / args.flows
    print(f"\ntoolkit over the floor: {overhead:.2f} ms for {args.flows} tools ({per_tool:.1f} µs/tool)")
    print(f"tool names: {sample[0].name}, {sample[2].name}, ... (form tool args: {list(sample[2].args)})")


if __name__ == "__main__":
    main()
