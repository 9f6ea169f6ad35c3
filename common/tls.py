"""TLS for the gRPC port: credentials from config, and a small CA for sites without PKI.

The controller serves TLS when ``[controller] tls_cert`` and ``tls_key`` are set
(PEM files). Clients (the CLI) and agents then verify it with ``tls_ca``
(``[controller] tls_ca``; an agent may override it in ``[agent] tls_ca``) and
connect with ``grpc.secure_channel``; the name they verify is the host part of
``[controller] address``, which must be in the certificate (``gsched certs
--hosts`` puts each host name, and IP addresses as IP SANs). TLS authenticates the
controller and protects the traffic; clients are authenticated by their
credentials and agents by the cluster key, not by client certificates (gRPC's
server can only require them of everyone, and commands have none).

``gsched certs --out DIR --hosts h1,h2`` writes ``ca.pem``/``ca.key`` and
``<host>.pem``/``<host>.key`` per host with the ``cryptography`` package
(:func:`make_certs`). Keys are written 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from typing import Any

__all__ = ["channel_credentials", "make_certs", "read", "server_credentials"]


def read(path: str, what: str) -> bytes:
    from gsched.common.config import ConfigError

    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc


def server_credentials(cfg: Any) -> Any:
    """grpc.ServerCredentials from [controller] tls_*, or None when TLS is off."""
    c = cfg.controller
    if not c.tls_cert:
        return None
    import grpc

    cert = read(c.tls_cert, "tls_cert")
    key = read(c.tls_key, "tls_key")
    ca = read(c.tls_ca, "tls_ca") if c.tls_ca else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                       require_client_auth=False)  # commands have no certs


def channel_credentials(ca_path: str) -> Any:
    """grpc.ChannelCredentials verifying the controller with ``ca_path``."""
    import grpc

    return grpc.ssl_channel_credentials(root_certificates=read(ca_path, "tls_ca"))


def _write(path: str, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)


def make_certs(out: str, hosts: list[str], days: int = 3650, cluster: str = "gsched") -> list[str]:
    """Create (or reuse) a CA in ``out`` and a certificate per host; return the files written.

    An existing ``ca.pem``/``ca.key`` in ``out`` is reused, so hosts can be added later.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    os.makedirs(out, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    written = []
    ca_pem, ca_key_path = os.path.join(out, "ca.pem"), os.path.join(out, "ca.key")
    pem = serialization.Encoding.PEM
    nokey = serialization.NoEncryption()
    pkcs8 = serialization.PrivateFormat.PKCS8
    if os.path.exists(ca_pem) and os.path.exists(ca_key_path):
        with open(ca_pem, "rb") as fh:
            ca_cert = x509.load_pem_x509_certificate(fh.read())
        with open(ca_key_path, "rb") as fh:
            ca_key: Any = serialization.load_pem_private_key(fh.read(), password=None)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{cluster} CA")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        _write(ca_key_path, ca_key.private_bytes(pem, pkcs8, nokey), 0o600)
        _write(ca_pem, ca_cert.public_bytes(pem), 0o644)
        written += [ca_pem, ca_key_path]
    for host in hosts:
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        safe = host.replace(":", "_").replace("/", "_")
        cert_path, key_path = os.path.join(out, f"{safe}.pem"), os.path.join(out, f"{safe}.key")
        _write(key_path, key.private_bytes(pem, pkcs8, nokey), 0o600)
        _write(cert_path, cert.public_bytes(pem), 0o644)
        written += [cert_path, key_path]
    return written
