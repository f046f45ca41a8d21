"""Run ``monitor`` commands as real subprocesses on their own embedded PostgreSQL data dir."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def monitor_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """This checkout first on the path, the embedded database under ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env |= {"PYTHONPATH": str(REPO), "MONITOR_DATA_DIR": str(data_dir), **extra}
    return env


def start_monitor(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not healthy after {timeout}s:\n{log.read_text()}")


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[0])


def process_gone(pid: int, timeout: float = 30) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped counts as exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return True
        if "\nState:\tZ" in status:
            return True
        time.sleep(0.1)
    return False
