"""The steps a reply is made of.

The emulator's app turns a request into an iterator of these steps; the in-process transports and the
loopback server only carry them out (write bytes, wait, hang, cut the connection). Because the iterator is
lazy, server-side state (abort flags, stored chat messages) is read and written at the moment the real
server would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeAlias

__all__ = ["DROP", "HANG", "Action", "Chunk", "Drop", "Hang", "Head", "Reply", "Sleep", "drain"]


@dataclass(frozen=True)
class Head:
    """Status line and ordered header list; comes once, before any :class:`Chunk`."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]

    @property
    def chunked(self) -> bool:
        """Whether the body goes out with ``Transfer-Encoding: chunked`` (one HTTP chunk per :class:`Chunk`)."""
        return any(k.lower() == "transfer-encoding" for k, _ in self.headers)


@dataclass(frozen=True)
class Chunk:
    """Body bytes written (and flushed) in one piece."""

    data: bytes


@dataclass(frozen=True)
class Sleep:
    """Server-side latency: nothing is written for this long."""

    seconds: float


@dataclass(frozen=True)
class Hang:
    """Never answer: the request stays open until the client gives up or the server stops."""


@dataclass(frozen=True)
class Drop:
    """Close the connection now, without finishing the reply."""


HANG = Hang()
DROP = Drop()

Action: TypeAlias = "Head | Chunk | Sleep | Hang | Drop"
Reply: TypeAlias = "Iterator[Action]"


def drain(reply: Iterator[Action]) -> None:
    """Run the rest of a reply without waiting or writing, as Flowise does after the client is gone."""
    for _ in reply:
        pass
