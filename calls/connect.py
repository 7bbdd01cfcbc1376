"""Connect the provider: check the configuration, make (or update) the portal's webhook at the
provider and subscribe it to the call and opt-out events, and show what is connected.

Idempotent: the webhook is looked up by its URL first and updated, subscriptions are made only
for events the webhook lacks; a run stopped half-way (a timeout, a 5xx) is finished by the next
one. Nothing is ever retried within a run (a POST may have been accepted). Secrets go to the
provider only in request bodies; pages, logs and errors show them masked.
"""

import ipaddress
import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.tasks import task
from django.urls import reverse
from django.utils import timezone

from calls.engine.sends import SEND_PRIORITY
from calls.http import AuthenticatedHttpRequest, id_in
from calls.models import AuditEntry, ProviderCheck
from calls.provider.base import Gateway, GatewayError, Row
from calls.provider.configured import get_gateway
from calls.provider.listing import every_row
from calls.roles import permission_required
from calls.sealing import masked_echo

logger = logging.getLogger(__name__)
EVENTS = ("voice:message:out", "voice:unsubscription")
WEBHOOK_NAME = "OBD Portal"
PERMISSION = "calls.connect_provider"


@dataclass
class Survey:
    """What the provider holds for this portal: its webhook (found by URL) and its events."""

    webhook: Row | None = None
    events: set[str] = field(default_factory=set)

    @property
    def webhook_id(self) -> str:
        return str(self.webhook.get("id") or "") if self.webhook else ""

    def missing(self) -> list[str]:
        return [event for event in EVENTS if event not in self.events]


@dataclass
class Report:
    """What a run did (or, in the sandbox, would do), and what is connected after it."""

    survey: Survey
    done: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    error: str = ""

    def as_json(self) -> dict[str, object]:
        """What the worker stores for the page: the webhook's shown fields only."""
        hook = self.survey.webhook
        return {
            "webhook": {k: str(hook.get(k) or "")[:1000] for k in ("id", "name", "uri")}
            if hook
            else None,
            "events": sorted(self.survey.events),
            "done": self.done,
            "planned": self.planned,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> "Report":
        found = Survey(webhook=stored.get("webhook"), events=set(stored.get("events") or ()))
        return cls(
            survey=found,
            done=list(stored.get("done") or ()),
            planned=list(stored.get("planned") or ()),
            error=str(stored.get("error") or ""),
        )


def survey(gateway: Gateway, url: str) -> Survey:
    """The cheap authenticated look-up: lists the webhooks (token valid, base URL reachable),
    then the subscriptions of the one pointing at `url`."""
    found = Survey()
    for row in every_row(gateway.webhooks):
        if str(row.get("uri") or "").rstrip("/") == url.rstrip("/"):
            found.webhook = row
            break
    if found.webhook_id:
        found.events = {
            str(row.get("event"))
            for row in every_row(gateway.subscriptions)
            if str(row.get("webhook_id") or "") == found.webhook_id
        }
    return found


def plan(found: Survey, url: str) -> list[str]:
    """The steps a run takes from here, in words."""
    token = " and verification token" if settings.OBD_WEBHOOK_VERIFICATION_TOKEN else ""
    steps = [
        f"Update webhook {found.webhook_id} to {url} with the portal's secret"
        if found.webhook
        else f"Create a webhook “{WEBHOOK_NAME}” for {url} with the portal's secret{token}"
    ]
    steps += [f"Subscribe the webhook to {event}" for event in found.missing()]
    return steps


def connect(gateway: Gateway, url: str, actor: User | None) -> Report:
    """Run the steps against the provider, recording each change; stops at the first failure."""
    report = Report(survey=Survey())
    try:
        report.survey = found = survey(gateway, url)
        report.planned = plan(found, url)
        existing = found.webhook_id
        fields: Row = {
            "name": WEBHOOK_NAME,
            "uri": url,
            "status": 1,
            "secret": settings.OBD_WEBHOOK_SECRET,
        }
        if not existing and settings.OBD_WEBHOOK_VERIFICATION_TOKEN:
            fields["token"] = settings.OBD_WEBHOOK_VERIFICATION_TOKEN  # settable on create only
        found.webhook = gateway.save_webhook(fields, existing)
        saved = AuditEntry.Action.WEBHOOK_UPDATED if existing else AuditEntry.Action.WEBHOOK_CREATED
        _record(report, actor, saved, report.planned[0], found.webhook_id)
        for event, step in zip(found.missing(), report.planned[1:], strict=True):
            gateway.subscribe(event, found.webhook_id)
            found.events.add(event)
            _record(report, actor, AuditEntry.Action.SUBSCRIBED, step, found.webhook_id)
    except GatewayError as exc:
        report.error = _masked(str(exc))
        logger.warning("provider connect stopped: %s", report.error)
    return report


def _record(
    report: Report, actor: User | None, action: AuditEntry.Action, step: str, webhook_id: str
) -> None:
    report.done.append(step)
    AuditEntry.record(actor, action, detail=f"{step} (webhook {webhook_id})")


def _masked(text: str) -> str:
    """A provider message may quote what it was sent: the secrets are masked out of it."""
    secrets = {
        "secret": settings.OBD_WEBHOOK_SECRET,
        "token": settings.OBD_WEBHOOK_VERIFICATION_TOKEN,
        "api_token": settings.MOBTEXTING_API_TOKEN,
    }
    return masked_echo(text, secrets)


class ConnectForm(forms.Form):
    webhook_url = forms.URLField(
        label="This portal's webhook URL",
        assume_scheme="https",
        max_length=1000,
        help_text="Where the provider sends outcomes and opt-outs; it must reach this portal.",
    )
    action = forms.ChoiceField(choices=[("check", "Check"), ("connect", "Connect")])

    def clean_webhook_url(self) -> str:
        url: str = self.cleaned_data["webhook_url"]
        if not url.lower().startswith(("http://", "https://")):
            raise forms.ValidationError("Only an http(s) address can receive webhooks.")
        return url


@permission_required(PERMISSION)
def connect_provider(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Check or Connect is stored and run by a worker; the result part refreshes itself until
    the worker has the provider's answer. The page never waits on the provider."""
    gateway = get_gateway()
    initial = {"webhook_url": request.build_absolute_uri(reverse("calls:webhook"))}
    form = ConnectForm(request.POST or None, initial=initial)
    check = None
    if form.is_valid():
        connecting = form.cleaned_data["action"] == "connect" and _ready(form, gateway)
        check = ProviderCheck.objects.create(
            action=ProviderCheck.Action.CONNECT if connecting else ProviderCheck.Action.CHECK,
            url=form.cleaned_data["webhook_url"],
            note=" ".join(str(error) for error in form.non_field_errors())[:300],
            asked_by=request.user,
            asked_at=timezone.now(),
        )
        transaction.on_commit(partial(run_provider_check.enqueue, check.pk), robust=True)
    elif request.method == "GET" and (asked := id_in(request.GET.get("check"))):
        now = timezone.now()
        ProviderCheck.give_up_lost(now)
        if ProviderCheck.ask_again_if_lost(asked, now):
            transaction.on_commit(partial(run_provider_check.enqueue, asked), robust=True)
        check = get_object_or_404(ProviderCheck, pk=asked)
    context = {
        "form": form,
        "check": check,
        "report": Report.from_json(check.outcome) if check and check.outcome else None,
        "warnings": _warnings(check.url, gateway) if check else [],
        "gateway": gateway,
        "events": EVENTS,
        "config": _configuration(),
    }
    template = "calls/connect.html#result" if request.htmx else "calls/connect.html"
    return render(request, template, context, status=422 if form.errors else 200)


@task(priority=SEND_PRIORITY)  # a person's page waits for it
def run_provider_check(check_id: int) -> str:
    """A worker runs a stored Check or Connect, once, and writes what it found and did."""
    check = ProviderCheck.claim(check_id, timezone.now())
    if check is None:
        return "not ours to run"
    gateway = get_gateway()
    connecting = check.action == ProviderCheck.Action.CONNECT
    if connecting and not gateway.is_sandbox and settings.OBD_WEBHOOK_SECRET:
        report = connect(gateway, check.url, check.asked_by)
    else:  # a check, the sandbox's preview of Connect, or a Connect that may not run yet
        report = _check(gateway, check.url)
    check.finish(report.as_json())
    return "failed" if report.error else "done"


def _ready(form: ConnectForm, gateway: Gateway) -> bool:
    """Connecting needs a real provider (the sandbox only previews) and a webhook secret
    (without one, anyone could post outcomes)."""
    if gateway.is_sandbox:
        return False
    if not settings.OBD_WEBHOOK_SECRET:
        form.add_error(None, "Set OBD_WEBHOOK_SECRET first: the webhook must carry a secret.")
        return False
    return True


def _check(gateway: Gateway, url: str) -> Report:
    try:
        found = survey(gateway, url)
    except GatewayError as exc:
        return Report(survey=Survey(), error=_masked(str(exc)))
    return Report(survey=found, planned=plan(found, url))


def _warnings(url: str, gateway: Gateway) -> list[str]:
    """What would stop a real connection working, said before it is made."""
    warnings = []
    reason = unreachable(url)
    if reason:
        warnings.append(
            f"The provider cannot reach this address: {reason}. Outcomes sent to it would never "
            "arrive; give the portal's public address (in development, a tunnel's)."
        )
    if gateway.is_sandbox and not settings.OBD_WEBHOOK_SECRET:
        warnings.append(
            "Before connecting for real, set OBD_WEBHOOK_SECRET: the webhook must carry a secret."
        )
    return warnings


def unreachable(url: str) -> str:
    """Why the provider, out on the internet, could not reach `url` ("" when it may): this
    machine's own name, a loopback, private or link-local address (the form already refuses a
    name without a domain). Only the address is read: a request never waits on DNS."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return f"“{host}” is this machine's own name"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return ""
    if address.is_loopback:
        return f"{host} is this machine's loopback address"
    if not address.is_global:
        return f"{host} is a private address"
    return ""


def _configuration() -> list[tuple[str, str]]:
    """What the portal is configured with, secrets only as set or not."""

    def said(value: str) -> str:
        return "set (hidden)" if value else "not set"

    return [
        ("Provider base URL", settings.MOBTEXTING_API_URL),
        ("API token (MOBTEXTING_API_TOKEN)", said(settings.MOBTEXTING_API_TOKEN)),
        ("Webhook secret (OBD_WEBHOOK_SECRET)", said(settings.OBD_WEBHOOK_SECRET)),
        (
            "Verification token (OBD_WEBHOOK_VERIFICATION_TOKEN)",
            said(settings.OBD_WEBHOOK_VERIFICATION_TOKEN),
        ),
    ]
