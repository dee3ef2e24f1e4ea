"""Agentflow v2 executions as Flowise keeps them (the ``execution`` table): one per run, resumed in place."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone
from typing import Any

from .records import js_now_iso
from .wire import js_json

__all__ = ["ExecutionStore", "db_now"]


def db_now() -> str:
    """A ``timestamp`` column as SQLite gives it back: whole seconds (``...:57.000Z``)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", ".000Z")


class ExecutionStore:
    """Execution rows (column order as ``GET /api/v1/executions/{id}`` returns them), thread-safe."""

    def __init__(self, workspace_id: str) -> None:
        self.workspace_id = workspace_id
        self._rows: dict[str, dict[str, Any]] = {}
        self._lock = threading.RLock()

    def create(self, flow_id: str, session_id: str) -> dict[str, Any]:
        """``addExecution``: a new INPROGRESS row with no executed data yet."""
        now = db_now()
        row: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "executionData": "[]",
            "state": "INPROGRESS",
            "agentflowId": flow_id,
            "sessionId": session_id,
            "action": None,
            "isPublic": None,
            "createdDate": now,
            "updatedDate": now,
            "stoppedDate": None,
            "workspaceId": self.workspace_id,
        }
        with self._lock:
            self._rows[row["id"]] = row
        return row

    def update(self, execution_id: str, *, data: list[dict[str, Any]] | None = None, state: str | None = None) -> None:
        """``updateExecution``: new executed data and/or state (STOPPED also stamps ``stoppedDate``)."""
        with self._lock:
            row = self._rows[execution_id]
            if data is not None:
                row["executionData"] = js_json(data).decode("utf-8")
            if state is not None:
                row["state"] = state
                if state == "STOPPED":
                    row["stoppedDate"] = js_now_iso()
            row["updatedDate"] = db_now()

    def get(self, execution_id: str) -> dict[str, Any] | None:
        """A copy of one row."""
        with self._lock:
            row = self._rows.get(execution_id)
            return dict(row) if row is not None else None

    def latest(self, flow_id: str, session_id: str) -> dict[str, Any] | None:
        """The session's most recent execution of this flow (what a resume continues)."""
        with self._lock:
            rows = [r for r in self._rows.values() if r["agentflowId"] == flow_id and r["sessionId"] == session_id]
            return dict(rows[-1]) if rows else None

    def search(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        """Rows matching ``id``/``agentflowId``/``sessionId``/``state``, most recently updated first."""
        with self._lock:
            rows = [dict(r) for r in self._rows.values() if all(r.get(k) == v for k, v in filters.items())]
        rows.reverse()
        rows.sort(key=lambda r: str(r["updatedDate"]), reverse=True)
        return rows
