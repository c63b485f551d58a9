"""Pure provisioning logic: identities, password files, agent TOML, certificates, drop counting."""

from __future__ import annotations

import base64
import grp
import hashlib
import logging
import os
import stat
import threading
import tomllib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given
from hypothesis import strategies as st

from backend.provisioning import ca_store
from backend.provisioning.agent_config import AgentConfig, render_agent_toml, toml_string
from backend.provisioning.broker_monitor import DropCounter, DropReport, parse_counter
from backend.provisioning.broker_signal import BrokerSignalError, read_pid, reload_broker
from backend.provisioning.certs import make_ca, make_client_cert, make_crl, make_server_cert
from backend.provisioning.dynsec import (
    MigrationError,
    add_machine_commands,
    hashed_password,
    initial_config,
    migrated_config,
    parse_responses,
    remove_machine_commands,
)
from backend.provisioning.identity import IdentityError, validate_device_id
from backend.provisioning.password_store import (
    CredentialError,
    parse_entries,
    read_entries,
    remove_password,
    render_entries,
    set_password,
)
from backend.provisioning.passwords import hash_password, verify_password
from firmware_agent.config import AgentSettings


def _has_group(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


# -- identities ----------------------------------------------------------------------------


@pytest.mark.parametrize("machine_id", ["test-001", "sea-pioneer-sq_2", "a1"])
def test_valid_machine_ids_pass(machine_id: str) -> None:
    assert validate_device_id(machine_id) == machine_id


@pytest.mark.parametrize("machine_id", [
    "nx-backend", "nx-anything",  # service names: the ACL would grant their rights
    "A-UPPER", "has/slash", "plus+", "hash#", "", "x", "with space", "é-accent",
])
def test_unusable_machine_ids_are_refused(machine_id: str) -> None:
    with pytest.raises(IdentityError):
        validate_device_id(machine_id)


# -- password files ------------------------------------------------------------------------


def test_parse_entries_skips_comments_and_reports_junk(caplog: pytest.LogCaptureFixture) -> None:
    text = "# comment\n\nalpha:$7$101$abc$def\njunk-without-colon\nbeta:\n gamma:$7$1$x$y \n"
    with caplog.at_level(logging.WARNING):
        entries = parse_entries(text)
    assert entries == {"alpha": "$7$101$abc$def", "gamma": "$7$1$x$y"}
    assert len([r for r in caplog.records if "ignored" in r.getMessage()]) == 2


def test_set_and_remove_password(tmp_path: Path) -> None:
    path = tmp_path / "passwords"
    password = set_password(path, "site-001")
    assert len(password) >= 32
    assert verify_password(password, read_entries(path)["site-001"])
    # The broker's own user must be able to read it (Mosquitto drops root),
    # through its group when we run as root, and nobody else need.
    info = path.stat()
    if os.geteuid() == 0 and _has_group("mosquitto"):
        assert (info.st_uid, info.st_gid) == (0, grp.getgrnam("mosquitto").gr_gid)
        assert stat.S_IMODE(info.st_mode) == 0o640
    else:
        assert stat.S_IMODE(info.st_mode) == 0o644
    with pytest.raises(CredentialError, match="already has"):
        set_password(path, "site-001")
    rotated = set_password(path, "site-001", replace=True)
    assert rotated != password
    assert verify_password(rotated, read_entries(path)["site-001"])
    assert not verify_password(password, read_entries(path)["site-001"])
    assert remove_password(path, "site-001") is True
    assert remove_password(path, "site-001") is False
    assert read_entries(path) == {}


def test_concurrent_additions_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "passwords"
    names = [f"site-{n:03d}" for n in range(24)]
    passwords: dict[str, str] = {}
    errors: list[BaseException] = []

    def add(name: str) -> None:
        try:
            passwords[name] = set_password(path, name)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    entries = read_entries(path)
    assert sorted(entries) == names
    assert all(verify_password(passwords[n], entries[n]) for n in names)


# -- agent configuration -------------------------------------------------------------------


@given(st.text())
def test_toml_string_round_trips(text: str) -> None:
    assert tomllib.loads(f"v = {toml_string(text)}")["v"] == text


def test_password_config_loads_into_agent_settings(tmp_path: Path) -> None:
    text = render_agent_toml(AgentConfig(machine_id="site-001", mqtt_host="broker.example",
                                         mqtt_port=8884, mqtt_password='p"w\\x',
                                         tls_ca_file=Path("/etc/nx-agent/ca.crt")))
    path = tmp_path / "agent.toml"
    path.write_text(text, encoding="utf-8")
    settings = AgentSettings.load(path, environ={})
    assert settings.machine_id == "site-001"
    assert settings.mqtt_username == "site-001"
    assert settings.mqtt_password.get_secret_value() == 'p"w\\x'
    assert (settings.mqtt_host, settings.mqtt_port) == ("broker.example", 8884)
    assert settings.tls_ca_file == Path("/etc/nx-agent/ca.crt")
    assert settings.tls_cert_file is None


def test_certificate_config_has_no_password(tmp_path: Path) -> None:
    text = render_agent_toml(AgentConfig(
        machine_id="site-002", mqtt_host="broker.example", mqtt_port=8883,
        tls_ca_file=Path("/etc/nx-agent/ca.crt"),
        tls_cert_file=Path("/etc/nx-agent/site-002.crt"),
        tls_key_file=Path("/etc/nx-agent/site-002.key")))
    assert "mqtt_password" not in text
    path = tmp_path / "agent.toml"
    path.write_text(text, encoding="utf-8")
    settings = AgentSettings.load(path, environ={})
    assert settings.tls_key_file == Path("/etc/nx-agent/site-002.key")


# -- certificates --------------------------------------------------------------------------


def _verify(cert: x509.Certificate, ca: x509.Certificate) -> None:
    public_key = ca.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    hash_algorithm = cert.signature_hash_algorithm
    assert hash_algorithm is not None
    public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hash_algorithm))


def test_client_certificate_names_the_machine_and_chains_to_the_ca() -> None:
    ca = make_ca()
    client = make_client_cert(ca, "site-007")
    cn = client.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "site-007"
    assert client.cert.issuer == ca.cert.subject
    _verify(client.cert, ca.cert)
    usage = client.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not client.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_server_certificate_lists_names_and_addresses() -> None:
    ca = make_ca()
    server = make_server_cert(ca, ["broker.example", "127.0.0.1"])
    names = server.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["broker.example"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    with pytest.raises(ValueError, match="at least one"):
        make_server_cert(ca, [])


def test_crl_lists_revoked_serials() -> None:
    ca = make_ca()
    crl = make_crl(ca, [5, 7, 5])
    assert sorted(r.serial_number for r in crl) == [5, 7]
    assert crl.is_signature_valid(ca.key.public_key())


def test_ca_store_issues_and_revokes(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    ca_store.init_ca(ca_dir)
    assert stat.S_IMODE((ca_dir / "ca.key").stat().st_mode) == 0o600
    with pytest.raises(ca_store.CaError, match="refusing to overwrite"):
        ca_store.init_ca(ca_dir)
    first = ca_store.issue_client(ca_dir, "site-001", tmp_path / "out")
    ca_store.issue_client(ca_dir, "site-001", tmp_path / "out2")
    assert stat.S_IMODE(first.key_file.stat().st_mode) == 0o600
    serials = ca_store.revoke_client(ca_dir, "site-001")
    assert len(serials) == 2
    crl = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    assert sorted(r.serial_number for r in crl) == sorted(serials)
    assert ca_store.revoke_client(ca_dir, "site-001") == []
    with pytest.raises(ca_store.CaError, match="ca init"):
        ca_store.issue_client(tmp_path / "nowhere", "site-001", tmp_path / "x")


# -- broker signalling and drop counting ---------------------------------------------------


def test_pid_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(BrokerSignalError, match="cannot read"):
        read_pid(tmp_path / "missing.pid")
    garbage = tmp_path / "garbage.pid"
    garbage.write_text("not-a-pid")
    with pytest.raises(BrokerSignalError, match="does not hold a pid"):
        reload_broker(garbage)
    # A damaged byte is no pid either (it was a UnicodeDecodeError, or int() refusing "²").
    for damaged in (b"12\xb2\n", "\u00b2".encode(), "\u0663\u0663".encode(), b"1_000"):
        garbage.write_bytes(damaged)
        with pytest.raises(BrokerSignalError, match="does not hold a pid"):
            read_pid(garbage)


def test_drop_counter_reports_each_increase_once() -> None:
    counter = DropCounter()
    assert counter.observe(0) is None
    assert counter.observe(0) is None
    assert counter.observe(30) == DropReport(30, 30)
    assert counter.observe(30) is None
    assert counter.observe(45) == DropReport(15, 45)
    # A restarted broker counts from zero again.
    assert counter.observe(4) == DropReport(4, 4, broker_restarted=True)
    assert counter.observe(0) is None


def test_drops_before_the_monitor_started_are_reported() -> None:
    assert DropCounter().observe(12) == DropReport(12, 12)


@pytest.mark.parametrize(("payload", "value"), [(b"17", 17), (b" 3\n", 3), (b"x", None),
                                                (b"-1", None), (b"", None), (b"\xb2", None),
                                                ("\u00b2".encode(), None), (b"1_0", None)])
def test_parse_counter(payload: bytes, value: int | None) -> None:
    assert parse_counter(payload) == value


_names = st.from_regex(r"[a-z0-9][a-z0-9_-]{1,20}", fullmatch=True)
_hashes = st.from_regex(r"\$7\$[0-9]{1,4}\$[A-Za-z0-9+/=]{4,20}\$[A-Za-z0-9+/=]{4,20}",
                        fullmatch=True)


@given(st.dictionaries(_names, _hashes, max_size=20))
def test_password_file_text_round_trips(entries: dict[str, str]) -> None:
    assert parse_entries("".join(render_entries(entries))) == entries


# -- dynamic-security commands -------------------------------------------------------------


def test_dynsec_bootstrap_admin_can_only_administer() -> None:
    config = initial_config("nx-dynsec-admin", "secret")
    [admin] = config["clients"]
    salt = base64.b64decode(admin["salt"])
    digest = hashlib.pbkdf2_hmac("sha512", b"secret", salt, admin["iterations"])
    assert base64.b64encode(digest).decode() == admin["password"]
    [role] = config["roles"]
    assert {acl["topic"] for acl in role["acls"]} == {"$CONTROL/dynamic-security/#"}
    assert config["defaultACLAccess"]["subscribe"] is False
    assert config["defaultACLAccess"]["publishClientSend"] is False


def test_dynsec_machine_role_names_only_its_own_topics() -> None:
    commands = add_machine_commands("site-001", "pw")
    topics = {c["topic"] for c in commands if c["command"] == "addRoleACL"}
    assert all(t.startswith("nx/v1/machines/site-001/") for t in topics)
    [client] = [c for c in commands if c["command"] == "createClient"]
    assert client["clientid"] == "site-001"
    assert [c["command"] for c in remove_machine_commands("site-001")] == [
        "deleteClient", "deleteRole"]
    with pytest.raises(IdentityError):
        add_machine_commands("nx-backend", "pw")


def test_dynsec_certificate_machine_has_a_role_and_no_password() -> None:
    commands = add_machine_commands("site-002", None)
    [client] = [c for c in commands if c["command"] == "createClient"]
    assert "password" not in client
    assert client["clientid"] == "site-002"


def test_migration_keeps_password_hashes_and_adds_certificate_machines() -> None:
    entries = {"site-001": hash_password("pw-1"), "nx-backend": hash_password("pw-b"),
               "site-old": "$6$c2FsdA==$aGFzaA==", "Bad Name": hash_password("x"),
               "site-ring": "$7$\u00b2$c2FsdA==$aGFzaA=="}
    config, skipped = migrated_config(("nx-dynsec-admin", "a"), entries,
                                      ["site-001", "site-cert"], "g")
    clients = {c["username"]: c for c in config["clients"]}
    assert set(clients) == {"nx-dynsec-admin", "site-001", "nx-backend", "site-cert"}
    assert sorted(reason.split(":")[0] for reason in skipped) == [
        "Bad Name", "site-old", "site-ring"]
    machine = clients["site-001"]
    digest = hashlib.pbkdf2_hmac("sha512", b"pw-1", base64.b64decode(machine["salt"]),
                                 machine["iterations"])
    assert base64.b64encode(digest).decode() == machine["password"]  # same password
    assert machine["clientid"] == "site-001"
    assert "password" not in clients["site-cert"]
    assert clients["nx-backend"]["roles"] == [{"rolename": "nx-backend"}]
    assert "clientid" not in clients["nx-backend"]  # services choose their client ids
    roles = {r["rolename"] for r in config["roles"]}
    assert {"machine-site-001", "machine-site-cert", "nx-backend"} <= roles
    with pytest.raises(MigrationError):
        hashed_password("$7$101$c2FsdA==$aGFzaA==")  # salt and hash too short


@pytest.mark.parametrize("payload", [b"", b"not json", b'{"responses": 3}', b"[]"])
def test_dynsec_unreadable_responses_yield_nothing(payload: bytes) -> None:
    assert parse_responses(payload) == []


def test_crl_export_copies_the_current_crl(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    ca_store.init_ca(ca_dir)
    ca_store.issue_client(ca_dir, "site-001", tmp_path / "out")
    serials = ca_store.revoke_client(ca_dir, "site-001")
    broker_crl = tmp_path / "etc" / "crl.pem"
    broker_crl.parent.mkdir()
    ca_store.export_crl(ca_dir, broker_crl)
    crl = x509.load_pem_x509_crl(broker_crl.read_bytes())
    assert [r.serial_number for r in crl] == serials
    assert stat.S_IMODE(broker_crl.stat().st_mode) == 0o644
    with pytest.raises(ca_store.CaError, match="no CRL"):
        ca_store.export_crl(tmp_path / "nowhere", broker_crl)

