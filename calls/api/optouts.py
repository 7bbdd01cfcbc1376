"""The do-not-call list over the API: check a number, add one (with a reason), remove one (with
a reason). Numbers are read as the pages read them; each change is in the audit."""

from datetime import datetime

from django import forms
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from calls.api.keys import Scope, key_of
from calls.api.problems import WRITE_REFUSED, ProblemOut, form_problem
from calls.forms import NumberField
from calls.models import AuditEntry, DoNotCall
from calls.phone import pretty_number

router = Router(tags=["do-not-call"])


class OptOutForm(forms.Form):
    number = NumberField()
    reason = forms.CharField(max_length=200, required=False)


class OptOutIn(Schema):
    number: str = Field(description="With country code, e.g. +91 88671 35123")
    reason: str = Field("", description="e.g. Customer asked on the phone, ticket 4411")


class NumberIn(Schema):
    number: str = Field(description="With country code, e.g. +91 88671 35123")


class OptOutOut(Schema):
    number: str
    listed: bool
    reason: str
    source: str | None = Field(description="Who listed it: manual, webhook, keypress, api…")
    listed_at: datetime | None


def _read(body: OptOutIn | NumberIn) -> tuple[str, str]:
    form = OptOutForm(body.model_dump())
    if not form.is_valid():
        raise form_problem(form)
    return form.cleaned_data["number"], form.cleaned_data.get("reason", "")


def _answer(number: str) -> OptOutOut:
    entry = DoNotCall.objects.filter(number=number).first()
    return OptOutOut(
        number=number,
        listed=entry is not None,
        reason=entry.reason if entry else "",
        source=entry.source if entry else None,
        listed_at=entry.created_at if entry else None,
    )


@router.post(
    "/optouts/check",
    response={200: OptOutOut, WRITE_REFUSED: ProblemOut},
    auth=Scope("optouts:read"),
)
def check_number(request: HttpRequest, body: NumberIn) -> OptOutOut:
    """Whether a number is on the list (POST: a number is personal data, kept out of URLs)."""
    number, _ = _read(body)
    return _answer(number)


@router.post(
    "/optouts",
    response={201: OptOutOut, 200: OptOutOut, WRITE_REFUSED: ProblemOut},
    auth=Scope("optouts:write"),
)
def add_number(request: HttpRequest, body: OptOutIn) -> Status[OptOutOut]:
    """List a number: never called again. Already listed: it keeps its first entry (200)."""
    key = key_of(request)
    number, reason = _read(body)
    added = DoNotCall.objects.record_opt_out(number, source=DoNotCall.Source.API, note=reason)
    if added:
        detail = f"{pretty_number(number)}: {reason}" if reason else pretty_number(number)
        AuditEntry.record(None, AuditEntry.Action.OPTED_OUT, detail=detail, api_key=key)
    return Status(201 if added else 200, _answer(number))


@router.post(
    "/optouts/remove",
    response={200: OptOutOut, WRITE_REFUSED: ProblemOut},
    auth=Scope("optouts:write"),
)
def remove_number(request: HttpRequest, body: OptOutIn) -> OptOutOut:
    """Take a number off the list (say why in `reason`): it may be called again."""
    key = key_of(request)
    number, reason = _read(body)
    removed, _ = DoNotCall.objects.filter(number=number).delete()
    if removed:
        detail = f"{pretty_number(number)}: {reason}" if reason else pretty_number(number)
        AuditEntry.record(None, AuditEntry.Action.OPT_OUT_REMOVED, detail=detail, api_key=key)
    return _answer(number)
