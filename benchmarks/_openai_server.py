"""A loopback OpenAI-format ``/v1/chat/completions`` server that streams the tokens it is given.

For benchmarks that compare against ``ChatOpenAI`` / LlamaIndex ``OpenAI``-style clients reading "the same
tokens" as a Flowise stream. It runs in its own process (its CPU never bills the client being measured)::

    from _openai_server import openai_server

    with openai_server([" tok0", " tok1"], token_delay=0.0) as base_url:   # "http://127.0.0.1:PORT/v1"
        ChatOpenAI(model="gpt-bench", base_url=base_url, api_key="sk-bench").invoke("hi")

Streaming (``"stream": true``) replies are Chat Completions chunks, one SSE frame per HTTP chunk: a role chunk,
one chunk per token, a ``finish_reason="stop"`` chunk, a usage chunk when ``stream_options.include_usage`` is
set, then ``data: [DONE]``. Non-streaming requests get one ``chat.completion`` JSON object. HTTP/1.1
keep-alive; stdlib only. ``python _openai_server.py '<json config>'`` runs it in the foreground.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["openai_server", "serve"]

_ID = "chatcmpl-bench"


def _frame(payload: Any) -> bytes:
    data = b"data: " + (payload if isinstance(payload, bytes) else json.dumps(payload).encode()) + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": _ID,
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


class _Script:
    """The pre-encoded frames of one reply (the server does no per-token work besides writing)."""

    def __init__(self, tokens: Sequence[str], model: str) -> None:
        self.tokens = list(tokens)
        self.model = model
        self.head = _frame(_chunk(model, {"role": "assistant", "content": ""}))
        self.frames = [_frame(_chunk(model, {"content": token})) for token in self.tokens]
        self.tail = _frame(_chunk(model, {}, "stop"))
        usage = {"prompt_tokens": 5, "completion_tokens": len(self.tokens), "total_tokens": 5 + len(self.tokens)}
        self.usage = _frame({**_chunk(model, {}), "choices": [], "usage": usage})
        self.done = _frame(b"[DONE]")
        self.completion = json.dumps(
            {
                "id": _ID,
                "object": "chat.completion",
                "created": 1700000000,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(self.tokens)},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
        ).encode()


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, script: _Script, delay: float) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
                writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
                continue
            request = json.loads(body or b"{}")
            if not request.get("stream"):
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                    % (len(script.completion), script.completion)
                )
                await writer.drain()
                continue
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
                b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            writer.write(script.head)
            await writer.drain()
            for frame in script.frames:
                if delay:
                    await asyncio.sleep(delay)
                writer.write(frame)
                await writer.drain()
            writer.write(script.tail)
            if (request.get("stream_options") or {}).get("include_usage"):
                writer.write(script.usage)
            writer.write(script.done + b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def serve(tokens: Sequence[str], *, model: str = "gpt-bench", token_delay: float = 0.0, port: int = 0) -> None:
    """Serve until cancelled; prints ``{"base_url": ...}`` as one JSON line once listening."""
    script = _Script(tokens, model)
    server = await asyncio.start_server(
        lambda r, w: _handle(r, w, script, token_delay), "127.0.0.1", port, backlog=4096, limit=1 << 20
    )
    bound = server.sockets[0].getsockname()[1]
    print(json.dumps({"base_url": f"http://127.0.0.1:{bound}/v1"}), flush=True)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def openai_server(tokens: Sequence[str], *, model: str = "gpt-bench", token_delay: float = 0.0) -> Iterator[str]:
    """Run the server in a subprocess; yields its base URL (``http://127.0.0.1:<port>/v1``)."""
    config = json.dumps({"tokens": list(tokens), "model": model, "token_delay": token_delay})
    proc = subprocess.Popen(
        [sys.executable, __file__, config], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())["base_url"]
    finally:
        proc.terminate()
        proc.wait(10)


def _main() -> None:
    config = json.loads(sys.argv[1])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(config["tokens"], model=config.get("model", "gpt-bench"), token_delay=config.get("token_delay", 0.0))
        )


if __name__ == "__main__":
    _main()
