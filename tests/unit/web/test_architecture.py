"""ARCHITECTURE.md names files that exist and the accelerations the code has."""

from __future__ import annotations

import re
from pathlib import Path

from server.web import accel
from server.web.apis import APIS

ROOT = Path(__file__).resolve().parents[3]
TEXT = (ROOT / "ARCHITECTURE.md").read_text()


def test_every_path_it_names_exists():
    named = set(re.findall(r"\b((?:server|handlers|scripts)/[\w/]+\.(?:py|sh))\b", TEXT))
    named |= {f"server/web/accel/{m}.py" for m in re.findall(r"\baccel/(\w+)\.py", TEXT)}
    assert len(named) > 10
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, f"ARCHITECTURE.md names files that do not exist: {missing}"


def test_it_lists_every_acceleration_and_the_api_table():
    for name in accel.NAMES:
        assert f"`{name}`" in TEXT
    assert "server/web/apis.py" in TEXT and len(APIS) == 8
