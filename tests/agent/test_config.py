"""Agent settings from TOML and NX_AGENT_ environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from firmware_agent.config import AgentSettings, ConfigError
from firmware_agent.config_sources import merge, values_from_environment

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
    settings = AgentSettings.load(path)
    assert settings.machine_id == "test-004"
    assert settings.mqtt_port == 8883
    assert settings.heartbeat_s == 5.0  # the environment wins
    assert settings.username == "test-004"
    assert settings.mqtt_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.tls_ca_file == Path("/etc/nx-agent/ca.pem")
    # Settings loaded afterwards without the file do not see it.
    monkeypatch.setenv("NX_AGENT_MACHINE_ID", "test-005")
    assert AgentSettings.load().serial_port == "/dev/ttyUSB0"
    assert AgentSettings.load().machine_id == "test-005"


def test_explicit_values_win_and_direct_construction_reads_no_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(TOML, encoding="utf-8")
    monkeypatch.setenv("NX_AGENT_MQTT_PORT", "1884")
    assert AgentSettings.load(path, mqtt_port=1885).mqtt_port == 1885
    assert AgentSettings.load(path).mqtt_port == 1884
    assert AgentSettings.load(path, environ={}).mqtt_port == 8883
    assert AgentSettings(machine_id="test-001").mqtt_port == 1883


def test_variable_names_ignore_case(monkeypatch: pytest.MonkeyPatch) -> None:
    # As pydantic-settings (the backend's loader) reads them.
    settings = AgentSettings.load(environ={"nx_agent_machine_id": "test-006",
                                           "NX_AGENT_Mqtt_Host": "broker.local"})
    assert (settings.machine_id, settings.mqtt_host) == ("test-006", "broker.local")


def test_a_variable_that_names_no_setting_is_an_error() -> None:
    with pytest.raises(ConfigError, match="NX_AGENT_MQTT_PASWORD names no setting") as info:
        AgentSettings.load(environ={"NX_AGENT_MACHINE_ID": "test-001",
                                    "NX_AGENT_MQTT_PASWORD": "x"})
    assert "NX_AGENT_MQTT_PASSWORD" in str(info.value)  # the known names are listed
    assert AgentSettings.load(environ={"NX_AGENT_MACHINE_ID": "test-001",
                                       "NX_BACKEND_DATABASE_URL": "x"}).machine_id == "test-001"


def test_bad_files_and_values_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        AgentSettings.load(tmp_path / "missing.toml", environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("machine_id = ", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        AgentSettings.load(broken, environ={})
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('machine_id = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        AgentSettings.load(latin1, environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text('machine_id = "Bad Id"\nfrobnicate = 1\n', encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        AgentSettings.load(bad, environ={})
    text = str(info.value)
    assert "machine_id" in text
    assert "frobnicate" in text
    with pytest.raises(ValidationError, match="mqtt_port"):
        AgentSettings.load(environ={"NX_AGENT_MACHINE_ID": "test-001",
                                    "NX_AGENT_MQTT_PORT": "eighty"})


def test_client_certificate_needs_its_key() -> None:
    with pytest.raises(ValidationError, match="go together"):
        AgentSettings(machine_id="test-001", tls_cert_file=Path("/c.pem"))


def test_dex_slot_map_from_toml_and_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(TOML + 'driver = "dex"\n\n[dex_slot_map]\nA1 = 1\n"10" = 4\n',
                    encoding="utf-8")
    assert AgentSettings.load(path).dex_slot_map == {"A1": 1, "10": 4}
    monkeypatch.setenv("NX_AGENT_DEX_SLOT_MAP", '{"A1": 3, "C1": 2}')
    # A table from the environment is merged over the file's, as pydantic-settings does.
    assert AgentSettings.load(path).dex_slot_map == {"A1": 3, "10": 4, "C1": 2}
    assert AgentSettings.load(machine_id="test-001").dex_slot_map == {"A1": 3, "C1": 2}


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
        AgentSettings.load(machine_id="test-001")
    monkeypatch.setenv("NX_AGENT_DEX_SLOT_MAP", "A1=1")  # not JSON
    with pytest.raises(ConfigError, match=r"NX_AGENT_DEX_SLOT_MAP \(dex_slot_map\) must be JSON"):
        AgentSettings.load(machine_id="test-001")


def test_only_structured_settings_are_json_in_the_environment() -> None:
    # A password that happens to look like JSON stays the string it is.
    settings = AgentSettings.load(environ={"NX_AGENT_MACHINE_ID": "test-001",
                                           "NX_AGENT_MQTT_PASSWORD": '{"a": 1}'})
    assert settings.mqtt_password.get_secret_value() == '{"a": 1}'


tables = st.recursive(st.integers() | st.text(max_size=3),
                      lambda inner: st.dictionaries(st.text(max_size=2), inner, max_size=3),
                      max_leaves=8)


@given(st.dictionaries(st.text(max_size=2), tables, max_size=4),
       st.dictionaries(st.text(max_size=2), tables, max_size=4))
def test_merge_lays_the_override_over_the_base(base: dict[str, object],
                                               override: dict[str, object]) -> None:
    merged = merge(base, override)
    assert set(merged) == set(base) | set(override)
    for key, value in merged.items():
        if key not in override:
            assert value == base[key]
        elif isinstance(override[key], dict) and isinstance(base.get(key), dict):
            assert value == merge(base[key], override[key])  # type: ignore[arg-type]
        else:
            assert value == override[key]


def test_environment_source_keeps_unprefixed_variables_out() -> None:
    values = values_from_environment(
        {"PATH": "/bin", "NX_AGENT_A": "1", "NX_AGENTB": "2", "XNX_AGENT_A": "3"},
        "NX_AGENT_", fields={"a", "b"}, structured=())
    assert values == {"a": "1"}
