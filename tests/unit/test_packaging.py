"""The Dockerfile and compose file match what the app reads at run time
(no Docker engine here, so their content is checked instead)."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_dockerfile_copies_what_the_app_reads_and_runs_as_non_root():
    text = (ROOT / "Dockerfile").read_text()
    copied = {
        src.rstrip("/")
        for line in text.splitlines()
        if line.startswith("COPY ")
        for src in line.split()[1:-1]
    }
    for needed in (
        "server",
        "handlers",
        "openapi",
        "workflows",
        "seed_data",
        "setup.cfg",
        "pyproject.toml",
    ):
        assert needed in copied, needed
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert "pip install --no-cache-dir -e ." in text  # openapi/ is read beside server/
    assert '"genomeport", "serve"' in text


def test_compose_runs_postgresql_server_and_worker():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"db", "server", "worker"} <= set(services)
    assert services["worker"]["command"] == ["genomeport", "worker"]
    env = services["server"]["environment"]
    assert env["GENOMEPORT_DATABASE_URL"].startswith("postgresql://")
    from server.settings import Settings

    Settings.from_env({k: str(v) for k, v in env.items()})  # every variable is a known setting
