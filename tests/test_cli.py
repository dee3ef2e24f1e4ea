"""The `flowise-integrations` command, run as a user runs it (a subprocess), against FakeFlowise.

Every failure mode is one line on stderr with its documented exit code; `--json` is JSON Lines everywhere; Ctrl-C
and a closed pipe abort the run on the server through every `--via`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from _raw_server import Conn, RawServer

from flowise_integrations.cli import (
    EXIT_CLOSED_PIPE,
    EXIT_CODES,
    EXIT_FLOWISE,
    EXIT_INTERRUPTED,
    EXIT_MISSING_EXTRA,
    EXIT_NOT_FLOWISE,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from flowise_integrations.testing import FakeFlow, FakeFlowise

DOCS = [{"pageContent": "Paris is the capital of France.", "metadata": {"source": "atlas.md"}}]
TOOLS = [{"tool": "calculator", "toolInput": {"input": "2 + 2"}, "toolOutput": "4"}]
VIAS = ["core", "langchain", "llama-index"]
ENV = {"NO_COLOR": "1", "COLUMNS": "120", "FLOWISE_BASE_URL": "", "FLOWISE_API_KEY": "", "FLOWISE_CHATFLOW_ID": ""}
# run the command with a framework made unimportable, as in an install without that extra
BLOCKING = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, _Block())
from flowise_integrations.cli import main
sys.exit(main(sys.argv[1:]))
"""

Server = tuple[FakeFlowise, str, dict[str, str]]


def command(*args: str, blocked: tuple[str, ...] = ()) -> list[str]:
    if blocked:
        return [sys.executable, "-c", BLOCKING.format(blocked=set(blocked)), *args]
    return [sys.executable, "-m", "flowise_integrations", *args]


def run(
    *args: str, env: dict[str, str] | None = None, blocked: tuple[str, ...] = (), stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args, blocked=blocked),
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
        env={**os.environ, **ENV, **(env or {})},
        check=False,
    )


def json_lines(text: str) -> list[dict[str, object]]:
    """Every line parsed: a line that is not one JSON object fails the test."""
    records = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(r, dict) and len(r) >= 1 for r in records)
    return records


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # never a traceback, never a page of HTML
    return lines[0]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    fake = FakeFlowise()
    flows = {
        "rag": fake.add_flow(FakeFlow(answer="Paris.", source_documents=DOCS)),
        "agent": fake.add_flow(FakeFlow(answer="It is 4.", used_tools=TOOLS)),
        "protected": fake.add_flow(FakeFlow(api_key="right-key")),
        "broken": fake.add_flow(FakeFlow(error="the LLM is down", error_after=1)),
        "memory": fake.add_flow(
            FakeFlow(memory_type="Buffer Memory", respond=lambda body: f"echo: {body['question']}")
        ),
        # the first prediction fails with a (not retried) 500, the next ones answer
        "flaky": fake.add_flow(
            FakeFlow(
                respond=lambda body: f"echo: {body['question']}",
                http_errors=[(500, {"content-type": "application/json"}, b'{"message": "flaky failure"}')],
            )
        ),
    }
    flows["deadline"] = fake.add_flow(FakeFlow(tokens=["tick "] * 1000, token_delay=0.02))
    for via in VIAS:  # one slow flow per test that interrupts a run, so their aborts cannot be confused
        for case in ("sigint", "pipe"):
            slow = FakeFlow(kind="agentflow", tokens=["tick "] * 1000, token_delay=0.02)
            flows[f"slow-{case}-{via}"] = fake.add_flow(slow)
    with fake.serve() as base_url:
        yield fake, base_url, flows


def abort_requests(fake: FakeFlowise, flow: str) -> list[str]:
    return [r.path for r in fake.requests if r.method == "PUT" and r.path.startswith("/api/v1/chatmessage/abort/")]


def wait_for_abort(fake: FakeFlowise, flow: str) -> str:
    """The abort path for ``flow`` (``/chatmessage/abort/{flow}/{chatId}``), once the server received it."""
    for _ in range(200):  # bounded by count: the subprocess sent it before exiting, it is only being recorded
        paths = [p for p in abort_requests(fake, flow) if f"/{flow}/" in p]
        if paths:
            return paths[0]
        time.sleep(0.05)
    raise AssertionError(f"no abort of {flow} reached the server: {abort_requests(fake, flow)}")


def posted_chat_ids(fake: FakeFlowise, flow: str) -> set[str]:
    return {
        str(r.json["chatId"])
        for r in fake.requests
        if r.method == "POST" and r.path.endswith(flow) and r.json and "chatId" in r.json
    }


# -- the happy paths --------------------------------------------------------------------------------------


def test_demo_runs_without_a_server() -> None:
    result = run("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "FakeFlowise" in out
    for via in ("[core]", "[langchain]", "[llama-index]"):
        assert out.count(via) == 3
    assert "docs/introduction.md" in out  # sources table
    assert "calculator" in out  # used tools table
    assert "usage: 10 in + 12 out = 22 tokens" in out


def test_demo_json_is_json_lines_through_every_layer() -> None:
    result = run("demo", "--json")
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stdout)
    kinds = [next(iter(r)) for r in records]
    assert set(kinds) == {"demo", "event", "chunk", "result"}
    results = [r["result"] for r in records if "result" in r]
    assert [r["via"] for r in results] == VIAS * 3  # type: ignore[index]
    assert {r["text"] for r in results[:3]} == {results[0]["text"]}  # type: ignore[index]
    chunks = [r["chunk"] for r in records if "chunk" in r]
    assert {c["via"] for c in chunks} == {"langchain", "llama-index"}  # type: ignore[index]


def test_chat_streams_and_prints_sources_and_tools(server: Server) -> None:
    _, base_url, flows = server
    rag = run("chat", "Capital of France?", "--base-url", base_url, "--chatflow", flows["rag"])
    assert rag.returncode == 0, rag.stderr
    assert rag.stdout.startswith("Paris.\n")
    assert "atlas.md" in rag.stdout
    agent = run("chat", "2+2?", "--chatflow", flows["agent"], env={"FLOWISE_BASE_URL": base_url})
    assert "calculator" in agent.stdout
    assert '{"input": "2 + 2"}' in agent.stdout


@pytest.mark.parametrize("via", ["langchain", "llama-index"])
def test_chat_through_a_wing(server: Server, via: str) -> None:
    _, base_url, flows = server
    result = run("chat", "Capital?", "--base-url", base_url, "--chatflow", flows["rag"], "--via", via)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Paris.\n")
    assert "atlas.md" in result.stdout


def test_json_prints_one_event_per_line_then_the_result(server: Server) -> None:
    _, base_url, flows = server
    result = run("chat", "q", "--base-url", base_url, "--chatflow", flows["rag"], "--json")
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stdout)
    events, final = records[:-1], records[-1]
    assert [e["event"] for e in events] == ["start", "token", "sourceDocuments", "metadata", "end"]
    assert events[2]["data"][0]["pageContent"] == "Paris is the capital of France."  # type: ignore[index]
    assert final["result"]["text"] == "Paris."  # type: ignore[index]
    assert final["result"]["source_documents"][0]["metadata"] == {"source": "atlas.md"}  # type: ignore[index]


@pytest.mark.parametrize("via", ["langchain", "llama-index"])
def test_json_through_a_wing_prints_chunks_then_the_result(server: Server, via: str) -> None:
    _, base_url, flows = server
    result = run("chat", "q", "--base-url", base_url, "--chatflow", flows["rag"], "--json", "--via", via)
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stdout)
    assert all("chunk" in r for r in records[:-1])
    assert "".join(str(r["chunk"]["text"]) for r in records[:-1]) == "Paris."  # type: ignore[index]
    assert records[-1]["result"]["via"] == via  # type: ignore[index]
    assert records[-1]["result"]["source_documents"][0]["page_content"] == DOCS[0]["pageContent"]  # type: ignore[index]


def test_interactive_session_keeps_one_session_and_one_chat(server: Server) -> None:
    fake, base_url, flows = server
    proc = run("chat", "--base-url", base_url, "--chatflow", flows["memory"], stdin="first\nsecond\n")
    assert proc.returncode == 0, proc.stderr
    assert "echo: first" in proc.stdout
    assert "echo: second" in proc.stdout
    posts = [r.json for r in fake.requests if r.json and r.path.endswith(flows["memory"])]
    assert len({p["overrideConfig"]["sessionId"] for p in posts}) == 1
    assert len({p["chatId"] for p in posts}) == 1


def test_interactive_chat_reports_a_failed_turn_and_goes_on(server: Server) -> None:
    _, base_url, flows = server
    proc = run("chat", "--base-url", base_url, "--chatflow", flows["flaky"], stdin="first\nsecond\n")
    assert "echo: second" in proc.stdout
    assert "error: InternalServerError: flaky failure" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0  # the status of the last turn


def test_every_subcommand_help_shows_an_example() -> None:
    for sub in ("chat", "flows", "ping", "demo"):
        result = run(sub, "--help")
        assert result.returncode == 0
        assert "examples:" in result.stdout
        assert f"flowise-integrations {sub}" in result.stdout.split("examples:")[1]
    top = run("--help")
    for code in EXIT_CODES:  # the exit codes are documented where a user looks
        assert f"  {code} " in top.stdout


# -- every failure: one line, a documented exit code ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--chatflow", "00000000-0000-4000-8000-000000000000"], EXIT_FLOWISE, "error: NotFoundError: Chatflow"),
        (
            ["--chatflow", "PROTECTED"],
            EXIT_FLOWISE,
            "error: AuthenticationError: Error: predictionsServices.buildChatflow - Unauthorized",
        ),
        (["--chatflow", "PROTECTED", "--api-key", "wrong"], EXIT_FLOWISE, "error: AuthenticationError:"),
        (
            ["--chatflow", "BROKEN"],
            EXIT_FLOWISE,
            "error: FlowExecutionError: Error: predictionsServices.buildChatflow - the LLM is down",
        ),
        (
            ["--chatflow", "RAG", "--base-url", "http://127.0.0.1:9"],
            EXIT_UNREACHABLE,
            "error: FlowiseConnectionError: cannot reach",
        ),
        (["--chatflow", "RAG", "--base-url", "BASE/some/ui/route"], EXIT_NOT_FLOWISE, "error: FlowiseProtocolError:"),
    ],
)
@pytest.mark.parametrize("via", VIAS)
def test_every_server_side_failure_is_one_clear_line(
    server: Server, args: list[str], code: int, message: str, via: str
) -> None:
    _, base_url, flows = server
    names = {"PROTECTED": flows["protected"], "BROKEN": flows["broken"], "RAG": flows["rag"]}
    args = [names.get(a, a).replace("BASE", base_url) for a in args]
    if "--base-url" not in args:
        args += ["--base-url", base_url]
    result = run("chat", "hi", *args, "--timeout", "10", "--via", via)
    assert result.returncode == code, result.stderr
    assert one_error_line(result).startswith(message)


@pytest.mark.parametrize("via", VIAS)
def test_a_missed_deadline_is_one_line_through_every_layer(server: Server, via: str) -> None:
    _, base_url, flows = server
    result = run("chat", "go", "--base-url", base_url, "--chatflow", flows["deadline"], "--deadline", "1", "--via", via)
    assert result.returncode == EXIT_UNREACHABLE, result.stderr
    assert one_error_line(result).startswith("error: FlowiseTimeoutError:")
    assert "tick" in result.stdout  # what arrived before the deadline was shown


def html_page(status: str) -> Callable[[Conn], None]:
    page = b"<!DOCTYPE html><html><head><title>Not Flowise</title></head><body>" + b"<p>an app</p>\n" * 500
    page += b"</body></html>"

    def script(conn: Conn) -> None:
        head = f"HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {len(page)}\r\n"
        conn.send(head.encode() + b"Connection: close\r\n\r\n" + page)

    return script


@pytest.mark.parametrize("status", ["200 OK", "404 Not Found", "500 Internal Server Error", "502 Bad Gateway"])
@pytest.mark.parametrize("sub", ["chat", "ping", "flows"])
def test_a_server_that_answers_html_is_a_one_line_protocol_error(status: str, sub: str) -> None:
    with RawServer(html_page(status)) as url:
        args = ["chat", "hi", "--chatflow", "some-flow"] if sub == "chat" else [sub]
        result = run(*args, "--base-url", url, "--api-key", "k")
    assert result.returncode == EXIT_NOT_FLOWISE, result.stderr
    line = one_error_line(result)
    assert line.startswith("error: FlowiseProtocolError:")
    assert "<p>" not in line
    assert len(line) <= 300


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["chat", "hi"], "--chatflow (or FLOWISE_CHATFLOW_ID) is required"),
        (["chat", "hi", "--chatflow", "f", "--timeout", "0"], "must be a positive number of seconds"),
        (["chat", "hi", "--chatflow", "f", "--timeout", "soon"], "not a number"),
        (["chat", "hi", "--chatflow", "f", "--deadline", "-1"], "must be a positive number of seconds"),
        (["chat", "hi", "--chatflow", "f", "--base-url", "ftp://nope"], "base_url must start with http://"),
        (["ping", "--timeout", "nan"], "must be a positive number of seconds"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2_with_the_reason(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == EXIT_USAGE
    assert message in one_error_line(result)


@pytest.mark.parametrize(
    ("via", "blocked", "extra"),
    [("langchain", "langchain_core", "langchain"), ("llama-index", "llama_index", "llama-index")],
)
def test_a_missing_extra_names_the_pip_install(server: Server, via: str, blocked: str, extra: str) -> None:
    _, base_url, flows = server
    result = run("chat", "hi", "--base-url", base_url, "--chatflow", flows["rag"], "--via", via, blocked=(blocked,))
    assert result.returncode == EXIT_MISSING_EXTRA
    assert one_error_line(result).endswith(f'pip install "flowise-integrations[{extra}]"')
    demo = run("demo", "--via", via, blocked=(blocked,))
    assert demo.returncode == EXIT_MISSING_EXTRA
    assert f"flowise-integrations[{extra}]" in one_error_line(demo)


def test_the_demo_without_the_framework_extras_shows_the_core_and_says_what_to_install() -> None:
    result = run("demo", blocked=("langchain_core", "llama_index"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("[core]") == 3
    assert "[langchain]" not in result.stdout
    assert 'pip install "flowise-integrations[langchain]"' in result.stderr
    assert 'pip install "flowise-integrations[llama-index]"' in result.stderr


# -- Ctrl-C and a closed pipe abort the run on the server -------------------------------------------------


def start_slow_chat(base_url: str, flow: str, via: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command("chat", "go", "--base-url", base_url, "--chatflow", flow, "--via", via, *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ENV},
    )


@pytest.mark.parametrize("via", VIAS)
def test_ctrl_c_aborts_the_flow_on_the_server(server: Server, via: str) -> None:
    fake, base_url, flows = server
    flow = flows[f"slow-sigint-{via}"]
    proc = start_slow_chat(base_url, flow, via)
    assert proc.stdout is not None
    seen = ""
    while "tick " not in seen:  # streaming has begun
        char = proc.stdout.read(1)
        assert char, f"the command ended before streaming: {proc.communicate()}"
        seen += char
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert err.strip().splitlines() == ["aborted"]
    path = wait_for_abort(fake, flow)
    assert path.rsplit("/", 1)[1] in posted_chat_ids(fake, flow)  # the run that was streaming


@pytest.mark.parametrize("via", VIAS)
def test_a_closed_pipe_exits_quietly_and_aborts_the_flow(server: Server, via: str) -> None:
    fake, base_url, flows = server
    flow = flows[f"slow-pipe-{via}"]
    proc = start_slow_chat(base_url, flow, via, "--json")
    assert proc.stdout is not None and proc.stderr is not None
    first, second = proc.stdout.readline(), proc.stdout.readline()  # like `| head -2`
    assert json.loads(first) and json.loads(second)
    proc.stdout.close()
    proc.wait(timeout=60)
    assert proc.returncode == EXIT_CLOSED_PIPE
    assert proc.stderr.read() == ""
    path = wait_for_abort(fake, flow)
    assert path.rsplit("/", 1)[1] in posted_chat_ids(fake, flow)


def test_the_demo_piped_into_head_exits_quietly() -> None:
    proc = subprocess.Popen(
        command("demo"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **ENV}
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert "FakeFlowise" in proc.stdout.readline()
    proc.stdout.close()
    proc.wait(timeout=60)
    assert proc.returncode == EXIT_CLOSED_PIPE
    assert proc.stderr.read() == ""


# -- ping and flows ---------------------------------------------------------------------------------------


def test_ping_reports_the_version(server: Server) -> None:
    _, base_url, _ = server
    result = run("ping", "--base-url", base_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{base_url}: Flowise 3.1.4, ping ")
    record = json_lines(run("ping", "--base-url", base_url, "--json").stdout)
    assert record[0]["ping"]["version"] == "3.1.4"  # type: ignore[index]


def test_ping_an_unreachable_server() -> None:
    result = run("ping", "--base-url", "http://127.0.0.1:9")
    assert result.returncode == EXIT_UNREACHABLE
    assert one_error_line(result).startswith("error: FlowiseConnectionError: cannot reach")


ROWS = [
    {"id": "0a3c6f5e-1b7d-4c3a-9e2f-5d8b7c6a4e10", "name": "Docs Q&A", "type": "CHATFLOW", "flowData": "{}"},
    {"id": "7f9e2d4b-3c1a-4b8e-a6d5-2e1f0c9b8a77", "name": "Triage", "type": "AGENTFLOW", "flowData": "{}"},
]


def flowise_rows(conn: Conn) -> None:
    """GET /api/v1/chatflows with the rows above (401 without the key); each flow's streaming answer."""
    line = conn.request.split(b"\r\n", 1)[0].decode()
    authorized = b"authorization: bearer the-key" in conn.request.lower()
    path = line.split()[1]
    if path == "/api/v1/chatflows" and not authorized:
        status, body = "401 Unauthorized", {"error": "Unauthorized Access"}
    elif path == "/api/v1/chatflows":
        status, body = "200 OK", ROWS
    elif path.startswith("/api/v1/chatflows-streaming/"):
        status, body = "200 OK", {"isStreaming": path.endswith(str(ROWS[0]["id"]))}
    else:
        status, body = "404 Not Found", {"message": "no such route"}
    data = json.dumps(body).encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    conn.send(head.encode() + b"Connection: close\r\n\r\n" + data)


def test_flows_lists_id_name_type_and_streaming() -> None:
    with RawServer(flowise_rows) as url:
        table = run("flows", "--base-url", url, "--api-key", "the-key")
        records = json_lines(run("flows", "--base-url", url, "--json", env={"FLOWISE_API_KEY": "the-key"}).stdout)
        no_key = run("flows", "--base-url", url)
    assert table.returncode == 0, table.stderr
    for row in ROWS:
        assert str(row["id"]) in table.stdout
        assert str(row["name"]) in table.stdout
    flows = [r["flow"] for r in records]
    assert [(f["id"], f["type"], f["streaming"]) for f in flows] == [  # type: ignore[index]
        (ROWS[0]["id"], "CHATFLOW", True),
        (ROWS[1]["id"], "AGENTFLOW", False),
    ]
    assert no_key.returncode == EXIT_FLOWISE
    line = one_error_line(no_key)
    assert line.startswith("error: AuthenticationError:")
    assert "--api-key" in line


def test_flows_on_the_emulator_shows_whole_ids() -> None:
    fake = FakeFlowise(api_key="the-key")
    ids = [fake.add_flow(FakeFlow(name="Support bot")), fake.add_flow(FakeFlow(name="Triage", kind="agentflow"))]
    with fake.serve() as url:
        table = run("flows", "--base-url", url, "--api-key", "the-key", env={"COLUMNS": "80"})
        records = json_lines(run("flows", "--base-url", url, "--api-key", "the-key", "--json").stdout)
    assert table.returncode == 0, table.stderr
    for flow_id in ids:
        assert flow_id in table.stdout  # not folded over two lines
    assert {r["flow"]["name"]: r["flow"]["type"] for r in records} == {  # type: ignore[index]
        "Support bot": "CHATFLOW",
        "Triage": "AGENTFLOW",
    }
