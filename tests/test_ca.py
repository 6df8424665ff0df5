"""The local CA issues SPIFFE identities that verify against it and only against it."""

import datetime
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from meshproof.backends.host.ca import LocalCA
from meshproof.intent import Identity

IDENTITY = Identity("default", "api-gateway")


@pytest.fixture
def ca(tmp_path: Path) -> LocalCA:
    return LocalCA(tmp_path / "pki", validity=600)


def test_a_workload_certificate_carries_exactly_its_spiffe_id(ca: LocalCA) -> None:
    svid = ca.issue(IDENTITY, file_stem="api")
    cert = x509.load_pem_x509_certificate(svid.cert.read_bytes())
    san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://cluster.local/ns/default/sa/api-gateway"]
    assert cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).critical


def test_certificates_are_short_lived(ca: LocalCA) -> None:
    cert = x509.load_pem_x509_certificate(ca.issue(IDENTITY, file_stem="api").cert.read_bytes())
    lifetime = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(minutes=9) < lifetime <= datetime.timedelta(minutes=10)


def test_private_keys_are_readable_by_the_owner_only(ca: LocalCA) -> None:
    svid = ca.issue(IDENTITY, file_stem="api")
    assert stat.S_IMODE(svid.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(ca.directory.stat().st_mode) == 0o700


def test_a_certificate_verifies_against_its_ca_and_not_a_foreign_one(ca: LocalCA) -> None:
    root = x509.load_pem_x509_certificate(ca.root.read_bytes())
    foreign = ca.foreign()
    own = x509.load_pem_x509_certificate(ca.issue(IDENTITY, file_stem="own").cert.read_bytes())
    stranger = x509.load_pem_x509_certificate(foreign.issue(IDENTITY, file_stem="stranger").cert.read_bytes())
    own.verify_directly_issued_by(root)
    with pytest.raises((ValueError, Exception)):
        stranger.verify_directly_issued_by(root)


def _tls_server(ca: LocalCA, results: list[str]) -> int:
    server_svid = ca.issue(Identity("default", "order-service"), file_stem="server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_svid.cert, server_svid.key)
    context.load_verify_locations(ca.root)
    context.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with listener:
            connection, _ = listener.accept()
            try:
                with context.wrap_socket(connection, server_side=True) as tls:
                    results.append("accepted " + str(tls.getpeercert()["subjectAltName"]))
                    tls.sendall(b"ok")
            except ssl.SSLError as exc:
                results.append(f"refused {exc.reason}")

    threading.Thread(target=serve, daemon=True).start()
    return int(listener.getsockname()[1])


@pytest.mark.parametrize("foreign", [False, True], ids=["own CA", "foreign CA"])
def test_a_tls_server_trusting_the_ca_refuses_a_foreign_client_certificate(ca: LocalCA, foreign: bool) -> None:
    results: list[str] = []
    port = _tls_server(ca, results)
    issuer = ca.foreign() if foreign else ca
    client_svid = issuer.issue(IDENTITY, file_stem="client")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(ca.root)
    context.check_hostname = False
    context.load_cert_chain(client_svid.cert, client_svid.key)
    with socket.create_connection(("127.0.0.1", port)) as raw:
        try:
            with context.wrap_socket(raw) as tls:
                tls.recv(2)
        except (ssl.SSLError, ConnectionResetError):
            pass
    for _ in range(100):
        if results:
            break
        threading.Event().wait(0.02)
    if foreign:
        assert results and results[0].startswith("refused"), results
    else:
        assert results and "spiffe://cluster.local/ns/default/sa/api-gateway" in results[0], results
