"""scripts/lab_secrets.py keeps what it made, but issues the front's certificate again, from the
same CA, when a scenario's virtual IP is not in it yet (a cache made before that scenario existed)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import lab_secrets  # noqa: E402  (scripts/lab_secrets.py)


def make(out: pathlib.Path, *ips: str) -> None:
    argv = [sys.executable, str(ROOT / "scripts/lab_secrets.py"), str(out)] + [a for ip in ips for a in ("--ip", ip)]
    subprocess.run(argv, check=True, capture_output=True)


def test_default_addresses_include_every_scenarios_virtual_ip():
    for vip in ("172.28.10.100", "172.28.70.100", "172.28.90.100"):
        assert vip in lab_secrets.DEFAULT_IPS


def test_kept_when_complete_reissued_by_the_same_ca_when_an_address_is_new(tmp_path):
    tls = tmp_path / "tls"
    make(tmp_path, "127.0.0.1")
    first = {name: (tls / name).read_bytes() for name in ("ca.crt", "front.crt", "front.key")}
    key = (tmp_path / "api-key").read_text()
    make(tmp_path, "127.0.0.1")
    assert {name: (tls / name).read_bytes() for name in first} == first, "a complete set must be kept as it is"

    make(tmp_path, "127.0.0.1", "172.28.90.100")
    assert (tls / "ca.crt").read_bytes() == first["ca.crt"], "the CA handed out must stay valid"
    assert (tls / "front.crt").read_bytes() != first["front.crt"]
    assert (tls / "front.key").read_bytes() != first["front.key"]
    assert lab_secrets.front_ips(tls / "front.crt") == {"127.0.0.1", "172.28.90.100"}
    assert (tmp_path / "api-key").read_text() == key
    assert (tmp_path / "api-key-platform").read_text() not in ("", key)
    ca = x509.load_pem_x509_certificate(first["ca.crt"])
    cert = x509.load_pem_x509_certificate((tls / "front.crt").read_bytes())
    assert cert.issuer == ca.subject
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
