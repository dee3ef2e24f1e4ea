"""The `flowise-integrations` command, run as a user runs it (a subprocess), against FakeFlowise."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from flowise_integrations.testing import FakeFlow, FakeFlowise

DOCS = [{"pageContent": "Paris is the capital of France.", "metadata": {"source": "atlas.md"}}]
TOOLS = [{"tool": "calculator", "toolInput": {"input": "2 + 2"}, "toolOutput": "4"}]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowise_integrations", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120", **(env or {})},
        check=False,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeFlowise, str, dict[str, str]]]:
    fake = FakeFlowise()
    flows = {
        "rag": fake.add_flow(FakeFlow(answer="Paris.", source_documents=DOCS)),
        "agent": fake.add_flow(FakeFlow(answer="It is 4.", used_tools=TOOLS)),
        "protected": fake.add_flow(FakeFlow(api_key="right-key")),
        "broken": fake.add_flow(FakeFlow(error="the LLM is down", error_after=1)),
        "slow": fake.add_flow(FakeFlow(kind="agentflow", tokens=["tick "] * 400, token_delay=0.02)),
        "memory": fake.add_flow(
            FakeFlow(memory_type="Buffer Memory", respond=lambda body: f"echo: {body['question']}")
        ),
    }
    with fake.serve() as base_url:
        yield fake, base_url, flows


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


def test_chat_streams_and_prints_sources_and_tools(server: tuple[FakeFlowise, str, dict[str, str]]) -> None:
    _, base_url, flows = server
    rag = run("chat", "Capital of France?", "--base-url", base_url, "--chatflow", flows["rag"])
    assert rag.returncode == 0, rag.stderr
    assert rag.stdout.startswith("Paris.\n")
    assert "atlas.md" in rag.stdout
    agent = run("chat", "2+2?", "--chatflow", flows["agent"], env={"FLOWISE_BASE_URL": base_url})
    assert "calculator" in agent.stdout
    assert '{"input": "2 + 2"}' in agent.stdout


@pytest.mark.parametrize("via", ["langchain", "llama-index"])
def test_chat_through_a_wing(server: tuple[FakeFlowise, str, dict[str, str]], via: str) -> None:
    _, base_url, flows = server
    result = run("chat", "Capital?", "--base-url", base_url, "--chatflow", flows["rag"], "--via", via)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Paris.\n")
    assert "atlas.md" in result.stdout


def test_json_prints_one_parsable_event_per_line(server: tuple[FakeFlowise, str, dict[str, str]]) -> None:
    _, base_url, flows = server
    result = run("chat", "q", "--base-url", base_url, "--chatflow", flows["rag"], "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events] == ["start", "token", "sourceDocuments", "metadata", "end"]
    assert events[2]["data"][0]["pageContent"] == "Paris is the capital of France."


def test_interactive_session_keeps_one_session(server: tuple[FakeFlowise, str, dict[str, str]]) -> None:
    fake, base_url, flows = server
    proc = subprocess.run(
        [sys.executable, "-m", "flowise_integrations", "chat", "--base-url", base_url, "--chatflow", flows["memory"]],
        input="first\nsecond\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "echo: first" in proc.stdout
    assert "echo: second" in proc.stdout
    sessions = {
        r.json["overrideConfig"]["sessionId"] for r in fake.requests if r.json and r.path.endswith(flows["memory"])
    }
    assert len(sessions) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--chatflow", "00000000-0000-4000-8000-000000000000"], "error: NotFoundError: Chatflow"),
        (
            ["--chatflow", "PROTECTED"],
            "error: AuthenticationError: Error: predictionsServices.buildChatflow - Unauthorized",
        ),
        (["--chatflow", "PROTECTED", "--api-key", "wrong"], "error: AuthenticationError:"),
        (
            ["--chatflow", "BROKEN"],
            "error: FlowExecutionError: Error: predictionsServices.buildChatflow - the LLM is down",
        ),
        (["--chatflow", "RAG", "--base-url", "http://127.0.0.1:9"], "error: FlowiseConnectionError: cannot reach"),
        (["--chatflow", "RAG", "--base-url", "ftp://nope"], "error: base_url must start with http:// or https://"),
        (["--chatflow", "RAG", "--base-url", "BASE/some/ui/route"], "error: FlowiseProtocolError: unexpected 200"),
    ],
)
def test_every_user_mistake_is_one_clear_line(
    server: tuple[FakeFlowise, str, dict[str, str]], args: list[str], message: str
) -> None:
    _, base_url, flows = server
    names = {"PROTECTED": flows["protected"], "BROKEN": flows["broken"], "RAG": flows["rag"]}
    args = [names.get(a, a).replace("BASE", base_url) for a in args]
    if "--base-url" not in args:
        args += ["--base-url", base_url]
    result = run("chat", "hi", *args, "--timeout", "10")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # never a traceback
    assert lines[0].startswith(message)


def test_usage_errors_exit_2() -> None:
    result = run("chat", "hi", env={"FLOWISE_CHATFLOW_ID": ""})
    assert result.returncode == 2
    assert "--chatflow" in result.stderr


def test_ctrl_c_aborts_the_flow_on_the_server(server: tuple[FakeFlowise, str, dict[str, str]]) -> None:
    fake, base_url, flows = server
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flowise_integrations",
            "chat",
            "go",
            "--base-url",
            base_url,
            "--chatflow",
            flows["slow"],
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.stdout is not None
    seen = ""
    while "tick " not in seen:  # streaming has begun (after the agentflow's node-progress lines)
        char = proc.stdout.read(1)
        assert char, "the command ended before streaming"
        seen += char
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == "aborted"
    deadline = time.monotonic() + 5
    while not any(r.method == "PUT" and flows["slow"] in r.path for r in fake.requests):
        assert time.monotonic() < deadline, "no abort request reached the server"
        time.sleep(0.05)
