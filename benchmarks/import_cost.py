"""What ``import flowise_integrations`` costs, in fresh interpreters, and what dominates it.

    python benchmarks/import_cost.py                 # 21 timed imports (interleaved with the floor) + 7 profiles
    python benchmarks/import_cost.py --check         # exit 1 when the median wall time exceeds the budget
    python benchmarks/import_cost.py --module flowise_integrations.langchain --runs 9
    (cd /tmp && /path/to/clean-venv/bin/python benchmarks/import_cost.py)   # as a `pip install` user has it

Each sample is a new ``python -c`` that times only the import (``perf_counter`` for wall, ``process_time`` for
CPU): interpreter start-up is left out. The *floor* is importing the two runtime dependencies alone (httpx and
pydantic's ``BaseModel``), sampled in turn with the package, so the difference is this package's own share. The
breakdown groups ``-X importtime``'s self times: this package, pydantic, httpx's stack, httpx's optional
command-line modules (rich, click, pygments: httpx imports them whenever click is installed, e.g. by
llama-index-core's nltk) and the rest. The load average is printed because a busy machine inflates every number:
the budget is for an idle one. Runs from a temporary directory, so the interpreter's installed package is measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict

BUDGET_MS = 120.0
FLOOR = "httpx, pydantic.main"
REST = "standard library and the rest"
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
    "import time; w = time.perf_counter(); c = time.process_time(); import {modules}; "
    "print(time.perf_counter() - w, time.process_time() - c)"
)
_WORKDIR = tempfile.gettempdir()  # not the checkout: its flowise_integrations/ would shadow the installed one


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True, cwd=_WORKDIR)


def timed_import(modules: str) -> tuple[float, float]:
    """(wall ms, CPU ms) of importing ``modules`` in a fresh interpreter."""
    wall, cpu = _python("-c", _TIMED.format(modules=modules)).stdout.split()
    return float(wall) * 1000, float(cpu) * 1000


def group_of(name: str) -> str:
    """The report group of one imported module (the most specific prefix wins)."""
    best, length = REST, -1
    for group, prefixes in GROUPS.items():
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > length:
                best, length = group, len(prefix)
    return best


def self_times(code: str) -> dict[str, float]:
    """Self time (ms) of every module ``-X importtime`` reports while running ``code``."""
    times: dict[str, float] = {}
    for line in _python("-X", "importtime", "-c", code).stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            self_us, _cumulative, name = line.removeprefix("import time:").split("|")
            times[name.strip()] = int(self_us) / 1000
    return times


def profile(module: str, runs: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median self time (ms) per group and per module over ``runs`` imports (start-up modules left out)."""
    startup = set(self_times("pass"))
    per_group: dict[str, list[float]] = defaultdict(list)
    per_module: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):
        groups: dict[str, float] = dict.fromkeys([*GROUPS, REST], 0.0)
        for name, ms in self_times(f"import {module}").items():
            if name not in startup:
                groups[group_of(name)] += ms
                per_module[name].append(ms)
        for name, ms in groups.items():
            per_group[name].append(ms)
    return (
        {name: statistics.median(values) for name, values in per_group.items()},
        {name: statistics.median(values + [0.0] * (runs - len(values))) for name, values in per_module.items()},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", default="flowise_integrations")
    parser.add_argument("--runs", type=int, default=21, help="timed fresh-interpreter imports (default 21)")
    parser.add_argument("--profiles", type=int, default=7, help="-X importtime runs for the breakdown (default 7)")
    parser.add_argument("--budget-ms", type=float, default=BUDGET_MS)
    parser.add_argument("--check", action="store_true", help="exit 1 when the median wall time exceeds the budget")
    args = parser.parse_args(argv)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    origin = _python("-c", f"import {args.module} as m; print(m.__file__)").stdout.strip()
    print(f"import {args.module}  ({origin})")
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.2f}")
    samples, floor = [], []
    for _ in range(args.runs):  # interleaved, so that both see the same load
        samples.append(timed_import(args.module))
        floor.append(timed_import(FLOOR))
    walls, cpus = [w for w, _ in samples], [c for _, c in samples]
    median, floor_median = statistics.median(walls), statistics.median(w for w, _ in floor)
    print(f"  wall   median {median:6.1f} ms  (min {min(walls):.1f}, max {max(walls):.1f}; {args.runs} interpreters)")
    print(f"  CPU    median {statistics.median(cpus):6.1f} ms")
    print(f"  floor  median {floor_median:6.1f} ms  (import {FLOOR} alone)")
    print(f"  own    median {median - floor_median:6.1f} ms  (the package's share: wall minus floor)")

    groups, modules = profile(args.module, args.profiles)
    print(f"  self time by group (median of {args.profiles} `-X importtime` runs, which add overhead of their own):")
    for name, ms in sorted(groups.items(), key=lambda item: -item[1]):
        print(f"    {ms:6.1f} ms  {name}")
    print("  the ten most expensive modules (self time):")
    for name, ms in sorted(modules.items(), key=lambda item: -item[1])[:10]:
        print(f"    {ms:6.1f} ms  {name}")

    verdict = "within" if median <= args.budget_ms else "over"
    print(f"  budget {args.budget_ms:.0f} ms wall on an idle machine: {verdict} ({median:.1f} ms at load {load:.2f})")
    return 1 if args.check and median > args.budget_ms else 0


if __name__ == "__main__":
    sys.exit(main())
