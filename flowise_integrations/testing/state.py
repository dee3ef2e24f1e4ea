"""The emulated server's mutable state, shared by every transport and connection (thread-safe)."""

from __future__ import annotations

import copy
import threading
import uuid
from typing import Any

from .executions import ExecutionStore
from .flow import FakeFlow
from .records import RecordedRequest, js_now_iso
from .turn import Run
from .versions import ServerProfile

__all__ = ["ServerState"]


class ServerState:
    """Flows, recorded requests, stored chat messages and running predictions."""

    def __init__(self, version: str, api_key: str | None) -> None:
        self.version = version
        self.profile = ServerProfile(version)
        self.api_key = api_key
        self.credential_id = str(uuid.uuid4())
        self.workspace_id = str(uuid.uuid4())
        self.lock = threading.RLock()
        self.flows: dict[str, FakeFlow] = {}
        self.flow_dates: dict[str, str] = {}
        self.requests: list[RecordedRequest] = []
        self.chat_messages: list[dict[str, Any]] = []
        self.executions = ExecutionStore(self.workspace_id)
        self._runs: dict[str, Run] = {}
        self._http_errors_served: dict[str, int] = {}

    def add_flow(self, flow: FakeFlow) -> str:
        """Register a copy of ``flow``; returns its id (a new UUID v4 unless ``flow.id`` is set)."""
        flow_id = flow.id or str(uuid.uuid4())
        with self.lock:
            self.flows[flow_id] = copy.copy(flow)
            self.flow_dates.setdefault(flow_id, js_now_iso()[:-4] + "000Z")
        return flow_id

    def record(self, request: RecordedRequest) -> None:
        """Remember a request (before it is answered)."""
        with self.lock:
            self.requests.append(request)

    def take_http_error(self, flow_id: str) -> tuple[int, dict[str, str], bytes] | None:
        """The next scripted HTTP error for this flow, if any are left."""
        with self.lock:
            flow = self.flows[flow_id]
            served = self._http_errors_served.get(flow_id, 0)
            if served >= len(flow.http_errors):
                return None
            self._http_errors_served[flow_id] = served + 1
            return flow.http_errors[served]

    def start_run(self, flow_id: str, chat_id: str, run: Run) -> None:
        """Make a running prediction abortable (``abortControllerPool`` key ``<flowId>_<chatId>``)."""
        with self.lock:
            self._runs[f"{flow_id}_{chat_id}"] = run

    def end_run(self, flow_id: str, chat_id: str, run: Run) -> None:
        """Forget a finished prediction."""
        with self.lock:
            key = f"{flow_id}_{chat_id}"
            if self._runs.get(key) is run:
                del self._runs[key]

    def abort(self, flow_id: str, chat_id: str) -> None:
        """Signal the running prediction for this chat, if there is one."""
        with self.lock:
            run = self._runs.get(f"{flow_id}_{chat_id}")
        if run is not None:
            run.aborted.set()

    def store_messages(self, *rows: dict[str, Any]) -> None:
        """Append chat-message rows."""
        with self.lock:
            self.chat_messages.extend(rows)

    def clear_last_action(self, chat_id: str, session_id: str) -> None:
        """A resumed run takes the ``action`` off the newest message of its chat or session that has one."""
        with self.lock:
            newest: dict[str, Any] | None = None
            for row in self.chat_messages:
                mine = row["chatId"] == chat_id or row["sessionId"] == session_id
                if mine and row.get("action") and (newest is None or row["createdDate"] >= newest["createdDate"]):
                    newest = row
            if newest is not None:
                newest["action"] = None

    def session_rows(self, flow_id: str, session_id: str) -> list[dict[str, Any]]:
        """Stored messages of one memory session, oldest first."""
        with self.lock:
            return [r for r in self.chat_messages if r["chatflowid"] == flow_id and r["sessionId"] == session_id]
