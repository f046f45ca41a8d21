"""SIGTERM stops ``monitor serve`` like Ctrl-C: the embedded PostgreSQL it started (or adopted
from a run that was killed) is stopped too, not left running with no parent."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import reachable_tmp_dir
from tests.support.appserver import free_port
from tests.support.processes import (
    monitor_env,
    postmaster_pid,
    process_gone,
    start_monitor,
    wait_healthy,
)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = reachable_tmp_dir("mm-sigterm-")
    yield path
    if (path / "pgdata" / "postmaster.pid").exists():  # the test failed: do not leak a server
        subprocess.run(["kill", "-INT", str(postmaster_pid(path))], check=False)
        process_gone(postmaster_pid(path))
    shutil.rmtree(path, ignore_errors=True)


def _serve(data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = start_monitor(["serve", "--port", str(port)], monitor_env(data_dir), log)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(proc, url, log)
    return proc, url


def _terminate(proc: subprocess.Popen[bytes], log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, log.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_serve_and_its_embedded_postgres(
    data_dir: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    """SIGTERM as Ctrl-C (SIGINT): a clean stop, the server this process started stopped too.
    (After Ctrl-C, asyncio's own SIGINT handling ends uvicorn's run normally: exit 0 as well.)"""
    log = tmp_path / "serve.log"
    proc, _ = _serve(data_dir, log)
    postgres = postmaster_pid(data_dir)
    proc.send_signal(sig)
    assert proc.wait(timeout=60) in (0, 130), log.read_text()
    assert process_gone(postgres), f"postgres {postgres} outlived monitor serve"
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()
    assert "Traceback" not in log.read_text()
    if sig == signal.SIGTERM:
        assert proc.returncode == 0
        assert "stopped (SIGTERM)" in log.read_text()


@pytest.mark.slow
def test_a_run_that_joins_an_orphaned_server_stops_it(data_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    killed, _ = _serve(data_dir, log)
    killed.kill()  # SIGKILL: no cleanup can run, the server is left without its owner
    killed.wait(timeout=30)
    postgres = postmaster_pid(data_dir)
    assert not process_gone(postgres, timeout=1)

    proc, _ = _serve(data_dir, log)
    assert postmaster_pid(data_dir) == postgres  # joined, not a second server
    assert "adopted orphaned" in log.read_text()
    _terminate(proc, log)
    assert process_gone(postgres), "the joined, orphaned postgres was left running"
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()
