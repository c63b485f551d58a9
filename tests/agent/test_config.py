"""Agent settings from TOML and NX_AGENT_ environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from firmware_agent.config import AgentSettings, ConfigError

TOML = """
machine_id = "test-004"
serial_port = "/dev/ttyAMA0"
mqtt_host = "broker.example.org"
mqtt_port = 8883
mqtt_password = "s3cret"
tls_ca_file = "/etc/nx-agent/ca.pem"
data_dir = "/var/lib/nx-agent"
heartbeat_s = 30
"""


def test_toml_file_with_environment_overrides(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(TOML, encoding="utf-8")
    monkeypatch.setenv("NX_AGENT_HEARTBEAT_S", "5")
    settings = AgentSettings.from_toml(path)
    assert settings.machine_id == "test-004"
    assert settings.mqtt_port == 8883
    assert settings.heartbeat_s == 5.0  # the environment wins
    assert settings.username == "test-004"
    assert settings.mqtt_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.tls_ca_file == Path("/etc/nx-agent/ca.pem")
    # Another settings object built afterwards does not see the file.
    monkeypatch.setenv("NX_AGENT_MACHINE_ID", "test-005")
    assert AgentSettings().serial_port == "/dev/ttyUSB0"


def test_bad_files_and_values_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        AgentSettings.from_toml(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("machine_id = ", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        AgentSettings.from_toml(broken)
    bad = tmp_path / "bad.toml"
    bad.write_text('machine_id = "Bad Id"\nfrobnicate = 1\n', encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        AgentSettings.from_toml(bad)
    text = str(info.value)
    assert "machine_id" in text
    assert "frobnicate" in text


def test_client_certificate_needs_its_key() -> None:
    with pytest.raises(ValidationError, match="go together"):
        AgentSettings(machine_id="test-001", tls_cert_file=Path("/c.pem"))


def test_dex_slot_map_from_toml_and_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(TOML + 'driver = "dex"\n\n[dex_slot_map]\nA1 = 1\n"10" = 4\n',
                    encoding="utf-8")
    assert AgentSettings.from_toml(path).dex_slot_map == {"A1": 1, "10": 4}
    monkeypatch.setenv("NX_AGENT_DEX_SLOT_MAP", '{"A1": 3, "C1": 2}')
    # pydantic-settings merges a table from the environment over the file's.
    assert AgentSettings.from_toml(path).dex_slot_map == {"A1": 3, "10": 4, "C1": 2}
    assert AgentSettings(machine_id="test-001").dex_slot_map == {"A1": 3, "C1": 2}


def test_dex_slot_map_defaults_to_empty() -> None:
    assert AgentSettings(machine_id="test-001").dex_slot_map == {}


@pytest.mark.parametrize(("mapping", "why"), [
    ({"A1": 0}, "greater than or equal to 1"),
    ({"A1": 100}, "less than or equal to 99"),
    ({"A1": "two"}, "valid integer"),
    ({"": 1}, "selection ids"),
    ({"A 1": 1}, "selection ids"),
    ({"A*1": 1}, "selection ids"),
    ({"A1\n": 1}, "selection ids"),
    ({"x" * 21: 1}, "selection ids"),
])
def test_bad_dex_slot_maps_are_refused(mapping: dict[str, object], why: str) -> None:
    with pytest.raises(ValidationError, match="dex_slot_map") as info:
        AgentSettings(machine_id="test-001", dex_slot_map=mapping)
    assert why in str(info.value)


def test_bad_dex_slot_map_in_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NX_AGENT_DEX_SLOT_MAP", '{"A1": 0}')
    with pytest.raises(ValidationError, match="dex_slot_map"):
        AgentSettings(machine_id="test-001")
    monkeypatch.setenv("NX_AGENT_DEX_SLOT_MAP", "A1=1")  # not JSON
    with pytest.raises(SettingsError, match="dex_slot_map"):
        AgentSettings(machine_id="test-001")
