"""What the client guarantees in queue mode, proven against the rig's forced faults (issue 13).

The same faults as ``test_queue_rig_e2e.py`` (which shows their raw symptoms on the wire), this time through
``FlowiseClient``: a partial loss is recovered (or raised), a redelivered job's repeated text is corrected, a
publish-less worker's answer is recovered, and a dead worker ends in ``FlowiseTimeoutError`` within the deadline.
Before the client verified answers, the first two came back silently wrong as ``finish_reason="stop"`` and the
last one hung forever (heartbeats every 30 s keep any read timeout from firing). Queue-mode targets only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flows import CANNED_ANSWER
from harness import RealFlowiseState
from queue_mode import QueueRig

from flowise_integrations import FlowiseClient, FlowiseTimeoutError
from flowise_integrations.errors import AnswerMismatchError
from flowise_integrations.events import CorrectionEvent, FlowiseEvent, TokenEvent

pytestmark = pytest.mark.timeout(300)

SLOW_ANSWER = " ".join(f"slow{i}" for i in range(40))


def client_for(state: RealFlowiseState, **options: Any) -> FlowiseClient:
    return FlowiseClient(state.base_url, api_key=state.api_key, timeout=120, **options)


def stream_with_fault(
    client: FlowiseClient, flow: str, question: str, fault: Callable[[], Any] | None = None, **options: Any
) -> tuple[list[FlowiseEvent], Any]:
    """Stream through the client; call ``fault()`` once the token ``" slow2"`` arrived."""
    events: list[FlowiseEvent] = []
    stream = client.stream(flow, question, **options)
    for event in stream:
        events.append(event)
        if fault is not None and type(event) is TokenEvent and event.data == " slow2":
            fault()
            fault = None
    return events, stream.result


def test_a_publish_less_worker_s_answer_is_recovered(real_flowise: RealFlowiseState, queue_rig: QueueRig) -> None:
    with queue_rig.publish_blocked(), client_for(real_flowise) as client:
        events, result = stream_with_fault(client, real_flowise.flows["llm_chain"], "hi")
    assert result.text == CANNED_ANSWER and result.recovered and result.finish_reason == "stop"
    assert [e.event for e in events][-1] == "end"


def test_tokens_lost_mid_stream_are_corrected_when_verified(
    real_flowise: RealFlowiseState, queue_rig: QueueRig
) -> None:
    with client_for(real_flowise, verify_answers=True) as client:
        events, result = stream_with_fault(
            client, real_flowise.flows["llm_chain"], "SLOW_STREAM please", lambda: queue_rig.block_publish_for(2.0)
        )
    streamed = "".join(e.data for e in events if type(e) is TokenEvent)
    assert streamed != SLOW_ANSWER, "no token was lost: the publish block did not cut the stream"
    assert [type(e) for e in events].count(CorrectionEvent) == 1
    assert result.text == SLOW_ANSWER and result.recovered and result.finish_reason == "stop"


def test_tokens_lost_mid_stream_can_raise_instead(real_flowise: RealFlowiseState, queue_rig: QueueRig) -> None:
    with (
        client_for(real_flowise, verify_answers=True, on_answer_mismatch="raise") as client,
        pytest.raises(AnswerMismatchError, match="differs from the stored message") as caught,
    ):
        stream_with_fault(
            client, real_flowise.flows["llm_chain"], "SLOW_STREAM please", lambda: queue_rig.block_publish_for(2.0)
        )
    assert caught.value.stored_text == SLOW_ANSWER
    assert caught.value.partial is not None and caught.value.partial.text != SLOW_ANSWER


def test_a_redelivered_job_s_repeated_text_is_corrected_for_free(
    real_flowise: RealFlowiseState, queue_rig: QueueRig
) -> None:
    """SIGKILL the worker mid-stream: BullMQ reruns the job on the other worker 45-60 s later, which streams the
    whole answer again into the open stream; the default client ("auto") notices the second run and corrects."""

    def kill_busy_worker() -> None:
        queue_rig.kill_worker(queue_rig.busy_worker())

    with client_for(real_flowise) as client:
        events, result = stream_with_fault(
            client, real_flowise.flows["llm_chain"], "SLOW_STREAM please", kill_busy_worker
        )
    streamed = "".join(e.data for e in events if type(e) is TokenEvent)
    assert streamed.count("slow0") == 2, streamed  # the symptom: the first tokens, then everything again
    corrections = [e for e in events if isinstance(e, CorrectionEvent)]
    assert [c.data["reason"] for c in corrections] == ["repeated"]
    assert result.text == SLOW_ANSWER and result.recovered


def test_a_dead_worker_ends_in_a_timeout_within_the_deadline(
    real_flowise: RealFlowiseState, queue_rig: QueueRig
) -> None:
    """No worker runs the job: the main server keeps the stream open with heartbeats; only a deadline ends it."""
    queue_rig.freeze_workers()
    with (
        client_for(real_flowise) as client,
        pytest.raises(FlowiseTimeoutError, match="missed its deadline of 5") as caught,
    ):
        client.stream(real_flowise.flows["llm_chain"], "hi", deadline=5).until_done()
    assert caught.value.partial is not None and caught.value.partial.text == ""
