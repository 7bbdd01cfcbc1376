"""The shipped nginx config (deploy/nginx/obdportal.conf) run for a test: its ports, upstream and
file paths substituted, everything else as an operator installs it, inside a main config shaped
like Debian's nginx.conf."""

import ipaddress
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.system.conftest import ROOT, free_port

SITE = ROOT / "deploy" / "nginx" / "obdportal.conf"
MISSING = (
    "nginx is not installed, and the proxy's system tests need it: "
    "apt-get install --no-install-recommends nginx (.ci/run installs it when missing)"
)

# Debian's nginx.conf, in short: it logs every request to access.log in the combined format
# (user part, query string), so the site's servers must log on their own.
MAIN = """\
{user}worker_processes 1;
pid nginx.pid;
error_log main.error.log;
events {{
    worker_connections 1024;
}}
http {{
    client_body_temp_path body;
    proxy_temp_path proxy;
    fastcgi_temp_path fastcgi;
    uwsgi_temp_path uwsgi;
    scgi_temp_path scgi;
    access_log main.access.log combined;
    include site.conf;
}}
"""


@dataclass
class Proxy:
    url: str  # https, as the portal is served
    plain_url: str  # the http server, which only redirects
    directory: Path  # every log nginx writes is in here
    context: ssl.SSLContext  # trusts the proxy's certificate

    def logs(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self.directory.glob("*.log"))


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if not found:
        pytest.fail(MISSING)
    return found


def render_site(directory: Path, upstream_port: int, https_port: int, http_port: int) -> str:
    """The shipped site with this test's ports and paths in place of the operator's."""
    site = SITE.read_text()
    for shipped, ours in {
        "server 127.0.0.1:8000 ": f"server 127.0.0.1:{upstream_port} ",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "/etc/letsencrypt/live/obd.example.com/": f"{directory}/",
        "/var/log/nginx/": f"{directory}/",
    }.items():
        assert shipped in site, f"{SITE.name} no longer says {shipped!r}: update render_site"
        site = site.replace(shipped, ours)
    return site


def run_nginx(upstream_port: int, directory: Path) -> Iterator[Proxy]:
    """nginx on free ports in front of 127.0.0.1:`upstream_port`, stopped after."""
    binary = nginx_binary()
    directory.mkdir()
    context = write_certificate(directory)
    https_port, http_port = free_port(), free_port()
    (directory / "site.conf").write_text(
        render_site(directory, upstream_port, https_port, http_port)
    )
    # Started as root, nginx's workers would be `nobody`, who cannot enter pytest's private
    # temporary directories to buffer a body.
    user = "user root;\n" if os.geteuid() == 0 else ""
    (directory / "nginx.conf").write_text(MAIN.format(user=user))
    options = ["-p", f"{directory}/", "-c", "nginx.conf", "-e", "startup.error.log"]
    process = subprocess.Popen(
        [binary, *options, "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proxy = Proxy(
        url=f"https://127.0.0.1:{https_port}",
        plain_url=f"http://127.0.0.1:{http_port}",
        directory=directory,
        context=context,
    )
    try:
        wait_until_it_answers(proxy, process)
        yield proxy
    finally:
        process.terminate()
        process.wait(timeout=20)


def wait_until_it_answers(proxy: Proxy, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{proxy.url}/healthz", timeout=2, context=proxy.context)
            return
        except urllib.error.HTTPError as answer:
            if answer.code == 503:  # the portal's own: no worker runs beside it (nginx says 502)
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"nginx did not start or proxy:\n{proxy.logs()}")
        time.sleep(0.2)


def write_certificate(directory: Path) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1 where the site expects Let's Encrypt's files, and
    a client context that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # OpenSSL checks these against the real clock, not the tests' pinned one: a window
        # wide enough for either.
        .not_valid_before(datetime(2000, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2100, 1, 1, tzinfo=UTC))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    chain = directory / "fullchain.pem"
    chain.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ssl.create_default_context(cafile=chain)
