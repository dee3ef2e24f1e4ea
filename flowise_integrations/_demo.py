"""``flowise-integrations demo``: three demo flows on the built-in emulator, shown through every layer."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .cli import Console, Question, ask, missing_extra, show_result
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


def run_demo(console: Console, *, vias: Sequence[str]) -> int:
    """Serve the demo flows on a loopback FakeFlowise and ask each through each installed layer."""
    layers = []
    for via in vias:
        missing = missing_extra(via)
        if missing is None:
            layers.append(via)
        else:  # the demo still shows the others
            print(f"note: skipping {missing}", file=sys.stderr)
    fake = FakeFlowise()
    flows = [(title, question, fake.add_flow(flow)) for title, question, flow in DEMO_FLOWS]
    with fake.serve() as base_url, FlowiseClient(base_url) as client:
        if console.json_lines:
            console.emit({"demo": {"emulator": base_url, "flowise_version": fake.version, "vias": layers}})
        else:
            console.line(f"FakeFlowise (the built-in Flowise {fake.version} emulator) is serving on {base_url}", "dim")
        for title, question, flow_id in flows:
            if not console.json_lines:
                console.line("")
                console.line(f"== {title} ==", style="bold")
            for via in layers:
                if console.json_lines:
                    console.emit({"demo": {"flow": title, "chatflow_id": flow_id, "via": via, "question": question}})
                else:
                    console.line(f"[{via}] you> {question}", style="cyan")
                show_result(console, via, ask(via, client, Question(flow_id, question), console))
    if not console.json_lines:
        console.line("")
        console.line("Next: `flowise-integrations ping|flows|chat --base-url URL` against your own server.", "dim")
    return 0
