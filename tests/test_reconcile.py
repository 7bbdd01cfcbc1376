"""Status look-ups for calls left without an outcome: reconcile_waiting, the reconcile_calls
command and the periodic job, with the real gateway against the local fake provider."""

import json
from datetime import datetime, timedelta
from io import StringIO
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.utils import timezone

from calls.models import CallEvent, CallLog, PeriodicJob
from calls.reconcile import reconcile_waiting
from tests.clock import pinned_now
from tests.helpers.engine import job

KOLKATA = ZoneInfo("Asia/Kolkata")
CALL_ID = "8456bf26-1b6e-4ac1-adb9-2768258f71d0"
OTHER_ID = "047d8cfc-77d1-4f6c-bfb5-e81f1a1343a7"
TO = "918867135123"


@pytest.fixture
def provider(settings, fake_provider):
    """The real MobtextingGateway, talking to the fake provider over HTTP."""
    settings.MOBTEXTING_API_TOKEN = "tok-123"
    settings.MOBTEXTING_API_URL = fake_provider.url
    settings.OBD_SANDBOX = False
    settings.OBD_RECONCILE_AFTER_MINUTES = 30
    settings.OBD_PROVIDER_TIMEZONE = "Asia/Kolkata"
    return fake_provider


@pytest.fixture
def make_call(bridge, sound):
    def make(
        status: str = "queued",
        *,
        provider_id: str = CALL_ID,
        minutes_ago: int = 45,
        to: str = TO,
        submitted: bool = True,
    ) -> CallLog:
        sent = pinned_now() - timedelta(minutes=minutes_ago)
        return CallLog.objects.create(
            bridge=bridge,
            audio=sound,
            to=to,
            status=status,
            provider_id=provider_id,
            provider_key=provider_id.split(":")[0],
            created_at=sent,
            submitted_at=sent if submitted else None,
        )

    return make


def provider_time(moment: datetime) -> str:
    """The status API's naive `YYYY-MM-DD hh:mm:ss`, in the provider's time zone."""
    return moment.astimezone(KOLKATA).strftime("%Y-%m-%d %H:%M:%S")


def status_row(status: str, created: datetime, *, call_id: str = CALL_ID) -> dict:
    """One row of the documented current answer of GET outgoing/callstatus."""
    return {
        "id": call_id,
        "channel": "outgoing",
        "from": "918068287602",
        "to": TO,
        "created_at": provider_time(created),
        "foreign_id": "",
        "status": status,
        "start_at": provider_time(created + timedelta(seconds=12)),
        "end_at": provider_time(created + timedelta(seconds=15)),
        "dtmf": "",
    }


def answer_with(provider, *rows: dict) -> None:
    provider.answer(200, {"status": 200, "message": "OK", "data": list(rows)})


def read_in_kolkata(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=KOLKATA)


def looked_up(provider) -> list[dict[str, list[str]]]:
    """The query of every status look-up the provider received."""
    for request in provider.requests:
        assert request.method == "GET"
        assert urlsplit(request.path).path == "/api/v2/outgoing/callstatus"
        assert request.headers["Authorization"] == "Bearer tok-123"
    return [parse_qs(urlsplit(request.path).query) for request in provider.requests]


def reconcile_command(*args: str) -> str:
    out = StringIO()
    call_command("reconcile_calls", *args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("status", "raw", "outcome"),
    [
        ("queued", "ANSWER", "answered"),
        ("unknown", "ANSWER", "answered"),
        ("queued", "BUSY", "busy"),
        ("queued", "NOANSWER", "no_answer"),
        ("queued", "CANCEL", "canceled"),
        ("unknown", "CONGESTION", "failed"),
    ],
)
def test_a_call_without_outcome_past_the_cutoff_is_looked_up_by_id_and_settled_like_a_webhook(
    provider, make_call, status, raw, outcome
):
    call = make_call(status)
    row = status_row(raw, call.submitted_at)
    answer_with(provider, row)

    output = reconcile_command()

    assert looked_up(provider) == [{"id": [CALL_ID]}]
    call.refresh_from_db()
    assert (call.status, call.provider_status) == (outcome, raw)
    assert call.started_at == read_in_kolkata(row["start_at"])
    assert call.ended_at == read_in_kolkata(row["end_at"])
    assert call.outcome_at is not None
    event = CallEvent.objects.get()
    assert (event.source, event.call, event.raw_status, event.outcome) == (
        "reconcile",
        call,
        raw,
        outcome,
    )
    assert "1 call(s) settled." in output


@pytest.mark.parametrize(
    ("status", "minutes_ago"),
    [
        ("queued", 10),  # too recent: its webhook may still come
        ("unknown", 10),
        ("answered", 45),  # already settled
        ("busy", 45),
        ("error", 45),  # never sent
        ("rejected", 45),
        ("pending", 45),  # being sent (or stuck): reported, not looked up
    ],
)
def test_recent_settled_and_unsent_calls_are_not_looked_up(
    provider, make_call, status, minutes_ago
):
    call = make_call(status, minutes_ago=minutes_ago)
    answer_with(provider, status_row("BUSY", call.created_at))

    assert reconcile_waiting(30) == 0

    assert provider.requests == []
    call.refresh_from_db()
    assert call.status == status


@pytest.mark.parametrize(("after_minutes", "looked"), [(30, True), (60, False)])
def test_the_command_waits_as_long_as_the_setting_says(
    provider, make_call, settings, after_minutes, looked
):
    settings.OBD_RECONCILE_AFTER_MINUTES = after_minutes
    call = make_call(minutes_ago=45)
    answer_with(provider, status_row("ANSWER", call.submitted_at))

    reconcile_command()

    assert len(provider.requests) == (1 if looked else 0)
    call.refresh_from_db()
    assert call.status == ("answered" if looked else "queued")


def test_an_unknown_call_without_provider_id_is_looked_up_by_number_and_matched(
    provider, make_call
):
    call = make_call("unknown", provider_id="")
    answer_with(provider, status_row("ANSWER", call.submitted_at + timedelta(seconds=2)))

    assert reconcile_waiting(30) == 1

    assert looked_up(provider) == [{"mobile": [TO]}]
    call.refresh_from_db()
    assert (call.status, call.provider_status) == ("answered", "ANSWER")
    event = CallEvent.objects.get()
    assert (event.source, event.call) == ("reconcile", call)


@pytest.mark.parametrize(
    ("rows", "status"),
    [
        pytest.param(("ours", "earlier"), "busy", id="our row and an earlier call that day"),
        pytest.param(("earlier",), "unknown", id="only an earlier call"),
    ],
)
def test_a_look_up_by_number_ignores_calls_made_before_the_submission(
    provider, make_call, rows, status
):
    call = make_call("unknown", provider_id="")
    candidates = {
        "ours": status_row("BUSY", call.submitted_at + timedelta(seconds=2)),
        "earlier": status_row("ANSWER", call.submitted_at - timedelta(hours=2), call_id=OTHER_ID),
    }
    answer_with(provider, *(candidates[name] for name in rows))  # newest first

    reconcile_waiting(30)

    call.refresh_from_db()
    assert call.status == status


def test_a_call_still_queued_at_the_provider_is_left_as_it_is_until_it_ends(provider, make_call):
    call = make_call()
    answer_with(provider, status_row("QUEUED", call.submitted_at) | {"start_at": "", "end_at": ""})

    first = reconcile_command()
    again = reconcile_command()

    call.refresh_from_db()
    assert (call.status, call.outcome_at, call.started_at) == ("queued", None, None)
    assert "0 call(s) settled" in first and "0 call(s) settled" in again
    event = CallEvent.objects.get()
    assert (event.outcome, event.deliveries) == ("", 2)

    answer_with(provider, status_row("NOANSWER", call.submitted_at))
    assert "1 call(s) settled" in reconcile_command()
    call.refresh_from_db()
    assert call.status == "no_answer"


def test_the_command_settles_rows_stuck_pending_as_unknown_and_never_resends_them(
    provider, make_call
):
    stuck = make_call("pending", provider_id="")
    make_call("pending", provider_id="", minutes_ago=5, to="918867135124")  # being sent now
    make_call("pending", provider_id="", minutes_ago=120, to="918867135125", submitted=False)

    provider.answer(200, {"status": 200, "data": []})  # the provider has no row for them yet

    output = reconcile_command()

    assert "2 whose POST may have begun are now unknown" in output
    assert output.rstrip().endswith("0 call(s) settled.")
    stuck.refresh_from_db()
    assert stuck.status == "unknown"
    assert "may or may not have been placed" in stuck.error
    assert list(CallLog.objects.values_list("status", flat=True).order_by("id")) == [
        "unknown",
        "unknown",
        "pending",  # never sent: it waits to be sent, it is not stuck
    ]


def test_a_failed_look_up_is_reported_and_the_others_still_settle(provider, make_call):
    failing = make_call(provider_id=OTHER_ID)
    settled = make_call(to="918867135124")
    answer = json.dumps(
        {"status": 200, "message": "OK", "data": [status_row("ANSWER", settled.submitted_at)]}
    ).encode()

    def reply(request) -> tuple[int, dict, bytes]:
        if OTHER_ID in request.path:
            return 500, {"Content-Type": "application/json"}, b'{"message": "Server Error"}'
        return 200, {"Content-Type": "application/json"}, answer

    provider.reply = reply

    output = reconcile_command()

    assert f"{failing}: status look-up answered HTTP 500" in output
    assert "tok-123" not in output
    assert "1 call(s) settled." in output
    failing.refresh_from_db()
    settled.refresh_from_db()
    assert (failing.status, settled.status) == ("queued", "answered")


def test_an_unreachable_provider_is_reported_not_raised(provider, make_call, settings):
    call = make_call()
    settings.MOBTEXTING_API_URL = "http://127.0.0.1:9/api/v2/"  # the discard port: refused

    output = reconcile_command()

    assert f"{call}: status look-up failed (connection refused)" in output
    assert "0 call(s) settled" in output
    call.refresh_from_db()
    assert call.status == "queued"


def test_in_the_sandbox_nothing_is_looked_up(fake_provider, settings, make_call):
    settings.MOBTEXTING_API_URL = fake_provider.url  # no token: the sandbox
    call = make_call()

    output = reconcile_command()

    assert fake_provider.requests == []
    assert "0 call(s) settled" in output and "failed" not in output

    class SandboxSpy:
        is_sandbox = True

        def call_status(self, **query: str) -> bytes:
            raise AssertionError("the sandbox has no status look-up")

    assert reconcile_waiting(30, gateway=SandboxSpy()) == 0
    call.refresh_from_db()
    assert call.status == "queued"


def test_the_periodic_job_settles_calls_and_comes_back_after_its_interval(
    provider, make_call, settings
):
    settings.OBD_RECONCILE_EVERY_MINUTES = 10
    call = make_call()
    answer_with(provider, status_row("ANSWER", call.submitted_at))

    ran = job("reconcile").run()

    assert (ran.summary, ran.again_in) == ({"settled": 1}, None)  # back after its interval:
    assert job("reconcile").every() == timedelta(minutes=10)
    call.refresh_from_db()
    assert call.status == "answered"


def test_scheduling_puts_the_periodic_look_up_on_the_schedule_once(db):
    call_command("start_periodic_tasks", stdout=StringIO())
    call_command("start_periodic_tasks", stdout=StringIO())

    [look_up] = PeriodicJob.objects.filter(name="reconcile")
    assert look_up.next_run_at <= timezone.now()  # due at once, for the engine to run
