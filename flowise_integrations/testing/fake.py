"""``FakeFlowise``: the emulator's public face (flows, transports, loopback server, recorded traffic)."""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import httpx

from .app import FlowiseApp
from .flow import FakeFlow
from .records import RecordedRequest
from .server import LoopbackServer
from .state import ServerState
from .transport import AsyncFakeTransport, FakeTransport

__all__ = ["FakeFlowise"]


class FakeFlowise:
    """A protocol- and byte-faithful Flowise server emulator (3.1.4 unless ``version`` says otherwise).

    ``api_key`` is the workspace API key that protected endpoints (``GET /api/v1/chatflows``,
    ``/chatmessage/...``, ``/executions``) require; ``None`` lets every request through the gate. The same app
    answers over :meth:`transport` / :meth:`async_transport` (in-process, no sockets) and over a real loopback
    server (:meth:`serve`).

    ``version`` plays an older server's protocol (checked against real 2.2.8 captures): before 3.1.2, ``end``,
    ``error`` and ``abort`` are framed ``message`` without a colon, there is no ``:heartbeat`` and ``metadata``
    carries no ``action``; before 3.1.3, no ``Content-Security-Policy``/``X-Frame-Options`` headers; before
    3.1.0, ``PUT /chatmessage/abort`` needs the workspace key and upstream key errors read "401 Invalid model
    key or Incorrect local model configuration."; before 3.0.13, an unknown or malformed flow id is a 500 from
    ``chatflowsService.getChatflowById``; before 3.0.4, ``GET /chatflows`` ignores ``page``/``limit``; 2.x lets
    ``x-request-from: internal`` through the gate, lists every flow for ``?type=AGENTFLOW``, has no
    ``/executions`` and no execution columns on chat messages. Agentflow v2 needs 3.0+ on a real server.
    """

    def __init__(self, version: str = "3.1.4", api_key: str | None = None) -> None:
        self._state = ServerState(version, api_key)
        self._app = FlowiseApp(self._state)
        self._server: LoopbackServer | None = None
        self._server_lock = threading.Lock()
        self._transports: weakref.WeakSet[FakeTransport] = weakref.WeakSet()

    # -- flows ------------------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        """The version ``GET /api/v1/version`` reports."""
        return self._state.version

    @property
    def api_key(self) -> str | None:
        """The workspace API key."""
        return self._state.api_key

    @property
    def credential_id(self) -> str:
        """The credential id agentflow streams leak in ``llmModelConfig.FLOWISE_CREDENTIAL_ID``."""
        return self._state.credential_id

    def add_flow(self, flow: FakeFlow | None = None) -> str:
        """Register a flow (a copy is kept); returns its id."""
        return self._state.add_flow(flow if flow is not None else FakeFlow())

    def flow(self, flow_id: str) -> FakeFlow:
        """The registered flow (mutable: changes apply to later requests)."""
        with self._state.lock:
            return self._state.flows[flow_id]

    # -- transports and server ---------------------------------------------------------------------------
    def transport(self) -> httpx.BaseTransport:
        """A sync httpx transport answering in-process (``httpx.Client(transport=..., base_url=...)``)."""
        transport = FakeTransport(self._app)
        self._transports.add(transport)
        return transport

    def async_transport(self) -> httpx.AsyncBaseTransport:
        """An async httpx transport answering in-process."""
        return AsyncFakeTransport(self._app)

    def start(self) -> str:
        """Start the loopback HTTP/1.1 server on 127.0.0.1 (a free port) and return its base URL."""
        with self._server_lock:
            if self._server is None:
                server = LoopbackServer(self._app)
                server.start()
                self._server = server
            return self._server.base_url

    def stop(self) -> None:
        """Stop the loopback server (closing every connection) and wake requests hung on transports."""
        with self._server_lock:
            server, self._server = self._server, None
        if server is not None:
            server.stop()
        for transport in list(self._transports):
            transport.release()

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """``with fake.serve() as base_url:`` runs the loopback server for the block."""
        base_url = self.start()
        try:
            yield base_url
        finally:
            self.stop()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str | None:
        """The loopback server's URL while it runs."""
        server = self._server
        return None if server is None else server.base_url

    @property
    def open_connections(self) -> int:
        """Client connections currently open on the loopback server."""
        server = self._server
        return 0 if server is None else len(server.connections)

    # -- what happened -----------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (a snapshot), including ones never answered."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request."""
        with self._state.lock:
            if not self._state.requests:
                raise LookupError("FakeFlowise has not received any request")
            return self._state.requests[-1]

    @property
    def executions(self) -> list[dict[str, Any]]:
        """Agentflow executions (``GET /api/v1/executions/{id}`` rows), most recently updated first."""
        return self._state.executions.search({})

    @property
    def chat_messages(self) -> list[dict[str, Any]]:
        """Stored userMessage/apiMessage rows, oldest first, as ``GET /api/v1/chatmessage/{id}`` lists them."""
        with self._state.lock:
            return [dict(row) for row in self._state.chat_messages]

    def reset(self) -> None:
        """Forget the recorded requests."""
        with self._state.lock:
            self._state.requests.clear()
