"""Finding a call's recording in the provider's recordings list: the pure matcher, and the real
gateway paging through GET voice/recordings on the local fake provider."""

import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from calls.provider.base import GatewayError
from calls.provider.mobtexting import MobtextingGateway
from calls.provider.recordings import days_around, pick_recording
from tests.helpers.keypresses import json_reply

KOLKATA = ZoneInfo("Asia/Kolkata")
STARTED = datetime(2026, 11, 27, 13, 0, 5, tzinfo=UTC)  # 18:30:05 in Kolkata
TO, BRIDGE = "918867135123", "918068287602"
LINK = "https://s3.example.com/rec/abc.mp3?X-Amz-Signature=f00&X-Amz-Expires=3600"


def row(to: object = TO, at: str = "2026-11-27 18:30:20", audio: str = LINK, **extra) -> dict:
    return {
        "id": 7,
        "call_from": BRIDGE,
        "call_to": to,
        "audio": audio,
        "duration": "00:00:12",
        "agent": None,
        "created_at": at,
        **extra,
    }


def page(rows: list, current: int = 1, last: int = 1) -> dict:
    return {"data": rows, "meta": {"current_page": current, "last_page": last}, "links": {}}


def pick(rows: list) -> str | None:
    return pick_recording(rows, to=TO, bridge=BRIDGE, started_at=STARTED, zone=KOLKATA)


def test_the_recording_of_the_call_is_found_by_number_bridge_and_time():
    closest = "https://s3.example.com/closest.mp3"
    rows = [
        row(audio="https://s3.example.com/later.mp3", at="2026-11-27 19:10:00"),
        row(to=918867135123, audio=closest),  # a JSON number
        row(to="919999999999", audio="https://s3.example.com/other-customer.mp3"),
        row(call_from="912262345678", audio="https://s3.example.com/other-bridge.mp3"),
    ]
    assert pick(rows) == closest


@pytest.mark.parametrize(
    "bad",
    [
        row(audio="javascript:alert(1)"),
        row(audio=""),
        row(audio="https://s3.example.com/" + "x" * 5000),
        row(at="yesterday"),
        row(at="2026-11-27 18:20:00"),  # ten minutes before the call began
        row(at="2026-11-27 21:00:00"),  # hours after
        row(to=None),
        row(to=["918867135123"]),
        "not a row",
    ],
)
def test_rows_that_are_not_the_calls_recording_are_skipped(bad):
    rows = [bad] if isinstance(bad, dict) else []
    assert pick(rows) is None


def test_the_filter_covers_the_day_the_call_began_and_the_next():
    late = datetime(2026, 11, 27, 18, 45, tzinfo=UTC)  # 00:15 on the 28th in Kolkata
    assert days_around(STARTED, KOLKATA) == "Nov 27, 2026 - Nov 28, 2026"
    assert days_around(late, KOLKATA) == "Nov 28, 2026 - Nov 29, 2026"


def test_the_gateway_pages_through_the_list_until_it_finds_the_call(fake_provider):
    pages = {
        "1": page([row(to="919999999999")], 1, 3),
        "2": page([row()], 2, 3),
        "3": page([], 3, 3),
    }

    def reply(recorded):
        query = parse_qs(urlsplit(recorded.path).query)
        return json_reply(200, pages[query["page"][0]])

    fake_provider.route("voice/recordings", reply)

    link = MobtextingGateway(fake_provider.url, "tok-123").recording_link(TO, BRIDGE, STARTED)

    assert link == LINK
    assert len(fake_provider.requests) == 2  # stopped at the page that had it
    first = fake_provider.requests[0]
    assert parse_qs(urlsplit(first.path).query) == {
        "datetime[r.created_at]": ["Nov 27, 2026 - Nov 28, 2026"],
        "page": ["1"],
    }
    assert first.headers["Authorization"] == "Bearer tok-123"
    assert "tok-123" not in first.path


def test_no_recording_of_the_call_is_a_clear_error(fake_provider):
    fake_provider.route("voice/recordings", lambda r: json_reply(200, page([row(to="91999")])))
    with pytest.raises(GatewayError, match="lists no recording of this call"):
        MobtextingGateway(fake_provider.url, "tok").recording_link(TO, BRIDGE, STARTED)


def test_the_pages_read_are_bounded(fake_provider):
    fake_provider.route(
        "voice/recordings", lambda r: json_reply(200, page([row(to="91999")], 1, 999))
    )
    with pytest.raises(GatewayError):
        MobtextingGateway(fake_provider.url, "tok").recording_link(TO, BRIDGE, STARTED)
    assert len(fake_provider.requests) == 20


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (500, b"<html>", "HTTP 500"),
        (429, b'{"message": "Too Many Requests"}', "HTTP 429"),
        (200, b"garbage", "not the documented JSON"),
        (200, b'{"data": "nope"}', "no list of rows"),
    ],
)
def test_provider_failures_are_clear_and_never_hold_the_token(fake_provider, status, body, message):
    fake_provider.route("voice/recordings", lambda r: (status, {}, body))
    with pytest.raises(GatewayError, match=message) as caught:
        MobtextingGateway(fake_provider.url, "tok-123").recording_link(TO, BRIDGE, STARTED)
    assert "tok-123" not in str(caught.value)


def test_a_timeout_is_a_clear_error(fake_provider):
    def slow(recorded):
        time.sleep(1)
        return json_reply(200, page([row()]))

    fake_provider.route("voice/recordings", slow)
    gateway = MobtextingGateway(fake_provider.url, "tok", timeout=(2, 0.3))
    with pytest.raises(
        GatewayError, match=r"No answer from the provider to GET voice/recordings \(read timeout\)"
    ):
        gateway.recording_link(TO, BRIDGE, STARTED)


def test_a_link_holding_our_token_is_refused(fake_provider):
    leaky = row(audio="https://portal.example.com/rec/1.mp3?access_token=tok-123")
    fake_provider.route("voice/recordings", lambda r: json_reply(200, page([leaky])))
    with pytest.raises(GatewayError) as caught:
        MobtextingGateway(fake_provider.url, "tok-123").recording_link(TO, BRIDGE, STARTED)
    assert "tok-123" not in str(caught.value)


def test_rows_arrive_as_documented_with_a_json_number(fake_provider):
    body = json.dumps(page([row(to=int(TO), call_from=int(BRIDGE))])).encode()
    fake_provider.route("voice/recordings", lambda r: (200, {}, body))
    assert MobtextingGateway(fake_provider.url, "tok-9").recording_link(TO, BRIDGE, STARTED) == LINK


def test_a_call_begun_minutes_later_than_the_window_is_not_matched():
    assert pick([row(at=(STARTED + timedelta(hours=3)).strftime("%Y-%m-%d %H:%M:%S"))]) is None
