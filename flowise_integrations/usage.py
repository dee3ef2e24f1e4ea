"""Billable usage of one request: the model calls Flowise made *for this request*, one by one.

Where Flowise 3.x records the figures of an agentflow v2 (``packages/components/nodes/agentflow``):

- **LLM** and **Condition Agent** nodes: one model call each, ``output.usageMetadata`` (LangChain
  ``UsageMetadata``) is that call.
- **Agent** nodes: every call that asked for tools is kept, with its own ``usage_metadata``, as an assistant
  message in the node's ``input.messages`` (Flowise pushes it there before running the tools); the last call
  (the answer) is ``output.usageMetadata``'s ``input_tokens`` / ``output_tokens``. Its ``total_tokens`` is *not*
  a total: it is the last call's total plus ``tool_call_tokens``, which already re-counts every call including
  the last one (and counts intermediate calls twice when the model chains tools). Two calls of 10 in / 12 out
  come out as 10 / 12 / 66; this module counts them as 20 / 24 / 44. When the node stopped for a tool approval,
  the last call *is* the last assistant message (``output.isWaitingForHumanInput``) and is counted once.
- Streamed ``usageMetadata`` events carry only the answering call of a streamed last node (22 of those 44), so
  they are used only when the executed data has no figures for this request.

**Resumed runs**: the ``agentFlowExecutedData`` of a resumed run starts with every node of the stopped run
(Flowise copies the previous execution, then drops the entries of the node it resumes and runs it again), so
the entries before the first one of the resumed node are replays and are not counted. Which node that is, the
caller may say (``resumed_from``); else it is read from the data: Flowise hands the resumed node the
``humanInput`` it consumed (:func:`~flowise_integrations.hitl.resumed_node`). The resumed Agent node itself
starts from the stopped run's messages, including the call that asked for the approval (which Flowise adds to
``tool_call_tokens`` again): those calls were billed by the stopped request and are left out, exactly when
``resumed_from`` is the stopped run's :class:`~flowise_integrations.hitl.Interrupt` (its checkpoint messages),
else by rule (calls up to the first one asking for a tool that needs approval; none after a rejection, which
removes that call).

In every path ``total_tokens == input_tokens + output_tokens``. Calls Flowise does not record (a Human Input
node's generated description, a conversation-summary memory) cannot be counted; figures without an input/output
split are skipped. Flowise's own per-node figures stay in the executed data, and in :class:`NodeUsage.flowise`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from .hitl import resumed_node
from .models import Usage

if TYPE_CHECKING:
    from .hitl import Interrupt

__all__ = ["NodeUsage", "normalize_usage", "request_usage", "sum_usage", "usage_breakdown"]

_DETAILS = ("input_token_details", "output_token_details")


class NodeUsage(BaseModel):
    """The model calls of one executed node, as this module counts them, next to Flowise's own figure."""

    model_config = ConfigDict(defer_build=True)

    node_id: str | None = None
    node_label: str | None = None
    node_name: str | None = None
    status: str | None = None
    replayed: bool = False
    calls: list[Usage] = Field(default_factory=list)
    flowise: dict[str, Any] | None = None

    @property
    def usage(self) -> Usage | None:
        """The node's calls summed (``None`` when it made none that Flowise recorded)."""
        return sum_usage(self.calls)


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        return None
    return int(value)


def _details(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): n for k, v in value.items() if (n := _count(v)) is not None}


def normalize_usage(value: Any) -> Usage | None:
    """One call's figures (``UsageMetadata``, or OpenAI's ``prompt_tokens``/``completion_tokens``) as ``Usage``
    with ``total = input + output``; ``None`` if it has no input/output split."""
    if isinstance(value, Usage):
        value = value.model_dump()
    if not isinstance(value, Mapping):
        return None
    inp = _count(value.get("input_tokens", value.get("prompt_tokens")))
    out = _count(value.get("output_tokens", value.get("completion_tokens")))
    if inp is None and out is None:
        return None
    fields: dict[str, Any] = {"input_tokens": inp or 0, "output_tokens": out or 0}
    fields["total_tokens"] = fields["input_tokens"] + fields["output_tokens"]
    for key in _DETAILS:
        details = _details(value.get(key))
        if details:
            fields[key] = details
    return Usage(**fields)


def sum_usage(usages: Iterable[Usage | None]) -> Usage | None:
    """The sum of several calls (details summed key by key); ``None`` for none."""
    total: dict[str, Any] | None = None
    for usage in usages:
        if usage is None:
            continue
        if total is None:
            total = {"input_tokens": 0, "output_tokens": 0}
        total["input_tokens"] += usage.input_tokens
        total["output_tokens"] += usage.output_tokens
        for key in _DETAILS:
            details = _details((usage.model_extra or {}).get(key))
            if details:
                merged = total.setdefault(key, {})
                for name, n in details.items():
                    merged[name] = merged.get(name, 0) + n
    if total is None:
        return None
    total["total_tokens"] = total["input_tokens"] + total["output_tokens"]
    return Usage(**total)


# ------------------------------------------------------------------------------------------- node figures


def _dict(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, Mapping) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _model_messages(node_input: dict[str, Any]) -> list[dict[str, Any]]:
    """The node's assistant messages that carry a call's own figures (calls Flowise made in this node)."""
    return [
        m
        for m in _list(node_input.get("messages"))
        if isinstance(m, dict) and m.get("role") in ("assistant", "ai") and normalize_usage(m.get("usage_metadata"))
    ]


def _call_key(message: Mapping[str, Any]) -> str:
    """Identity of one model call: the provider's message id, else its content, tool calls and figures."""
    message_id = message.get("id")
    if isinstance(message_id, str) and message_id:
        return f"id:{message_id}"
    fields = {k: message.get(k) for k in ("content", "tool_calls", "usage_metadata")}
    return "json:" + json.dumps(fields, sort_keys=True, default=str)


def _tool_call_ids(calls: Any) -> list[str]:
    return [c["id"] for c in _list(calls) if isinstance(c, dict) and isinstance(c.get("id"), str)]


def _answer_is_listed(output: dict[str, Any], model_messages: list[dict[str, Any]]) -> bool:
    """Whether ``output.usageMetadata`` describes the last listed call (a node stopped on a tool call)."""
    if output.get("isWaitingForHumanInput") is True:
        return True
    called = output.get("calledTools")
    if not (isinstance(called, list) and called and model_messages):
        return False
    ids = _tool_call_ids(called)
    return bool(ids) and ids == _tool_call_ids(model_messages[-1].get("tool_calls"))


def _needs_approval(node_input: dict[str, Any], output: dict[str, Any]) -> set[str]:
    """Names of the Agent node's tools marked "require human input" (by tool and by component name)."""
    flagged = set()
    for tool in _list(node_input.get("agentTools")):
        tool = _dict(tool)
        flag = tool.get("agentSelectedToolRequiresHumanInput")
        if (flag is True or flag == "true") and _str(tool.get("agentSelectedTool")):
            flagged.add(tool["agentSelectedTool"])
    for tool in _list(output.get("availableTools")):
        tool = _dict(tool)
        if _str(tool.get("name")) and _str(_dict(tool.get("toolNode")).get("name")) in flagged:
            flagged.add(tool["name"])
    return flagged


def _pre_stop_by_rule(node_input: dict[str, Any], output: dict[str, Any], messages: list[dict[str, Any]]) -> int:
    """How many of a resumed Agent node's first listed calls the stopped request made (node id only)."""
    if _dict(node_input.get("humanInput")).get("type") == "reject":
        return 0  # Flowise removed the call that asked for the rejected tool
    flagged = _needs_approval(node_input, output)
    for i, message in enumerate(messages):
        names = {c["name"] for c in _list(message.get("tool_calls")) if isinstance(c, dict) and _str(c.get("name"))}
        if names & flagged:
            return i + 1
    for i, message in enumerate(messages):
        if message.get("tool_calls"):
            return i + 1
    return 0


def _node_usage(entry: dict[str, Any], *, replayed: bool, skip: Counter[str] | None, rule: bool) -> NodeUsage:
    data = _dict(entry.get("data"))
    node_input, output = _dict(data.get("input")), _dict(data.get("output"))
    messages = _model_messages(node_input)
    answer = normalize_usage(output.get("usageMetadata"))
    listed = messages
    if skip is not None:
        remaining = Counter(skip)
        listed = []
        for message in messages:
            key = _call_key(message)
            if remaining[key] > 0:
                remaining[key] -= 1
            else:
                listed.append(message)
    elif rule:
        listed = messages[_pre_stop_by_rule(node_input, output, messages) :]
    calls = [u for m in listed if (u := normalize_usage(m.get("usage_metadata"))) is not None]
    if answer is not None and not _answer_is_listed(output, messages):
        calls.append(answer)
    flowise = output.get("usageMetadata")
    return NodeUsage(
        node_id=_str(entry.get("nodeId")),
        node_label=_str(entry.get("nodeLabel")),
        node_name=_str(data.get("name")),
        status=_str(entry.get("status")),
        replayed=replayed,
        calls=[] if replayed else calls,
        flowise=dict(flowise) if isinstance(flowise, Mapping) else None,
    )


def _resume_point(resumed_from: str | Interrupt | None, entries: list[Any]) -> tuple[str | None, Counter[str] | None]:
    if resumed_from is None:
        return resumed_node(entries), None
    if isinstance(resumed_from, str):
        return (resumed_from or resumed_node(entries)), None
    node_id = getattr(resumed_from, "node_id", None)
    checkpoint = getattr(resumed_from, "checkpoint_messages", None) or []
    keys = Counter(_call_key(m) for m in _model_messages({"messages": list(checkpoint)}))
    return (node_id if isinstance(node_id, str) and node_id else None), keys


def usage_breakdown(executed_data: Any, *, resumed_from: str | Interrupt | None = None) -> list[NodeUsage]:
    """Every executed node with the calls counted for this request (replayed nodes flagged, with no calls).

    ``resumed_from``: the stopped run's ``Interrupt`` (exact), or the node id the request resumed
    (``humanInput.startNodeId``); ``None`` reads it from the data (Flowise marks the node it resumed), which is
    also right for a request that resumed nothing.
    """
    entries = [e for e in executed_data if isinstance(e, dict)] if isinstance(executed_data, list) else []
    node_id, skip = _resume_point(resumed_from, entries)
    cut = 0
    if node_id is not None:
        cut = next((i for i, e in enumerate(entries) if e.get("nodeId") == node_id), len(entries))
    return [
        _node_usage(
            entry,
            replayed=i < cut,
            skip=skip if node_id is not None and i == cut else None,
            rule=node_id is not None and i == cut and skip is None,
        )
        for i, entry in enumerate(entries)
    ]


def _streamed(streamed_usage: Any) -> Usage | None:
    if streamed_usage is None:
        return None
    if isinstance(streamed_usage, (Usage, Mapping)):
        return normalize_usage(streamed_usage)
    if isinstance(streamed_usage, Iterable) and not isinstance(streamed_usage, (str, bytes)):
        return sum_usage(normalize_usage(u) for u in streamed_usage)
    return None


def request_usage(
    executed_data: Any, streamed_usage: Any = None, *, resumed_from: str | Interrupt | None = None
) -> Usage | None:
    """The billable usage of one request (``total = input + output``), or ``None`` if Flowise reported none.

    ``executed_data``: the reply's ``agentFlowExecutedData`` (for a stream, its last snapshot);
    ``streamed_usage``: the ``usageMetadata`` events the stream really carried (a ``Usage``/dict or a list of
    them; not figures synthesized from a JSON reply), used only when the executed data has no figures for this
    request; ``resumed_from``: see :func:`usage_breakdown`.
    """
    nodes = usage_breakdown(executed_data, resumed_from=resumed_from)
    counted = sum_usage(call for node in nodes for call in node.calls)
    return counted if counted is not None else _streamed(streamed_usage)
