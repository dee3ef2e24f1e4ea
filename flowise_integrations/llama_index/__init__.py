"""The LlamaIndex wing: ``FlowiseLLM`` (an LLM), ``FlowiseQueryEngine`` (a query engine / agent tool) and
instrumentation events for what a flow reports besides its answer. Needs ``llama-index-core``
(``pip install flowise-integrations[llama-index]``).
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

from ._calls import ChatIdInUseWarning
from .events import (
    FlowiseAgentStepEvent,
    FlowiseInstrumentationEvent,
    FlowiseMetadataEvent,
    FlowiseSourceDocumentsEvent,
    FlowiseToolUsedEvent,
)
from .llms import FlowiseLLM
from .query_engine import FlowiseQueryEngine

__all__ = [
    "ChatIdInUseWarning",
    "FlowiseAgentStepEvent",
    "FlowiseInstrumentationEvent",
    "FlowiseLLM",
    "FlowiseMetadataEvent",
    "FlowiseQueryEngine",
    "FlowiseSourceDocumentsEvent",
    "FlowiseToolUsedEvent",
]
