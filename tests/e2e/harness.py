#!/usr/bin/env python3
"""Run real Flowise servers on loopback for end-to-end tests: a matrix of versions and modes (stdlib only).

Targets (``targets.py``): ``3.1.4`` (Node 24 from npm), ``3.1.4-queue`` (the same install in queue mode:
Redis + Postgres + main server + two workers) and ``2.2.8`` (the machine's Node 20).

CLI::

    python tests/e2e/harness.py install [--target T ...] [--sequential]  # every target (idempotent, resumable)
    python tests/e2e/harness.py start  [--target 3.1.4]   # fake LLM + Flowise (+ queue stack) + bootstrap; JSON state
    python tests/e2e/harness.py status [--target 3.1.4]   # is the CLI-started server alive? (exit 0 / 3)
    python tests/e2e/harness.py stop   [--target 3.1.4]   # stop what `start` started, remove its run dir
    python tests/e2e/harness.py up     [--target 3.1.4]   # install (if needed) + start + one prediction per flow

Python::

    with start_real_flowise("2.2.8") as flowise:    # -> RealFlowiseState
        flowise.base_url, flowise.api_key, flowise.flows["llm_chain"], flowise.version, flowise.mode

Installs live outside the repo, in ``$FLOWISE_E2E_HOME`` (default ``~/.cache/flowise-integrations/e2e``)
under ``flowise-<version>/``. Each start gets a fresh run dir (database, secrets, blob storage, logs, HOME,
Redis) under ``<home>/runs/``, removed again by ``stop``.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.cookiejar
import json
import os
import secrets
import shutil
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
import queue_mode  # noqa: E402
from installer import (  # noqa: E402
    Installation,
    e2e_home,
    find_queue_services,
    install_preload,
    install_queue_services,
    install_release,
    install_targets,
)
from processes import (  # noqa: E402
    HarnessError,
    ManagedProcess,
    exit_on_sigterm,
    free_port,
    rss_mb,
    say,
    spawn,
    tail,
    wait_for_file,
    write_atomic,
)
from targets import DEFAULT_TARGET, TARGETS, Target, parse_targets  # noqa: E402

__all__ = [
    "FLOWISE_VERSION",
    "HarnessError",
    "Installation",
    "RealFlowiseState",
    "external_state_from_env",
    "load_cli_state",
    "start_real_flowise",
]

FLOWISE_VERSION = TARGETS[DEFAULT_TARGET].version
"""The default target's version (kept for scripts written before the matrix)."""
PING_TIMEOUT_S = 120.0
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Passw0rd!x"
API_KEY_NAME = "e2e-key"
CREDENTIAL_NAME = "fake-openai"
FAKE_OPENAI_API_KEY = "sk-fake-e2e"  # the fake LLM accepts anything; nothing secret


def resolve_target(target: Target | str | None) -> Target:
    if isinstance(target, Target):
        return target
    name = target or DEFAULT_TARGET
    if name not in TARGETS:
        raise HarnessError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
    return TARGETS[name]


# ------------------------------------------------------------------------------------------- state


@dataclasses.dataclass
class RealFlowiseState:
    """A running (or external) Flowise: what tests need, plus what ``stop()`` needs.

    Usable as a context manager; ``stop()`` is a no-op for an external server. ``version`` and ``mode``
    (``"normal"`` / ``"queue"``) say which facts of Flowise a test may expect.
    """

    base_url: str
    api_key: str = dataclasses.field(repr=False)
    flows: dict[str, str]
    fake_llm_url: str | None = None
    api_key_id: str | None = None
    credential_id: str | None = None
    run_dir: str | None = None
    fake_llm_log: str | None = None
    flowise_log: str | None = None
    processes: list[ManagedProcess] = dataclasses.field(default_factory=list)
    flowise_version: str = FLOWISE_VERSION
    mode: str = "normal"
    target: str = DEFAULT_TARGET
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    queue: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)  # redis_port, worker cmd/env, pg
    external: bool = False  # a server we did not start (FLOWISE_E2E_BASE_URL)

    @property
    def version(self) -> str:
        return self.flowise_version

    @property
    def major(self) -> int:
        try:
            return int(self.flowise_version.split(".")[0])
        except ValueError:
            return 0

    @property
    def is_queue(self) -> bool:
        return self.mode == "queue"

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

    def memory_mb(self) -> dict[str, float]:
        """Resident memory of every process we started (MB, process group included)."""
        return {p.name: rss_mb(p.pid) for p in self.processes}

    def queue_rig(self) -> queue_mode.QueueRig:
        """Fault injection for a queue-mode state this process started (see :class:`queue_mode.QueueRig`)."""
        if not self.is_queue or not self.queue or self.run_dir is None:
            raise HarnessError(f"target {self.target} is not a queue-mode server started by this harness")
        return queue_mode.QueueRig(
            redis_port=int(self.queue["redis_port"]),
            processes=self.processes,
            worker_cmd=list(self.queue["worker_cmd"]),
            worker_env=dict(self.queue["worker_env"]),
            run_dir=Path(self.run_dir),
        )

    def stop(self, *, keep_run_dir: bool = False) -> None:
        """Terminate exactly the process groups we started (Flowise first), then remove the run dir."""
        for proc in self.processes:
            proc.stop()
        self.processes = []
        if not keep_run_dir:
            queue_mode.remove_pg_dir(self.queue.get("postgres"))
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
    """Minimal JSON client for the admin REST API.

    3.x: cookie login, then ``x-request-from: internal`` (cookie JWT) or the Bearer API key. 2.x: no accounts;
    ``x-request-from: internal`` opens every admin path of a server without FLOWISE_USERNAME (``always_internal``).
    """

    def __init__(self, base_url: str, *, always_internal: bool = False) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key: str | None = None
        self.always_internal = always_internal
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
        if internal or self.always_internal:
            req.add_header("x-request-from", "internal")  # cookie (JWT) auth as the UI does; 2.x: no auth at all
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


def _api_key_3x(admin: FlowiseAdmin) -> dict[str, Any]:
    """3.x: register the first admin, log in, create a key with every open-source permission."""
    admin.call(
        "POST",
        "/api/v1/account/register",
        {"user": {"name": "admin", "email": ADMIN_EMAIL, "credential": ADMIN_PASSWORD}},
    )
    admin.call("POST", "/api/v1/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    catalogue = admin.call("GET", "/api/v1/auth/permissions/API_KEY", internal=True)
    permissions = [p["key"] for group in catalogue.values() for p in group if p.get("isOpenSource")]
    created = admin.call("POST", "/api/v1/apikey", {"keyName": API_KEY_NAME, "permissions": permissions}, internal=True)
    key: dict[str, Any] = next(k for k in created if k.get("keyName") == API_KEY_NAME)
    return key


def _api_key_2x(admin: FlowiseAdmin) -> dict[str, Any]:
    """2.x: no accounts; ``POST /apikey {keyName}`` (internal) stores the key in ``secrets/api.json``."""
    created = admin.call("POST", "/api/v1/apikey", {"keyName": API_KEY_NAME}, internal=True)
    key: dict[str, Any] = next(k for k in created if k.get("keyName") == API_KEY_NAME)
    return key


def bootstrap(base_url: str, *, fake_llm_base: str, version: str = FLOWISE_VERSION) -> dict[str, Any]:
    """API key, OpenAI credential and every test flow this version supports, on a fresh server."""
    accounts = int(version.split(".")[0]) >= 3
    admin = FlowiseAdmin(base_url, always_internal=not accounts)
    key = _api_key_3x(admin) if accounts else _api_key_2x(admin)
    admin.api_key = key["apiKey"]
    credential = admin.call(
        "POST",
        "/api/v1/credentials",
        {"name": CREDENTIAL_NAME, "credentialName": "openAIApi", "plainDataObj": {"openAIApiKey": FAKE_OPENAI_API_KEY}},
    )
    specs = flow_builders.build_flows(
        admin.node_definition, credential_id=credential["id"], llm_base_url=fake_llm_base, version=version
    )
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
    node_options = "--max-old-space-size=4096"
    if inst.release.tiktoken_preload:
        node_options += f" --require {inst.preload}"
    env.update(
        PATH=f"{inst.node_bin.parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        HOME=str(run / "home"),  # every default ~/.flowise path lands in the run dir
        TMPDIR=str(run / "tmp"),
        PORT=str(port),
        HOST="127.0.0.1",  # passed to server.listen: loopback only
        APP_URL=f"http://127.0.0.1:{port}",
        DATABASE_TYPE="sqlite",
        DATABASE_PATH=str(run / "db"),
        SECRETKEY_PATH=str(run / "secrets"),
        APIKEY_PATH=str(run / "secrets"),  # 2.x keeps API keys in <APIKEY_PATH>/api.json
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
        NODE_OPTIONS=node_options,
    )
    return env


def _prune_stale_runs(runs: Path) -> None:
    """Remove run dirs left behind by killed sessions (their processes are gone)."""
    for run in runs.iterdir():
        try:
            state = RealFlowiseState.from_json(json.loads((run / "state.json").read_text()))
            stale = not any(p.alive() for p in state.processes)
        except (OSError, ValueError, TypeError):
            state, stale = None, time.time() - run.stat().st_mtime > 3600  # never got a state file
        if stale:
            if state is not None:
                queue_mode.remove_pg_dir(state.queue.get("postgres"))
            shutil.rmtree(run, ignore_errors=True)


def _start_fake_llm(state: RealFlowiseState, run: Path, token_delay: float | None, die_with_parent: bool) -> None:
    cmd = [sys.executable, str(HERE / "fake_llm.py"), "--port", "0", "--port-file", str(run / "fake_llm.port")]
    cmd += ["--log", state.fake_llm_log or ""]
    if token_delay is not None:
        cmd += ["--token-delay", str(token_delay)]
    llm = spawn("fake_llm", cmd, env=os.environ, cwd=run, out=run / "fake_llm.out", die_with_parent=die_with_parent)
    state.processes.append(llm)
    llm_port = int(wait_for_file(run / "fake_llm.port", llm, 10.0))
    state.fake_llm_url = f"http://127.0.0.1:{llm_port}/v1"


def _start_queue_services(
    state: RealFlowiseState, run: Path, env: dict[str, str], *, postgres: bool, install: bool, die_with_parent: bool
) -> str:
    """Redis (+ Postgres) for queue mode; updates ``env`` with the shared queue settings; returns the worker password."""
    services = install_queue_services() if install else find_queue_services()
    t0 = time.monotonic()
    password = queue_mode.new_worker_password()
    redis, redis_port = queue_mode.start_redis(
        services.redis_server, run, worker_password=password, die_with_parent=die_with_parent
    )
    state.processes.append(redis)  # stopped after Flowise (processes stop in list order)
    pg_info = None
    if postgres:
        pg, pg_info = queue_mode.start_postgres(services.pg_bin, run, die_with_parent=die_with_parent)
        state.processes.append(pg)
        state.queue["postgres"] = dataclasses.asdict(pg_info)
    state.queue["redis_port"] = redis_port
    env.update(queue_mode.queue_env(redis_port=redis_port, pg=pg_info, queue_name=f"e2e-{secrets.token_hex(4)}"))
    state.timings["queue_services"] = round(time.monotonic() - t0, 2)
    return password


def start_real_flowise(
    target: Target | str | None = None,
    *,
    inst: Installation | None = None,
    ensure_installed: bool = True,
    token_delay: float | None = None,
    die_with_parent: bool = True,
    postgres: bool = True,
    workers: int = queue_mode.WORKER_COUNT,
) -> RealFlowiseState:
    """Start the fake LLM and Flowise (in the target's mode) on free loopback ports and bootstrap them.

    Queue mode: Redis, Postgres (``postgres=False``: the run dir's SQLite, shared by all processes), the main
    server, then ``workers`` workers. Returns the state (a context manager: leaving it stops everything).
    With ``die_with_parent`` the servers also get SIGTERM if this process dies without stopping them. On
    failure everything started so far is stopped and HarnessError explains why (with the log tails).
    """
    tgt = resolve_target(target)
    inst = inst or Installation.of(tgt.release)
    if ensure_installed:
        install_release(tgt.release, home=inst.root.parent)
    elif not inst.is_installed():
        raise HarnessError(
            f"flowise {tgt.version} is not installed in {inst.root}: run `python tests/e2e/harness.py install` "
            "first (a step of its own: several minutes, ~3 GB per version)"
        )
    install_preload(inst)
    runs = e2e_home() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    _prune_stale_runs(runs)
    run = Path(tempfile.mkdtemp(prefix=time.strftime(f"run-{tgt.name}-%Y%m%d-%H%M%S-"), dir=runs))
    state = RealFlowiseState(
        base_url="",
        api_key="",
        flows={},
        run_dir=str(run),
        fake_llm_log=str(run / "fake_llm_requests.jsonl"),
        flowise_log=str(run / "flowise.out"),
        flowise_version=tgt.version,
        mode=tgt.mode,
        target=tgt.name,
    )
    started = time.monotonic()
    try:
        _start_fake_llm(state, run, token_delay, die_with_parent)
        port = free_port()
        env = _flowise_env(inst, run, port)
        password = ""
        if tgt.queue:
            password = _start_queue_services(
                state, run, env, postgres=postgres, install=ensure_installed, die_with_parent=die_with_parent
            )
        flowise = spawn(
            "flowise",
            [str(inst.node_bin), str(inst.flowise_run), "start"],
            env=env,
            cwd=run,
            out=run / "flowise.out",
            die_with_parent=die_with_parent,
        )
        state.processes.insert(0, flowise)  # stop flowise before the services and the fake LLM
        state.base_url = f"http://127.0.0.1:{port}"
        state.timings["ping"] = round(wait_for_ping(state.base_url, alive=flowise.alive), 2)
        worker_procs: list[ManagedProcess] = []
        if tgt.queue:  # after the main server migrated the database; they load while we bootstrap
            worker_cmd = [str(inst.node_bin), str(inst.flowise_run), "worker"]
            wenv = queue_mode.worker_env(env, password)
            state.queue.update(worker_cmd=worker_cmd, worker_env=wenv)
            for i in range(workers):
                proc = queue_mode.start_worker(i, worker_cmd, env=wenv, run=run, die_with_parent=die_with_parent)
                worker_procs.append(proc)
                state.processes.insert(1 + i, proc)
        t_boot = time.monotonic()
        boot = bootstrap(state.base_url, fake_llm_base=state.fake_llm_url or "", version=tgt.version)
        state.timings["bootstrap"] = round(time.monotonic() - t_boot, 2)
        state.api_key, state.api_key_id = boot["api_key"], boot["api_key_id"]
        state.credential_id, state.flows = boot["credential_id"], boot["flows"]
        for proc in worker_procs:
            queue_mode.wait_for_worker(proc, run / f"{proc.name}.out")
        if worker_procs:
            state.timings["workers_ready"] = round(time.monotonic() - started, 2)
    except BaseException as exc:
        logs = "\n".join(
            f"--- {name} log tail ---\n{tail(run / name, 40)}"
            for name in ("flowise.out", "worker-0.out", "redis.out", "postgres.out")
            if (run / name).is_file()
        )
        state.stop(keep_run_dir=os.environ.get("FLOWISE_E2E_KEEP_RUN") == "1")
        if isinstance(exc, HarnessError):
            raise HarnessError(f"[{tgt.name}] {exc}\n{logs}") from exc
        if isinstance(exc, Exception):
            raise HarnessError(f"[{tgt.name}] start failed: {exc!r}\n{logs}") from exc
        raise
    state.timings["start_total"] = round(time.monotonic() - started, 2)
    (run / "state.json").write_text(json.dumps(state.to_json(), indent=2) + "\n")
    return state


def external_state_from_env(env: Mapping[str, str] = os.environ) -> RealFlowiseState | None:
    """The server named by ``FLOWISE_E2E_BASE_URL``, if set; it is never started or stopped by us.

    ``FLOWISE_E2E_API_KEY`` is its API key; ``FLOWISE_E2E_FLOWS`` a JSON file with ``{name: id}`` or a
    whole state as printed by ``harness.py start`` (then its key, version, mode and fake LLM log are used
    too); ``FLOWISE_E2E_VERSION`` / ``FLOWISE_E2E_MODE`` say what it is when the file does not.
    """
    base_url = env.get("FLOWISE_E2E_BASE_URL")
    if not base_url:
        return None
    data: dict[str, Any] = {}
    if env.get("FLOWISE_E2E_FLOWS"):
        data = json.loads(Path(env["FLOWISE_E2E_FLOWS"]).read_text())
    if "flows" not in data:
        data = {"flows": data}
    data.setdefault("flowise_version", env.get("FLOWISE_E2E_VERSION", FLOWISE_VERSION))
    data.setdefault("mode", env.get("FLOWISE_E2E_MODE", "normal"))
    data.setdefault("target", "external")
    state = RealFlowiseState.from_json(
        {**data, "base_url": base_url.rstrip("/"), "processes": [], "run_dir": None, "queue": {}, "external": True}
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


def _cli_state_file(target: str) -> Path:
    return e2e_home() / f"cli-state-{target}.json"


def load_cli_state(target: str = DEFAULT_TARGET) -> RealFlowiseState | None:
    """The state of the server ``harness.py start --target <target>`` left running, if any."""
    try:
        return RealFlowiseState.from_json(json.loads(_cli_state_file(target).read_text()))
    except (OSError, ValueError):
        return None


def _print_json(data: Any, out: TextIO = sys.stdout) -> None:
    out.write(json.dumps(data, indent=2) + "\n")
    out.flush()


def _cmd_start(args: argparse.Namespace, *, ensure_installed: bool, verify: bool) -> int:
    target = resolve_target(args.target)
    existing = load_cli_state(target.name)
    if existing is not None and existing.alive():
        say(f"already running (pids {existing.pids}); `harness.py stop --target {target.name}` first")
        _print_json(existing.to_json())
        return 1
    if existing is not None:
        existing.stop()
    state = start_real_flowise(
        target,
        ensure_installed=ensure_installed,
        token_delay=args.token_delay,
        die_with_parent=False,
        postgres=not args.sqlite,
    )
    write_atomic(_cli_state_file(target.name), (json.dumps(state.to_json(), indent=2) + "\n").encode())
    say(
        f"flowise {target.name} up at {state.base_url} (ping {state.timings['ping']} s, "
        f"bootstrap {state.timings['bootstrap']} s, total {state.timings['start_total']} s)"
    )
    if verify:
        t0 = time.monotonic()
        for name, text in verify_flows(state).items():
            say(f"  {name}: {text!r}")
        say(f"all {len(state.flows)} flows answered in {time.monotonic() - t0:.1f} s")
    _print_json(state.to_json())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_install = sub.add_parser("install", help="install every target (or --target ...) into the cache dir")
    p_install.add_argument("--target", action="append", choices=list(TARGETS), help="only these (repeatable)")
    p_install.add_argument("--force", action="store_true", help="reinstall even if the marker is OK")
    p_install.add_argument("--sequential", action="store_true", help="one release after the other")
    for name, help_ in (("start", "start + bootstrap (needs install)"), ("up", "install + start + verify")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--target", default=DEFAULT_TARGET, choices=list(TARGETS))
        p.add_argument("--token-delay", type=float, default=None, help="fake LLM seconds between tokens")
        p.add_argument("--sqlite", action="store_true", help="queue mode on the shared SQLite file, not Postgres")
    for name, help_ in (("stop", "stop the server started by `start`/`up`"), ("status", "print its state")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--target", default=DEFAULT_TARGET, choices=list(TARGETS))
    args = parser.parse_args(argv)
    exit_on_sigterm()
    try:
        if args.command == "install":
            chosen = parse_targets(",".join(args.target or []))
            _print_json(install_targets(chosen, force=args.force, parallel=not args.sequential))
            return 0
        if args.command in ("start", "up"):
            return _cmd_start(args, ensure_installed=args.command == "up", verify=args.command == "up")
        state = load_cli_state(args.target)
        if args.command == "stop":
            if state is None:
                say("nothing to stop")
                return 0
            state.stop()
            _cli_state_file(args.target).unlink(missing_ok=True)
            say(f"stopped {state.base_url}")
            return 0
        if state is None:
            say("not running")
            return 3
        alive = state.alive()
        _print_json({**state.to_json(), "alive": alive, "rss_mb": state.memory_mb() if alive else {}})
        return 0 if alive else 3
    except HarnessError as exc:
        say(f"ERROR: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
