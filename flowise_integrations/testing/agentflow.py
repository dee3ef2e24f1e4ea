"""Agentflow v2 (``executeAgentFlow``): the node queue, branches, stops and resumes, iterations, loops.

The run streams ``agentFlowEvent`` / ``nextAgentFlow`` / ``agentFlowExecutedData`` around each node's own events,
keeps one execution per run (a resume continues it: same id, the nodes from before the stop kept in its
executed data), and ends with the JSON reply and the stored messages Flowise 3.1.x produces.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from .agentgraph import START_ID, Graph, js_string
from .agentnodes import NodeRun, Runtime, human_input_action, node_name, run_node
from .nodes import HumanInput, Iteration, Loop
from .turn import Event, FlowAborted, FlowFailure, Step, Turn, delay, follow_up_column, follow_up_field
from .wire import UNDEFINED

__all__ = ["api_columns", "events", "past_messages", "result", "user_content", "without_credentials"]

_MAX_LOOP_COUNT: Final = 10
_MAX_ITERATIONS: Final = 1000
_FINAL_STATES: Final = ("TERMINATED", "ERROR", "STOPPED")


@dataclass
class _Waiting:
    """A node waiting for its inputs: the plain ones, and one per branching parent."""

    expected: set[str] = field(default_factory=set)
    groups: dict[str, set[str]] = field(default_factory=dict)
    received: set[str] = field(default_factory=set)

    def ready(self) -> bool:
        return self.expected <= self.received and all(group & self.received for group in self.groups.values())


def _waiting(graph: Graph, node_id: str) -> _Waiting:
    waiting = _Waiting()
    for parent in graph.parents.get(node_id, []):
        decision = graph.decision_parent(parent)
        if decision is None:
            waiting.expected.add(parent)
        else:
            waiting.groups.setdefault(decision, set()).add(parent)
    return waiting


def without_credentials(value: Any) -> Any:
    """``_removeCredentialId``: every ``FLOWISE_CREDENTIAL_ID`` dropped (JSON replies, iteration results)."""
    if isinstance(value, list):
        return [without_credentials(item) for item in value]
    if isinstance(value, dict):
        return {k: without_credentials(v) for k, v in value.items() if k != "FLOWISE_CREDENTIAL_ID"}
    return value


def past_messages(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored rows as agentflow memory: ``{content, role[, additional_kwargs]}``."""
    out = []
    for row in rows:
        message: dict[str, Any] = {"content": row["content"],
                                   "role": "user" if row["role"] == "userMessage" else "assistant"}  # fmt: skip
        kwargs = {k: row[k] for k in ("fileUploads", "artifacts", "fileAnnotations", "usedTools")
                  if row.get(k) is not None}  # fmt: skip
        if kwargs:
            message["additional_kwargs"] = kwargs
        out.append(message)
    return out


def _form_text(form: dict[str, Any]) -> str:
    return "\n".join(f"{key}: {js_string(value)}" for key, value in form.items())


def _final_input(turn: Turn) -> Any:
    """What the first node gets: the question, else the form as ``key: value`` lines."""
    question, form = turn.question, turn.body.get("form")
    if isinstance(question, str) and question:
        return question
    if isinstance(form, dict) and form:
        return _form_text(form)
    return UNDEFINED


def _parse_form(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    result = {}
    for line in str(text).split("\n"):
        key, _, value = (part.strip() for part in line.partition(": "))
        if key and value:
            result[key] = value
    return result


def _refuse_triggers(turn: Turn) -> None:
    """3.1.3+: webhook and schedule flows refuse the prediction API."""
    flow = turn.flow
    if turn.profile is not None and not turn.profile.at_least(3, 1, 3):
        return
    if flow.input_type == "webhook":
        method = (flow.webhook_method or "POST").upper()
        raise FlowFailure(
            f"This flow is configured as a Webhook Trigger. Call {method} /api/v1/webhook/{turn.flow_id} "
            "instead of the prediction API."
        )
    if flow.input_type == "schedule":
        raise FlowFailure(
            "This flow is configured as a Scheduled Trigger. It is fired by the scheduler and cannot be invoked "
            "via the API. Change the Start node Input Type to Chat or Form to call it from the prediction API."
        )


def _resume(turn: Turn, rt: Runtime, previous: dict[str, Any] | None, human: dict[str, Any]) -> str:
    """Check that the session's last execution can resume; load it; return the node it resumes at."""
    if previous is None:
        raise FlowFailure(f"No previous execution found for session {turn.session_id}")
    data: list[dict[str, Any]] = json.loads(previous["executionData"])
    execution_id, status = previous["id"], previous["state"]
    trimmed = False
    if status == "ERROR":
        if len(data) < 2:
            raise FlowFailure(
                f"Cannot resume execution {execution_id} because it is in 'ERROR' state with insufficient "
                "execution data. Only executions in 'STOPPED' state can be resumed."
            )
        if data[-1].get("status") != "ERROR" or data[-2].get("status") != "STOPPED":
            raise FlowFailure(
                f"Cannot resume execution {execution_id} because it is in 'ERROR' state and the previous item is "
                "not in 'STOPPED' state. Only executions that ended with a STOPPED state (or ERROR after STOPPED) "
                "can be resumed."
            )
        data, trimmed = data[:-1], True
    elif status != "STOPPED":
        raise FlowFailure(
            f"Cannot resume execution {execution_id} because it is in '{status}' state. Only executions in "
            "'STOPPED' state (or 'ERROR' after 'STOPPED') can be resumed."
        )
    start = human.get("startNodeId")
    if not start:
        stopped = [e for e in data if e.get("status") == "STOPPED"]
        if not stopped:
            raise FlowFailure("No stopped node found in previous execution data to resume from")
        start = stopped[-1]["nodeId"]
    if not any(e.get("nodeId") == start for e in data):
        raise FlowFailure(
            f"Node {start} not found in previous execution. This could indicate an invalid resume attempt or a "
            "modified flow."
        )
    rt.executed = data
    if trimmed:
        turn.executions.update(execution_id, data=data, state="INPROGRESS")
    last_state = data[-1].get("data", {}).get("state") if data else None
    rt.state = dict(last_state) if isinstance(last_state, dict) else {}
    turn.executions.update(execution_id, state="INPROGRESS")
    human["startNodeId"] = start
    return str(start)


def events(turn: Turn) -> Iterator[Step]:
    """The whole run, as ``executeAgentFlow`` streams it; errors end it with the node's ERROR reports."""
    flow = turn.flow
    yield from delay(flow.first_token_delay)
    _refuse_triggers(turn)
    graph = Graph.build(flow.agentflow_nodes(), flow.edges)
    history = turn.body.get("history")
    rt = Runtime(turn, graph, past=past_messages(turn.past_rows),
                 prepended=list(history) if isinstance(history, list) else [])  # fmt: skip
    previous = turn.executions.latest(turn.flow_id, turn.session_id)
    if flow.input_type == "form" and previous is not None:
        start_entry = next((e for e in json.loads(previous["executionData"]) if e.get("nodeId") == START_ID), None)
        output = start_entry.get("data", {}).get("output") if start_entry else None
        if isinstance(output, dict) and "form" in output:
            rt.form = _parse_form(output["form"])
    raw_human = turn.body.get("humanInput")
    human = dict(raw_human) if isinstance(raw_human, dict) else None
    if human is not None:
        starts = [_resume(turn, rt, previous, human)]
        turn.execution_id = previous["id"] if previous else turn.execution_id
    else:
        starts = [START_ID]
        turn.execution_id = turn.executions.create(turn.flow_id, turn.session_id)["id"]
    yield from _execute(rt, starts, human)
    turn.executed_data = rt.executed
    last = rt.executed[-1].get("data", {}).get("output") if rt.executed else None
    turn.last_output = last if isinstance(last, dict) else {}
    content = turn.last_output.get("content")
    turn.text = content if isinstance(content, str) else (" " if content is None else json.dumps(content))
    action = turn.last_output.get("humanInputAction")
    turn.action = action if isinstance(action, dict) and action else None
    turn.user_content = user_content(turn, human)


def user_content(turn: Turn, human: dict[str, Any] | None) -> str:
    """What the stored user message says (``finalUserInput``)."""
    question = turn.question if isinstance(turn.question, str) else ""
    feedback = human.get("feedback") if human else None
    fallback = question or (feedback if isinstance(feedback, str) else "") or " "
    form = turn.body.get("form")
    if turn.flow.input_type == "form" and isinstance(form, dict):
        return _form_text(form)
    return fallback


def _node_event(node_id: str, label: str, status: str, error: Any = UNDEFINED) -> Event:
    return Event("nextAgentFlow", {"nodeId": node_id, "nodeLabel": label, "status": status, "error": error})


def _execute(rt: Runtime, starts: list[str], human: dict[str, Any] | None) -> Generator[Step, None, str]:
    """The node queue of one run (or of an iteration's body); returns the run's final state."""
    turn, graph = rt.turn, rt.graph
    queue: deque[str] = deque(starts)
    waiting: dict[str, _Waiting] = {}
    status = "INPROGRESS"
    iterations = 0
    current_human = human
    while queue and status == "INPROGRESS":
        if iterations == 0 and not rt.recursive:
            yield Event("agentFlowEvent", "INPROGRESS")
        iterations += 1
        if iterations > _MAX_ITERATIONS + 1:
            raise FlowFailure("Maximum iteration limit reached")
        node_id = queue.popleft()
        node = graph.nodes.get(node_id)
        if node is None:
            continue
        label = str(node.label)
        try:
            if turn.flow.kind != "chatflow" and turn.run.aborted.is_set():
                raise FlowAborted
            yield _node_event(node_id, label, "INPROGRESS")
            last = rt.executed[-1].get("data", {}).get("output") if rt.executed else None
            action = last.get("humanInputAction") if isinstance(last, dict) else None
            node_human = None
            if current_human is not None and node_id == current_human.get("startNodeId"):
                node_human = current_human
            is_last = not rt.recursive and (
                graph.is_leaf(node_id) or (current_human is None and isinstance(node, HumanInput))
            )
            form = turn.body.get("form")
            if isinstance(turn.question, str) and turn.question and isinstance(form, dict) and form:
                raise FlowFailure("Question and form cannot be provided at the same time")
            run = yield from run_node(rt, node, _final_input(turn), is_last, node_human, action)
            if node_human is not None:  # the stopped entry goes only once the node ran (a failure keeps it)
                rt.executed = [e for e in rt.executed if e.get("nodeId") != node_id]
                current_human = None
            if isinstance(node, Iteration):
                yield from _iterate(rt, node, run)
            if run.stop:
                yield from _stop(rt, node_id, label, run)
                status = "STOPPED"
                break
            entry = {"nodeId": node_id, "nodeLabel": label, "data": run.result,
                     "previousNodeIds": list(graph.parents.get(node_id, [])), "status": "FINISHED"}  # fmt: skip
            rt.executed.append(entry)
            yield _node_event(node_id, label, "FINISHED")
            if not rt.recursive:
                yield Event("agentFlowExecutedData", list(rt.executed))
            _absorb(rt, run.result)
            cleared = yield from _follow(rt, node_id, node, run, queue, waiting)
            if cleared:
                current_human = None
        except (FlowAborted, FlowFailure) as exc:
            yield from _fail(rt, node_id, node, exc)
    states = [e.get("status") for e in rt.executed]
    status = next((s for s in _FINAL_STATES if s in states), "FINISHED")
    if not rt.recursive:
        turn.executions.update(turn.execution_id, data=rt.executed, state=status)
        yield Event("agentFlowEvent", status)
    return status


def _absorb(rt: Runtime, result: dict[str, Any]) -> None:
    """What a finished node leaves the runtime: its state, its chat history, a form, an ephemeral memory."""
    if isinstance(result.get("state"), dict):
        rt.state = result["state"]
    if isinstance(result.get("chatHistory"), list):
        rt.chat_history = [*rt.chat_history, *result["chatHistory"]]
    output = result.get("output")
    if isinstance(output, dict):
        if output.get("form"):
            rt.form = _parse_form(output["form"])
        if output.get("ephemeralMemory"):
            rt.past = []


def _stop(rt: Runtime, node_id: str, label: str, run: NodeRun) -> Iterator[Step]:
    """A Human Input node, or an Agent waiting for approval: record the STOPPED node and ask."""
    action = human_input_action(node_id, label, run.result.get("input"), str(uuid.uuid4()))
    data = {**run.result, "output": {**run.result.get("output", {}), "humanInputAction": action}}
    rt.executed.append({"nodeId": node_id, "nodeLabel": label, "data": data,
                        "previousNodeIds": list(rt.graph.parents.get(node_id, [])), "status": "STOPPED"})  # fmt: skip
    yield _node_event(node_id, label, "STOPPED")
    yield Event("agentFlowExecutedData", list(rt.executed))
    yield Event("agentFlowEvent", "STOPPED")
    yield Event("action", action)


def _fail(rt: Runtime, node_id: str, node: Any, exc: Exception) -> Iterator[Step]:
    """A node failed (or the run was aborted between nodes): report it, then end the run with the error."""
    aborted = isinstance(exc, FlowAborted) or "Aborted" in getattr(exc, "message", "")
    status = "TERMINATED" if aborted else "ERROR"
    message = "Flow execution was cancelled" if aborted else getattr(exc, "message", str(exc))
    label = str(node.label)
    data = {"id": node_id, "name": node_name(node), "error": message}
    parents = list(rt.graph.parents.get(node_id, []))
    rt.executed.append(
        {"nodeId": node_id, "nodeLabel": label, "previousNodeIds": parents, "data": data, "status": status}
    )
    yield _node_event(node_id, label, status, UNDEFINED if aborted else message)
    if not rt.recursive:
        yield Event("agentFlowExecutedData", list(rt.executed))
        rt.turn.executions.update(rt.turn.execution_id, data=rt.executed, state=status)
        yield Event("agentFlowEvent", status)
    raise FlowFailure(message) from None


def _ignored(graph: Graph, node_id: str, result: dict[str, Any]) -> set[str]:
    """``determineNodesToIgnore``: the targets of a decision node's unfulfilled outputs."""
    output = result.get("output")
    conditions = output.get("conditions") if isinstance(output, dict) else None
    if not isinstance(conditions, list) or not conditions:
        return set()
    if not any(isinstance(c, dict) and c.get("isFulfilled") is True for c in conditions):
        conditions[-1] = {**conditions[-1], "isFulfilled": True}
    ignored = set()
    for index, condition in enumerate(conditions):
        if isinstance(condition, dict) and condition.get("isFulfilled") is True:
            continue
        target = next((t for t, out in graph.children.get(node_id, []) if out == index), None)
        if target is not None:
            ignored.add(target)
    return ignored


def _follow(
    rt: Runtime, node_id: str, node: Any, run: NodeRun, queue: deque[str], waiting: dict[str, _Waiting]
) -> Generator[Step, None, bool]:
    """``processNodeOutputs``: queue the children that are ready, loop back; True if a loop cleared humanInput."""
    graph = rt.graph
    ignored = _ignored(graph, node_id, run.result)
    for child, _output in graph.children.get(node_id, []):
        if child in ignored:
            continue
        state = waiting.get(child) or _waiting(graph, child)
        waiting[child] = state
        state.received.add(node_id)
        if state.ready():
            del waiting[child]
            queue.append(child)
    output = run.result.get("output")
    if not isinstance(node, Loop) or not isinstance(output, dict) or not output.get("nodeID"):
        return False
    count = rt.loop_counts.get(node_id, 0) + 1
    limit = output.get("maxLoopCount") or _MAX_LOOP_COUNT
    if count < limit:
        rt.loop_counts[node_id] = count
        queue.append(str(output["nodeID"]))
        return True
    fallback = output.get("fallbackMessage")
    if not isinstance(fallback, str) or not fallback:
        fallback = f"Loop completed after reaching maximum iteration count of {limit}."
    yield Event("token", fallback)
    run.result["output"] = {**output, "content": fallback}
    return False


def _iterate(rt: Runtime, node: Iteration, run: NodeRun) -> Iterator[Step]:
    """Run the iteration's body once per item, each as its own (recursive) run; collect their answers."""
    body = Graph.build(list(node.body), None, start=False)
    results: list[str] = []
    items = list(node.items)
    for index, item in enumerate(items):
        context = {"index": index, "value": item, "isFirst": index == 0, "isLast": index == len(items) - 1,
                   "sessionId": rt.turn.session_id}  # fmt: skip
        sub = Runtime(rt.turn, body, state=dict(rt.state), past=list(rt.past), prepended=list(rt.prepended),
                      recursive=True, iteration=context)  # fmt: skip
        try:
            yield from _execute(sub, body.roots(), None)
        except FlowFailure as exc:
            results.append(f"Error in iteration {index + 1}: {exc.message}")
            continue
        last = sub.executed[-1].get("data", {}).get("output") if sub.executed else None
        text = last.get("content") if isinstance(last, dict) else None
        if text:
            results.append(str(text))
        for entry in without_credentials(sub.executed):
            extra = {"iterationIndex": index, "iterationContext": context, "parentNodeId": node.id}
            rt.executed.append({**entry, "data": {**entry["data"], **extra}})
        if sub.state:
            rt.state = {**rt.state, **sub.state}
    run.result["output"] = {**run.result.get("output", {}), "iterationResults": results, "content": "\n".join(results)}


def result(turn: Turn) -> dict[str, Any]:
    """The JSON reply of ``executeAgentFlow``."""
    body: dict[str, Any] = {
        "text": turn.text,
        "question": turn.question,
        "form": turn.body.get("form", UNDEFINED),
        "chatId": turn.chat_id,
        "chatMessageId": turn.chat_message_id,
        "followUpPrompts": follow_up_field(turn),
        "executionId": turn.execution_id,
        "agentFlowExecutedData": without_credentials(turn.executed_data),
    }
    if turn.action is not None:
        body["action"] = turn.action
    body["sessionId"] = turn.session_id
    return body


def api_columns(turn: Turn) -> dict[str, Any]:
    """Optional columns of the stored api message: the last node's sources, tools, files, reasoning, action."""
    last = turn.last_output or {}
    columns: dict[str, Any] = {k: last[k] for k in ("sourceDocuments", "usedTools", "fileAnnotations", "artifacts",
                                                     "reasonContent") if last.get(k)}  # fmt: skip
    columns["followUpPrompts"] = follow_up_column(turn)
    if turn.action is not None:
        columns["action"] = turn.action
    return columns
