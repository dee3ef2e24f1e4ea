"""An agentflow's graph (Start node, scripted nodes, edges) and Flowise's ``{{ variable }}`` resolution."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

from .nodes import Agent, AgentflowNode, Condition, Edge, HumanInput
from .wire import js_number

__all__ = ["START_ID", "Graph", "StartNode", "Variables", "js_string", "resolve"]

START_ID: Final = "startAgentflow_0"
_DECISIONS: Final = (Condition, HumanInput)
_TEMPLATE: Final = re.compile(r"{{(.*?)}}")


@dataclass
class StartNode:
    """The Start node every agentflow opens with (its inputs come from the FakeFlow)."""

    id: str = START_ID
    label: str = "Start"


@dataclass
class Graph:
    """Nodes by id, their children (with the output anchor used) and parents, in edge order."""

    nodes: dict[str, Any]
    children: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    parents: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, nodes: list[AgentflowNode], edges: list[Edge] | None, *, start: bool = True) -> Graph:
        """The graph of ``nodes`` (after a Start node when ``start``); no ``edges`` chains them in order."""
        ordered: list[Any] = ([StartNode()] if start else []) + list(nodes)
        graph = cls({n.id: n for n in ordered})
        if edges is None:
            links: list[tuple[str, str, int]] = [(a.id, b.id, 0) for a, b in itertools.pairwise(ordered)]
        else:
            links = [(e[0], e[1], e[2] if len(e) > 2 else 0) for e in edges]
            if start and nodes and not any(src == START_ID for src, _, _ in links):
                links.insert(0, (START_ID, nodes[0].id, 0))
        for source, target, output in links:
            if source not in graph.nodes or target not in graph.nodes:
                raise ValueError(f"edge {source} -> {target}: no such node")
            graph.children.setdefault(source, []).append((target, output))
            graph.parents.setdefault(target, []).append(source)
        return graph

    def roots(self) -> list[str]:
        """Nodes without parents: where a run (or an iteration's body) starts."""
        return [node_id for node_id in self.nodes if not self.parents.get(node_id)]

    def is_leaf(self, node_id: str) -> bool:
        """No outgoing edge (Flowise streams such a node: it is "the last node")."""
        return not self.children.get(node_id)

    def decision_parent(self, node_id: str) -> str | None:
        """``findConditionParent``: the Condition/Human Input node this one hangs from, if any."""
        node = self.nodes.get(node_id)
        if isinstance(node, _DECISIONS):
            return node_id
        seen: set[str] = set()
        current = node_id
        while current not in seen:
            seen.add(current)
            parents = self.parents.get(current)
            if not parents:
                return None
            parent = parents[0]
            if isinstance(self.nodes.get(parent), _DECISIONS):
                return parent
            current = parent
        return None

    def label_of(self, node_id: str) -> str:
        """A node's label."""
        return str(self.nodes[node_id].label)

    def tool_nodes(self) -> list[Agent]:
        """Every Agent node (for the flow's data)."""
        return [n for n in self.nodes.values() if isinstance(n, Agent)]


def js_string(value: Any) -> str:
    """``String(value)`` / a template literal: ``true``, ``36``, ``a,b``, ``[object Object]``."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value) if isinstance(value, int) else js_number(value)
    if isinstance(value, list):
        return ",".join("" if v is None else js_string(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def _formatted(value: Any) -> str:
    """How Flowise writes a resolved variable: arrays and objects as JSON, the rest as strings."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return js_string(value)


def _get(value: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


@dataclass
class Variables:
    """What ``{{ ... }}`` references can see when a node runs."""

    question: str = ""
    form: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    iteration: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)


def resolve(text: str, variables: Variables) -> str:
    """``resolveVariables`` for one string: known references replaced, unknown ones left as they are."""

    def substitute(match: re.Match[str]) -> str:
        ref = match.group(1).strip()
        if ref == "question":
            return variables.question
        if ref.startswith("$form."):
            found = _get(variables.form, ref[len("$form.") :])
            return match.group(0) if found is None else _formatted(found)
        if ref == "$iteration" and variables.iteration is not None:
            return _formatted(variables.iteration)
        if ref.startswith("$iteration.") and variables.iteration is not None:
            if isinstance(variables.iteration, str):
                return variables.iteration
            found = _get(variables.iteration, ref[len("$iteration.") :])
            return match.group(0) if found is None else _formatted(found)
        if ref.startswith("$flow.state."):
            found = _get(variables.state, ref[len("$flow.state.") :])
            return match.group(0) if found is None else _formatted(found)
        node_id = ref.replace("\\", "")
        if node_id in variables.outputs:
            return _formatted(variables.outputs[node_id])
        return match.group(0)

    return _TEMPLATE.sub(substitute, text)
