"""An https callback pinned to the address checked still speaks TLS to the URL's name: the name
goes in SNI and the certificate must be the name's, signed by a trusted authority."""

import datetime as dt
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from calls.callbacks import transport
from calls.callbacks.transport import post

NAME = "hooks.crm.example"


def _certificate(subject: str, key, issuer_key, issuer: str, *, authority: bool):
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # Valid whatever the pinned clock says: OpenSSL reads the real one.
        .not_valid_before(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.BasicConstraints(ca=authority, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if authority:  # what Python's strict verification asks of an authority
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def tls_receiver(tmp_path: Path, monkeypatch, settings) -> Iterator[tuple[int, list[str]]]:
    """An https receiver on 127.0.0.1 holding a certificate for NAME from an authority the sender
    is made to trust; NAME resolves to 127.0.0.1. Yields its port and the SNI names it saw."""
    settings.OBD_CALLBACKS_ALLOW_PRIVATE = True
    authority_key = ec.generate_private_key(ec.SECP256R1())
    authority = _certificate("Test CA", authority_key, authority_key, "Test CA", authority=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate(NAME, leaf_key, authority_key, "Test CA", authority=False)
    (tmp_path / "ca.pem").write_bytes(authority.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.key").write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    monkeypatch.setattr(transport.certifi, "where", lambda: str(tmp_path / "ca.pem"))
    real = transport.socket.getaddrinfo
    monkeypatch.setattr(
        transport.socket,
        "getaddrinfo",
        lambda host, port, *a, **k: real("127.0.0.1" if host == NAME else host, port, *a, **k),
    )
    seen: list[str] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    context.sni_callback = lambda sock, name, ctx: seen.append(name)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(f"Host: {self.headers['Host']}")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a handshake the sender broke off (the wrong name): the test reads its side

    server = Server(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def test_an_https_callback_to_the_pinned_address_speaks_tls_to_the_name(tls_receiver):
    port, seen = tls_receiver

    answer = post(f"https://{NAME}:{port}/obd", b"{}", {})

    assert answer.status_code == 200, answer.error
    assert seen == [NAME, f"Host: {NAME}:{port}"]


def test_a_certificate_for_another_name_fails(tls_receiver, monkeypatch):
    port, _ = tls_receiver
    other = "other.crm.example"
    real = transport.socket.getaddrinfo
    monkeypatch.setattr(
        transport.socket,
        "getaddrinfo",
        lambda host, port, *a, **k: real("127.0.0.1" if host == other else host, port, *a, **k),
    )

    answer = post(f"https://{other}:{port}/obd", b"{}", {})

    assert answer.status_code is None
    assert answer.error == "TLS failed (certificate or handshake)"
