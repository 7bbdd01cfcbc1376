"""Where a callback may go: refused targets (loopback, private, link-local, a name resolving to
one), checked on the address connected to; hostile URLs refused at registration."""

import socket

import pytest
from django.core.exceptions import ValidationError

from calls.callbacks import transport
from calls.callbacks.transport import post
from calls.models import CallbackEndpoint
from tests.callbacks.conftest import Receiver

BODY = b'{"type":"call.settled"}'


@pytest.fixture
def resolving(monkeypatch):
    """Names resolved as this test says (and every look-up counted)."""
    names: dict[str, str] = {}
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        looked_up.append(host)
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(transport.socket, "getaddrinfo", getaddrinfo)
    return names, looked_up


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9/hook",
        "http://[::ffff:127.0.0.1]:9/hook",
        "http://0.0.0.0:9/hook",
        "http://localhost:9/hook",
    ],
)
def test_a_callback_to_a_private_address_is_refused_without_connecting(url, settings):
    settings.OBD_CALLBACKS_ALLOW_PRIVATE = False

    answer = post(url, BODY, {})

    assert answer.status_code is None and answer.error.startswith("refused:")
    assert "not a public address" in answer.error


def test_a_name_resolving_to_loopback_is_refused_on_its_address(settings, resolving):
    settings.OBD_CALLBACKS_ALLOW_PRIVATE = False
    names, _ = resolving
    names["hooks.crm.example"] = "127.0.0.1"

    answer = post("https://hooks.crm.example/obd", BODY, {})

    assert (
        answer.error
        == "refused: hooks.crm.example resolves to 127.0.0.1, which is not a public address"
    )


def test_the_address_checked_is_the_one_connected_to_with_the_name_kept(settings, resolving):
    """One look-up: a name that resolved to a public address cannot be re-resolved to another
    one for the connection (DNS rebinding); the receiver still sees its own name as Host."""
    settings.OBD_CALLBACKS_ALLOW_PRIVATE = True  # the receiver is on this machine
    names, looked_up = resolving
    receiver = Receiver()
    receiver.start()
    try:
        names["hooks.crm.example"] = "127.0.0.1"

        answer = post(f"http://hooks.crm.example:{receiver.port}/obd", BODY, {"webhook-id": "x"})

        assert answer.status_code == 204
        # The name once (checked); the connection only "looked up" the address itself.
        assert looked_up == ["hooks.crm.example", "127.0.0.1"]
        (got,) = receiver.received
        assert got.headers["Host"] == f"hooks.crm.example:{receiver.port}"
        assert got.body == BODY
    finally:
        receiver.stop()


def test_an_unresolvable_name_is_a_failed_attempt_not_an_error(settings):
    settings.OBD_CALLBACKS_ALLOW_PRIVATE = False

    answer = post("http://no-such-host.invalid/hook", BODY, {})

    assert answer.error.startswith("refused: no-such-host.invalid does not resolve")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("javascript:alert(1)", "Only http:// and https://"),
        ("file:///etc/passwd", "Only http:// and https://"),
        ("https://crm.example/" + "a" * 2000, "longer than 2000"),
        ("https://crm.example/\x00hook", "control characters"),
        ("https://crm.example/ hook", "spaces"),
        ("https://user:pass@crm.example/hook", "user name or password"),
        ("https:///hook", "no host"),
        ("https://crm.example:99999/hook", "port"),
        ("http://127.0.0.1/hook", "not a public address"),
        ("http://169.254.169.254/", "not a public address"),
        ("", "Only http:// and https://"),
    ],
)
@pytest.mark.django_db
def test_a_hostile_url_is_refused_at_registration(url, words, settings):
    settings.OBD_CALLBACKS_ALLOW_PRIVATE = False
    endpoint = CallbackEndpoint(url=url, event_types=["call.settled"])
    endpoint.set_new_secret()

    with pytest.raises(ValidationError) as refused:
        endpoint.full_clean()

    assert words in " ".join(refused.value.message_dict["url"])


@pytest.mark.django_db
def test_unknown_event_types_are_refused_at_registration():
    endpoint = CallbackEndpoint(url="https://crm.example/hook", event_types=["call.exploded"])
    endpoint.set_new_secret()

    with pytest.raises(ValidationError) as refused:
        endpoint.full_clean()

    assert "event_types" in refused.value.message_dict


def test_a_host_name_that_cannot_be_encoded_is_a_failed_attempt(settings):
    settings.OBD_CALLBACKS_ALLOW_PRIVATE = False

    answer = post("http://" + "a" * 300 + ".example/hook", BODY, {})

    assert answer.status_code is None and answer.error.startswith("refused:")
