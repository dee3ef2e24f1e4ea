"""Human in the loop through the client, replayed from real Flowise 3.1.4 stop/resume captures.

For every recorded pair (``..._stop_then_<decision>`` then ``..._resume_<decision>``) the client must: surface
the stop as ``Prediction.interrupt`` (streamed or not, the same), send exactly the resume body Flowise's UI sends,
and bill only the model calls of each request (checked against the fake LLM's own log).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowise_integrations import AsyncFlowiseClient, FlowiseClient
from flowise_integrations.errors import BadRequestError, NotResumableError

CAPTURES = Path(__file__).parent / "fixtures" / "real_captures"
PAIRS = sorted(
    (p.name.removesuffix(".request.json"), p.name.removesuffix(".request.json").replace("_stop_then_", "_resume_"))
    for p in CAPTURES.glob("*_stop_then_*.request.json")
)


def response_of(name: str) -> httpx.Response:
    head, _, body = (CAPTURES / f"{name}.txt").read_bytes().partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = [tuple(line.split(b": ", 1)) for line in head.split(b"\r\n")[1:]]
    keep = [(k, v) for k, v in headers if k.lower() not in (b"transfer-encoding", b"content-length")]
    return httpx.Response(status, headers=keep, content=body)


def billed(name: str) -> tuple[int, int]:
    calls = json.loads((CAPTURES / f"{name}.llm.json").read_text())["calls"]
    usage = [c["reply"]["usage"] for c in calls if c["reply"].get("usage")]
    return sum(u["prompt_tokens"] for u in usage), sum(u["completion_tokens"] for u in usage)


def replay(*names: str) -> tuple[list[dict[str, Any]], httpx.MockTransport]:
    sent: list[dict[str, Any]] = []
    answers = iter(names)

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return response_of(next(answers))

    return sent, httpx.MockTransport(handle)


@pytest.mark.skipif(not PAIRS, reason="no stop/resume captures recorded")
@pytest.mark.parametrize(("stop", "resume"), PAIRS)
def test_a_real_stop_becomes_an_interrupt_and_resumes_like_flowises_ui(stop: str, resume: str) -> None:
    stop_request = json.loads((CAPTURES / f"{stop}.request.json").read_text())
    resume_request = json.loads((CAPTURES / f"{resume}.request.json").read_text())
    sent, transport = replay(stop, resume)
    client = FlowiseClient("http://flowise.test", http_client=httpx.Client(transport=transport), diagnose_after=None)
    streaming = bool(stop_request.get("streaming"))
    ids = {"chat_id": stop_request.get("chatId")}
    if "overrideConfig" in stop_request:
        ids["session_id"] = stop_request["overrideConfig"]["sessionId"]
    if streaming:
        stopped = client.stream("flow", stop_request["question"], **ids).until_done()  # type: ignore[arg-type]
    else:
        stopped = client.predict("flow", stop_request["question"], **ids)  # type: ignore[arg-type]

    assert stopped.finish_reason == "stopped"
    interrupt = stopped.interrupt
    assert interrupt is not None
    if interrupt.protocol == "agentflow_v2":
        assert stopped.agent_flow_status == "STOPPED" and interrupt.node_id
    assert (interrupt.chat_id, interrupt.session_id) == (ids.get("chat_id"), ids.get("session_id"))
    v2 = interrupt.protocol == "agentflow_v2"  # sequential agents (v1) report no usage at all
    if v2:
        assert stopped.usage is not None
        assert (stopped.usage.input_tokens, stopped.usage.output_tokens) == billed(stop)

    if "humanInput" in resume_request:  # agentflow v2
        approve = resume_request["humanInput"]["type"] == "proceed"
        feedback = resume_request["humanInput"].get("feedback")
    else:  # sequential agents answer with the action and its label
        approve, feedback = resume_request["question"] == interrupt.label(True), None
    if streaming:
        resumed = client.resume_stream("flow", interrupt=interrupt, approve=approve, feedback=feedback).until_done()
    else:
        resumed = client.resume("flow", interrupt=interrupt, approve=approve, feedback=feedback)

    body = dict(sent[1])
    assert body == resume_request  # exactly what was sent to the real server (which then resumed)
    assert resumed.finish_reason == "stop" and resumed.interrupt is None
    if not v2 or billed(resume) == (0, 0):  # v1, or a rejected draft that ends without a model call
        assert resumed.usage is None or resumed.usage.total_tokens == 0
    else:
        assert resumed.usage is not None
        assert (resumed.usage.input_tokens, resumed.usage.output_tokens) == billed(resume)
        assert resumed.usage.total_tokens == resumed.usage.input_tokens + resumed.usage.output_tokens


async def test_resume_by_session_without_an_interrupt_sends_flowises_default_body() -> None:
    sent: list[dict[str, Any]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"text": "done", "chatId": "c", "sessionId": "s"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    client = AsyncFlowiseClient("http://flowise.test", http_client=http, diagnose_after=None)
    await client.resume("flow", session_id="s", approve=False)
    assert sent == [{"question": "Reject", "overrideConfig": {"sessionId": "s"}, "humanInput": {"type": "reject"}}]


def test_resume_needs_to_know_which_run() -> None:
    client = FlowiseClient(
        "http://flowise.test", http_client=httpx.Client(transport=httpx.MockTransport(lambda r: 1 / 0))
    )  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="chat_id or session_id"):
        client.resume("flow", approve=True)


@pytest.mark.parametrize("name", ["af_human_input_resume_finished_nonstream", "af_human_input_resume_finished_stream"])
def test_resuming_a_finished_run_is_a_typed_error(name: str) -> None:
    if not (CAPTURES / f"{name}.txt").exists():
        pytest.skip(f"capture {name} not recorded")
    _, transport = replay(name)
    client = FlowiseClient("http://flowise.test", http_client=httpx.Client(transport=transport), diagnose_after=None)
    call = client.resume_stream if name.endswith("_stream") else None
    with pytest.raises(NotResumableError, match="Cannot resume execution"):
        if call is not None:
            call("flow", chat_id="c", approve=True).until_done()
        else:
            client.resume("flow", chat_id="c", approve=True)
    assert issubclass(NotResumableError, BadRequestError)
