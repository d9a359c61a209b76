from pathlib import Path

import pytest

from cubeport.config import load_settings
from cubeport.errors import ConfigError


def test_defaults_put_database_under_local_data_root(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for key in ("CUBEPORT_DATA_ROOT", "CUBEPORT_DATABASE_URL", "CUBEPORT_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    settings = load_settings()
    assert settings.data_root == str(tmp_path / "cubeport-data")
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'cubeport-data' / 'cubeport.db'}"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)


def test_environment_and_yaml_file(monkeypatch, tmp_path):
    config = tmp_path / "cubeport.yaml"
    config.write_text(
        "port: 9000\ns3:\n  endpoint_url: http://127.0.0.1:1234\nlayout:\n  spatial_chunk: 512\n"
    )
    monkeypatch.setenv("CUBEPORT_CONFIG", str(config))
    monkeypatch.setenv("CUBEPORT_DATA_ROOT", "s3://bucket/prefix")
    monkeypatch.setenv("CUBEPORT_S3__ACCESS_KEY_ID", "key-from-env")
    monkeypatch.setenv("CUBEPORT_DATABASE_URL", "postgresql+psycopg://u@h/db")
    settings = load_settings(port=9100)
    assert settings.port == 9100  # keyword beats file
    assert settings.is_s3 and settings.data_root == "s3://bucket/prefix"
    assert settings.s3.endpoint_url == "http://127.0.0.1:1234"
    assert settings.s3.access_key_id.get_secret_value() == "key-from-env"
    assert "key-from-env" not in repr(settings)  # secrets stay out of logs
    assert settings.layout.spatial_chunk == 512
    assert settings.effective_database_url == "postgresql+psycopg://u@h/db"


def test_s3_root_without_database_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("CUBEPORT_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match="CUBEPORT_DATABASE_URL"):
        _ = load_settings(data_root="s3://bucket").effective_database_url


@pytest.mark.parametrize("override", [{"port": 70000}, {"data_root": "s3://"}])
def test_invalid_settings_raise_config_errors(override):
    with pytest.raises(ConfigError):
        load_settings(**override)


def test_missing_config_file(monkeypatch, tmp_path):
    monkeypatch.setenv("CUBEPORT_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="not a file"):
        load_settings()
    assert not Path(tmp_path / "nope.yaml").exists()
