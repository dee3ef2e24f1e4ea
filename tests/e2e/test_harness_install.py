"""The harness's own logic, without a server: the target matrix, lockfiles, install markers and resumption,
prerequisite messages, flows per version and the ``flows_agents`` hook. Fast; no network, no npm."""

from __future__ import annotations

import dataclasses
import json
import shutil
import types
from pathlib import Path
from typing import Any

import installer
import pytest
from conftest import FlowsOnTarget
from flows import AGENTFLOW_V2_FLOWS, FLOW_NAMES, FlowSpec, _agent_flow_specs, flow_names_for, unsupported_reason
from hypothesis import given
from hypothesis import strategies as st
from installer import Installation
from processes import HarnessError
from targets import RELEASES, TARGETS, parse_targets

# ----------------------------------------------------------------------------------------- targets


def test_default_is_every_target_in_matrix_order() -> None:
    assert [t.name for t in parse_targets(None)] == ["3.1.4", "3.1.4-queue", "2.2.8"]
    assert parse_targets("  ") == parse_targets("")
    assert [t.mode for t in parse_targets(None)] == ["normal", "queue", "normal"]


@given(st.lists(st.sampled_from(list(TARGETS)), min_size=1), st.sampled_from([",", " , ", ",,"]))
def test_a_subset_is_parsed_in_matrix_order(names: list[str], sep: str) -> None:
    chosen = parse_targets(sep.join(names))
    assert [t.name for t in chosen] == [n for n in TARGETS if n in names]


def test_an_unknown_target_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown e2e target\(s\) \['3.0.0'\]; known: 3.1.4, 3.1.4-queue, 2.2.8"):
        parse_targets("3.1.4,3.0.0")


def test_both_queue_and_normal_3_1_4_share_one_install() -> None:
    assert TARGETS["3.1.4"].release is TARGETS["3.1.4-queue"].release


# ---------------------------------------------------------------------------------------- lockfiles


@pytest.mark.parametrize("version", sorted(RELEASES))
def test_the_committed_lockfile_matches_the_package_json(version: str) -> None:
    """``npm ci`` refuses a lockfile out of sync with package.json: the root entry must list the same deps."""
    release = RELEASES[version]
    lock = json.loads(release.lockfile.read_text())
    assert lock["lockfileVersion"] == 3
    assert lock["packages"][""]["dependencies"] == release.package_json()["dependencies"]
    flowise = lock["packages"]["node_modules/flowise"]
    assert flowise["version"] == version and flowise["integrity"].startswith("sha512-")


def test_2_2_8_gets_the_redis_module_it_requires_without_declaring_it() -> None:
    lock = json.loads(RELEASES["2.2.8"].lockfile.read_text())["packages"]
    redis = lock["node_modules/redis"]
    assert redis["version"].startswith("4.") and not redis.get("extraneous")


# -------------------------------------------------------------------------------------------- markers


def _fake_install(tmp_path: Path) -> Installation:
    """A 2.2.8 install in ``tmp_path`` made of stand-ins: a node that prints its version, bin/run, lockfile."""
    release = dataclasses.replace(RELEASES["2.2.8"], node_from_npm_always=True)
    inst = Installation.of(release, tmp_path)
    node = inst.npm_node_pkg / "bin" / "node"
    node.parent.mkdir(parents=True)
    node.write_text(f"#!/bin/sh\necho v{release.node}\n")
    node.chmod(0o755)
    inst.flowise_run.parent.mkdir(parents=True)
    inst.flowise_run.write_text("")
    (inst.root / "package-lock.json").write_bytes(release.lockfile.read_bytes())
    inst.marker.write_text(json.dumps({**inst.expected(), "node_bin": str(node)}))
    return inst


def test_an_install_counts_only_with_its_marker_lockfile_and_node(tmp_path: Path) -> None:
    inst = _fake_install(tmp_path)
    assert inst.is_installed()
    (inst.root / "package-lock.json").write_text("{}")  # installed from another lockfile
    assert not inst.is_installed()
    inst = _fake_install(tmp_path / "again")
    inst.marker.write_text(json.dumps({**inst.expected(), "flowise": "2.2.7"}))
    assert not inst.is_installed()
    inst.marker.unlink()  # a killed install never wrote it
    assert not inst.is_installed()


def test_a_killed_install_resumes_after_the_dependency_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = _fake_install(tmp_path)
    calls: list[list[str]] = []

    def fake_run_logged(cmd: list[str], **kwargs: Any) -> float:
        calls.append(cmd)
        (inst.root / "node_modules" / "flowise").mkdir(parents=True, exist_ok=True)
        return 12.5

    monkeypatch.setattr(installer, "run_logged", fake_run_logged)
    env: dict[str, str] = {}
    assert installer._npm_dependencies(inst, env, "npm") == 12.5
    assert calls == [["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"]]
    assert installer._npm_dependencies(inst, env, "npm") == 12.5  # the step marker: npm is not run again
    assert len(calls) == 1


def test_missing_prerequisites_are_named_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda tool, **kw: None if tool in ("npm", "g++") else "/bin/x")
    monkeypatch.setattr(installer, "_can_apt", lambda: False)
    with pytest.raises(HarnessError) as info:
        installer.ensure_tools(installer.PREREQUISITES, why="installing flowise", log=tmp_path / "log")
    message = str(info.value)
    assert "\n" not in message
    assert message == (
        "installing flowise needs npm, g++ on PATH: install them first (Debian/Ubuntu: sudo apt-get install g++ npm)"
    )


# -------------------------------------------------------------------------------------------- flows


def test_2_x_has_no_agentflow_v2_flows() -> None:
    assert set(flow_names_for("2.2.8")) == set(FLOW_NAMES) - AGENTFLOW_V2_FLOWS
    assert flow_names_for("3.1.4") == FLOW_NAMES
    assert flow_names_for("external") == FLOW_NAMES  # unknown version: assume everything
    reason = unsupported_reason("agentflow_v2_llm", "2.2.8")
    assert reason is not None and "Agentflow V2" in reason and "3.0" in reason


def test_looking_up_a_flow_a_version_cannot_have_skips_with_the_reason() -> None:
    flows = FlowsOnTarget({"llm_chain": "id-1"}, "2.2.8")
    assert flows["llm_chain"] == "id-1"
    with pytest.raises(pytest.skip.Exception, match=r"Flowise 2\.2\.8 has no Agentflow V2"):
        flows["agentflow_v2_llm"]
    with pytest.raises(KeyError):
        flows["no_such_flow"]


def test_flows_agents_specs_are_built_with_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def build_agent_flows(node_defs: Any, *, credential_id: str, llm_base_url: str, version: str) -> list[FlowSpec]:
        seen.update(credential_id=credential_id, llm_base_url=llm_base_url, version=version)
        return [FlowSpec("multi_agent", "MULTIAGENT", {"nodes": [], "edges": []})]

    module = types.ModuleType("flows_agents")
    module.build_agent_flows = build_agent_flows  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "flows_agents", module)
    specs = _agent_flow_specs(lambda name: {}, credential_id="cred", llm_base_url="http://llm", version="2.2.8")
    assert [s.name for s in specs] == ["multi_agent"]
    assert seen == {"credential_id": "cred", "llm_base_url": "http://llm", "version": "2.2.8"}


def test_without_flows_agents_there_are_no_extra_flows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "flows_agents", None)  # import raises ModuleNotFoundError
    assert _agent_flow_specs(lambda name: {}, credential_id="c", llm_base_url="u", version="3.1.4") == []
