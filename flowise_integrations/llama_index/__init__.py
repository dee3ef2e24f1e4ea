"""The LlamaIndex wing: ``FlowiseLLM`` (an LLM), ``FlowiseQueryEngine`` (a query engine / agent tool) and
instrumentation events for what a flow reports besides its answer. Needs ``llama-index-core``
(``pip install flowise-integrations[llama-index]``).
"""

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
    "FlowiseAgentStepEvent",
    "FlowiseInstrumentationEvent",
    "FlowiseLLM",
    "FlowiseMetadataEvent",
    "FlowiseQueryEngine",
    "FlowiseSourceDocumentsEvent",
    "FlowiseToolUsedEvent",
]
