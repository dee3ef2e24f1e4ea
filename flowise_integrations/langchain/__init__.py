"""LangChain wing: ``ChatFlowise`` (a chat model over any Flowise flow) and ``FlowiseTool`` (a flow as a tool).

Importing this package registers the ``"flowise"`` content-block translator with langchain-core.
"""

try:  # the wing needs its framework: say which extra brings it
    import langchain_core  # noqa: F401
except ModuleNotFoundError as _missing:
    if _missing.name != "langchain_core":  # the framework is there, a dependency of it is not
        raise
    raise ImportError(
        "flowise_integrations.langchain needs LangChain (langchain-core): "
        'pip install "flowise-integrations[langchain]"',
        name=_missing.name,
    ) from _missing

from . import _blocks  # noqa: F401  (registers the "flowise" content-block translator)
from ._convert import CUSTOM_EVENTS
from ._errors import (
    FlowiseModelAPIError,
    FlowiseModelAuthenticationError,
    FlowiseModelBadRequestError,
    FlowiseModelConnectionError,
    FlowiseModelError,
    FlowiseModelFlowExecutionError,
    FlowiseModelIncompleteStreamError,
    FlowiseModelInternalServerError,
    FlowiseModelLostAnswerError,
    FlowiseModelNotFoundError,
    FlowiseModelPayloadTooLargeError,
    FlowiseModelPermissionDeniedError,
    FlowiseModelProtocolError,
    FlowiseModelRateLimitError,
    FlowiseModelTimeoutError,
    to_model_error,
)
from .chat_models import ChatFlowise
from .tools import FlowiseTool, FlowiseToolInput

__all__ = [
    "CUSTOM_EVENTS",
    "ChatFlowise",
    "FlowiseModelAPIError",
    "FlowiseModelAuthenticationError",
    "FlowiseModelBadRequestError",
    "FlowiseModelConnectionError",
    "FlowiseModelError",
    "FlowiseModelFlowExecutionError",
    "FlowiseModelIncompleteStreamError",
    "FlowiseModelInternalServerError",
    "FlowiseModelLostAnswerError",
    "FlowiseModelNotFoundError",
    "FlowiseModelPayloadTooLargeError",
    "FlowiseModelPermissionDeniedError",
    "FlowiseModelProtocolError",
    "FlowiseModelRateLimitError",
    "FlowiseModelTimeoutError",
    "FlowiseTool",
    "FlowiseToolInput",
    "to_model_error",
]
