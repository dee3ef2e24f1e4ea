"""The e2e matrix: which Flowise releases are installed and how each target runs them (stdlib only).

A *release* is one npm install (Flowise version, Node, package.json, committed lockfile). A *target* is a
release run in a *mode*: ``normal`` (one process, SQLite) or ``queue`` (Redis + Postgres, a main server and
two workers). ``FLOWISE_E2E_TARGETS`` (comma separated names, e.g. ``3.1.4,2.2.8``) picks a subset; the
default is every target.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

HERE = Path(__file__).resolve().parent
LOCKFILES = HERE / "lockfiles"

Mode = Literal["normal", "queue"]


@dataclasses.dataclass(frozen=True)
class Release:
    """One Flowise version as installed from npm."""

    flowise: str
    node: str  # exact Node version (system node if it has this major, else ``node-linux-<arch>@<node>``)
    node_from_npm_always: bool  # True: never the machine's node (Flowise 3.1.3+ needs Node 24)
    overrides: tuple[tuple[str, str], ...] = ()  # npm ``overrides`` (name, range)
    extra_dependencies: tuple[tuple[str, str], ...] = ()  # modules Flowise requires without declaring them
    tiktoken_preload: bool = True  # the offline js-tiktoken shim (see offline_tiktoken.js)
    agentflow_v2: bool = True  # Agentflow V2 (``type: AGENTFLOW``) exists from Flowise 3.0
    accounts: bool = True  # 3.x: register + login + permissioned API keys; 2.x: none of that

    @property
    def major(self) -> int:
        return int(self.flowise.split(".")[0])

    @property
    def node_major(self) -> int:
        return int(self.node.split(".")[0])

    @property
    def lockfile(self) -> Path:
        """The committed ``package-lock.json`` that ``npm ci`` installs from."""
        return LOCKFILES / self.flowise / "package-lock.json"

    def package_json(self) -> dict[str, object]:
        manifest: dict[str, object] = {
            "name": "flowise-integrations-e2e",
            "version": "0.0.0",
            "private": True,
            "description": "Real Flowise for flowise-integrations end-to-end tests",
            "dependencies": {"flowise": self.flowise, **dict(self.extra_dependencies)},
        }
        if self.overrides:
            manifest["overrides"] = dict(self.overrides)
        return manifest


RELEASES: dict[str, Release] = {
    "3.1.4": Release(
        flowise="3.1.4",
        node="24.9.0",
        node_from_npm_always=True,
        # 9.x (peer dep of mem0ai/@langchain/community/typeorm) does not build against Node 24.
        overrides=(("better-sqlite3", "^12.4.1"),),
    ),
    "2.2.8": Release(
        flowise="2.2.8",
        node="20.20.2",
        node_from_npm_always=False,  # engines: "^20"; the machine's Node 20 is used when present
        # dist/queue/RedisEvent*.js require('redis') but flowise@2.2.8 does not declare it: it relied on
        # flowise-components' redis@^4.6.7 being hoisted, which today's resolution nests instead.
        extra_dependencies=(("redis", "^4.6.7"),),
        tiktoken_preload=False,  # its @langchain/openai does not fetch tiktoken ranks after a stream
        agentflow_v2=False,
        accounts=False,
    ),
}


@dataclasses.dataclass(frozen=True)
class Target:
    """A release run in one mode: what the session fixture is parametrized over."""

    name: str
    release: Release
    mode: Mode = "normal"

    @property
    def version(self) -> str:
        return self.release.flowise

    @property
    def queue(self) -> bool:
        return self.mode == "queue"


TARGETS: dict[str, Target] = {
    "3.1.4": Target("3.1.4", RELEASES["3.1.4"]),
    "3.1.4-queue": Target("3.1.4-queue", RELEASES["3.1.4"], "queue"),
    "2.2.8": Target("2.2.8", RELEASES["2.2.8"]),
}
DEFAULT_TARGET = "3.1.4"


def parse_targets(spec: str | None) -> list[Target]:
    """``"3.1.4,2.2.8"`` -> those targets, in matrix order; empty/None -> all. Unknown names raise ValueError."""
    if not spec or not spec.strip():
        return list(TARGETS.values())
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        raise ValueError(f"unknown e2e target(s) {unknown}; known: {', '.join(TARGETS)}")
    return [t for name, t in TARGETS.items() if name in names]


def selected_targets(env: Mapping[str, str] = os.environ) -> list[Target]:
    """The targets named by ``FLOWISE_E2E_TARGETS`` (default: every target)."""
    return parse_targets(env.get("FLOWISE_E2E_TARGETS"))


def releases_of(targets: list[Target]) -> list[Release]:
    """The distinct releases the targets need, in order."""
    out: list[Release] = []
    for target in targets:
        if target.release not in out:
            out.append(target.release)
    return out
