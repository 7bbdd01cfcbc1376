"""What each answer of the provider means (calls/provider/base.py, parse_send_response), sent
through the real gateway to a real HTTP server on loopback."""

import json
from decimal import Decimal

from calls.provider.base import SendResult, parse_send_response
from calls.provider.mobtexting import MobtextingGateway
from tests.helpers.answers import CURRENT
from tests.helpers.provider_shapes import SEND_LEGACY


def assert_queued(result: SendResult, provider_id: str, cost: str, created_at: str) -> None:
    """The call was queued: with the provider's id for it, what it cost and when it was taken."""
    assert result.status == "queued"
    assert result.provider_id == provider_id
    assert result.cost == Decimal(cost)
    assert result.created_at.isoformat() == created_at


def test_it_reads_the_current_success_shape(fake_provider):
    fake_provider.answer(200, CURRENT)
    result = MobtextingGateway(fake_provider.url, "tok").send({"to": "1"})
    assert_queued(
        result, "3b69aca9-3b55-4e2d-bfe0-02b910dbe156", "1", "2024-07-10T06:09:43.054164+00:00"
    )
    assert result.provider_status == "queued"


def test_it_reads_the_legacy_success_shape(fake_provider):
    fake_provider.answer(200, SEND_LEGACY)
    result = MobtextingGateway(fake_provider.url, "tok").send({"to": "1"})
    taken_at = "2019-08-16T15:09:51+05:30"  # a naive time, read in the provider's time zone
    assert_queued(result, "70fa87e0-9df9-4327-bc80-a561c48703d8:1", "0.5000", taken_at)


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


def test_an_id_longer_than_we_keep_is_unknown_with_a_reason_not_a_crash():
    body = {"status": "OK", "data": [{"id": "x" * 129, "status": "queued", "credits": 1}]}

    result = parse_send_response(200, json.dumps(body))

    assert (result.status, result.provider_id) == ("unknown", "")
    assert "129 characters" in result.error and "may have been placed" in result.error


def test_values_that_do_not_fit_their_columns_are_left_out():
    row = {"id": "abc", "status": "Q" * 40, "credits": "1e20", "created_at": "0001-01-01 00:00:00"}

    result = parse_send_response(200, json.dumps({"status": "OK", "data": [row]}))

    assert (result.status, result.provider_id) == ("queued", "abc")
    assert (len(result.provider_status), result.cost, result.created_at) == (32, None, None)
