"""Debian's headless Chromium, run the way the issue asks: --headless --no-sandbox --disable-gpu
--disable-background-networking, with a throwaway profile per call."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # ignored by git


def require_chromium() -> str:
    """The browser's path; off CI a missing browser skips loudly, in CI it fails."""
    override = os.environ.get("CHROMIUM_BIN")
    found = override or next((p for n in NAMES if (p := shutil.which(n))), None)
    if found:
        return found
    message = "!!! chromium NOT INSTALLED: apt-get install chromium (scripts/test does, as root)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _run(browser: str, args: list[str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="mm-chromium-") as profile:
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if out.returncode != 0:
        pytest.fail(f"chromium exited {out.returncode}:\n{out.stderr[-3000:]}")
    return out


def dump_dom(browser: str, url: str, *, wait_ms: int = 0) -> str:
    """The DOM after the page loaded (and ran its scripts for up to ``wait_ms`` virtual ms)."""
    extra = [f"--virtual-time-budget={wait_ms}"] if wait_ms else []
    return _run(browser, [*extra, "--dump-dom", url]).stdout


def screenshot(browser: str, url: str, path: Path, size: str = "1400,1100") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(browser, [f"--window-size={size}", f"--screenshot={path}", url])
    assert path.stat().st_size > 1000, f"empty screenshot {path}"
    return path
