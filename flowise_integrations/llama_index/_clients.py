"""Lazily built Flowise clients for the wing's objects: one sync client, one async client per event loop."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any

import httpx

from flowise_integrations.client import AsyncFlowiseClient, FlowiseClient

__all__ = ["Clients"]


class Clients:
    """An owner's clients, built on first use (the async ones per event loop, since an httpx ``AsyncClient`` is
    bound to the loop it first ran on). Copies and unpickled owners start with none built (connections are not
    state); a deep copy keeps injected httpx clients."""

    __slots__ = ("_lock", "async_http", "by_loop", "http", "sync")

    def __init__(self, http: httpx.Client | None = None, async_http: httpx.AsyncClient | None = None) -> None:
        self.http = http
        self.async_http = async_http
        self.sync: FlowiseClient | None = None
        self.by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncFlowiseClient] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> Clients:
        return Clients(self.http, self.async_http)

    def __reduce__(self) -> tuple[type[Clients], tuple[()]]:
        return Clients, ()

    def get_sync(self, build: Callable[[httpx.Client | None], FlowiseClient]) -> FlowiseClient:
        """The sync client, built once with ``build(injected http client)`` (thread-safe)."""
        client = self.sync
        if client is None:
            with self._lock:
                if self.sync is None:
                    self.sync = build(self.http)
                client = self.sync
        return client

    def get_async(self, build: Callable[[httpx.AsyncClient | None], AsyncFlowiseClient]) -> AsyncFlowiseClient:
        """The running event loop's async client, built on first use in that loop."""
        loop = asyncio.get_running_loop()
        client = self.by_loop.get(loop)
        if client is None:
            with self._lock:  # loops in several threads may share one owner
                client = self.by_loop.get(loop)
                if client is None:
                    client = self.by_loop[loop] = build(self.async_http)
        return client

    def close(self) -> None:
        """Close the sync client (an injected httpx client stays open)."""
        client, self.sync = self.sync, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close this event loop's async client (an injected httpx client stays open)."""
        client = self.by_loop.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
