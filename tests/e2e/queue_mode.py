"""Flowise queue mode for the e2e harness: Redis, Postgres, two workers, and a rig that forces lost answers.

In queue mode the main server puts each prediction on a BullMQ queue in Redis; a worker runs it and
publishes every stream event on the Redis channel named after the chat id, which the main server relays
to the client as SSE. :func:`start_redis` and :func:`start_postgres` run private instances on loopback
ports inside the run dir; :func:`queue_env` is the environment main server and workers share;
:func:`start_workers` starts ``node <flowise>/bin/run worker`` processes.

:class:`QueueRig` forces each way an answer gets lost or mangled on the way back (issue 13):

* ``block_publish()`` / ``allow_publish()``: the workers' Redis user loses (regains) the ``publish``
  permission (ACL). Blocked for a whole run: the stream carries only ``metadata`` + ``end``; blocked for a
  few seconds mid-stream: exactly the tokens of that window are missing. Either way the worker completes the
  job and Flowise stores the whole answer. (``CLIENT PAUSE WRITE`` would only delay PUBLISH, not drop it.)
* ``busy_worker()`` + ``kill_worker()``: SIGKILL the worker running the job; BullMQ notices the stalled job
  when its 30 s lock expires and reruns it on the other worker, whose events reach the still-open stream:
  the text is duplicated. Flowise exposes no BullMQ lock/stall settings, so this takes ~30-60 s.
* ``freeze_workers()`` / ``thaw_workers()``: SIGSTOP/SIGCONT every worker: nothing runs the job, and the
  main server's 30 s ``:heartbeat`` keeps the stream alive forever.
* ``restore()``: allow publishing, thaw, and restart any dead worker (the fixture calls it after each test).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from processes import HarnessError, ManagedProcess, free_port, say, spawn, tail, wait_until

WORKER_USER = "flowise-worker"
WORKER_COUNT = 2
WORKER_READY_LINE = "Prediction Worker"
WORKER_READY_TIMEOUT_S = 120.0
DB_NAME = "flowise"
DB_USER = "flowise"


# ------------------------------------------------------------------------------------------- Redis


def _resp_encode(args: tuple[str, ...]) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _RespReader:
    def __init__(self, sock: socket.socket) -> None:
        self._file = sock.makefile("rb")

    def read(self) -> Any:
        line = self._file.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2].decode()
        if kind == b"+":
            return rest
        if kind == b"-":
            raise HarnessError(f"redis error: {rest}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self._file.read(size + 2)[:-2].decode(errors="replace")
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self.read() for _ in range(size)]
        raise HarnessError(f"unexpected redis reply {line!r}")


def redis_command(port: int, *args: str, timeout: float = 10.0) -> Any:
    """One command on a fresh connection as the ``default`` user (a tiny RESP2 client; stdlib only)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(_resp_encode(args))
        return _RespReader(sock).read()


def start_redis(
    redis_server: Path, run: Path, *, worker_password: str, die_with_parent: bool
) -> tuple[ManagedProcess, int]:
    """A private redis-server on a loopback port: ``default`` for the main server, ``flowise-worker`` for workers."""
    data = run / "redis"
    data.mkdir(exist_ok=True)
    port = free_port()
    conf = data / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                f"port {port}",
                "bind 127.0.0.1",
                "protected-mode yes",
                f"dir {data}",
                'save ""',
                "appendonly no",
                "daemonize no",
                f"logfile {data / 'redis.log'}",
                "user default on nopass ~* &* +@all",
                f"user {WORKER_USER} on >{worker_password} ~* &* +@all",
                "",
            ]
        )
    )
    proc = spawn(
        "redis",
        [str(redis_server), str(conf)],
        env=os.environ,
        cwd=data,
        out=run / "redis.out",
        die_with_parent=die_with_parent,
    )
    wait_until(lambda: redis_command(port, "PING", timeout=1.0) == "PONG", timeout=20, what="redis", alive=proc.alive)
    return proc, port


# ---------------------------------------------------------------------------------------- Postgres


@dataclasses.dataclass(frozen=True)
class PostgresInfo:
    port: int
    data_dir: str  # outside the run dir when we are root (postgres runs as the `postgres` user)
    socket_dir: str


def _pg_user() -> pwd.struct_passwd | None:
    """Postgres refuses to run as root: as root we run it as Debian's ``postgres`` user (or ``nobody``)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise HarnessError("running as root but there is no `postgres` or `nobody` user to run PostgreSQL as")


def start_postgres(pg_bin: Path, run: Path, *, die_with_parent: bool) -> tuple[ManagedProcess, PostgresInfo]:
    """initdb a fresh cluster (trust auth, superuser ``flowise``), start it on a loopback port, create the db."""
    user = _pg_user()
    base = Path(tempfile.mkdtemp(prefix="flowise-e2e-pg-")) if user else run / "pg"
    base.mkdir(exist_ok=True)
    data, sock_dir = base / "data", base / "sock"
    sock_dir.mkdir(exist_ok=True)
    if user:
        for path in (base, sock_dir):
            os.chown(path, user.pw_uid, user.pw_gid)
    log = run / "postgres.out"
    run_as = (user.pw_uid, user.pw_gid) if user else None
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(base)}
    init = spawn(
        "initdb",
        [str(pg_bin / "initdb"), "-D", str(data), "-U", DB_USER, "--auth=trust", "-E", "UTF8", "--no-sync"],
        env=env,
        cwd=base,
        out=log,
        die_with_parent=True,
        run_as=run_as,
    )
    wait_until(lambda: not init.alive(), timeout=120, what="initdb")
    if not (data / "PG_VERSION").is_file():
        raise HarnessError(f"initdb failed:\n{tail(log)}")
    port = free_port()
    proc = spawn(
        "postgres",
        [
            str(pg_bin / "postgres"),
            *("-D", str(data), "-p", str(port), "-k", str(sock_dir)),
            *("-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300"),
            *("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"),  # throwaway data
        ],
        env=env,
        cwd=base,
        out=log,
        die_with_parent=die_with_parent,
        run_as=run_as,
        stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM waits for clients to leave
    )
    psql = [str(pg_bin / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", DB_USER, "-d", "postgres", "-tAc"]

    def ready() -> bool:
        return subprocess.run([*psql, "SELECT 1"], capture_output=True, check=False, env=env).returncode == 0

    wait_until(ready, timeout=60, what="postgres", alive=proc.alive)
    created = subprocess.run(
        [*psql, f"CREATE DATABASE {DB_NAME}"], capture_output=True, text=True, check=False, env=env
    )
    if created.returncode != 0:
        raise HarnessError(f"CREATE DATABASE failed: {created.stderr.strip()}")
    return proc, PostgresInfo(port, str(base), str(sock_dir))


# ------------------------------------------------------------------------------------- environment


def queue_env(*, redis_port: int, pg: PostgresInfo | None, queue_name: str) -> dict[str, str]:
    """What main server and workers share in queue mode (Postgres when given, else the run dir's SQLite)."""
    env = {
        "MODE": "queue",
        "QUEUE_NAME": queue_name,
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(redis_port),
        "WORKER_CONCURRENCY": "100",
        "REMOVE_ON_AGE": "3600",
        "REMOVE_ON_COUNT": "1000",
    }
    if pg is not None:
        env.update(
            DATABASE_TYPE="postgres",
            DATABASE_HOST="127.0.0.1",
            DATABASE_PORT=str(pg.port),
            DATABASE_NAME=DB_NAME,
            DATABASE_USER=DB_USER,
            DATABASE_PASSWORD="unused-trust-auth",
        )
    return env


def worker_env(base: Mapping[str, str], worker_password: str) -> dict[str, str]:
    """A worker's environment: the shared one, logged in to Redis as the rig's worker user."""
    return {**base, "REDIS_USERNAME": WORKER_USER, "REDIS_PASSWORD": worker_password}


def start_worker(
    index: int, cmd: list[str], *, env: Mapping[str, str], run: Path, die_with_parent: bool
) -> ManagedProcess:
    return spawn(
        f"worker-{index}", cmd, env=env, cwd=run, out=run / f"worker-{index}.out", die_with_parent=die_with_parent
    )


def wait_for_worker(proc: ManagedProcess, out: Path, timeout: float = WORKER_READY_TIMEOUT_S) -> float:
    """Seconds until the worker logged that its prediction worker exists."""

    def ready() -> bool:
        return out.is_file() and WORKER_READY_LINE in out.read_text(errors="replace")

    try:
        return wait_until(ready, timeout=timeout, what=proc.name, alive=proc.alive)
    except HarnessError as exc:
        raise HarnessError(f"{exc}\n--- {out.name} ---\n{tail(out)}") from exc


# ------------------------------------------------------------------------------------------- rig


@dataclasses.dataclass
class QueueRig:
    """Fault injection on a running queue-mode stack (see the module docstring).

    ``processes`` is the state's own process list: the workers are its ``worker-N`` entries, and a restarted
    worker replaces its entry there (so stopping the state stops it). ``worker_cmd``/``worker_env`` restart
    one. Methods are safe to call from test threads.
    """

    redis_port: int
    processes: list[ManagedProcess]
    worker_cmd: list[str]
    worker_env: dict[str, str]
    run_dir: Path
    die_with_parent: bool = True
    _timers: list[threading.Timer] = dataclasses.field(default_factory=list)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    _log_from: dict[str, int] = dataclasses.field(default_factory=dict)  # a restarted worker's log starts here

    @property
    def workers(self) -> list[ManagedProcess]:
        return [p for p in self.processes if p.name.startswith("worker-")]

    # -- Redis pub/sub

    def redis(self, *args: str) -> Any:
        """Any Redis command as the ``default`` user."""
        return redis_command(self.redis_port, *args)

    def block_publish(self) -> None:
        """From now on the workers' PUBLISH fails (NOPERM): their stream events are dropped, the job goes on."""
        self.redis("ACL", "SETUSER", WORKER_USER, "-publish")

    def allow_publish(self) -> None:
        self.redis("ACL", "SETUSER", WORKER_USER, "+publish")

    def publish_allowed(self) -> bool:
        rules = str(self.redis("ACL", "GETUSER", WORKER_USER))
        return "-publish" not in rules

    def block_publish_for(self, seconds: float) -> threading.Timer:
        """Block publishing now and allow it again after ``seconds`` (a daemon timer; ``restore()`` cancels it)."""
        self.block_publish()
        timer = threading.Timer(seconds, self.allow_publish)
        timer.daemon = True
        with self._lock:
            self._timers.append(timer)
        timer.start()
        return timer

    @contextlib.contextmanager
    def publish_blocked(self) -> Iterator[None]:
        """``with rig.publish_blocked(): ...``: a worker that may not publish, for the block's duration."""
        self.block_publish()
        try:
            yield
        finally:
            self.allow_publish()

    # -- workers

    def _log(self, worker: ManagedProcess) -> Path:
        return self.run_dir / f"{worker.name}.out"

    def jobs_in_progress(self, worker: ManagedProcess) -> int:
        """Prediction jobs the worker started and has not logged as completed or failed."""
        text = self._log(worker).read_text(errors="replace") if self._log(worker).is_file() else ""
        text = text[self._log_from.get(worker.name, 0) :]  # a killed predecessor's unfinished job is not this one's
        started = text.count("[BaseQueue] Processing job")
        ended = text.count("[BaseQueue] Completed job") + text.count("[BaseQueue] Job ")
        return started - ended

    def busy_worker(self, timeout: float = 10.0) -> ManagedProcess:
        """The (live) worker running a job right now; HarnessError if none is within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for worker in self.workers:
                if worker.alive() and self.jobs_in_progress(worker) > 0:
                    return worker
            time.sleep(0.1)
        raise HarnessError(f"no worker is running a job (logs: {[str(self._log(w)) for w in self.workers]})")

    def kill_worker(self, worker: ManagedProcess) -> None:
        """SIGKILL a worker's process group (no graceful BullMQ shutdown: its job is left stalled)."""
        worker.signal(signal.SIGKILL)
        wait_until(lambda: not worker.alive(), timeout=10, what=f"{worker.name} to die")

    def freeze_workers(self) -> None:
        """SIGSTOP every worker: a job stays active but nothing runs it (a hung worker)."""
        for worker in self.workers:
            worker.signal(signal.SIGSTOP)

    def thaw_workers(self) -> None:
        for worker in self.workers:
            worker.signal(signal.SIGCONT)

    def restart_dead_workers(self) -> list[ManagedProcess]:
        """Start a replacement for every dead worker (same name, env and log file); wait until it is ready."""
        restarted = []
        for i, worker in enumerate(self.processes):
            if not worker.name.startswith("worker-") or worker.alive():
                continue
            out = self._log(worker)
            offset = out.stat().st_size if out.is_file() else 0
            self._log_from[worker.name] = len(out.read_text(errors="replace")) if out.is_file() else 0
            fresh = spawn(
                worker.name,
                self.worker_cmd,
                env=self.worker_env,
                cwd=self.run_dir,
                out=out,
                die_with_parent=self.die_with_parent,
            )
            self.processes[i] = fresh
            restarted.append(fresh)

            def ready(out: Path = out, offset: int = offset) -> bool:
                return WORKER_READY_LINE in out.read_text(errors="replace")[offset:]

            wait_until(ready, timeout=WORKER_READY_TIMEOUT_S, what=f"restarted {worker.name}", alive=fresh.alive)
            say(f"queue rig: restarted {worker.name} (pid {fresh.pid})")
        return restarted

    def restore(self) -> None:
        """Undo every fault: cancel timers, allow publishing, thaw and restart workers."""
        with self._lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        self.allow_publish()
        self.thaw_workers()
        self.restart_dead_workers()


def remove_pg_dir(info: Mapping[str, Any] | None) -> None:
    """Remove a Postgres data dir created outside the run dir (when running as root)."""
    if info and info.get("data_dir") and Path(info["data_dir"]).name.startswith("flowise-e2e-pg-"):
        shutil.rmtree(info["data_dir"], ignore_errors=True)


def new_worker_password() -> str:
    return secrets.token_hex(16)
