"""The production shape's front door: nginx, with the site config deploy/ ships, in front of
gunicorn's sync workers. Slow clients are nginx's to hold and drop: 50 of them do not stop the
pages or the webhook door, while the same 50 straight at gunicorn stop it. Neither access log
writes the webhook secret or a query string, and the portal's production settings believe what
nginx tells them (https, the host, the client's address)."""

import base64
import http.client
import itertools
import json
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest

from calls.models import CallEvent
from tests.helpers.webhooks import URL, push
from tests.system.conftest import GUNICORN, Server, serve
from tests.system.nginx import Proxy, run_nginx

SECRET = "hook-secret"  # the gunicorn fixture's webhook secret
TOKEN = "verify-me"  # and its verification token
BEARER = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}

# A slow-loris client: the request line at once, then header lines a byte at a time, never the
# blank line that ends them.
SLOW_HEADERS = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-Slow: 1\r\n")
# Its cousin: whole headers, then a body a byte at a time, never as long as it said.
SLOW_BODY = (
    f"POST {URL} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {SECRET}\r\n"
    "Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n".encode(),
    b" ",
)


class SlowClients:
    """`count` clients that each send a request a byte at a time and never finish it. One the
    server drops is replaced at once, as an attacker would, so `count` stay connected; `dropped`
    counts the server's drops."""

    def __init__(
        self,
        url: str,
        request: tuple[bytes, bytes],
        count: int = 50,
        context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "", parts.port or 0)
        self.context = context
        self.start, self.filler = request
        self.count = count
        self.dropped = 0
        self.clients: list[tuple[socket.socket, Iterator[int]]] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.trickle, daemon=True)

    def __enter__(self) -> "SlowClients":
        self.clients = [self.connect() for _ in range(self.count)]
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)
        for client, _ in self.clients:
            client.close()

    def connect(self) -> tuple[socket.socket, Iterator[int]]:
        client = socket.create_connection(self.address, timeout=10)
        if self.context:
            client = self.context.wrap_socket(client, server_hostname=self.address[0])
        client.sendall(self.start)
        client.settimeout(0.05)  # a look at what the server said, never a wait
        return client, itertools.cycle(self.filler)

    def trickle(self) -> None:
        while not self.stopped.wait(0.5):
            for index, (client, rest) in enumerate(self.clients):
                if not self.send_next_byte(client, rest):
                    client.close()
                    self.dropped += 1
                    self.clients[index] = self.connect()

    @staticmethod
    def send_next_byte(client: socket.socket, rest: Iterator[int]) -> bool:
        """False once the server has answered (an error page) or closed the connection."""
        try:
            if select.select([client], [], [], 0)[0]:
                client.recv(4096)
                return False
        except (TimeoutError, ssl.SSLWantReadError):
            pass  # TLS bookkeeping (a session ticket), not an answer
        except OSError:
            return False
        try:
            client.send(bytes([next(rest)]))
        except OSError:
            return False
        return True


def ask(
    url: str,
    path: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request, its redirects not followed; it must be answered within 10 s."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=10, context=context
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def wait_for_line(read: Callable[[], str], pattern: str) -> str:
    """A log's text once a line matches: servers log a request after answering it."""
    deadline = time.monotonic() + 10
    while not re.search(pattern, read()) and time.monotonic() < deadline:
        time.sleep(0.1)
    text = read()
    assert re.search(pattern, text), text
    return text


def port_of(url: str) -> int:
    return urlsplit(url).port or 0


@pytest.fixture
def nginx(gunicorn, tmp_path) -> Iterator[Proxy]:
    """The shipped nginx site in front of the gunicorn fixture."""
    yield from run_nginx(port_of(gunicorn.url), tmp_path / "nginx")


@pytest.mark.parametrize("request_kind", [SLOW_HEADERS, SLOW_BODY], ids=["headers", "body"])
def test_the_pages_and_the_webhook_door_answer_while_50_slow_clients_hold_on(
    gunicorn, nginx, request_kind
):
    with SlowClients(nginx.url, request_kind, context=nginx.context) as slow:
        health = ask(nginx.url, "/healthz", context=nginx.context)
        login = ask(nginx.url, "/accounts/login/", context=nginx.context)
        door = ask(
            nginx.url,
            URL,
            method="POST",
            body=json.dumps(push()).encode(),
            headers=BEARER,
            context=nginx.context,
        )

        # The portal's own answer (503: no worker or engine runs beside this server).
        assert health[0] == 503, health
        assert json.loads(health[2])["database"] == "ok"
        assert login[0] == 200, login
        assert b'name="password"' in login[2]
        assert door[0] == 202, door
        assert CallEvent.objects.filter(pk=json.loads(door[2])["event"]).exists()
        if request_kind is SLOW_HEADERS:  # nginx drops a client that never ends its headers
            deadline = time.monotonic() + 60
            while slow.dropped < slow.count and time.monotonic() < deadline:
                time.sleep(0.5)
            assert slow.dropped >= slow.count
    assert CallEvent.objects.count() == 1  # no slow body reached the door


def test_the_same_slow_clients_straight_at_gunicorn_stop_it(gunicorn):
    """Why nginx is there: gunicorn's sync workers each wait on a slow client."""
    with SlowClients(gunicorn.url, SLOW_HEADERS), pytest.raises(TimeoutError):
        ask(gunicorn.url, "/healthz")


def test_neither_access_log_writes_the_webhook_secret_or_the_token(gunicorn, nginx):
    # The secret as Basic credentials, alone and as a user part: both logged it as the user.
    basics = [base64.b64encode(given.encode()).decode() for given in (SECRET, f"{SECRET}:")]
    refused = [
        ask(
            nginx.url,
            URL,
            method="POST",
            body=json.dumps(push()).encode(),
            headers={**BEARER, "Authorization": f"Basic {basic}"},
            context=nginx.context,
        )[0]
        for basic in basics
    ]
    challenge = ask(
        nginx.url,
        f"{URL}?token={TOKEN}",
        method="POST",
        body=b'{"challenge": "c-1"}',
        headers=BEARER,
        context=nginx.context,
    )

    assert refused == [401, 401]  # the door takes the secret as a Bearer token only
    assert challenge[:1] == (200,) and json.loads(challenge[2]) == {"challenge": "c-1"}
    for read in (gunicorn.log.read_text, nginx.logs):
        text = wait_for_line(read, rf'"POST {URL}\S* HTTP/1\.[01]" 200 ')
        assert len(re.findall(rf'"POST {URL}\S* HTTP/1\.[01]" 401 ', text)) == 2, text
        for secret in (SECRET, *basics, TOKEN):
            assert secret not in text


PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "obdportal.production",
    "SECRET_KEY": "a-long-random-production-key-for-this-test-only-0123456789",
    "OBD_WEBHOOK_SECRET": SECRET,
    "ALLOWED_HOSTS": "127.0.0.1",
    # What deploy/obdportal-web.service sets behind the shipped nginx site.
    "SECURE_PROXY_SSL_HEADER": "true",
    "OBD_TRUSTED_PROXY_COUNT": "1",
}


@pytest.fixture
def production(transactional_db, tmp_path) -> Iterator[tuple[Server, Proxy]]:
    """gunicorn with production settings, as the web unit runs it, behind the shipped site."""
    log = tmp_path / "gunicorn.log"
    for url in serve([*GUNICORN, "--access-logfile", "-", "--bind"], log, **PRODUCTION):
        for proxy in run_nginx(port_of(url), tmp_path / "nginx"):
            yield Server(url=url, log=log), proxy


def test_production_settings_believe_what_nginx_says_and_nothing_a_client_claims(production):
    server, proxy = production
    delivery = json.dumps(push()).encode()
    forged = {**BEARER, "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Ssl": "off"}

    through_nginx = ask(
        proxy.url, URL, method="POST", body=delivery, headers=forged, context=proxy.context
    )
    straight = ask(server.url, URL, method="POST", body=delivery, headers=BEARER)
    plain = ask(proxy.plain_url, "/calls/?q=98765", headers={"X-Forwarded-Proto": "https"})

    # https and the host, as nginx says: no redirect, no DisallowedHost.
    assert through_nginx[0] == 202, through_nginx
    assert straight[0] == 301  # without nginx the same request is not https
    assert (plain[0], plain[1]["Location"]) == (301, "https://127.0.0.1/calls/?q=98765")
    # The client's own address alone, so OBD_TRUSTED_PROXY_COUNT=1 keys lock-outs on it.
    log = wait_for_line(server.log.read_text, rf'"POST {URL} HTTP/1\.[01]" 202 ')
    assert re.search(rf'127\.0\.0\.1 127\.0\.0\.1 \[.*\] "POST {URL} ', log), log
    assert "203.0.113.9" not in log


def test_a_delivery_over_the_doors_cap_is_refused_by_nginx(gunicorn, nginx):
    too_big = json.dumps(push(filler="x" * 70_000)).encode()

    refused = ask(
        nginx.url, URL, method="POST", body=too_big, headers=BEARER, context=nginx.context
    )

    assert refused[0] == 413
    assert b"<center>nginx" in refused[2]  # nginx's own page: the portal never saw the body
    assert not CallEvent.objects.exists()
