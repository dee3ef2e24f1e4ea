"""End-to-end fixtures: real Flowise servers, one target of the matrix at a time (see harness.py, targets.py).

``real_flowise`` (session scope) is parametrized over the targets ``3.1.4``, ``3.1.4-queue`` and ``2.2.8``
(``FLOWISE_E2E_TARGETS=3.1.4,2.2.8`` picks a subset); pytest groups the tests by target, so one server
runs at a time. It starts Flowise (installed beforehand by ``python tests/e2e/harness.py install``, never
inside a test's timeout) with the fake LLM and yields a
:class:`harness.RealFlowiseState` (``.version``, ``.mode`` tell tests which Flowise facts to expect). With
``FLOWISE_E2E_BASE_URL`` set, an external server is used instead (``FLOWISE_E2E_API_KEY``,
``FLOWISE_E2E_FLOWS``, ``FLOWISE_E2E_VERSION``, ``FLOWISE_E2E_MODE``) and nothing is started or stopped. If a
server is not installed or cannot start, the fixture fails (never skips) and says what to run.

A test parametrized with a ``flow`` that its target's Flowise cannot have (Agentflow V2 on 2.x) is deselected;
a test that looks such a flow up by name (``real_flowise.flows["agentflow_v2_llm"]``) is skipped with the
reason. Tests using ``queue_rig`` run on queue-mode targets only.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from flows import unsupported_reason  # noqa: E402
from harness import HarnessError, RealFlowiseState, external_state_from_env, start_real_flowise  # noqa: E402
from queue_mode import QueueRig  # noqa: E402
from targets import TARGETS, selected_targets  # noqa: E402

EXTERNAL = "external"


def _target_names() -> list[str]:
    if os.environ.get("FLOWISE_E2E_BASE_URL"):
        return [EXTERNAL]
    return [t.name for t in selected_targets()]


def _version_and_mode(target: str) -> tuple[str, str]:
    if target == EXTERNAL:
        return os.environ.get("FLOWISE_E2E_VERSION", ""), os.environ.get("FLOWISE_E2E_MODE", "normal")
    return TARGETS[target].version, TARGETS[target].mode


class FlowsOnTarget(dict[str, str]):
    """``{name: id}`` that turns a lookup of a flow this Flowise cannot have into a skip that says why."""

    def __init__(self, flows: dict[str, str], version: str) -> None:
        super().__init__(flows)
        self.version = version

    def __missing__(self, name: str) -> str:
        reason = unsupported_reason(name, self.version)
        if reason is not None:
            pytest.skip(reason)
        raise KeyError(name)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark e2e tests (and allow sockets); deselect (target, flow) pairs the target's Flowise cannot have."""
    allow_sockets = config.pluginmanager.hasplugin("socket")
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.e2e)
            if allow_sockets:
                item.add_marker(pytest.mark.enable_socket)
        params: dict[str, Any] = getattr(getattr(item, "callspec", None), "params", {})
        target = params.get("real_flowise")
        if target is not None:
            version, mode = _version_and_mode(str(target))
            flow = params.get("flow")
            fixtures = getattr(item, "fixturenames", ())
            if (isinstance(flow, str) and unsupported_reason(flow, version)) or (
                "queue_rig" in fixtures and mode != "queue"
            ):
                dropped.append(item)
                continue
        keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


_TIMES: dict[str, dict[str, float]] = {}


@pytest.fixture(scope="session", params=_target_names())
def real_flowise(request: pytest.FixtureRequest) -> Iterator[RealFlowiseState]:
    """The running real Flowise of one target: ``.base_url``, ``.api_key``, ``.flows``, ``.version``, ``.mode``."""
    target = str(request.param)
    if target == EXTERNAL:
        external = external_state_from_env()
        assert external is not None
        external.flows = FlowsOnTarget(external.flows, external.version)
        yield external
        return
    started = time.monotonic()
    try:
        state = start_real_flowise(target, ensure_installed=False)  # installing is `harness.py install`'s job
    except HarnessError as exc:
        pytest.fail(f"real Flowise ({target}) could not be installed/started:\n{exc}", pytrace=False)
    state.flows = FlowsOnTarget(state.flows, state.version)
    _TIMES.setdefault(target, {})["start"] = round(time.monotonic() - started, 1)
    try:
        yield state
    finally:
        t0 = time.monotonic()
        state.stop()
        _TIMES[target]["stop"] = round(time.monotonic() - t0, 1)


@pytest.fixture(scope="session")
def _session_queue_rig(real_flowise: RealFlowiseState) -> QueueRig:
    return real_flowise.queue_rig()


@pytest.fixture
def queue_rig(_session_queue_rig: QueueRig) -> Iterator[QueueRig]:
    """Fault injection on the queue-mode target (see :class:`queue_mode.QueueRig`); every fault is undone after
    the test (publishing allowed, workers thawed, dead workers restarted)."""
    try:
        yield _session_queue_rig
    finally:
        _session_queue_rig.restore()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Wall time per target: every test's setup + call + teardown (so the server start and stop count too)."""
    started = time.monotonic()
    yield
    params: dict[str, Any] = getattr(getattr(item, "callspec", None), "params", {})
    target = params.get("real_flowise")
    if target is not None:
        times = _TIMES.setdefault(str(target), {})
        times["wall_with_start"] = round(times.get("wall_with_start", 0.0) + time.monotonic() - started, 1)
        times["tests"] = times.get("tests", 0) + 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _TIMES:
        terminalreporter.write_sep("-", "e2e time per target (seconds)")
        for name, times in _TIMES.items():
            terminalreporter.write_line(f"{name}: {times}")
