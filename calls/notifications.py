"""Telling supervisors what they asked to hear of: a campaign finished, failures in the last 15
minutes reached their threshold, the provider refused calls for lack of balance; and, to every
supervisor, what nobody may miss (`tell_supervisors`: opt-outs the portal could not read).

A periodic check finds these in the data (however a campaign came to finish), posts each notice
once (unique per person, kind and key) and e-mails it at most once (a compare-and-set claim on
`emailed_at`, given back when the mailer did not send it: `emailed_at` says the mail went).
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.mail import EmailMessage, mailers
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.console import EmailBackend as ConsoleBackend
from django.core.mail.handler import DEFAULT_MAILER_ALIAS
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone

from calls.http import AuthenticatedHttpRequest
from calls.models import CallLog, Campaign, Notice, UserPreference
from calls.roles import permission_required
from calls.vocabulary import CAMPAIGN_ENDED, FAILURES

logger = logging.getLogger(__name__)
WINDOW = timedelta(minutes=15)
# Campaigns that finished longer ago than this are not news (a worker that was down a while
# does not mail a backlog).
FINISHED_LOOKBACK = timedelta(hours=1)
# Who may ask for notices: supervisors (they run campaigns).
NOTIFY_PERMISSION = "calls.change_campaign"
PERMISSIONS_BACKEND = "django.contrib.auth.backends.ModelBackend"
# The documented 4xx causes include "insufficient balance"; its exact wording and code are not
# documented, so the refusal's stored message is searched for the words (402 is Payment Required).
BALANCE_WORDS = ("balance", "insufficient", "recharge")


@dataclass(frozen=True)
class News:
    """Something worth a notice, for whoever asked for its kind."""

    kind: str
    key: str
    title: str
    link: str


def window_start(now: datetime) -> datetime:
    """The 15-minute window `now` is in: a notice about failures or balance is posted once a
    window, however many checks see the same burst."""
    minutes = now.minute - now.minute % 15
    return now.replace(minute=minutes, second=0, microsecond=0)


def finished_campaigns(now: datetime) -> list[News]:
    finished = Campaign.objects.filter(
        status__in=CAMPAIGN_ENDED,
        finished_at__gte=now - FINISHED_LOOKBACK,
    ).only("pk", "name", "status")
    return [
        News(
            Notice.Kind.CAMPAIGN_FINISHED,
            str(campaign.pk),
            f"Campaign “{campaign.name}” "
            + ("finished" if campaign.status == Campaign.Status.FINISHED else "was stopped"),
            reverse("calls:campaign-detail", args=[campaign.pk]),
        )
        for campaign in finished
    ]


def recent_failures(now: datetime) -> int:
    return CallLog.objects.filter(status__in=FAILURES, submitted_at__gte=now - WINDOW).count()


def balance_refusals(now: datetime) -> int:
    words = Q(http_status=402)
    for word in BALANCE_WORDS:
        words |= Q(error__icontains=word)
    return (
        CallLog.objects.filter(status=CallLog.Status.REJECTED, submitted_at__gte=now - WINDOW)
        .filter(words)
        .count()
    )


def check_notices(now: datetime | None = None) -> int:
    """Post (and e-mail) what is news for each person who asked for it; how many were posted."""
    now = now or timezone.now()
    asking = _asking()
    key = window_start(now).isoformat()
    # Each count once a check, and only when someone asked for it.
    finished = finished_campaigns(now) if any(p.notify_campaign_finished for p in asking) else []
    wanted = any(p.notify_failures_over is not None for p in asking)
    failed = recent_failures(now) if wanted else 0
    refused = balance_refusals(now) if any(p.notify_low_balance for p in asking) else 0
    calls = reverse("calls:call-list")
    posted = 0
    for preference in asking:
        news = list(finished) if preference.notify_campaign_finished else []
        threshold = preference.notify_failures_over
        if threshold is not None and failed >= max(threshold, 1):
            title = f"{failed} call{pluralize(failed)} failed in the last 15 minutes"
            news.append(News(Notice.Kind.FAILURES, key, title, calls))
        if preference.notify_low_balance and refused:
            title = (
                f"The provider refused {refused} call{pluralize(refused)} for lack of balance: "
                "top up the account"
            )
            news.append(News(Notice.Kind.LOW_BALANCE, key, title, calls))
        for item in news:
            notice = Notice.objects.post(
                preference.user_id, item.kind, item.key, title=item.title, link=item.link
            )
            if notice is not None:
                posted += 1
                _email(notice, preference.user)
    return posted


def tell_supervisors(kind: str, key: str, title: str, link: str = "") -> int:
    """Post (and e-mail) a notice to every active supervisor, whatever they asked to be told:
    for news nobody may miss, such as opt-outs that could not be read. Once per person, kind and
    key, however often it is told; how many were posted."""
    posted = 0
    supervisors = User.objects.with_perm(NOTIFY_PERMISSION, backend=PERMISSIONS_BACKEND)
    for user in supervisors.distinct().order_by("pk"):
        notice = Notice.objects.post(user.pk, kind, key, title=title, link=link)
        if notice is not None:
            posted += 1
            _email(notice, user)
    return posted


def _asking() -> list[UserPreference]:
    """Preferences asking for any notice, of active people still allowed to ask."""
    asking = UserPreference.objects.filter(
        Q(notify_campaign_finished=True)
        | Q(notify_failures_over__isnull=False)
        | Q(notify_low_balance=True),
        user__is_active=True,
    ).select_related("user")
    return [p for p in asking if p.user.has_perm(NOTIFY_PERMISSION)]


def _mailer() -> BaseEmailBackend:
    """The configured mailer (EMAIL_URL); without one, the console, so nothing is lost silently."""
    if DEFAULT_MAILER_ALIAS in mailers:
        return mailers.default
    return ConsoleBackend()


def _email(notice: Notice, user: User) -> None:
    """E-mail a notice once: claimed first (two checks never both send it), the claim given back
    when nothing was sent, so `emailed_at` only ever says the mail went."""
    if not user.email or not notice.claim_email():
        return
    message = EmailMessage(
        # A header is one line: a campaign's name may hold CR/LF (a header injection otherwise).
        subject=" ".join(f"[OBD Portal] {notice.title}".split()),
        body=f"{notice.title}.\n\nSee it on the portal: {notice.link}\n",
        to=[user.email],
    )
    try:
        sent = _mailer().send_messages([message])
    # Whatever a mailer raises (SMTP, a bad address…): the notice stays, the check goes on.
    except Exception as exc:
        logger.warning("notice e-mail failed notice=%s user=%s: %s", notice.pk, user.pk, exc)
        sent = 0
    if not sent:
        notice.release_email()


class NoticePreferenceForm(forms.ModelForm[UserPreference]):
    notify_failures_over = forms.IntegerField(
        label="When failures in 15 minutes reach",
        min_value=1,
        max_value=1_000_000,
        required=False,
        help_text="A number of failed calls (rejected, not sent, unknown or failed); empty: never.",
    )

    class Meta:
        model = UserPreference
        fields = ["notify_campaign_finished", "notify_failures_over", "notify_low_balance"]


@permission_required(NOTIFY_PERMISSION)
def notices(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Your notices (newest first), what to be told of, and the header's count."""
    mine = Notice.objects.filter(user=request.user)
    if request.htmx and "bell" in request.GET:
        return render(request, "calls/notices.html#bell", {"unread": mine.unread().count()})
    if request.method == "POST" and "read" in request.POST:
        mine.unread().update(read_at=timezone.now())
        return redirect("calls:notices")
    preference = UserPreference.objects.filter(user=request.user).first()
    form = NoticePreferenceForm(
        request.POST or None, instance=preference or UserPreference(user=request.user)
    )
    if form.is_valid():
        form.save()
        messages.success(request, "Your notice settings are saved.")
        return redirect("calls:notices")
    context = {"notices": mine[:50], "unread": mine.unread().count(), "form": form}
    return render(request, "calls/notices.html", context)
