import pytest

from server.settings import Settings, SettingsError


def test_defaults_use_embedded_sqlite_under_var():
    s = Settings.from_env({})
    assert s.effective_database_url.startswith("sqlite:///")
    assert s.effective_database_url.endswith("var/genomeport.db")


def test_env_overrides_and_coerces_types():
    s = Settings.from_env({"GENOMEPORT_PORT": "9000", "GENOMEPORT_WES_URL_ALLOWLIST": '["example.org"]'})
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
    with pytest.raises(Exception):
        s.port = 1  # type: ignore[misc]
