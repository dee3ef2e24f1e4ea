"""What the notebooks talk to: the built-in Flowise emulator with a few demo flows, or your own server.

By default :func:`connect` starts :class:`~flowise_integrations.testing.FakeFlowise` on 127.0.0.1 with the demo
flows below (scripted answers, sources, tool runs, an agentflow, a slow flow, a failing one). With
``FLOWISE_BASE_URL`` and ``FLOWISE_CHATFLOW_ID`` set (and ``FLOWISE_API_KEY`` if the flow needs one), the notebooks
use that server and that flow instead; the cells that need a particular demo flow say so and skip.
"""

from __future__ import annotations

import atexit
import os
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from flowise_integrations.testing import FakeFlow, FakeFlowise

__all__ = ["Server", "connect"]

DOCS = [
    {
        "pageContent": "Flowise is an open source low-code tool for building customized LLM orchestration flows.",
        "metadata": {"source": "docs/introduction.md", "loc": {"lines": {"from": 1, "to": 1}}},
    },
    {
        "pageContent": "Every chatflow can be called over REST: POST /api/v1/prediction/{id}.",
        "metadata": {"source": "docs/api.md", "loc": {"lines": {"from": 12, "to": 12}}},
    },
]
REFUND_POLICY = [
    {
        "pageContent": "Items can be returned within 30 days of delivery for a full refund.",
        "metadata": {"source": "policies/refunds.md", "title": "Refund policy"},
    }
]
CALCULATOR = [{"tool": "calculator", "toolInput": {"input": "3 * 19.99"}, "toolOutput": "59.97"}]

_NAME = re.compile(r"\bmy name is (\w+)", re.IGNORECASE)


def _memory_flow(fake: FakeFlowise) -> FakeFlow:
    """A chatflow with conversation memory: it remembers a name told earlier in the same session."""

    def respond(body: dict[str, Any]) -> str:
        question = str(body.get("question") or "")
        said = _NAME.search(question)
        if said:
            return f"Nice to meet you, {said.group(1)}!"
        session = (body.get("overrideConfig") or {}).get("sessionId") or body.get("chatId")
        earlier = [m["content"] for m in fake.chat_messages if m["role"] == "userMessage" and m["sessionId"] == session]
        earlier += [h.get("content", "") for h in body.get("history") or [] if h.get("role") == "userMessage"]
        names = [m.group(1) for m in map(_NAME.search, earlier) if m]
        return f"Your name is {names[-1]}." if names else "I don't know your name yet."

    return FakeFlow(name="memory", respond=respond, memory_type="Buffer Memory", token_delay=0.01)


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def _quote_context(body: dict[str, Any]) -> str:
    """A "model" answering from the context LlamaIndex put in its prompt: it quotes the passage closest to the query."""
    prompt = str(body.get("question") or "")
    parts = prompt.split("---------------------")
    passages = [line.strip() for line in (parts[1] if len(parts) > 2 else "").splitlines() if line.strip()]
    if not passages:
        return "The prompt had no context."
    query = _words(prompt.rpartition("Query:")[2].split("\n", 1)[0])
    return "According to the context: " + max(passages, key=lambda passage: len(query & _words(passage)))


def _demo_flows(fake: FakeFlowise) -> dict[str, FakeFlow]:
    return {
        "docs": FakeFlow(
            name="docs-qa",
            answer="Flowise is an open source low-code tool for building LLM flows, and every flow is also a REST API.",
            source_documents=DOCS,
            follow_up_prompts=["How do I call a flow over REST?", "Can a flow stream?"],
            token_delay=0.02,
        ),
        "calculator": FakeFlow(
            name="calculator",
            answer="Three items at 19.99 cost 59.97 in total.",
            used_tools=CALCULATOR,
            memory_type="Buffer Memory",
            token_delay=0.02,
        ),
        "policies": FakeFlow(
            name="policies",
            answer="Items can be returned within 30 days of delivery for a full refund.",
            source_documents=REFUND_POLICY,
            token_delay=0.02,
        ),
        "support": FakeFlow(
            name="support-agent",
            answer="You can return the items within 30 days; the refund for three at 19.99 is 59.97.",
            source_documents=REFUND_POLICY,
            used_tools=CALCULATOR,
            token_delay=0.02,
        ),
        "translator": FakeFlow(name="translator", kind="agentflow", answer="Bonjour tout le monde !", token_delay=0.02),
        "memory": _memory_flow(fake),
        "slow": FakeFlow(
            name="storyteller",
            kind="agentflow",
            answer="Once upon a time a very patient language model told a story that went on and on " * 3,
            token_delay=0.1,
        ),
        "failing": FakeFlow(
            name="flaky",
            answer="This answer will not get far.",
            error="Upstream model returned HTTP 500",
            error_after=2,
        ),
        "context": FakeFlow(name="quote-the-context", respond=_quote_context, token_delay=0.01),
    }


@dataclass
class Server:
    """Where the notebook's calls go: ``base_url``, ``api_key`` and the id of each demo flow."""

    base_url: str
    api_key: SecretStr | None = field(default=None, repr=False)
    fake: FakeFlowise | None = field(default=None, repr=False)
    flows: dict[str, str] = field(default_factory=dict)
    real_flow: str | None = None

    @property
    def is_fake(self) -> bool:
        return self.fake is not None

    def flow(self, name: str) -> str:
        """The id of a demo flow; against your server, always your ``FLOWISE_CHATFLOW_ID``."""
        if self.real_flow is not None:
            return self.real_flow
        return self.flows[name]

    def demo_only(self, name: str, why: str) -> str | None:
        """The id of a demo flow the next cell needs, or ``None`` (with a note) against your server."""
        if self.real_flow is not None:
            print(f"(skipped against {self.base_url}: this cell needs {why}, which only the demo flows have)")
            return None
        return self.flows[name]

    def close(self) -> None:
        """Stop the emulator (nothing to do for your own server)."""
        if self.fake is not None:
            self.fake.stop()
            print("FakeFlowise stopped.")


def connect() -> Server:
    """Your server from ``FLOWISE_BASE_URL``/``FLOWISE_CHATFLOW_ID``/``FLOWISE_API_KEY``, else a FakeFlowise."""
    base_url = os.environ.get("FLOWISE_BASE_URL", "").strip()
    if base_url:
        chatflow = os.environ.get("FLOWISE_CHATFLOW_ID", "").strip()
        if not chatflow:
            raise RuntimeError("FLOWISE_BASE_URL is set: set FLOWISE_CHATFLOW_ID to the id of a flow on that server")
        key = os.environ.get("FLOWISE_API_KEY", "").strip()
        server = Server(base_url, SecretStr(key) if key else None, real_flow=chatflow)
        print(f"Using your Flowise server at {base_url}, flow {chatflow}" + (" (with an API key)" if key else ""))
        return server
    fake = FakeFlowise()
    flows = {name: fake.add_flow(flow) for name, flow in _demo_flows(fake).items()}
    base_url = fake.start()
    atexit.register(fake.stop)
    print(
        f"FakeFlowise (the built-in Flowise {fake.version} emulator) is serving {len(flows)} demo flows on {base_url}"
    )
    return Server(base_url, fake=fake, flows=flows)
