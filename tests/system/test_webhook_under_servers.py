"""The webhook under the servers that run it: gunicorn (production) and Django's own server
(runserver, `make run`; pytest-django's live_server is the same server). A chunked body has no
Content-Length: under gunicorn, which decodes the chunks, it must be read whole, its outcome
applied, and the body cap must hold; runserver offers no public way to the chunks, so it asks
for a length (411) and stores nothing."""

import http.client
import json
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from calls.models import CallEvent, CallLog
from tests.helpers.webhooks import apply_stored

CALL_ID = "0f6c1f3e-7a7e-4d3c-9d1e-1c2b3a4d5e6f"


def chunked_post(url: str, path: str, chunks: list[bytes]) -> tuple[int, dict[str, object]]:
    def body() -> Iterator[bytes]:
        yield from chunks

    return post(url, path, body(), {"Transfer-Encoding": "chunked"})


def post(
    url: str, path: str, body: bytes | Iterator[bytes], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, object]]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request(
        "POST",
        path,
        body=body,
        encode_chunked=not isinstance(body, bytes),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Bearer hook-secret",
            **(headers or {}),
        },
    )
    response = connection.getresponse()
    answer = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, answer


def push(status: str = "BUSY") -> bytes:
    return json.dumps(
        {
            "mid": CALL_ID,
            "status": status,
            "start_at": "2026-11-02 10:00:00",
            "end_at": "2026-11-02 10:00:00",
            "duration": "0",
            "filler": "x" * 3000,  # several chunks
        }
    ).encode()


@pytest.fixture
def waiting_call(bridge, sound) -> CallLog:
    return CallLog.objects.create(
        bridge=bridge,
        audio=sound,
        to="918867135123",
        status="queued",
        provider_id=CALL_ID,
        provider_key=CALL_ID,
    )


@pytest.fixture
def gunicorn_url(gunicorn, settings) -> str:
    settings.OBD_WEBHOOK_MAX_BODY = 64 * 1024
    return str(gunicorn.url)


@pytest.mark.django_db(transaction=True)
def test_a_chunked_delivery_is_read_whole_and_its_outcome_applied(gunicorn_url, waiting_call):
    body = push()
    chunks = [body[i : i + 700] for i in range(0, len(body), 700)]

    status, answer = chunked_post(gunicorn_url, "/webhooks/mobtexting/", chunks)

    event = CallEvent.objects.get()
    assert (status, answer) == (202, {"event": event.pk})
    assert event.body.encode() == body
    apply_stored()  # the deliveries worker's turn
    waiting_call.refresh_from_db()
    assert waiting_call.status == "busy"


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_over_the_cap_is_refused_and_nothing_is_stored(gunicorn_url, waiting_call):
    chunks = [b'{"mid": "' + CALL_ID.encode() + b'", "filler": "'] + [b"x" * 8192] * 10 + [b'"}']

    status, answer = chunked_post(gunicorn_url, "/webhooks/mobtexting/", chunks)

    assert (status, answer) == (413, {"error": "body too large"})
    assert not CallEvent.objects.exists()
    waiting_call.refresh_from_db()
    assert waiting_call.status == "queued"


@pytest.mark.django_db(transaction=True)
def test_the_development_server_asks_a_chunked_delivery_for_its_length(live_server, waiting_call):
    status, answer = chunked_post(live_server.url, "/webhooks/mobtexting/", [push()])

    assert (status, answer) == (411, {"error": "send a Content-Length"})
    assert not CallEvent.objects.exists()
    status, answer = post(live_server.url, "/webhooks/mobtexting/", push())  # the same, with one
    assert (status, answer) == (202, {"event": CallEvent.objects.get().pk})


def test_the_development_server_logs_requests_without_their_query_strings(runserver):
    """`make run` serves with runserver, whose request log would keep `?token=` whole."""
    status, answer = post(
        runserver.url, "/webhooks/mobtexting/?token=verify-me", b'{"challenge": "c-1"}'
    )

    assert (status, answer) == (200, {"challenge": "c-1"})
    line = '"POST /webhooks/mobtexting/ HTTP/1.1" 200'
    deadline = time.monotonic() + 10  # the server logs the request after answering it
    while line not in runserver.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = runserver.log.read_text()
    assert line in log
    assert "verify-me" not in log
