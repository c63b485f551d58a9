"""Build X.509 material for the deployment: a CA, the broker's server certificate,
machine client certificates (CN = machine id) and the CRL. Pure: no files here.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALID_DAYS = 10 * 365
SERVER_VALID_DAYS = 825  # the longest life browsers and most TLS stacks accept
CLIENT_VALID_DAYS = 5 * 365  # a machine's field life between refurbishments
CRL_VALID_DAYS = 30  # re-issued on every revocation; the broker reloads it on SIGHUP
# P-256: small keys and fast handshakes on a Raspberry Pi, supported by
# every OpenSSL that Mosquitto 2 builds against.
CURVE = ec.SECP256R1()


@dataclass(frozen=True)
class KeyPair:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        """Return the certificate, PEM-encoded."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """Return the private key, PEM-encoded (PKCS#8, unencrypted for unattended use)."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def make_ca(common_name: str = "NaloxNet device CA", organisation: str = "NaloxNet",
            days: int = CA_VALID_DAYS) -> KeyPair:
    """Create a self-signed CA that may sign leaf certificates only."""
    key = ec.generate_private_key(CURVE)
    name = _name(common_name, organisation)
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False,
                          key_encipherment=False, data_encipherment=False,
                          key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert, key)


def _leaf(ca: KeyPair, common_name: str, days: int, usage: x509.ObjectIdentifier,
          alt_names: Sequence[x509.GeneralName] = ()) -> KeyPair:
    key = ec.generate_private_key(CURVE)
    now = _now()
    organisation = ca.cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    org = str(organisation[0].value) if organisation else "NaloxNet"
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, org))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False,
                          key_agreement=True, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(alt_names)),
                                        critical=False)
    return KeyPair(builder.sign(ca.key, hashes.SHA256()), key)


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make_server_cert(ca: KeyPair, hosts: Sequence[str],
                     days: int = SERVER_VALID_DAYS) -> KeyPair:
    """Issue the broker's certificate for ``hosts`` (DNS names or IP addresses)."""
    if not hosts:
        raise ValueError("a server certificate needs at least one host name or address")
    return _leaf(ca, hosts[0], days, ExtendedKeyUsageOID.SERVER_AUTH,
                 [_alt_name(host) for host in hosts])


def make_client_cert(ca: KeyPair, machine_id: str,
                     days: int = CLIENT_VALID_DAYS) -> KeyPair:
    """Issue a machine's certificate; its CN is the machine id (its MQTT username)."""
    return _leaf(ca, machine_id, days, ExtendedKeyUsageOID.CLIENT_AUTH)


def make_crl(ca: KeyPair, revoked_serials: Iterable[int],
             days: int = CRL_VALID_DAYS) -> x509.CertificateRevocationList:
    """Return a CRL signed by ``ca`` listing ``revoked_serials``."""
    now = _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=days))
    )
    for serial in sorted(set(revoked_serials)):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(now - dt.timedelta(minutes=5))
            .build()
        )
    return builder.sign(ca.key, hashes.SHA256())


def load_key_pair(cert_pem: bytes, key_pem: bytes) -> KeyPair:
    """Load a certificate and its EC private key from PEM."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("expected an EC private key")
    return KeyPair(x509.load_pem_x509_certificate(cert_pem), key)
