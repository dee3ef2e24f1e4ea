#!/usr/bin/env python3
"""Re-record raw prediction captures from a real Flowise into ``tests/fixtures/real_captures/``.

Usage::

    python tests/e2e/refresh_captures.py            # uses the `harness.py start` server, else starts one
    python tests/e2e/refresh_captures.py --out DIR

Each ``NAME.txt`` is the raw response: status line, headers, blank line, then the body bytes exactly as
received (de-chunked); ``NAME.request.json`` is the request body sent. ``manifest.json`` lists every
capture with its flow, status, duration and size. Stdlib only.
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
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from flows import CANNED_ANSWER, FLOW_NAMES, PROTECTED_FLOWS, SAMPLE_QUESTIONS  # noqa: E402
from harness import FLOWISE_VERSION, RealFlowiseState, load_cli_state, start_real_flowise  # noqa: E402

DEFAULT_OUT = HERE.parent / "fixtures" / "real_captures"
UNKNOWN_FLOW_ID = "00000000-0000-0000-0000-000000000000"


@dataclasses.dataclass(frozen=True)
class Case:
    """One request to record."""

    name: str
    flow: str | None  # None: the unknown chatflow id
    body: dict[str, Any] | None  # None: GET /api/v1/chatflows-streaming/<id>
    with_key: bool = False
    timeout: float = 60.0
    note: str = ""
    abort_after: bytes | None = None  # PUT /api/v1/chatmessage/abort/... once these bytes arrived


def cases() -> list[Case]:
    session = f"capture-session-{uuid.uuid4().hex[:8]}"
    out: list[Case] = []
    for flow in FLOW_NAMES:
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
        Case(
            "agentflow_v2_llm_aborted_stream",
            "agentflow_v2_llm",
            {"question": "SLOW_STREAM please", "streaming": True, "chatId": str(uuid.uuid4())},
            abort_after=b'"data":"slow0"',
            note="slow LLM stream aborted with PUT /api/v1/chatmessage/abort/{id}/{chatId} after the first token",
        ),
        Case("chatflows_streaming_llm_chain", "llm_chain", None),
        Case("chatflows_streaming_llm_chain_model_streaming_off", "llm_chain_model_streaming_off", None),
    ]
    return out


def abort(state: RealFlowiseState, flow_id: str, chat_id: str) -> None:
    url = f"{state.base_url}/api/v1/chatmessage/abort/{flow_id}/{chat_id}"
    with urllib.request.urlopen(urllib.request.Request(url, method="PUT"), timeout=10) as resp:
        resp.read()


def record(state: RealFlowiseState, case: Case) -> tuple[bytes, bytes | None, dict[str, Any]]:
    """Perform ``case``; return (raw response bytes, request body bytes, manifest entry)."""
    flow_id = state.flows[case.flow] if case.flow else UNKNOWN_FLOW_ID
    url = urllib.parse.urlsplit(state.base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=case.timeout)
    headers = {"Authorization": f"Bearer {state.api_key}"} if case.with_key else {}
    body = None
    if case.body is None:
        method, path = "GET", f"/api/v1/chatflows-streaming/{flow_id}"
    else:
        method, path = "POST", f"/api/v1/prediction/{flow_id}"
        body = json.dumps(case.body).encode()
        headers["Content-Type"] = "application/json"
    started = time.monotonic()
    raw, status = b"", None
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        status = resp.status
        head = f"HTTP/{resp.version // 10}.{resp.version % 10} {resp.status} {resp.reason}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in resp.getheaders()) + "\r\n"
        raw = head.encode()
        while chunk := resp.read1(65536):
            raw += chunk
            if case.abort_after and case.abort_after in raw and case.body:
                abort(state, flow_id, str(case.body["chatId"]))
                case = dataclasses.replace(case, abort_after=None)
    except TimeoutError:
        pass  # recorded as an empty capture
    finally:
        conn.close()
    entry = {
        "flow": case.flow,
        "method": method,
        "path": path.replace(flow_id, "{id}"),
        "status": status,
        "with_key": case.with_key,
        "seconds": round(time.monotonic() - started, 2),
        "bytes": len(raw),
        **({"note": case.note} if case.note else {}),
    }
    return raw, body, entry


README = """# Real Flowise {version} captures (generated)

Recorded by `tests/e2e/refresh_captures.py` from a real Flowise {version} started by `tests/e2e/harness.py`,
whose LLM and embeddings are `tests/e2e/fake_llm.py` (canned answer "{answer}";
tool agents answer "The tool said: 4."). Do not edit by hand: re-run the script.

* `NAME.txt`: raw response: status line, headers, blank line, body bytes as received (de-chunked).
* `NAME.request.json`: the request body sent (`POST /api/v1/prediction/{{id}}`).
* `manifest.json`: per capture: flow, method, path, status, whether the API key was sent, seconds, bytes.

Flows are described in `tests/e2e/flows.py`. Ids, chatIds, dates and `created` stamps differ on every run.
"""


def refresh(state: RealFlowiseState, out: Path) -> dict[str, Any]:
    """Record every case into ``out``, replacing the previous captures."""
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("*.txt"), *out.glob("*.request.json"), out / "manifest.json"]:
        old.unlink(missing_ok=True)
    manifest: dict[str, Any] = {
        "flowise_version": FLOWISE_VERSION,
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "captures": {},
    }
    for case in cases():
        raw, body, entry = record(state, case)
        (out / f"{case.name}.txt").write_bytes(raw)
        if body is not None:
            (out / f"{case.name}.request.json").write_bytes(body)
        manifest["captures"][case.name] = entry
        print(
            f"{case.name:55} {entry['status']!s:>4} {entry['bytes']:>7} B {entry['seconds']:>6.2f} s", file=sys.stderr
        )
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (out / "README.md").write_text(README.format(version=FLOWISE_VERSION, answer=CANNED_ANSWER))
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output dir (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    state = load_cli_state()
    if state is not None and state.alive():
        print(f"recording from the running server {state.base_url}", file=sys.stderr)
        refresh(state, args.out)
        return 0
    print("no running `harness.py start` server: starting a temporary one", file=sys.stderr)
    with start_real_flowise() as temporary:
        refresh(temporary, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
