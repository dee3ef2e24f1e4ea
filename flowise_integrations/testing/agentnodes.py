"""How each agentflow v2 node runs: the events it streams and the result Flowise records for it.

Mirrors the node classes of Flowise 3.1.x (``packages/components/nodes/agentflow``): what goes into a node's
``input`` (its messages and inputs), ``output`` (content, usage, response metadata, tools) and ``chatHistory``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from .agentgraph import Graph, StartNode, Variables, js_string, resolve
from .flow import split_tokens
from .llmcall import approx_tokens, estimated_usage, model_config, response_metadata, tool_round_chunks, usage_metadata
from .nodes import LLM, Agent, Condition, DirectReply, HumanInput, Iteration, Loop
from .turn import Event, FlowAborted, FlowFailure, Step, Turn, heartbeat_steps, token_steps
from .wire import UNDEFINED

__all__ = ["ABORTED", "NodeRun", "Runtime", "human_input_action", "run_node"]

ABORTED: Final = "This operation was aborted"
_TOOL_DESCRIPTIONS: Final = {
    "calculator": "Useful for getting the result of a math expression. The input to this tool should be a valid "
    "mathematical expression that could be executed by a simple calculator."
}
_NAMES: Final = {
    StartNode: "startAgentflow",
    LLM: "llmAgentflow",
    Agent: "agentAgentflow",
    HumanInput: "humanInputAgentflow",
    Condition: "conditionAgentflow",
    Iteration: "iterationAgentflow",
    Loop: "loopAgentflow",
    DirectReply: "directReplyAgentflow",
}
_SPACES: Final = re.compile(r"\s")


def node_name(node: Any) -> str:
    """Flowise's component name of a scripted node (``llmAgentflow``...)."""
    return _NAMES[type(node)]


@dataclass
class Runtime:
    """One run of a flow (or of an iteration's body): what the nodes see and what they leave behind."""

    turn: Turn
    graph: Graph
    executed: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    chat_history: list[dict[str, Any]] = field(default_factory=list)
    form: dict[str, Any] = field(default_factory=dict)
    past: list[dict[str, Any]] = field(default_factory=list)
    prepended: list[dict[str, Any]] = field(default_factory=list)
    recursive: bool = False
    iteration: dict[str, Any] | None = None
    loop_counts: dict[str, int] = field(default_factory=dict)

    @property
    def count(self) -> Callable[[str], int]:
        """The token counter of LangChain's usage estimate."""
        return self.turn.flow.count_tokens or approx_tokens

    def variables(self) -> Variables:
        """What ``{{ ... }}`` can reference now."""
        body_form = self.turn.body.get("form")
        question = self.turn.question if isinstance(self.turn.question, str) else ""
        outputs = {}
        for entry in self.executed:
            output = entry.get("data", {}).get("output")
            if isinstance(output, dict) and "content" in output:
                outputs[entry["nodeId"]] = output["content"]
        return Variables(
            question=question,
            form=body_form if isinstance(body_form, dict) and body_form else self.form,
            state=self.state,
            iteration=self.iteration.get("value") if self.iteration else None,
            outputs=outputs,
        )


@dataclass
class NodeRun:
    """A node's result (what ``agentFlowExecutedData`` records under ``data``) and whether the run stops."""

    result: dict[str, Any]
    stop: bool = False


def _now_ms() -> int:
    return int(time.time() * 1000)


def _history_name(label: str) -> str:
    return _SPACES.sub("_", label.lower()).strip()


def _answer(rt: Runtime, text: str | None) -> tuple[str, list[str], bool]:
    """The text and tokens a node answers, and whether it is the flow's answer (its "owner")."""
    if text is None:
        return rt.turn.text, list(rt.turn.tokens), True
    resolved = resolve(text, rt.variables())
    return resolved, split_tokens(resolved), False


def _memory_past(past: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``getPastChatHistoryImageMessages`` for text rows: ``{role, content[, additional_kwargs]}``."""
    out = []
    for message in past:
        item: dict[str, Any] = {"role": message.get("role") or "user", "content": message.get("content")}
        kwargs = message.get("additional_kwargs")
        if isinstance(kwargs, dict):
            extra = {k: kwargs[k] for k in ("artifacts", "fileAnnotations", "usedTools")
                     if isinstance(kwargs.get(k), list) and kwargs[k]}  # fmt: skip
            if extra:
                item["additional_kwargs"] = extra
        out.append(item)
    return out


def _messages(rt: Runtime, node: LLM, input_value: Any) -> list[dict[str, Any]]:
    """The messages an LLM/Agent node sends: system, prepended history, memory, the user's input."""
    messages: list[dict[str, Any]] = []
    if rt.prepended and not rt.chat_history:
        messages += [{"role": "assistant" if m.get("role") == "apiMessage" else "user", "content": m.get("content")}
                     for m in rt.prepended]  # fmt: skip
    if node.system:
        messages.insert(0, {"role": "system", "content": resolve(node.system, rt.variables())})
    user = [{"role": "user", "content": input_value}] if isinstance(input_value, str) and input_value else []
    if node.memory:
        messages += [*_memory_past(rt.past), *rt.chat_history]
        if not rt.chat_history:
            messages += user
    elif not rt.chat_history:
        messages += user
    return messages


def _inputs(rt: Runtime, node: LLM, prefix: str, extra: dict[str, Any]) -> dict[str, Any]:
    inputs: dict[str, Any] = {f"{prefix}Model": "chatOpenAI", **extra, f"{prefix}EnableMemory": node.memory}
    if node.memory_settings:
        inputs.update({f"{prefix}MemoryType": "allMessages", f"{prefix}MemoryWindowSize": "20",
                       f"{prefix}MemoryMaxTokenLimit": "2000"})  # fmt: skip
    inputs[f"{prefix}ReturnResponseAs"] = node.return_as
    inputs[f"{prefix}ModelConfig"] = model_config(prefix, rt.turn.credential_id, streaming=node.streaming)
    return inputs


def _chat_history(rt: Runtime, node: LLM, input_value: Any, content: str, kwargs: dict[str, Any]) -> list[Any]:
    history: list[dict[str, Any]] = []
    if not rt.chat_history and isinstance(input_value, str) and input_value:
        history.append({"role": "user", "content": input_value})
    role = "assistant" if node.return_as == "assistantMessage" else "user"
    answer: dict[str, Any] = {"role": role, "content": content, "name": _history_name(node.label)}
    if kwargs:
        answer["additional_kwargs"] = kwargs
    return [*history, answer]


def _owner_payloads(rt: Runtime, *, with_tools: bool) -> list[tuple[str, Any]]:
    """The flow's scripted payloads, carried by the node that answers the flow's answer."""
    flow = rt.turn.flow
    pairs: list[tuple[str, Any]] = [("usedTools", flow.used_tools)] if with_tools else []
    pairs += [("sourceDocuments", flow.source_documents), ("artifacts", flow.artifacts),
              ("fileAnnotations", flow.file_annotations)]  # fmt: skip
    return [(name, value) for name, value in pairs if value is not None and value is not UNDEFINED]


def _thinking(rt: Runtime) -> tuple[list[Event], dict[str, Any] | None]:
    """The role chunk's empty token, then reasoning chunks (each also an empty token), then the closer."""
    flow = rt.turn.flow
    prelude = [Event("token", "")]
    if not flow.thinking:
        return prelude, None
    for piece in flow.thinking:
        prelude += [Event("thinking", piece), Event("token", "")]
    prelude.append(Event("thinking", "", flow.thinking_duration))
    return prelude, {"thinking": "".join(flow.thinking), "thinkingDuration": flow.thinking_duration}


def _stream(rt: Runtime, tokens: list[str], prelude: list[Event], owner: bool, streamed: bool) -> Iterable[Step]:
    """A model call's chunks: the flow's faults and delays strike its owner; silent calls emit no events."""
    if owner:
        steps: Iterable[Step] = token_steps(rt.turn, tokens, prelude)
        if streamed:
            yield from steps
        else:
            yield from (s for s in steps if not isinstance(s, Event))
        return
    if streamed:
        yield from prelude
        for token in tokens:
            rt.turn.check_abort()
            yield Event("token", token)


def _call(
    rt: Runtime, node: LLM, tokens: list[str], owner: bool, streamed: bool, kind: str
) -> Generator[Step, None, dict[str, Any] | None]:
    """Stream (or silently invoke) one answering model call; returns the reasoning content, if any."""
    prelude, reason = _thinking(rt) if owner and streamed else ([Event("token", "")], None)
    try:
        yield from _stream(rt, tokens, prelude, owner, streamed)
        if streamed:
            yield Event("token", "")  # the finish-reason chunk
            yield Event("token", "")  # the usage chunk
        if owner:
            yield from heartbeat_steps(rt.turn)
        rt.turn.check_abort()
    except FlowAborted:  # the model call throws the AbortError; the node reports it like any error
        raise FlowFailure(f"Error in {kind} node: {ABORTED}") from None
    except FlowFailure as exc:
        raise FlowFailure(exc.message) from None
    return reason


def run_llm(rt: Runtime, node: LLM, input_value: Any, is_last: bool) -> Generator[Step, None, NodeRun]:
    """The LLM node: one model call, streamed when it is the last node."""
    text, tokens, owner = _answer(rt, node.answer)
    messages = _messages(rt, node, input_value)
    streamed = is_last and node.streaming
    usage = usage_metadata(node.usage, rt.turn.flow.usage_metadata())
    started = _now_ms()
    reason = yield from _call(rt, node, tokens, owner, streamed, "LLM")
    if is_last and not streamed:
        yield Event("token", text)
    ended = _now_ms()
    estimate = None if streamed else estimated_usage(messages, text, rt.count)
    output: dict[str, Any] = {
        "content": text,
        "timeMetadata": {"start": started, "end": ended, "delta": ended - started},
        "calledTools": [],
        "usageMetadata": usage,
        "responseMetadata": response_metadata(usage, streamed=streamed, estimated=estimate),
    }
    payloads = _owner_payloads(rt, with_tools=True) if owner else []
    output.update(payloads)
    if reason is not None:
        output["reasonContent"] = reason
    if is_last:
        for name, value in payloads:
            yield Event(name, value)
    if streamed:
        yield Event("calledTools", [])
        yield Event("usageMetadata", usage)
    kwargs = {k: v for k, v in payloads if k in ("artifacts", "fileAnnotations") and v}
    result = {
        "id": node.id,
        "name": "llmAgentflow",
        "input": {"messages": messages, **_inputs(rt, node, "llm", {})},
        "output": output,
        "state": dict(rt.state),
        "chatHistory": _chat_history(rt, node, input_value, text, kwargs),
    }
    return NodeRun(result)


def _tool_calls(rt: Runtime, node: Agent) -> list[dict[str, Any]]:
    call = "call_" + rt.turn.execution_id[:6]
    return [
        {"name": t.get("tool") or "tool", "args": t.get("toolInput", {}), "id": f"{call}{i:02x}", "type": "tool_call"}
        for i, t in enumerate(node.tools)
    ]


def _announced(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"tool": c.get("name") or "tool", "toolInput": c.get("args"), "toolOutput": ""} for c in calls]


def _assistant(rt: Runtime, calls: list[dict[str, Any]], content: str, usage: dict[str, Any]) -> dict[str, Any]:
    """The tool-calling response as the Agent node appends it to its messages."""
    functions = [{"index": i, "id": c["id"], "type": "function",
                  "function": {"name": c["name"], "arguments": json.dumps(c["args"])}}
                 for i, c in enumerate(calls)]  # fmt: skip
    return {"role": "assistant", "content": content, "tool_calls": calls,
            "additional_kwargs": {"tool_calls": functions}, "usage_metadata": usage,
            "id": "chatcmpl-" + rt.turn.execution_id.replace("-", "")[-12:]}  # fmt: skip


def _tool_results(calls: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results = []
    for call, used in zip(calls, tools, strict=False):
        output = used.get("toolOutput", "")
        content = output if isinstance(output, str) else json.dumps(output, separators=(",", ":"))
        results.append({"role": "tool", "content": content, "tool_call_id": call["id"], "name": call["name"],
                        "additional_kwargs": {}})  # fmt: skip
    return results


def _available_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for t in tools:
        name, args = t.get("tool") or "tool", t.get("toolInput", {})
        properties = {k: {"type": "string"} for k in args} if isinstance(args, dict) else {}
        schema = {"type": "object", "properties": properties, "additionalProperties": False}
        found.setdefault(name, {"name": name, "description": _TOOL_DESCRIPTIONS.get(name, name), "schema": schema,
                                "toolNode": {"label": name.replace("_", " ").title(), "name": name}})  # fmt: skip
    return list(found.values())


def _attempt(calls: list[dict[str, Any]], content: str) -> str:
    """What an Agent says when a tool call waits for approval."""
    detail = json.dumps(calls[0], indent=2, ensure_ascii=False)
    return f"{content}\nAttempting to use tool:\n```json\n{detail}\n```"


def run_agent(
    rt: Runtime, node: Agent, input_value: Any, is_last: bool, human_input: dict[str, Any] | None, action: Any
) -> Generator[Step, None, NodeRun]:
    """The Agent node: a tool round (or a stop for approval, or its resumption), then the answer."""
    flow = rt.turn.flow
    streamed = is_last and node.streaming
    default = flow.usage_metadata()
    answer_usage = usage_metadata(node.usage, default)
    tool_usage = usage_metadata(node.tool_usage, default)
    messages = _messages(rt, node, input_value)
    agent_tools = [{"agentSelectedTool": name, "agentSelectedToolRequiresHumanInput": True if node.approval else "",
                    "agentSelectedToolConfig": {"agentSelectedTool": name}}
                   for name in dict.fromkeys(t.get("tool") or "tool" for t in node.tools)]  # fmt: skip
    extra: dict[str, Any] = {"agentTools": agent_tools}
    started = _now_ms()
    used: list[dict[str, Any]] = []
    answer: str | None = node.answer
    if human_input is not None:
        decision = human_input.get("type")
        if decision not in ("proceed", "reject"):
            raise FlowFailure(
                f"Error in Agent node: Invalid human input type. Expected 'proceed' or 'reject', but got '{decision}'"
            )
        data = action.get("data") if isinstance(action, dict) else None
        checkpoint = data.get("input", {}).get("messages") if isinstance(data, dict) else None
        checkpoint = checkpoint if isinstance(checkpoint, list) and checkpoint else [{}]
        response = checkpoint[-1] if isinstance(checkpoint[-1], dict) else {}
        calls = response.get("tool_calls") or []
        messages = list(checkpoint[:-1])
        if calls:
            yield Event("calledTools", _announced(calls))
        spent = (response.get("usage_metadata") or {}).get("total_tokens", 0)
        if decision == "proceed":
            used = list(node.tools)
            messages += [response, *_tool_results(calls, used)]
        else:
            answer = node.declined if node.declined is not None else node.answer
        extra_tokens = spent + answer_usage.get("total_tokens", 0)
    else:
        calls = _tool_calls(rt, node)
        if calls:
            if streamed:
                for _ in range(tool_round_chunks(calls)):
                    yield Event("token", "")
            yield Event("calledTools", _announced(calls))
        if calls and node.approval:
            return (yield from _stop_for_approval(rt, node, input_value, messages, calls, tool_usage, extra, started))
        if calls:
            used = list(node.tools)
            messages += [_assistant(rt, calls, "", tool_usage), *_tool_results(calls, used)]
        extra_tokens = (tool_usage.get("total_tokens", 0) if calls else 0) + (
            answer_usage.get("total_tokens", 0) if calls else 0
        )
    text, tokens, owner = _answer(rt, answer)
    reason = yield from _call(rt, node, tokens, owner, streamed, "Agent")
    if is_last and not streamed:
        yield Event("token", text)
    ended = _now_ms()
    payloads = _owner_payloads(rt, with_tools=False) if owner else []
    if is_last and used:
        yield Event("usedTools", used)
    if is_last:
        for name, value in payloads:
            yield Event(name, value)
    usage = {
        **answer_usage,
        "total_tokens": answer_usage.get("total_tokens", 0) + extra_tokens,
        "tool_call_tokens": extra_tokens,
    }  # fmt: skip (Flowise's node total: the tool rounds added on)
    estimate = None if streamed else estimated_usage(messages, text, rt.count)
    output: dict[str, Any] = {
        "content": text,
        "timeMetadata": {"start": started, "end": ended, "delta": ended - started},
        "calledTools": [],
        "usageMetadata": usage,
        "responseMetadata": response_metadata(answer_usage, streamed=streamed, estimated=estimate),
    }
    if used:
        output["usedTools"] = used
    for name, value in payloads:
        if name in ("sourceDocuments", "artifacts") and value:
            output[name] = value
    if node.tools:
        output["availableTools"] = _available_tools(node.tools)
    for name, value in payloads:
        if name == "fileAnnotations" and value:
            output[name] = value
    if reason is not None:
        output["reasonContent"] = reason
    if streamed:
        yield Event("calledTools", [])
        yield Event("usageMetadata", answer_usage)
    kwargs = {k: v for k, v in (("artifacts", flow.artifacts if owner else None),
                                ("fileAnnotations", flow.file_annotations if owner else None),
                                ("usedTools", used)) if v}  # fmt: skip
    node_input = {"messages": messages, **_inputs(rt, node, "agent", extra)}
    if human_input is not None:
        node_input["humanInput"] = human_input
    result = {
        "id": node.id,
        "name": "agentAgentflow",
        "input": node_input,
        "output": output,
        "state": dict(rt.state),
        "chatHistory": _chat_history(rt, node, input_value, text, kwargs),
    }
    return NodeRun(result)


def _stop_for_approval(
    rt: Runtime,
    node: Agent,
    input_value: Any,
    messages: list[dict[str, Any]],
    calls: list[dict[str, Any]],
    tool_usage: dict[str, Any],
    extra: dict[str, Any],
    started: int,
) -> Generator[Step, None, NodeRun]:
    """The tool call waits for a human: say which, and stop (the action carries the messages to resume)."""
    streamed = node.streaming
    content = _attempt(calls, "")
    yield Event("token", content)
    messages = [*messages, _assistant(rt, calls, content, tool_usage)]
    spent = tool_usage.get("total_tokens", 0)
    usage = {**tool_usage, "total_tokens": spent * 2, "tool_call_tokens": spent}
    ended = _now_ms()
    estimate = None if streamed else estimated_usage(messages[:-1], content, rt.count)
    output = {
        "content": content,
        "timeMetadata": {"start": started, "end": ended, "delta": ended - started},
        "calledTools": calls,
        "usageMetadata": usage,
        "responseMetadata": response_metadata(
            tool_usage, streamed=streamed, finish_reason="tool_calls", estimated=estimate
        ),
        "availableTools": _available_tools(node.tools),
        "isWaitingForHumanInput": True,
    }
    if streamed:
        yield Event("calledTools", _announced(calls))
        yield Event("usageMetadata", tool_usage)
    result = {
        "id": node.id,
        "name": "agentAgentflow",
        "input": {"messages": messages, **_inputs(rt, node, "agent", extra)},
        "output": output,
        "state": dict(rt.state),
        "chatHistory": _chat_history(rt, node, input_value, content, {}),
    }
    return NodeRun(result, stop=True)


def run_human_input(
    rt: Runtime, node: HumanInput, human_input: dict[str, Any] | None
) -> Generator[Step, None, NodeRun]:
    """Human Input: ask (and stop), or, resumed, turn the decision into its two outcomes."""
    state = dict(rt.state)
    if human_input is None:
        messages = [*rt.past, *rt.chat_history]
        last = messages[-1].get("content") or "" if messages else ""
        description = resolve(node.description, rt.variables()) or "Do you want to proceed?"
        description = f"{js_string(last) if not isinstance(last, str) else last}\n\n{description}"
        yield Event("token", description)
        result = {"id": node.id, "name": "humanInputAgentflow",
                  "input": {"messages": messages, "humanInputEnableFeedback": node.feedback},
                  "output": {"content": description}, "state": state,
                  "chatHistory": [{"role": "assistant", "content": description}]}  # fmt: skip
        return NodeRun(result, stop=True)
    decision, feedback = human_input.get("type"), human_input.get("feedback")
    kept = feedback if node.feedback and feedback else UNDEFINED
    outcomes = [{"type": kind, "startNodeId": human_input.get("startNodeId", UNDEFINED), "feedback": kept,
                 "isFulfilled": decision == kind} for kind in ("proceed", "reject")]  # fmt: skip
    said = feedback or decision
    messages = [*rt.past, *rt.chat_history, {"role": "user", "content": said}]
    node_input: dict[str, Any] = {**human_input, "messages": messages}
    result = {"id": node.id, "name": "humanInputAgentflow", "input": node_input,
              "output": {"content": said, "conditions": outcomes}, "state": state}  # fmt: skip
    if feedback:
        result["chatHistory"] = [{"role": "user", "content": feedback}]
    return NodeRun(result)


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if number == number else 0.0


def _compare(operation: str, kind: str, left: Any, right: Any) -> bool:
    if kind == "number":
        left, right = _number(left), _number(right)
    elif kind != "boolean":
        left, right = str(left or ""), str(right or "")
    checks: dict[str, Callable[[], bool]] = {
        "contains": lambda: str(right or "") in str(left or ""),
        "notContains": lambda: str(right or "") not in str(left or ""),
        "endsWith": lambda: str(left).endswith(str(right)),
        "startsWith": lambda: str(left).startswith(str(right)),
        "equal": lambda: left == right,
        "notEqual": lambda: left != right,
        "larger": lambda: _number(left) > _number(right),
        "largerEqual": lambda: _number(left) >= _number(right),
        "smaller": lambda: _number(left) < _number(right),
        "smallerEqual": lambda: _number(left) <= _number(right),
        "regex": lambda: re.search(str(right or ""), str(left or "")) is not None,
        "isEmpty": lambda: left in (None, ""),
        "notEmpty": lambda: left not in (None, ""),
    }
    try:
        return checks.get(operation, lambda: False)()
    except re.error:
        return False


def run_condition(rt: Runtime, node: Condition) -> NodeRun:
    """Condition: the first fulfilled condition is marked, then the else branch (fulfilled if none was)."""
    variables = rt.variables()
    conditions = [{k: resolve(v, variables) if isinstance(v, str) else v for k, v in c.items()}
                  for c in node.conditions]  # fmt: skip
    initial = {str(i): c for i, c in enumerate(conditions)}
    for i, c in enumerate(conditions):
        if _compare(str(c.get("operation")), str(c.get("type", "string")), c.get("value1"), c.get("value2")):
            conditions[i] = {**c, "isFulfilled": True}
            break
    fulfilled = any(c.get("isFulfilled") for c in conditions)
    conditions.append(
        {"type": "string", "value1": "", "operation": "equal", "value2": "", "isFulfilled": not fulfilled}
    )
    result = {"id": node.id, "name": "conditionAgentflow", "input": {"conditions": initial},
              "output": {"conditions": conditions}, "state": dict(rt.state)}  # fmt: skip
    return NodeRun(result)


def run_loop(rt: Runtime, node: Loop) -> NodeRun:
    """Loop: points back at its target (the executor does the looping)."""
    label = rt.graph.label_of(node.target) if node.target in rt.graph.nodes else node.target
    output = {"content": f"Loop back to {label} ({node.target})", "nodeID": node.target,
              "maxLoopCount": node.max_loop_count, "fallbackMessage": node.fallback or UNDEFINED}  # fmt: skip
    result = {"id": node.id, "name": "loopAgentflow",
              "input": {"nodeID": node.target, "maxLoopCount": node.max_loop_count}, "output": output,
              "state": dict(rt.state)}  # fmt: skip
    return NodeRun(result)


def run_direct_reply(rt: Runtime, node: DirectReply, is_last: bool) -> Generator[Step, None, NodeRun]:
    """Direct Reply: its message, streamed when it is the last node."""
    message = resolve(node.message, rt.variables())
    if is_last:
        yield Event("token", message)
    result = {"id": node.id, "name": "directReplyAgentflow", "input": {}, "output": {"content": message},
              "state": dict(rt.state)}  # fmt: skip
    return NodeRun(result)


def run_start(rt: Runtime, node: StartNode, input_value: Any) -> NodeRun:
    """Start: the question (chat) or the form (title, description, fields in; the values out)."""
    flow = rt.turn.flow
    inputs: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    if flow.input_type == "form":
        inputs["form"] = {"title": flow.form_title, "description": flow.form_description,
                          "inputs": list(flow.form_fields) or ""}  # fmt: skip
        outputs["form"] = rt.form if rt.form else input_value
    else:
        inputs["question"] = input_value
        outputs["question"] = input_value
    result = {"id": node.id, "name": "startAgentflow", "input": inputs, "output": outputs, "state": dict(rt.state)}
    return NodeRun(result)


def run_iteration(rt: Runtime, node: Iteration) -> NodeRun:
    """Iteration: its items (the executor runs the body once per item)."""
    result = {"id": node.id, "name": "iterationAgentflow", "input": {"iterationInput": list(node.items)},
              "output": {}, "state": dict(rt.state)}  # fmt: skip
    return NodeRun(result)


def run_node(
    rt: Runtime, node: Any, input_value: Any, is_last: bool, human_input: dict[str, Any] | None, action: Any
) -> Generator[Step, None, NodeRun]:
    """Run one node of any kind."""
    if isinstance(node, StartNode):
        return run_start(rt, node, input_value)
    if isinstance(node, Agent):
        return (yield from run_agent(rt, node, input_value, is_last, human_input, action))
    if isinstance(node, LLM):
        return (yield from run_llm(rt, node, input_value, is_last))
    if isinstance(node, HumanInput):
        return (yield from run_human_input(rt, node, human_input))
    if isinstance(node, Condition):
        return run_condition(rt, node)
    if isinstance(node, Loop):
        return run_loop(rt, node)
    if isinstance(node, DirectReply):
        return (yield from run_direct_reply(rt, node, is_last))
    if isinstance(node, Iteration):
        return run_iteration(rt, node)
    raise TypeError(f"not an agentflow node: {node!r}")


def human_input_action(node_id: str, label: str, node_input: Any, action_id: str) -> dict[str, Any]:
    """The ``action`` a stopped run asks the human with (Proceed / Reject)."""
    return {
        "id": action_id,
        "mapping": {"approve": "Proceed", "reject": "Reject"},
        "elements": [
            {"type": "agentflowv2-approve-button", "label": "Proceed"},
            {"type": "agentflowv2-reject-button", "label": "Reject"},
        ],
        "data": {"nodeId": node_id, "nodeLabel": label, "input": node_input},
    }
