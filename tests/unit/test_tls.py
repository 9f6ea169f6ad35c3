"""gsched certs (common/tls.py): a small CA and per-host certificates."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509

from gsched.common import config, tls


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_ca_and_host_certificates(tmp_path: Path) -> None:
    written = tls.make_certs(str(tmp_path), ["10.0.0.5", "ctl.lab"])
    names = sorted(Path(p).name for p in written)
    assert names == ["10.0.0.5.key", "10.0.0.5.pem", "ca.key", "ca.pem", "ctl.lab.key",
                     "ctl.lab.pem"]
    for key in ("ca.key", "10.0.0.5.key", "ctl.lab.key"):
        assert (tmp_path / key).stat().st_mode & 0o777 == 0o600
    ca = _cert(tmp_path / "ca.pem")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ip = _cert(tmp_path / "10.0.0.5.pem")
    host = _cert(tmp_path / "ctl.lab.pem")
    for cert in (ip, host):
        assert cert.issuer == ca.subject
        cert.verify_directly_issued_by(ca)
    san = ip.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5")]
    san = host.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["ctl.lab"]


def test_existing_ca_is_reused_for_new_hosts(tmp_path: Path) -> None:
    tls.make_certs(str(tmp_path), ["a"])
    ca_before = (tmp_path / "ca.pem").read_bytes()
    written = tls.make_certs(str(tmp_path), ["b"])
    assert sorted(Path(p).name for p in written) == ["b.key", "b.pem"]
    assert (tmp_path / "ca.pem").read_bytes() == ca_before
    _cert(tmp_path / "b.pem").verify_directly_issued_by(_cert(tmp_path / "ca.pem"))


def test_server_credentials_only_with_cert_and_key(tmp_path: Path) -> None:
    assert tls.server_credentials(config.from_dict({})) is None
    cfg = config.from_dict({"controller": {"tls_cert": str(tmp_path / "missing.pem"),
                                           "tls_key": str(tmp_path / "missing.key")}})
    with pytest.raises(config.ConfigError, match="cannot read tls_cert"):
        tls.server_credentials(cfg)
    tls.make_certs(str(tmp_path), ["127.0.0.1"])
    cfg = config.from_dict({"controller": {"tls_cert": str(tmp_path / "127.0.0.1.pem"),
                                           "tls_key": str(tmp_path / "127.0.0.1.key"),
                                           "tls_ca": str(tmp_path / "ca.pem")}})
    assert tls.server_credentials(cfg) is not None
    assert tls.channel_credentials(str(tmp_path / "ca.pem")) is not None

