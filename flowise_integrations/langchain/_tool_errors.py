"""Errors a Flowise tool raises: each is a core :class:`~flowise_integrations.FlowiseError` *and* a ``ToolException``.

So ``handle_tool_error=True`` (on a ``FlowiseTool``, the toolkit's default) turns a failing flow into an error
``ToolMessage`` the agent can read and work around, while ``except flowise_integrations.NotFoundError`` (or any
core class) still catches it where errors are not handled. Every attribute of the core error is kept.
"""

from __future__ import annotations

from langchain_core.tools import ToolException

from flowise_integrations.errors import (
    AnswerMismatchError,
    AuthenticationError,
    BadRequestError,
    FlowExecutionError,
    FlowiseAPIError,
    FlowiseConnectionError,
    FlowiseError,
    FlowiseProtocolError,
    FlowiseTimeoutError,
    IncompleteStreamError,
    InternalServerError,
    LostAnswerError,
    NotFoundError,
    NotResumableError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
)

from ._errors import twin_of

__all__ = [
    "FlowiseToolAPIError",
    "FlowiseToolAnswerMismatchError",
    "FlowiseToolAuthenticationError",
    "FlowiseToolBadRequestError",
    "FlowiseToolConnectionError",
    "FlowiseToolError",
    "FlowiseToolExecutionError",
    "FlowiseToolIncompleteStreamError",
    "FlowiseToolInputError",
    "FlowiseToolInternalServerError",
    "FlowiseToolLostAnswerError",
    "FlowiseToolNotFoundError",
    "FlowiseToolNotResumableError",
    "FlowiseToolPayloadTooLargeError",
    "FlowiseToolPermissionDeniedError",
    "FlowiseToolProtocolError",
    "FlowiseToolRateLimitError",
    "FlowiseToolTimeoutError",
    "to_tool_error",
]


class FlowiseToolError(FlowiseError, ToolException):
    """A Flowise tool failed (the base of every tool error)."""


class FlowiseToolInputError(FlowiseToolError, ValueError):
    """The agent's arguments do not fit the flow (a missing or mistyped form field); nothing was sent."""


class FlowiseToolConnectionError(FlowiseToolError, FlowiseConnectionError):
    """The server could not be reached."""


class FlowiseToolTimeoutError(FlowiseToolError, FlowiseTimeoutError):
    """A timeout or the call's deadline expired; ``partial`` keeps what arrived."""


class FlowiseToolProtocolError(FlowiseToolError, FlowiseProtocolError):
    """The server did not speak the Flowise protocol."""


class FlowiseToolIncompleteStreamError(FlowiseToolError, IncompleteStreamError):
    """The answer ended early; ``partial`` keeps what arrived."""


class FlowiseToolLostAnswerError(FlowiseToolError, LostAnswerError):
    """Flowise stored an answer it never sent."""


class FlowiseToolAnswerMismatchError(FlowiseToolError, AnswerMismatchError):
    """The answer sent differs from the one Flowise stored."""


class FlowiseToolAPIError(FlowiseToolError, FlowiseAPIError):
    """Flowise refused or failed the request with an unmapped status."""


class FlowiseToolBadRequestError(FlowiseToolError, BadRequestError):
    """HTTP 400/412/422, or a flow that cannot be called (webhook or schedule start)."""


class FlowiseToolNotResumableError(FlowiseToolError, NotResumableError):
    """The run to resume is not waiting for a human."""


class FlowiseToolAuthenticationError(FlowiseToolError, AuthenticationError):
    """HTTP 401: the API key is missing or wrong."""


class FlowiseToolPermissionDeniedError(FlowiseToolError, PermissionDeniedError):
    """HTTP 403."""


class FlowiseToolNotFoundError(FlowiseToolError, NotFoundError):
    """HTTP 404: the flow does not exist."""


class FlowiseToolPayloadTooLargeError(FlowiseToolError, PayloadTooLargeError):
    """HTTP 413."""


class FlowiseToolRateLimitError(FlowiseToolError, RateLimitError):
    """HTTP 429; ``retry_after`` is the server's hint in seconds."""


class FlowiseToolInternalServerError(FlowiseToolError, InternalServerError):
    """HTTP 5xx."""


class FlowiseToolExecutionError(FlowiseToolError, FlowExecutionError):
    """The flow itself failed (Flowise's in-band ``error``, or its 500 with the flow's message)."""


_TWINS: dict[type[FlowiseError], type[FlowiseToolError]] = {
    FlowiseError: FlowiseToolError,
    FlowiseConnectionError: FlowiseToolConnectionError,
    FlowiseTimeoutError: FlowiseToolTimeoutError,
    FlowiseProtocolError: FlowiseToolProtocolError,
    IncompleteStreamError: FlowiseToolIncompleteStreamError,
    LostAnswerError: FlowiseToolLostAnswerError,
    AnswerMismatchError: FlowiseToolAnswerMismatchError,
    FlowiseAPIError: FlowiseToolAPIError,
    BadRequestError: FlowiseToolBadRequestError,
    NotResumableError: FlowiseToolNotResumableError,
    AuthenticationError: FlowiseToolAuthenticationError,
    PermissionDeniedError: FlowiseToolPermissionDeniedError,
    NotFoundError: FlowiseToolNotFoundError,
    PayloadTooLargeError: FlowiseToolPayloadTooLargeError,
    RateLimitError: FlowiseToolRateLimitError,
    InternalServerError: FlowiseToolInternalServerError,
    FlowExecutionError: FlowiseToolExecutionError,
}


def to_tool_error(exc: FlowiseError) -> FlowiseToolError:
    """The tool twin of a core error, with the same message and attributes (raise it ``from exc``)."""
    if isinstance(exc, FlowiseToolError):
        return exc
    return twin_of(exc, _TWINS)
