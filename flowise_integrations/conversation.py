"""Framework-neutral turns -> Flowise's ``question`` + ``history`` + ``uploads``. Both wings use this.

Semantics:

- Client-side memory (default): the last user turn is the ``question``; every earlier turn goes, in order, as
  ``history`` (``userMessage``/``apiMessage``).
- Server-side memory (``server_memory=True``, i.e. a ``session_id`` is in use): Flowise's memory already holds
  earlier turns, so only the newest user turn is sent.
- System turns are never dropped: Flowise's history has no system role, so each is sent as a ``userMessage``
  history entry, in its place, in both modes (``history`` is not stored by Flowise, so nothing duplicates).
- Images of the last user turn become ``uploads``; images in earlier turns cannot be expressed in Flowise's
  history, and a warning says so.
- ``name`` is not sent: Flowise's history has no speaker field.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from .models import Upload

__all__ = ["ConversationInput", "Turn", "to_prediction_input"]


@dataclass(frozen=True)
class Turn:
    """One conversation turn, as a wing sees it once framework messages are unwrapped."""

    role: Literal["user", "assistant", "system"]
    content: str
    uploads: Sequence[Upload] = ()
    name: str | None = None


@dataclass
class ConversationInput:
    """What a conversation becomes on the wire."""

    question: str
    history: list[dict[str, str]] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)


def to_prediction_input(turns: Sequence[Turn], *, server_memory: bool = False) -> ConversationInput:
    """Split turns into the question (newest user turn), history and uploads."""
    last_user = next((i for i in range(len(turns) - 1, -1, -1) if turns[i].role == "user"), None)
    if last_user is None:
        raise ValueError("a Flowise prediction needs at least one user (human) message")
    trailing = [t for t in turns[last_user + 1 :] if t.role == "assistant"]
    if trailing:
        raise ValueError(
            "the conversation ends with an assistant message; Flowise answers a user question, "
            "so the last non-system message must be from the user"
        )
    question_turn = turns[last_user]
    history: list[dict[str, str]] = []
    for i, turn in enumerate(turns):
        if i == last_user:
            continue
        if turn.role == "system":
            history.append({"role": "userMessage", "content": turn.content})
        elif not server_memory and i < last_user:
            role = "userMessage" if turn.role == "user" else "apiMessage"
            history.append({"role": role, "content": turn.content})
            if turn.uploads:
                warnings.warn(
                    f"{len(turn.uploads)} upload(s) in an earlier {turn.role} turn cannot be sent: Flowise's "
                    "history holds text only; only the last user turn's uploads are sent",
                    UserWarning,
                    stacklevel=3,
                )
    # system turns after the question (rare) were appended above in order; the question stays last
    return ConversationInput(question=question_turn.content, history=history, uploads=list(question_turn.uploads))
