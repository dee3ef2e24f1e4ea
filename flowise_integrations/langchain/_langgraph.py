"""LangGraph, when it is installed and a graph is running: the ``custom`` stream and the interrupt bridge.

Nothing here imports LangGraph until it is needed, and everything is a no-op outside a graph run.

The bridge (``ChatFlowise(langgraph_interrupts=True)``): a Flowise run that stops for a human becomes LangGraph's
``interrupt(payload)``; LangGraph then runs the node again on ``Command(resume=...)``, and the model, seeing the
resume values LangGraph holds for it, answers the stopped Flowise run (never re-running the original question):
with ``n`` resume values, the first ``n - 1`` were already answered by earlier runs of the node, the last one is
sent now. Peeking at those values reads LangGraph's per-task scratchpad (``langgraph>=1.0``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flowise_integrations.hitl import Interrupt

__all__ = ["Resume", "ask_human", "in_graph", "parse_resume", "stream_writer", "take_resume"]

_MISSING: Any = object()
_YES = {"proceed", "approve", "approved", "yes", "y", "true", "ok"}
_NO = {"reject", "rejected", "deny", "denied", "no", "n", "false"}

Resume = tuple[bool, str | None]
"""``(approve, feedback)``: how to answer a stopped run."""


def _config() -> Mapping[str, Any] | None:
    try:
        from langgraph.config import get_config
    except ImportError:  # pragma: no cover - langgraph is optional
        return None
    try:
        config = get_config()
    except RuntimeError:  # not inside a runnable
        return None
    configurable = config.get("configurable")
    return configurable if isinstance(configurable, Mapping) else None


def stream_writer() -> Callable[[Any], None] | None:
    """The running graph's ``stream_mode="custom"`` writer (``None`` outside a graph)."""
    configurable = _config()
    if configurable is None or "__pregel_runtime" not in configurable:
        return None
    from langgraph.config import get_stream_writer

    try:
        return get_stream_writer()
    except (RuntimeError, KeyError, AttributeError):
        return None


def _scratchpad() -> Any:
    configurable = _config()
    return None if configurable is None else configurable.get("__pregel_scratchpad")


def in_graph() -> bool:
    """Whether a LangGraph node is running (so ``interrupt`` can pause it)."""
    return _scratchpad() is not None


def _pending() -> list[Any]:
    scratchpad = _scratchpad()
    if scratchpad is None:
        return []
    values = list(getattr(scratchpad, "resume", None) or [])
    try:
        null = scratchpad.get_null_resume(False)
    except (AttributeError, TypeError):
        null = None
    if null is not None:
        values.append(null)
    return values


def take_resume() -> Any:
    """The resume value this node run must send to Flowise, or ``_MISSING`` when the node runs fresh.

    Consumes every value LangGraph holds for the node (the earlier ones were answered by earlier runs).
    """
    pending = _pending()
    if not pending:
        return _MISSING
    from langgraph.types import interrupt

    value: Any = _MISSING
    for _ in pending:
        value = interrupt(None)  # returns the stored value: nothing pauses
    return value


def ask_human(interrupt_: Interrupt, chatflow_id: str) -> Any:
    """Pause the graph on a Flowise stop (LangGraph's ``interrupt``: raises ``GraphInterrupt``)."""
    from langgraph.types import interrupt

    return interrupt(interrupt_payload(interrupt_, chatflow_id))


def interrupt_payload(interrupt_: Interrupt, chatflow_id: str) -> dict[str, Any]:
    """What the graph's caller sees in ``__interrupt__`` (JSON-serialisable)."""
    return {
        "source": "flowise",
        "chatflow_id": chatflow_id,
        "kind": interrupt_.kind,
        "prompt": interrupt_.prompt,
        "node_label": interrupt_.node_label,
        "tool_calls": [call.model_dump(mode="json", exclude_none=True) for call in interrupt_.tool_calls],
        "decisions": [decision.model_dump(mode="json") for decision in interrupt_.decisions],
        "feedback_enabled": interrupt_.feedback_enabled,
        "resume_with": '{"approve": true | false, "feedback": "..."} (or true / false, or a decision label)',
        "interrupt": interrupt_.model_dump(mode="json", exclude={"action", "checkpoint_messages"}),
    }


def parse_resume(value: Any, interrupt_: Interrupt | None = None) -> Resume:
    """A resume value as ``(approve, feedback)``: ``True``/``False``, ``{"approve", "feedback"}`` (or
    ``{"type": "proceed"|"reject"}``), or a word (``"proceed"``, ``"reject"``, ``"yes"``, a decision's label)."""
    if isinstance(value, bool):
        return value, None
    if isinstance(value, Mapping):
        feedback = value.get("feedback")
        feedback = feedback if isinstance(feedback, str) and feedback else None
        if isinstance(value.get("approve"), bool):
            return bool(value["approve"]), feedback
        for key in ("type", "decision"):
            if isinstance(value.get(key), str):
                return _word(value[key], interrupt_), feedback
        raise ValueError(f"a resume mapping needs 'approve': true|false, got keys {sorted(value)}")
    if isinstance(value, str):
        return _word(value, interrupt_), None
    raise ValueError(
        f"cannot answer a Flowise stop with {type(value).__name__}: use {{'approve': bool, 'feedback': str}}"
    )


def _word(word: str, interrupt_: Interrupt | None) -> bool:
    key = word.strip().casefold()
    if key in _YES:
        return True
    if key in _NO:
        return False
    for decision in interrupt_.decisions if interrupt_ is not None else ():
        if decision.label.casefold() == key:
            return decision.value == "proceed"
    raise ValueError(f"cannot tell whether {word!r} approves or rejects: use 'proceed' or 'reject'")
