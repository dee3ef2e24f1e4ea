"""A tiny threaded HTTP/1.1 server on 127.0.0.1 that misbehaves on purpose (drips, stalls, hangs, floods).

``RawServer(script)`` calls ``script(conn)`` for each connection after reading the request head and body;
``conn.send(bytes)`` writes, ``conn.wait(seconds)`` sleeps unless the server is stopping. The server records when
each connection was closed by the client (``closed`` event) so tests can prove a client let go.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Callable
from types import TracebackType

SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class Conn:
    def __init__(self, sock: socket.socket, server: RawServer) -> None:
        self.sock = sock
        self.server = server
        self.request = b""

    def send(self, data: bytes) -> bool:
        """Write; ``False`` once the client went away."""
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def wait(self, seconds: float) -> bool:
        """Sleep; ``False`` if the server is stopping."""
        return not self.server.stopping.wait(seconds)

    def client_gone(self, timeout: float) -> bool:
        """Block until the client closes its side (EOF/reset) or ``timeout``; ``True`` if it did."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except TimeoutError:
            return False
        except OSError:
            return True


class RawServer:
    """``with RawServer(script) as url:`` serves every connection with ``script`` (one request each)."""

    def __init__(self, script: Callable[[Conn], None]) -> None:
        self.script = script
        self.stopping = threading.Event()
        self.closed = threading.Event()  # a client closed a connection while the script ran
        self.requests: list[bytes] = []
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                head = b""
                while b"\r\n\r\n" not in head:
                    data = sock.recv(65536)
                    if not data:
                        return
                    head += data
                header, _, body = head.partition(b"\r\n\r\n")
                length = 0
                for line in header.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(body) < length:
                    data = sock.recv(65536)
                    if not data:
                        break
                    body += data
                outer.requests.append(header + b"\r\n\r\n" + body)
                conn = Conn(sock, outer)
                conn.request = header
                with contextlib.suppress(OSError):
                    outer.script(conn)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> str:
        self._thread.start()
        return self.url

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
