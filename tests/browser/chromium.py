"""Finding a Chromium for the browser tests, and saying plainly why they skip without one.

Browser builds cannot be downloaded here (``playwright install`` fails), so the tests
drive the distribution's Chromium (Debian's ``chromium`` package) through Playwright's
``executable_path``. ``HITL_CHROMIUM`` points at another binary.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

# Flags for a headless Chromium in containers and CI: no sandbox (root), no GPU, and no
# background traffic to Google (the machine may have no route out).
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The Chromium binary to drive: ``HITL_CHROMIUM``, else the first one on PATH."""
    configured = os.environ.get("HITL_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def skip_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "browser tests need Playwright: pip install playwright (make test installs it)"
    if find_chromium() is None:
        return (
            "browser tests need Chromium and none is installed: apt-get install chromium "
            "(make test tries), or set HITL_CHROMIUM to a Chromium binary"
        )
    return None
