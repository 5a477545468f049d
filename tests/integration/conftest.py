from __future__ import annotations

import pytest

from tests.support.browser import chromium_path


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of the system Chromium (installed on first use)."""
    return chromium_path()
