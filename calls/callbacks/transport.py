"""One callback POST, to the address that was checked: the name is resolved once, the address is
judged (addresses.py), and the connection is made to that address, with the name kept for the
Host header and for TLS (SNI and the certificate's name). A name that resolves to a public
address when checked and to 127.0.0.1 when connected (DNS rebinding) therefore cannot reach the
portal's own network. Redirects are not followed: a 3xx is a failed delivery."""

import socket
import time
from dataclasses import dataclass

import certifi
import urllib3
from django.conf import settings

from calls.callbacks.addresses import Refused, check_address, split_url

# Enough of the answer to log; the rest is not read.
ANSWER_BYTES = 1024
USER_AGENT = "OBD-Portal-Callbacks/1"


@dataclass(frozen=True)
class Answer:
    """What one POST came to: a status code, or an error in words (never both)."""

    status_code: int | None
    duration_ms: int
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def resolve(host: str, port: int) -> str:
    """The first address `host` resolves to (one look-up: this is the address connected to)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise Refused(f"{host} does not resolve ({error})") from None
    if not found:
        raise Refused(f"{host} does not resolve")
    return str(found[0][4][0])


def _pool(scheme: str, host: str, address: str, port: int) -> urllib3.HTTPConnectionPool:
    timeout = urllib3.Timeout(
        connect=settings.OBD_CALLBACK_CONNECT_TIMEOUT, read=settings.OBD_CALLBACK_READ_TIMEOUT
    )
    if scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            server_hostname=host,
            assert_hostname=host,
        )
    return urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False, maxsize=1)


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST `body` to `url` once; any failure (refused target, timeout, TLS, reset) is an Answer
    with its error, never an exception."""
    started = time.monotonic()

    def took() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        parts = split_url(url)
        host = parts.hostname or ""
        scheme = parts.scheme.lower()
        port = parts.port or (443 if scheme == "https" else 80)
        address = resolve(host, port)
        check_address(host, address)
    except Refused as refused:
        return Answer(None, took(), f"refused: {refused}"[:200])
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent = {
        **headers,
        "Host": parts.netloc.rsplit("@", 1)[-1],
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    pool = _pool(scheme, host, address, port)
    try:
        response = pool.urlopen(
            "POST",
            path,
            body=body,
            headers=sent,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        response.read(ANSWER_BYTES)
        response.release_conn()
        return Answer(response.status, took())
    except urllib3.exceptions.HTTPError as error:
        return Answer(None, took(), _in_words(error)[:200])
    except (OSError, ValueError) as error:  # what escapes urllib3: a failed attempt all the same
        return Answer(None, took(), f"failed: {type(error).__name__}")
    finally:
        pool.close()


def _in_words(error: urllib3.exceptions.HTTPError) -> str:
    if isinstance(error, urllib3.exceptions.ReadTimeoutError):
        return "timed out waiting for the answer"
    # Before the timeout: urllib3 makes a refused connection a kind of connect timeout.
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        return "could not connect (refused or unreachable)"
    if isinstance(error, urllib3.exceptions.ConnectTimeoutError):
        return "timed out connecting"
    if isinstance(error, urllib3.exceptions.SSLError):
        return "TLS failed (certificate or handshake)"
    return f"{type(error).__name__}"
