"""The README's settings table matches the code."""

import dataclasses
from pathlib import Path

from server.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented_in_the_readme():
    missing = [
        f"GENOMEPORT_{f.name.upper()}"
        for f in dataclasses.fields(Settings)
        if f"`GENOMEPORT_{f.name.upper()}`" not in README
    ]
    assert not missing, f"run `python scripts/settings_table.py --write`; missing: {missing}"


def test_readme_commands_exist():
    root = Path(__file__).resolve().parents[2]
    for script in ("scripts/demo.sh", "scripts/test.sh"):
        assert f"bash {script}" in README
        assert (root / script).exists()
    assert "bash scripts/test.sh" in (root / ".ci" / "run").read_text()
