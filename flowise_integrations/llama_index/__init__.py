"""The LlamaIndex wing: ``FlowiseLLM`` (an LLM), ``FlowiseQueryEngine`` (a query engine / agent tool),
``FlowiseToolSpec`` (a server's flows as agent tools), ``FlowiseHumanInputWorkflow`` (a Flowise human-input stop
as a Workflow's ``InputRequiredEvent``) and instrumentation events for what a flow reports besides its answer.
Needs ``llama-index-core`` (``pip install flowise-integrations[llama-index]``).
"""

try:  # the wing needs its framework: say which extra brings it
    import llama_index.core  # noqa: F401
except ModuleNotFoundError as _missing:
    if _missing.name not in ("llama_index", "llama_index.core"):  # the framework is there, a dependency of it is not
        raise
    raise ImportError(
        "flowise_integrations.llama_index needs LlamaIndex (llama-index-core): "
        'pip install "flowise-integrations[llama-index]"',
        name=_missing.name,
    ) from _missing

from flowise_integrations.chats import ChatIdInUseWarning

from .events import (
    FlowiseAgentStepEvent,
    FlowiseInstrumentationEvent,
    FlowiseMetadataEvent,
    FlowiseSourceDocumentsEvent,
    FlowiseToolUsedEvent,
)
from .llms import FlowiseLLM
from .query_engine import FlowiseQueryEngine
from .tools import FlowiseFlowTool, FlowiseToolSpec
from .workflow import (
    FlowiseHumanInputWorkflow,
    FlowiseHumanResponseEvent,
    FlowiseInputRequiredEvent,
    FlowiseTextEvent,
)

__all__ = [
    "ChatIdInUseWarning",
    "FlowiseAgentStepEvent",
    "FlowiseFlowTool",
    "FlowiseHumanInputWorkflow",
    "FlowiseHumanResponseEvent",
    "FlowiseInputRequiredEvent",
    "FlowiseInstrumentationEvent",
    "FlowiseLLM",
    "FlowiseMetadataEvent",
    "FlowiseQueryEngine",
    "FlowiseSourceDocumentsEvent",
    "FlowiseTextEvent",
    "FlowiseToolSpec",
    "FlowiseToolUsedEvent",
]
