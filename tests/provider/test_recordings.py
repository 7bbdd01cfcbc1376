"""Finding a call's recording in the provider's recordings list: the pure matcher (the pair of
numbers either way round, the closest time, unreadable rows counted), and the real gateway paging
through GET voice/recordings on the local fake provider."""

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from calls.models import ProviderListRead
from calls.provider.base import GatewayError
from calls.provider.mobtexting import MobtextingGateway
from calls.provider.recordings import RecordingPick, days_around, pick_recording
from tests.helpers.keypresses import json_reply
from tests.helpers.provider_shapes import RECORDING_AUDIO, RECORDINGS, listed

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


def picked(rows: list, to: str = TO, bridge: str = BRIDGE, at: datetime = STARTED) -> RecordingPick:
    return pick_recording(rows, to=to, bridge=bridge, started_at=at, zone=KOLKATA)


def pick(rows: list) -> str | None:
    return picked(rows).link


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
    "other",
    [
        row(at="2026-11-27 18:20:00"),  # ten minutes before the call began
        row(at="2026-11-27 21:00:00"),  # hours after
        row(to="919999999999"),  # another customer
        row(call_from="919999999999"),  # the customer, but not from our bridge
        row(call_from=TO, to=TO),  # the customer twice
    ],
)
def test_readable_rows_of_other_calls_are_passed_over(other):
    assert picked([other]) == RecordingPick(link=None, unreadable=0)


@pytest.mark.parametrize(
    "bad",
    [
        row(audio="javascript:alert(1)"),
        row(audio=""),
        row(audio=None),
        row(audio="https://s3.example.com/" + "x" * 5000),
        row(audio="https://s3.example.com/a b.mp3"),
        row(audio="https://s3.example.com/a\x00.mp3"),
        row(audio="http://[::1"),  # no URL at all
        row(at="yesterday"),
        row(at="2026-11-27 18:30:20\x00"),
        row(at={"date": ["2026-11-27"]}),
        row(to=None),
        row(to=["918867135123"]),
        row(to={"number": {"deeper": [TO]}}),
        row(to="9188671\x0035123"),
        row(to="9" * 40),
        row(to=True),
        row(to=9.18867135123e11),
        row(call_from=""),
        {key: value for key, value in row().items() if key != "call_from"},
        {},
    ],
)
def test_rows_that_cannot_be_read_are_counted_never_matched(bad):
    assert picked([bad, row()]) == RecordingPick(link=LINK, unreadable=1)


def test_a_recording_listed_either_way_round_is_found():
    as_documented = row(call_from=TO, call_to=BRIDGE)  # customer → our number, like inbound
    assert pick([as_documented]) == LINK
    assert pick([row()]) == LINK


def test_the_closest_in_time_wins_whichever_way_round_each_row_is_listed():
    rows = [
        row(audio="https://s3.example.com/far.mp3", at="2026-11-27 18:45:00"),
        row(call_from=TO, call_to=BRIDGE, audio="https://s3.example.com/near.mp3"),
        row(
            call_from=TO,
            call_to=BRIDGE,
            audio="https://s3.example.com/mid.mp3",
            at="2026-11-27 18:35:00",
        ),
    ]
    assert pick(rows) == "https://s3.example.com/near.mp3"
    rows[1]["created_at"] = "2026-11-27 18:50:00"
    assert pick(rows) == "https://s3.example.com/mid.mp3"


def test_the_documented_rows_are_read_for_an_outbound_call_either_way_round():
    """The documentation's own rows: customer 918553001122 called our 918068287601 (listed
    inbound). Our outbound call between the same two numbers finds it; so does the same row
    listed the other way round."""
    started = datetime(2019, 6, 11, 6, 3, 0, tzinfo=KOLKATA)
    ours = {"to": "918553001122", "bridge": "918068287601", "at": started}
    assert picked(RECORDINGS, **ours) == RecordingPick(link=RECORDING_AUDIO, unreadable=0)
    swapped = [{**r, "call_from": r["call_to"], "call_to": r["call_from"]} for r in RECORDINGS]
    assert picked(swapped, **ours).link == RECORDING_AUDIO
    assert picked(RECORDINGS, **{**ours, "to": "919999999999"}).link is None


def test_the_filter_covers_the_day_the_call_began_and_the_next():
    late = datetime(2026, 11, 27, 18, 45, tzinfo=UTC)  # 00:15 on the 28th in Kolkata
    assert days_around(STARTED, KOLKATA) == "Nov 27, 2026 - Nov 28, 2026"
    assert days_around(late, KOLKATA) == "Nov 28, 2026 - Nov 29, 2026"


def test_the_gateway_pages_through_the_list_until_it_finds_the_call(db, fake_provider):
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


def test_no_recording_of_the_call_is_a_clear_error(db, fake_provider):
    fake_provider.route("voice/recordings", lambda r: json_reply(200, page([row(to="91999")])))
    with pytest.raises(GatewayError, match="lists no recording of this call"):
        MobtextingGateway(fake_provider.url, "tok").recording_link(TO, BRIDGE, STARTED)


def test_the_pages_read_are_bounded(db, fake_provider):
    fake_provider.route(
        "voice/recordings", lambda r: json_reply(200, page([row(to="91999")], 1, 999))
    )
    with pytest.raises(GatewayError):
        MobtextingGateway(fake_provider.url, "tok").recording_link(TO, BRIDGE, STARTED)
    assert len(fake_provider.requests) == 20
    read = ProviderListRead.objects.get(name="recordings")
    assert (read.rows, read.unreadable, read.complete) == (20, 0, False)  # pages left unread


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


def test_a_link_holding_our_token_is_refused(db, fake_provider):
    leaky = row(audio="https://portal.example.com/rec/1.mp3?access_token=tok-123")
    fake_provider.route("voice/recordings", lambda r: json_reply(200, page([leaky])))
    with pytest.raises(GatewayError) as caught:
        MobtextingGateway(fake_provider.url, "tok-123").recording_link(TO, BRIDGE, STARTED)
    assert "tok-123" not in str(caught.value)


def test_rows_arrive_as_documented_with_a_json_number(db, fake_provider):
    body = json.dumps(page([row(to=int(TO), call_from=int(BRIDGE))])).encode()
    fake_provider.route("voice/recordings", lambda r: (200, {}, body))
    assert MobtextingGateway(fake_provider.url, "tok-9").recording_link(TO, BRIDGE, STARTED) == LINK


def test_a_call_begun_minutes_later_than_the_window_is_not_matched():
    assert pick([row(at=(STARTED + timedelta(hours=3)).strftime("%Y-%m-%d %H:%M:%S"))]) is None


def test_the_documented_page_is_read_over_http_for_an_outbound_call(db, fake_provider):
    started = datetime(2019, 6, 11, 6, 3, 0, tzinfo=KOLKATA)
    fake_provider.route("voice/recordings", lambda r: json_reply(200, listed(RECORDINGS)))
    link = MobtextingGateway(fake_provider.url, "tok").recording_link(
        "918553001122", "918068287601", started
    )
    assert link == RECORDING_AUDIO
    read = ProviderListRead.objects.get(name="recordings")
    assert (read.rows, read.unreadable, read.complete) == (2, 0, True)


def test_unreadable_rows_are_logged_and_kept_for_health_and_the_call_still_found(
    db, fake_provider, caplog
):
    rows = ["not a row", 5, [TO], {}, row(to="9188\x0067135123"), row(call_from=TO, call_to=BRIDGE)]
    fake_provider.route("voice/recordings", lambda r: json_reply(200, page(rows)))
    with caplog.at_level(logging.WARNING, logger="calls.provider.mobtexting"):
        link = MobtextingGateway(fake_provider.url, "tok-123").recording_link(TO, BRIDGE, STARTED)
    assert link == LINK
    read = ProviderListRead.objects.get(name="recordings")
    assert (read.rows, read.unreadable) == (6, 5)
    assert "recordings list unreadable=5 of read=6" in caplog.text
    assert "tok-123" not in caplog.text and "s3.example.com" not in caplog.text


def test_no_recording_among_unreadable_rows_says_so(db, fake_provider):
    rows = [row(at="never"), row(to={"n": TO})]
    fake_provider.route("voice/recordings", lambda r: json_reply(200, page(rows)))
    with pytest.raises(GatewayError, match="2 of its rows could not be read"):
        MobtextingGateway(fake_provider.url, "tok").recording_link(TO, BRIDGE, STARTED)
