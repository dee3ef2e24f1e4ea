"""Agent flows for the real Flowise, built over REST from the live node definitions (stdlib only).

:func:`build_agent_flows` is called by :func:`flows.build_flows` for every target. What exists per version:

* Flowise 3.x (Agentflow V2, ``AGENTFLOW``): :data:`AGENTFLOW_V2_FLOWS`: a Human Input stop, an Agent whose
  tool needs approval, a Condition, an Iteration, a Loop and a form-input Start;
* every version (agentflow V1, ``MULTIAGENT``): :data:`MULTIAGENT_FLOWS`: a Supervisor with a worker
  without tools and a worker with the calculator; Sequential Agents (an Agent with the calculator) and the
  same with ``interrupt`` (tool approval in the V1 dialect).

Every model node points at ``fake_llm.py``. Its system message scripts the fake model: ``REPLY_WITH: <text>``
is the answer (Flowise resolves ``{{ $form.x }}`` / ``{{ $iteration.item }}`` in it first, so the answer
shows what reached the model) and ``USAGE: <in>/<out>`` / ``TOOL_USAGE: <in>/<out>`` what it bills, so each
model call of a flow has a known, distinct usage (see :data:`NODE_USAGE`).
"""

from __future__ import annotations

import json
from typing import Any

from flows import MODEL_NAME, FlowGraph, FlowSpec, NodeDefinitions, _model_config, major_of

HUMAN_INPUT = "af_human_input"
TOOL_APPROVAL = "af_tool_approval"
CONDITION = "af_condition"
ITERATION = "af_iteration"
LOOP = "af_loop"
FORM = "af_form"
SUPERVISOR = "multiagent_supervisor"
SEQUENTIAL = "sequential_agents"
SEQUENTIAL_APPROVAL = "sequential_approval"

AGENTFLOW_V2_FLOWS = (HUMAN_INPUT, TOOL_APPROVAL, CONDITION, ITERATION, LOOP, FORM)
MULTIAGENT_FLOWS = (SUPERVISOR, SEQUENTIAL, SEQUENTIAL_APPROVAL)
AGENT_FLOW_NAMES = AGENTFLOW_V2_FLOWS + MULTIAGENT_FLOWS

# What each scripted model node answers (REPLY_WITH) and bills (input, output tokens).
DRAFT = "Draft: the meeting moves to 10am."
SENT = "The approved draft was sent."
DISCARDED = "The draft was discarded."
REVIEW_PROMPT = "Send this draft?"
TOOL_ANSWER = "The tool said: 4."
TOOL_DECLINED = "Understood, I will not use the calculator."
WEATHER = "It is sunny today."
GENERAL = "That is not about the weather."
WEATHER_WORD = "weather"
ITERATION_ITEMS = ("alpha", "beta", "gamma")
LOOP_DRAFT = "Another draft."
LOOP_MAX = 2
LOOP_FALLBACK = "Stopped after two drafts."
FORM_TITLE = "Sign-up"
FORM_FIELDS: tuple[dict[str, Any], ...] = (
    {"type": "string", "label": "Name", "name": "name", "addOptions": ""},
    {"type": "number", "label": "Age", "name": "age", "addOptions": ""},
    {"type": "boolean", "label": "Subscribed", "name": "subscribed", "addOptions": ""},
    {"type": "options", "label": "Plan", "name": "plan", "addOptions": [{"option": "basic"}, {"option": "pro"}]},
)
FORM_REPLY = "Hello {{ $form.name }}, age {{ $form.age }}, plan {{ $form.plan }}, subscribed {{ $form.subscribed }}."
RESEARCH_NOTES = "Research notes: Paris is the capital of France."
SEQ_ANSWER = TOOL_ANSWER

NODE_USAGE: dict[str, tuple[int, int]] = {
    "drafter": (11, 13),
    "sender": (17, 19),
    "approval_tool_call": (7, 3),
    "approval_answer": (13, 11),
    "weather": (5, 3),
    "general": (6, 4),
    "iteration_item": (3, 2),
    "loop_writer": (4, 6),
    "form": (8, 9),
}
"""The usage each scripted model node bills per call (``fake_llm`` default: 10 / 12)."""

SAMPLE_INPUTS: dict[str, dict[str, Any]] = {
    HUMAN_INPUT: {"question": "Draft a note about the meeting."},
    TOOL_APPROVAL: {"question": "what is 2 + 2?"},
    CONDITION: {"question": f"How is the {WEATHER_WORD}?"},
    ITERATION: {"question": "Go through the list."},
    LOOP: {"question": "Write drafts."},
    FORM: {"form": {"name": "Ada", "age": 36, "subscribed": True, "plan": "pro"}},
    SUPERVISOR: {"question": "Tell me about Paris and compute 2 + 2."},
    SEQUENTIAL: {"question": "what is 2 + 2?"},
    SEQUENTIAL_APPROVAL: {"question": "what is 2 + 2?"},
}
"""The request fields (``question`` or ``form``) of each flow's first call."""


def script(
    reply: str | None = None, usage: tuple[int, int] | None = None, tool_usage: tuple[int, int] | None = None
) -> str:
    """A system message that scripts the fake model (one directive per line)."""
    lines = ["You are a scripted test node."]
    if reply is not None:
        lines.append(f"REPLY_WITH: {reply}")
    if usage is not None:
        lines.append(f"USAGE: {usage[0]}/{usage[1]}")
    if tool_usage is not None:
        lines.append(f"TOOL_USAGE: {tool_usage[0]}/{tool_usage[1]}")
    return "\n".join(lines)


def link(g: FlowGraph, source: str, target: str, *, output: int | None = None, label: str | None = None) -> None:
    """Agentflow V2 edge from output anchor ``output`` (branching nodes) or the only anchor of ``source``."""
    anchors = next(n["data"]["outputAnchors"] for n in g.nodes if n["id"] == source)
    handle = anchors[output or 0]["id"]
    data: dict[str, Any] = {"isHumanInput": False}
    if label is not None:
        data["edgeLabel"] = label
    if g.nodes and any(n["id"] == source and n["data"]["name"] == "humanInputAgentflow" for n in g.nodes):
        data["isHumanInput"] = True
    g.edges.append(
        {
            "source": source,
            "sourceHandle": handle,
            "target": target,
            "targetHandle": target,
            "type": "agentFlow",
            "data": data,
            "id": f"{source}-{handle}-{target}-{target}",
        }
    )


def _start(g: FlowGraph, **inputs: Any) -> None:
    g.add("startAgentflow", "startAgentflow_0", {"startInputType": "chatInput", **inputs}, label="Start")


def _llm(g: FlowGraph, node_id: str, label: str, system: str, cred: str, llm: str, **inputs: Any) -> None:
    g.add(
        "llmAgentflow",
        node_id,
        {
            "llmModel": "chatOpenAI",
            "llmMessages": [{"role": "system", "content": system}],
            "llmEnableMemory": True,
            "llmMemoryType": "allMessages",
            "llmReturnResponseAs": "userMessage",
            "llmModelConfig": _model_config("llm", cred, llm),
            **inputs,
        },
        label=label,
    )


def _human_input(defs: NodeDefinitions, cred: str, llm: str) -> dict[str, Any]:
    """Start -> LLM "Drafter" -> Human Input "Review" -> proceed: LLM "Sender" / reject: Direct Reply."""
    g = FlowGraph(defs, agentflow=True)
    _start(g)
    _llm(g, "llmAgentflow_0", "Drafter", script(DRAFT, NODE_USAGE["drafter"]), cred, llm)
    g.add(
        "humanInputAgentflow",
        "humanInputAgentflow_0",
        {
            "humanInputDescriptionType": "fixed",
            "humanInputDescription": REVIEW_PROMPT,
            "humanInputEnableFeedback": True,
        },
        label="Review",
    )
    _llm(g, "llmAgentflow_1", "Sender", script(SENT, NODE_USAGE["sender"]), cred, llm)
    g.add("directReplyAgentflow", "directReplyAgentflow_0", {"directReplyMessage": DISCARDED}, label="Discard")
    link(g, "startAgentflow_0", "llmAgentflow_0")
    link(g, "llmAgentflow_0", "humanInputAgentflow_0")
    link(g, "humanInputAgentflow_0", "llmAgentflow_1", output=0, label="proceed")
    link(g, "humanInputAgentflow_0", "directReplyAgentflow_0", output=1, label="reject")
    return g.flow_data()


def _tool_approval(defs: NodeDefinitions, cred: str, llm: str) -> dict[str, Any]:
    """Start -> Agent whose calculator needs approval: it stops before the call; proceed runs it, reject drops it."""
    g = FlowGraph(defs, agentflow=True)
    _start(g)
    system = script(TOOL_DECLINED, NODE_USAGE["approval_answer"], NODE_USAGE["approval_tool_call"])
    g.add(
        "agentAgentflow",
        "agentAgentflow_0",
        {
            "agentModel": "chatOpenAI",
            "agentMessages": [{"role": "system", "content": system}],
            "agentTools": [
                {
                    "agentSelectedTool": "calculator",
                    "agentSelectedToolRequiresHumanInput": True,
                    "agentSelectedToolConfig": {"agentSelectedTool": "calculator"},
                }
            ],
            "agentEnableMemory": True,
            "agentMemoryType": "allMessages",
            "agentReturnResponseAs": "userMessage",
            "agentModelConfig": _model_config("agent", cred, llm),
        },
        label="Approval Agent",
    )
    link(g, "startAgentflow_0", "agentAgentflow_0")
    return g.flow_data()


def _condition(defs: NodeDefinitions, cred: str, llm: str) -> dict[str, Any]:
    """Start -> Condition (question contains "weather") -> LLM "Weather" / else LLM "General"."""
    g = FlowGraph(defs, agentflow=True)
    _start(g)
    g.add(
        "conditionAgentflow",
        "conditionAgentflow_0",
        {
            "conditions": [
                {"type": "string", "value1": "{{ question }}", "operation": "contains", "value2": WEATHER_WORD}
            ]
        },
        label="Is Weather",
    )
    _llm(g, "llmAgentflow_0", "Weather", script(WEATHER, NODE_USAGE["weather"]), cred, llm)
    _llm(g, "llmAgentflow_1", "General", script(GENERAL, NODE_USAGE["general"]), cred, llm)
    link(g, "startAgentflow_0", "conditionAgentflow_0")
    link(g, "conditionAgentflow_0", "llmAgentflow_0", output=0, label="0")
    link(g, "conditionAgentflow_0", "llmAgentflow_1", output=1, label="1")
    return g.flow_data()


def _iteration(defs: NodeDefinitions, cred: str, llm: str) -> dict[str, Any]:
    """Start -> Iteration over :data:`ITERATION_ITEMS`, an LLM inside answering ``item <value>`` for each."""
    g = FlowGraph(defs, agentflow=True)
    _start(g)
    items = json.dumps([{"item": v} for v in ITERATION_ITEMS])
    g.add("iterationAgentflow", "iterationAgentflow_0", {"iterationInput": items}, label="Each Item")
    g.nodes[-1].update(type="iteration", width=500, height=250)
    _llm(
        g,
        "llmAgentflow_0",
        "Per Item",
        script("item {{ $iteration.item }}", NODE_USAGE["iteration_item"]),
        cred,
        llm,
        llmEnableMemory=False,
    )
    g.nodes[-1].update(parentNode="iterationAgentflow_0", extent="parent")
    link(g, "startAgentflow_0", "iterationAgentflow_0")
    return g.flow_data()


def _loop(defs: NodeDefinitions, cred: str, llm: str) -> dict[str, Any]:
    """Start -> LLM "Writer" -> Loop back to Writer (at most :data:`LOOP_MAX` runs, then the fallback text)."""
    g = FlowGraph(defs, agentflow=True)
    _start(g)
    _llm(g, "llmAgentflow_0", "Writer", script(LOOP_DRAFT, NODE_USAGE["loop_writer"]), cred, llm)
    g.add(
        "loopAgentflow",
        "loopAgentflow_0",
        {"loopBackToNode": "llmAgentflow_0-Writer", "maxLoopCount": LOOP_MAX, "fallbackMessage": LOOP_FALLBACK},
        label="Again",
    )
    link(g, "startAgentflow_0", "llmAgentflow_0")
    link(g, "llmAgentflow_0", "loopAgentflow_0")
    return g.flow_data()


def _form(defs: NodeDefinitions, cred: str, llm: str) -> dict[str, Any]:
    """Start with a form (string, number, boolean, options) -> LLM that echoes the form values."""
    g = FlowGraph(defs, agentflow=True)
    _start(
        g,
        startInputType="formInput",
        formTitle=FORM_TITLE,
        formDescription="Tell us about you",
        formInputTypes=[dict(f) for f in FORM_FIELDS],
    )
    _llm(g, "llmAgentflow_0", "Greeter", script(FORM_REPLY, NODE_USAGE["form"]), cred, llm)
    link(g, "startAgentflow_0", "llmAgentflow_0")
    return g.flow_data()


def _chat_model(g: FlowGraph, cred: str, llm: str) -> None:
    g.add(
        "chatOpenAI",
        "chatOpenAI_0",
        {"modelName": MODEL_NAME, "temperature": 0, "streaming": True, "basepath": llm},
        credential=cred,
    )


def _supervisor(defs: NodeDefinitions, cred: str, llm: str) -> dict[str, Any]:
    """Supervisor -> worker "Researcher" (no tools) then worker "Calculator" (calculator), then FINISH."""
    g = FlowGraph(defs)
    _chat_model(g, cred, llm)
    g.add("supervisor", "supervisor_0", {"supervisorName": "Supervisor", "recursionLimit": 10})
    g.add("worker", "worker_0", {"workerName": "Researcher", "workerPrompt": script(RESEARCH_NOTES)})
    g.add("worker", "worker_1", {"workerName": "Calculator", "workerPrompt": script()})
    g.add("calculator", "calculator_0")
    g.connect("chatOpenAI_0", "supervisor_0", "model")
    g.connect("supervisor_0", "worker_0", "supervisor")
    g.connect("supervisor_0", "worker_1", "supervisor")
    g.connect("calculator_0", "worker_1", "tools")
    return g.flow_data()


def _sequential(defs: NodeDefinitions, cred: str, llm: str, *, interrupt: bool) -> dict[str, Any]:
    """Sequential Agents: Start -> Agent with the calculator (``interrupt``: ask before calling it) -> End."""
    g = FlowGraph(defs)
    _chat_model(g, cred, llm)
    g.add("agentMemory", "agentMemory_0", {"databaseType": "sqlite"})
    g.add("seqStart", "seqStart_0")
    g.add(
        "seqAgent",
        "seqAgent_0",
        {
            "agentName": "Helper",
            "systemMessagePrompt": script(),
            "interrupt": interrupt,
            "approvalPrompt": "You are about to execute tool: {tools}. Ask if user want to proceed",
            "approveButtonText": "Yes",
            "rejectButtonText": "No",
        },
    )
    g.add("calculator", "calculator_0")
    g.add("seqEnd", "seqEnd_0")
    g.connect("chatOpenAI_0", "seqStart_0", "model")
    g.connect("agentMemory_0", "seqStart_0", "agentMemory")
    g.connect("seqStart_0", "seqAgent_0", "sequentialNode")
    g.connect("calculator_0", "seqAgent_0", "tools")
    g.connect("seqAgent_0", "seqEnd_0", "sequentialNode")
    return g.flow_data()


def build_agent_flows(
    node_defs: NodeDefinitions, *, credential_id: str, llm_base_url: str, version: str
) -> list[FlowSpec]:
    """The agent flows Flowise ``version`` supports (see the module docstring), from live node definitions."""
    cred, llm = credential_id, llm_base_url
    specs: list[FlowSpec] = []
    if major_of(version) >= 3 or major_of(version) == 0:
        specs += [
            FlowSpec(HUMAN_INPUT, "AGENTFLOW", _human_input(node_defs, cred, llm)),
            FlowSpec(TOOL_APPROVAL, "AGENTFLOW", _tool_approval(node_defs, cred, llm)),
            FlowSpec(CONDITION, "AGENTFLOW", _condition(node_defs, cred, llm)),
            FlowSpec(ITERATION, "AGENTFLOW", _iteration(node_defs, cred, llm)),
            FlowSpec(LOOP, "AGENTFLOW", _loop(node_defs, cred, llm)),
            FlowSpec(FORM, "AGENTFLOW", _form(node_defs, cred, llm)),
        ]
    specs += [
        FlowSpec(SUPERVISOR, "MULTIAGENT", _supervisor(node_defs, cred, llm)),
        FlowSpec(SEQUENTIAL, "MULTIAGENT", _sequential(node_defs, cred, llm, interrupt=False)),
        FlowSpec(SEQUENTIAL_APPROVAL, "MULTIAGENT", _sequential(node_defs, cred, llm, interrupt=True)),
    ]
    return specs
