"""``flowise-integrations demo``: three demo flows on the built-in emulator, shown through every layer."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from .cli import Console, _wing_answer, render_extras, run_core
from .client import FlowiseClient
from .testing import FakeFlow, FakeFlowise

_DOCS = [
    {
        "pageContent": "Flowise is an open source low-code tool for building customized LLM orchestration flows.",
        "metadata": {"source": "docs/introduction.md", "loc": {"lines": {"from": 1, "to": 1}}},
    },
    {
        "pageContent": "Every chatflow can be called over REST: POST /api/v1/prediction/{id}.",
        "metadata": {"source": "docs/api.md", "loc": {"lines": {"from": 12, "to": 12}}},
    },
]
DEMO_FLOWS: list[tuple[str, str, FakeFlow]] = [
    (
        "Docs Q&A - a retrieval chatflow with sources",
        "What is Flowise?",
        FakeFlow(
            name="docs-qa",
            answer="Flowise is an open source low-code tool for building LLM flows, and every flow is also a REST API.",
            source_documents=_DOCS,
            token_delay=0.02,
            follow_up_prompts=["How do I call a flow over REST?", "Can a flow stream?"],
        ),
    ),
    (
        "Calculator - a tool agent",
        "What is 2 + 2?",
        FakeFlow(
            name="calculator",
            answer="The calculator says 2 + 2 = 4.",
            token_delay=0.02,
            used_tools=[{"tool": "calculator", "toolInput": {"input": "2 + 2"}, "toolOutput": "4"}],
            memory_type="Buffer Memory",
        ),
    ),
    (
        "Translator - an agentflow v2 (node progress and token usage)",
        "Translate 'hello world' to French.",
        FakeFlow(name="translator", kind="agentflow", answer="Bonjour tout le monde !", token_delay=0.02),
    ),
]


def available_vias(vias: Sequence[str]) -> tuple[list[str], list[str]]:
    """The requested layers whose framework is installed, and those skipped."""
    need = {"langchain": "langchain_core", "llama-index": "llama_index.core"}
    ok: list[str] = []
    skipped: list[str] = []
    for via in vias:
        module = need.get(via)
        installed = module is None or importlib.util.find_spec(module.split(".")[0]) is not None
        (ok if installed else skipped).append(via)
    return ok, skipped


def run_demo(console: Console, *, vias: Sequence[str], json_lines: bool = False) -> int:
    """Serve the demo flows on a loopback FakeFlowise and ask each through each layer."""
    layers, skipped = available_vias(vias)
    for via in skipped:
        console.line(f"(skipping --via {via}: install flowise-integrations[all])", style="yellow")
    fake = FakeFlowise()
    flows = [(title, question, fake.add_flow(flow)) for title, question, flow in DEMO_FLOWS]
    with fake.serve() as base_url, FlowiseClient(base_url) as client:
        console.line(
            f"FakeFlowise (the built-in Flowise {fake.version} emulator) is serving on {base_url}", style="dim"
        )
        for title, question, flow_id in flows:
            console.line("")
            console.line(f"== {title} ==", style="bold")
            for via in layers:
                console.line(f"[{via}] you> {question}", style="cyan")
                if via == "core":
                    result = run_core(
                        client, flow_id, question, session_id=None, console=console, json_lines=json_lines
                    )
                else:
                    result = _wing_answer(via, client, flow_id, question, None, console)
                if not json_lines:
                    render_extras(console, result)
    console.line("")
    console.line("Point `flowise-integrations chat --base-url URL --chatflow ID` at your own server next.", style="dim")
    return 0
