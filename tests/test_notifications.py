"""Notices (calls/notifications.py): what supervisors asked to be told of is found by the
periodic check, posted once per person and e-mailed once, whoever or whatever finished it."""

import smtplib
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connections

from calls.models import AudioAsset, Bridge, CallLog, Campaign, Notice, UserPreference
from calls.notifications import check_notices, window_start
from tests.clock import pinned_now
from tests.conftest import _user
from tests.helpers.campaigns import make_campaign, running_campaign
from tests.helpers.engine import job
from tests.helpers.portal import logged_in, place_call

LOCMEM = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


@pytest.fixture
def mailer(settings):
    settings.MAILERS = LOCMEM
    mail.outbox = []
    return mail.outbox


@pytest.fixture
def sam(supervisor):
    supervisor.email = "sam@example.com"
    supervisor.save()
    return supervisor


def wants(user, **choices) -> UserPreference:
    return UserPreference.objects.update_or_create(user=user, defaults=choices)[0]


def failed_calls(bridge, sound, count: int, *, ago=timedelta(minutes=1), now=None, **fields):
    sent = (now or pinned_now()) - ago
    for _ in range(count):
        CallLog.objects.create(
            bridge=bridge, to="918867135123", audio=sound, submitted_at=sent, **fields
        )


def test_a_finished_campaign_is_told_once_to_each_supervisor_who_asked(
    sam, agent, bridge, sound, mailer, django_user_model
):
    quiet = _user(django_user_model, "quiet", "Supervisors", email="q@example.com")
    wants(sam, notify_campaign_finished=True)
    wants(agent, notify_campaign_finished=True)  # agents may not ask: nothing for them
    wants(quiet, notify_campaign_finished=False)
    campaign = running_campaign(bridge, sound, rows=1)
    campaign.calls.update(status="answered")
    assert campaign.finish_if_done()

    assert check_notices() == 1
    assert check_notices() == 0  # the next check: already told

    (notice,) = Notice.objects.all()
    assert (notice.user, notice.title) == (sam, "Campaign “November reminders” finished")
    assert notice.link == f"/campaigns/{campaign.pk}/"
    (sent,) = mailer
    assert sent.to == ["sam@example.com"] and "November reminders" in sent.subject


def test_a_stopped_campaign_is_told_and_an_old_one_is_not_news(sam, bridge, sound, mailer):
    wants(sam, notify_campaign_finished=True)
    stopped = running_campaign(bridge, sound, rows=1)
    assert stopped.stop()
    old = running_campaign(bridge, sound, rows=1)
    Campaign.objects.filter(pk=old.pk).update(
        status="finished", finished_at=pinned_now() - timedelta(hours=2)
    )
    check_notices()
    assert list(Notice.objects.values_list("title", flat=True)) == [
        "Campaign “November reminders” was stopped"
    ]


def test_failures_reaching_the_threshold_are_told_once_a_window(sam, bridge, sound, mailer):
    wants(sam, notify_failures_over=3)
    now = window_start(pinned_now()) + timedelta(minutes=7)
    failed_calls(bridge, sound, 2, now=now, status="rejected")
    failed_calls(bridge, sound, 5, now=now, ago=timedelta(minutes=20), status="failed")  # old
    failed_calls(bridge, sound, 4, now=now, status="answered")
    assert check_notices(now) == 0

    failed_calls(bridge, sound, 1, now=now, status="unknown")
    assert check_notices(now) == 1
    failed_calls(bridge, sound, 3, now=now, status="error")
    assert check_notices(now + timedelta(minutes=1)) == 0  # the same window: told already
    later = now + timedelta(minutes=10)  # the next window, the same failures still recent
    assert check_notices(later) == 1
    titles = list(Notice.objects.order_by("id").values_list("title", flat=True))
    assert titles == [
        "3 calls failed in the last 15 minutes",
        "6 calls failed in the last 15 minutes",
    ]
    assert len(mailer) == 2


@pytest.mark.parametrize(
    ("fields", "told"),
    [
        (
            {"http_status": 402, "error": "The provider rejected the call (HTTP 402): no reason"},
            True,
        ),
        ({"http_status": 422, "error": "… (HTTP 422): Insufficient balance in your account"}, True),
        (
            {"http_status": 422, "error": "… (HTTP 422): to: the number is on the DND register"},
            False,
        ),
    ],
    ids=["402", "balance-words", "other-refusal"],
)
def test_refusals_for_lack_of_balance_are_told(sam, bridge, sound, mailer, fields, told):
    wants(sam, notify_low_balance=True)
    failed_calls(bridge, sound, 2, status="rejected", **fields)
    check_notices()
    titles = list(Notice.objects.values_list("title", flat=True))
    expected = ["The provider refused 2 calls for lack of balance: top up the account"]
    assert titles == (expected if told else [])


def test_windows_start_on_the_quarter_hour():
    assert window_start(datetime(2026, 11, 27, 18, 44, 59, 5, tzinfo=UTC)) == datetime(
        2026, 11, 27, 18, 30, tzinfo=UTC
    )


def test_without_a_mailer_notices_go_to_the_console(sam, bridge, sound, capsys):
    wants(sam, notify_failures_over=1)
    failed_calls(bridge, sound, 1, status="failed")
    check_notices()
    out = capsys.readouterr().out
    assert "To: sam@example.com" in out and "1 call failed in the last 15 minutes" in out


def test_a_mail_server_that_refuses_leaves_the_notice_and_never_mails_it_again(
    sam, bridge, sound, settings, caplog
):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},
        }
    }
    wants(sam, notify_failures_over=1)
    failed_calls(bridge, sound, 1, status="failed")
    assert check_notices() == 1
    notice = Notice.objects.get()
    assert notice.emailed_at is None  # not sent, so not marked e-mailed
    assert "notice e-mail failed" in caplog.text
    assert check_notices() == 0  # and the next check does not try again


def test_the_periodic_job_checks_every_interval(db, settings):
    settings.OBD_NOTICE_CHECK_EVERY_SECONDS = 45
    assert job("notices").run().summary == {"posted": 0}
    assert job("notices").every() == timedelta(seconds=45)


@pytest.mark.django_db(transaction=True)
def test_two_checks_at_once_post_and_mail_each_notice_once(settings, django_user_model):
    settings.MAILERS = LOCMEM
    mail.outbox = []
    sam = _user(django_user_model, "sam", "Supervisors", email="sam@example.com")
    wants(sam, notify_campaign_finished=True)
    bridge = Bridge.objects.create(number="918068287602", label="Bengaluru")
    sound = AudioAsset.objects.create(name="Reminder", sound_id="s-1")
    for _ in range(5):
        make_campaign(bridge, audio=sound, status="finished", finished_at=pinned_now())
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def check() -> None:
        try:
            barrier.wait()
            counts.append(check_notices())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=check) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 5 and Notice.objects.count() == 5
    assert len(mail.outbox) == 5


# --- the notices page -----------------------------------------------------------------------------


def test_the_page_lists_my_notices_the_bell_counts_them_and_they_can_be_marked_read(
    sam, admin_user
):
    Notice.objects.post(sam.pk, "failures", "k1", title="3 calls failed", link="/calls/")
    Notice.objects.post(admin_user.pk, "failures", "k1", title="not yours")
    client = logged_in(sam)
    page = client.get("/notices/").content.decode()
    assert "3 calls failed" in page and "not yours" not in page
    bell = client.get("/notices/?bell", HTTP_HX_REQUEST="true").content.decode()
    assert bell.strip() == '<span class="bell">1 new</span>'
    client.post("/notices/", {"read": "1"})
    bell = client.get("/notices/?bell", HTTP_HX_REQUEST="true").content.decode()
    assert bell.strip() == '<span class="bell"></span>'


def test_a_supervisor_chooses_what_to_be_told_and_an_agent_may_not(sam, agent):
    client = logged_in(sam)
    response = client.post(
        "/notices/", {"notify_campaign_finished": "on", "notify_failures_over": "10"}
    )
    assert response.status_code == 302
    preference = UserPreference.objects.get(user=sam)
    assert (preference.notify_campaign_finished, preference.notify_failures_over) == (True, 10)
    assert not preference.notify_low_balance
    refused = client.post("/notices/", {"notify_failures_over": "0"})
    assert "greater than or equal to 1" in refused.content.decode()

    assert logged_in(agent).get("/notices/").status_code == 403


def test_a_sandbox_call_refused_for_lack_of_balance_is_told(
    sam, agent, bridge, otp_flow, mailer, sends
):
    wants(sam, notify_low_balance=True)
    call = place_call(logged_in(agent), bridge, otp_flow, to="+91 98765 40008")
    assert sends.run() == ["rejected"]
    call.refresh_from_db()
    assert (call.status, call.http_status) == ("rejected", 402)
    check_notices()
    assert Notice.objects.get().kind == "low_balance"


class RefusingMailer(BaseEmailBackend):
    """A mail backend whose server refuses every message."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPDataError(554, b"refused")


class SilentMailer(BaseEmailBackend):
    """A backend told to fail silently: it sends nothing and says so by returning 0."""

    def send_messages(self, email_messages):
        return 0


@pytest.mark.parametrize("backend", ["RefusingMailer", "SilentMailer"])
def test_a_notice_is_marked_e_mailed_only_when_the_mail_went(sam, bridge, sound, settings, backend):
    settings.MAILERS = {"default": {"BACKEND": f"tests.test_notifications.{backend}"}}
    wants(sam, notify_failures_over=1)
    failed_calls(bridge, sound, 1, status="failed")

    assert check_notices() == 1

    assert Notice.objects.get().emailed_at is None


def test_a_campaign_name_with_line_breaks_is_told_and_mailed_on_one_line(
    sam, bridge, sound, mailer
):
    wants(sam, notify_campaign_finished=True, notify_failures_over=1)
    campaign = running_campaign(bridge, sound, rows=1)
    Campaign.objects.filter(pk=campaign.pk).update(name="Nov\r\nBcc: all@example.com\nend")
    campaign.calls.update(status="failed", submitted_at=pinned_now())
    assert Campaign.objects.get(pk=campaign.pk).finish_if_done()

    assert check_notices() == 2  # the name breaks neither the check nor the failures' notice

    assert Notice.objects.filter(emailed_at__isnull=False).count() == 2
    subjects = sorted(message.subject for message in mailer)
    assert subjects[0] == "[OBD Portal] 1 call failed in the last 15 minutes"
    assert subjects[1] == "[OBD Portal] Campaign “Nov Bcc: all@example.com end” finished"
    assert all(not message.extra_headers for message in mailer)
