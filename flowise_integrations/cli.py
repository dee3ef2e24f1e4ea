"""The ``flowise-integrations`` command: chat with a Flowise flow, or run the demo on the built-in emulator.

    flowise-integrations demo                          # no server needed
    flowise-integrations chat "What is Flowise?" --chatflow ID [--base-url URL] [--api-key KEY]
    flowise-integrations chat --chatflow ID            # interactive, one session
    flowise-integrations chat "..." --json             # raw typed events, one JSON object per line

Every ``FlowiseError`` becomes one clear line on stderr and a non-zero exit code; Ctrl-C aborts the flow on
the server (``PUT /chatmessage/abort``) and exits with 130.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from ._version import __version__
from .client import FlowiseClient, FlowiseStream
from .errors import FlowiseError
from .events import (
    AgentReasoningEvent,
    FlowiseEvent,
    NextAgentFlowEvent,
    SourceDocumentsEvent,
    ThinkingEvent,
    TokenEvent,
    UsedToolsEvent,
    event_to_dict,
)
from .models import Prediction

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
VIAS = ("core", "langchain", "llama-index")


class Console:
    """Output: rich tables when rich is installed, plain text otherwise."""

    def __init__(self, out: TextIO, *, color: bool | None = None) -> None:
        self.out = out
        self._mid_line = False
        self._rich: Any = None
        try:
            from rich.console import Console as RichConsole

            self._rich = RichConsole(file=out, highlight=False, force_terminal=color, soft_wrap=True)
        except ImportError:  # pragma: no cover - rich is in the `cli` extra
            pass

    def write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()
            self._mid_line = not text.endswith("\n")

    def end_line(self) -> None:
        """Finish a line of streamed text, if one is open."""
        if self._mid_line:
            self.write("\n")

    def line(self, text: str = "", style: str | None = None) -> None:
        self.end_line()
        if self._rich is not None and style:
            self._rich.print(text, style=style, markup=False)
        else:
            self.write(text + "\n")

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if not rows:
            return
        self.end_line()
        if self._rich is not None:
            from rich.table import Table

            table = Table(title=title, title_justify="left", show_lines=False)
            for column in columns:
                table.add_column(column, overflow="fold")
            for row in rows:
                table.add_row(*row)
            self._rich.print(table)
            return
        self.write(f"{title}\n")
        for row in rows:
            self.write("  - " + " | ".join(row) + "\n")


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_extras(console: Console, result: Prediction) -> None:
    """Sources, used tools, agent steps and usage as readable tables."""
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


def run_core(
    client: FlowiseClient,
    chatflow_id: str,
    question: str,
    *,
    session_id: str | None,
    console: Console,
    json_lines: bool,
    on_stream: Callable[[FlowiseStream], None] | None = None,
) -> Prediction:
    """Stream one answer through the core client, printing tokens live (or events as JSON lines)."""
    stream = client.stream(chatflow_id, question, session_id=session_id)
    if on_stream is not None:
        on_stream(stream)
    try:
        with stream:
            for event in stream:
                if json_lines:
                    console.write(json.dumps(event_to_dict(event), ensure_ascii=False, default=str) + "\n")
                else:
                    _show_event(console, event)
    except KeyboardInterrupt:
        stream.cancel()
        raise
    console.end_line()
    return stream.result


def _show_event(console: Console, event: FlowiseEvent) -> None:
    cls = type(event)
    if cls is TokenEvent:
        console.write(event.data)
    elif cls is ThinkingEvent and event.data:
        console.line(f"[thinking] {_short(event.data)}", style="dim italic")
    elif cls is NextAgentFlowEvent:
        console.line(f"[{event.status}] {event.node_label}", style="dim")  # type: ignore[union-attr]
    elif cls in (SourceDocumentsEvent, UsedToolsEvent, AgentReasoningEvent):
        pass  # shown as tables at the end


def _wing_answer(
    via: str, client: FlowiseClient, chatflow_id: str, question: str, session_id: str | None, console: Console
) -> Prediction:
    """Stream through a framework wing, printing its text deltas, and rebuild a Prediction from its extras."""
    api_key = client.api_key.get_secret_value() if client.api_key else None
    if via == "langchain":
        from langchain_core.messages import HumanMessage

        from .langchain import ChatFlowise

        model = ChatFlowise(
            chatflow_id=chatflow_id,
            base_url=client.base_url,
            api_key=api_key,
            session_id=session_id,
            timeout=client.timeout.read,
        )
        final: Any = None
        for chunk in model.stream([HumanMessage(question)]):
            console.write(chunk.text)
            final = chunk if final is None else final + chunk
        console.end_line()
        usage = getattr(final, "usage_metadata", None)
        return _prediction_from_extras(
            final.text if final is not None else "", final.response_metadata if final is not None else {}, usage
        )
    from llama_index.core.base.llms.types import ChatMessage

    from .llama_index import FlowiseLLM

    llm = FlowiseLLM(chatflow_id, base_url=client.base_url, api_key=api_key, session_id=session_id)
    last: Any = None
    try:
        for response in llm.stream_chat([ChatMessage(role="user", content=question)]):
            console.write(response.delta or "")
            last = response
    finally:
        llm.close()
    console.end_line()
    raw = dict(last.raw or {}) if last is not None else {}
    return _prediction_from_extras(
        last.message.content or "" if last is not None else "",
        last.additional_kwargs if last is not None else {},
        raw.get("usage"),
    )


def _prediction_from_extras(text: str, extras: dict[str, Any], usage: Any) -> Prediction:
    """A wing's final metadata (snake_case Prediction fields) back into a Prediction, for display."""
    fields = {k: v for k, v in extras.items() if k in Prediction.model_fields and v is not None}
    fields["text"] = text
    if isinstance(usage, dict):
        fields["usage"] = usage
    return Prediction.model_validate(fields)


def _answer(
    args: argparse.Namespace, client: FlowiseClient, console: Console, question: str, session_id: str | None
) -> Prediction:
    if args.via == "core":
        return run_core(client, args.chatflow, question, session_id=session_id, console=console, json_lines=args.json)
    return _wing_answer(args.via, client, args.chatflow, question, session_id, console)


def cmd_chat(args: argparse.Namespace, console: Console) -> int:
    if not args.chatflow:
        raise _UsageError("--chatflow (or FLOWISE_CHATFLOW_ID) is required")
    if args.json and args.via != "core":
        raise _UsageError("--json prints the core client's typed events: use it with --via core")
    client = FlowiseClient(args.base_url, args.api_key, timeout=args.timeout)
    with client:
        if args.question:
            result = _answer(args, client, console, args.question, args.session)
            if not args.json:
                render_extras(console, result)
            return 0
        session = args.session or str(uuid.uuid4())
        console.line(
            f"chatting with {args.chatflow} on {client.base_url} (session {session}); Ctrl-D to quit", style="dim"
        )
        while True:
            try:
                question = input("you> ").strip()
            except EOFError:
                console.write("\n")
                return 0
            if not question:
                continue
            try:
                result = _answer(args, client, console, question, session)
            except KeyboardInterrupt:
                console.line("\n(aborted)", style="yellow")
                continue
            if not args.json:
                render_extras(console, result)


def cmd_demo(args: argparse.Namespace, console: Console) -> int:
    from ._demo import run_demo

    return run_demo(console, vias=[args.via] if args.via != "all" else list(VIAS), json_lines=args.json)


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowise-integrations",
        description="Chat with a Flowise chatflow or agentflow, or run the demo on the built-in emulator.",
    )
    parser.add_argument("--version", action="version", version=f"flowise-integrations {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="ask a flow (interactive when no question is given)")
    chat.add_argument("question", nargs="?", help="the question; omit for an interactive session")
    chat.add_argument(
        "--base-url",
        default=os.environ.get("FLOWISE_BASE_URL"),
        help="Flowise server (env FLOWISE_BASE_URL; default http://localhost:3000)",
    )
    chat.add_argument(
        "--chatflow",
        default=os.environ.get("FLOWISE_CHATFLOW_ID"),
        help="chatflow/agentflow id (env FLOWISE_CHATFLOW_ID)",
    )
    chat.add_argument("--api-key", default=None, help="API key (env FLOWISE_API_KEY)")
    chat.add_argument("--session", default=None, help="server-side memory session id, for multi-turn")
    chat.add_argument("--via", choices=VIAS, default="core", help="which layer answers (default: core)")
    chat.add_argument("--json", action="store_true", help="print the raw typed events, one JSON per line")
    chat.add_argument("--timeout", type=float, default=60.0, help="read timeout in seconds (default 60)")
    chat.set_defaults(handler=cmd_chat)

    demo = sub.add_parser("demo", help="run demo flows on the built-in emulator (no server needed)")
    demo.add_argument("--via", choices=(*VIAS, "all"), default="all", help="which layers to show (default: all)")
    demo.add_argument("--json", action="store_true", help="print the core client's typed events as JSON lines")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and ``python -m flowise_integrations``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(sys.stdout)
    try:
        result: int = args.handler(args, console)
        return result
    except _UsageError as exc:
        parser.error(str(exc))
    except FlowiseError as exc:
        sys.stdout.flush()
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("\naborted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ValueError as exc:  # e.g. a malformed --base-url
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_ERROR  # pragma: no cover - parser.error exits


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
