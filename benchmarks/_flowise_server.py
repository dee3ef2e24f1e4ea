"""A FakeFlowise loopback server in its own process (so its work never bills the client being measured)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

_SERVER = r"""
import json, sys, signal
from flowise_integrations.testing import FakeFlowise, FakeFlow
spec = json.loads(sys.argv[1])
fake = FakeFlowise()
ids = {name: fake.add_flow(FakeFlow(**kwargs)) for name, kwargs in spec.items()}
base_url = fake.start()
print(json.dumps({"base_url": base_url, "flows": ids}), flush=True)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
try:
    sys.stdin.read()
finally:
    fake.stop()
"""


@dataclass(frozen=True)
class Server:
    base_url: str
    flows: dict[str, str]


@contextlib.contextmanager
def flowise_server(**flows: dict[str, object]) -> Iterator[Server]:
    """Start FakeFlowise with ``name=FakeFlow kwargs`` flows in a subprocess; yields its URL and flow ids."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, json.dumps(flows)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        yield Server(info["base_url"], info["flows"])
    finally:
        proc.terminate()
        proc.wait(10)
