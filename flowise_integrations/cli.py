"""The ``flowise-integrations`` command: chat with a flow, list a server's flows, ping it, or run the demo.

    flowise-integrations demo                                  # no server needed: the built-in emulator
    flowise-integrations ping --base-url URL                   # reachable? which Flowise version?
    flowise-integrations flows --base-url URL --api-key KEY    # the server's flows: id, name, type, streaming
    flowise-integrations chat "What is Flowise?" --chatflow ID # one question (omit it for a session)

Every failure is one line on stderr and an exit code (see ``EXIT_CODES``); ``--json`` prints JSON Lines only;
Ctrl-C and a closed pipe abort the run on the server, through every ``--via``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO, TypeVar

from ._version import __version__
from .client import FlowiseClient
from .errors import (
    FlowiseAPIError,
    FlowiseConnectionError,
    FlowiseError,
    FlowiseProtocolError,
)
from .events import FlowiseEvent, NextAgentFlowEvent, ThinkingEvent, TokenEvent, event_to_dict
from .models import Prediction

_T = TypeVar("_T")

EXIT_OK = 0
EXIT_FLOWISE = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_NOT_FLOWISE = 4
EXIT_MISSING_EXTRA = 5
EXIT_INTERRUPTED = 130
EXIT_CLOSED_PIPE = 141
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FLOWISE: "Flowise answered with an error (unknown flow, bad key, the flow failed, the stream broke)",
    EXIT_USAGE: "usage error (a missing or invalid option)",
    EXIT_UNREACHABLE: "the server cannot be reached, or the timeout or deadline passed",
    EXIT_NOT_FLOWISE: "the server's reply is not Flowise's API (an HTML page: check --base-url)",
    EXIT_MISSING_EXTRA: "an optional dependency is missing (the message names the pip install)",
    EXIT_INTERRUPTED: "interrupted with Ctrl-C (the run was aborted on the server)",
    EXIT_CLOSED_PIPE: "stdout was closed, e.g. by `| head` (the run was aborted on the server; nothing printed)",
}
VIAS = ("core", "langchain", "llama-index")
_WINGS = {"langchain": "flowise_integrations.langchain", "llama-index": "flowise_integrations.llama_index"}
_ABORT_DEADLINE = 5.0
_MAX_ERROR_CHARS = 300
_HTML = re.compile(r"<\s*(!doctype|html|head|body)\b", re.IGNORECASE)


class CliError(Exception):
    """A failure the command reports as one line with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def missing_extra(via: str) -> CliError | None:
    """The error for a ``--via`` whose framework is not installed (the wing's ImportError names the extra)."""
    wing = _WINGS.get(via)
    if wing is None:
        return None
    try:
        importlib.import_module(wing)
    except ImportError as exc:
        return CliError(f"--via {via}: {one_line(str(exc))}", EXIT_MISSING_EXTRA)
    return None


# -- output -----------------------------------------------------------------------------------------------


class Console:
    """Where output goes: text (rich tables when rich is installed) or, with ``json_lines``, JSON Lines only."""

    def __init__(self, out: TextIO, *, json_lines: bool = False) -> None:
        self.out = out
        self.json_lines = json_lines
        self._mid_line = False
        self._rich: Any = None
        if not json_lines:
            with contextlib.suppress(ImportError):  # rich is in the `cli` extra
                from rich.console import Console as RichConsole

                class _Rich(RichConsole):
                    def on_broken_pipe(self) -> None:  # rich would exit(1) without aborting the run
                        self.quiet = True
                        raise BrokenPipeError

                self._rich = _Rich(file=out, highlight=False, soft_wrap=True)

    def write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()
            self._mid_line = not text.endswith("\n")

    def emit(self, obj: dict[str, Any]) -> None:
        """One JSON Lines record."""
        self.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")

    def end_line(self) -> None:
        """Finish a line of streamed text, if one is open."""
        if self._mid_line:
            self.write("\n")

    def line(self, text: str = "", style: str | None = None) -> None:
        """A human-readable line: stdout in text mode, stderr in JSON mode (stdout stays JSON)."""
        if self.json_lines:
            print(text, file=sys.stderr)
            return
        self.end_line()
        if self._rich is not None and style:
            self._rich.print(text, style=style, markup=False)
            self.out.flush()
        else:
            self.write(text + "\n")

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if not rows:
            return
        self.end_line()
        if self._rich is not None:
            from rich.table import Table

            table = Table(title=title, title_justify="left")
            for column in columns:  # ids stay whole, to be copied
                whole = column == "id"
                table.add_column(column, overflow="fold", no_wrap=whole, min_width=36 if whole else None)
            for row in rows:
                table.add_row(*row)
            self._rich.print(table)
            self.out.flush()
            return
        self.write(f"{title}\n" + "".join("  - " + " | ".join(row) + "\n" for row in rows))


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_extras(console: Console, result: Prediction) -> None:
    """Sources, used tools, agent steps, usage and follow-ups as readable tables."""
    console.table(
        "Sources",
        ("#", "source", "content"),
        [
            (str(i), _short(doc.metadata.get("source", doc.metadata.get("title", "")), 30), _short(doc.page_content))
            for i, doc in enumerate(result.source_documents, 1)
        ],
    )
    console.table(
        "Used tools",
        ("tool", "input", "output"),
        [(t.tool, _short(t.tool_input, 40), _short(t.tool_output, 60)) for t in result.used_tools],
    )
    steps = [(s.agent_name or "-", _short(s.text)) for s in result.agent_reasoning]
    steps += [
        (str(node.get("nodeLabel", node.get("nodeId", "?"))), str(node.get("status", "")))
        for node in result.agent_flow_executed_data
    ]
    console.table("Agent steps", ("agent / node", "detail"), steps)
    if result.usage is not None:
        u = result.usage
        console.line(f"usage: {u.input_tokens} in + {u.output_tokens} out = {u.total_tokens} tokens", style="dim")
    if result.follow_up_prompts:
        console.line("follow-up: " + " · ".join(result.follow_up_prompts), style="dim")


def show_result(console: Console, via: str, result: Prediction) -> None:
    """The end of one answer: tables in text mode, a ``{"result": ...}`` record in JSON mode."""
    if console.json_lines:
        console.emit({"result": {"via": via, **result.model_dump(mode="json", exclude={"raw"})}})
    else:
        render_extras(console, result)


def _show_event(console: Console, event: FlowiseEvent) -> None:
    cls = type(event)
    if cls is TokenEvent:
        console.write(event.data)
    elif cls is ThinkingEvent and event.data:
        console.line(f"[thinking] {_short(event.data)}", style="dim italic")
    elif isinstance(event, NextAgentFlowEvent):
        console.line(f"[{event.status}] {event.node_label}", style="dim")


# -- one answer, through one layer ------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """One question to one flow, with the chat id that lets the command abort it."""

    chatflow_id: str
    text: str
    session_id: str | None = None
    chat_id: str = ""

    def with_new_chat(self) -> Question:
        return Question(self.chatflow_id, self.text, self.session_id, str(uuid.uuid4()))


def ask(via: str, client: FlowiseClient, question: Question, console: Console) -> Prediction:
    """Stream one answer through ``via``, printing it live; Ctrl-C or a closed pipe aborts the run on the server."""
    if not question.chat_id:
        question = question.with_new_chat()
    runner = {"core": _ask_core, "langchain": _ask_langchain, "llama-index": _ask_llama_index}[via]
    try:
        result = runner(client, question, console)
    except (KeyboardInterrupt, BrokenPipeError):
        abort_quietly(client, question)
        raise
    console.end_line()
    return result


def abort_quietly(client: FlowiseClient, question: Question) -> None:
    """``PUT /chatmessage/abort``: agentflows stop; a classic chatflow runs on (Flowise ignores it there)."""
    with contextlib.suppress(FlowiseError, ValueError):
        client.abort(question.chatflow_id, question.chat_id, deadline=_ABORT_DEADLINE)


def _ask_core(client: FlowiseClient, question: Question, console: Console) -> Prediction:
    with client.stream(
        question.chatflow_id, question.text, session_id=question.session_id, chat_id=question.chat_id
    ) as stream:
        for event in stream:
            if console.json_lines:
                console.emit(event_to_dict(event))
            else:
                _show_event(console, event)
    return stream.result


def _ask_langchain(client: FlowiseClient, question: Question, console: Console) -> Prediction:
    from langchain_core.messages import HumanMessage

    from .langchain import ChatFlowise

    model = ChatFlowise(
        chatflow_id=question.chatflow_id,
        base_url=client.base_url,
        api_key=client.api_key,
        session_id=question.session_id,
        timeout=client.timeout.read,
    )
    final: Any = None
    try:
        chunks = model.stream([HumanMessage(question.text)], chat_id=question.chat_id, deadline=client.deadline)
        with _closed_after(chunks):
            for chunk in chunks:
                if console.json_lines:
                    record: dict[str, Any] = {"via": "langchain", "text": chunk.text}
                    if chunk.response_metadata:
                        record["response_metadata"] = chunk.response_metadata
                    if chunk.usage_metadata:
                        record["usage_metadata"] = chunk.usage_metadata
                    console.emit({"chunk": record})
                else:
                    console.write(chunk.text)
                final = chunk if final is None else final + chunk
    finally:
        model.close()
    if final is None:
        return Prediction(chatflow_id=question.chatflow_id)
    return _prediction_from_extras(question.chatflow_id, final.text, final.response_metadata, final.usage_metadata)


def _ask_llama_index(client: FlowiseClient, question: Question, console: Console) -> Prediction:
    from llama_index.core.base.llms.types import ChatMessage

    from .llama_index import FlowiseLLM

    api_key = client.api_key.get_secret_value() if client.api_key else None
    llm = FlowiseLLM(question.chatflow_id, base_url=client.base_url, api_key=api_key, session_id=question.session_id)
    last: Any = None
    try:
        messages = [ChatMessage(role="user", content=question.text)]
        responses = llm.stream_chat(messages, chat_id=question.chat_id, deadline=client.deadline)
        with _closed_after(responses):
            for response in responses:
                if console.json_lines:
                    record: dict[str, Any] = {"via": "llama-index", "text": response.delta or ""}
                    if response.additional_kwargs:
                        record["additional_kwargs"] = response.additional_kwargs
                    console.emit({"chunk": record})
                else:
                    console.write(response.delta or "")
                last = response
    finally:
        llm.close()
    if last is None:
        return Prediction(chatflow_id=question.chatflow_id)
    return _prediction_from_extras(
        question.chatflow_id, last.message.content or "", last.additional_kwargs, (last.raw or {}).get("usage")
    )


@contextlib.contextmanager
def _closed_after(iterator: Iterator[_T]) -> Iterator[Iterator[_T]]:
    """Close a generator when the loop over it ends early (Ctrl-C, a closed pipe): its stream closes at once."""
    try:
        yield iterator
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def _prediction_from_extras(chatflow_id: str, text: str, extras: dict[str, Any], usage: Any) -> Prediction:
    """A wing's final metadata (snake_case ``Prediction`` fields) back into a ``Prediction``."""
    fields = {k: v for k, v in extras.items() if k in Prediction.model_fields and v is not None}
    fields.update(text=text, chatflow_id=chatflow_id)
    if isinstance(usage, dict):
        fields["usage"] = usage
    return Prediction.model_validate(fields)


# -- subcommands ------------------------------------------------------------------------------------------


def make_client(args: argparse.Namespace) -> FlowiseClient:
    try:
        client = FlowiseClient(args.base_url, args.api_key, timeout=args.timeout, deadline=args.deadline)
    except ValueError as exc:  # a malformed --base-url or --api-key
        raise CliError(str(exc), EXIT_USAGE) from None
    args.server = client.base_url  # for error messages
    return client


def cmd_chat(args: argparse.Namespace, console: Console) -> int:
    if not args.chatflow:
        raise CliError("--chatflow (or FLOWISE_CHATFLOW_ID) is required", EXIT_USAGE)
    missing = missing_extra(args.via)
    if missing is not None:
        raise missing
    with make_client(args) as client:
        if args.question is not None:
            question = Question(args.chatflow, args.question, args.session)
            show_result(console, args.via, ask(args.via, client, question, console))
            return EXIT_OK
        return _interactive(args, client, console)


def _interactive(args: argparse.Namespace, client: FlowiseClient, console: Console) -> int:
    """One server-side session and one Flowise chat; a failed or interrupted turn is reported and the chat goes on."""
    session, chat_id = args.session or str(uuid.uuid4()), str(uuid.uuid4())
    console.line(f"chatting with {args.chatflow} on {client.base_url} (session {session}); Ctrl-D to quit", "dim")
    status = EXIT_OK
    while True:
        try:
            if console.json_lines:
                sys.stderr.write("you> ")
                sys.stderr.flush()
                text = input().strip()
            else:
                text = input("you> ").strip()
        except EOFError:
            console.line("")
            return status
        if not text:
            continue
        try:
            result = ask(args.via, client, Question(args.chatflow, text, session, chat_id), console)
        except KeyboardInterrupt:
            console.end_line()
            print("(aborted)", file=sys.stderr)
            status = EXIT_INTERRUPTED
            continue
        except FlowiseError as exc:
            console.end_line()
            status, message = describe(exc, client.base_url)
            print(message, file=sys.stderr)
            continue
        show_result(console, args.via, result)
        status = EXIT_OK


def cmd_demo(args: argparse.Namespace, console: Console) -> int:
    from ._demo import run_demo

    if args.via != "all":
        missing = missing_extra(args.via)
        if missing is not None:
            raise missing
    return run_demo(console, vias=[args.via] if args.via != "all" else list(VIAS))


def cmd_ping(args: argparse.Namespace, console: Console) -> int:
    with make_client(args) as client:
        version = client.version()  # raises the typed error of an unreachable or non-Flowise server
        started = time.perf_counter()
        if not client.ping():
            raise FlowiseProtocolError(f"{client.base_url}/api/v1/ping did not answer pong: not a Flowise server")
        latency = (time.perf_counter() - started) * 1000
    if console.json_lines:
        console.emit({"ping": {"base_url": client.base_url, "version": version, "latency_ms": round(latency, 1)}})
    else:
        console.write(f"{client.base_url}: Flowise {version or '(version not reported)'}, ping {latency:.0f} ms\n")
    return EXIT_OK


def cmd_flows(args: argparse.Namespace, console: Console) -> int:
    with make_client(args) as client:
        try:
            flows = client.list_flows(details=not args.no_details)
        except FlowiseAPIError as exc:
            if exc.status_code in (401, 403):
                exc.message = f"{exc.message} (listing flows needs an API key with chatflows:view: --api-key)"
            raise
    if console.json_lines:
        for info in flows:
            console.emit({"flow": info.model_dump(mode="json", exclude={"raw"})})
        return EXIT_OK

    def yes_no(value: bool | None) -> str:
        return "?" if value is None else ("yes" if value else "no")

    rows = [(f.id, f.name, str(f.type), yes_no(f.streaming), str(f.input_type or "chat")) for f in flows]
    console.table(f"{len(flows)} flows on {client.base_url}", ("id", "name", "type", "streams", "input"), rows)
    if not flows:
        console.line(f"no flows on {client.base_url}")
    return EXIT_OK


# -- errors -----------------------------------------------------------------------------------------------


def one_line(text: str, limit: int = _MAX_ERROR_CHARS) -> str:
    """Whitespace collapsed, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(exc: FlowiseError, base_url: str) -> tuple[int, str]:
    """The exit code and the one stderr line for a ``FlowiseError``."""
    if isinstance(exc, FlowiseAPIError) and _HTML.search(str(exc.body or "")[:2000]):
        return EXIT_NOT_FLOWISE, (
            f"error: FlowiseProtocolError: {base_url} answered HTTP {exc.status_code} with an HTML page, "
            "not Flowise's API (is --base-url the Flowise server root?)"
        )
    if isinstance(exc, FlowiseProtocolError):
        code = EXIT_NOT_FLOWISE
    elif isinstance(exc, FlowiseConnectionError):
        code = EXIT_UNREACHABLE
    else:
        code = EXIT_FLOWISE
    return code, one_line(f"error: {core_name(exc)}: {exc}")


def core_name(exc: FlowiseError) -> str:
    """The core class of an error (a wing's ``FlowiseModelNotFoundError`` is a ``NotFoundError``)."""
    return next(c.__name__ for c in type(exc).__mro__ if c.__module__ == FlowiseError.__module__)


def _silence_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so that the interpreter's final flush stays quiet."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


# -- arguments --------------------------------------------------------------------------------------------


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {value}")
    return number


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage itself is in ``--help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def _server_options() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--base-url", default=None, help="the Flowise server root (env FLOWISE_BASE_URL; default http://localhost:3000)"
    )
    common.add_argument("--api-key", default=None, help="the Flowise API key (env FLOWISE_API_KEY)")
    common.add_argument("--timeout", type=_positive, default=60.0, help="seconds one read may wait (default 60)")
    common.add_argument("--deadline", type=_positive, default=None, help="seconds for the whole call (default: none)")
    common.add_argument("--json", action="store_true", help="print JSON Lines only (one object per line)")
    return common


_CHAT_EXAMPLES = """examples:
  flowise-integrations chat "What is Flowise?" --base-url http://localhost:3000 --chatflow 9b3c7f2e-...
  flowise-integrations chat --chatflow 9b3c7f2e-...              interactive: one session, Ctrl-D to quit
  flowise-integrations chat "Hi" --chatflow 9b3c7f2e-... --json | jq -c .   typed events, then {"result": ...}
  flowise-integrations chat "Hi" --chatflow 9b3c7f2e-... --via langchain    the same through ChatFlowise

--json prints Flowise's events ({"event", "data"}; through a wing {"chunk": ...}) and a final {"result": ...}.
"""
_DEMO_EXAMPLES = """examples:
  flowise-integrations demo                 three demo flows through core, LangChain and LlamaIndex
  flowise-integrations demo --via core --json | head -3
"""
_PING_EXAMPLES = """examples:
  flowise-integrations ping --base-url http://localhost:3000
  FLOWISE_BASE_URL=http://localhost:3000 flowise-integrations ping --json
"""
_FLOWS_EXAMPLES = """examples:
  flowise-integrations flows --base-url http://localhost:3000 --api-key "$FLOWISE_API_KEY"
  flowise-integrations flows --json | jq -r '.flow | select(.streaming) | .id'

Needs an API key with the chatflows:view permission.
"""


def _exit_codes_text() -> str:
    return "exit codes:\n" + "".join(f"  {code:<4} {meaning}\n" for code, meaning in EXIT_CODES.items())


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="flowise-integrations",
        description="Chat with a Flowise chatflow or agentflow, list a server's flows, ping it, or run the demo.",
        epilog=_exit_codes_text(),
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"flowise-integrations {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{chat,flows,ping,demo}", parser_class=_Parser)
    common = _server_options()

    chat = sub.add_parser(
        "chat", parents=[common], help="ask a flow (interactive when no question is given)", epilog=_CHAT_EXAMPLES,
        formatter_class=formatter,
    )  # fmt: skip
    chat.add_argument("question", nargs="?", help="the question; omit it for an interactive session")
    chat.add_argument(
        "--chatflow", default=os.environ.get("FLOWISE_CHATFLOW_ID"), help="the flow's id (env FLOWISE_CHATFLOW_ID)"
    )
    chat.add_argument("--session", default=None, help="a server-side memory session id, to continue a conversation")
    chat.add_argument("--via", choices=VIAS, default="core", help="which layer answers (default: core)")
    chat.set_defaults(handler=cmd_chat)

    flows = sub.add_parser(
        "flows", parents=[common], help="list the server's flows (needs the API key)", epilog=_FLOWS_EXAMPLES,
        formatter_class=formatter,
    )  # fmt: skip
    flows.add_argument("--no-details", action="store_true", help="skip asking each flow whether it streams")
    flows.set_defaults(handler=cmd_flows)

    ping = sub.add_parser(
        "ping", parents=[common], help="check that a Flowise server answers, and its version", epilog=_PING_EXAMPLES,
        formatter_class=formatter,
    )  # fmt: skip
    ping.set_defaults(handler=cmd_ping)

    demo = sub.add_parser(
        "demo", help="run demo flows on the built-in emulator (no server needed)", epilog=_DEMO_EXAMPLES,
        formatter_class=formatter,
    )  # fmt: skip
    demo.add_argument("--via", choices=(*VIAS, "all"), default="all", help="which layers to show (default: all)")
    demo.add_argument("--json", action="store_true", help="print JSON Lines only (one object per line)")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and ``python -m flowise_integrations``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(sys.stdout, json_lines=args.json)
    handler: Callable[[argparse.Namespace, Console], int] = args.handler
    try:
        return handler(args, console)
    except CliError as exc:
        if exc.code == EXIT_USAGE:
            parser.error(str(exc))  # exits 2 with the usage line
        _fail(console, f"error: {exc}")
        return exc.code
    except FlowiseError as exc:
        code, message = describe(exc, getattr(args, "server", "the server"))
        _fail(console, message)
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_CLOSED_PIPE
    except KeyboardInterrupt:
        _fail(console, "aborted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: still one line, the traceback on request
        if os.environ.get("FLOWISE_CLI_DEBUG"):
            raise
        _fail(console, one_line(f"error: unexpected {type(exc).__name__}: {exc} (FLOWISE_CLI_DEBUG=1 shows more)"))
        return EXIT_FLOWISE


def _fail(console: Console, message: str) -> None:
    with contextlib.suppress(BrokenPipeError, ValueError):
        console.end_line()
    print(message, file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
