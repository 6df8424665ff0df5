"""A local certificate authority issuing short-lived SPIFFE identities, as a mesh's CA does.

Each workload gets an X.509 SVID: an ECDSA P-256 key and a certificate whose only SAN is the URI
`spiffe://cluster.local/ns/<ns>/sa/<sa>`, valid for `validity` (one hour by default, Istio issues for
24 h). Private keys are written 0600 into the run directory, which the mesh removes when it stops.
`foreign()` makes an unrelated CA, so checks can present a well-formed certificate the mesh must
still refuse.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshproof.intent import Identity

_SKEW = datetime.timedelta(minutes=1)


@dataclass(frozen=True)
class Svid:
    identity: Identity | None
    cert: Path
    key: Path


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


CaKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _self_signed(name: str, validity: datetime.timedelta) -> tuple[x509.Certificate, CaKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - _SKEW)
        .not_valid_after(_now() + validity * 2)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _loaded(cert_pem: bytes, key_pem: bytes) -> tuple[x509.Certificate, CaKey]:
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"a CA key must be ECDSA or RSA, got {type(key).__name__}")
    return x509.load_pem_x509_certificate(cert_pem), key


class LocalCA:
    def __init__(self, directory: Path, *, name: str = "meshproof local CA", validity: float = 3600.0,
                 signer: tuple[bytes, bytes] | None = None, chain: bytes = b"") -> None:
        """A new self-signed CA; or, with `signer` = (certificate PEM, private key PEM), one that issues with
        an existing CA's key (a mesh's own, read from its cluster), appending `chain` (the PEM of the CAs
        between it and the root, if it is an intermediate) to every certificate it issues."""
        self.directory = directory
        self.validity = datetime.timedelta(seconds=validity)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._cert, self._key = _self_signed(name, self.validity) if signer is None else _loaded(*signer)
        self._chain = chain
        self.root = directory / "root-cert.pem"
        self.root.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, identity: Identity | None, *, file_stem: str) -> Svid:
        """A workload certificate for `identity` (None: a certificate with no SPIFFE ID at all)."""
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]) if identity else x509.Name(
                [x509.NameAttribute(NameOID.COMMON_NAME, file_stem)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - _SKEW)
            .not_valid_after(_now() + self.validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        )
        if identity is not None:
            san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity.spiffe_id)])
            builder = builder.add_extension(san, critical=True)
        cert = builder.sign(self._key, hashes.SHA256())
        cert_path = self.directory / f"{file_stem}.crt"
        key_path = self.directory / f"{file_stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + self._chain)
        _write_private(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        return Svid(identity, cert_path, key_path)

    def foreign(self) -> LocalCA:
        """An unrelated CA in a subdirectory: its certificates must be refused by this mesh."""
        return LocalCA(self.directory / "foreign", name="meshproof foreign CA",
                       validity=self.validity.total_seconds())
