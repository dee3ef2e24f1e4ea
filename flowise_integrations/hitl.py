"""Human in the loop: what a stopped agentflow asks for (``Interrupt``), and the body that answers it.

An agentflow v2 stops at a **Human Input** node, or at an **Agent** node about to call a tool marked "require
human input" (``packages/server/src/utils/buildAgentflow.ts``, ``executeNode``). Either way Flowise records the
node as ``STOPPED`` in ``agentFlowExecutedData`` with ``output.humanInputAction``, streams ``agentFlowEvent:
STOPPED`` and an ``action`` event, and (3.1.2+) puts the same ``action`` in the stream's ``metadata`` and the JSON
reply::

    {"id", "mapping": {"approve": "Proceed", "reject": "Reject"},
     "elements": [{"type": "agentflowv2-approve-button", "label": "Proceed"},
                  {"type": "agentflowv2-reject-button", "label": "Reject"}],
     "data": {"nodeId", "nodeLabel", "input": <the node's input: messages, humanInputEnableFeedback, ...>}}

Sequential agents (agentflow v1, ``MULTIAGENT``) interrupt before a tool with ``{"id", "mapping": {"approve",
"reject", "toolCalls"}, "elements": [approve-button, reject-button]}`` (labels configurable, default Yes / No).

**Resuming an agentflow v2** (what Flowise needs, from ``executeAgentFlow``):

- ``humanInput: {"type": "proceed" | "reject", "startNodeId": <the stopped node's id>, "feedback"?}``
  (:func:`human_input_body`). Without ``startNodeId`` Flowise resumes the last STOPPED node.
- The stopped run's session: Flowise finds the execution to resume by ``sessionId`` = ``overrideConfig.sessionId``
  or else ``chatId``. Send the stopped run's ``chatId`` (one conversation stays one chat) and, if it had one, its
  ``overrideConfig.sessionId``. That execution must still be the session's latest and in ``STOPPED`` state
  (Flowise refuses to resume a ``FINISHED`` one), so no other prediction may run in that session in between.
- ``question`` is not required. Flowise's UI sends ``question`` = the feedback, else ``"Proceed"`` / ``"Reject"``:
  it becomes the stored user message of the turn, and a downstream LLM/Agent node with memory that sees no
  feedback gets it as the user message. :meth:`Interrupt.resume_fields` does the same as the UI.
- Streaming or not, both work (an agentflow is always streamable); ``feedback`` only matters when the Human
  Input node enables it (``feedback_enabled``); an Agent's tool approval ignores it.

**Resuming sequential agents**: send the ``action`` back with ``question`` = its approve or reject label and the
same ``chatId``.

Seen on a real 3.1.4 (Human Input and tool approval, JSON and streamed): ``{"overrideConfig": {"sessionId": s},
"humanInput": {"type": "reject"}}`` alone resumes (no ``question``, no ``startNodeId``); the resumed run keeps
the stopped run's ``executionId``; its executed data starts with the stopped run's nodes and the resumed node
carries the consumed ``humanInput`` (:func:`resumed_node`); resuming an execution that is not STOPPED answers
500 (or a stream ``error``) ``Cannot resume execution <id> because it is in 'FINISHED' state...``. A stopped
stream ends ``nextAgentFlow STOPPED``, ``agentFlowExecutedData``, ``agentFlowEvent STOPPED``, ``action``,
``agentFlowEvent STOPPED`` (again), ``metadata`` (with ``action``), ``end``; only the JSON reply has
``executionId``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Decision",
    "Interrupt",
    "PendingToolCall",
    "human_input_body",
    "interrupt_from",
    "resumed_node",
    "run_status",
]

_FINAL_NOT_STOPPED = {"FINISHED", "ERROR", "TERMINATED", "TIMEOUT"}


class PendingToolCall(BaseModel):
    """A tool call the model asked for, awaiting approval (a LangChain ``ToolCall``: name, args, id)."""

    model_config = ConfigDict(defer_build=True, extra="allow")

    name: str = ""
    args: Any = None
    id: str | None = None
    requires_approval: bool | None = None


class Decision(BaseModel):
    """One answer the human can give, with Flowise's own button label."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    value: Literal["proceed", "reject"]
    label: str


class Interrupt(BaseModel):
    """A stopped run waiting for a human: who asks, what, and how to answer (:meth:`resume_fields`)."""

    model_config = ConfigDict(defer_build=True)

    kind: Literal["human_input", "tool_approval"]
    protocol: Literal["agentflow_v2", "sequential_agents"] = "agentflow_v2"
    node_id: str | None = None
    node_label: str | None = None
    prompt: str = ""
    description: str | None = None
    tool_calls: list[PendingToolCall] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    feedback_enabled: bool = False
    status: str | None = None
    execution_id: str | None = None
    chat_id: str | None = None
    session_id: str | None = None
    action_id: str | None = None
    action: dict[str, Any] = Field(default_factory=dict, repr=False)
    checkpoint_messages: list[dict[str, Any]] = Field(default_factory=list, repr=False)

    def label(self, approve: bool) -> str:
        """Flowise's label for this decision (``Proceed`` / ``Reject`` on agentflows)."""
        wanted = "proceed" if approve else "reject"
        for decision in self.decisions:
            if decision.value == wanted:
                return decision.label
        return "Proceed" if approve else "Reject"

    def human_input(self, *, approve: bool, feedback: str | None = None) -> dict[str, Any]:
        """Flowise's ``humanInput`` value resuming this stop (agentflow v2)."""
        return human_input_body(self.node_id, approve=approve, feedback=feedback)

    def resume_fields(self, *, approve: bool, feedback: str | None = None) -> dict[str, Any]:
        """The prediction body fields that answer this stop, as Flowise's UI sends them.

        Agentflow v2: ``{"question": feedback or "Proceed"/"Reject", "humanInput": {...}}``; sequential agents:
        ``{"question": <approve/reject label>, "action": <the action>}``. Send them with the stopped run's
        ``chatId`` (and ``overrideConfig.sessionId`` if it had one).
        """
        if self.protocol == "sequential_agents":
            return {"question": self.label(approve), "action": dict(self.action)}
        return {
            "question": feedback or ("Proceed" if approve else "Reject"),
            "humanInput": self.human_input(approve=approve, feedback=feedback),
        }


def human_input_body(node_id: str | None, *, approve: bool, feedback: str | None = None) -> dict[str, Any]:
    """Flowise's ``humanInput``: ``{"type": "proceed"|"reject", "startNodeId", "feedback"}`` (unset keys left out).

    Without a node id Flowise resumes the execution's last STOPPED node.
    """
    body: dict[str, Any] = {"type": "proceed" if approve else "reject"}
    if node_id:
        body["startNodeId"] = node_id
    if feedback:
        body["feedback"] = feedback
    return body


def run_status(executed_data: Any) -> str | None:
    """A finished reply's execution status from its ``agentFlowExecutedData``, by Flowise's own rule.

    ``TERMINATED`` if a node was, else ``ERROR``, else ``STOPPED``, else ``FINISHED`` (what the stream's last
    ``agentFlowEvent`` says; a JSON reply does not say it). ``None`` without executed nodes.
    """
    statuses = {status for e in _entries(executed_data) if isinstance(status := e.get("status"), str)}
    if not statuses:
        return None
    for status in ("TERMINATED", "ERROR", "STOPPED"):
        if status in statuses:
            return status
    return "FINISHED"


def _resume_marker(entry: dict[str, Any]) -> bool:
    """Whether Flowise ran this node to resume a stop: it hands the node the humanInput it consumed, with the
    resolved ``startNodeId`` (an Agent as ``input.humanInput``, a Human Input node spread into ``input``)."""
    node_id = entry.get("nodeId")
    node_input = _dict(_dict(entry.get("data")).get("input"))
    for marker in (_dict(node_input.get("humanInput")), node_input):
        if marker.get("type") in ("proceed", "reject") and node_id and marker.get("startNodeId") == node_id:
            return True
    return False


def resumed_node(executed_data: Any) -> str | None:
    """The node a resumed run restarted from, read from Flowise's own marker; ``None`` for a run that resumed nothing.

    A resumed run's executed data replays the stopped run's nodes first (earlier resumes included), so the last
    marked node is this run's.
    """
    marked = [e for e in _entries(executed_data) if _resume_marker(e)]
    return _str(marked[-1].get("nodeId")) if marked else None


# ------------------------------------------------------------------------------------------------ parsing


def _dict(value: Any) -> dict[str, Any]:
    if isinstance(value, (str, bytes, bytearray)):  # a chat-message row keeps `action` as a JSON string
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, Mapping) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _entries(executed_data: Any) -> list[dict[str, Any]]:
    return [e for e in executed_data if isinstance(e, dict)] if isinstance(executed_data, list) else []


def _stopped_entry(entries: list[dict[str, Any]], node_id: str | None) -> dict[str, Any] | None:
    stopped = [e for e in entries if e.get("status") == "STOPPED"]
    if node_id is not None:
        matching = [e for e in stopped if e.get("nodeId") == node_id]
        return matching[-1] if matching else None
    return stopped[-1] if stopped else None


def _decisions(action: dict[str, Any], sequential: bool) -> list[Decision]:
    mapping = _dict(action.get("mapping"))
    labels = {"proceed": _str(mapping.get("approve")), "reject": _str(mapping.get("reject"))}
    elements = action.get("elements")
    for element in elements if isinstance(elements, list) else ():
        element = _dict(element)
        kind, label = element.get("type"), _str(element.get("label"))
        if isinstance(kind, str) and label:
            if "approve" in kind:
                labels["proceed"] = labels["proceed"] or label
            elif "reject" in kind:
                labels["reject"] = labels["reject"] or label
    default = {"proceed": "Yes", "reject": "No"} if sequential else {"proceed": "Proceed", "reject": "Reject"}
    return [
        Decision(value="proceed", label=labels["proceed"] or default["proceed"]),
        Decision(value="reject", label=labels["reject"] or default["reject"]),
    ]


def _messages(node_input: dict[str, Any]) -> list[dict[str, Any]]:
    messages = node_input.get("messages")
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _approval_tools(node_input: dict[str, Any], output: dict[str, Any]) -> dict[str, bool] | None:
    """Tool name -> whether the Agent node requires approval for it (``None`` if the node does not say)."""
    agent_tools = node_input.get("agentTools")
    if not isinstance(agent_tools, list):
        return None
    by_component = {}
    for tool in agent_tools:
        tool = _dict(tool)
        component = _str(tool.get("agentSelectedTool"))
        if component:
            by_component[component] = _truthy(tool.get("agentSelectedToolRequiresHumanInput"))
    flags = dict(by_component)  # a tool is often named like its component (calculator)
    available = output.get("availableTools")
    for tool in available if isinstance(available, list) else ():
        tool = _dict(tool)
        name, component = _str(tool.get("name")), _str(_dict(tool.get("toolNode")).get("name"))
        if name and component in by_component:
            flags[name] = by_component[component]
    return flags


def _tool_calls(raw_calls: Any, flags: dict[str, bool] | None) -> list[PendingToolCall]:
    calls = []
    for call in raw_calls if isinstance(raw_calls, list) else ():
        call = _dict(call)
        if not call:
            continue
        name = call.get("name")
        name = name if isinstance(name, str) else ""
        fields = {str(k): v for k, v in call.items() if k != "requires_approval"}
        fields.update(
            name=name,
            args=call.get("args"),
            id=_str(call.get("id")),
            requires_approval=flags.get(name) if flags is not None else None,
        )
        calls.append(PendingToolCall.model_validate(fields))
    return calls


def _kind(node_name: Any, node_id: str | None, node_input: dict[str, Any], calls: list[Any]) -> str:
    for hint in (node_name, node_id):
        if isinstance(hint, str):
            if hint.startswith("humanInputAgentflow"):
                return "human_input"
            if hint.startswith("agentAgentflow"):
                return "tool_approval"
    if "humanInputEnableFeedback" in node_input:
        return "human_input"
    return "tool_approval" if calls else "human_input"


def _description(prompt: str, messages: list[dict[str, Any]]) -> str | None:
    """The Human Input node's own question: its text after the previous message it repeats (fixed mode)."""
    if not prompt:
        return None
    last = messages[-1].get("content") if messages else None
    prefix = f"{last}\n\n" if isinstance(last, str) else None
    if prefix is not None and prompt.startswith(prefix) and len(prompt) > len(prefix):
        return prompt[len(prefix) :]
    return prompt.strip() or None


def interrupt_from(
    action: Any,
    executed_data: Any = None,
    *,
    status: str | None = None,
    execution_id: str | None = None,
    text: str | None = None,
    chat_id: str | None = None,
    session_id: str | None = None,
) -> Interrupt | None:
    """The ``Interrupt`` a stopped run carries, or ``None`` if it did not stop for a human.

    ``action``: the ``action`` of the stream (event or ``metadata``) or of the JSON reply (a dict, or the JSON
    string a chat-message row keeps); ``executed_data``: ``agentFlowExecutedData`` (before 3.1.2 the only
    place the action is, as the STOPPED node's ``output.humanInputAction``); ``status``: the run's
    ``agentFlowEvent`` status when known; ``text``: the answer text, the prompt when the executed data is absent.
    Never raises on odd payloads.
    """
    act = _dict(action)
    entries = _entries(executed_data)
    if not act and isinstance(status, str) and status.upper() in _FINAL_NOT_STOPPED:
        return None
    act_data = _dict(act.get("data"))
    node_id = _str(act_data.get("nodeId"))
    entry = _stopped_entry(entries, node_id) or (_stopped_entry(entries, None) if not node_id else None)
    entry_data = _dict(entry.get("data")) if entry else {}
    output = _dict(entry_data.get("output"))
    if not act:
        act = _dict(output.get("humanInputAction"))
        act_data = _dict(act.get("data"))
    if not act and entry is None:
        return None

    mapping = _dict(act.get("mapping"))
    sequential = not act_data and entry is None and "toolCalls" in mapping
    node_id = node_id or _str(act_data.get("nodeId")) or (_str(entry.get("nodeId")) if entry else None)
    node_label = _str(act_data.get("nodeLabel")) or (_str(entry.get("nodeLabel")) if entry else None)
    node_input = _dict(entry_data.get("input")) or _dict(act_data.get("input"))
    messages = _messages(_dict(act_data.get("input"))) or _messages(node_input)

    if sequential:
        raw_calls: Any = mapping.get("toolCalls")
        flags = None
    else:
        raw_calls = output.get("calledTools")
        if not (isinstance(raw_calls, list) and raw_calls):
            last = messages[-1] if messages else {}
            raw_calls = last.get("tool_calls") if last.get("role") in ("assistant", "ai") else None
        flags = _approval_tools(node_input, output)
    calls = _tool_calls(raw_calls, flags)
    kind = "tool_approval" if sequential else _kind(entry_data.get("name"), node_id, node_input, calls)

    content = output.get("content")
    prompt = content if isinstance(content, str) and content else (text or "")
    feedback_enabled = kind == "human_input" and _truthy(node_input.get("humanInputEnableFeedback"))
    return Interrupt.model_validate(
        {
            "kind": kind,
            "protocol": "sequential_agents" if sequential else "agentflow_v2",
            "node_id": node_id,
            "node_label": node_label,
            "prompt": prompt,
            "description": _description(prompt, messages) if kind == "human_input" else None,
            "tool_calls": calls if kind == "tool_approval" else [],
            "decisions": _decisions(act, sequential),
            "feedback_enabled": feedback_enabled,
            "status": status if sequential else "STOPPED",
            "execution_id": execution_id,
            "chat_id": chat_id,
            "session_id": session_id,
            "action_id": _str(act.get("id")),
            "action": act,
            "checkpoint_messages": messages if kind == "tool_approval" else [],
        }
    )
