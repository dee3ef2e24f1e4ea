"""What differs between the Flowise versions the emulator can play (``FakeFlowise(version=...)``).

Each fact names the release that introduced it (read from Flowise's source at the tags, and checked against the
real 2.2.8 and 3.1.4 captures in ``tests/fixtures``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["ServerProfile"]

_OLD_KEY_ERROR: Final = "401 Invalid model key or Incorrect local model configuration."
_NEW_KEY_ERROR: Final = "401 Unauthorized \u2013 check your API key and ensure it has access to the requested model."


def _parse(version: str) -> tuple[int, int, int]:
    parts = [int(p) for p in re.findall(r"\d+", version)[:3]]
    while len(parts) < 3:
        parts.append(0)
    return parts[0], parts[1], parts[2]


@dataclass(frozen=True)
class ServerProfile:
    """The per-version protocol facts of one Flowise release."""

    version: str

    @property
    def release(self) -> tuple[int, int, int]:
        """``(major, minor, patch)``."""
        return _parse(self.version)

    def at_least(self, major: int, minor: int = 0, patch: int = 0) -> bool:
        """Whether this release is ``major.minor.patch`` or later."""
        return self.release >= (major, minor, patch)

    @property
    def colon_on_every_event(self) -> bool:
        """3.1.2+: ``end``/``error``/``abort`` are framed ``message:`` like the rest (before: ``message``)."""
        return self.at_least(3, 1, 2)

    @property
    def heartbeats(self) -> bool:
        """3.1.2+: a ``:heartbeat`` comment every 30 s on open streams (2.x and 3.0 stay silent)."""
        return self.at_least(3, 1, 2)

    @property
    def action_in_metadata(self) -> bool:
        """3.1.2+: the ``metadata`` event carries ``action`` (2.x sends it only as an ``action`` event)."""
        return self.at_least(3, 1, 2)

    @property
    def not_found_is_404(self) -> bool:
        """3.0.13+: an unknown flow is 404 and a malformed id 400; before, both are a 500 from getChatflowById."""
        return self.at_least(3, 0, 13)

    @property
    def frame_headers(self) -> bool:
        """3.1.3+: ``Content-Security-Policy: frame-ancestors 'self'`` and ``X-Frame-Options`` by default."""
        return self.at_least(3, 1, 3)

    @property
    def abort_is_public(self) -> bool:
        """3.1.0+: ``PUT /chatmessage/abort`` is whitelisted; before, it needs the workspace API key."""
        return self.at_least(3, 1, 0)

    @property
    def internal_header_passes_gate(self) -> bool:
        """2.x: ``x-request-from: internal`` lets any request through the API-key gate (3.x uses a session)."""
        return not self.at_least(3)

    @property
    def paged_lists(self) -> bool:
        """3.0.4+: ``GET /chatflows?page=&limit=`` answers ``{data, total}``; before, paging is ignored."""
        return self.at_least(3, 0, 4)

    @property
    def key_error_rewrite(self) -> str:
        """What an upstream ``401 Incorrect API key provided`` error is rewritten to."""
        return _NEW_KEY_ERROR if self.at_least(3, 1) else _OLD_KEY_ERROR

    @property
    def workspaces(self) -> bool:
        """3.x rows carry ``workspaceId``; chatflows also ``textToSpeech`` (2.x has neither)."""
        return self.at_least(3)

    @property
    def mcp_columns(self) -> bool:
        """3.1.3+: chatflow rows carry ``mcpServerConfig`` and ``webhookSecretConfigured``."""
        return self.at_least(3, 1, 3)
