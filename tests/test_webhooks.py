"""The parser on its own: raw deliveries in, typed outcomes out. No database, no HTTP."""

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from calls.webhooks import Delivery, EmptyAnswer, MalformedDelivery, parse_delivery
from tests.helpers.webhooks import PROVIDER_STATUSES

KOLKATA = ZoneInfo("Asia/Kolkata")
CALL_ID = "3b69aca9-3b55-4e2d-bfe0-02b910dbe156"

# §4.2 of the fact sheet, byte for byte: bare numbers with X in them and a trailing comma.
PUBLISHED_EXAMPLE = b"""{
  "bridge": 91806828XXXX,
  "from": 91891952XXXX,
  "to": 91886713XXXX,
  "source": "OBD",
  "mid": "1234-1333-XXXXX",
  "flow_id": 123,
  "start_at": "2021-04-09 16:27:39",
  "end_at": "2021-04-09 16:27:55",
  "duration": "23",
  "status": "ANSWER",
  "recording_url": "https://youraudiofilelocation/",
}"""


def parse(
    body: dict | bytes = b"",
    *,
    content_type: str = "application/json",
    query: str = "",
    tz: ZoneInfo | None = KOLKATA,
) -> Delivery:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    return parse_delivery(content_type=content_type, body=raw, query=query, tz=tz)


def push(**fields) -> dict:
    """A valid-JSON OBD push like the published one; a field given as None is left out."""
    payload = {
        "bridge": "918068287602",
        "from": "918919525224",
        "to": "918867135123",
        "source": "OBD",
        "mid": CALL_ID,
        "flow_id": "24",
        "start_at": "2021-04-09 16:27:39",
        "end_at": "2021-04-09 16:27:55",
        "duration": "23",
        "status": "ANSWER",
        "recording_url": "https://rec.example/a.mp3",
    }
    payload.update(fields)
    return {key: value for key, value in payload.items() if value is not None}


def kolkata(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=KOLKATA)


# The standard OBD push


def test_it_reads_the_published_example_despite_bare_numbers_and_a_trailing_comma():
    delivery = parse(PUBLISHED_EXAMPLE)

    assert delivery.bridge == "91806828XXXX"
    assert delivery.to == "91886713XXXX"
    assert delivery.source == "OBD"
    assert delivery.mid == "1234-1333-XXXXX"
    assert delivery.flow_id == "123"
    assert delivery.start_at == kolkata("2021-04-09 16:27:39")
    assert delivery.end_at == kolkata("2021-04-09 16:27:55")
    assert delivery.duration == 23  # as the provider says, not end - start (16 s)
    assert (delivery.status, delivery.outcome) == ("ANSWER", "answered")
    assert delivery.recording_url == "https://youraudiofilelocation/"
    assert delivery.extra == {"from": "91891952XXXX"}
    assert delivery.ids == ["1234-1333-XXXXX"]


def test_it_reads_a_trailing_comma_after_real_bare_numbers():
    body = b'{"bridge": 918068287602, "to": 918867135123, "status": "BUSY",}'

    delivery = parse(body)

    assert (delivery.bridge, delivery.to, delivery.outcome) == (
        "918068287602",
        "918867135123",
        "busy",
    )


@pytest.mark.parametrize(
    "numbers",
    [
        {"bridge": 918068287602, "to": 918867135123, "flow_id": 24, "duration": 23},
        {"bridge": "918068287602", "to": "918867135123", "flow_id": "24", "duration": "23"},
        {"bridge": 918068287602.0, "to": 918867135123.0, "flow_id": 24.0, "duration": 23.0},
    ],
    ids=["json-numbers", "strings", "floats"],
)
def test_it_normalises_numbers_whether_sent_as_json_numbers_or_strings(numbers):
    delivery = parse(push(**numbers))

    assert delivery.bridge == "918068287602"
    assert delivery.to == "918867135123"
    assert delivery.flow_id == "24"
    assert delivery.duration == 23


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        ("23", 23),
        (23, 23),
        ("00:00:23", 23),
        ("00:01:05", 65),
        ("01:00:00", 3600),
        ("0", 0),
        (" 23 ", 23),
        ("", None),
        (None, None),
    ],
)
def test_it_reads_the_duration_in_seconds_or_the_legacy_clock_form(duration, seconds):
    assert parse(push(duration=duration)).duration == seconds


@pytest.mark.parametrize("recording_url", [None, "", "   "], ids=["missing", "empty", "blank"])
def test_it_leaves_the_recording_url_empty_when_the_call_was_not_recorded(recording_url):
    delivery = parse(push(recording_url=recording_url))

    assert delivery.recording_url == ""
    assert "recording_url" not in delivery.extra


def test_it_keeps_unknown_fields_in_extra_as_text():
    extra = {
        "hangup_by": "callee",
        "billing": 30,
        "options": {"voice": "Aditi"},
        "answered": True,
    }

    delivery = parse({**push(), **extra})

    assert delivery.extra == {
        "from": "918919525224",
        "hangup_by": "callee",
        "billing": "30",
        "options": '{"voice": "Aditi"}',
        "answered": "True",
    }
    assert delivery.status == "ANSWER"  # known fields stay out of extra


@pytest.mark.parametrize(
    ("dtmf", "keys", "problems"),
    [
        (None, "", ()),
        ("", "", ()),
        (1, "1", ()),
        ("19*#", "19*#", ()),
        ("1, 9", "19", ()),
        ("1a", "", ("dtmf is not keypad keys: '1a': not kept",)),
        ("1" * 33, "", (f"dtmf is not keypad keys: {'1' * 33!r}: not kept",)),
        ({"k": 1}, "", ("""dtmf is not keypad keys: '{"k": 1}': not kept""",)),
    ],
)
def test_it_reads_the_keys_pressed(dtmf, keys, problems):
    delivery = parse({**push(), "dtmf": dtmf})
    assert (delivery.dtmf, delivery.problems) == (keys, problems)
    assert "dtmf" not in delivery.extra


def test_it_exposes_both_ids_once_each_in_order():
    assert parse(push(id="abc", mid="def")).ids == ["abc", "def"]
    assert parse(push(id=CALL_ID, mid=CALL_ID)).ids == [CALL_ID]
    assert parse(push(mid=None)).ids == []


def test_it_serialises_to_json_with_iso_times():
    data = parse(push()).as_json()

    assert json.loads(json.dumps(data)) == data
    assert data["start_at"] == "2021-04-09T16:27:39+05:30"
    assert data["duration"] == 23
    assert parse(push(start_at=None)).as_json()["start_at"] is None


def test_it_reads_a_json_body_whatever_its_content_type_says():
    for content_type in ("application/json; charset=utf-8", "text/plain", ""):
        assert parse(push(), content_type=content_type).mid == CALL_ID


def test_an_empty_delivery_has_no_outcome():
    delivery = parse(b"  ")

    assert delivery == Delivery()
    assert delivery.outcome == ""


# Compose webhooks


def test_it_reads_a_form_encoded_compose_webhook():
    body = urlencode({"id": CALL_ID, "to": "918867135123", "status": "NOANSWER", "duration": "0"})

    delivery = parse(body.encode(), content_type="application/x-www-form-urlencoded")

    assert (delivery.call_id, delivery.to, delivery.outcome) == (
        CALL_ID,
        "918867135123",
        "no_answer",
    )
    assert delivery.duration == 0


def test_it_reads_a_multipart_compose_webhook():
    body = encode_multipart(
        BOUNDARY, {"id": CALL_ID, "status": "BUSY", "start_at": "2021-04-09 16:27:39"}
    )

    delivery = parse(body, content_type=MULTIPART_CONTENT)

    assert (delivery.call_id, delivery.status, delivery.outcome) == (CALL_ID, "BUSY", "busy")
    assert delivery.start_at == kolkata("2021-04-09 16:27:39")


def test_it_reads_a_compose_webhook_whose_values_are_only_in_the_query_string():
    query = urlencode({"call_id": CALL_ID, "to": "918867135123", "message_status": "ANSWER"})

    delivery = parse(b"", content_type="", query=query)

    assert (delivery.call_id, delivery.to, delivery.status) == (CALL_ID, "918867135123", "ANSWER")
    assert delivery.outcome == "answered"


def test_the_body_wins_over_the_query_string_and_the_token_is_not_a_field():
    delivery = parse(push(status="BUSY"), query=f"token=verify-me&status=ANSWER&id={CALL_ID}")

    assert delivery.status == "BUSY"
    assert delivery.call_id == CALL_ID
    assert "token" not in delivery.extra


def test_it_reads_the_verification_challenge():
    delivery = parse({"validation_key": "k-123", "challenge": "abc"}, query="token=verify-me")

    assert delivery.challenge == "abc"
    assert delivery.extra == {"validation_key": "k-123"}
    assert delivery.outcome == ""


# The call-status API's answer


def test_it_reads_the_first_row_of_a_status_api_answer():
    answer = {
        "status": 200,
        "message": "OK",
        "data": [
            {
                "id": "8456bf26-1b6e-4ac1-adb9-2768258f71d0",
                "channel": "outgoing",
                "from": "3589100xxxx",
                "to": "91761936xxxx",
                "created_at": "2024-07-10 08:27:14",
                "foreign_id": "",
                "status": "ANSWER",
                "start_at": "2024-07-10 08:27:26",
                "end_at": "2024-07-10 08:27:29",
                "dtmf": "",
            }
        ],
    }

    delivery = parse(answer)

    assert delivery.call_id == "8456bf26-1b6e-4ac1-adb9-2768258f71d0"
    assert (delivery.bridge, delivery.to) == ("3589100xxxx", "91761936xxxx")
    assert (delivery.status, delivery.outcome) == ("ANSWER", "answered")
    assert delivery.start_at == kolkata("2024-07-10 08:27:26")
    assert delivery.duration is None  # the current shape has none


def test_it_reads_the_legacy_status_api_row():
    answer = {
        "status": 200,
        "message": "OK",
        "data": [
            {
                "id": "047d8cfc-77d1-4f6c-bfb5-e81f1a1343a7:1",
                "mobile": "918919525224",
                "caller_id": "918068287602",
                "duration": "00:00:19",
                "pulsing": "30",
                "status": "ANSWER",
                "charges": "0.1500",
                "dtmf": None,
                "location": "IN",
                "provider": "RJ",
                "start_at": "2019-07-16 18:13:44",
                "end_at": "2019-07-16 18:14:03",
            }
        ],
    }

    delivery = parse(answer)

    assert delivery.ids == ["047d8cfc-77d1-4f6c-bfb5-e81f1a1343a7:1"]
    assert (delivery.to, delivery.bridge) == ("918919525224", "918068287602")
    assert delivery.duration == 19
    assert delivery.extra["charges"] == "0.1500"


# Status values


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        *PROVIDER_STATUSES,
        ("RECEIVED", "failed"),
        ("SOMETHING_NEW", "failed"),
        ("answer", "answered"),
        ("Busy", "busy"),
    ],
)
def test_it_maps_each_provider_status_and_keeps_the_raw_one(status, outcome):
    delivery = parse(push(status=status))

    assert delivery.outcome == outcome
    assert delivery.status == status


def test_a_delivery_without_status_has_no_outcome_rather_than_a_failure():
    assert parse(push(status=None)).outcome == ""
    assert parse(push(status="")).outcome == ""


# Times


@pytest.mark.parametrize(
    "text", ["2021-04-09 16:27:39", "2021-04-09T16:27:39", "2021-04-09T16:27:39.000"]
)
def test_it_reads_naive_provider_times_in_the_given_zone_and_returns_them_aware(text):
    started = parse(push(start_at=text)).start_at

    assert started.tzinfo is not None
    assert started.utcoffset() == timedelta(hours=5, minutes=30)
    assert started == datetime(2021, 4, 9, 10, 57, 39, tzinfo=UTC)


def test_it_reads_naive_times_as_utc_when_no_zone_is_given():
    started = parse(push(), tz=None).start_at

    assert started == datetime(2021, 4, 9, 16, 27, 39, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2021-04-09T10:57:39Z", datetime(2021, 4, 9, 10, 57, 39, tzinfo=UTC)),
        ("2021-04-09T16:27:39+05:30", datetime(2021, 4, 9, 10, 57, 39, tzinfo=UTC)),
        ("2021-04-09T05:57:39-05:00", datetime(2021, 4, 9, 10, 57, 39, tzinfo=UTC)),
    ],
    ids=["zulu", "plus-offset", "minus-offset"],
)
def test_it_honours_an_explicit_offset_over_the_given_zone(text, utc):
    assert parse(push(start_at=text)).start_at == utc


# Bodies that cannot be read


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"status=ANSWER and more", "application/json", "body is not JSON"),
        (b'{"status": "ANSWER"', "application/json", "body is not JSON"),
        (b'[{"status": "ANSWER"}]', "application/json", "expected a JSON object, got list"),
        (b'"ANSWER"', "application/json", "expected a JSON object, got str"),
        (b"null", "application/json", "expected a JSON object, got NoneType"),
        (b'{"status": "ANSWER", "to": "\xff\xfe"}', "application/json", "body is not UTF-8"),
        (b"status=ANSWER&to=\xe9", "application/x-www-form-urlencoded", "body is not UTF-8"),
        (b"--x\r\n\r\n", "multipart/form-data", "multipart body without parts"),
    ],
    ids=[
        "not-json",
        "cut-short",
        "json-array",
        "json-string",
        "json-null",
        "not-utf8-json",
        "not-utf8-form",
        "multipart-without-boundary",
    ],
)
def test_it_refuses_an_unreadable_body_saying_why(body, content_type, message):
    with pytest.raises(MalformedDelivery) as caught:
        parse(body, content_type=content_type)

    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "message", "left_out"),
    [
        ({"start_at": "09/04/2021 16:27"}, "unreadable time '09/04/2021 16:27'", "start_at"),
        ({"end_at": "soon"}, "unreadable time 'soon'", "end_at"),
        ({"start_at": "yesterdayZ"}, "unreadable time 'yesterdayZ'", "start_at"),
        ({"duration": "twenty"}, "unreadable duration 'twenty'", "duration"),
        ({"duration": "inf"}, "unreadable duration 'inf'", "duration"),
        ({"duration": "99999999999"}, "duration out of range", "duration"),
    ],
    ids=["bad-start-time", "bad-end-time", "bad-zulu-time", "bad-duration", "inf", "huge"],
)
def test_an_unreadable_field_is_named_and_left_out_while_the_outcome_is_kept(
    fields, message, left_out
):
    delivery = parse(push(status="BUSY", **fields))

    assert delivery.outcome == "busy"
    assert getattr(delivery, left_out) is None
    assert any(message in problem for problem in delivery.problems)


def test_an_empty_status_answer_is_no_delivery():
    with pytest.raises(EmptyAnswer):
        parse({"status": 200, "data": []})
