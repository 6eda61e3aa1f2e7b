#!/usr/bin/env python3
"""Make the lab's front secrets, once: a CA, a server certificate for the front signed by it, and
an API key. The lab overlay (inventories/lab/group_vars/lb_nodes/10-lab.yml) reads them with file
lookups, so the repository holds no secret. Existing files are kept (re-runs change nothing), except
a front certificate that lacks one of the wanted addresses (a scenario added since it was made): it
is issued again, with its key, by the same CA, so a CA already handed out stays valid.

    scripts/lab_secrets.py [DIR] [--name NAME --ip ADDRESS ...]

DIR defaults to .cache/lab; it receives tls/ca.crt, tls/front.crt, tls/front.key, api-key and
api-key-platform.
Uses the `cryptography` package that ansible-core already requires (no openssl binary needed).
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import pathlib
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Every address the lab and the Molecule scenarios serve the front on: the lab, `ha` and `upgrade`,
# `monitoring`.
DEFAULT_IPS = ["172.28.10.100", "172.28.70.100", "172.28.90.100", "127.0.0.1"]


def write_private(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def make_tls(tls: pathlib.Path, names: list[str], ips: list[str], ca_common_name: str = "ollama-fleet lab CA") -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_common_name)])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=825))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    tls.mkdir(parents=True, exist_ok=True)
    (tls / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    write_private(tls / "ca.key", pem_key(ca_key))
    make_front(tls, ca, ca_key, names, ips)


def make_front(tls: pathlib.Path, ca, ca_key, names: list[str], ips: list[str]) -> None:
    """The front's certificate (and a new key) for names and ips, signed by the CA."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_name = ca.subject
    key = ec.generate_private_key(ec.SECP256R1())
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=397))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (tls / "front.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_private(tls / "front.key", pem_key(key))


def front_ips(path: pathlib.Path) -> set[str]:
    """The IP addresses a certificate names (subjectAltName)."""
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(a) for a in alt.get_values_for_type(x509.IPAddress)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", default=str(ROOT / ".cache" / "lab"))
    parser.add_argument("--name", action="append", default=None, help="DNS name in the certificate (repeatable)")
    parser.add_argument("--ip", action="append", default=None, help="IP address in the certificate (repeatable)")
    args = parser.parse_args()
    out = pathlib.Path(args.dir)
    tls = out / "tls"
    names, ips = args.name or ["ollama-front.lab"], args.ip or DEFAULT_IPS
    if not all((tls / f).is_file() for f in ("ca.crt", "front.crt", "front.key")):
        make_tls(tls, names, ips)
    elif not {str(ipaddress.ip_address(a)) for a in ips} <= front_ips(tls / "front.crt") and (tls / "ca.key").is_file():
        ca = x509.load_pem_x509_certificate((tls / "ca.crt").read_bytes())
        ca_key = serialization.load_pem_private_key((tls / "ca.key").read_bytes(), password=None)
        make_front(tls, ca, ca_key, names, sorted(front_ips(tls / "front.crt") | set(ips)))
    # api-key: the lab operator's (every model); api-key-platform: the customer-service platform's
    # (the variant only, its own limits: inventories/lab/group_vars/lb_nodes/10-lab.yml).
    for name in ("api-key", "api-key-platform"):
        if not (out / name).is_file():
            write_private(out / name, (secrets.token_urlsafe(36) + "\n").encode())
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
