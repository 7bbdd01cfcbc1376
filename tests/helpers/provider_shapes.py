"""Every shape the provider has documented for the answers the portal reads, copied from its
documentation (github.com/mobtexting/docs, the Markdown behind portal.mobtexting.com/docs; each
shape names the commit that showed it). docs/provider-shapes.md lists them for people.

Copied as published, with two kinds of change only: digits the documentation masks with `x`
are filled in (a valid number, a distinct one per shape, so a test sees which shape landed), and
the recordings example's pre-signed S3 link has AWS's documented example key and a dummy
signature in place of the published credential and signature.
"""

# --- POST outgoing/send (the call is queued) ------------------------------------------------------

# Since b2d1213 (2024-07-10): tests/helpers/answers.py CURRENT, the shape the sandbox answers in.
SEND_LEGACY = {  # 03276a3 (2019-08-16) until b2d1213
    "status": 200,
    "message": "1 numbers accepted for delivery.",
    "data": [
        {
            "id": "70fa87e0-9df9-4327-bc80-a561c48703d8:1",
            "mobile": "918919525224",
            "charges": "0.5000",
            "customid": "",
            "customid1": "",
            "iso_code": None,
            "submitted_at": "2019-08-16 15:09:51",
        }
    ],
}

# --- GET outgoing/callstatus (the status look-up) -------------------------------------------------

STATUS_CURRENT = {  # v2/reach/status.md since b2d1213 (2024-07-10); "from"/"to" were masked
    "status": 200,
    "message": "OK",
    "data": [
        {
            "id": "8456bf26-1b6e-4ac1-adb9-2768258f71d0",
            "channel": "outgoing",
            "from": "35891000000",
            "to": "917619360000",
            "created_at": "2024-07-10 08:27:14",
            "foreign_id": "",
            "status": "ANSWER",
            "start_at": "2024-07-10 08:27:26",
            "end_at": "2024-07-10 08:27:29",
            "dtmf": "",
        }
    ],
}
STATUS_LEGACY = {  # before b2d1213; still on the white-label copy (portal.thundersms.com)
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

# --- GET outgoing/suppressions/unsubscribers (opt-outs), v2/reach/suppressions/unsubscribers.md ---

# The list's row since a4ec361 (2023-05-08), on master (f44c243) today.
UNSUBSCRIBER_CURRENT = {
    "id": "0e3fdaad-2b46-4dcf-8b14-000000000001",
    "iso": "IN",
    "receiver": "919800000001",
    "type": "xxxxxxx",
    "value": "xxxxx",
    "created_at": "2023-04-11T12:53:29.000000Z",
}
# The same shape as the create answer shows it, unmasked in the documentation.
UNSUBSCRIBER_CURRENT_CREATED = {
    "id": "848c22a0-6969-455a-b5dc-4b119016b55b",
    "iso": "IN",
    "receiver": "919876543210",
    "type": "tag",
    "value": "promo",
    "created_at": "2023-04-11T12:50:17.000000Z",
}
# The list's row in 2e12201 (2023-05-04): the older names with the current scope.
UNSUBSCRIBER_MOBILE_SCOPED = {
    "id": "0e3fdaad-2b46-4dcf-8b14-000000000002",
    "mobile": "919811100002",
    "country": "IN",
    "type": "xxxxxxx",
    "value": "xxxxx",
    "created_at": "2023-04-11T12:53:29.000000Z",
}
# The list's row in the first version, 215d457 (2023-05-02).
UNSUBSCRIBER_FIRST = {
    "id": "0e3fdaad-2b46-4dcf-8b14-000000000003",
    "mobile": "919822200003",
    "country": "IN",
    "created_at": "2023-04-25T05:18:27.000000Z",
}
# The first version's create and edit answers: `receiver` already, with `country`.
UNSUBSCRIBER_FIRST_CREATED = {
    "id": "848c22a0-6969-455a-b5dc-000000000004",
    "receiver": "919833300004",
    "country": "IN",
    "created_at": "2023-04-25T11:53:14.000000Z",
}
UNSUBSCRIBER_SHAPES = {
    "current": UNSUBSCRIBER_CURRENT,
    "current, as created": UNSUBSCRIBER_CURRENT_CREATED,
    "mobile with scope (2023-05-04)": UNSUBSCRIBER_MOBILE_SCOPED,
    "first (2023-05-02)": UNSUBSCRIBER_FIRST,
    "first, as created": UNSUBSCRIBER_FIRST_CREATED,
}

# --- GET voice/recordings, v2/voice/logs.md (8d85214, 2019-08-13, unchanged since) -----------------

# The example's link, with AWS's documented example key and a dummy signature.
RECORDING_AUDIO = (
    "https://s30m.s3.ap-southeast-1.amazonaws.com/rc/190624/c-9180682876012-11061911.mp3"
    "?X-Amz-Content-Sha256=UNSIGNED-PAYLOAD&X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20190813%2Fap-southeast-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20190813T124618Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600"
    "&X-Amz-Signature=" + "0" * 64
)
# Both documented rows are inbound calls: a customer (`call_from`) to our number (`call_to`).
RECORDINGS = [
    {
        "id": "c136768e-8c0e-11e9-b795-6c2b59c79f5a",
        "call_from": "918553001122",
        "call_to": "918068287601",
        "audio": RECORDING_AUDIO,
        "duration": "00:01:33",
        "agent": None,
        "created_at": "2019-06-11 06:04:21",
    },
    {
        "id": "066f0afa-8c0e-11e9-8b2f-6c2b59c79f5a",
        "call_from": "917989532456",
        "call_to": "918068287601",
        "audio": RECORDING_AUDIO,
        "duration": "00:00:47",
        "agent": None,
        "created_at": "2019-06-11 05:59:07",
    },
]


def listed(rows: list) -> dict:
    """One page of a list in the documented envelope (`links`, `meta`), the last page."""
    return {
        "status": "OK",
        "code": 200,
        "message": "OK",
        "data": rows,
        "links": {"first": "?page=1", "last": "?page=1", "prev": None, "next": None},
        "meta": {"current_page": 1, "from": 1, "last_page": 1, "per_page": 15},
    }
