"""Without certificates given, the operator makes its own webhook CA and serving certificate."""

from __future__ import annotations

import ipaddress
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from agent_authority import runtime


def test_generated_serving_certificate_chains_to_its_ca_and_names_the_host(
    tmp_path: pathlib.Path,
) -> None:
    options = runtime.Options(cert_dir=str(tmp_path), webhook_host="127.0.0.1")
    cert_file, key_file, ca_file = runtime._serving_files(options)
    cert = x509.load_pem_x509_certificate(pathlib.Path(cert_file).read_bytes())
    ca = x509.load_pem_x509_certificate(pathlib.Path(ca_file).read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert cert.issuer == ca.subject
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    cert.verify_directly_issued_by(ca)
    assert oct(pathlib.Path(key_file).stat().st_mode & 0o777) == "0o600"
    # Generated once: asking again returns the same files.
    assert runtime._serving_files(options) == (cert_file, key_file, ca_file)


def test_a_dns_host_gets_a_dns_name(tmp_path: pathlib.Path) -> None:
    options = runtime.Options(cert_dir=str(tmp_path), webhook_host="agent-authority.svc")
    cert_file, _, _ = runtime._serving_files(options)
    cert = x509.load_pem_x509_certificate(pathlib.Path(cert_file).read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["agent-authority.svc"]
