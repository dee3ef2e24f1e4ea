"""Which chat and session a call uses: one conversation is one Flowise chat, never two calls on one chat at once.

- A LangGraph thread (``configurable.thread_id``) or a ``RunnableWithMessageHistory`` session
  (``configurable.session_id``) maps to a stable chat id (:func:`derived_chat_id`), so Flowise's logs,
  analytics and feedback show one conversation. ``configurable.flowise_chat_id`` names one outright.
- Flowise sends a stream to whoever is listening on its ``chatId``: two concurrent calls sharing one get each
  other's tokens. :func:`lease` hands out a chat id for the length of one call and falls back to a fresh one,
  with a :class:`ChatIdInUseWarning`, when it is taken.
- Flowise's memory is keyed by the session (``overrideConfig.sessionId``, else the chat id). When the client
  sends the history itself on a stable chat id, :func:`memory_session` gives the call a session of its own, so
  Flowise's memory never repeats the turns that are sent; it is derived from the conversation, so a node that
  LangGraph runs again after an interrupt finds the stopped run again.
"""

from __future__ import annotations

import hashlib
import json
import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from langchain_core.runnables.config import var_child_runnable_config

__all__ = [
    "CONFIG_KEYS",
    "ChatIdInUseWarning",
    "configurable_of",
    "current_configurable",
    "derived_chat_id",
    "lease",
    "memory_session",
]

CONFIG_KEYS = ("thread_id", "session_id", "flowise_session_id", "flowise_chat_id")
"""The ``config["configurable"]`` keys this package reads (anything else there is ignored)."""

_NAMESPACE = uuid.UUID("0b0c6f1e-6a43-5a4e-9c0e-f10e15e1a7e5")
_ACTIVE: dict[tuple[str, str], object] = {}


class ChatIdInUseWarning(UserWarning):
    """A call wanted a chat id that another running call holds; it used a fresh one instead."""


def configurable_of(config: Mapping[str, Any] | None) -> dict[str, str]:
    """The keys of ``config["configurable"]`` this package reads, as strings (others left out)."""
    configurable = config.get("configurable") if isinstance(config, Mapping) else None
    if not isinstance(configurable, Mapping):
        return {}
    return {
        key: str(value)
        for key in CONFIG_KEYS
        if (value := configurable.get(key)) is not None and isinstance(value, (str, int, uuid.UUID))
    }


def current_configurable() -> dict[str, str]:
    """:func:`configurable_of` the config of the chain or graph node running now (empty outside one)."""
    return configurable_of(var_child_runnable_config.get())


def derived_chat_id(configurable: Mapping[str, str]) -> str | None:
    """The chat id a run's config implies: ``flowise_chat_id``, else one derived from the thread or session."""
    if configurable.get("flowise_chat_id"):
        return configurable["flowise_chat_id"]
    for key in ("thread_id", "session_id"):
        if configurable.get(key):
            return str(uuid.uuid5(_NAMESPACE, f"{key}:{configurable[key]}"))
    return None


def memory_session(chat_id: str, question: str | None, history: Any) -> str:
    """A session of this call's own on a stable chat id, the same for the same conversation."""
    digest = hashlib.sha256(json.dumps([question, history], sort_keys=True, default=str).encode()).hexdigest()
    return str(uuid.uuid5(_NAMESPACE, f"memory:{chat_id}:{digest}"))


@contextmanager
def lease(base_url: str, chat_id: str | None, session_id: str | None) -> Iterator[str | None]:
    """Hold the chat a call will run on; yields the chat id to send (``None``: Flowise uses the session's).

    Flowise runs a call on ``chatId``, else on the session id. If that chat is held by a running call of this
    process, a fresh chat id is sent instead (with a warning). No I/O and no lock: safe in any finalizer.
    """
    wanted = chat_id or session_id
    if wanted is None:
        yield str(uuid.uuid4())
        return
    key, token = (base_url, wanted), object()
    if _ACTIVE.setdefault(key, token) is not token:
        fresh = str(uuid.uuid4())
        warnings.warn(
            f"chat id {wanted!r} is in use by another running call: this call runs on a fresh chat {fresh!r} "
            "(Flowise would mix the two streams)",
            ChatIdInUseWarning,
            stacklevel=4,
        )
        yield fresh
        return
    try:
        yield chat_id
    finally:
        if _ACTIVE.get(key) is token:  # only the holder removes its key
            _ACTIVE.pop(key, None)
