"""Install every e2e target: Flowise releases from npm (committed lockfiles), Redis and Postgres from Debian.

``python tests/e2e/harness.py install`` calls :func:`install_targets`. Each release goes to
``<home>/flowise-<version>/`` (``$FLOWISE_E2E_HOME``, default ``~/.cache/flowise-integrations/e2e``):

1. Node: the machine's ``node`` when its major version fits the release (and its headers are installed),
   else ``node-linux-<arch>@<version>`` from the npm registry (real binary + headers);
2. ``package.json`` written, the committed ``lockfiles/<version>/package-lock.json`` copied, ``npm ci
   --ignore-scripts`` (several install scripts fetch from GitHub; none is needed but sqlite3's);
3. ``npm rebuild sqlite3`` (source build: N-API, bundled SQLite);
4. a ``require('sqlite3')`` + version probe, then the marker ``.install-ok.json`` (times and size).

Steps 2 and 3 leave step markers, so a killed install resumes at the step it was in (npm's cache is private
to the install and kept). A file lock makes concurrent installers of the same release wait for one another.
Queue mode needs ``redis-server`` and PostgreSQL's server binaries: installed with apt (``apt-get update``
first) when missing and we are root, else a one-line message says what to install.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from processes import HarnessError, run_logged, say, write_atomic
from targets import HERE, Release, Target, releases_of

MARKER_NAME = ".install-ok.json"
STEP_DEPS = ".step-npm-ci.json"
PREREQUISITES = ("npm", "g++", "make")
APT_FOR_TOOL = {"npm": "npm", "g++": "g++", "make": "make", "redis-server": "redis-server"}


def e2e_home() -> Path:
    """Root of everything the harness keeps outside the repo."""
    env = os.environ.get("FLOWISE_E2E_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "flowise-integrations" / "e2e"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str | None:
    try:
        return _sha256(path.read_bytes())
    except OSError:
        return None


def _node_version(node: Path | str) -> str | None:
    try:
        out = subprocess.run([str(node), "--version"], capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().lstrip("v") or None


def _node_package_name(version: str) -> str:
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())
    if sys.platform != "linux" or arch is None:
        raise HarnessError(f"unsupported platform {sys.platform}/{platform.machine()} (needs linux x64/arm64)")
    return f"node-linux-{arch}@{version}"


@dataclasses.dataclass(frozen=True)
class SystemNode:
    """The machine's node, when it can run (and build native modules for) a release."""

    bin: Path
    version: str

    @property
    def prefix(self) -> Path:
        return self.bin.resolve().parent.parent

    @classmethod
    def find(cls, major: int) -> SystemNode | None:
        found = shutil.which("node")
        if found is None:
            return None
        version = _node_version(found)
        node = cls(Path(found), version or "")
        headers = node.prefix / "include" / "node" / "node_api.h"
        if version and version.split(".")[0] == str(major) and headers.is_file():
            return node
        return None


@dataclasses.dataclass(frozen=True)
class Installation:
    """One release installed under ``<home>/flowise-<version>/``."""

    root: Path
    release: Release

    @classmethod
    def of(cls, release: Release, home: Path | None = None) -> Installation:
        return cls((home or e2e_home()) / f"flowise-{release.flowise}", release)

    # ------------------------------------------------------------------ paths

    @property
    def npm_node_pkg(self) -> Path:
        """Where a Node from the npm registry is unpacked (``node24/package`` for 3.1.4, as before)."""
        return self.root / f"node{self.release.node_major}" / "package"

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

    def read_marker(self) -> dict[str, Any]:
        try:
            data = json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def node_bin(self) -> Path:
        """The node this install was made with (recorded in the marker), else the one it would use."""
        recorded = self.read_marker().get("node_bin")
        if recorded:
            return Path(recorded)
        system = None if self.release.node_from_npm_always else SystemNode.find(self.release.node_major)
        return system.bin if system else self.npm_node_pkg / "bin" / "node"

    def node_dir(self, node_bin: Path | None = None) -> Path:
        """Headers/prefix of a node for node-gyp (``npm_config_nodedir``)."""
        node = node_bin or self.node_bin
        return self.npm_node_pkg if node.is_relative_to(self.root) else node.resolve().parent.parent

    def package_json(self) -> str:
        """The exact package.json the install is made from."""
        return json.dumps(self.release.package_json(), indent=2) + "\n"

    def expected(self) -> dict[str, str]:
        return {"flowise": self.release.flowise, "package_json_sha256": _sha256(self.package_json().encode())}

    def is_installed(self) -> bool:
        """True when the marker says this release installed OK from the committed lockfile."""
        marker = self.read_marker()
        if not marker or any(marker.get(k) != v for k, v in self.expected().items()):
            return False
        committed = _file_sha256(self.release.lockfile)
        if committed is not None and _file_sha256(self.root / "package-lock.json") != committed:
            return False
        node_version = _node_version(self.node_bin)
        return (
            node_version is not None
            and node_version.split(".")[0] == str(self.release.node_major)
            and self.flowise_run.is_file()
            and (not self.release.tiktoken_preload or self.preload.is_file())
        )

    def tool_env(self, node_bin: Path | None = None) -> dict[str, str]:
        """Environment for npm/node commands: this node first on PATH, its headers, a private npm cache."""
        node = node_bin or self.node_bin
        env = dict(os.environ)
        env.update(
            PATH=f"{node.parent}{os.pathsep}{env.get('PATH', '')}",
            npm_config_nodedir=str(self.node_dir(node)),  # node-gyp: these headers (~/.npmrc may say /usr)
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


# -------------------------------------------------------------------------------------- prerequisites


def _can_apt() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


_apt_updated = False


def apt_install(packages: Sequence[str], *, log: Path) -> None:
    """``apt-get update`` (once per process) then ``apt-get install -y`` the packages; HarnessError if it fails."""
    global _apt_updated
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log.parent.mkdir(parents=True, exist_ok=True)
    if not _apt_updated:
        run_logged(["apt-get", "update"], cwd=Path("/"), env=env, log=log, what="apt-get update")
        _apt_updated = True
    run_logged(
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
        cwd=Path("/"),
        env=env,
        log=log,
        what=f"apt-get install {' '.join(packages)}",
    )


def ensure_tools(tools: Sequence[str], *, why: str, log: Path) -> None:
    """Make sure every tool is on PATH: apt-install what is missing when root, else one line saying what to do."""
    missing = [t for t in tools if shutil.which(t) is None]
    if not missing:
        return
    packages = sorted({APT_FOR_TOOL.get(t, t) for t in missing})
    if _can_apt():
        say(f"{why}: installing {', '.join(packages)} with apt")
        apt_install(packages, log=log)
        still = [t for t in missing if shutil.which(t) is None]
        if not still:
            return
        missing = still
    raise HarnessError(
        f"{why} needs {', '.join(missing)} on PATH: install them first "
        f"(Debian/Ubuntu: sudo apt-get install {' '.join(packages)})"
    )


# ----------------------------------------------------------------------------------------- releases


def _install_npm_node(inst: Installation, env: dict[str, str]) -> None:
    version = inst.release.node
    node_bin = inst.npm_node_pkg / "bin" / "node"
    if _node_version(node_bin) == version:
        say(f"node: reusing {node_bin} (v{version})")
        return
    node_dir = inst.npm_node_pkg.parent
    shutil.rmtree(node_dir, ignore_errors=True)
    node_dir.mkdir(parents=True)
    npm = shutil.which("npm")
    if npm is None:
        raise HarnessError("npm is not on PATH (needed to fetch Node from the npm registry)")
    run_logged([npm, "pack", _node_package_name(version)], cwd=node_dir, env=env, log=inst.log, what="npm pack node")
    tarballs = list(node_dir.glob("*.tgz"))
    if len(tarballs) != 1:
        raise HarnessError(f"npm pack left {len(tarballs)} tarballs in {node_dir}")
    run_logged(["tar", "xzf", tarballs[0].name], cwd=node_dir, env=env, log=inst.log, what="untar node")
    tarballs[0].unlink()
    if _node_version(node_bin) != version:
        raise HarnessError(f"{node_bin} is not v{version} after unpacking")


def _choose_node(inst: Installation) -> Path:
    """The node binary for this release (installing one from npm if the machine has none that fits)."""
    if not inst.release.node_from_npm_always:
        system = SystemNode.find(inst.release.node_major)
        if system is not None:
            say(f"node: the machine's {system.bin} (v{system.version}) fits flowise {inst.release.flowise}")
            return system.bin
    _install_npm_node(inst, dict(os.environ))
    return inst.npm_node_pkg / "bin" / "node"


def _disk_mb(path: Path) -> int:
    out = subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True, check=False)
    try:
        return int(out.stdout.split()[0])
    except (IndexError, ValueError):
        return -1


def install_preload(inst: Installation) -> None:
    """Copy the offline tiktoken preload next to node_modules (refreshed on every install/start)."""
    if not inst.release.tiktoken_preload:
        return
    data = (HERE / "offline_tiktoken.js").read_bytes()
    if not inst.preload.is_file() or inst.preload.read_bytes() != data:
        write_atomic(inst.preload, data)


def _npm_dependencies(inst: Installation, env: dict[str, str], npm: str) -> float:
    """``npm ci`` from the committed lockfile (``npm install`` + a new lockfile to commit if there is none)."""
    lock = inst.release.lockfile
    committed = _file_sha256(lock)
    step = inst.root / STEP_DEPS
    try:
        done = json.loads(step.read_text())
    except (OSError, ValueError):
        done = {}
    if done.get("lockfile_sha256") == committed and committed and (inst.root / "node_modules" / "flowise").is_dir():
        say(f"flowise {inst.release.flowise}: dependencies already installed (step marker); resuming")
        return float(done.get("seconds", 0.0))
    step.unlink(missing_ok=True)
    (inst.root / "package.json").write_text(inst.package_json())
    flags = ["--ignore-scripts", "--no-audit", "--no-fund"]
    if committed:
        shutil.copyfile(lock, inst.root / "package-lock.json")
        seconds = run_logged([npm, "ci", *flags], cwd=inst.root, env=env, log=inst.log, what="npm ci")
    else:
        shutil.rmtree(inst.root / "node_modules", ignore_errors=True)
        (inst.root / "package-lock.json").unlink(missing_ok=True)
        seconds = run_logged([npm, "install", *flags], cwd=inst.root, env=env, log=inst.log, what="npm install")
        lock.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(inst.root / "package-lock.json", lock)
        committed = _file_sha256(lock)
        say(f"no committed lockfile for flowise {inst.release.flowise}: wrote {lock}; commit it")
    write_atomic(step, json.dumps({"lockfile_sha256": committed, "seconds": round(seconds, 1)}).encode())
    return seconds


def install_release(release: Release, *, home: Path | None = None, force: bool = False) -> Installation:
    """Install one release unless its marker says it is done; resumable, one installer at a time."""
    inst = Installation.of(release, home)
    inst.root.mkdir(parents=True, exist_ok=True)
    with (inst.root / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent sessions wait for one installer
        if not force and inst.is_installed():
            install_preload(inst)
            say(f"flowise {release.flowise}: already installed in {inst.root}")
            return inst
        if force:
            (inst.root / STEP_DEPS).unlink(missing_ok=True)
        started = time.monotonic()
        inst.marker.unlink(missing_ok=True)
        ensure_tools(PREREQUISITES, why=f"installing flowise {release.flowise}", log=inst.log)
        node_bin = _choose_node(inst)
        env = inst.tool_env(node_bin)
        say(f"installing flowise {release.flowise} with node {_node_version(node_bin)} into {inst.root}")
        npm = shutil.which("npm", path=env["PATH"])
        if npm is None:
            raise HarnessError("npm is not on PATH")
        t_deps = _npm_dependencies(inst, env, npm)
        t_rebuild = run_logged(
            [npm, "rebuild", "sqlite3"], cwd=inst.root, env=env, log=inst.log, what="npm rebuild sqlite3"
        )
        check = "require('sqlite3'); console.log(require('flowise/package.json').version)"
        probe = subprocess.run(
            [str(node_bin), "-e", check], cwd=inst.root, env=env, capture_output=True, text=True, check=False
        )
        if probe.returncode != 0 or probe.stdout.strip() != release.flowise:
            raise HarnessError(f"install check failed (rc {probe.returncode}): {probe.stdout}{probe.stderr}")
        install_preload(inst)
        total = time.monotonic() - started
        marker: dict[str, Any] = {
            **inst.expected(),
            "node": _node_version(node_bin),
            "node_bin": str(node_bin),
            "lockfile_sha256": _file_sha256(inst.root / "package-lock.json"),
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": {
                "total": round(total, 1),
                "npm_ci": round(t_deps, 1),
                "npm_rebuild_sqlite3": round(t_rebuild, 1),
            },
            "size_mb": {"node_modules": _disk_mb(inst.root / "node_modules"), "total": (size := _disk_mb(inst.root))},
        }
        write_atomic(inst.marker, (json.dumps(marker, indent=2) + "\n").encode())
        say(
            f"installed flowise {release.flowise} in {total:.1f} s (dependencies {t_deps:.1f} s, "
            f"sqlite3 build {t_rebuild:.1f} s; {size} MB)"
        )
        return inst


# -------------------------------------------------------------------------------------- queue services


@dataclasses.dataclass(frozen=True)
class QueueServices:
    """Binaries queue mode needs: Redis and PostgreSQL's server tools."""

    redis_server: Path
    pg_bin: Path  # directory holding initdb, pg_ctl, postgres

    @property
    def initdb(self) -> Path:
        return self.pg_bin / "initdb"

    @property
    def postgres(self) -> Path:
        return self.pg_bin / "postgres"

    @property
    def psql(self) -> Path:
        return self.pg_bin / "psql"

    def versions(self) -> dict[str, str]:
        def first_line(cmd: list[str]) -> str:
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"

        return {
            "redis": first_line([str(self.redis_server), "--version"]),
            "postgres": first_line([str(self.postgres), "--version"]),
        }


def find_pg_bin() -> Path | None:
    """Debian's ``/usr/lib/postgresql/<major>/bin`` (newest), else the directory ``pg_ctl`` on PATH resolves to."""
    candidates = sorted(
        (
            p
            for p in Path("/usr/lib/postgresql").glob("*/bin")
            if (p / "initdb").is_file() and (p / "postgres").is_file()
        ),
        key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0),
    )
    if candidates:
        return candidates[-1]
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        bin_dir = Path(pg_ctl).resolve().parent  # /usr/local/bin/pg_ctl may be a symlink into a Debian tree
        if (bin_dir / "initdb").is_file() and (bin_dir / "postgres").is_file():
            return bin_dir
    return None


def find_queue_services() -> QueueServices:
    """The installed Redis and PostgreSQL binaries; HarnessError naming the install command if one is missing."""
    redis, pg_bin = shutil.which("redis-server"), find_pg_bin()
    if redis is None or pg_bin is None:
        missing = [n for n, v in (("redis-server", redis), ("PostgreSQL (initdb, postgres)", pg_bin)) if v is None]
        raise HarnessError(
            f"queue mode needs {' and '.join(missing)}: run `python tests/e2e/harness.py install` "
            "(or sudo apt-get install redis-server postgresql)"
        )
    return QueueServices(Path(redis), pg_bin)


def install_queue_services(*, home: Path | None = None) -> QueueServices:
    """Redis and PostgreSQL from Debian's packages (only what is missing); HarnessError if impossible."""
    log = (home or e2e_home()) / "queue-services-install.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    ensure_tools(["redis-server"], why="queue mode", log=log)
    pg_bin = find_pg_bin()
    if pg_bin is None:
        if not _can_apt():
            raise HarnessError(
                "queue mode needs PostgreSQL's server (initdb, postgres): sudo apt-get install postgresql"
            )
        apt_install(["postgresql"], log=log)
        pg_bin = find_pg_bin()
        if pg_bin is None:
            raise HarnessError("apt installed postgresql but no initdb/postgres was found under /usr/lib/postgresql")
    redis = shutil.which("redis-server")
    assert redis is not None
    services = QueueServices(Path(redis), pg_bin)
    say(f"queue services ready in {time.monotonic() - started:.1f} s: {services.versions()} ({pg_bin})")
    return services


# ------------------------------------------------------------------------------------------- all


def install_targets(
    targets: Sequence[Target], *, home: Path | None = None, force: bool = False, parallel: bool = True
) -> dict[str, Any]:
    """Install everything the targets need; return a summary (per release: marker; wall seconds)."""
    started = time.monotonic()
    summary: dict[str, Any] = {}
    if any(t.queue for t in targets):
        services = install_queue_services(home=home)
        summary["queue_services"] = {"redis_server": str(services.redis_server), "pg_bin": str(services.pg_bin)}
    releases = releases_of(list(targets))
    todo = [r for r in releases if force or not Installation.of(r, home).is_installed()]
    if todo:
        ensure_tools(PREREQUISITES, why="installing flowise", log=(home or e2e_home()) / "prerequisites.log")
    if parallel and len(todo) > 1:
        say(f"installing {', '.join(r.flowise for r in todo)} in parallel")
        with concurrent.futures.ThreadPoolExecutor(len(todo)) as pool:
            futures = {r.flowise: pool.submit(install_release, r, home=home, force=force) for r in releases}
            installs = {v: f.result() for v, f in futures.items()}
    else:
        installs = {r.flowise: install_release(r, home=home, force=force) for r in releases}
    for version, inst in installs.items():
        summary[f"flowise-{version}"] = {"root": str(inst.root), **inst.read_marker()}
    summary["wall_seconds"] = round(time.monotonic() - started, 1)
    return summary
