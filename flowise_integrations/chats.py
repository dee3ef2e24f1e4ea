"""One chat id, one running call: the process-wide lease on the chat ids of calls in flight.

Flowise sends a running stream to whoever listens on its ``chatId`` (its SSE streamer and its abort pool are keyed
by it alone), so two concurrent calls sharing one get each other's tokens, and an abort meant for one stops both.
Every prediction the clients make therefore leases its chat for as long as it runs: :func:`lease` hands out the
chat id to send, and when another running call of this process holds that chat on the same server, a fresh chat
id instead, with a :class:`ChatIdInUseWarning` (the session, if any, is kept, so Flowise's memory still is).

Flowise runs a call on its ``chatId``, else on its session id: that is the chat a lease holds. A call with
neither gets a fresh chat id (chosen here, so the run can be aborted and continued). The registry is a plain dict
of ownership tokens: ``setdefault`` takes a chat, only its holder removes it; no lock, no I/O, so a release is
safe in any finalizer or generator close.
"""

from __future__ import annotations

import os
import sys
import uuid
import warnings

__all__ = ["ChatIdInUseWarning", "ChatLease", "in_use", "lease"]

_HELD: dict[tuple[str, str], object] = {}
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class ChatIdInUseWarning(UserWarning):
    """A call asked for a chat id that a running call on the same server holds; it ran on a fresh one."""


class ChatLease:
    """The chat one call sends (``chat_id``, ``session_id``); :meth:`release` frees it when the call ends."""

    __slots__ = ("_hold", "chat_id", "session_id")

    def __init__(
        self, chat_id: str | None, session_id: str | None, hold: tuple[tuple[str, str], object] | None
    ) -> None:
        self.chat_id = chat_id
        self.session_id = session_id
        self._hold = [hold] if hold is not None else []

    @property
    def held(self) -> bool:
        """Whether this lease still holds its chat."""
        return bool(self._hold)

    def release(self) -> None:
        """Free the chat (idempotent; no lock, no I/O: safe from any thread, finalizer or generator close)."""
        try:
            key, token = self._hold.pop()  # list.pop is atomic: one caller wins, the others find it empty
        except IndexError:
            return
        if _HELD.get(key) is token:  # nobody but the holder ever removes or replaces its entry
            _HELD.pop(key, None)

    def __repr__(self) -> str:
        return f"ChatLease(chat_id={self.chat_id!r}, session_id={self.session_id!r}, held={self.held})"


def lease(server: str, chat_id: str | None, session_id: str | None, *, resume: bool = False) -> ChatLease:
    """Take the chat a call on ``server`` runs on (``chat_id``, else ``session_id``) for the length of the call.

    Free: the lease holds it and the ids are sent as asked. Held by a running call: a fresh chat id is sent
    instead (the session kept) and a :class:`ChatIdInUseWarning` says so. ``resume``: the call answers a stopped
    run, which Flowise finds by session (``sessionId``, else ``chatId``), so a fresh chat id keeps the wanted
    chat as the session. Neither id: a fresh chat id, never held by anyone else.
    """
    wanted = chat_id or session_id
    if not wanted:
        return ChatLease(str(uuid.uuid4()), session_id, None)
    key, token = (server, wanted), object()
    if _HELD.setdefault(key, token) is token:
        return ChatLease(chat_id, session_id, (key, token))
    fresh = str(uuid.uuid4())
    session = session_id or (wanted if resume else None)
    kept = f" (session {session!r} kept)" if session else ""
    warnings.warn(
        f"chat id {wanted!r} is in use by another running call to {server}: this call runs on the fresh chat id "
        f"{fresh!r}{kept}, since Flowise would mix the answers of two concurrent calls sharing a chat id",
        ChatIdInUseWarning,
        stacklevel=_caller_level(),
    )
    return ChatLease(fresh, session, None)


def in_use(server: str, chat_id: str) -> bool:
    """Whether a running call of this process holds ``chat_id`` on ``server``."""
    return (server, chat_id) in _HELD


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside this package: the warning points at the caller's code."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level
