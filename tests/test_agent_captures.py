"""The real agent-flow captures (3.1.4 and 2.2.8) replay through the client, sync and async, JSON and streamed.

Recorded by ``tests/e2e/refresh_captures.py``; each prediction capture has ``NAME.llm.json``, the model calls the
fake LLM logged while Flowise answered it. So the usage a replayed prediction reports is checked against what the
model really billed for that one request (a resumed run included), never against Flowise's own node totals.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowise_integrations import AsyncFlowiseClient, FlowiseClient, FlowiseError, NotResumableError, Prediction

FIXTURES = Path(__file__).parent / "fixtures"
CAPTURE_DIRS = {"3.1.4": FIXTURES / "real_captures", "2.2.8": FIXTURES / "real_captures_2.2.8"}


@dataclass(frozen=True)
class AgentCapture:
    version: str
    name: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    request: dict[str, Any]
    llm: dict[str, Any]

    @property
    def streamed(self) -> bool:
        return bool(self.request.get("streaming"))


def load(version: str, name: str) -> AgentCapture:
    folder = CAPTURE_DIRS[version]
    raw = (folder / f"{name}.txt").read_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(k, v) for k, _, v in (line.partition(": ") for line in lines)]
    request = json.loads((folder / f"{name}.request.json").read_text())
    llm = json.loads((folder / f"{name}.llm.json").read_text())
    return AgentCapture(version, name, int(status_line.split(" ")[1]), headers, body, request, llm)


def agent_predictions() -> list[tuple[str, str]]:
    """(version, name) of every agents-group prediction capture with a model log."""
    out = []
    for version, folder in CAPTURE_DIRS.items():
        manifest = json.loads((folder / "manifest.json").read_text())
        for name, entry in manifest["captures"].items():
            if entry.get("group") == "agents" and "llm_calls" in entry:
                out.append((version, name))
    return sorted(out)


CASES = agent_predictions()


def handler(capture: AgentCapture) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        headers = [(k, v) for k, v in capture.headers if k.lower() not in ("transfer-encoding", "content-length")]
        return httpx.Response(capture.status, headers=headers, content=capture.body)

    return handle


def replay_sync(capture: AgentCapture) -> Prediction | FlowiseError:
    http = httpx.Client(transport=httpx.MockTransport(handler(capture)))
    client = FlowiseClient("http://flowise.test", http_client=http, diagnose_after=None)
    try:
        if not capture.streamed:
            return client.predict("flow", "hi")
        with client.stream("flow", "hi") as stream:
            list(stream)
        return stream.result
    except FlowiseError as exc:
        return exc


async def replay_async(capture: AgentCapture) -> Prediction | FlowiseError:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler(capture)))
    client = AsyncFlowiseClient("http://flowise.test", http_client=http, diagnose_after=None)
    try:
        if not capture.streamed:
            return await client.predict("flow", "hi")
        async with client.stream("flow", "hi") as stream:
            async for _ in stream:
                pass
        return stream.result
    except FlowiseError as exc:
        return exc


def billed(capture: AgentCapture) -> tuple[int, int, int]:
    usage = capture.llm["usage"]
    return usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]


def check(capture: AgentCapture, outcome: Prediction | FlowiseError) -> None:
    if "_resume_finished_" in capture.name:
        assert isinstance(outcome, NotResumableError), outcome
        return
    if "resume_unknown_session" in capture.name or "with_question" in capture.name:
        assert isinstance(outcome, FlowiseError) and "predictionsServices.buildChatflow" in str(outcome), outcome
        return
    assert isinstance(outcome, Prediction), outcome
    stopped = "_stop" in capture.name
    assert outcome.finish_reason == ("stopped" if stopped else "stop")
    assert (outcome.interrupt is not None) == stopped
    assert outcome.streamed == capture.streamed
    replies = [c["reply"]["text"] for c in capture.llm["calls"] if c["reply"]["text"] is not None]
    if capture.name.startswith("af_iteration") and not capture.streamed:
        assert outcome.text == "\n".join(replies)  # one model reply per item (streamed: no token, see e2e)
    elif not stopped and replies and not capture.name.startswith(("af_iteration", "af_loop")):
        assert outcome.text == replies[-1]  # the answer is the last model reply
    if capture.name.startswith(("multiagent", "sequential")):
        assert outcome.usage is None  # agentflow V1 reports no usage
        assert outcome.agent_reasoning
        return
    usage = outcome.usage
    reported = (0, 0, 0) if usage is None else (usage.input_tokens, usage.output_tokens, usage.total_tokens)
    assert reported == billed(capture)


@pytest.mark.parametrize(("version", "name"), CASES)
def test_agent_capture_replays_sync(version: str, name: str) -> None:
    check(load(version, name), replay_sync(load(version, name)))


@pytest.mark.parametrize(("version", "name"), CASES)
async def test_agent_capture_replays_async(version: str, name: str) -> None:
    check(load(version, name), await replay_async(load(version, name)))


def test_every_stop_capture_has_its_resume() -> None:
    """Stop-and-resume captures come in pairs: ``..._stop_then_<decision>`` then ``..._resume_<decision>``."""
    names = {name for _, name in CASES}
    stops = [n for n in names if "_stop_then_" in n]
    assert stops
    for stop in stops:
        stem, decision = stop.split("_stop_then_")
        assert f"{stem}_resume_{decision}" in names
