"""Helpers for the agent-flow e2e tests: the fake model's own log as the ground truth (not tests themselves)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flows import major_of
from harness import RealFlowiseState

from flowise_integrations import Prediction

Counts = tuple[int, int, int]
"""(input, output, total) tokens."""


def needs_agentflow_v2(state: RealFlowiseState) -> None:
    """Skip on servers without Agentflow V2 (it arrived in Flowise 3.0)."""
    if 0 < major_of(state.version) < 3:
        pytest.skip(f"Flowise {state.version} has no Agentflow V2 (it arrived in Flowise 3.0)")


def needs_model_log(state: RealFlowiseState) -> None:
    if not state.fake_llm_log:
        pytest.skip("external server: no fake LLM request log to check usage against")


def log_mark(state: RealFlowiseState) -> int:
    """Where the fake LLM's log ends now (pass to :func:`model_replies` after a call)."""
    return len(state.fake_llm_requests())


def model_replies(state: RealFlowiseState, since: int) -> list[dict[str, Any]]:
    """What the fake model answered (``chat_reply`` entries: text, tool, usage) since log entry ``since``."""
    return [e for e in state.fake_llm_requests()[since:] if e.get("event") == "chat_reply"]


def billed(replies: list[dict[str, Any]]) -> Counts:
    """The usage the fake model billed for ``replies``, summed."""
    prompt = sum(int(r["usage"]["prompt_tokens"]) for r in replies)
    completion = sum(int(r["usage"]["completion_tokens"]) for r in replies)
    return prompt, completion, prompt + completion


def reported(result: Prediction) -> Counts:
    """The usage a prediction reports ((0, 0, 0) when it reports none)."""
    usage = result.usage
    return (0, 0, 0) if usage is None else (usage.input_tokens, usage.output_tokens, usage.total_tokens)


def conversation(by: str, tag: str) -> dict[str, Any]:
    """Call options naming one new conversation: by ``chat_id``, or by ``session_id`` only."""
    ident = f"e2e-{tag}-{uuid.uuid4().hex[:10]}"
    return {"chat_id": ident} if by == "chat" else {"session_id": ident}


def event_names(events: list[Any]) -> list[str]:
    return [str(e.event) for e in events]


def statuses(events: list[Any], name: str) -> list[Any]:
    """``data`` of every event called ``name`` (``agentFlowEvent`` statuses, ``nextAgentFlow`` payloads...)."""
    return [e.data for e in events if e.event == name]
