"""The gateway against a real HTTP server on loopback: exact bodies sent, every answer class."""

import json
import socket
import time
from decimal import Decimal

import pytest

from calls.models import AudioAsset, CallLog, IvrFlow
from calls.provider.base import parse_send_response
from calls.provider.mobtexting import MobtextingGateway

CURRENT = {
    "status": "OK",
    "message": "Calls queued successfully",
    "data": [
        {
            "id": "3b69aca9-3b55-4e2d-bfe0-02b910dbe156",
            "channel": "outgoing",
            "caller_id": "918068287602",
            "mobile": "918867135123",
            "flow_id": "24",
            "credits": 1,
            "created_at": "2024-07-10T06:09:43.054164Z",
            "foreign_id": None,
            "options": None,
            "status": "queued",
        }
    ],
}
LEGACY = {
    "status": 200,
    "message": "1 numbers accepted for delivery.",
    "data": [
        {
            "id": "70fa87e0-9df9-4327-bc80-a561c48703d8:1",
            "mobile": "918867135123",
            "charges": "0.5000",
            "customid": "",
            "customid1": "",
            "iso_code": None,
            "submitted_at": "2019-08-16 15:09:51",
        }
    ],
}


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


def test_it_reads_the_current_success_shape(fake_provider):
    fake_provider.answer(200, CURRENT)
    result = MobtextingGateway(fake_provider.url, "tok").send({"to": "1"})
    assert result.status == "queued"
    assert result.provider_id == "3b69aca9-3b55-4e2d-bfe0-02b910dbe156"
    assert result.cost == Decimal("1")
    assert result.created_at.isoformat() == "2024-07-10T06:09:43.054164+00:00"
    assert result.provider_status == "queued"


def test_it_reads_the_legacy_success_shape(fake_provider):
    fake_provider.answer(200, LEGACY)
    result = MobtextingGateway(fake_provider.url, "tok").send({"to": "1"})
    assert result.status == "queued"
    assert result.provider_id == "70fa87e0-9df9-4327-bc80-a561c48703d8:1"
    assert result.cost == Decimal("0.5000")
    assert result.created_at.isoformat() == "2019-08-16T15:09:51+05:30"  # provider time zone


def test_credits_as_a_string_stay_exact():
    body = json.dumps({**CURRENT, "data": [{**CURRENT["data"][0], "credits": "0.0005"}]})
    assert parse_send_response(200, body).cost == Decimal("0.0005")


def test_a_401_is_rejected_with_advice_and_no_token(fake_provider):
    fake_provider.answer(401, {"message": "Unauthenticated."})
    result = MobtextingGateway(fake_provider.url, "tok-xyz").send({"to": "1"})
    assert result.status == "rejected"
    assert "MOBTEXTING_API_TOKEN" in result.error
    assert "tok-xyz" not in result.error + result.body


def test_a_422_shows_the_providers_message_and_errors(fake_provider):
    fake_provider.answer(
        422,
        {
            "message": "The given data was invalid.",
            "errors": {"to": ["The to field is required."], "bridge": ["Invalid bridge."]},
        },
    )
    result = MobtextingGateway(fake_provider.url, "tok").send({"to": "1"})
    assert result.status == "rejected"
    assert result.http_status == 422
    assert result.error == (
        "The provider rejected the call (HTTP 422): The given data was invalid. — "
        "to: The to field is required.; bridge: Invalid bridge."
    )


def test_a_200_whose_status_is_not_ok_is_rejected(fake_provider):
    fake_provider.answer(200, {"status": "ERROR", "message": "Insufficient credits"})
    result = MobtextingGateway(fake_provider.url, "tok").send({"to": "1"})
    assert (result.status, result.error) == (
        "rejected",
        "The provider rejected the call (HTTP 200): Insufficient credits",
    )


def test_a_500_is_unknown_because_the_call_may_have_been_placed(fake_provider):
    fake_provider.answer(500, b"<html>oops</html>", {"Content-Type": "text/html"})
    result = MobtextingGateway(fake_provider.url, "tok").send({"to": "1"})
    assert result.status == "unknown"
    assert "may or may not have been placed" in result.error
    assert len(fake_provider.requests) == 1


def test_a_200_that_is_not_json_is_unknown(fake_provider):
    fake_provider.answer(200, b"OK", {"Content-Type": "text/plain"})
    result = MobtextingGateway(fake_provider.url, "tok").send({"to": "1"})
    assert result.status == "unknown"
    assert result.body == "OK"


def test_a_429_is_rejected_and_carries_retry_after(fake_provider):
    fake_provider.answer(429, {"message": "Too Many Attempts."}, {"Retry-After": "7"})
    result = MobtextingGateway(fake_provider.url, "tok").send({"to": "1"})
    assert (result.status, result.retry_after) == ("rejected", 7.0)


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
