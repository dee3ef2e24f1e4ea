"""What ``import flowise_integrations`` costs, in fresh interpreters, and what dominates it.

    python benchmarks/import_cost.py                 # 21 timed imports + 7 `-X importtime` breakdowns
    python benchmarks/import_cost.py --check         # exit 1 when the median wall time exceeds the budget
    python benchmarks/import_cost.py --module flowise_integrations.langchain --runs 9

Each sample is a new ``python -c`` that times only the import (``perf_counter`` for wall, ``process_time`` for
CPU), so interpreter start-up is left out. The breakdown groups ``-X importtime``'s self times: this package,
pydantic, httpx and its transport stack, httpx's optional command-line modules (rich, click, pygments: httpx
imports them whenever click is installed, e.g. by llama-index-core's nltk) and everything else. The load average
is printed because a busy machine inflates every number: the budget is for an idle one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from collections import defaultdict

BUDGET_MS = 120.0
GROUPS: dict[str, tuple[str, ...]] = {
    "flowise_integrations (this package)": ("flowise_integrations",),
    "pydantic + pydantic_core": ("pydantic", "pydantic_core", "annotated_types", "typing_inspection"),
    "httpx + httpcore, h11, anyio, certifi, idna": (
        *("httpx", "httpcore", "h11", "h2", "anyio", "certifi", "idna", "sniffio"),
    ),
    "httpx's optional CLI (rich, click, pygments)": (
        *("httpx._main", "rich", "click", "pygments", "markdown_it", "mdurl"),
    ),
}
_TIMED = (
    "import time; w = time.perf_counter(); c = time.process_time(); import {module}; "
    "print(time.perf_counter() - w, time.process_time() - c)"
)


def timed_import(module: str) -> tuple[float, float]:
    """(wall ms, CPU ms) of importing ``module`` in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _TIMED.format(module=module)], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]) * 1000, float(out[1]) * 1000


def group_of(name: str) -> str:
    """The report group of one imported module (the most specific prefix wins)."""
    best, length = "standard library and the rest", -1
    for group, prefixes in GROUPS.items():
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > length:
                best, length = group, len(prefix)
    return best


def self_times(code: str) -> dict[str, float]:
    """Self time (ms) of every module ``-X importtime`` reports while running ``code``."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    ).stderr
    times: dict[str, float] = {}
    for line in err.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            self_us, _cumulative, name = line.removeprefix("import time:").split("|")
            times[name.strip()] = int(self_us) / 1000
    return times


def breakdown(module: str, startup: set[str]) -> tuple[dict[str, float], dict[str, float]]:
    """Self time (ms) per group and per module of one import of ``module`` (start-up modules left out)."""
    modules = {name: ms for name, ms in self_times(f"import {module}").items() if name not in startup}
    groups: dict[str, float] = defaultdict(float)
    for name, ms in modules.items():
        groups[group_of(name)] += ms
    return groups, modules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", default="flowise_integrations")
    parser.add_argument("--runs", type=int, default=21, help="timed fresh-interpreter imports (default 21)")
    parser.add_argument("--profiles", type=int, default=7, help="-X importtime runs for the breakdown (default 7)")
    parser.add_argument("--budget-ms", type=float, default=BUDGET_MS)
    parser.add_argument("--check", action="store_true", help="exit 1 when the median wall time exceeds the budget")
    args = parser.parse_args(argv)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"import {args.module}: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.2f}")
    timed_import(args.module)  # warm the OS file cache and the bytecode cache
    samples = [timed_import(args.module) for _ in range(args.runs)]
    walls, cpus = [wall for wall, _ in samples], [cpu for _, cpu in samples]
    print(
        f"  wall  median {statistics.median(walls):6.1f} ms  (min {min(walls):.1f}, max {max(walls):.1f}; "
        f"{args.runs} fresh interpreters)"
    )
    print(f"  CPU   median {statistics.median(cpus):6.1f} ms  (min {min(cpus):.1f})")

    per_group: dict[str, list[float]] = defaultdict(list)
    per_module: dict[str, list[float]] = defaultdict(list)
    startup = set(self_times("pass"))  # what the interpreter imports before any user code
    for _ in range(args.profiles):
        groups, modules = breakdown(args.module, startup)
        for name in set(GROUPS) | {"standard library and the rest"}:
            per_group[name].append(groups.get(name, 0.0))
        for name, ms in modules.items():
            per_module[name].append(ms)
    print(f"  self time by group (median of {args.profiles} `-X importtime` runs, which add their own overhead):")
    for name, values in sorted(per_group.items(), key=lambda item: -statistics.median(item[1])):
        print(f"    {statistics.median(values):6.1f} ms  {name}")
    print("  the ten most expensive modules (self time):")
    ranked = sorted(per_module.items(), key=lambda item: -statistics.median(item[1]))[:10]
    for name, values in ranked:
        print(f"    {statistics.median(values):6.1f} ms  {name}")

    median = statistics.median(walls)
    verdict = "within" if median <= args.budget_ms else "over"
    print(f"  budget {args.budget_ms:.0f} ms wall on an idle machine: {verdict} ({median:.1f} ms at load {load:.2f})")
    return 1 if args.check and median > args.budget_ms else 0


if __name__ == "__main__":
    sys.exit(main())
