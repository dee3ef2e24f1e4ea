"""The read endpoints besides prediction: chatflows (list, one, streaming, uploads), chat messages, executions."""

from __future__ import annotations

import json
import re
from typing import Any, Final

from .actions import Reply
from .catalog import chatflow_row, uploads_config
from .prediction import error_reply
from .records import RecordedRequest
from .state import ServerState
from .wire import js_json, send_reply

__all__ = ["Endpoints"]

_JSON: Final = "application/json; charset=utf-8"
_UUID: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.IGNORECASE)
_TYPES_3X: Final = ("CHATFLOW", "AGENTFLOW", "MULTIAGENT", "ASSISTANT")
_3X_COLUMNS: Final = ("executionId", "reasonContent")  # chat-message columns Flowise 3.0 added
_EXECUTION_STATES: Final = ("INPROGRESS", "FINISHED", "ERROR", "TERMINATED", "TIMEOUT", "STOPPED")


def _int(raw: str | None) -> int | None:
    """``parseInt``: leading digits (with a sign), else NaN (None)."""
    match = re.match(r"\s*([+-]?\d+)", raw or "")
    return int(match.group(1)) if match else None


class Endpoints:
    """Each handler answers one route from the server state."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    def json(self, request: RecordedRequest, value: Any) -> Reply:
        """A 200 JSON reply."""
        keep_alive = request.headers.get("connection", "").lower() != "close"
        frame = self.state.profile.frame_headers
        return iter(send_reply(200, js_json(value), _JSON, keep_alive=keep_alive, frame_headers=frame))

    def error(self, request: RecordedRequest, status: int, message: str) -> Reply:
        """The error middleware's reply."""
        return error_reply(request, status, message, self.state.profile)

    def _row(self, flow_id: str) -> dict[str, Any]:
        state = self.state
        return chatflow_row(flow_id, state.flows[flow_id], state.flow_dates[flow_id], state.workspace_id, state.profile)

    # -- chatflows ---------------------------------------------------------------------------------------
    def chatflows(self, request: RecordedRequest) -> Reply:
        """``GET /chatflows``: newest first, ``?type=`` filtered; 3.0.4+ pages (``{data, total}``)."""
        profile, query = self.state.profile, request.query
        page, limit = -1, -1
        if profile.paged_lists:
            values = {}
            for name in ("page", "limit"):
                value = _int(query.get(name)) if query.get(name) else -1
                if value is not None and value < 0 and query.get(name):
                    return self.error(request, 412, f"Error: {name} cannot be negative!")
                values[name] = -1 if value is None else value
            page, limit = values["page"], values["limit"]
        with self.state.lock:
            ids = list(self.state.flows)
            rows = [self._row(flow_id) for flow_id in ids]
        wanted = query.get("type")
        if profile.at_least(3):
            rows.reverse()  # orderBy updatedDate DESC
            if wanted in _TYPES_3X:
                rows = [r for r in rows if r["type"] == wanted]
        elif wanted in ("MULTIAGENT", "ASSISTANT"):
            rows = [r for r in rows if r["type"] == wanted]
        elif wanted == "CHATFLOW":
            rows = [r for r in rows if r["type"] in ("CHATFLOW", None)]
        if page > 0 and limit > 0:
            return self.json(request, {"data": rows[(page - 1) * limit : page * limit], "total": len(rows)})
        return self.json(request, rows)

    def chatflow(self, request: RecordedRequest, flow_id: str) -> Reply:
        """``GET /chatflows/{id}``."""
        with self.state.lock:
            known = flow_id in self.state.flows
            row = self._row(flow_id) if known else None
        if row is not None:
            return self.json(request, row)
        message = f"Chatflow {flow_id} not found in the database!"
        if not self.state.profile.not_found_is_404:
            return self.error(request, 500, f"Error: chatflowsService.getChatflowById - {message}")
        if not _UUID.match(flow_id):
            return self.error(request, 400, "Invalid Chatflow ID")
        return self.error(request, 404, message)

    def streaming(self, request: RecordedRequest, flow_id: str) -> Reply:
        """``GET /chatflows-streaming/{id}``."""
        with self.state.lock:
            flow = self.state.flows.get(flow_id)
        if flow is None:
            message = f"Error: chatflowsService.checkIfChatflowIsValidForStreaming - Chatflow {flow_id} not found"
            return self.error(request, 500, message)
        return self.json(request, {"isStreaming": flow.streaming})

    def uploads(self, request: RecordedRequest, flow_id: str) -> Reply:
        """``GET /chatflows-uploads/{id}``."""
        with self.state.lock:
            flow = self.state.flows.get(flow_id)
        if flow is None:
            message = f"Error: chatflowsService.checkIfChatflowIsValidForUploads - Chatflow {flow_id} not found"
            return self.error(request, 500, message)
        return self.json(request, uploads_config(flow))

    # -- chat messages -----------------------------------------------------------------------------------
    def chat_messages(self, request: RecordedRequest, flow_id: str) -> Reply:
        """``GET /chatmessage/{id}``: stored rows filtered like ``utilGetChatMessage``, with the execution."""
        state = self.state
        modern = state.profile.workspaces  # 2.x: no workspace check, no executions
        with state.lock:
            if modern and flow_id not in state.flows:
                return self.error(request, 500, "Error: chatMessagesService.getAllChatMessages - Unauthorized access")
            rows = [dict(r) for r in state.chat_messages if r["chatflowid"] == flow_id]
        q = request.query
        filters = {"chatId": q.get("chatId"), "memoryType": q.get("memoryType"), "sessionId": q.get("sessionId"),
                   "id": q.get("messageId")}  # fmt: skip
        rows = [r for r in rows if all(v is None or r[k] == v for k, v in filters.items())]
        chat_types = _chat_types(q.get("chatType"))
        if chat_types:
            rows = [r for r in rows if r["chatType"] in chat_types]
        rows.sort(key=lambda r: str(r["createdDate"]))  # stable: same-millisecond rows keep insertion order
        if q.get("order") == "DESC":
            rows.reverse()
        if not modern:
            return self.json(request, [{k: v for k, v in r.items() if k not in _3X_COLUMNS} for r in rows])
        out = [{**r, "execution": state.executions.get(r["executionId"] or "")} for r in rows]
        return self.json(request, out)

    # -- executions (3.x) --------------------------------------------------------------------------------
    def execution(self, request: RecordedRequest, execution_id: str) -> Reply:
        """``GET /executions/{id}``."""
        row = self.state.executions.get(execution_id)
        if row is None:
            message = f"Error: executionsService.getExecutionById - Execution {execution_id} not found"
            return self.error(request, 500, message)
        return self.json(request, row)

    def executions(self, request: RecordedRequest) -> Reply:
        """``GET /executions``: filtered, newest first, paged (default page 1 of 12), each with its agentflow."""
        q = request.query
        filters = {k: q[k] for k in ("id", "agentflowId", "sessionId") if q.get(k)}
        if q.get("state") in _EXECUTION_STATES:
            filters["state"] = q["state"]
        page = _int(q.get("page")) or 1 if q.get("page") else 1
        limit = _int(q.get("limit")) or 12 if q.get("limit") else 12
        rows = self.state.executions.search(filters)
        start = max(page - 1, 0) * limit
        data = []
        with self.state.lock:
            for row in rows[start : start + limit]:
                known = row["agentflowId"] in self.state.flows
                data.append({**row, "agentflow": self._row(row["agentflowId"]) if known else None})
        return self.json(request, {"data": data, "total": len(rows)})


def _chat_types(raw: str | None) -> list[str]:
    if not raw:
        return []
    try:
        parsed = json.loads(raw)
    except ValueError:
        return [raw]
    return [str(t) for t in parsed] if isinstance(parsed, list) else [str(parsed)]
