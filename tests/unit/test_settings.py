import dataclasses
import json

import pytest

from server.settings import Settings, SettingsError


def test_defaults_use_embedded_sqlite_under_var():
    s = Settings.from_env({})
    assert s.effective_database_url.startswith("sqlite:///")
    assert s.effective_database_url.endswith("var/genomeport.db")


def test_env_overrides_and_coerces_types():
    s = Settings.from_env(
        {"GENOMEPORT_PORT": "9000", "GENOMEPORT_WES_URL_ALLOWLIST": '["example.org"]'}
    )
    assert s.port == 9000
    assert s.wes_url_allowlist == ("example.org",)


def test_unknown_environment_key_is_an_error():
    with pytest.raises(SettingsError, match="GENOMEPORT_PROT"):
        Settings.from_env({"GENOMEPORT_PROT": "9000"})


def test_bad_value_is_an_error():
    with pytest.raises(SettingsError, match="GENOMEPORT_PORT"):
        Settings.from_env({"GENOMEPORT_PORT": "eighty"})


def test_toml_file_then_environment(tmp_path):
    cfg = tmp_path / "node.toml"
    cfg.write_text('port = 7000\npublic_url = "https://genomes.example.dk"\n')
    s = Settings.from_env({"GENOMEPORT_CONFIG": str(cfg), "GENOMEPORT_PORT": "7001"})
    assert s.port == 7001
    assert s.public_url == "https://genomes.example.dk"


def test_unknown_toml_key_is_an_error(tmp_path):
    cfg = tmp_path / "node.toml"
    cfg.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="prot"):
        Settings.from_env({"GENOMEPORT_CONFIG": str(cfg)})


def test_settings_are_frozen():
    s = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1  # type: ignore[misc]


NODE_CALLER_ERRORS = [
    "alice",
    "",
    " https://idp.example|alice",
    "https://idp.example|",
    "idp.example|alice",
    "|alice",
    "ftp://idp.example|alice",
]


@pytest.mark.parametrize("entry", NODE_CALLER_ERRORS)
def test_node_callers_must_be_caller_labels(entry):
    with pytest.raises(SettingsError, match="WES_NODE_CALLERS"):
        Settings(wes_node_callers=(entry,))
    with pytest.raises(SettingsError, match="WES_NODE_CALLERS"):
        Settings.from_env({"GENOMEPORT_WES_NODE_CALLERS": json.dumps([entry])})


def test_node_caller_labels_accepted_and_checked_against_issuers():
    assert Settings(wes_node_callers=("https://idp.example|alice", "anonymous")).wes_node_callers
    issuers = ({"issuer": "https://idp.example", "jwks_uri": "https://idp.example/jwks"},)
    assert Settings(auth_issuers=issuers, wes_node_callers=("https://idp.example|svc-loader",))
    with pytest.raises(SettingsError, match="not one of"):
        Settings(auth_issuers=issuers, wes_node_callers=("https://other.example|svc",))
    with pytest.raises(SettingsError, match="anonymous"):
        Settings(auth_issuers=issuers, wes_node_callers=("anonymous",))


def test_malformed_node_caller_stops_the_node_at_start_up(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("GENOMEPORT_")}
    env.update(GENOMEPORT_VAR_DIR=str(tmp_path), GENOMEPORT_WES_NODE_CALLERS='["alice"]')
    for command in (["serve"], ["worker"]):
        proc = subprocess.run(
            [sys.executable, "-m", "server.cli", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 1
        assert (
            "configuration error" in proc.stderr and "'alice' is not a caller label" in proc.stderr
        )
        assert "<issuer>|<sub>" in proc.stderr


@pytest.mark.parametrize(
    ("environ", "url"),
    [
        ({}, "http://127.0.0.1:8080"),
        ({"GENOMEPORT_PORT": "9000"}, "http://127.0.0.1:9000"),
        ({"GENOMEPORT_HOST": "10.1.2.3", "GENOMEPORT_PORT": "9001"}, "http://10.1.2.3:9001"),
        ({"GENOMEPORT_HOST": "0.0.0.0"}, "http://127.0.0.1:8080"),  # all interfaces
        ({"GENOMEPORT_HOST": "::"}, "http://[::1]:8080"),
        ({"GENOMEPORT_HOST": "fd00::7"}, "http://[fd00::7]:8080"),
        ({"GENOMEPORT_PORT": "9000", "GENOMEPORT_PUBLIC_URL": "https://g.example.dk"}, None),
    ],
)
def test_public_url_is_the_bound_address_unless_set(environ, url):
    s = Settings.from_env(environ)
    assert s.public_url == (url or "https://g.example.dk")
    assert s.audience == s.public_url


def test_a_derived_public_url_follows_host_and_port_overrides():
    """`genomeport serve --port 9000` overrides the port after the settings are read."""
    derived = Settings.from_env({}).with_overrides(port=9000, host="127.0.0.2")
    assert derived.public_url == "http://127.0.0.2:9000"
    assert derived.with_overrides(workers=4).public_url == "http://127.0.0.2:9000"
    explicit = Settings(public_url="https://g.example.dk").with_overrides(port=9000)
    assert explicit.public_url == "https://g.example.dk"
    assert Settings().with_overrides(public_url="https://x.example").public_url == (
        "https://x.example"
    )
