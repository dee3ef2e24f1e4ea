"""Connection settings and lazily built core clients, shared by ``ChatFlowise``, ``FlowiseTool`` and the toolkit.

Clients are never part of an instance's state: pickling or deep-copying one at any time (even mid-use) gives an
equal object whose clients are built again on first use. A user-supplied ``http_client`` is shared by a deep copy
(you own it) and left out of a pickle (a connection pool cannot cross processes: the copy builds its own).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any

import httpx
from langchain_core.utils import from_env, secret_from_env
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator

from flowise_integrations.client import AsyncFlowiseClient, FlowiseClient
from flowise_integrations.exchange import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, normalize_base_url

__all__ = ["FlowiseConnection"]

_LOCK = threading.Lock()
_USER_CLIENTS = ("http_client", "http_async_client")


class FlowiseConnection(BaseModel):
    """Where the Flowise server is and how to talk to it. Clients are built on first use, per instance.

    The async client is kept per event loop (an ``httpx.AsyncClient`` must not outlive its loop); a
    user-supplied ``http_async_client`` is used as is, whatever the loop.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    base_url: str = Field(default_factory=from_env("FLOWISE_BASE_URL", default=DEFAULT_BASE_URL))
    """Server root, e.g. ``http://localhost:3000`` (default: ``FLOWISE_BASE_URL``)."""
    api_key: SecretStr | None = Field(default_factory=secret_from_env("FLOWISE_API_KEY", default=None))
    """Flowise API key (default: ``FLOWISE_API_KEY``); sent as a bearer token, never printed or serialized."""
    timeout: float | httpx.Timeout | None = None
    """Request timeout in seconds or an ``httpx.Timeout``; ``None`` = 60 s reads, 10 s connect."""
    deadline: float | None = None
    """Seconds for a whole call (connect, retries, the entire stream); ``None``: no bound. Per call: ``deadline=``.
    A missed deadline raises ``FlowiseModelTimeoutError`` (tools: ``FlowiseToolTimeoutError``) with the partial
    answer."""
    max_retries: int = 2
    """Retries of connect errors and 429/502/503/504, before the first byte only."""
    abort_on_cancel: bool = True
    """Leaving a call early (``break`` out of a stream, a cancelled task, Ctrl-C) asks Flowise to abort the run
    (agentflows stop; classic chatflows run on). ``False``: only close the connection."""
    default_headers: dict[str, str] | None = None
    """Extra HTTP headers on every request."""
    http_client: httpx.Client | None = Field(default=None, exclude=True)
    """Your own ``httpx.Client`` (proxies, transports, mTLS...); you close it."""
    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True)
    """Your own ``httpx.AsyncClient``; you close it."""

    _client: FlowiseClient | None = PrivateAttr(default=None)
    _async_client: AsyncFlowiseClient | None = PrivateAttr(default=None)
    _loop_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncFlowiseClient] | None = PrivateAttr(
        default=None
    )
    _owner: FlowiseConnection | None = PrivateAttr(default=None)
    """Another connection whose clients this one uses (a toolkit's tools share one pool)."""

    @field_validator("base_url")
    @classmethod
    def _normalize_base_url(cls, value: str) -> str:
        return normalize_base_url(value)

    def _client_kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "api_key": self.api_key,
            "timeout": DEFAULT_TIMEOUT if self.timeout is None else self.timeout,
            "deadline": self.deadline,
            "max_retries": self.max_retries,
            "headers": self.default_headers,
        }

    def _connection_fields(self) -> dict[str, Any]:
        """The settings a tool built from this connection inherits."""
        return {name: getattr(self, name) for name in FlowiseConnection.model_fields}

    def _share_clients(self, owner: FlowiseConnection) -> None:
        """Use ``owner``'s clients (same server settings) instead of building this instance's own."""
        self._owner = owner

    @property
    def client(self) -> FlowiseClient:
        """The core sync client (built on first use)."""
        if self._owner is not None:
            return self._owner.client
        client = self._client
        if client is None:
            with _LOCK:
                if self._client is None:
                    self._client = FlowiseClient(**self._client_kwargs(), http_client=self.http_client)
                client = self._client
        return client

    @property
    def async_client(self) -> AsyncFlowiseClient:
        """The core async client of the running event loop (built on first use)."""
        if self._owner is not None:
            return self._owner.async_client
        if self.http_async_client is not None:
            if self._async_client is None:
                self._async_client = AsyncFlowiseClient(**self._client_kwargs(), http_client=self.http_async_client)
            return self._async_client
        loop = asyncio.get_running_loop()
        clients = self._loop_clients
        if clients is None:
            clients = self._loop_clients = weakref.WeakKeyDictionary()
        client = clients.get(loop)
        if client is None:
            client = clients[loop] = AsyncFlowiseClient(**self._client_kwargs())
        return client

    def close(self) -> None:
        """Close the sync client's connections (not a user-supplied ``http_client``)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close this event loop's async client (not a user-supplied ``http_async_client``)."""
        if self._loop_clients is not None:
            client = self._loop_clients.pop(asyncio.get_running_loop(), None)
            if client is not None:
                await client.aclose()

    # -- copies: never the clients ---------------------------------------------------------------------

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state["__dict__"] = {**state["__dict__"], **dict.fromkeys(_USER_CLIENTS)}
        private = state.get("__pydantic_private__") or {}
        state["__pydantic_private__"] = {**private, "_client": None, "_async_client": None, "_loop_clients": None}
        return state

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        memo = {} if memo is None else memo
        for name in _USER_CLIENTS:  # yours: shared, never copied
            shared = getattr(self, name)
            if shared is not None:
                memo[id(shared)] = shared
        for built in (self._client, self._async_client, self._loop_clients):
            if built is not None:
                memo[id(built)] = None  # built again on first use
        return super().__deepcopy__(memo)
