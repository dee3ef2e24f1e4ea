"""Process and logging helpers shared by the harness modules (stdlib only, Linux).

Every server the harness starts is the leader of its own process group (so stopping it stops its
children), records its kernel start time (so a recycled pid is never signalled) and optionally gets
SIGTERM when the process that started it dies (``prctl(PR_SET_PDEATHSIG)``).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

STOP_GRACE_S = 10.0
PR_SET_PDEATHSIG = 1


class HarnessError(RuntimeError):
    """A real Flowise (or a service it needs) could not be installed, started or bootstrapped."""


def say(message: str) -> None:
    """Progress on stderr, one line, flushed (visible under ``pytest -s`` and in CI logs)."""
    print(f"[e2e-harness] {message}", file=sys.stderr, flush=True)


def tail(path: Path | str, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file (or a note that there is none)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def run_logged(
    cmd: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: Path,
    what: str,
    quiet: bool = False,
    progress_every: float = 30.0,
) -> float:
    """Run ``cmd`` appending its output to ``log``; return its seconds; raise HarnessError with the log tail.

    While it runs, a progress line (elapsed time, log size) is printed every ``progress_every`` seconds.
    """
    if not quiet:
        say(f"{what}: {' '.join(cmd)}  (log: {log})")
    started = time.monotonic()
    with log.open("a") as fh:
        fh.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {what}: {' '.join(cmd)}\n")
        fh.flush()
        try:
            proc = subprocess.Popen(
                cmd, cwd=cwd, env=dict(env), stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
            )
        except OSError as exc:
            raise HarnessError(f"{what}: cannot run {cmd[0]}: {exc}") from exc
        try:
            while True:
                try:
                    rc = proc.wait(timeout=progress_every)
                    break
                except subprocess.TimeoutExpired:
                    if not quiet:
                        size = log.stat().st_size if log.exists() else 0
                        say(f"{what}: still running ({time.monotonic() - started:.0f} s, log {size // 1024} KB)")
        except BaseException:
            with contextlib.suppress(ProcessLookupError):  # interrupted: leave no npm/node-gyp behind
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    elapsed = time.monotonic() - started
    if rc != 0:
        raise HarnessError(f"{what} failed (exit {rc}, {elapsed:.0f} s). Last lines of {log}:\n{tail(log)}")
    if not quiet:
        say(f"{what}: done in {elapsed:.1f} s")
    return elapsed


def exit_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit(143)`` so cleanups run (``finally`` blocks, :func:`run_logged`'s kill)."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def proc_start_time(pid: int) -> str | None:
    """Kernel start time of ``pid`` (guards against signalling a recycled pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def proc_gone(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants in its process group, MB (0 if gone)."""
    total_kb = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pid:  # field 5 (pgrp) after the comm
                continue
            status = (stat.parent / "status").read_text()
        except (OSError, ValueError, IndexError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return round(total_kb / 1024, 1)


@dataclasses.dataclass(frozen=True)
class ManagedProcess:
    """A process the harness started as the leader of its own process group."""

    name: str
    pid: int
    start_time: str | None
    stop_signal: int = signal.SIGTERM

    def alive(self) -> bool:
        return not proc_gone(self.pid) and proc_start_time(self.pid) == self.start_time

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the whole group (no-op if it is gone or the pid was recycled)."""
        if proc_start_time(self.pid) != self.start_time:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds."""
        current = proc_start_time(self.pid)
        if current is not None and current != self.start_time:
            return  # the pid was recycled: not ours any more
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGCONT)  # a stopped (frozen) process cannot act on SIGTERM
        for sig, wait in ((self.stop_signal, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if proc_gone(self.pid):
                    # the leader is gone; make sure no member of its group lingers
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.pid, signal.SIGKILL)
                    return
                time.sleep(0.1)


def _preexec(die_with_parent: bool, run_as: tuple[int, int] | None) -> Callable[[], None] | None:
    """preexec_fn: drop to ``run_as`` (uid, gid), then ask for SIGTERM when our parent dies (Linux prctl).

    The order matters: changing credentials clears the parent-death signal.
    """
    if not die_with_parent and run_as is None:
        return None

    def preexec() -> None:
        if run_as is not None:
            os.setgroups([])
            os.setgid(run_as[1])
            os.setuid(run_as[0])
        if die_with_parent:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return preexec


def spawn(
    name: str,
    cmd: list[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    out: Path,
    die_with_parent: bool,
    run_as: tuple[int, int] | None = None,
    stop_signal: int = signal.SIGTERM,
) -> ManagedProcess:
    """Start ``cmd`` in its own session with stdout+stderr appended to ``out`` (optionally as another user)."""
    with out.open("ab") as fh:
        if run_as is not None:
            os.chown(out, run_as[0], run_as[1])
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_preexec(die_with_parent, run_as),
        )
    return ManagedProcess(name, proc.pid, proc_start_time(proc.pid), int(stop_signal))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], bool], *, timeout: float, what: str, alive: Callable[[], bool] = lambda: True
) -> float:
    """Poll ``check`` every 0.2 s; return the seconds waited; HarnessError on timeout or if ``alive`` fails."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(OSError):
            if check():
                return time.monotonic() - started
        if not alive():
            raise HarnessError(f"{what}: the process exited first")
        time.sleep(0.2)
    raise HarnessError(f"{what}: not ready within {timeout:.0f} s")


def wait_for_file(path: Path, proc: ManagedProcess, timeout: float) -> str:
    """The stripped content of ``path`` once ``proc`` wrote it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and (text := path.read_text().strip()):
            return text
        if not proc.alive():
            break
        time.sleep(0.05)
    raise HarnessError(f"{proc.name} did not write {path.name} within {timeout:.0f} s")
