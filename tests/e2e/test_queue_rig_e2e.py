"""Queue mode's lost-answer cases, forced by the rig and shown as raw bytes on the wire (issue 13).

Each test drives a real Flowise 3.1.4 in queue mode (main server + two workers + Redis + Postgres) with plain
httpx, forces one fault with :class:`queue_mode.QueueRig`, and checks both the symptom the client receives
and what Flowise stored (``GET /api/v1/chatmessage/{flow}?chatId=``), which is always the whole answer. These
are the raw facts the core's answer verification is built on; they run on queue-mode targets only.

``SLOW_STREAM`` makes the fake LLM send ``slow0 slow1 ... slow39``, 250 ms apart (10 s).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from flows import CANNED_ANSWER
from harness import RealFlowiseState
from queue_mode import QueueRig

pytestmark = pytest.mark.timeout(300)

SLOW_ANSWER = " ".join(f"slow{i}" for i in range(40))
TIMEOUT = httpx.Timeout(120.0, connect=5.0)


def frames(raw: bytes) -> list[dict[str, Any]]:
    """SSE frames: ``{"event", "data"}`` payloads, and ``{"comment": ...}`` for ``:heartbeat`` lines."""
    out: list[dict[str, Any]] = []
    for block in raw.decode().split("\n\n"):
        lines = [line for line in block.split("\n") if line]
        if lines and all(line.startswith(":") for line in lines):
            out.append({"comment": "\n".join(lines)})
        data = [line[5:] for line in lines if line.startswith("data:")]
        if data:
            out.append(json.loads("\n".join(data)))
    return out


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events if "event" in e]


def streamed_text(events: list[dict[str, Any]]) -> str:
    return "".join(e["data"] for e in events if e.get("event") == "token")


def stored_answer(state: RealFlowiseState, flow: str, chat_id: str) -> str:
    """The answer Flowise stored for the chat (the last ``apiMessage``), waiting briefly for it to land."""
    url = f"{state.base_url}/api/v1/chatmessage/{state.flows[flow]}"
    headers = {"Authorization": f"Bearer {state.api_key}"}
    deadline = time.monotonic() + 30
    while True:
        rows = httpx.get(url, params={"chatId": chat_id}, headers=headers, timeout=TIMEOUT).json()
        answers = [r["content"] for r in rows if r.get("role") == "apiMessage"]
        if answers or time.monotonic() > deadline:
            assert len(answers) == 1, rows
            return str(answers[0])
        time.sleep(0.5)


def stream_with_fault(
    state: RealFlowiseState, flow: str, question: str, *, at: bytes | None = None, fault: Any = None
) -> tuple[str, bytes]:
    """POST a streaming prediction; call ``fault()`` once ``at`` appears in the bytes; return (chat id, raw body)."""
    chat_id = str(uuid.uuid4())
    body = {"question": question, "streaming": True, "chatId": chat_id}
    raw, fired = b"", False
    with httpx.stream("POST", state.prediction_url(flow), json=body, timeout=TIMEOUT) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        for chunk in resp.iter_bytes():
            raw += chunk
            if fault is not None and not fired and at is not None and at in raw:
                fired = True
                fault()
    assert fault is None or fired, f"{at!r} never arrived: {raw[:500]!r}"
    return chat_id, raw


def test_a_worker_that_may_not_publish_sends_only_metadata_and_end(
    real_flowise: RealFlowiseState, queue_rig: QueueRig
) -> None:
    """The known Flowise queue-mode bug's exact symptom: no token reaches the client, the stream still ends
    normally (``metadata`` + ``end``), and the stored message is the whole answer."""
    with queue_rig.publish_blocked():
        chat_id, raw = stream_with_fault(real_flowise, "llm_chain", "hi")
    events = frames(raw)
    assert names(events) == ["metadata", "end"]
    assert events[-2]["data"]["chatId"] == chat_id
    assert stored_answer(real_flowise, "llm_chain", chat_id) == CANNED_ANSWER


def test_publishing_blocked_mid_stream_silently_cuts_the_answer(
    real_flowise: RealFlowiseState, queue_rig: QueueRig
) -> None:
    """Publishing blocked for 2 s after the third token: the tokens of that window never arrive, yet the stream
    ends exactly like a complete one; the stored message has every token."""
    chat_id, raw = stream_with_fault(
        real_flowise,
        "llm_chain",
        "SLOW_STREAM please",
        at=b'"data":" slow2"',
        fault=lambda: queue_rig.block_publish_for(2.0),
    )
    events = frames(raw)
    got = streamed_text(events).split()
    assert names(events)[-2:] == ["metadata", "end"] and "error" not in names(events)
    assert got[:3] == ["slow0", "slow1", "slow2"] and got[-1] == "slow39"
    missing = [w for w in SLOW_ANSWER.split() if w not in got]
    assert missing, "no token was lost: the publish block did not cut the stream"
    assert got == [w for w in SLOW_ANSWER.split() if w not in missing]  # nothing reordered or repeated
    assert stored_answer(real_flowise, "llm_chain", chat_id) == SLOW_ANSWER


def test_a_worker_killed_mid_stream_is_redelivered_and_the_text_repeats(
    real_flowise: RealFlowiseState, queue_rig: QueueRig
) -> None:
    """SIGKILL the worker running the job after three tokens: BullMQ reruns the stalled job on the other worker
    once its lock expires (~30-60 s), and that run's tokens reach the still-open stream. The client gets the
    first tokens, then the whole answer again, then a normal ending; Flowise stores the answer once."""
    killed: list[str] = []

    def kill_busy_worker() -> None:
        worker = queue_rig.busy_worker()
        killed.append(worker.name)
        queue_rig.kill_worker(worker)

    started = time.monotonic()
    chat_id, raw = stream_with_fault(
        real_flowise, "llm_chain", "SLOW_STREAM please", at=b'"data":" slow2"', fault=kill_busy_worker
    )
    elapsed = time.monotonic() - started
    events = frames(raw)
    text = streamed_text(events)
    assert killed
    assert names(events)[-2:] == ["metadata", "end"]
    runs = ["slow0" + part for part in text.split("slow0")[1:]]
    assert len(runs) == 2, f"expected the killed run then the redelivered one ({elapsed:.0f} s): {text!r}"
    assert runs[0].split()[:3] == ["slow0", "slow1", "slow2"] and SLOW_ANSWER.startswith(runs[0].rstrip())
    assert runs[1] == SLOW_ANSWER  # the redelivered run, whole
    assert stored_answer(real_flowise, "llm_chain", chat_id) == SLOW_ANSWER
    print(f"redelivered after the kill; stream took {elapsed:.1f} s")


def test_frozen_workers_leave_the_stream_open_with_heartbeats_only(
    real_flowise: RealFlowiseState, queue_rig: QueueRig
) -> None:
    """No worker runs the job: the main server keeps the stream alive with ``:heartbeat`` comments (every 30 s),
    so a read timeout longer than that never fires and the client waits forever."""
    queue_rig.freeze_workers()
    raw = b""
    body = {"question": "hi", "streaming": True}
    with httpx.stream("POST", real_flowise.prediction_url("llm_chain"), json=body, timeout=httpx.Timeout(45.0)) as resp:
        assert resp.status_code == 200
        for chunk in resp.iter_bytes():
            raw += chunk
            if b":heartbeat" in raw:
                break
    assert frames(raw) == [{"comment": ":heartbeat"}]  # no event at all, just the keep-alive
