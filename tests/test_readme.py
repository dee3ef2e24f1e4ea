"""Every Python block of README.md runs as written, against FakeFlowise.

Each block runs in a fresh interpreter with ``FLOWISE_BASE_URL`` pointing at a loopback emulator that serves the
README's example flow ids (``EXAMPLE_FLOWS``), so a block that talks to "your server" really does. An HTML comment
on the line before a block's fence changes how it runs:

    <!-- readme-test: continue -->          the block goes on from the block before (same namespace)
    <!-- readme-test: notebook -->          a notebook cell: top-level ``await`` is allowed
    <!-- readme-test: skip: <reason> -->    not run; the reason says why (a real server, a third-party model...)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flowise_integrations.testing import FakeFlow, FakeFlowise

README = Path(__file__).resolve().parent.parent / "README.md"
_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(r"^<!--\s*readme-test:\s*(?P<body>.*?)\s*-->\s*$")
_FLOW_ID_LITERAL = re.compile(  # a flow id written out: chatflow_id="...", invoke(..., model="..."), --chatflow ...
    r"""(?:chatflow_id\s*=\s*["']|invoke\([^)]*model\s*=\s*["']|--chatflow\s+)([^"'\s,)]+)"""
)
_PLACEHOLDER_ID = re.compile(r"""<[\w ]{0,40}\bid\b[\w ]{0,40}>|["'][0-9a-f]{2,8}\.\.\.["']""")

# the flow ids the README's examples use, and what the emulator answers for each
EXAMPLE_FLOWS = {
    "b8c4e1f0-6a2d-4f7e-9c3b-5d1a0e8f2b47": FakeFlow(
        name="Company policies",
        answer="Refunds are accepted within 30 days of purchase.",
        source_documents=[
            {"pageContent": "Refunds: 30 days from purchase.", "metadata": {"source": "policies/refunds.md"}}
        ],
        used_tools=[{"tool": "policy_lookup", "toolInput": {"topic": "refunds"}, "toolOutput": "30 days"}],
        follow_up_prompts=["And for digital goods?"],
    ),
    "3e9a7d52-0c4b-4b8e-a1f6-7d2c9e5b8a13": FakeFlow(
        name="Calculator",
        answer="2 + 2 = 4.",
        used_tools=[{"tool": "calculator", "toolInput": {"input": "2 + 2"}, "toolOutput": "4"}],
    ),
}

RUNNER = r"""
import ast, asyncio, inspect, json, sys
blocks = json.loads(sys.stdin.read())
namespace = {"__name__": "__main__"}
loop = asyncio.new_event_loop()
for block in blocks:
    source = "\n" * (block["line"] - 1) + block["code"]  # tracebacks show README.md's own line numbers
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if block["notebook"] else 0
    result = eval(compile(source, "README.md", "exec", flags=flags), namespace)
    if inspect.iscoroutine(result):
        loop.run_until_complete(result)
"""


@dataclass
class Block:
    line: int  # of the first code line
    code: str
    flags: set[str] = field(default_factory=set)
    skip: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"line": self.line, "code": self.code, "notebook": "notebook" in self.flags}


def python_blocks(text: str) -> list[Block]:
    """The ```python blocks of ``text`` with their markers."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        if fence.group(1) == "python":
            block = Block(line=i + 2, code="\n".join(lines[i + 1 : end]) + "\n")
            marker = _MARKER.match(lines[i - 1]) if i > 0 else None
            if marker is not None:
                body = marker.group("body")
                if body.startswith("skip:"):
                    block.skip = body.removeprefix("skip:").strip()
                else:
                    block.flags = {flag.strip() for flag in body.split(",")}
            blocks.append(block)
        i = end + 1
    return blocks


def sessions(blocks: list[Block]) -> list[list[Block]]:
    """Runnable blocks grouped into interpreter sessions: a ``continue`` block joins the one before."""
    grouped: list[list[Block]] = []
    for block in blocks:
        if block.skip is not None:
            continue
        if "continue" in block.flags and grouped:
            grouped[-1].append(block)
        else:
            grouped.append([block])
    return grouped


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))
SESSIONS = sessions(BLOCKS)


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    fake = FakeFlowise()
    for flow_id, flow in EXAMPLE_FLOWS.items():
        flow.id = flow_id
        fake.add_flow(flow)
    with fake.serve() as base_url:
        yield base_url


@pytest.mark.parametrize("session", SESSIONS, ids=[f"line-{s[0].line}" for s in SESSIONS])
def test_the_block_runs(session: list[Block], emulator: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWISE_")}
    env.update(FLOWISE_BASE_URL=emulator, PYTHONUNBUFFERED="1", NO_COLOR="1", OPENAI_API_KEY="")
    result = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps([b.to_json() for b in session]),
        capture_output=True,
        text=True,
        cwd=tmp_path,  # files a block writes stay out of the repo
        env=env,
        timeout=300,
        check=False,
    )
    where = ", ".join(f"README.md:{b.line}" for b in session)
    assert result.returncode == 0, f"{where} failed:\n{result.stderr[-3000:]}"


def test_every_skip_says_why_and_most_blocks_run() -> None:
    assert len(BLOCKS) >= 15
    for block in BLOCKS:
        if block.skip is not None:
            assert len(block.skip) >= 15, f"README.md:{block.line}: a skip marker needs a reason a user accepts"
    skipped = [b for b in BLOCKS if b.skip is not None]
    assert len(skipped) <= 3, [f"README.md:{b.line}" for b in skipped]


def test_a_continuation_follows_a_block() -> None:
    assert "continue" not in BLOCKS[0].flags
    for block in BLOCKS:
        assert block.flags <= {"continue", "notebook"}, f"README.md:{block.line}: unknown marker {block.flags}"


def test_ids_in_examples_are_valid() -> None:
    text = README.read_text(encoding="utf-8")
    ids = _FLOW_ID_LITERAL.findall(text)
    assert len(ids) >= 10
    for value in ids:
        try:
            uuid.UUID(value)
        except ValueError:
            pytest.fail(f"{value!r} in README.md is not a valid flow id")
    assert not _PLACEHOLDER_ID.findall(text)


def test_the_two_commands_are_exactly_the_documented_ones() -> None:
    text = README.read_text(encoding="utf-8")
    assert (
        'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[all]" && flowise-integrations demo'
    ) in text
    assert (
        "python3 -m venv .venv && . .venv/bin/activate && pip install -U pip && pip install -e . --group dev"
        " && python tests/e2e/harness.py install && pytest"
    ) in text


def test_the_exit_codes_table_matches_the_command() -> None:
    from flowise_integrations.cli import EXIT_CODES

    text = README.read_text(encoding="utf-8")
    for code in EXIT_CODES:
        assert re.search(rf"^\| {code} \| ", text, re.MULTILINE), f"exit code {code} is not in README's table"
