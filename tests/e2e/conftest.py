"""End-to-end fixtures: a real Flowise 3.1.4 server (see harness.py).

``real_flowise`` (session scope) installs Flowise if needed, starts it with the fake LLM and yields a
:class:`harness.RealFlowiseState`. With ``FLOWISE_E2E_BASE_URL`` set, an external server is used
instead (``FLOWISE_E2E_API_KEY``, ``FLOWISE_E2E_FLOWS`` = JSON file ``{name: id}``) and nothing is
started or stopped. If the server cannot be installed or started, the fixture fails (never skips).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from harness import HarnessError, RealFlowiseState, external_state_from_env, start_real_flowise  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/e2e as ``e2e`` (and let it use sockets if pytest-socket is on)."""
    allow_sockets = config.pluginmanager.hasplugin("socket")
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.e2e)
            if allow_sockets:
                item.add_marker(pytest.mark.enable_socket)


@pytest.fixture(scope="session")
def real_flowise() -> Iterator[RealFlowiseState]:
    """The running real Flowise: ``.base_url``, ``.api_key``, ``.flows`` {name: id}, ``.fake_llm_url``."""
    external = external_state_from_env()
    if external is not None:
        yield external
        return
    try:
        state = start_real_flowise()
    except HarnessError as exc:
        pytest.fail(f"real Flowise could not be installed/started:\n{exc}", pytrace=False)
    try:
        yield state
    finally:
        state.stop()
