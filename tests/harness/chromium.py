"""Debian's headless Chromium for tests: load a page, get its DOM after the browser ran it
(`--dump-dom`) and its console (where CSP violations are reported), or a screenshot at a given window size. Loopback only: every background service
that would reach the internet is off, and each run has its own throwaway profile."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

BINARY_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",  # root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
)
DESKTOP, PHONE = (1280, 900), (390, 844)


def find() -> str | None:
    """The Chromium binary, or None (tests skip)."""
    return next((path for name in BINARY_NAMES if (path := shutil.which(name))), None)


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    binary = find()
    if binary is None:
        raise RuntimeError("chromium is not installed")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )


@dataclass(frozen=True)
class Loaded:
    dom: str  # the DOM as serialized after loading (what scripts, had any run, made of it)
    console: list[str]  # the page's console messages: CSP violations are reported there


def load(url: str, timeout: float = 60) -> Loaded:
    """Load `url` (after redirects, with the cookies they set) and return its DOM and console."""
    run = _run(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=2000", "--dump-dom", url], timeout)
    if run.returncode != 0 or "<html" not in run.stdout:
        raise RuntimeError(f"chromium --dump-dom {url} failed ({run.returncode}): {run.stderr[-2000:]}")
    return Loaded(run.stdout, [line for line in run.stderr.splitlines() if ":CONSOLE" in line])


def screenshot(url: str, path: Path, size: tuple[int, int], timeout: float = 60) -> Path:
    """A PNG of `url` in a window of `size` (width, height) CSS pixels; a phone width is emulated
    with a device scale factor of 2, as phones render."""
    width, height = size
    scale = ["--force-device-scale-factor=2"] if width < 600 else []
    run = _run([*scale, f"--window-size={width},{height}", f"--screenshot={path}", url], timeout)
    if run.returncode != 0 or not path.is_file():
        raise RuntimeError(f"chromium --screenshot {url} failed ({run.returncode}): {run.stderr[-2000:]}")
    return path
