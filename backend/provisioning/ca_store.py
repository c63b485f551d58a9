"""The deployment CA on disk: create it, issue server and machine certificates, revoke them.

Layout of the CA directory (keep it off the broker host if you can; only
``ca.crt``, ``crl.pem`` and the server pair go to the broker):

    ca.key       CA private key, 0600: never leaves this directory
    ca.crt       CA certificate: the broker's ``cafile`` and every agent's tls_ca_file
    crl.pem      revoked machine certificates: the broker's ``crlfile``
    server.crt   the broker's certificate  (``certfile``)
    server.key   the broker's private key  (``keyfile``), readable by the broker's user
    issued.json  serial numbers issued and revoked per machine id
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from backend.provisioning.certs import (
    KeyPair,
    load_key_pair,
    make_ca,
    make_client_cert,
    make_crl,
    make_server_cert,
)

BROKER_USER = "mosquitto"


class CaError(RuntimeError):
    """The CA directory is missing, already initialised, or inconsistent."""


@dataclass(frozen=True)
class ClientBundle:
    """Where a machine's certificate, key and the CA certificate were written."""

    cert_file: Path
    key_file: Path
    ca_file: Path


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)
    tmp.replace(path)


def give_to_broker_user(path: Path) -> None:
    """Chown ``path`` to the broker's user when we run as root (it drops to that user)."""
    # Mosquitto started as root drops to "mosquitto" before it reads its key.
    if os.geteuid() != 0:
        return
    try:
        entry = pwd.getpwnam(BROKER_USER)
    except KeyError:
        return
    os.chown(path, entry.pw_uid, entry.pw_gid)


@contextmanager
def _locked(ca_dir: Path) -> Iterator[None]:
    with open(ca_dir / ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _ledger(ca_dir: Path) -> dict[str, dict[str, list[int]]]:
    try:
        data = json.loads((ca_dir / "issued.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"issued": {}, "revoked": {}}
    except (OSError, ValueError) as exc:
        raise CaError(f"cannot read {ca_dir / 'issued.json'}: {exc}") from exc
    return {"issued": dict(data.get("issued", {})), "revoked": dict(data.get("revoked", {}))}


def _save_ledger(ca_dir: Path, ledger: dict[str, dict[str, list[int]]]) -> None:
    _write(ca_dir / "issued.json", json.dumps(ledger, indent=2, sort_keys=True).encode(), 0o600)


def _write_crl(ca_dir: Path, ca: KeyPair, ledger: dict[str, dict[str, list[int]]]) -> None:
    serials = [serial for values in ledger["revoked"].values() for serial in values]
    crl = make_crl(ca, serials)
    _write(ca_dir / "crl.pem", crl.public_bytes(serialization.Encoding.PEM), 0o644)


def init_ca(ca_dir: Path, common_name: str = "NaloxNet device CA") -> Path:
    """Create a new CA (key, certificate, empty CRL) in ``ca_dir``; return the CA cert path."""
    ca_dir.mkdir(parents=True, exist_ok=True)
    if (ca_dir / "ca.key").exists():
        raise CaError(f"{ca_dir} already holds a CA; refusing to overwrite its key")
    ca = make_ca(common_name)
    _write(ca_dir / "ca.key", ca.key_pem(), 0o600)
    _write(ca_dir / "ca.crt", ca.cert_pem(), 0o644)
    with _locked(ca_dir):
        ledger = _ledger(ca_dir)
        _save_ledger(ca_dir, ledger)
        _write_crl(ca_dir, ca, ledger)
    return ca_dir / "ca.crt"


def load_ca(ca_dir: Path) -> KeyPair:
    """Load the CA from ``ca_dir``."""
    try:
        return load_key_pair((ca_dir / "ca.crt").read_bytes(), (ca_dir / "ca.key").read_bytes())
    except FileNotFoundError as exc:
        raise CaError(f"no CA in {ca_dir}: run `nx-backend device ca init` first") from exc


def issue_server(ca_dir: Path, hosts: Sequence[str]) -> tuple[Path, Path]:
    """Issue the broker's certificate for ``hosts``; return (cert, key) paths."""
    pair = make_server_cert(load_ca(ca_dir), hosts)
    cert_file, key_file = ca_dir / "server.crt", ca_dir / "server.key"
    _write(cert_file, pair.cert_pem(), 0o644)
    _write(key_file, pair.key_pem(), 0o600)
    give_to_broker_user(key_file)
    return cert_file, key_file


def issue_client(ca_dir: Path, machine_id: str, out_dir: Path) -> ClientBundle:
    """Issue a certificate for ``machine_id`` into ``out_dir`` and record its serial."""
    ca = load_ca(ca_dir)
    pair = make_client_cert(ca, machine_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle = ClientBundle(out_dir / f"{machine_id}.crt", out_dir / f"{machine_id}.key",
                          out_dir / "ca.crt")
    _write(bundle.cert_file, pair.cert_pem(), 0o644)
    _write(bundle.key_file, pair.key_pem(), 0o600)
    _write(bundle.ca_file, ca.cert_pem(), 0o644)
    with _locked(ca_dir):
        ledger = _ledger(ca_dir)
        ledger["issued"].setdefault(machine_id, []).append(pair.cert.serial_number)
        _save_ledger(ca_dir, ledger)
    return bundle


def revoke_client(ca_dir: Path, machine_id: str) -> list[int]:
    """Revoke every certificate issued to ``machine_id``, rewrite the CRL; return the serials."""
    ca = load_ca(ca_dir)
    with _locked(ca_dir):
        ledger = _ledger(ca_dir)
        serials = ledger["issued"].pop(machine_id, [])
        if serials:
            ledger["revoked"].setdefault(machine_id, []).extend(serials)
            _save_ledger(ca_dir, ledger)
        _write_crl(ca_dir, ca, ledger)
    return serials


def certified_machines(ca_dir: Path) -> list[str]:
    """Return the machines that hold a certificate not revoked, sorted."""
    return sorted(machine for machine, serials in _ledger(ca_dir)["issued"].items() if serials)


def export_crl(ca_dir: Path, destination: Path) -> None:
    """Copy the CA's current CRL to where the broker reads it (its ``crlfile``), atomically."""
    try:
        data = (ca_dir / "crl.pem").read_bytes()
    except FileNotFoundError as exc:
        raise CaError(f"no CRL in {ca_dir}: run `nx-backend device ca init` first") from exc
    _write(destination, data, 0o644)
