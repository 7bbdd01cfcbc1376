"""MobtextingGateway (calls/provider/mobtexting.py) against a real HTTP server on loopback: the
exact body and headers sent, one session, a timeout never sends the POST again, the status
look-up."""

import json
import socket
import time

import pytest

from calls.models import AudioAsset, CallLog, IvrFlow
from calls.provider.mobtexting import MobtextingGateway
from tests.helpers.answers import CURRENT


def call_with(bridge, **fields) -> CallLog:
    return CallLog(bridge=bridge, to="918867135123", **fields)


@pytest.mark.parametrize(
    ("fields", "variables", "expected"),
    [
        (
            {"audio": AudioAsset(sound_id="39888925-718e-43bb-a8b1-d4a3c0de0001")},
            {},
            {"audio": "39888925-718e-43bb-a8b1-d4a3c0de0001"},
        ),
        (
            {"audio": AudioAsset(url="http://youraudiofilelocation.mp3"), "name": "obd_api_call"},
            {},
            {"audio": "http://youraudiofilelocation.mp3", "name": "obd_api_call"},
        ),
        ({"flow_key": "23", "name": "obd_api_call"}, {}, {"flow_id": "23", "name": "obd_api_call"}),
        (
            {"flow_key": "24"},
            {"Name": "YourName", "otp": "123456"},
            {"flow_id": "24", "variables[Name]": "YourName", "variables[otp]": "123456"},
        ),
        (
            {"flow_key": "24", "interval": 15, "webhook_id": "wh-1", "name": "n"},
            {},
            {"flow_id": "24", "interval": 15, "webhook_id": "wh-1", "name": "n"},
        ),
        ({"flow_key": "24", "interval": 0, "name": ""}, {}, {"flow_id": "24"}),
    ],
    ids=["audio-id", "audio-url", "flow", "flow-variables", "all-options", "options-absent"],
)
def test_it_builds_the_documented_json_body(bridge, fake_provider, fields, variables, expected):
    if flow_key := fields.pop("flow_key", None):
        fields["flow"] = IvrFlow(flow_id=flow_key)
    payload = call_with(bridge, **fields).provider_payload(variables)
    fake_provider.answer(200, CURRENT)
    MobtextingGateway(fake_provider.url, "tok").send(payload)
    sent = fake_provider.requests[0].json()
    assert sent == {"bridge": "918068287602", "to": "918867135123", **expected}
    assert list(sent)[:2] == ["bridge", "to"]


def test_the_default_webhook_id_is_sent_when_the_form_gives_none(bridge, settings):
    settings.MOBTEXTING_WEBHOOK_ID = "default-hook"
    call = call_with(bridge, audio=AudioAsset(sound_id="s"))
    assert call.provider_payload({})["webhook_id"] == "default-hook"
    call.webhook_id = "form-hook"
    assert call.provider_payload({})["webhook_id"] == "form-hook"


def test_it_posts_with_the_documented_headers_and_one_session(fake_provider):
    fake_provider.answer(200, CURRENT)
    gateway = MobtextingGateway(fake_provider.url, "secret-token")
    gateway.send({"bridge": "1", "to": "2", "audio": "x"})
    gateway.send({"bridge": "1", "to": "2", "audio": "x"})
    first = fake_provider.requests[0]
    assert (first.method, first.path) == ("POST", "/api/v2/outgoing/send")
    assert first.headers["Authorization"] == "Bearer secret-token"
    assert first.headers["Accept"] == "application/json"
    assert first.headers["Content-Type"] == "application/json"
    assert gateway.session is MobtextingGateway(fake_provider.url, "other").session


def test_a_netrc_login_for_the_providers_host_never_replaces_the_api_token(
    fake_provider, tmp_path, monkeypatch
):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password elsewhere\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    fake_provider.answer(200, CURRENT)
    MobtextingGateway(fake_provider.url, "secret-token").send({"bridge": "1", "to": "2"})
    assert fake_provider.requests[0].headers["Authorization"] == "Bearer secret-token"


def test_the_environments_proxy_is_read_once_for_the_session(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = MobtextingGateway("https://provider-behind-a-proxy.example/api/v2/", "t").session
    assert session.proxies["https"] == "http://proxy.example:3128"


def test_a_read_timeout_is_unknown_and_the_post_is_sent_exactly_once(fake_provider):
    def slow(request):
        time.sleep(1.0)
        return 200, {}, json.dumps(CURRENT).encode()

    fake_provider.reply = slow
    result = MobtextingGateway(fake_provider.url, "tok", timeout=(2, 0.3)).send({"to": "1"})
    time.sleep(1.0)  # let the server finish: a hidden retry would show up as a second request
    assert result.status == "unknown"
    assert "read timeout" in result.error
    assert "it is not sent again" in result.error
    assert len(fake_provider.requests) == 1


def test_a_refused_connection_is_an_error_that_is_safe_to_retry():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        result = MobtextingGateway(f"http://127.0.0.1:{port}/api/v2/", "tok").send({"to": "1"})
    assert result.status == "error"
    assert "Nothing was sent" in result.error
    assert "connection refused" in result.error


def test_an_unknown_host_is_an_error():
    result = MobtextingGateway("http://no-such-host.invalid/api/v2/", "tok").send({"to": "1"})
    assert result.status == "error"


def test_the_status_look_up_asks_by_id(fake_provider):
    fake_provider.answer(
        200, {"status": 200, "message": "OK", "data": [{"id": "abc", "status": "ANSWER"}]}
    )
    body = MobtextingGateway(fake_provider.url, "tok").call_status(id="abc")
    assert json.loads(body)["data"][0]["status"] == "ANSWER"
    assert fake_provider.requests[0].path == "/api/v2/outgoing/callstatus?id=abc"
