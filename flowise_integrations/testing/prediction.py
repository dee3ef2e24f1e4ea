"""``POST /api/v1/prediction/{id}``: streaming decision, validation, SSE and JSON replies, error paths."""

from __future__ import annotations

import copy
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
from .versions import ServerProfile
from .wire import HEARTBEAT, UNDEFINED, error_body, js_json, send_reply, sse_event, sse_head

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


def _rewrite(message: str, profile: ServerProfile) -> str:
    if "401 Incorrect API key provided" in message:
        return profile.key_error_rewrite
    return message


def error_reply(request: RecordedRequest, status: int, message: str, profile: ServerProfile | None = None) -> Reply:
    """The error middleware's JSON reply."""
    profile = profile or ServerProfile("3.1.4")
    content = js_json(error_body(status, _rewrite(message, profile)))
    yield from send_reply(
        status, content, _JSON_TYPE, keep_alive=_keep_alive(request), frame_headers=profile.frame_headers
    )


def _failure_reply(
    request: RecordedRequest, body: dict[str, Any], status: int, message: str, profile: ServerProfile
) -> Reply:
    """An error thrown before SSE started: JSON, or nothing at all if streaming was asked for."""
    if hangs_on_error(body):
        yield HANG
    else:
        yield from error_reply(request, status, message, profile)


def predict(state: ServerState, request: RecordedRequest, body: dict[str, Any], flow_id: str) -> Reply:
    """Answer one prediction request."""
    profile = state.profile
    if not flow_id:
        message = "Error: predictionsController.createPrediction - id not provided!"
        return _failure_reply(request, body, 412, message, profile)
    with state.lock:
        flow = state.flows.get(flow_id)
    if flow is not None:
        canned = state.take_http_error(flow_id)
        if canned is not None:
            status, headers, content = canned
            return iter(send_reply(status, content, "text/html; charset=utf-8", extra=headers.items(),
                                   frame_headers=profile.frame_headers))  # fmt: skip
    if not profile.not_found_is_404 and (flow is None or not _UUID.match(flow_id)):
        message = f"Error: chatflowsService.getChatflowById - Chatflow {flow_id} not found in the database!"
        return _failure_reply(request, body, 500, message, profile)
    if not _UUID.match(flow_id):
        return _failure_reply(request, body, 400, "Invalid Chatflow ID", profile)
    if flow is None:
        return _failure_reply(request, body, 404, f"Chatflow {flow_id} not found in the database!", profile)
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
    past_rows: list[dict[str, Any]] = []
    if flow.kind == "agentflow":
        _check_history(body)
        past_rows = state.session_rows(flow_id, session_id)
    elif flow.kind == "multiagent":
        flow = _answering_script(flow, body)
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
        history=[],
        past_rows=past_rows,
        executions=state.executions,
        profile=state.profile,
    )


def _check_history(body: dict[str, Any]) -> None:
    """Agentflow v2 refuses a ``history`` whose items are not ``{role: apiMessage|userMessage, content}``."""
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


def _answering_script(flow: FakeFlow, body: dict[str, Any]) -> FakeFlow:
    """A multi-agent interrupt answered: the request sends the ``action`` back, its question a decision label."""
    action = body.get("action")
    if not flow.on_action or not isinstance(action, dict):
        return flow
    mapping = action.get("mapping")
    mapping = mapping if isinstance(mapping, dict) else {}
    for decision, script in flow.on_action.items():
        if body.get("question") == mapping.get(decision):
            answering = copy.copy(script)
            answering.kind = flow.kind
            return answering
    return flow


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
    if is_agentflow and isinstance(turn.body.get("humanInput"), dict):
        state.clear_last_action(turn.chat_id, turn.session_id)
    user = chat_message_row(
        role="userMessage",
        content=(turn.user_content or " ") if is_agentflow else question,
        created_date=user_date,
        fileUploads=turn.body.get("uploads"),
        leadEmail=turn.body.get("leadEmail"),
        **common,
    )
    columns = _SCRIPTS[flow.kind].api_columns(turn)
    api = chat_message_row(role="apiMessage", content=turn.text, message_id=turn.chat_message_id, **common, **columns)
    state.store_messages(user, api)


def _metadata(result: dict[str, Any], profile: ServerProfile) -> dict[str, Any]:
    """``streamMetadataEvent``: the reply's ids and extras, each only when truthy (``action``: 3.1.2+)."""
    meta: dict[str, Any] = {}
    keys = ["chatId", "chatMessageId", "question", "sessionId", "memoryType", "followUpPrompts", "flowVariables"]
    if profile.action_in_metadata:
        keys.append("action")
    for key in keys:
        value = result.get(key, UNDEFINED)
        if is_truthy(value):
            meta[key] = json.loads(value) if key == "followUpPrompts" else value
    return meta


def _sse_reply(
    state: ServerState, request: RecordedRequest, body: dict[str, Any], flow_id: str, flow: FakeFlow
) -> Reply:
    """200 + headers at once, then the flow's events, ``metadata`` (or ``error``), and always ``end``."""
    profile = state.profile
    colon = profile.colon_on_every_event
    yield sse_head(profile.frame_headers)
    turn: Turn | None = None
    try:
        user_date = js_now_iso()
        turn = _prepare(state, request, body, flow_id, flow)
        state.start_run(flow_id, turn.chat_id, turn.run)
        script = _SCRIPTS[turn.flow.kind]
        for step in script.events(turn):
            if isinstance(step, Event):
                if not turn.flow.lose_tokens:
                    yield Chunk(sse_event(step.name, step.data, step.duration, colon=colon))
            elif isinstance(step, Chunk) and step.data == HEARTBEAT and not profile.heartbeats:
                continue  # before 3.1.2 nothing keeps a silent stream alive
            else:
                yield step
        _store(state, turn, user_date)
        yield Chunk(sse_event("metadata", _metadata(script.result(turn), profile)))
    except FlowFailure as exc:
        yield Chunk(sse_event("error", _rewrite(_PREFIX + exc.message, profile), colon=colon))
    finally:
        if turn is not None:
            state.end_run(flow_id, turn.chat_id, turn.run)
    yield Chunk(sse_event("end", "[DONE]", colon=colon))


def _json_reply(
    state: ServerState, request: RecordedRequest, body: dict[str, Any], flow_id: str, flow: FakeFlow
) -> Reply:
    """Run the flow silently (its latency and connection cuts still apply), then one JSON body."""
    profile = state.profile
    turn: Turn | None = None
    try:
        user_date = js_now_iso()
        turn = _prepare(state, request, body, flow_id, flow)
        state.start_run(flow_id, turn.chat_id, turn.run)
        script = _SCRIPTS[turn.flow.kind]
        yield from _timing_only(script.events(turn))
        _store(state, turn, user_date)
        content = js_json(script.result(turn))
    except FlowFailure as exc:
        yield from _failure_reply(request, body, 500, _PREFIX + exc.message, profile)
        return
    finally:
        if turn is not None:
            state.end_run(flow_id, turn.chat_id, turn.run)
    yield from send_reply(
        200, content, _JSON_TYPE, keep_alive=_keep_alive(request), frame_headers=profile.frame_headers
    )


def _timing_only(steps: Iterator[Any]) -> Iterator[Sleep | Drop]:
    for step in steps:
        if isinstance(step, (Sleep, Drop)):
            yield step
