"""Errors that are both a core :class:`~flowise_integrations.FlowiseError` and a langchain-core ``ModelError``.

Every core error class has a twin here, so ``except flowise_integrations.RateLimitError`` and
``except langchain_core.exceptions.ModelRateLimitError`` both catch what ``ChatFlowise`` raises. The twin keeps
every attribute of the original (``message``, ``partial``, ``status_code``, ``body``, ``retry_after``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from langchain_core.exceptions import (
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)

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

__all__ = [
    "FlowiseModelAPIError",
    "FlowiseModelAnswerMismatchError",
    "FlowiseModelAuthenticationError",
    "FlowiseModelBadRequestError",
    "FlowiseModelConnectionError",
    "FlowiseModelError",
    "FlowiseModelFlowExecutionError",
    "FlowiseModelIncompleteStreamError",
    "FlowiseModelInternalServerError",
    "FlowiseModelLostAnswerError",
    "FlowiseModelNotFoundError",
    "FlowiseModelNotResumableError",
    "FlowiseModelPayloadTooLargeError",
    "FlowiseModelPermissionDeniedError",
    "FlowiseModelProtocolError",
    "FlowiseModelRateLimitError",
    "FlowiseModelTimeoutError",
    "to_model_error",
    "twin_of",
]


class FlowiseModelError(FlowiseError, ModelError):
    """A Flowise failure with no more specific class."""


class FlowiseModelConnectionError(FlowiseConnectionError, ModelConnectionError):
    """The server could not be reached."""


class FlowiseModelTimeoutError(FlowiseTimeoutError, ModelTimeoutError):
    """A connect, read, write or pool timeout expired."""


class FlowiseModelProtocolError(FlowiseProtocolError, ModelError):
    """The server did not speak the Flowise protocol (usually a wrong ``base_url``)."""


class FlowiseModelIncompleteStreamError(IncompleteStreamError, ModelConnectionError):
    """The stream ended without Flowise's ``end`` event; ``partial`` holds what arrived."""


class FlowiseModelLostAnswerError(LostAnswerError, ModelAPIError):
    """Flowise stored an answer but never streamed it (see the core's ``LostAnswerError``)."""

    is_retryable = False


class FlowiseModelAnswerMismatchError(AnswerMismatchError, ModelAPIError):
    """The streamed answer differs from the one Flowise stored (queue mode; ``on_answer_mismatch="raise"``)."""


class FlowiseModelAPIError(FlowiseAPIError, ModelAPIError):
    """Flowise refused or failed the request with an unmapped status."""


class FlowiseModelBadRequestError(BadRequestError, ModelInvalidRequestError):
    """HTTP 400/412/422."""


class FlowiseModelNotResumableError(NotResumableError, ModelInvalidRequestError):
    """A resume found no stopped run to continue."""


class FlowiseModelAuthenticationError(AuthenticationError, ModelAuthenticationError):
    """HTTP 401, or Flowise's ``Unauthorized`` error: the API key is missing or wrong."""


class FlowiseModelPermissionDeniedError(PermissionDeniedError, ModelPermissionDeniedError):
    """HTTP 403."""


class FlowiseModelNotFoundError(NotFoundError, ModelNotFoundError):
    """HTTP 404: the chatflow does not exist."""


class FlowiseModelPayloadTooLargeError(PayloadTooLargeError, ModelInvalidRequestError):
    """HTTP 413: the request (usually its uploads) is too large."""


class FlowiseModelRateLimitError(RateLimitError, ModelRateLimitError):
    """HTTP 429; ``retry_after`` is the server's hint in seconds."""


class FlowiseModelInternalServerError(InternalServerError, ModelAPIError):
    """HTTP 5xx."""


class FlowiseModelFlowExecutionError(FlowExecutionError, ModelAPIError):
    """The flow failed mid-stream (Flowise's in-band ``error`` event); ``partial`` keeps the text so far.

    Not marked retryable: a retry re-runs the whole flow (and its side effects) after part of the answer was
    already delivered.
    """

    is_retryable = False


_TWINS: dict[type[FlowiseError], type[FlowiseError]] = {
    FlowiseError: FlowiseModelError,
    FlowiseConnectionError: FlowiseModelConnectionError,
    FlowiseTimeoutError: FlowiseModelTimeoutError,
    FlowiseProtocolError: FlowiseModelProtocolError,
    IncompleteStreamError: FlowiseModelIncompleteStreamError,
    LostAnswerError: FlowiseModelLostAnswerError,
    AnswerMismatchError: FlowiseModelAnswerMismatchError,
    FlowiseAPIError: FlowiseModelAPIError,
    BadRequestError: FlowiseModelBadRequestError,
    NotResumableError: FlowiseModelNotResumableError,
    AuthenticationError: FlowiseModelAuthenticationError,
    PermissionDeniedError: FlowiseModelPermissionDeniedError,
    NotFoundError: FlowiseModelNotFoundError,
    PayloadTooLargeError: FlowiseModelPayloadTooLargeError,
    RateLimitError: FlowiseModelRateLimitError,
    InternalServerError: FlowiseModelInternalServerError,
    FlowExecutionError: FlowiseModelFlowExecutionError,
}


_E = TypeVar("_E", bound=FlowiseError)


def twin_of(exc: FlowiseError, twins: Mapping[type[FlowiseError], type[_E]]) -> _E:
    """``exc`` as its nearest twin class in ``twins`` (same message and attributes; raise it ``from exc``)."""
    twin = next(twins[cls] for cls in type(exc).__mro__ if cls in twins)
    new = twin.__new__(twin, *exc.args)
    new.args = exc.args
    new.__dict__.update(exc.__dict__)
    return new


def to_model_error(exc: FlowiseError) -> FlowiseError:
    """The LangChain twin of a core error, with the same message and attributes (raise it ``from exc``)."""
    return exc if isinstance(exc, ModelError) else twin_of(exc, _TWINS)
