"""Which chat and session a call uses: one conversation is one Flowise chat.

- A LangGraph thread (``configurable.thread_id``) or a ``RunnableWithMessageHistory`` session
  (``configurable.session_id``) maps to a stable chat id (:func:`derived_chat_id`), so Flowise's logs,
  analytics and feedback show one conversation. ``configurable.flowise_chat_id`` names one outright.
- Never two calls on one chat at once: the core client leases every call's chat (``flowise_integrations.chats``)
  and falls back to a fresh one, with a ``ChatIdInUseWarning``, when it is taken.
- Flowise's memory is keyed by the session (``overrideConfig.sessionId``, else the chat id). When the client
  sends the history itself on a stable chat id, :func:`memory_session` gives the call a session of its own, so
  Flowise's memory never repeats the turns that are sent; it is derived from the conversation, so a node that
  LangGraph runs again after an interrupt finds the stopped run again.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

from langchain_core.runnables.config import var_child_runnable_config

__all__ = ["CONFIG_KEYS", "configurable_of", "current_configurable", "derived_chat_id", "memory_session"]

CONFIG_KEYS = ("thread_id", "session_id", "flowise_session_id", "flowise_chat_id")
"""The ``config["configurable"]`` keys this package reads (anything else there is ignored)."""

_NAMESPACE = uuid.UUID("0b0c6f1e-6a43-5a4e-9c0e-f10e15e1a7e5")


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
