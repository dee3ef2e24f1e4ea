"""Helpers for the LangChain wing's tests: transport-wired clients and the standard suites' shared config."""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flowise_integrations.langchain import ChatFlowise
from flowise_integrations.testing import FakeFlow, FakeFlowise

BASE_URL = "http://flowise.test"


def transport_clients(fake: FakeFlowise) -> dict[str, Any]:
    """``base_url`` + ``http_client`` / ``http_async_client`` answering from ``fake`` in-process (no sockets)."""
    return {
        "base_url": BASE_URL,
        "http_client": httpx.Client(transport=fake.transport(), base_url=BASE_URL),
        "http_async_client": httpx.AsyncClient(transport=fake.async_transport(), base_url=BASE_URL),
    }


# A 1x1 PNG: the media tests download their sample image / PDF / WAV themselves (httpx.get) before calling the
# model; those downloads, not the model, are served locally so the suite stays offline.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


CANNED = "Hello from the fake LLM! This answer is streamed token by token."


def _sample(schema: dict[str, Any], name: str = "value") -> Any:
    """A value of the JSON ``schema`` (what an instruction-following model would fill in)."""
    kind = schema.get("type")
    if "anyOf" in schema:
        return _sample(next(s for s in schema["anyOf"] if s.get("type") != "null"), name)
    if kind == "object" or "properties" in schema:
        return {key: _sample(sub, key) for key, sub in schema.get("properties", {}).items()}
    return {"integer": 1, "number": 1.5, "boolean": True, "array": []}.get(str(kind), f"a {name}")


def follows_format_instructions(body: dict[str, Any]) -> str:
    """A fake model's answer: a JSON object matching the schema ``with_structured_output`` appended to the
    question (its last line), else the canned text."""
    question = body.get("question") or ""
    marker = "must conform to this JSON schema"
    if marker not in question:
        return CANNED
    schema = json.loads(question.rsplit("\n", 1)[-1])
    return json.dumps(_sample(schema))


def make_fake() -> tuple[FakeFlowise, str, str]:
    """A FakeFlowise with the suite's flow (an agentflow: it reports usage; it answers format instructions with
    JSON) and the override flow."""
    fake = FakeFlowise()
    main = fake.add_flow(
        FakeFlow(
            kind="agentflow",
            respond=follows_format_instructions,
            source_documents=[{"pageContent": "Flowise is a low-code tool.", "metadata": {"source": "faq.md"}}],
        )
    )
    other = fake.add_flow(FakeFlow(answer="The override flow answers instead."))
    return fake, main, other


class FlowiseStandardConfig:
    """Properties both integration-suite subclasses share (mixed in before ``ChatModelIntegrationTests``)."""

    fake: FakeFlowise
    main_flow: str
    other_flow: str

    @property
    def chat_model_class(self) -> type[ChatFlowise]:
        return ChatFlowise

    @property
    def model_override_value(self) -> str:
        return self.other_flow

    @property
    def has_tool_calling(self) -> bool:
        return False  # bind_tools raises: the flow runs its own tools (agents get FlowiseTool/FlowiseToolkit)

    @property
    def has_structured_output(self) -> bool:
        return True  # format instructions + parsing; the suite's flow answers them with schema-shaped JSON

    @property
    def returns_usage_metadata(self) -> bool:
        return True  # the suite's flow is an agentflow, which streams `usageMetadata`

    @property
    def supports_image_inputs(self) -> bool:
        return True  # image blocks become Flowise uploads

    @property
    def supports_image_urls(self) -> bool:
        return True  # sent as `{"type": "url"}` uploads; Flowise fetches them

    @property
    def supports_pdf_inputs(self) -> bool:
        return True  # file blocks become `file:full` uploads (Flowise's full-file uploads)

    @property
    def supports_audio_inputs(self) -> bool:
        return True  # audio blocks become `audio` uploads (Flowise's speech-to-text)

    @pytest.fixture(autouse=True)
    def _offline_sample_image(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def fake_get(url: str, **kwargs: Any) -> httpx.Response:
            return httpx.Response(200, content=PNG, request=httpx.Request("GET", url))

        monkeypatch.setattr("langchain_tests.integration_tests.chat_models.httpx.get", fake_get)
        monkeypatch.setenv("LANGCHAIN_TESTS_USER_AGENT", "flowise-integrations tests (served locally)")


_SERVER = r"""
import json, sys
from flowise_integrations.testing import FakeFlowise, FakeFlow
fake = FakeFlowise()
ids = {name: fake.add_flow(FakeFlow(**kwargs)) for name, kwargs in json.loads(sys.argv[1]).items()}
with fake.serve() as base_url:
    print(json.dumps({"base_url": base_url, "flows": ids}), flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def server_process(**flows: dict[str, Any]) -> Iterator[tuple[str, dict[str, str]]]:
    """FakeFlowise's loopback server in its own process (its CPU never competes with the client under test).

    Yields ``(base_url, {name: flow_id})`` for ``name=FakeFlow kwargs``.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, json.dumps(flows)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        yield info["base_url"], info["flows"]
    finally:
        proc.terminate()
        proc.wait(10)
