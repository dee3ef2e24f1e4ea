#!/usr/bin/env python3
"""Run a real Flowise 3.1.4 server on loopback for end-to-end tests (stdlib only).

CLI::

    python tests/e2e/harness.py install   # Node 24 + flowise@3.1.4 into the cache dir (idempotent)
    python tests/e2e/harness.py start     # fake LLM + Flowise + bootstrap; prints the JSON state
    python tests/e2e/harness.py status    # is the CLI-started server alive?
    python tests/e2e/harness.py stop      # stop what `start` started, remove its run dir
    python tests/e2e/harness.py up        # install (if needed) + start + one prediction per flow

Python::

    with start_real_flowise() as flowise:          # -> RealFlowiseState
        flowise.base_url, flowise.api_key, flowise.flows["llm_chain"], flowise.fake_llm_url

The install lives outside the repo, in ``$FLOWISE_E2E_HOME`` (default
``~/.cache/flowise-integrations/e2e``) under ``flowise-3.1.4/``. Each start gets a fresh run dir
(database, secrets, blob storage, logs, HOME) under ``<home>/runs/``, removed again by ``stop``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import fcntl
import hashlib
import http.cookiejar
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # sibling modules when run as a script or imported by conftest
    sys.path.insert(0, str(HERE))

import flows as flow_builders  # noqa: E402

FLOWISE_VERSION = "3.1.4"
NODE_VERSION = "24.9.0"
BETTER_SQLITE3_OVERRIDE = "^12.4.1"
PING_TIMEOUT_S = 90.0
STOP_GRACE_S = 10.0
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Passw0rd!x"
API_KEY_NAME = "e2e-key"
CREDENTIAL_NAME = "fake-openai"
FAKE_OPENAI_API_KEY = "sk-fake-e2e"  # the fake LLM accepts anything; nothing secret
MARKER_NAME = ".install-ok.json"
PR_SET_PDEATHSIG = 1


class HarnessError(RuntimeError):
    """The real Flowise server could not be installed, started or bootstrapped."""


def _say(message: str) -> None:
    print(f"[e2e-harness] {message}", file=sys.stderr, flush=True)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def e2e_home() -> Path:
    """Root of everything the harness keeps outside the repo."""
    env = os.environ.get("FLOWISE_E2E_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "flowise-integrations" / "e2e"


# --------------------------------------------------------------------------------------------- install


@dataclasses.dataclass(frozen=True)
class Installation:
    """Paths of one Node 24 + flowise install (``<home>/flowise-<version>/``)."""

    root: Path

    @classmethod
    def default(cls) -> Installation:
        return cls(e2e_home() / f"flowise-{FLOWISE_VERSION}")

    @property
    def node_pkg(self) -> Path:
        return self.root / "node24" / "package"

    @property
    def node_bin(self) -> Path:
        return self.node_pkg / "bin" / "node"

    @property
    def flowise_run(self) -> Path:
        return self.root / "node_modules" / "flowise" / "bin" / "run"

    @property
    def preload(self) -> Path:
        return self.root / "offline_tiktoken.js"

    @property
    def marker(self) -> Path:
        return self.root / MARKER_NAME

    @property
    def log(self) -> Path:
        return self.root / "install.log"

    def package_json(self) -> str:
        """The exact package.json the install is made from."""
        manifest = {
            "name": "flowise-integrations-e2e",
            "version": "0.0.0",
            "private": True,
            "description": "Real Flowise for flowise-integrations end-to-end tests",
            "dependencies": {"flowise": FLOWISE_VERSION},
            # 9.x (peer dep of mem0ai/@langchain/community/typeorm) does not build against Node 24.
            "overrides": {"better-sqlite3": BETTER_SQLITE3_OVERRIDE},
        }
        return json.dumps(manifest, indent=2) + "\n"

    def expected_marker(self) -> dict[str, str]:
        return {
            "flowise": FLOWISE_VERSION,
            "node": NODE_VERSION,
            "package_json_sha256": hashlib.sha256(self.package_json().encode()).hexdigest(),
        }

    def is_installed(self) -> bool:
        """True when the marker says exactly this version installed OK and the binaries exist."""
        try:
            marker = json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return False
        expected = self.expected_marker()
        return (
            all(marker.get(k) == v for k, v in expected.items())
            and self.node_bin.is_file()
            and self.flowise_run.is_file()
        )

    def tool_env(self) -> dict[str, str]:
        """Environment for npm/node commands: Node 24 first on PATH, headers, private npm cache."""
        env = dict(os.environ)
        env.update(
            PATH=f"{self.node_pkg / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            npm_config_nodedir=str(self.node_pkg),  # node-gyp: Node 24 headers (~/.npmrc may say /usr)
            npm_config_cache=str(self.root / ".npm-cache"),
            npm_config_audit="false",
            npm_config_fund="false",
            npm_config_update_notifier="false",
            npm_config_loglevel="warn",
            JOBS=str(os.cpu_count() or 1),  # node-gyp parallel build
            PUPPETEER_SKIP_DOWNLOAD="1",
            PUPPETEER_SKIP_CHROMIUM_DOWNLOAD="true",
            PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1",
        )
        return env


def _node_package_name() -> str:
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())
    if sys.platform != "linux" or arch is None:
        raise HarnessError(f"unsupported platform {sys.platform}/{platform.machine()} (needs linux x64/arm64)")
    return f"node-linux-{arch}@{NODE_VERSION}"


def _run_logged(cmd: list[str], *, cwd: Path, env: Mapping[str, str], log: Path, what: str) -> float:
    """Run ``cmd`` appending its output to ``log``; raise HarnessError with the log tail on failure."""
    _say(f"{what}: {' '.join(cmd)}  (log: {log})")
    started = time.monotonic()
    with log.open("a") as fh:
        fh.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {what}: {' '.join(cmd)}\n")
        fh.flush()
        try:
            rc = subprocess.run(
                cmd, cwd=cwd, env=dict(env), stdout=fh, stderr=subprocess.STDOUT, check=False
            ).returncode
        except OSError as exc:
            raise HarnessError(f"{what}: cannot run {cmd[0]}: {exc}") from exc
    elapsed = time.monotonic() - started
    if rc != 0:
        raise HarnessError(f"{what} failed (exit {rc}, {elapsed:.0f} s). Last lines of {log}:\n{_tail(log)}")
    _say(f"{what}: done in {elapsed:.1f} s")
    return elapsed


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _install_node(inst: Installation, env: Mapping[str, str]) -> None:
    if inst.node_bin.is_file():
        version = subprocess.run([str(inst.node_bin), "--version"], capture_output=True, text=True, check=False)
        if version.stdout.strip() == f"v{NODE_VERSION}":
            _say(f"node: reusing {inst.node_bin} (v{NODE_VERSION})")
            return
    node_dir = inst.node_pkg.parent
    shutil.rmtree(node_dir, ignore_errors=True)
    node_dir.mkdir(parents=True)
    npm = shutil.which("npm")
    if npm is None:
        raise HarnessError("npm is not on PATH (needed once to fetch Node 24 from the npm registry)")
    _run_logged([npm, "pack", _node_package_name()], cwd=node_dir, env=env, log=inst.log, what="npm pack node")
    tarballs = list(node_dir.glob("*.tgz"))
    if len(tarballs) != 1:
        raise HarnessError(f"npm pack left {len(tarballs)} tarballs in {node_dir}")
    _run_logged(["tar", "xzf", tarballs[0].name], cwd=node_dir, env=env, log=inst.log, what="untar node")
    tarballs[0].unlink()
    if not inst.node_bin.is_file():
        raise HarnessError(f"{inst.node_bin} missing after unpacking {tarballs[0].name}")


def install_preload(inst: Installation) -> None:
    """Copy the offline tiktoken preload next to node_modules (refreshed on every install/start)."""
    data = (HERE / "offline_tiktoken.js").read_bytes()
    if not inst.preload.is_file() or inst.preload.read_bytes() != data:
        _write_atomic(inst.preload, data)


def install(inst: Installation | None = None, *, force: bool = False) -> Installation:
    """Install Node 24 and flowise (exact version) unless the marker says it is already done."""
    inst = inst or Installation.default()
    inst.root.mkdir(parents=True, exist_ok=True)
    with (inst.root / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent sessions wait for one installer
        if not force and inst.is_installed():
            install_preload(inst)
            _say(f"flowise {FLOWISE_VERSION}: already installed in {inst.root}")
            return inst
        started = time.monotonic()
        _say(f"installing flowise {FLOWISE_VERSION} with node {NODE_VERSION} into {inst.root}")
        inst.marker.unlink(missing_ok=True)
        env = inst.tool_env()
        _install_node(inst, env)
        npm = shutil.which("npm", path=env["PATH"])
        if npm is None:
            raise HarnessError("npm is not on PATH")
        shutil.rmtree(inst.root / "node_modules", ignore_errors=True)  # no half-finished leftovers
        (inst.root / "package-lock.json").unlink(missing_ok=True)
        (inst.root / "package.json").write_text(inst.package_json())
        # Several install scripts fetch from GitHub (faiss-node, sharp, sqlite3 prebuilds...): skip all,
        # then build the one native module Flowise needs, sqlite3, from source against Node 24.
        t_install = _run_logged(
            [npm, "install", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=inst.root,
            env=env,
            log=inst.log,
            what="npm install",
        )
        t_rebuild = _run_logged(
            [npm, "rebuild", "sqlite3"], cwd=inst.root, env=env, log=inst.log, what="npm rebuild sqlite3"
        )
        check = "require('sqlite3'); console.log(require('flowise/package.json').version)"
        probe = subprocess.run(
            [str(inst.node_bin), "-e", check], cwd=inst.root, env=env, capture_output=True, text=True, check=False
        )
        if probe.returncode != 0 or probe.stdout.strip() != FLOWISE_VERSION:
            raise HarnessError(f"install check failed (rc {probe.returncode}): {probe.stdout}{probe.stderr}")
        install_preload(inst)
        total = time.monotonic() - started
        marker = {
            **inst.expected_marker(),
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": {
                "total": round(total, 1),
                "npm_install": round(t_install, 1),
                "npm_rebuild_sqlite3": round(t_rebuild, 1),
            },
        }
        _write_atomic(inst.marker, (json.dumps(marker, indent=2) + "\n").encode())
        _say(
            f"installed flowise {FLOWISE_VERSION} in {total:.1f} s "
            f"(npm install {t_install:.1f} s, sqlite3 build {t_rebuild:.1f} s)"
        )
        return inst


# ----------------------------------------------------------------------------------------- processes


def _proc_start_time(pid: int) -> str | None:
    """Kernel start time of ``pid`` (guards against signalling a recycled pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _proc_gone(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


@dataclasses.dataclass(frozen=True)
class ManagedProcess:
    """A process the harness started as the leader of its own process group."""

    name: str
    pid: int
    start_time: str | None

    def alive(self) -> bool:
        return not _proc_gone(self.pid) and _proc_start_time(self.pid) == self.start_time

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds."""
        current = _proc_start_time(self.pid)
        if current is not None and current != self.start_time:
            return  # the pid was recycled: not ours any more
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if _proc_gone(self.pid):
                    # the leader is gone; make sure no member of its group lingers
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.pid, signal.SIGKILL)
                    return
                time.sleep(0.1)


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM this child when the process that started it dies (Linux prctl)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(
    name: str, cmd: list[str], *, env: Mapping[str, str], cwd: Path, out: Path, die_with_parent: bool
) -> ManagedProcess:
    with out.open("ab") as fh:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
    return ManagedProcess(name, proc.pid, _proc_start_time(proc.pid))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------------- state


@dataclasses.dataclass
class RealFlowiseState:
    """A running (or external) Flowise: what tests need, plus what ``stop()`` needs.

    Usable as a context manager; ``stop()`` is a no-op for an external server.
    """

    base_url: str
    api_key: str
    flows: dict[str, str]
    fake_llm_url: str | None = None
    api_key_id: str | None = None
    credential_id: str | None = None
    run_dir: str | None = None
    fake_llm_log: str | None = None
    flowise_log: str | None = None
    processes: list[ManagedProcess] = dataclasses.field(default_factory=list)
    flowise_version: str = FLOWISE_VERSION
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    external: bool = False  # a server we did not start (FLOWISE_E2E_BASE_URL)

    @property
    def pids(self) -> dict[str, int]:
        return {p.name: p.pid for p in self.processes}

    def flow_id(self, name: str) -> str:
        return self.flows[name]

    def prediction_url(self, name: str) -> str:
        return f"{self.base_url}/api/v1/prediction/{self.flows[name]}"

    def fake_llm_requests(self) -> list[dict[str, Any]]:
        """Requests the fake LLM has logged so far (empty for an external server)."""
        if not self.fake_llm_log or not Path(self.fake_llm_log).is_file():
            return []
        return [json.loads(line) for line in Path(self.fake_llm_log).read_text().splitlines() if line.strip()]

    def alive(self) -> bool:
        return bool(self.processes) and all(p.alive() for p in self.processes)

    def stop(self, *, keep_run_dir: bool = False) -> None:
        """Terminate exactly the process groups we started, then remove the run dir."""
        for proc in self.processes:  # flowise first, then the fake LLM
            proc.stop()
        self.processes = []
        if self.run_dir and not keep_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        self.run_dir = None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["pids"] = self.pids
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RealFlowiseState:
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in fields}
        kwargs["processes"] = [ManagedProcess(**p) for p in data.get("processes", [])]
        kwargs.setdefault("api_key", "")
        return cls(**kwargs)

    def __enter__(self) -> RealFlowiseState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------- HTTP


class FlowiseAdmin:
    """Minimal JSON client for the admin REST API (cookie login, then Bearer API key)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key: str | None = None
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        internal: bool = False,
        timeout: float = 60.0,
        ok: tuple[int, ...] = (200, 201),
    ) -> Any:
        """Send a request; return the decoded body or raise HarnessError on an unexpected status."""
        status, payload = self.raw(method, path, body, internal=internal, timeout=timeout)
        if status not in ok:
            raise HarnessError(f"{method} {path} -> HTTP {status}: {str(payload)[:500]}")
        return payload

    def raw(
        self, method: str, path: str, body: Any = None, *, internal: bool = False, timeout: float = 60.0
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if internal:
            req.add_header("x-request-from", "internal")  # cookie (JWT) auth, as the UI does
        elif self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with self._opener.open(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        text = raw.decode(errors="replace")
        try:
            return status, json.loads(text) if text[:1] in "{[" and text else text
        except ValueError:
            return status, text

    def node_definition(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/api/v1/nodes/{name}")
        return result


def wait_for_ping(base_url: str, *, timeout: float = PING_TIMEOUT_S, alive: Callable[[], bool] = lambda: True) -> float:
    """Poll ``GET /api/v1/ping`` until it says pong; return the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(f"{base_url}/api/v1/ping", timeout=2) as resp:
                if resp.status == 200 and resp.read().strip() == b"pong":
                    return time.monotonic() - started
        except (OSError, urllib.error.URLError):
            pass
        if not alive():
            raise HarnessError("flowise exited before answering /api/v1/ping")
        time.sleep(0.25)
    raise HarnessError(f"flowise did not answer /api/v1/ping within {timeout:.0f} s")


def bootstrap(base_url: str, *, fake_llm_base: str) -> dict[str, Any]:
    """Admin account, API key, OpenAI credential and every test flow on a fresh server."""
    admin = FlowiseAdmin(base_url)
    admin.call(
        "POST",
        "/api/v1/account/register",
        {"user": {"name": "admin", "email": ADMIN_EMAIL, "credential": ADMIN_PASSWORD}},
    )
    admin.call("POST", "/api/v1/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    # every permission an API key can have on this (open source) platform
    catalogue = admin.call("GET", "/api/v1/auth/permissions/API_KEY", internal=True)
    permissions = [p["key"] for group in catalogue.values() for p in group if p.get("isOpenSource")]
    created = admin.call("POST", "/api/v1/apikey", {"keyName": API_KEY_NAME, "permissions": permissions}, internal=True)
    key = next(k for k in created if k.get("keyName") == API_KEY_NAME)
    admin.api_key = key["apiKey"]
    credential = admin.call(
        "POST",
        "/api/v1/credentials",
        {"name": CREDENTIAL_NAME, "credentialName": "openAIApi", "plainDataObj": {"openAIApiKey": FAKE_OPENAI_API_KEY}},
    )
    specs = flow_builders.build_flows(admin.node_definition, credential_id=credential["id"], llm_base_url=fake_llm_base)
    flow_ids: dict[str, str] = {}
    for spec in specs:
        row = admin.call("POST", "/api/v1/chatflows", spec.create_body(api_key_id=key["id"]))
        flow_ids[spec.name] = row["id"]
    return {"api_key": key["apiKey"], "api_key_id": key["id"], "credential_id": credential["id"], "flows": flow_ids}


# ------------------------------------------------------------------------------------------- start


def _flowise_env(inst: Installation, run: Path, port: int) -> dict[str, str]:
    env = {k: os.environ[k] for k in ("LANG", "LC_ALL", "TZ") if k in os.environ}
    for sub in ("home", "db", "secrets", "storage", "logs", "tmp"):
        (run / sub).mkdir(exist_ok=True)
    env.update(
        PATH=f"{inst.node_pkg / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        HOME=str(run / "home"),  # every default ~/.flowise path lands in the run dir
        TMPDIR=str(run / "tmp"),
        PORT=str(port),
        HOST="127.0.0.1",  # passed to server.listen: loopback only
        APP_URL=f"http://127.0.0.1:{port}",
        DATABASE_TYPE="sqlite",
        DATABASE_PATH=str(run / "db"),
        SECRETKEY_PATH=str(run / "secrets"),
        APIKEY_PATH=str(run / "secrets"),
        BLOB_STORAGE_PATH=str(run / "storage"),
        STORAGE_TYPE="local",
        LOG_PATH=str(run / "logs"),
        LOG_LEVEL="info",
        DISABLE_FLOWISE_TELEMETRY="true",
        HTTP_SECURITY_CHECK="false",  # the default deny-list blocks 127.0.0.0/8 (our fake LLM)
        SECURE_COOKIES="false",
        JWT_AUTH_TOKEN_SECRET=secrets.token_hex(32),
        JWT_REFRESH_TOKEN_SECRET=secrets.token_hex(32),
        EXPRESS_SESSION_SECRET=secrets.token_hex(32),
        TOKEN_HASH_SECRET=secrets.token_hex(32),
        NODE_OPTIONS=f"--max-old-space-size=4096 --require {inst.preload}",
    )
    return env


def _prune_stale_runs(runs: Path) -> None:
    """Remove run dirs left behind by killed sessions (their processes are gone)."""
    for run in runs.iterdir():
        try:
            state = RealFlowiseState.from_json(json.loads((run / "state.json").read_text()))
            stale = not any(p.alive() for p in state.processes)
        except (OSError, ValueError, TypeError):
            stale = time.time() - run.stat().st_mtime > 3600  # never got a state file
        if stale:
            shutil.rmtree(run, ignore_errors=True)


def _wait_for_file(path: Path, proc: ManagedProcess, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and (text := path.read_text().strip()):
            return text
        if not proc.alive():
            break
        time.sleep(0.05)
    raise HarnessError(f"{proc.name} did not write {path.name} within {timeout:.0f} s")


def start_real_flowise(
    inst: Installation | None = None,
    *,
    ensure_installed: bool = True,
    token_delay: float | None = None,
    die_with_parent: bool = True,
) -> RealFlowiseState:
    """Start the fake LLM and Flowise on free loopback ports and bootstrap them.

    Returns the state (a context manager: leaving it stops everything). With ``die_with_parent`` the
    servers also get SIGTERM if this process dies without stopping them. On failure everything started
    so far is stopped and HarnessError explains why (with the Flowise log tail).
    """
    inst = inst or Installation.default()
    if ensure_installed:
        install(inst)
    elif not inst.is_installed():
        raise HarnessError(f"flowise {FLOWISE_VERSION} is not installed in {inst.root}: run `harness.py install`")
    install_preload(inst)
    runs = e2e_home() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    _prune_stale_runs(runs)
    run = Path(tempfile.mkdtemp(prefix=time.strftime("run-%Y%m%d-%H%M%S-"), dir=runs))
    state = RealFlowiseState(
        base_url="",
        api_key="",
        flows={},
        run_dir=str(run),
        fake_llm_log=str(run / "fake_llm_requests.jsonl"),
        flowise_log=str(run / "flowise.out"),
    )
    started = time.monotonic()
    try:
        llm_cmd = [
            sys.executable,
            str(HERE / "fake_llm.py"),
            "--port",
            "0",
            "--port-file",
            str(run / "fake_llm.port"),
            "--log",
            state.fake_llm_log or "",
        ]
        if token_delay is not None:
            llm_cmd += ["--token-delay", str(token_delay)]
        llm = _spawn(
            "fake_llm", llm_cmd, env=os.environ, cwd=run, out=run / "fake_llm.out", die_with_parent=die_with_parent
        )
        state.processes.append(llm)
        llm_port = int(_wait_for_file(run / "fake_llm.port", llm, 10.0))
        state.fake_llm_url = f"http://127.0.0.1:{llm_port}/v1"

        port = _free_port()
        flowise = _spawn(
            "flowise",
            [str(inst.node_bin), str(inst.flowise_run), "start"],
            env=_flowise_env(inst, run, port),
            cwd=run,
            out=run / "flowise.out",
            die_with_parent=die_with_parent,
        )
        state.processes.insert(0, flowise)  # stop flowise before the fake LLM
        state.base_url = f"http://127.0.0.1:{port}"
        state.timings["ping"] = round(wait_for_ping(state.base_url, alive=flowise.alive), 2)
        t_boot = time.monotonic()
        boot = bootstrap(state.base_url, fake_llm_base=state.fake_llm_url)
        state.timings["bootstrap"] = round(time.monotonic() - t_boot, 2)
        state.api_key, state.api_key_id = boot["api_key"], boot["api_key_id"]
        state.credential_id, state.flows = boot["credential_id"], boot["flows"]
    except BaseException as exc:
        log_tail = _tail(run / "flowise.out", 60)
        state.stop(keep_run_dir=os.environ.get("FLOWISE_E2E_KEEP_RUN") == "1")
        if isinstance(exc, HarnessError):
            raise HarnessError(f"{exc}\n--- flowise log tail ---\n{log_tail}") from exc
        if isinstance(exc, Exception):
            raise HarnessError(f"start failed: {exc!r}\n--- flowise log tail ---\n{log_tail}") from exc
        raise
    state.timings["start_total"] = round(time.monotonic() - started, 2)
    (run / "state.json").write_text(json.dumps(state.to_json(), indent=2) + "\n")
    return state


def external_state_from_env(env: Mapping[str, str] = os.environ) -> RealFlowiseState | None:
    """The server named by ``FLOWISE_E2E_BASE_URL``, if set; it is never started or stopped by us.

    ``FLOWISE_E2E_API_KEY`` is its API key; ``FLOWISE_E2E_FLOWS`` a JSON file with ``{name: id}`` or a
    whole state as printed by ``harness.py start`` (then its key and fake LLM log are used too).
    """
    base_url = env.get("FLOWISE_E2E_BASE_URL")
    if not base_url:
        return None
    data: dict[str, Any] = {}
    if env.get("FLOWISE_E2E_FLOWS"):
        data = json.loads(Path(env["FLOWISE_E2E_FLOWS"]).read_text())
    if "flows" not in data:
        data = {"flows": data, "flowise_version": env.get("FLOWISE_E2E_VERSION", "external")}
    state = RealFlowiseState.from_json(
        {**data, "base_url": base_url.rstrip("/"), "processes": [], "run_dir": None, "external": True}
    )
    state.api_key = env.get("FLOWISE_E2E_API_KEY") or state.api_key
    state.fake_llm_url = env.get("FLOWISE_E2E_FAKE_LLM_URL") or state.fake_llm_url
    return state


# ------------------------------------------------------------------------------------------- verify


def predict(
    state: RealFlowiseState, flow: str, body: Mapping[str, Any], *, with_key: bool | None = None, timeout: float = 60.0
) -> tuple[int, str, bytes]:
    """One prediction with urllib: (status, content type, body bytes)."""
    req = urllib.request.Request(state.prediction_url(flow), data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    if with_key if with_key is not None else flow in flow_builders.PROTECTED_FLOWS:
        req.add_header("Authorization", f"Bearer {state.api_key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def verify_flows(state: RealFlowiseState) -> dict[str, str]:
    """One non-streaming prediction per flow; return {flow: answer text}; raise on a bad answer."""
    answers: dict[str, str] = {}
    for name in state.flows:
        question = flow_builders.SAMPLE_QUESTIONS.get(name, "hi")
        status, _, raw = predict(state, name, {"question": question})
        try:
            text = json.loads(raw)["text"]
        except (ValueError, KeyError, TypeError):
            text = None
        expected = flow_builders.EXPECTED_ANSWERS.get(name)
        if status != 200 or not isinstance(text, str) or not text or (expected and text != expected):
            raise HarnessError(f"flow {name}: HTTP {status} {raw[:300]!r}")
        answers[name] = text
    return answers


# ------------------------------------------------------------------------------------------- CLI


def _cli_state_file() -> Path:
    return e2e_home() / "cli-state.json"


def load_cli_state() -> RealFlowiseState | None:
    try:
        return RealFlowiseState.from_json(json.loads(_cli_state_file().read_text()))
    except (OSError, ValueError):
        return None


def _print_json(data: Any, out: TextIO = sys.stdout) -> None:
    out.write(json.dumps(data, indent=2) + "\n")
    out.flush()


def _cmd_start(args: argparse.Namespace, *, ensure_installed: bool, verify: bool) -> int:
    existing = load_cli_state()
    if existing is not None and existing.alive():
        _say(f"already running (pids {existing.pids}); `harness.py stop` first")
        _print_json(existing.to_json())
        return 1
    if existing is not None:
        existing.stop()
    state = start_real_flowise(ensure_installed=ensure_installed, token_delay=args.token_delay, die_with_parent=False)
    _write_atomic(_cli_state_file(), (json.dumps(state.to_json(), indent=2) + "\n").encode())
    _say(
        f"flowise up at {state.base_url} (ping {state.timings['ping']} s, "
        f"bootstrap {state.timings['bootstrap']} s, total {state.timings['start_total']} s)"
    )
    if verify:
        t0 = time.monotonic()
        for name, text in verify_flows(state).items():
            _say(f"  {name}: {text!r}")
        _say(f"all {len(state.flows)} flows answered in {time.monotonic() - t0:.1f} s")
    _print_json(state.to_json())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_install = sub.add_parser("install", help="install Node 24 + flowise into the cache dir")
    p_install.add_argument("--force", action="store_true", help="reinstall even if the marker is OK")
    for name, help_ in (("start", "start + bootstrap (needs install)"), ("up", "install + start + verify")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--token-delay", type=float, default=None, help="fake LLM seconds between tokens")
    sub.add_parser("stop", help="stop the server started by `start`/`up`")
    sub.add_parser("status", help="print the state of the CLI-started server")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            inst = install(force=args.force)
            _print_json({"root": str(inst.root), **json.loads(inst.marker.read_text())})
            return 0
        if args.command in ("start", "up"):
            return _cmd_start(args, ensure_installed=args.command == "up", verify=args.command == "up")
        state = load_cli_state()
        if args.command == "stop":
            if state is None:
                _say("nothing to stop")
                return 0
            state.stop()
            _cli_state_file().unlink(missing_ok=True)
            _say(f"stopped {state.base_url}")
            return 0
        if state is None:
            _say("not running")
            return 3
        alive = state.alive()
        _print_json({**state.to_json(), "alive": alive})
        return 0 if alive else 3
    except HarnessError as exc:
        _say(f"ERROR: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
