#!/usr/bin/env python3
"""Re-record raw captures from a real Flowise into ``tests/fixtures/real_captures[_<version>]/``.

Usage::

    python tests/e2e/refresh_captures.py                         # 3.1.4, every group
    python tests/e2e/refresh_captures.py --target 2.2.8          # into tests/fixtures/real_captures_2.2.8/
    python tests/e2e/refresh_captures.py --group agents          # only the agent captures (the rest is kept)
    python tests/e2e/refresh_captures.py --out DIR

The server is the one ``harness.py start --target T`` left running, else ``FLOWISE_E2E_BASE_URL`` (see
``harness.external_state_from_env``), else a temporary one. Groups: ``core`` (one prediction per flow of
``flows.py``, errors, abort, ``chatflows-streaming``) and ``agents`` (the flows of ``flows_agents.py``: stop and
resume sequences, branches, loops, forms, multi-agent, and the admin endpoints around them).

Files per capture ``NAME``:

* ``NAME.txt``: the raw response: status line, headers, blank line, then the body bytes exactly as received
  (de-chunked); empty when the server never answered;
* ``NAME.request.json``: the request body sent (POST only);
* ``NAME.llm.json`` (predictions of a flow with a fake-LLM log): every model call Flowise made while answering,
  ``{"calls": [{"request", "reply": {"text", "tool", "usage", "stream"}}], "usage": <sums>}``.

``manifest.json`` lists every capture (group, flow, method, path template, status, key sent, seconds, bytes,
model calls and their usage, note) and, per group, the recording run's ids (``runs``: flow ids, credential and
API key ids, the fake LLM's URL) so a reader can normalise them. The API key itself is never written: should it appear in a body it
is replaced by ``<redacted-api-key>``. Stdlib only.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import flows_agents as fa  # noqa: E402
from flows import CANNED_ANSWER, PROTECTED_FLOWS, SAMPLE_QUESTIONS, flow_names_for, major_of  # noqa: E402
from harness import (  # noqa: E402
    FLOWISE_VERSION,
    RealFlowiseState,
    external_state_from_env,
    load_cli_state,
    start_real_flowise,
)

FIXTURES = HERE.parent / "fixtures"
UNKNOWN_FLOW_ID = "00000000-0000-0000-0000-000000000000"
GROUPS = ("core", "agents")
REDACTED_KEY = b"<redacted-api-key>"
PREDICTION = "/api/v1/prediction/{id}"


def default_out(version: str) -> Path:
    """``real_captures`` for the default version, ``real_captures_<version>`` for the others."""
    return FIXTURES / ("real_captures" if version == FLOWISE_VERSION else f"real_captures_{version}")


@dataclasses.dataclass(frozen=True)
class Recorded:
    """One recorded exchange, as later cases see it."""

    status: int | None
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> list[dict[str, Any]]:
        """The SSE payloads of a streamed reply (comments dropped)."""
        out = []
        for block in self.body.decode().split("\n\n"):
            data = [line[5:] for line in block.split("\n") if line.startswith("data:")]
            if data:
                out.append(json.loads("\n".join(data)))
        return out

    def action(self) -> dict[str, Any]:
        """The ``action`` of a stopped run, from the JSON reply or the stream's ``action`` event."""
        if self.body.lstrip().startswith(b"{"):
            found: dict[str, Any] = self.json()["action"]
            return found
        return next(e["data"] for e in self.events() if e.get("event") == "action")


Context = Mapping[str, Recorded]
Body = dict[str, Any] | Callable[[Context], dict[str, Any]] | None


@dataclasses.dataclass(frozen=True)
class Case:
    """One request to record.

    ``path`` is a template: ``{id}`` is the flow's id, other fields come from ``fill(context)``; without a path a
    case with a body is a prediction and one without is ``GET /api/v1/chatflows-streaming/{id}``. ``body`` may be
    computed from the captures recorded before it (``context``: name -> :class:`Recorded`).
    """

    name: str
    flow: str | None  # None: the unknown chatflow id
    body: Body
    with_key: bool = False
    timeout: float = 60.0
    note: str = ""
    abort_after: bytes | None = None  # PUT /api/v1/chatmessage/abort/... once these bytes arrived
    group: str = "core"
    method: str | None = None
    path: str | None = None
    fill: Callable[[Context], dict[str, str]] | None = None

    @property
    def http_method(self) -> str:
        return self.method or ("GET" if self.body is None else "POST")

    @property
    def path_template(self) -> str:
        return self.path or (PREDICTION if self.body is not None else "/api/v1/chatflows-streaming/{id}")


def core_cases(version: str) -> list[Case]:
    """One prediction per flow of ``flows.py`` (JSON and streamed), errors, abort, streamability."""
    session = f"capture-session-{uuid.uuid4().hex[:8]}"
    names = flow_names_for(version)
    out: list[Case] = []
    for flow in names:
        q = SAMPLE_QUESTIONS.get(flow, "hi")
        extra: dict[str, Any] = {"overrideConfig": {"sessionId": session}} if flow == "conversation_chain" else {}
        key = flow in PROTECTED_FLOWS
        out.append(Case(f"{flow}_nonstream", flow, {"question": q, **extra}, with_key=key))
        out.append(
            Case(
                f"{flow}_stream",
                flow,
                {"question": "and again?" if extra else q, "streaming": True, **extra},
                with_key=key,
            )
        )
    out += [
        Case(
            "llm_chain_error_nonstream", "llm_chain", {"question": "please TRIGGER_ERROR"}, note="LLM answers HTTP 400"
        ),
        Case(
            "llm_chain_error_stream",
            "llm_chain",
            {"question": "please TRIGGER_ERROR", "streaming": True},
            note="LLM answers HTTP 400",
        ),
        Case("protected_no_key_nonstream", "llm_chain_protected", {"question": "hi"}, note="no Authorization"),
        Case(
            "protected_no_key_stream",
            "llm_chain_protected",
            {"question": "hi", "streaming": True},
            note="no Authorization",
        ),
        Case("unknown_chatflow_nonstream", None, {"question": "hi"}),
        Case(
            "unknown_chatflow_stream",
            None,
            {"question": "hi", "streaming": True},
            timeout=5.0,
            note="Flowise never answers: the file stays empty (client timeout 5 s)",
        ),
        Case("missing_question", "llm_chain", {}),
        Case("chatflows_streaming_llm_chain", "llm_chain", None),
        Case("chatflows_streaming_llm_chain_model_streaming_off", "llm_chain_model_streaming_off", None),
    ]
    if "agentflow_v2_llm" in names:
        out.append(
            Case(
                "agentflow_v2_llm_aborted_stream",
                "agentflow_v2_llm",
                {"question": "SLOW_STREAM please", "streaming": True, "chatId": str(uuid.uuid4())},
                abort_after=b'"data":"slow0"',
                note="slow LLM stream aborted with PUT /api/v1/chatmessage/abort/{id}/{chatId} after the first token",
            )
        )
    return out


def _mode(stream: bool) -> str:
    return "stream" if stream else "nonstream"


def _streaming(stream: bool) -> dict[str, Any]:
    return {"streaming": True} if stream else {}


def _conversation(by: str, stream: bool, tag: str) -> dict[str, Any]:
    """The ids of one stop-and-resume conversation: a ``chatId``, or only ``overrideConfig.sessionId``."""
    ident = f"{tag}-{by}-{_mode(stream)}-{uuid.uuid4().hex[:8]}"
    return {"chatId": ident} if by == "chat" else {"overrideConfig": {"sessionId": ident}}


def human_input_cases() -> list[Case]:
    """Human Input: stop, then resume proceed / reject; by chat id and by session id; streamed and not."""
    out: list[Case] = []
    question = fa.SAMPLE_INPUTS[fa.HUMAN_INPUT]["question"]
    for by in ("chat", "session"):
        for stream in (False, True):
            for decision in ("proceed", "reject"):
                ids = _conversation(by, stream, f"hi-{decision}")
                stem = f"{fa.HUMAN_INPUT}_{by}_{_mode(stream)}"
                stop = f"{stem}_stop_then_{decision}"
                feedback = "Looks good" if decision == "proceed" else "Not this one"
                human_input = {"type": decision, "startNodeId": "humanInputAgentflow_0", "feedback": feedback}
                out += [
                    Case(stop, fa.HUMAN_INPUT, {"question": question, **ids, **_streaming(stream)}, group="agents"),
                    Case(
                        f"{stem}_resume_{decision}",
                        fa.HUMAN_INPUT,
                        {"question": feedback, **ids, "humanInput": human_input, **_streaming(stream)},
                        group="agents",
                        note=f"resumes {stop}",
                    ),
                ]
    ids = _conversation("session", False, "hi-bare")
    out += [
        Case(
            f"{fa.HUMAN_INPUT}_bare_resume_stop",
            fa.HUMAN_INPUT,
            {"question": question, **ids},
            group="agents",
        ),
        Case(
            f"{fa.HUMAN_INPUT}_bare_resume_proceed",
            fa.HUMAN_INPUT,
            {**ids, "humanInput": {"type": "proceed"}},
            group="agents",
            note="no question, no startNodeId, no feedback: Flowise resumes the last STOPPED node",
        ),
        Case(
            f"{fa.HUMAN_INPUT}_resume_finished_nonstream",
            fa.HUMAN_INPUT,
            {**ids, "question": "again", "humanInput": {"type": "proceed"}},
            group="agents",
            note="the session's latest execution is FINISHED: it cannot be resumed",
        ),
        Case(
            f"{fa.HUMAN_INPUT}_resume_finished_stream",
            fa.HUMAN_INPUT,
            {**ids, "question": "again", "humanInput": {"type": "proceed"}, "streaming": True},
            group="agents",
            note="the session's latest execution is FINISHED: it cannot be resumed",
        ),
        Case(
            f"{fa.HUMAN_INPUT}_resume_unknown_session_nonstream",
            fa.HUMAN_INPUT,
            {"question": "Proceed", "chatId": f"never-{uuid.uuid4().hex[:8]}", "humanInput": {"type": "proceed"}},
            group="agents",
            note="no execution in this session",
        ),
    ]
    return out


def _get(name: str, flow: str, path: str, fill: Callable[[Context], dict[str, str]] | None = None) -> Case:
    """A keyed ``GET`` of an admin endpoint (agents group)."""
    return Case(name, flow, None, with_key=True, group="agents", method="GET", path=path, fill=fill)


def execution_cases() -> list[Case]:
    """The Execution record of a stop (by id from the JSON reply, and listed by session) and the chat rows."""
    ids = _conversation("chat", False, "hi-exec")
    chat = ids["chatId"]
    question = fa.SAMPLE_INPUTS[fa.HUMAN_INPUT]["question"]
    stop, resume = f"{fa.HUMAN_INPUT}_exec_stop", f"{fa.HUMAN_INPUT}_exec_resume_proceed"

    def execution(ctx: Context) -> dict[str, str]:
        return {"executionId": str(ctx[stop].json()["executionId"])}

    def session(ctx: Context) -> dict[str, str]:
        return {"chatId": chat}

    by_id, listed = "/api/v1/executions/{executionId}", "/api/v1/executions?agentflowId={id}&sessionId={chatId}"
    rows = "/api/v1/chatmessage/{id}?chatId={chatId}"
    flow = fa.HUMAN_INPUT
    resume_body = {
        "question": "Proceed",
        **ids,
        "humanInput": {"type": "proceed", "startNodeId": "humanInputAgentflow_0"},
    }
    return [
        Case(stop, flow, {"question": question, **ids}, group="agents"),
        _get(f"executions_{flow}_stopped", flow, by_id, execution),
        _get(f"executions_list_{flow}_stopped", flow, listed, session),
        _get(f"chatmessage_{flow}_stopped", flow, rows, session),
        Case(resume, flow, resume_body, group="agents"),
        _get(f"executions_{flow}_resumed", flow, by_id, execution),
        _get(f"chatmessage_{flow}_resumed", flow, rows, session),
    ]


def tool_approval_cases() -> list[Case]:
    """An Agent whose tool needs approval: stop, then proceed / reject; streamed and not."""
    out: list[Case] = []
    question = fa.SAMPLE_INPUTS[fa.TOOL_APPROVAL]["question"]
    for stream in (False, True):
        for decision in ("proceed", "reject"):
            ids = _conversation("chat", stream, f"ta-{decision}")
            stem = f"{fa.TOOL_APPROVAL}_{_mode(stream)}"
            stop = f"{stem}_stop_then_{decision}"
            human_input = {"type": decision, "startNodeId": "agentAgentflow_0"}
            out += [
                Case(stop, fa.TOOL_APPROVAL, {"question": question, **ids, **_streaming(stream)}, group="agents"),
                Case(
                    f"{stem}_resume_{decision}",
                    fa.TOOL_APPROVAL,
                    {
                        "question": "Proceed" if decision == "proceed" else "Reject",
                        **ids,
                        "humanInput": human_input,
                        **_streaming(stream),
                    },
                    group="agents",
                    note=f"resumes {stop}",
                ),
            ]
    return out


def one_shot_cases() -> list[Case]:
    """Condition (both branches), Iteration, Loop, form Start: one prediction each, JSON and streamed."""
    out: list[Case] = []
    requests = {
        f"{fa.CONDITION}_true": (fa.CONDITION, fa.SAMPLE_INPUTS[fa.CONDITION]),
        f"{fa.CONDITION}_else": (fa.CONDITION, {"question": "Tell me a joke."}),
        fa.ITERATION: (fa.ITERATION, fa.SAMPLE_INPUTS[fa.ITERATION]),
        fa.LOOP: (fa.LOOP, fa.SAMPLE_INPUTS[fa.LOOP]),
        fa.FORM: (fa.FORM, fa.SAMPLE_INPUTS[fa.FORM]),
    }
    for name, (flow, body) in requests.items():
        for stream in (False, True):
            out.append(Case(f"{name}_{_mode(stream)}", flow, {**body, **_streaming(stream)}, group="agents"))
    out.append(
        Case(
            f"{fa.FORM}_with_question_nonstream",
            fa.FORM,
            {"question": "hi", **fa.SAMPLE_INPUTS[fa.FORM]},
            group="agents",
            note="question and form together are refused",
        )
    )
    return out


def multiagent_cases() -> list[Case]:
    """Supervisor/Worker and Sequential Agents (JSON and streamed); the sequential interrupt, approved and not."""
    out: list[Case] = []
    for flow in (fa.SUPERVISOR, fa.SEQUENTIAL):
        for stream in (False, True):
            body = {**fa.SAMPLE_INPUTS[flow], **_streaming(stream)}
            out.append(Case(f"{flow}_{_mode(stream)}", flow, body, group="agents"))
    question = fa.SAMPLE_INPUTS[fa.SEQUENTIAL_APPROVAL]["question"]
    for stream in (False, True):
        for decision in ("approve", "reject"):
            chat = f"seq-{decision}-{_mode(stream)}-{uuid.uuid4().hex[:8]}"
            stop = f"{fa.SEQUENTIAL_APPROVAL}_{_mode(stream)}_stop_then_{decision}"

            def answer(ctx: Context, stop: str = stop, chat: str = chat, decision: str = decision) -> dict[str, Any]:
                action = ctx[stop].action()
                return {"question": action["mapping"][decision], "chatId": chat, "action": action}

            def streamed(body: Callable[[Context], dict[str, Any]], on: bool = stream) -> Body:
                return (lambda ctx: {**body(ctx), "streaming": True}) if on else body

            out += [
                Case(stop, fa.SEQUENTIAL_APPROVAL, {"question": question, "chatId": chat, **_streaming(stream)}, group="agents"),
                Case(f"{fa.SEQUENTIAL_APPROVAL}_{_mode(stream)}_resume_{decision}", fa.SEQUENTIAL_APPROVAL, streamed(answer), group="agents", note=f"answers {stop}: the action back, question = its {decision} label"),
            ]  # fmt: skip
    return out


def admin_cases(version: str, flows: tuple[str, ...]) -> list[Case]:
    """What the discovery endpoints say about the agent flows (key needed except for the public ones)."""
    out: list[Case] = []
    for flow in flows:
        out += [
            Case(f"chatflows_streaming_{flow}", flow, None, group="agents"),
            Case(f"chatflows_uploads_{flow}", flow, None, group="agents", path="/api/v1/chatflows-uploads/{id}"),
        ]
    for flow in (fa.FORM, fa.HUMAN_INPUT, fa.TOOL_APPROVAL, fa.SUPERVISOR, fa.SEQUENTIAL_APPROVAL):
        if flow in flows:
            out.append(_get(f"chatflows_get_{flow}", flow, "/api/v1/chatflows/{id}"))
    listing = (
        "/api/v1/chatflows?type=MULTIAGENT"
        if major_of(version) < 3
        else "/api/v1/chatflows?type=AGENTFLOW&page=1&limit=1"
    )
    out.append(dataclasses.replace(_get("chatflows_list", fa.SUPERVISOR, listing), note="2.x: no paging, no AGENTFLOW"))
    return out  # fmt: skip


def agent_cases(version: str) -> list[Case]:
    """Every agent capture Flowise ``version`` can make (agentflow v2 ones from 3.0 on)."""
    flows = tuple(s for s in fa.AGENT_FLOW_NAMES if s in fa.MULTIAGENT_FLOWS or major_of(version) >= 3)
    out: list[Case] = []
    if major_of(version) >= 3:
        out += human_input_cases() + execution_cases() + tool_approval_cases() + one_shot_cases()
    return out + multiagent_cases() + admin_cases(version, flows)


def cases(version: str = FLOWISE_VERSION, groups: tuple[str, ...] = GROUPS) -> list[Case]:
    out = core_cases(version) if "core" in groups else []
    return out + (agent_cases(version) if "agents" in groups else [])


def abort(state: RealFlowiseState, flow_id: str, chat_id: str) -> None:
    url = f"{state.base_url}/api/v1/chatmessage/abort/{flow_id}/{chat_id}"
    request = urllib.request.Request(url, method="PUT", headers={"Authorization": f"Bearer {state.api_key}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        resp.read()


def _redact(raw: bytes, secret: str) -> bytes:
    """``raw`` with the API key replaced (and Content-Length fixed) should it ever appear in a response."""
    if not secret or secret.encode() not in raw:
        return raw
    head, sep, body = raw.partition(b"\r\n\r\n")
    body = body.replace(secret.encode(), REDACTED_KEY)
    lines = [
        f"Content-Length: {len(body)}".encode() if line.lower().startswith(b"content-length:") else line
        for line in head.split(b"\r\n")
    ]
    return b"\r\n".join(lines).replace(secret.encode(), REDACTED_KEY) + sep + body


def _model_calls(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pair each chat-completion request of the fake LLM's log with the reply it logged."""
    calls: list[dict[str, Any]] = []
    for entry in entries:
        if str(entry.get("path", "")).endswith("/chat/completions") and "body" in entry:
            calls.append({"request": entry["body"], "reply": None})
        elif entry.get("event") == "chat_reply" and calls and calls[-1]["reply"] is None:
            calls[-1]["reply"] = {k: entry.get(k) for k in ("text", "tool", "usage", "stream")}
    return calls


def _usage_sum(calls: list[dict[str, Any]]) -> dict[str, int]:
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    return {k: sum(int(((c["reply"] or {}).get("usage") or {}).get(k, 0)) for c in calls) for k in keys}


def record(state: RealFlowiseState, case: Case, context: Context) -> tuple[bytes, bytes | None, dict[str, Any]]:
    """Perform ``case``; return (raw response bytes, request body bytes, manifest entry)."""
    flow_id = state.flows[case.flow] if case.flow else UNKNOWN_FLOW_ID
    fields = case.fill(context) if case.fill else {}
    path = case.path_template.format(id=flow_id, **fields)
    url = urllib.parse.urlsplit(state.base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=case.timeout)
    headers = {"Authorization": f"Bearer {state.api_key}"} if case.with_key else {}
    payload = case.body(context) if callable(case.body) else case.body
    body = None if payload is None else json.dumps(payload).encode()
    if body is not None:
        headers["Content-Type"] = "application/json"
    started = time.monotonic()
    raw, status = b"", None
    abort_after = case.abort_after
    try:
        conn.request(case.http_method, path, body=body, headers=headers)
        resp = conn.getresponse()
        status = resp.status
        head = f"HTTP/{resp.version // 10}.{resp.version % 10} {resp.status} {resp.reason}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in resp.getheaders()) + "\r\n"
        raw = head.encode()
        while chunk := resp.read1(65536):
            raw += chunk
            if abort_after and abort_after in raw and payload:
                abort(state, flow_id, str(payload["chatId"]))
                abort_after = None
    except TimeoutError:
        pass  # recorded as an empty capture
    finally:
        conn.close()
    entry: dict[str, Any] = {
        "group": case.group,
        "flow": case.flow,
        "method": case.http_method,
        "path": case.path_template,
        "status": status,
        "with_key": case.with_key,
        "seconds": round(time.monotonic() - started, 2),
        "bytes": len(raw),
        **({"note": case.note} if case.note else {}),
    }
    return _redact(raw, state.api_key), body, entry


README = """# Real Flowise {version} captures (generated)

Recorded by `tests/e2e/refresh_captures.py` from a real Flowise {version} started by `tests/e2e/harness.py`,
whose LLM and embeddings are `tests/e2e/fake_llm.py` (canned answer "{answer}";
tool agents answer "The tool said: 4."; the agent flows' nodes are scripted by their system messages, see
`tests/e2e/flows_agents.py`). Do not edit by hand: re-run the script.

* `NAME.txt`: raw response: status line, headers, blank line, body bytes as received (de-chunked).
* `NAME.request.json`: the request body sent (POST).
* `NAME.llm.json`: the model calls Flowise made for that request (request bodies, replies, usage) as the fake
  LLM logged them: the ground truth for usage.
* `manifest.json`: per capture: group (`core`, `agents`), flow, method, path template, status, whether the API
  key was sent, seconds, bytes, model calls and their summed usage; `runs`: per group, the ids of the run
  that recorded it (flow ids, credential, API key id, fake LLM URL).

Flows are described in `tests/e2e/flows.py` and `tests/e2e/flows_agents.py`. Ids, chatIds, dates and `created`
stamps differ on every run. Stop-and-resume captures come in order: `..._stop_then_<decision>` then
`..._resume_<decision>` (the same chatId or sessionId).
"""


def _old_files(out: Path, names: list[str]) -> list[Path]:
    return [out / f"{n}{suffix}" for n in names for suffix in (".txt", ".request.json", ".llm.json")]


def refresh(
    state: RealFlowiseState, out: Path, *, groups: tuple[str, ...] = GROUPS, version: str | None = None
) -> dict[str, Any]:
    """Record every case of ``groups`` into ``out``, replacing that group's previous captures (others kept)."""
    version = version or state.version
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    try:
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = {"captures": {}}
    stale = [n for n, e in manifest["captures"].items() if e.get("group", "core") in groups]
    for old in _old_files(out, stale):
        old.unlink(missing_ok=True)
    kept = {n: e for n, e in manifest["captures"].items() if n not in stale}
    recorded_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    run = {
        "recorded_at": recorded_at,
        "flow_ids": dict(state.flows),
        "credential_id": state.credential_id,
        "api_key_id": state.api_key_id,
        "fake_llm_url": state.fake_llm_url,
    }
    manifest = {
        "flowise_version": version,
        "recorded_at": recorded_at,
        "runs": {**manifest.get("runs", {}), **dict.fromkeys(groups, run)},
        "captures": kept,
    }
    context: dict[str, Recorded] = {}
    for case in cases(version, groups):
        log_start = len(state.fake_llm_requests())
        raw, body, entry = record(state, case, context)
        context[case.name] = Recorded(entry["status"], raw.partition(b"\r\n\r\n")[2])
        (out / f"{case.name}.txt").write_bytes(raw)
        if body is not None:
            (out / f"{case.name}.request.json").write_bytes(body)
        if body is not None and state.fake_llm_log and case.path_template == PREDICTION:
            calls = _model_calls(state.fake_llm_requests()[log_start:])
            usage = _usage_sum(calls)
            entry.update(llm_calls=len(calls), llm_usage=usage)
            llm = {"calls": calls, "usage": usage}
            (out / f"{case.name}.llm.json").write_text(json.dumps(llm, indent=1) + "\n")
        manifest["captures"][case.name] = entry
        print(
            f"{case.name:60} {entry['status']!s:>4} {entry['bytes']:>7} B {entry['seconds']:>6.2f} s"
            f" {entry.get('llm_calls', '-')!s:>3} calls",
            file=sys.stderr,
        )
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    (out / "README.md").write_text(README.format(version=version, answer=CANNED_ANSWER))
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="3.1.4", help="harness target (3.1.4, 2.2.8...)")
    parser.add_argument("--out", type=Path, help="output dir (default: tests/fixtures/real_captures[_<version>])")
    parser.add_argument("--group", choices=[*GROUPS, "all"], default="all", help="which captures to re-record")
    args = parser.parse_args(argv)
    groups = GROUPS if args.group == "all" else (args.group,)
    state = external_state_from_env() or load_cli_state(args.target)
    if state is not None and (state.external or state.alive()):
        print(f"recording from the running server {state.base_url} (Flowise {state.version})", file=sys.stderr)
        refresh(state, args.out or default_out(state.version), groups=groups)
        return 0
    print(f"no running `harness.py start --target {args.target}` server: starting one", file=sys.stderr)
    with start_real_flowise(args.target) as temporary:
        refresh(temporary, args.out or default_out(temporary.version), groups=groups)
    return 0


if __name__ == "__main__":
    sys.exit(main())
