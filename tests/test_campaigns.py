"""Campaigns: the CSV import and its validation report, the campaign pages, the do-not-call list
and the per-number guard, and dispatch (pace, a bucket shared by workers, exactly once, pause,
resume, cancel, HTTP 429, failure classes, calling window)."""

import csv
import io
import itertools
import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from calls.imports import ImportReport, UnreadableFile, import_rows
from calls.models import MASK, CallLog, Campaign, DoNotCall, RejectedRow
from calls.provider.base import SendResult
from calls.provider.configured import get_gateway
from calls.sealing import unseal
from calls.tasks import Dispatcher, dispatch_campaign
from tests.conftest import campaign_form, logged_in

START = datetime(2026, 11, 2, 5, 0, tzinfo=UTC)  # 10:30 in Kolkata
BAD_NUMBER = "12345 is not a valid phone number with country code (for example +91 88671 35123)."


# --- helpers ------------------------------------------------------------------------------------


def make_campaign(bridge, *, flow=None, audio=None, pace: str = "2", **fields) -> Campaign:
    return Campaign.objects.create(
        name="November reminders",
        bridge=bridge,
        flow=flow,
        audio=audio,
        pace=Decimal(pace),
        **fields,
    )


@pytest.fixture
def campaign(bridge, otp_flow) -> Campaign:
    """A draft campaign of the Login OTP flow: variables {Name} and {otp}, the otp sensitive."""
    return make_campaign(bridge, flow=otp_flow)


def upload(campaign: Campaign, content: str | bytes, user=None) -> ImportReport:
    raw = content.encode() if isinstance(content, str) else content
    return import_rows(campaign, io.BytesIO(raw), user=user)


def calls_of(campaign: Campaign) -> list[tuple[str, dict]]:
    return [(call.to, call.variables) for call in campaign.calls.order_by("id")]


def rejections(campaign: Campaign) -> list[tuple[int, str]]:
    return list(campaign.rejected_rows.order_by("line").values_list("line", "reason"))


def number(i: int) -> str:
    return f"9188671{40000 + i:05d}"


def database_dump() -> str:
    """Every row of every table, as text: what someone reading the database would see."""
    with connection.cursor() as cursor:
        dump = []
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from introspection
            dump.append(repr(cursor.fetchall()))
    return "".join(dump)


def running_campaign(bridge, sound, rows: int = 3, pace: str = "1", **fields) -> Campaign:
    """A started audio campaign with `rows` pending calls to number(0), number(1), ..."""
    campaign = make_campaign(bridge, audio=sound, pace=pace, **fields)
    upload(campaign, "number\n" + "".join(f"{number(i)}\n" for i in range(rows)))
    assert campaign.start()
    return campaign


def statuses(campaign: Campaign) -> list[str]:
    return list(campaign.calls.order_by("id").values_list("status", flat=True))


class FakeClock:
    """Time that only moves when the dispatcher sleeps."""

    def __init__(self, start: datetime = START) -> None:
        self.moment = start

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.moment += timedelta(seconds=seconds)


@dataclass(frozen=True)
class Sent:
    at: datetime
    worker: str
    payload: dict


def accepted() -> SendResult:
    return SendResult(
        status="queued",
        http_status=200,
        body='{"status": "OK"}',
        provider_id=str(uuid.uuid4()),
        provider_status="queued",
    )


def rate_limited(retry_after: float | None) -> SendResult:
    return SendResult(
        status="rejected",
        http_status=429,
        body='{"message": "Too Many Requests"}',
        error="The provider rejected the call (HTTP 429): Too Many Requests",
        retry_after=retry_after,
    )


class FakeGateway:
    """Records every payload with the (fake) time and the worker thread that sent it; answers
    from a script, then accepts. Thread-safe. `after_send` runs an action after the n-th send."""

    is_sandbox = False

    def __init__(
        self,
        now: Callable[[], datetime] = timezone.now,
        answers: tuple[SendResult, ...] = (),
        after_send: dict[int, Callable[[], object]] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.now = now
        self.answers = list(answers)
        self.after_send = after_send or {}
        self.delay = delay
        self.sent: list[Sent] = []
        self._lock = threading.Lock()

    def send(self, payload: dict) -> SendResult:
        with self._lock:
            self.sent.append(Sent(self.now(), threading.current_thread().name, payload))
            count = len(self.sent)
            answer = self.answers.pop(0) if self.answers else accepted()
        if self.delay:
            time.sleep(self.delay)
        if action := self.after_send.get(count):
            action()
        return answer

    def call_status(self, **query: str) -> bytes:
        raise AssertionError("the dispatcher never looks calls up")

    @property
    def numbers(self) -> list[str]:
        return [sent.payload["to"] for sent in self.sent]

    def seconds(self, since: datetime = START) -> list[float]:
        return [(sent.at - since).total_seconds() for sent in self.sent]


def dispatcher(
    campaign: Campaign, gateway: FakeGateway, clock: "FakeClock | TurnClock"
) -> Dispatcher:
    return Dispatcher(
        campaign, gateway, now=clock.now, sleep=clock.sleep, budget=timedelta(hours=1)
    )


# --- reading the CSV ----------------------------------------------------------------------------

ASHA = ("918867135123", {"Name": "Aśha", "otp": MASK})
RAVI = ("918867135124", {"Name": "Ravi", "otp": MASK})
TWO_ROWS = "+91 88671 35123,Aśha,111111\n918867135124,Ravi,222222\n"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("number,Name,otp\n" + TWO_ROWS, id="utf-8"),
        pytest.param("\ufeffnumber,Name,otp\n" + TWO_ROWS, id="utf-8 with BOM"),
        pytest.param(
            "number;Name;otp\n+91 88671 35123;Aśha;111111\n918867135124;Ravi;222222\n",
            id="semicolons",
        ),
        pytest.param(
            "\ufeffnumber;Name;otp\r\n+91 88671 35123;Aśha;111111\r\n918867135124;Ravi;222222\r\n",
            id="excel: BOM, semicolons and CRLF",
        ),
        pytest.param("NUMBER,name,OTP\n" + TWO_ROWS, id="header in another case"),
        pytest.param(
            "id,number,city,Name,otp,notes\n"
            "1,+91 88671 35123,Pune,Aśha,111111,x\n2,918867135124,Goa,Ravi,222222,\n",
            id="extra columns",
        ),
        pytest.param(
            "\nnumber,Name,otp\n\n+91 88671 35123,Aśha,111111\n\n , , \n918867135124,Ravi,222222\n\n",
            id="empty lines",
        ),
        pytest.param(
            " number , Name , otp \n +91 88671 35123 , Aśha , 111111 \n918867135124,Ravi,222222\n",
            id="spaces around cells",
        ),
    ],
)
def test_a_readable_csv_becomes_one_pending_call_per_row(campaign, content):
    report = upload(campaign, content)

    assert calls_of(campaign) == [ASHA, RAVI]
    assert (report.accepted, report.rejected) == (2, 0)
    assert not RejectedRow.objects.exists()


@pytest.mark.parametrize("column", ["to", "mobile", "phone", "Mobile", "PHONE"])
def test_the_number_column_may_be_called_to_mobile_or_phone(campaign, column):
    report = upload(campaign, f"{column},Name,otp\n+91 88671 35123,Aśha,1\n")

    assert calls_of(campaign) == [ASHA]
    assert report.columns == {column: "number", "Name": "{Name}", "otp": "{otp}"}


def test_extra_columns_are_ignored_and_the_mapping_is_kept_on_the_campaign(campaign):
    upload(campaign, "id,Number,city,name,OTP\n1,918867135123,Pune,Aśha,1\n")
    campaign.refresh_from_db()
    assert campaign.columns == [
        ["id", ""],
        ["Number", "number"],
        ["city", ""],
        ["name", "{Name}"],
        ["OTP", "{otp}"],
    ]
    assert calls_of(campaign) == [ASHA]


def test_an_audio_campaign_needs_only_a_number_column(bridge, sound):
    campaign = make_campaign(bridge, audio=sound)

    upload(campaign, "phone,Name\n+91 88671 35123,Asha\n")

    call = campaign.calls.get()
    assert (call.to, call.variables, call.audio, call.flow) == ("918867135123", {}, sound, None)
    assert call.request_payload["audio"] == sound.sound_id


LATIN_1 = "number,Name,otp\n+91 88671 35123,José,1\n".encode("latin-1")


def many_rows_then(tail: bytes) -> bytes:
    """More rows than one insert batch, so some are written before the bad bytes are read."""
    rows = "".join(f"{number(i)},N{i},{i}\n" for i in range(2500))
    return ("number,Name,otp\n" + rows).encode() + tail


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(LATIN_1, id="latin-1"),
        pytest.param(many_rows_then("918867135123,José,1\n".encode("latin-1")), id="late bad byte"),
    ],
)
def test_a_file_that_is_not_utf8_is_refused_whole_with_a_clear_message(campaign, content):
    with pytest.raises(UnreadableFile) as refused:
        upload(campaign, content)

    assert str(refused.value) == (
        "The file is not UTF-8 text: save it as “CSV UTF-8” and upload again."
    )
    assert not CallLog.objects.exists()
    assert not RejectedRow.objects.exists()


@pytest.mark.parametrize("content", [b"", b"\n\n  \r\n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_refused(campaign, content):
    with pytest.raises(UnreadableFile, match=r"^The file is empty\.$"):
        upload(campaign, content)


@pytest.mark.parametrize(("header", "missing"), [("number,Name", "otp"), ("to,OTP", "Name")])
def test_a_missing_variable_column_is_refused_naming_the_variable(campaign, header, missing):
    with pytest.raises(UnreadableFile) as refused:
        upload(campaign, f"{header}\n918867135123,x\n")

    assert str(refused.value) == (
        f"No column for the flow's variable {{{missing}}}: add a column named “{missing}”."
    )
    assert not CallLog.objects.exists()


def test_a_file_without_a_number_column_is_refused_naming_the_accepted_names(campaign):
    with pytest.raises(UnreadableFile) as refused:
        upload(campaign, "phone_number,Name,otp\n918867135123,Asha,1\n")

    assert "No number column" in str(refused.value)
    for name in ("number", "to", "mobile", "phone"):
        assert name in str(refused.value)


# --- the validation report ----------------------------------------------------------------------

REPORT_CSV = (
    "number,Name,otp\n"  # line 1
    "+91 88671 35123,Asha,111111\n"  # 2: accepted
    "12345,Ravi,222222\n"  # 3: not a number
    "+91 88671 35124,,333333\n"  # 4: no Name
    "918867135123,Asha again,444444\n"  # 5: the number of line 2
    "+91 88671 35125,Dee,555555\n"  # 6: on the do-not-call list
    "\n"  # 7: blank
    "+91 88671 35126,Eve,\n"  # 8: no otp
    "+91 88671 35127,Fay,777777\n"  # 9: accepted
)


def test_every_row_is_checked_and_a_rejected_row_keeps_its_line_and_reason(campaign):
    DoNotCall.objects.create(number="918867135125", reason="Customer asked on 2026-11-02")

    report = upload(campaign, REPORT_CSV)

    assert (report.accepted, report.rejected) == (2, 5)
    assert rejections(campaign) == [
        (3, BAD_NUMBER),
        (4, "Missing value for Name"),
        (5, "Duplicate number in this campaign"),
        (6, "On the do-not-call list (Customer asked on 2026-11-02)"),
        (8, "Missing value for otp"),
    ]
    campaign.refresh_from_db()
    assert campaign.rows_rejected == 5
    row = campaign.rejected_rows.get(line=5)
    assert (row.values["number"], row.values["Name"]) == ("918867135123", "Asha again")
    assert [to for to, _ in calls_of(campaign)] == ["918867135123", "918867135127"]


def test_a_do_not_call_number_without_a_reason_is_still_named_as_such(campaign):
    DoNotCall.objects.create(number="918867135123")

    upload(campaign, "number,Name,otp\n+91 88671 35123,Asha,1\n")

    assert rejections(campaign) == [(2, "On the do-not-call list")]
    assert not CallLog.objects.exists()


def test_accepted_rows_are_pending_calls_of_the_campaign_with_the_otp_masked(campaign, supervisor):
    upload(campaign, "number,Name,otp\n+91 88671 35123,Asha,482913\n", user=supervisor)

    call = CallLog.objects.get()
    assert (call.status, call.campaign, call.submitted_at) == ("pending", campaign, None)
    assert (call.bridge, call.flow, call.audio) == (campaign.bridge, campaign.flow, None)
    assert (call.name, call.created_by) == ("November reminders", supervisor)
    assert call.variables == {"Name": "Asha", "otp": MASK}
    assert call.request_payload == {
        "bridge": "918068287602",
        "to": "918867135123",
        "flow_id": "24",
        "name": "November reminders",
        "variables[Name]": "Asha",
        "variables[otp]": MASK,
    }
    assert unseal(call.sealed_variables) == {"otp": "482913"}


def test_a_number_already_in_the_campaign_is_a_duplicate_on_a_later_upload(campaign, bridge):
    upload(campaign, "number,Name,otp\n918867135123,Asha,1\n")
    elsewhere = make_campaign(bridge, flow=campaign.flow)
    upload(elsewhere, "number,Name,otp\n918867135124,Ravi,2\n")

    report = upload(campaign, "number,Name,otp\n+91 88671 35123,Asha,1\n+91 88671 35124,Ravi,2\n")

    assert (report.accepted, report.rejected) == (1, 1)
    assert rejections(campaign) == [(2, "Duplicate number in this campaign")]
    assert [to for to, _ in calls_of(campaign)] == ["918867135123", "918867135124"]


@pytest.mark.parametrize("before", ["", "\n", "\n\n"], ids=["none", "one", "two"])
def test_line_numbers_are_those_of_the_file_even_after_blank_lines_at_its_top(campaign, before):
    content = before + "number,Name,otp\n918867135123,Asha,1\n\n12345,Ravi,2\n"

    upload(campaign, content)

    line_in_file = content.split("\n").index("12345,Ravi,2") + 1
    assert rejections(campaign) == [(line_in_file, BAD_NUMBER)]


# --- secrets: sealed until sent, in clear only to the provider ----------------------------------


@pytest.fixture
def provider(settings, fake_provider):
    """The real MobtextingGateway against the local fake provider, which queues every call."""
    settings.MOBTEXTING_API_TOKEN = "tok-123"
    settings.MOBTEXTING_API_URL = fake_provider.url
    settings.OBD_SANDBOX = False

    def queue(request) -> tuple[int, dict, bytes]:
        row = {"id": str(uuid.uuid4()), "status": "queued", "credits": 1}
        body = {"status": "OK", "message": "Calls queued successfully", "data": [row]}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    fake_provider.reply = queue
    return fake_provider


def test_a_campaign_otp_is_never_stored_in_clear_yet_reaches_the_provider_and_is_then_wiped(
    bridge, otp_flow, provider, caplog
):
    caplog.set_level(logging.DEBUG)
    campaign = make_campaign(bridge, flow=otp_flow, pace="50")
    secrets = {"918867135123": "739164", "918867135124": "582047"}
    upload(campaign, "number,Name,otp\n" + "".join(f"{n},Asha,{s}\n" for n, s in secrets.items()))
    stored_before_sending = database_dump()
    assert campaign.start()

    assert Dispatcher(campaign, get_gateway()).run() == "empty"

    sent = [request.json() for request in provider.requests]
    assert {body["to"]: body["variables[otp]"] for body in sent} == secrets
    assert all(body["variables[Name]"] == "Asha" for body in sent)
    assert set(statuses(campaign)) == {"queued"}
    assert set(campaign.calls.values_list("sealed_variables", flat=True)) == {""}
    stored_after_sending = database_dump()
    for secret in secrets.values():
        assert secret not in stored_before_sending
        assert secret not in stored_after_sending
        assert secret not in caplog.text


def test_the_otp_of_a_rejected_row_is_not_stored_in_clear_either(campaign):
    upload(campaign, "number,Name,otp\n12345,Asha,905517\n918867135123,,318274\n")

    assert campaign.rejected_rows.count() == 2
    dump = database_dump()
    assert "905517" not in dump
    assert "318274" not in dump


def test_a_row_whose_sealed_otp_cannot_be_read_fails_instead_of_sending_the_mask(
    campaign, settings
):
    upload(campaign, "number,Name,otp\n918867135123,Asha,1\n")
    settings.SECRET_KEY = "another-secret-key-after-a-rotation"
    assert campaign.start()
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now)

    assert dispatcher(campaign, gateway, clock).run() == "empty"

    assert gateway.sent == []
    call = campaign.calls.get()
    assert call.status == "error"
    assert "SECRET_KEY changed" in call.error


# --- the campaign pages -------------------------------------------------------------------------

VIEW_CSV = (
    b"number,Name,otp,city\n918867135123,Asha,1,Pune\n12345,Ravi,2,Goa\n918867135124,Dee,3,Delhi\n"
)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_a_supervisor_creates_a_draft_from_a_csv_and_sees_its_report(supervisor, bridge, otp_flow):
    client = logged_in(supervisor)

    response = client.post("/campaigns/new/", campaign_form(bridge, otp_flow, VIEW_CSV))

    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/campaigns/{campaign.pk}/"
    assert (campaign.status, campaign.created_by, campaign.flow) == ("draft", supervisor, otp_flow)
    page = client.get(response["Location"])
    assert messages_of(page) == ["2 row(s) ready to call, 1 rejected."]
    assert page.context["progress"]["counts"] == {"pending": 2}
    assert [(row.line, row.reason) for row in page.context["rejected"]] == [(3, BAD_NUMBER)]
    assert page.context["campaign"].columns == [
        ["number", "number"],
        ["Name", "{Name}"],
        ["otp", "{otp}"],
        ["city", ""],
    ]
    html = page.content.decode()
    assert BAD_NUMBER in html and "12345" in html
    assert f'href="/campaigns/{campaign.pk}/rejected.csv"' in html


def test_an_unreadable_csv_leaves_no_draft_behind_and_says_why(supervisor, bridge, otp_flow):
    response = logged_in(supervisor).post(
        "/campaigns/new/", campaign_form(bridge, otp_flow, LATIN_1)
    )

    assert response.status_code == 200
    assert not Campaign.objects.exists() and not CallLog.objects.exists()
    assert messages_of(response) == [
        "The file is not UTF-8 text: save it as “CSV UTF-8” and upload again."
    ]


def test_the_rejected_rows_download_as_csv_with_their_reason(supervisor, bridge, sound):
    campaign = make_campaign(bridge, audio=sound)
    upload(
        campaign,
        "number,Name,city\n12345,Ravi,Goa\n+91 88671 35123,Asha,Pune\n918867135123,Dup,Delhi\n",
    )

    response = logged_in(supervisor).get(f"/campaigns/{campaign.pk}/rejected.csv")

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == (
        f'attachment; filename="campaign-{campaign.pk}-rejected.csv"'
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["number", "Name", "city", "reason"],
        ["12345", "Ravi", "Goa", BAD_NUMBER],
        ["918867135123", "Dup", "Delhi", "Duplicate number in this campaign"],
    ]


def test_fixed_rejected_rows_can_be_uploaded_again_to_the_draft(supervisor, bridge, sound):
    campaign = make_campaign(bridge, audio=sound)
    upload(campaign, "number,Name\n12345,Ravi\n918867135123,Asha\n")
    client = logged_in(supervisor)
    download = b"".join(client.get(f"/campaigns/{campaign.pk}/rejected.csv").streaming_content)
    fixed = download.replace(b"12345,", b"+91 88671 35124,", 1)

    response = client.post(
        f"/campaigns/{campaign.pk}/upload/",
        {"csv_file": SimpleUploadedFile("fixed.csv", fixed, content_type="text/csv")},
    )

    assert response.status_code == 302 and response["Location"] == campaign.get_absolute_url()
    assert sorted(campaign.calls.values_list("to", flat=True)) == ["918867135123", "918867135124"]
    assert messages_of(client.get(response["Location"])) == ["1 row(s) ready to call, 0 rejected."]


def test_rows_cannot_be_added_once_the_campaign_has_started(supervisor, campaign):
    upload(campaign, "number,Name,otp\n918867135123,Asha,1\n")
    assert campaign.start()

    response = logged_in(supervisor).post(
        f"/campaigns/{campaign.pk}/upload/",
        {"csv_file": SimpleUploadedFile("more.csv", b"number,Name,otp\n918867135124,Ravi,2\n")},
    )

    assert response.status_code == 404
    assert campaign.calls.count() == 1


def dispatch_tasks(campaign: Campaign) -> list:
    tasks = DBTaskResult.objects.filter(task_path=dispatch_campaign.module_path)
    return [task.args_kwargs["args"] for task in tasks]


def test_a_supervisor_starts_pauses_resumes_and_cancels_from_the_page(
    supervisor, campaign, settings
):
    settings.OBD_CAMPAIGN_DISPATCHERS = 2
    upload(campaign, "number,Name,otp\n918867135123,Asha,1\n918867135124,Ravi,2\n")
    client = logged_in(supervisor)

    def act(action: str) -> str:
        response = client.post(f"/campaigns/{campaign.pk}/{action}/")
        assert response.status_code == 302 and response["Location"] == campaign.get_absolute_url()
        campaign.refresh_from_db()
        return campaign.status

    assert act("start") == "running"
    assert campaign.started_at is not None
    assert dispatch_tasks(campaign) == [[campaign.pk]] * 2
    assert act("pause") == "paused"
    assert act("resume") == "running"
    assert dispatch_tasks(campaign) == [[campaign.pk]] * 4
    assert act("cancel") == "canceled"
    assert set(statuses(campaign)) == {"canceled"}


def test_an_action_the_state_does_not_allow_changes_nothing_and_says_so(supervisor, campaign):
    client = logged_in(supervisor)

    response = client.post(f"/campaigns/{campaign.pk}/pause/", follow=True)

    campaign.refresh_from_db()
    assert campaign.status == "draft"
    assert messages_of(response) == ["A draft campaign cannot pause."]
    assert dispatch_tasks(campaign) == []


def test_an_unknown_action_is_not_found(supervisor, campaign):
    client = Client(raise_request_exception=False)
    client.force_login(supervisor)

    response = client.post(f"/campaigns/{campaign.pk}/explode/")

    assert response.status_code == 404


CAMPAIGN_ROUTES = {
    "list": ("get", "/campaigns/"),
    "detail": ("get", "/campaigns/{pk}/"),
    "rejected": ("get", "/campaigns/{pk}/rejected.csv"),
    "new page": ("get", "/campaigns/new/"),
    "create": ("post", "/campaigns/new/"),
    "upload": ("post", "/campaigns/{pk}/upload/"),
    "start": ("post", "/campaigns/{pk}/start/"),
    "cancel": ("post", "/campaigns/{pk}/cancel/"),
}


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("agent", {"list", "detail", "rejected"}), ("outsider", set())],
)
def test_who_may_see_and_who_may_run_campaigns(request, campaign, role, allowed):
    upload(campaign, "number,Name,otp\n918867135123,Asha,1\n")
    client = logged_in(request.getfixturevalue(role))

    for name, (method, path) in CAMPAIGN_ROUTES.items():
        response = getattr(client, method)(path.format(pk=campaign.pk))
        assert response.status_code == (200 if name in allowed else 403), name

    campaign.refresh_from_db()
    assert campaign.status == "draft" and Campaign.objects.count() == 1
    assert dispatch_tasks(campaign) == []


# --- the do-not-call list and the per-number guard ----------------------------------------------


def call_form(bridge, sound, to: str) -> dict:
    return {
        "bridge": bridge.pk,
        "to": to,
        "flow": "",
        "audio": sound.pk,
        "name": "",
        "interval": "0",
        "webhook_id": "",
        "idempotency_key": str(uuid.uuid4()),
    }


@pytest.mark.parametrize(
    ("typed", "reason", "message"),
    [
        (
            "+91 88671 35123",
            "Customer asked on 2026-11-02",
            "This number is on the do-not-call list (Customer asked on 2026-11-02).",
        ),
        ("0091 8867135123", "", "This number is on the do-not-call list."),
    ],
)
def test_the_call_form_refuses_a_number_on_the_do_not_call_list(
    agent_client, bridge, sound, typed, reason, message
):
    DoNotCall.objects.create(number="918867135123", reason=reason)

    response = agent_client.post("/calls/new/", call_form(bridge, sound, typed))

    assert response.status_code == 200
    assert response.context["form"].errors["to"] == [message]
    assert message in response.content.decode()
    assert not CallLog.objects.exists()


@pytest.mark.parametrize(
    ("content", "listed", "added", "skipped"),
    [
        pytest.param(
            b"number,reason\n+91 88671 35123,Asked on the phone\n918867135124,\n"
            b"not a number,x\n918867135123,Again\n",
            {"918867135123": "Asked on the phone", "918867135124": ""},
            2,
            2,
            id="with a header",
        ),
        pytest.param(
            b"+91 88671 35123,Asked\n918867135124\n12345,bad\n\n0091 8867135123,dup\n",
            {"918867135123": "Asked", "918867135124": ""},
            2,
            2,
            id="without a header",
        ),
        pytest.param(
            b"\xef\xbb\xbfReason,Number\nAsked,+91 88671 35123\n",
            {"918867135123": "Asked"},
            1,
            0,
            id="BOM and columns in another order",
        ),
    ],
)
def test_do_not_call_numbers_import_from_a_csv(supervisor, content, listed, added, skipped):
    assert DoNotCall.import_csv(io.BytesIO(content), supervisor) == (added, skipped)

    assert dict(DoNotCall.objects.values_list("number", "reason")) == listed
    assert set(DoNotCall.objects.values_list("added_by", flat=True)) == {supervisor.pk}


def test_a_number_already_listed_keeps_its_reason_and_counts_as_skipped(db):
    DoNotCall.objects.create(number="918867135123", reason="first")

    added, skipped = DoNotCall.import_csv(io.BytesIO(b"918867135123,second\n918867135124,new\n"))

    assert (added, skipped) == (1, 1)
    assert DoNotCall.objects.get(number="918867135123").reason == "first"


def test_calls_never_placed_do_not_count_against_the_per_number_guard(
    agent_client, bridge, sound, settings
):
    settings.OBD_MAX_CALLS_PER_NUMBER = 1
    for status in ("rejected", "error", "pending"):
        CallLog.objects.create(bridge=bridge, audio=sound, to="918867135123", status=status)
    agent_client.post("/calls/new/", call_form(bridge, sound, "+91 88671 35123"))
    assert CallLog.objects.filter(to="918867135123").count() == 4


@pytest.mark.parametrize(
    ("limit", "minutes_ago", "refused"),
    [
        (2, [5, 30], True),
        (2, [5, 90], False),  # one of them is outside the window
        (3, [5, 30], False),
        (0, [1, 2, 3], False),  # no limit set
    ],
)
def test_the_per_number_guard_refuses_a_call_over_the_limit(
    agent_client, bridge, sound, settings, limit, minutes_ago, refused
):
    settings.OBD_MAX_CALLS_PER_NUMBER = limit
    settings.OBD_MAX_CALLS_WINDOW_MINUTES = 60
    for minutes in minutes_ago:
        CallLog.objects.create(
            bridge=bridge,
            audio=sound,
            to="918867135123",
            status="answered",
            created_at=timezone.now() - timedelta(minutes=minutes),
            submitted_at=timezone.now() - timedelta(minutes=minutes),
        )
    CallLog.objects.create(bridge=bridge, audio=sound, to="918867135124", status="answered")

    response = agent_client.post("/calls/new/", call_form(bridge, sound, "+91 88671 35123"))

    placed = CallLog.objects.filter(to="918867135123").count() - len(minutes_ago)
    assert placed == (0 if refused else 1)
    if refused:
        assert response.context["form"].errors["to"] == [
            "This number was already called 2 time(s) in the last 60 minutes; try again later."
        ]


# --- dispatch: pace -----------------------------------------------------------------------------


def assert_even_pace(seconds: list[float], pace: float) -> None:
    """Sends spread over (N-1)/pace seconds, each 1/pace after the one before, within 5 %."""
    expected_span = (len(seconds) - 1) / pace
    assert seconds == sorted(seconds)
    assert abs((seconds[-1] - seconds[0]) - expected_span) <= 0.05 * expected_span
    for before, after in itertools.pairwise(seconds):
        assert abs((after - before) - 1 / pace) <= 0.05 / pace


@pytest.mark.parametrize(("pace", "rows"), [("2", 11), ("5", 26), ("0.5", 5), ("1.5", 7)])
def test_a_campaign_is_sent_at_its_pace_evenly_spaced(bridge, sound, pace, rows):
    campaign = running_campaign(bridge, sound, rows=rows, pace=pace)
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now)

    assert dispatcher(campaign, gateway, clock).run() == "empty"

    assert gateway.numbers == [number(i) for i in range(rows)]
    assert_even_pace(gateway.seconds(), float(pace))
    campaign.refresh_from_db()
    assert campaign.status == "finished" and campaign.finished_at is not None
    assert set(statuses(campaign)) == {"queued"}


class TurnClock:
    """One fake clock shared by dispatcher threads taking turns: one runs at a time; when it
    sleeps, the turn goes to whoever wakes first, and time jumps to that wake-up."""

    def __init__(self, workers: int, start: datetime = START) -> None:
        self.moment = start
        self.live = workers
        self.wakes: dict[int, datetime] = {}
        self.turn: int | None = None
        self.cond = threading.Condition()

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        self._wait_for_turn(self.moment + timedelta(seconds=seconds))

    def enter(self) -> None:
        self._wait_for_turn(self.moment)

    def leave(self) -> None:
        with self.cond:
            self.live -= 1
            self._hand_over()

    def _wait_for_turn(self, wake: datetime) -> None:
        me = threading.get_ident()
        with self.cond:
            self.wakes[me] = wake
            if self.turn in (None, me):
                self._hand_over()
            if not self.cond.wait_for(lambda: self.turn == me, timeout=30):
                raise TimeoutError("the dispatchers stopped handing the turn over")

    def _hand_over(self) -> None:
        if not self.wakes or len(self.wakes) < self.live:
            self.turn = None  # not everyone has arrived yet
            return
        first = min(self.wakes, key=self.wakes.__getitem__)
        self.moment = max(self.moment, self.wakes.pop(first))
        self.turn = first
        self.cond.notify_all()


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_share_the_campaigns_pace_instead_of_each_keeping_it(bridge, sound):
    pace, rows = 2.0, 12
    campaign = running_campaign(bridge, sound, rows=rows, pace=str(pace))
    clock = TurnClock(workers=2)
    gateway = FakeGateway(now=clock.now)

    def take_turns(worker: Dispatcher) -> str:
        clock.enter()
        try:
            return worker.run()
        finally:
            connection.close()
            clock.leave()

    workers = [dispatcher(Campaign.objects.get(pk=campaign.pk), gateway, clock) for _ in range(2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        reasons = list(pool.map(take_turns, workers))

    assert "empty" in reasons and set(reasons) <= {"empty", "stopped"}
    assert sorted(gateway.numbers) == [number(i) for i in range(rows)]
    assert len({sent.worker for sent in gateway.sent}) == 2  # both really sent
    assert_even_pace(gateway.seconds(), pace)


# --- dispatch: exactly once ---------------------------------------------------------------------


def test_a_row_is_claimed_by_one_worker_only(campaign):
    upload(campaign, "number,Name,otp\n918867135123,Asha,1\n")
    first, second = CallLog.objects.get(), CallLog.objects.get()

    assert first.claim() is True
    assert second.claim() is False
    assert campaign.claim_calls(5) == []


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_every_row_exactly_once(bridge, sound):
    rows = 40
    campaign = running_campaign(bridge, sound, rows=rows, pace="500")
    gateway = FakeGateway(delay=0.002)  # a little network time, so the workers overlap
    ready = threading.Barrier(2)

    def work(_: int) -> str:
        try:
            worker = Dispatcher(Campaign.objects.get(pk=campaign.pk), gateway)
            ready.wait(timeout=10)
            return worker.run()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        reasons = list(pool.map(work, range(2)))

    assert "empty" in reasons and set(reasons) <= {"empty", "stopped"}
    assert Counter(gateway.numbers) == Counter(number(i) for i in range(rows))
    assert len({sent.worker for sent in gateway.sent}) == 2
    assert set(statuses(campaign)) == {"queued"}
    assert campaign.calls.values("provider_id").distinct().count() == rows
    campaign.refresh_from_db()
    assert campaign.status == "finished"


# --- dispatch: pause, resume, cancel ------------------------------------------------------------


def test_a_paused_campaign_sends_nothing_until_it_is_resumed(bridge, sound):
    campaign = running_campaign(bridge, sound)
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now)
    assert campaign.pause()

    assert dispatcher(campaign, gateway, clock).run() == "stopped"
    assert gateway.sent == []

    assert campaign.resume()
    assert dispatcher(campaign, gateway, clock).run() == "empty"
    assert gateway.numbers == [number(0), number(1), number(2)]
    campaign.refresh_from_db()
    assert campaign.status == "finished"


def test_pausing_while_the_dispatcher_runs_stops_it_after_the_call_in_flight(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=5)
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now, after_send={2: campaign.pause})

    assert dispatcher(campaign, gateway, clock).run() == "stopped"

    assert gateway.numbers == [number(0), number(1)]
    assert statuses(campaign) == ["queued", "queued", "pending", "pending", "pending"]


def test_cancel_marks_unsent_rows_canceled_and_nothing_more_is_sent(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=4)
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now, after_send={1: campaign.cancel})

    assert dispatcher(campaign, gateway, clock).run() == "stopped"

    assert gateway.numbers == [number(0)]
    assert statuses(campaign) == ["queued", "canceled", "canceled", "canceled"]
    assert set(campaign.calls.filter(status="canceled").values_list("error", flat=True)) == {
        "The campaign was canceled before this call was sent."
    }
    campaign.refresh_from_db()
    assert campaign.status == "canceled" and campaign.finished_at is not None
    assert dispatcher(campaign, gateway, clock).run() == "stopped"
    assert len(gateway.sent) == 1
    assert not campaign.resume() and not campaign.start()


@pytest.mark.parametrize("action", ["cancel", "pause"])
def test_rows_a_worker_holds_in_its_batch_follow_a_cancel_or_pause(bridge, sound, action):
    campaign = running_campaign(bridge, sound, rows=4, pace="10")  # one batch holds all four
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now, after_send={1: getattr(campaign, action)})

    assert dispatcher(campaign, gateway, clock).run() == "stopped"

    assert gateway.numbers == [number(0)]
    waiting = "canceled" if action == "cancel" else "pending"
    assert statuses(campaign) == ["queued", waiting, waiting, waiting]
    assert not campaign.calls.filter(status="pending").exclude(submitted_at=None).exists()


ALLOWED = {
    "draft": {"start", "cancel"},
    "running": {"pause", "cancel"},
    "paused": {"resume", "cancel"},
    "finished": set(),
    "canceled": set(),
}
AFTER = {"start": "running", "pause": "paused", "resume": "running", "cancel": "canceled"}


@pytest.mark.parametrize("status", list(ALLOWED))
@pytest.mark.parametrize("action", list(AFTER))
def test_each_action_is_allowed_only_from_its_states(campaign, status, action):
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    campaign.refresh_from_db()
    allowed = action in ALLOWED[status]

    assert getattr(campaign, action)() is allowed

    campaign.refresh_from_db()
    assert campaign.status == (AFTER[action] if allowed else status)


def test_progress_counts_calls_by_status_and_the_share_settled(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=4)
    for i, status in enumerate(["queued", "answered", "busy"], start=1):
        CallLog.objects.filter(to=number(i)).update(status=status)

    progress = campaign.progress()

    assert progress["counts"] == {"pending": 1, "queued": 1, "answered": 1, "busy": 1}
    assert (progress["total"], progress["done"], progress["percent"]) == (4, 2, 50)
    assert progress["waiting"] == 1
    assert Campaign.progress_of([campaign]) == {campaign.pk: progress}


# --- dispatch: what the provider answers --------------------------------------------------------


@pytest.mark.parametrize(("retry_after", "wait"), [(7.0, 7), (None, 10)])
def test_a_429_gives_the_row_back_and_holds_the_whole_campaign_for_retry_after(
    campaign, settings, retry_after, wait
):
    settings.OBD_RATE_LIMIT_WAIT_SECONDS = 10
    upload(campaign, "number,Name,otp\n918867135123,Asha,482913\n")
    assert campaign.start()
    clock = FakeClock()
    worker = dispatcher(
        campaign, FakeGateway(now=clock.now, answers=(rate_limited(retry_after),)), clock
    )
    assert campaign.take_slots(clock.now(), 1) == [clock.now()]
    [call] = campaign.claim_calls(1)

    assert worker.send(call) is False

    call.refresh_from_db()
    assert (call.status, call.submitted_at, call.http_status, call.provider_id) == (
        "pending",
        None,
        None,
        "",
    )
    assert unseal(call.sealed_variables) == {"otp": "482913"}  # kept for the next attempt
    campaign.refresh_from_db()
    assert campaign.next_send_at >= clock.now() + timedelta(seconds=wait)


def test_after_a_429_the_next_send_waits_for_retry_after_and_each_row_is_placed_once(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=2, pace="1")
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now, answers=(rate_limited(7.0),))

    assert dispatcher(campaign, gateway, clock).run() == "empty"

    assert list(zip(gateway.numbers, gateway.seconds(), strict=True)) == [
        (number(0), 0.0),  # refused: too many requests
        (number(0), 7.0),  # the same row, once Retry-After has passed
        (number(1), 8.0),  # then the pace again
    ]
    assert statuses(campaign) == ["queued", "queued"]
    assert CallLog.objects.count() == 2


def test_an_error_row_stays_error_for_the_user_to_retry_and_an_unknown_row_is_never_resent(
    campaign, agent
):
    upload(
        campaign,
        "number,Name,otp\n918867140000,Asha,111111\n918867140001,Ravi,222222\n"
        "918867140002,Dee,333333\n",
    )
    assert campaign.start()
    clock = FakeClock()
    answers = (
        SendResult(status="error", error="Could not reach the provider. Nothing was sent."),
        SendResult(status="unknown", http_status=503, error="The call may have been placed."),
    )
    gateway = FakeGateway(now=clock.now, answers=answers)

    assert dispatcher(campaign, gateway, clock).run() == "empty"

    assert gateway.numbers == ["918867140000", "918867140001", "918867140002"]  # each once
    assert statuses(campaign) == ["error", "unknown", "queued"]
    campaign.refresh_from_db()
    assert campaign.status == "finished"
    error_row, unknown_row = campaign.calls.order_by("id")[:2]
    client = logged_in(agent)
    retry_form = client.get(error_row.get_absolute_url()).context["retry_form"]
    assert list(retry_form.fields) == ["variables[otp]"]  # the sealed otp was wiped: asked again
    client.post(f"/calls/{error_row.pk}/retry/", {"variables[otp]": "111111"})
    client.post(f"/calls/{unknown_row.pk}/retry/", {"variables[otp]": "222222"})
    error_row.refresh_from_db()
    unknown_row.refresh_from_db()
    assert (error_row.status, unknown_row.status) == ("queued", "unknown")


# --- dispatch: the calling window ---------------------------------------------------------------


def utc(hour: int, minute: int = 0, day: int = 2, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


NINE_TO_EIGHT = (clock_time(9), clock_time(20))
OVERNIGHT = (clock_time(22), clock_time(6))


@pytest.mark.parametrize(
    ("window", "zone", "moment", "inside"),
    [
        (NINE_TO_EIGHT, "Asia/Kolkata", utc(3, 29), False),  # 08:59 in Kolkata
        (NINE_TO_EIGHT, "Asia/Kolkata", utc(3, 30), True),  # 09:00
        (NINE_TO_EIGHT, "Asia/Kolkata", utc(14, 29), True),  # 19:59
        (NINE_TO_EIGHT, "Asia/Kolkata", utc(14, 30), False),  # 20:00: the end is outside
        (NINE_TO_EIGHT, "Europe/London", utc(3, 30), False),  # 03:30 in London
        (NINE_TO_EIGHT, "Europe/London", utc(14, 30), True),
        (OVERNIGHT, "Asia/Kolkata", utc(16, 30), True),  # 22:00
        (OVERNIGHT, "Asia/Kolkata", utc(0, 29), True),  # 05:59
        (OVERNIGHT, "Asia/Kolkata", utc(0, 30), False),  # 06:00
        (OVERNIGHT, "Asia/Kolkata", utc(6, 30), False),  # noon
        ((None, None), "Asia/Kolkata", utc(21), True),  # no window: always
    ],
)
def test_in_window_reads_the_time_in_the_campaigns_time_zone(
    bridge, sound, window, zone, moment, inside
):
    campaign = make_campaign(
        bridge, audio=sound, window_start=window[0], window_end=window[1], window_timezone=zone
    )

    assert campaign.in_window(moment) is inside


@pytest.mark.parametrize(
    ("window", "zone", "moment", "opens"),
    [
        (NINE_TO_EIGHT, "Asia/Kolkata", utc(15, 30), utc(3, 30, day=3)),  # 21:00 → 09:00 tomorrow
        (NINE_TO_EIGHT, "Asia/Kolkata", utc(2), utc(3, 30)),  # 07:30 → 09:00 today
        (OVERNIGHT, "Asia/Kolkata", utc(1, 30), utc(16, 30)),  # 07:00 → 22:00 today
        (OVERNIGHT, "Asia/Kolkata", utc(6, 30), utc(16, 30)),  # noon → 22:00 today
        # London moves its clocks on 29 March 2026: 09:00 that day is 08:00 UTC.
        (NINE_TO_EIGHT, "Europe/London", utc(21, day=28, month=3), utc(8, day=29, month=3)),
    ],
)
def test_window_opens_after_gives_the_next_opening(bridge, sound, window, zone, moment, opens):
    campaign = make_campaign(
        bridge, audio=sound, window_start=window[0], window_end=window[1], window_timezone=zone
    )

    assert campaign.window_opens_after(moment) == opens


def kolkata_window(start: str = "09:00", end: str = "20:00") -> dict:
    return {
        "window_start": clock_time.fromisoformat(start),
        "window_end": clock_time.fromisoformat(end),
        "window_timezone": "Asia/Kolkata",
    }


def test_outside_its_window_a_campaign_sends_nothing_until_the_window_opens(bridge, sound):
    campaign = running_campaign(bridge, sound, **kolkata_window())
    clock = FakeClock(utc(15, 30))  # 21:00 in Kolkata
    gateway = FakeGateway(now=clock.now)

    assert dispatcher(campaign, gateway, clock).run() == "window"
    assert gateway.sent == []

    clock.moment = campaign.window_opens_after(clock.now())
    assert dispatcher(campaign, gateway, clock).run() == "empty"
    assert gateway.seconds(since=utc(3, 30, day=3)) == [0.0, 1.0, 2.0]


def test_no_call_is_sent_once_the_window_has_closed_while_waiting_for_its_turn(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=5, pace="1", **kolkata_window())
    clock = FakeClock(utc(14, 29) + timedelta(seconds=58))  # 19:59:58 in Kolkata
    gateway = FakeGateway(now=clock.now)

    assert dispatcher(campaign, gateway, clock).run() == "window"

    assert all(campaign.in_window(sent.at) for sent in gateway.sent), gateway.seconds(utc(14, 30))
    assert gateway.numbers == [number(0), number(1)]


def test_the_dispatch_task_comes_back_when_the_window_opens(bridge, sound):
    opening = (timezone.now() + timedelta(hours=2)).astimezone(UTC)
    closing = opening + timedelta(hours=1)
    campaign = running_campaign(
        bridge,
        sound,
        window_start=clock_time(opening.hour, opening.minute),
        window_end=clock_time(closing.hour, closing.minute),
        window_timezone="UTC",
    )

    assert dispatch_campaign.call(campaign.pk) == "window"

    [task] = DBTaskResult.objects.filter(task_path=dispatch_campaign.module_path)
    assert task.args_kwargs["args"] == [campaign.pk]
    assert task.run_after == campaign.window_opens_after(timezone.now())
    assert set(statuses(campaign)) == {"pending"}


def test_each_row_records_when_its_own_post_began_not_when_its_batch_was_claimed(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=4, pace="2")  # one batch of two at a time
    clock = FakeClock()

    assert dispatcher(campaign, FakeGateway(now=clock.now), clock).run() == "empty"

    sent = list(campaign.calls.order_by("id").values_list("submitted_at", flat=True))
    assert [(t - sent[0]).total_seconds() for t in sent] == [0.0, 0.5, 1.0, 1.5]


def test_a_re_uploaded_rejected_row_asks_for_its_masked_otp_again(campaign):
    upload(campaign, "number,Name,otp\n12345,Asha,482913\n")
    fixed = "number,Name,otp\n918867135123,Asha,******\n"  # the downloaded file, number fixed

    report = upload(campaign, fixed)

    assert (report.accepted, report.rejected) == (0, 1)
    assert campaign.rejected_rows.get().reason == (
        "Type otp again: secrets are masked in the rejected-rows file"
    )


def test_a_file_with_only_its_header_is_refused_and_stores_nothing(campaign):
    with pytest.raises(UnreadableFile, match="a header but no rows"):
        upload(campaign, "number,Name,otp\n\n")
    assert not campaign.calls.exists()
