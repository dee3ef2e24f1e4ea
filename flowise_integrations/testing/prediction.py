"""``POST /api/v1/prediction/{id}``: streaming decision, validation, SSE and JSON replies, error paths."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Final

from . import agentflow, chatflow, multiagent
from .actions import HANG, Chunk, Drop, Reply, Sleep
from .flow import FakeFlow
from .records import RecordedRequest, chat_message_row, js_now_iso
from .state import ServerState
from .turn import Event, FlowFailure, Turn
from .wire import UNDEFINED, error_body, js_json, send_reply, sse_event, sse_head

__all__ = ["error_reply", "hangs_on_error", "is_truthy", "predict"]

_SCRIPTS: Final[dict[str, ModuleType]] = {"chatflow": chatflow, "agentflow": agentflow, "multiagent": multiagent}
_PREFIX: Final = "Error: predictionsServices.buildChatflow - "
# the ``uuid`` npm package's validate(): versions 1-8, plus the nil and max UUIDs
_UUID: Final = re.compile(
    r"^(?:[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    r"|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$",
    re.IGNORECASE,
)
_JSON_TYPE: Final = "application/json; charset=utf-8"


def is_truthy(value: Any) -> bool:
    """JavaScript truthiness of a parsed JSON value."""
    if value is None or value is False or value is UNDEFINED:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value == value and value != 0
    if isinstance(value, str):
        return value != ""
    return True


def hangs_on_error(body: dict[str, Any]) -> bool:
    """The error middleware stays silent (the request hangs) when ``body.streaming`` is truthy, not "false"."""
    streaming = body.get("streaming")
    return is_truthy(streaming) and streaming != "false"


def _keep_alive(request: RecordedRequest) -> bool:
    return request.headers.get("connection", "").lower() != "close"


def _rewrite(message: str) -> str:
    if "401 Incorrect API key provided" in message:
        return "401 Unauthorized \u2013 check your API key and ensure it has access to the requested model."
    return message


def error_reply(request: RecordedRequest, status: int, message: str) -> Reply:
    """The error middleware's JSON reply."""
    yield from send_reply(
        status, js_json(error_body(status, _rewrite(message))), _JSON_TYPE, keep_alive=_keep_alive(request)
    )


def _failure_reply(request: RecordedRequest, body: dict[str, Any], status: int, message: str) -> Reply:
    """An error thrown before SSE started: JSON, or nothing at all if streaming was asked for."""
    if hangs_on_error(body):
        yield HANG
    else:
        yield from error_reply(request, status, message)


def predict(state: ServerState, request: RecordedRequest, body: dict[str, Any], flow_id: str) -> Reply:
    """Answer one prediction request."""
    if not flow_id:
        return _failure_reply(request, body, 412, "Error: predictionsController.createPrediction - id not provided!")
    with state.lock:
        flow = state.flows.get(flow_id)
    if flow is not None:
        canned = state.take_http_error(flow_id)
        if canned is not None:
            status, headers, content = canned
            return iter(send_reply(status, content, "text/html; charset=utf-8", extra=headers.items()))
    if not _UUID.match(flow_id):
        return _failure_reply(request, body, 400, "Invalid Chatflow ID")
    if flow is None:
        return _failure_reply(request, body, 404, f"Chatflow {flow_id} not found in the database!")
    streaming = body.get("streaming")
    if flow.streaming and (streaming is True or streaming == "true"):
        return _sse_reply(state, request, body, flow_id, flow)
    return _json_reply(state, request, body, flow_id, flow)


def _prepare(state: ServerState, request: RecordedRequest, body: dict[str, Any], flow_id: str, flow: FakeFlow) -> Turn:
    """Resolve ids and validate, as ``utilBuildChatflow`` and the flow executors do; raises FlowFailure."""
    if flow.api_key is not None:
        supplied = request.headers.get("authorization", "").split("Bearer ")[-1]
        if not supplied or supplied != flow.api_key:
            raise FlowFailure("Unauthorized")
    override = body.get("overrideConfig")
    override = override if isinstance(override, dict) else {}
    override_session = override.get("sessionId")
    chat_id: Any = body.get("chatId")
    if chat_id is None:
        chat_id = override_session if override_session is not None else str(uuid.uuid4())
    if is_truthy(override_session) and not isinstance(override_session, str):
        raise FlowFailure("Invalid sessionId: must be a string")
    if not isinstance(chat_id, str):
        raise FlowFailure("Invalid chatId: must be a string")
    session_id: str = override_session if isinstance(override_session, str) and override_session else chat_id
    history: list[dict[str, Any]] = []
    if flow.kind == "agentflow":
        history = _agentflow_history(state, body, flow_id, session_id)
    try:
        text, tokens = flow.text_and_tokens(body)
    except Exception as exc:  # a failing ``respond`` script is a failing flow
        raise FlowFailure(str(exc)) from exc
    return Turn(
        flow_id=flow_id,
        flow=flow,
        body=body,
        question=body.get("question", UNDEFINED),
        chat_id=chat_id,
        session_id=session_id,
        chat_message_id=str(uuid.uuid4()),
        execution_id=str(uuid.uuid4()),
        text=text,
        tokens=tokens,
        credential_id=state.credential_id,
        history=history,
    )


def _agentflow_history(state: ServerState, body: dict[str, Any], flow_id: str, session_id: str) -> list[dict[str, Any]]:
    """Validate ``history`` like agentflow v2 and build the LLM's memory (prepended + stored turns)."""
    items = body.get("history")
    if isinstance(items, (list, str)) and len(items) > 0:  # ``history && history.length > 0``
        valid = isinstance(items, list) and all(
            isinstance(i, dict) and i.get("role") in ("apiMessage", "userMessage") and isinstance(i.get("content"), str)
            for i in items
        )
        if not valid:
            raise FlowFailure(
                "Invalid history format. Each history item must have: "
                '{ role: "apiMessage" | "userMessage", content: string }'
            )
    if is_truthy(body.get("question")) and isinstance(body.get("form"), dict) and body["form"]:
        raise FlowFailure("Question and form cannot be provided at the same time")
    rows = [*(items if isinstance(items, list) else []), *state.session_rows(flow_id, session_id)]
    return [{"role": "user" if r["role"] == "userMessage" else "assistant", "content": r["content"]} for r in rows]


def _store(state: ServerState, turn: Turn, user_date: str) -> None:
    """Save the user and api messages, as the executors do before answering."""
    flow = turn.flow
    is_agentflow = flow.kind == "agentflow"
    question = turn.question if isinstance(turn.question, str) else ""
    common: dict[str, Any] = {
        "chatflowid": turn.flow_id,
        "chat_id": turn.chat_id,
        "session_id": turn.session_id,
        "memory_type": None if is_agentflow else (flow.memory_type or ""),  # ``memoryNode?.data.label || ''``
        "execution_id": turn.execution_id if is_agentflow else None,
    }
    user = chat_message_row(
        role="userMessage",
        content=(question or " ") if is_agentflow else question,
        created_date=user_date,
        fileUploads=turn.body.get("uploads"),
        leadEmail=turn.body.get("leadEmail"),
        **common,
    )
    content = (turn.text or " ") if is_agentflow else turn.text
    columns = _SCRIPTS[flow.kind].api_columns(turn)
    api = chat_message_row(role="apiMessage", content=content, message_id=turn.chat_message_id, **common, **columns)
    if is_agentflow:
        with state.lock:
            state.executions[turn.execution_id] = _execution_row(turn, user_date, state.workspace_id)
    state.store_messages(user, api)


def _execution_row(turn: Turn, created: str, workspace_id: str) -> dict[str, Any]:
    return {
        "id": turn.execution_id,
        "executionData": js_json(turn.executed_data).decode("utf-8"),
        "state": "STOPPED" if turn.flow.action is not None else "FINISHED",
        "agentflowId": turn.flow_id,
        "sessionId": turn.session_id,
        "action": None,
        "isPublic": None,
        "createdDate": created,
        "updatedDate": js_now_iso(),
        "stoppedDate": None,
        "workspaceId": workspace_id,
    }


def _metadata(result: dict[str, Any]) -> dict[str, Any]:
    """``streamMetadataEvent``: the reply's ids and extras, each only when truthy."""
    meta: dict[str, Any] = {}
    for key in (
        "chatId",
        "chatMessageId",
        "question",
        "sessionId",
        "memoryType",
        "followUpPrompts",
        "flowVariables",
        "action",
    ):
        value = result.get(key, UNDEFINED)
        if is_truthy(value):
            meta[key] = json.loads(value) if key == "followUpPrompts" else value
    return meta


def _sse_reply(
    state: ServerState, request: RecordedRequest, body: dict[str, Any], flow_id: str, flow: FakeFlow
) -> Reply:
    """200 + headers at once, then the flow's events, ``metadata`` (or ``error``), and always ``end``."""
    yield sse_head()
    turn: Turn | None = None
    try:
        user_date = js_now_iso()
        turn = _prepare(state, request, body, flow_id, flow)
        state.start_run(flow_id, turn.chat_id, turn.run)
        script = _SCRIPTS[flow.kind]
        for step in script.events(turn):
            if isinstance(step, Event):
                if not flow.lose_tokens:
                    yield Chunk(step.frame())
            else:
                yield step
        _store(state, turn, user_date)
        yield Chunk(sse_event("metadata", _metadata(script.result(turn))))
    except FlowFailure as exc:
        yield Chunk(sse_event("error", _rewrite(_PREFIX + exc.message)))
    finally:
        if turn is not None:
            state.end_run(flow_id, turn.chat_id, turn.run)
    yield Chunk(sse_event("end", "[DONE]"))


def _json_reply(
    state: ServerState, request: RecordedRequest, body: dict[str, Any], flow_id: str, flow: FakeFlow
) -> Reply:
    """Run the flow silently (its latency and connection cuts still apply), then one JSON body."""
    turn: Turn | None = None
    try:
        user_date = js_now_iso()
        turn = _prepare(state, request, body, flow_id, flow)
        state.start_run(flow_id, turn.chat_id, turn.run)
        script = _SCRIPTS[flow.kind]
        yield from _timing_only(script.events(turn))
        _store(state, turn, user_date)
        content = js_json(script.result(turn))
    except FlowFailure as exc:
        yield from _failure_reply(request, body, 500, _PREFIX + exc.message)
        return
    finally:
        if turn is not None:
            state.end_run(flow_id, turn.chat_id, turn.run)
    yield from send_reply(200, content, _JSON_TYPE, keep_alive=_keep_alive(request))


def _timing_only(steps: Iterator[Any]) -> Iterator[Sleep | Drop]:
    for step in steps:
        if isinstance(step, (Sleep, Drop)):
            yield step
