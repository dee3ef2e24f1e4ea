"""The agentflow v2 nodes a :class:`~flowise_integrations.testing.FakeFlow` can script (``FakeFlow(nodes=...)``).

Each class stands for one Flowise node and says what it answers; the emulator runs them the way Flowise's
``executeAgentFlow`` does (queue, branches, human-input stops and resumes, iterations, loops) and reports them
with the real node shapes. Ids and labels default to Flowise's; give your own when a flow has several of a kind.

Templates: ``system``, ``answer``, ``Condition`` values and ``DirectReply.message`` may use ``{{ question }}``,
``{{ $form.<field> }}``, ``{{ $iteration }}`` / ``{{ $iteration.<key> }}``, ``{{ $flow.state.<key> }}`` and
``{{ <nodeId> }}`` (that node's output), resolved like Flowise before the node runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

__all__ = ["LLM", "Agent", "AgentflowNode", "Condition", "DirectReply", "Edge", "HumanInput", "Iteration", "Loop"]

Usage: TypeAlias = "tuple[int, int] | dict[str, Any] | None"
"""``(input_tokens, output_tokens)`` of one model call, a full ``usageMetadata`` dict, or None (the flow's)."""


@dataclass
class LLM:
    """An LLM node (``llmAgentflow``): one model call answering ``answer`` (None: the flow's answer).

    ``system`` is its system message (None: none). ``usage`` is what one call bills. ``memory`` turns the
    conversation memory on (``memory_settings=False`` leaves the memory type/window/limit inputs out, as in a
    hand-built flow). ``streaming=False`` is the model config's streaming switch. The node streams its tokens
    only when it is the last node of the path, as Flowise does; otherwise it is a silent (invoked) call.
    """

    id: str = "llmAgentflow_0"
    label: str = "LLM"
    answer: str | None = None
    system: str | None = "You are a helpful assistant."
    usage: Usage = None
    memory: bool = True
    memory_settings: bool = True
    return_as: Literal["userMessage", "assistantMessage"] = "userMessage"
    streaming: bool = True


@dataclass
class Agent(LLM):
    """An Agent node (``agentAgentflow``): a tool-calling round, the tools, then the answer.

    ``tools`` are the tool calls it makes and what they return (``{"tool", "toolInput", "toolOutput"}``), all in
    one round billed ``tool_usage``. With ``approval=True`` the tools need a human's approval: the run STOPS
    before calling them; resuming with ``proceed`` runs them and answers ``answer``, ``reject`` skips them and
    answers ``declined`` (None: ``answer``).
    """

    id: str = "agentAgentflow_0"
    label: str = "Agent"
    tools: list[dict[str, Any]] = field(default_factory=list)
    approval: bool = False
    tool_usage: Usage = None
    declined: str | None = None


@dataclass
class HumanInput:
    """A Human Input node: the run STOPS here and shows ``description`` (after the last message).

    Output 0 is *proceed*, output 1 *reject* (see :data:`Edge`). ``feedback`` is the node's "Enable Feedback".
    """

    id: str = "humanInputAgentflow_0"
    label: str = "Human Input"
    description: str = "Do you want to proceed?"
    feedback: bool = True


@dataclass
class Condition:
    """A Condition node: the first fulfilled condition picks its output; none fulfilled takes the last (else).

    Each condition is ``{"type": "string"|"number"|"boolean", "value1", "operation", "value2"}`` with Flowise's
    operations (``contains``, ``notContains``, ``equal``, ``notEqual``, ``startsWith``, ``endsWith``, ``larger``,
    ``largerEqual``, ``smaller``, ``smallerEqual``, ``regex``, ``isEmpty``, ``notEmpty``).
    """

    id: str = "conditionAgentflow_0"
    label: str = "Condition"
    conditions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Iteration:
    """An Iteration node: runs ``body`` (nodes chained in order, inside the iteration) once per item."""

    id: str = "iterationAgentflow_0"
    label: str = "Iteration"
    items: list[Any] = field(default_factory=list)
    body: list[AgentflowNode] = field(default_factory=list)


@dataclass
class Loop:
    """A Loop node: goes back to node ``target`` until it has looped ``max_loop_count`` times, then says
    ``fallback`` (Flowise's default sentence when empty)."""

    target: str
    id: str = "loopAgentflow_0"
    label: str = "Loop"
    max_loop_count: int = 5
    fallback: str | None = None


@dataclass
class DirectReply:
    """A Direct Reply node: answers ``message`` without a model."""

    message: str
    id: str = "directReplyAgentflow_0"
    label: str = "Direct Reply"


AgentflowNode: TypeAlias = "LLM | Agent | HumanInput | Condition | Iteration | Loop | DirectReply"
Edge: TypeAlias = "tuple[str, str] | tuple[str, str, int]"
"""``(source, target)`` or ``(source, target, output)``: ``output`` picks a branching node's anchor (Human Input:
0 proceed, 1 reject; Condition: the condition's index, ``len(conditions)`` for else)."""
