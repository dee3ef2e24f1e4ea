"""Test flows for the real Flowise, generated from the live server's node definitions (stdlib only).

:func:`init_node` is a Python port of the UI's ``initNode()`` (``packages/ui/src/utils/genericHelper.js``):
it turns ``GET /api/v1/nodes/<name>`` into canvas node data with ``inputParams``/``inputAnchors``/
``outputAnchors`` and default ``inputs``. Handle ids follow the UI:

* chatflow input  ``<nodeId>-input-<name>-<type>``; output ``<nodeId>-output-<name>-<Base|Classes>``;
  a connected input holds ``"{{<srcId>.data.instance}}"`` (a list of them for ``list`` anchors);
* agentflow v2 output ``<nodeId>-output-<name>``; edges go node to node (``targetHandle`` = node id).

Every chat model points at the fake LLM (``basepath``) with the given ``openAIApi`` credential.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from typing import Any, Literal

NodeDefinitions = Callable[[str], dict[str, Any]]
FlowType = Literal["CHATFLOW", "AGENTFLOW", "MULTIAGENT"]

CANNED_ANSWER = "Hello from the fake LLM! This answer is streamed token by token."
TOOL_ANSWER = "The tool said: 4."
MODEL_NAME = "fake-gpt"

# Input types the UI renders as parameters (everything else is a connectable anchor).
PARAM_TYPES = frozenset(
    {
        "asyncOptions",
        "asyncMultiOptions",
        "options",
        "multiOptions",
        "array",
        "datagrid",
        "string",
        "number",
        "boolean",
        "password",
        "json",
        "code",
        "date",
        "file",
        "folder",
        "tabs",
        "conditionFunction",
    }
)

FLOW_NAMES = (
    "llm_chain",
    "conversation_chain",
    "retrieval_qa",
    "tool_agent",
    "tool_agent_detailed",
    "llm_chain_model_streaming_off",
    "llm_chain_protected",
    "agentflow_v2_llm",
    "agentflow_v2_agent_tool",
)
AGENTFLOW_V2_FLOWS = frozenset({"agentflow_v2_llm", "agentflow_v2_agent_tool"})
"""Flows that need Agentflow V2 (Flowise 3.0 and later)."""
PROTECTED_FLOWS = frozenset({"llm_chain_protected"})
"""Flows with ``apikeyid`` set: predictions need ``Authorization: Bearer <api key>``."""
NON_STREAMING_FLOWS = frozenset({"llm_chain_model_streaming_off"})
"""Flows whose ``streaming: true`` requests still get plain JSON (``isStreaming`` is false)."""
SAMPLE_QUESTIONS = {
    "retrieval_qa": "What is Flowise?",
    "tool_agent": "what is 2 + 2?",
    "tool_agent_detailed": "what is 2 + 2?",
    "agentflow_v2_agent_tool": "what is 2 + 2?",
}
"""Question to ask each flow (``"hi"`` if absent)."""
EXPECTED_ANSWERS = dict.fromkeys(FLOW_NAMES, CANNED_ANSWER) | {
    "tool_agent": TOOL_ANSWER,
    "tool_agent_detailed": TOOL_ANSWER,
    "agentflow_v2_agent_tool": TOOL_ANSWER,
}
"""The answer text each flow gives to its sample question."""
RETRIEVAL_TEXT = (
    "Flowise is an open source low-code tool for building LLM apps.\n\n"
    "The fake LLM server answers every question with a canned sentence.\n\n"
    "Paris is the capital of France."
)


def init_node(definition: dict[str, Any], node_id: str, *, agentflow: bool = False) -> dict[str, Any]:
    """Canvas node data for ``definition`` (port of the UI's ``initNode``, minus show/hide)."""
    nd = copy.deepcopy(definition)
    for key in ("filePath", "loadMethods", "icon"):
        nd.pop(key, None)
    anchors: list[dict[str, Any]] = []
    params: list[dict[str, Any]] = []
    for inp in nd.get("inputs") or []:
        entry = {**inp, "id": f"{node_id}-input-{inp['name']}-{inp['type']}", "display": True}
        (params if inp["type"] in PARAM_TYPES else anchors).append(entry)
    if nd.get("credential"):
        cred = nd["credential"]
        params.insert(0, {**cred, "id": f"{node_id}-input-{cred['name']}-{cred['type']}", "display": True})
    outputs = nd.get("outputs") or []
    if agentflow:
        if outputs:
            out_anchors = [
                {"id": f"{node_id}-output-{i}", "label": nd["label"], "name": nd["name"]} for i in range(len(outputs))
            ]
        else:
            out_anchors = [{"id": f"{node_id}-output-{nd['name']}", "label": nd["label"], "name": nd["name"]}]
    elif outputs:
        options = [
            {
                "id": f"{node_id}-output-{o['name']}-{'|'.join(o.get('baseClasses') or [])}",
                "name": o["name"],
                "label": o["label"],
                "description": o.get("description", ""),
                "type": " | ".join(o.get("baseClasses") or []),
            }
            for o in outputs
        ]
        out_anchors = [
            {
                "name": "output",
                "label": "Output",
                "type": "options",
                "description": outputs[0].get("description", ""),
                "options": options,
                "default": outputs[0]["name"],
            }
        ]
    else:
        out_anchors = [
            {
                "id": f"{node_id}-output-{nd['name']}-{'|'.join(nd['baseClasses'])}",
                "name": nd["name"],
                "label": nd["type"],
                "description": nd.get("description", ""),
                "type": " | ".join(nd["baseClasses"]),
            }
        ]
    nd["inputs"] = {inp["name"]: inp.get("default") or "" for inp in nd.get("inputs") or []}
    nd["inputAnchors"], nd["inputParams"], nd["outputAnchors"] = anchors, params, out_anchors
    if agentflow:
        nd["outputs"] = {}
    else:
        nd["outputs"] = {"output": out_anchors[0]["default"]} if outputs else {}
    if nd.get("credential"):
        nd["credential"] = ""
    nd["id"] = node_id
    nd["selected"] = False
    return nd


class FlowGraph:
    """Accumulates nodes and edges of one flow (chatflow or agentflow v2)."""

    def __init__(self, node_defs: NodeDefinitions, *, agentflow: bool = False) -> None:
        self._node_defs = node_defs
        self.agentflow = agentflow
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []

    def add(
        self,
        name: str,
        node_id: str,
        inputs: dict[str, Any] | None = None,
        *,
        credential: str | None = None,
        output: str | None = None,
        label: str | None = None,
    ) -> dict[str, Any]:
        """Add node ``name`` (definition fetched live) with ``inputs`` over the defaults."""
        data = init_node(self._node_defs(name), node_id, agentflow=self.agentflow)
        data["inputs"].update(inputs or {})
        if credential:
            data["credential"] = credential
            data["inputs"]["FLOWISE_CREDENTIAL_ID"] = credential
        if output:
            data["outputs"] = {"output": output}
        if label:
            data["label"] = label
        position = {"x": 100 + 400 * len(self.nodes), "y": 100}
        self.nodes.append(
            {
                "id": node_id,
                "position": position,
                "positionAbsolute": position,
                "type": "agentFlow" if self.agentflow else "customNode",
                "width": 300,
                "height": 500 if not self.agentflow else 70,
                "selected": False,
                "data": data,
            }
        )
        return data

    def _data(self, node_id: str) -> dict[str, Any]:
        return next(n["data"] for n in self.nodes if n["id"] == node_id)

    def connect(self, source: str, target: str, input_name: str) -> None:
        """Chatflow edge: ``source``'s output into ``target``'s input anchor ``input_name``."""
        src, tgt = self._data(source), self._data(target)
        anchor = src["outputAnchors"][0]
        if anchor.get("type") == "options":
            chosen = src["outputs"].get("output") or anchor["default"]
            handle = next(o["id"] for o in anchor["options"] if o["name"] == chosen)
        else:
            handle = anchor["id"]
        target_anchor = next(a for a in tgt["inputAnchors"] if a["name"] == input_name)
        ref = f"{{{{{source}.data.instance}}}}"
        if target_anchor.get("list"):
            current = tgt["inputs"].get(input_name)
            tgt["inputs"][input_name] = [*(current if isinstance(current, list) else []), ref]
        else:
            tgt["inputs"][input_name] = ref
        self.edges.append(
            {
                "source": source,
                "sourceHandle": handle,
                "target": target,
                "targetHandle": target_anchor["id"],
                "type": "buttonedge",
                "id": f"{source}-{handle}-{target}-{target_anchor['id']}",
            }
        )

    def link(self, source: str, target: str) -> None:
        """Agentflow v2 edge from node ``source`` to node ``target``."""
        handle = self._data(source)["outputAnchors"][0]["id"]
        self.edges.append(
            {
                "source": source,
                "sourceHandle": handle,
                "target": target,
                "targetHandle": target,
                "type": "agentFlow",
                "data": {"isHumanInput": False},
                "id": f"{source}-{handle}-{target}-{target}",
            }
        )

    def flow_data(self) -> dict[str, Any]:
        return {"nodes": self.nodes, "edges": self.edges, "viewport": {"x": 0, "y": 0, "zoom": 0.5}}


@dataclasses.dataclass(frozen=True)
class FlowSpec:
    """One flow to create with ``POST /api/v1/chatflows``."""

    name: str
    flow_type: FlowType
    flow_data: dict[str, Any]
    protected: bool = False

    def create_body(self, *, api_key_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": f"e2e-{self.name}",
            "flowData": json.dumps(self.flow_data),
            "deployed": False,
            "isPublic": False,
            "type": self.flow_type,
        }
        if self.protected:
            if not api_key_id:
                raise ValueError(f"flow {self.name} needs an API key id")
            body["apikeyid"] = api_key_id
        return body


def _chat_model(g: FlowGraph, cred: str, llm_base_url: str, *, streaming: bool = True) -> None:
    g.add(
        "chatOpenAI",
        "chatOpenAI_0",
        {"modelName": MODEL_NAME, "temperature": 0, "streaming": streaming, "basepath": llm_base_url},
        credential=cred,
    )


def _llm_chain(defs: NodeDefinitions, cred: str, llm: str, *, streaming: bool = True) -> dict[str, Any]:
    g = FlowGraph(defs)
    _chat_model(g, cred, llm, streaming=streaming)
    g.add("promptTemplate", "promptTemplate_0", {"template": "Answer briefly: {question}", "promptValues": ""})
    g.add("llmChain", "llmChain_0", {"chainName": "e2e-chain"})
    g.connect("chatOpenAI_0", "llmChain_0", "model")
    g.connect("promptTemplate_0", "llmChain_0", "prompt")
    return g.flow_data()


def _conversation_chain(defs: NodeDefinitions, cred: str, llm: str) -> dict[str, Any]:
    g = FlowGraph(defs)
    _chat_model(g, cred, llm)
    g.add("bufferMemory", "bufferMemory_0")
    g.add("conversationChain", "conversationChain_0")
    g.connect("chatOpenAI_0", "conversationChain_0", "model")
    g.connect("bufferMemory_0", "conversationChain_0", "memory")
    return g.flow_data()


def _retrieval_qa(defs: NodeDefinitions, cred: str, llm: str) -> dict[str, Any]:
    """Conversational retrieval QA over an in-memory store rebuilt from inline text on each prediction."""
    g = FlowGraph(defs)
    _chat_model(g, cred, llm)
    g.add("openAIEmbeddings", "openAIEmbeddings_0", {"modelName": "fake-embed", "basepath": llm}, credential=cred)
    g.add("plainText", "plainText_0", {"text": RETRIEVAL_TEXT, "metadata": json.dumps({"source": "inline-test-doc"})})
    # chunkOverlap 0 would be falsy -> default 200 >= chunkSize -> "Cannot have chunkOverlap >= chunkSize"
    g.add("recursiveCharacterTextSplitter", "recursiveCharacterTextSplitter_0", {"chunkSize": 100, "chunkOverlap": 10})
    g.add("memoryVectorStore", "memoryVectorStore_0", {"topK": 2}, output="retriever")
    g.add("conversationalRetrievalQAChain", "conversationalRetrievalQAChain_0", {"returnSourceDocuments": True})
    g.connect("recursiveCharacterTextSplitter_0", "plainText_0", "textSplitter")
    g.connect("plainText_0", "memoryVectorStore_0", "document")
    g.connect("openAIEmbeddings_0", "memoryVectorStore_0", "embeddings")
    g.connect("memoryVectorStore_0", "conversationalRetrievalQAChain_0", "vectorStoreRetriever")
    g.connect("chatOpenAI_0", "conversationalRetrievalQAChain_0", "model")
    return g.flow_data()


def _tool_agent(defs: NodeDefinitions, cred: str, llm: str, *, detailed: bool = False) -> dict[str, Any]:
    g = FlowGraph(defs)
    _chat_model(g, cred, llm)
    g.add("calculator", "calculator_0")
    g.add("bufferMemory", "bufferMemory_0")
    g.add(
        "toolAgent",
        "toolAgent_0",
        {"systemMessage": "You are a helpful AI assistant.", **({"enableDetailedStreaming": True} if detailed else {})},
    )
    g.connect("calculator_0", "toolAgent_0", "tools")
    g.connect("bufferMemory_0", "toolAgent_0", "memory")
    g.connect("chatOpenAI_0", "toolAgent_0", "model")
    return g.flow_data()


def _model_config(prefix: str, cred: str, llm: str) -> dict[str, Any]:
    """Inline chatOpenAI config of an agentflow LLM/Agent node (``<prefix>ModelConfig``)."""
    return {
        "cache": "",
        "modelName": MODEL_NAME,
        "temperature": 0,
        "streaming": True,
        "maxTokens": "",
        "topP": "",
        "frequencyPenalty": "",
        "presencePenalty": "",
        "timeout": "",
        "strictToolCalling": "",
        "stopSequence": "",
        "basepath": llm,
        "proxyUrl": "",
        "baseOptions": "",
        "allowImageUploads": "",
        "imageResolution": "low",
        "reasoningEffort": "",
        f"{prefix}Model": "chatOpenAI",
        "FLOWISE_CREDENTIAL_ID": cred,
    }


def _agentflow_llm(defs: NodeDefinitions, cred: str, llm: str) -> dict[str, Any]:
    """Start -> LLM (like the shipped "Translator" template)."""
    g = FlowGraph(defs, agentflow=True)
    g.add("startAgentflow", "startAgentflow_0", {"startInputType": "chatInput"}, label="Start")
    g.add(
        "llmAgentflow",
        "llmAgentflow_0",
        {
            "llmModel": "chatOpenAI",
            "llmMessages": [{"role": "system", "content": "<p>You are a helpful assistant.</p>"}],
            "llmEnableMemory": True,
            "llmReturnResponseAs": "userMessage",
            "llmModelConfig": _model_config("llm", cred, llm),
        },
        label="Translator",
    )  # the node label of the shipped template (keeps captures diffable)
    g.link("startAgentflow_0", "llmAgentflow_0")
    return g.flow_data()


def _agentflow_agent_tool(defs: NodeDefinitions, cred: str, llm: str) -> dict[str, Any]:
    """Start -> Agent with the calculator tool: the agent calls the tool, then answers."""
    g = FlowGraph(defs, agentflow=True)
    g.add("startAgentflow", "startAgentflow_0", {"startInputType": "chatInput"}, label="Start")
    g.add(
        "agentAgentflow",
        "agentAgentflow_0",
        {
            "agentModel": "chatOpenAI",
            "agentMessages": [{"role": "system", "content": "<p>You are a helpful assistant with a calculator.</p>"}],
            "agentTools": [
                {
                    "agentSelectedTool": "calculator",
                    "agentSelectedToolRequiresHumanInput": "",
                    "agentSelectedToolConfig": {"agentSelectedTool": "calculator"},
                }
            ],
            "agentEnableMemory": True,
            "agentMemoryType": "allMessages",
            "agentReturnResponseAs": "userMessage",
            "agentModelConfig": _model_config("agent", cred, llm),
        },
        label="Calculator Agent",
    )
    g.link("startAgentflow_0", "agentAgentflow_0")
    return g.flow_data()


def major_of(version: str) -> int:
    """``"3.1.4"`` -> 3 (0 when the version is not numeric, e.g. an external server of unknown version)."""
    head = version.split(".")[0]
    return int(head) if head.isdigit() else 0


def unsupported_reason(flow: str, version: str) -> str | None:
    """Why ``flow`` cannot exist on Flowise ``version`` (None when it can)."""
    if flow in AGENTFLOW_V2_FLOWS and 0 < major_of(version) < 3:
        return f"Flowise {version} has no Agentflow V2 (it arrived in Flowise 3.0), so there is no {flow} flow"
    return None


def flow_names_for(version: str) -> tuple[str, ...]:
    """The flows of :data:`FLOW_NAMES` that Flowise ``version`` supports."""
    return tuple(name for name in FLOW_NAMES if unsupported_reason(name, version) is None)


def _agent_flow_specs(
    node_defs: NodeDefinitions, *, credential_id: str, llm_base_url: str, version: str
) -> list[FlowSpec]:
    """The specs of ``flows_agents.build_agent_flows`` (multi-agent, sequential agents...), when that module exists."""
    try:
        import flows_agents  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError as exc:
        if exc.name != "flows_agents":
            raise  # the module exists but is broken: say so
        return []
    specs: list[FlowSpec] = flows_agents.build_agent_flows(
        node_defs, credential_id=credential_id, llm_base_url=llm_base_url, version=version
    )
    return specs


def build_flows(
    node_defs: NodeDefinitions, *, credential_id: str, llm_base_url: str, version: str = "3.1.4"
) -> list[FlowSpec]:
    """Every test flow Flowise ``version`` supports (see :data:`FLOW_NAMES`, :func:`unsupported_reason`), built
    from ``node_defs(name)`` definitions, plus the flows of ``flows_agents.build_agent_flows`` if it exists."""
    defs_cache: dict[str, dict[str, Any]] = {}

    def defs(name: str) -> dict[str, Any]:
        if name not in defs_cache:
            defs_cache[name] = node_defs(name)
        return defs_cache[name]

    cred, llm = credential_id, llm_base_url
    builders: dict[str, Callable[[], FlowSpec]] = {
        "llm_chain": lambda: FlowSpec("llm_chain", "CHATFLOW", _llm_chain(defs, cred, llm)),
        "conversation_chain": lambda: FlowSpec("conversation_chain", "CHATFLOW", _conversation_chain(defs, cred, llm)),
        "retrieval_qa": lambda: FlowSpec("retrieval_qa", "CHATFLOW", _retrieval_qa(defs, cred, llm)),
        "tool_agent": lambda: FlowSpec("tool_agent", "CHATFLOW", _tool_agent(defs, cred, llm)),
        "tool_agent_detailed": lambda: FlowSpec(
            "tool_agent_detailed", "CHATFLOW", _tool_agent(defs, cred, llm, detailed=True)
        ),
        "llm_chain_model_streaming_off": lambda: FlowSpec(
            "llm_chain_model_streaming_off", "CHATFLOW", _llm_chain(defs, cred, llm, streaming=False)
        ),
        "llm_chain_protected": lambda: FlowSpec(
            "llm_chain_protected", "CHATFLOW", _llm_chain(defs, cred, llm), protected=True
        ),
        "agentflow_v2_llm": lambda: FlowSpec("agentflow_v2_llm", "AGENTFLOW", _agentflow_llm(defs, cred, llm)),
        "agentflow_v2_agent_tool": lambda: FlowSpec(
            "agentflow_v2_agent_tool", "AGENTFLOW", _agentflow_agent_tool(defs, cred, llm)
        ),
    }
    assert tuple(builders) == FLOW_NAMES
    specs = [builders[name]() for name in flow_names_for(version)]
    extra = _agent_flow_specs(defs, credential_id=cred, llm_base_url=llm, version=version)
    clashes = {s.name for s in extra} & {s.name for s in specs}
    if clashes:
        raise ValueError(f"flows_agents redefines {sorted(clashes)}")
    return specs + extra
