"""LangChain wing: ``ChatFlowise`` (a chat model over any Flowise flow), ``FlowiseTool`` (a flow as a tool) and
``FlowiseToolkit`` (a server's flows as tools).

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

from flowise_integrations.chats import ChatIdInUseWarning

from . import _blocks  # noqa: F401  (registers the "flowise" content-block translator)
from ._convert import CUSTOM_EVENTS
from ._errors import (
    FlowiseModelAnswerMismatchError,
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
    FlowiseModelNotResumableError,
    FlowiseModelPayloadTooLargeError,
    FlowiseModelPermissionDeniedError,
    FlowiseModelProtocolError,
    FlowiseModelRateLimitError,
    FlowiseModelTimeoutError,
    to_model_error,
)
from ._tool_errors import (
    FlowiseToolAnswerMismatchError,
    FlowiseToolAPIError,
    FlowiseToolAuthenticationError,
    FlowiseToolBadRequestError,
    FlowiseToolConnectionError,
    FlowiseToolError,
    FlowiseToolExecutionError,
    FlowiseToolIncompleteStreamError,
    FlowiseToolInputError,
    FlowiseToolInternalServerError,
    FlowiseToolLostAnswerError,
    FlowiseToolNotFoundError,
    FlowiseToolNotResumableError,
    FlowiseToolPayloadTooLargeError,
    FlowiseToolPermissionDeniedError,
    FlowiseToolProtocolError,
    FlowiseToolRateLimitError,
    FlowiseToolTimeoutError,
    to_tool_error,
)
from .chat_models import ChatFlowise, get_interrupt
from .toolkit import FlowFilter, FlowiseToolkit
from .tools import FlowiseTool, FlowiseToolInput, FlowiseToolSessionInput

__all__ = [
    "CUSTOM_EVENTS",
    "ChatFlowise",
    "ChatIdInUseWarning",
    "FlowFilter",
    "FlowiseModelAPIError",
    "FlowiseModelAuthenticationError",
    "FlowiseModelBadRequestError",
    "FlowiseModelConnectionError",
    "FlowiseModelError",
    "FlowiseModelFlowExecutionError",
    "FlowiseModelIncompleteStreamError",
    "FlowiseModelInternalServerError",
    "FlowiseModelAnswerMismatchError",
    "FlowiseModelLostAnswerError",
    "FlowiseModelNotResumableError",
    "FlowiseModelNotFoundError",
    "FlowiseModelPayloadTooLargeError",
    "FlowiseModelPermissionDeniedError",
    "FlowiseModelProtocolError",
    "FlowiseModelRateLimitError",
    "FlowiseModelTimeoutError",
    "FlowiseTool",
    "FlowiseToolAPIError",
    "FlowiseToolAnswerMismatchError",
    "FlowiseToolAuthenticationError",
    "FlowiseToolBadRequestError",
    "FlowiseToolConnectionError",
    "FlowiseToolError",
    "FlowiseToolExecutionError",
    "FlowiseToolIncompleteStreamError",
    "FlowiseToolInput",
    "FlowiseToolInputError",
    "FlowiseToolInternalServerError",
    "FlowiseToolLostAnswerError",
    "FlowiseToolNotFoundError",
    "FlowiseToolNotResumableError",
    "FlowiseToolPayloadTooLargeError",
    "FlowiseToolPermissionDeniedError",
    "FlowiseToolProtocolError",
    "FlowiseToolRateLimitError",
    "FlowiseToolSessionInput",
    "FlowiseToolTimeoutError",
    "FlowiseToolkit",
    "get_interrupt",
    "to_model_error",
    "to_tool_error",
]
