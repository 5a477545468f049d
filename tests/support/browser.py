"""The system Chromium the browser tests drive (headless, or through Playwright)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def chromium_path() -> str:
    """The ``chromium`` on PATH, installed by ``scripts/install-browser.sh`` when missing."""
    if not shutil.which("chromium"):
        subprocess.run(["bash", str(REPO / "scripts" / "install-browser.sh")], check=True)
    path = shutil.which("chromium")
    assert path, "scripts/install-browser.sh did not put chromium on PATH"
    return path
