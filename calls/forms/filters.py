"""The call log's filters and its search."""

import re
from contextlib import suppress
from datetime import date, datetime, time, timedelta
from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils import formats, timezone

from calls.forms.fields import DayField, QuickModelChoiceField, QuickSelect
from calls.models import (
    Bridge,
    CallLog,
    Campaign,
    IvrFlow,
)
from calls.models.calls import DIALLED_AT
from calls.phone import normalize_number
from calls.vocabulary import KEYPAD, provider_key


class CallFilterForm(forms.Form):
    """The call log's filters; every field optional, a bad value left out and named, not failing."""

    q = forms.CharField(
        required=False,
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "Number or provider id", "type": "search"}),
    )
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *CallLog.Status.choices], widget=QuickSelect
    )
    # Only the columns their names are written with.
    bridge = QuickModelChoiceField(
        Bridge.objects.only("number", "label"), required=False, empty_label="Any bridge"
    )
    flow = QuickModelChoiceField(
        IvrFlow.objects.only("flow_id", "name"), required=False, empty_label="Any flow"
    )
    campaign = QuickModelChoiceField(
        Campaign.objects.only("name"), required=False, empty_label="Any campaign"
    )
    kind = forms.ChoiceField(
        required=False,
        label="Calls",
        choices=[("", "Single and campaign"), ("single", "Single calls"), ("campaign", "Campaign")],
        widget=QuickSelect,
    )
    placed_by: QuickModelChoiceField[User] = QuickModelChoiceField(
        queryset=None, required=False, empty_label="Anyone", label="Placed by"
    )
    pressed = forms.ChoiceField(
        required=False,
        label="Key pressed",
        choices=[
            ("", "Any keys"),
            ("none", "No key pressed"),
            *((key, f"{key} first") for key in KEYPAD),
        ],
        widget=QuickSelect,
    )
    since = DayField(required=False, label="From")
    until = DayField(required=False, label="To")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        placed_by = cast("QuickModelChoiceField[User]", self.fields["placed_by"])
        users = get_user_model()
        placed_by.queryset = (
            users.objects.filter(is_active=True)
            .only(users.USERNAME_FIELD)
            .order_by(users.USERNAME_FIELD)  # a user row has no order of its own
        )

    # Shown first; the others fold under "More filters" on a phone while none is in use.
    MAIN_FIELDS = ("q", "status")

    def main_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.MAIN_FIELDS]

    def more_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name not in self.MAIN_FIELDS]

    def more_in_use(self) -> bool:
        return any(self.data.get(field.name) for field in self.more_fields())

    def filter(self, calls: QuerySet[CallLog]) -> QuerySet[CallLog]:
        # The filters that could be read apply; one that could not (a mistyped day) is shown with
        # its error on the form, never silently dropped along with all the others.
        data: dict[str, Any] = {}
        if self.is_bound:
            self.is_valid()  # cleaned_data then holds every filter that could be read
            data = self.cleaned_data
        if not data.get("campaign"):
            # As the dashboard counts: a campaign's rows not sent yet (waiting, or withdrawn) are
            # no calls placed, and are shown only when filtering by that campaign.
            calls = calls.exclude(campaign__isnull=False, submitted_at__isnull=True)
        if not data:
            return calls
        if q := (data.get("q") or "").strip():
            calls = calls.filter(_search(q))
        if data.get("kind"):
            calls = calls.filter(campaign__isnull=data["kind"] == "single")
        if pressed := data.get("pressed"):
            # A call's choice is the first key its customer pressed (see calls/keypresses.py).
            calls = calls.filter(
                Q(keypresses="", keypresses_at__isnull=False)
                if pressed == "none"
                else Q(keypresses__startswith=pressed)
            )
        for name, lookup in (
            ("status", "status"),
            ("bridge", "bridge"),
            ("flow", "flow"),
            ("placed_by", "created_by"),
            ("campaign", "campaign"),
        ):
            if data.get(name):
                calls = calls.filter(**{lookup: data[name]})
        # Whole days in the user's time zone (calls.middleware activates it), of when calls were
        # dialled, as the log shows and orders them: a range on the log's own index.
        if data.get("since"):
            calls = calls.alias(dialled=DIALLED_AT).filter(dialled__gte=_day_start(data["since"]))
        if data.get("until"):
            end = _day_start(data["until"] + timedelta(days=1))
            calls = calls.alias(dialled=DIALLED_AT).filter(dialled__lt=end)
        return calls

    def not_applied(self) -> list[str]:
        """Each filter that could not be read, as typed and why, in words: it is left out of the
        log (the others still apply), and the page and the export must say so, never be silent."""
        if not self.is_bound or self.is_valid():
            return []
        return [
            f"{self[name].label} “{self.data.get(name, '')}” is not applied: {' '.join(why)}"
            for name, errors in self.errors.items()
            if (why := [str(error) for error in errors])
        ]

    def chips(self) -> list[tuple[str, str, str]]:
        """Each filter in use as (label, value shown, the query without it), so one can be
        removed at a time."""
        if not self.is_bound:
            return []
        self.is_valid()  # the filters that could be read have their values; the others an error
        chips = []
        for name, field in self.fields.items():
            value: Any = self.cleaned_data.get(name)
            if value in (None, ""):
                continue
            if isinstance(field, forms.ModelChoiceField):
                shown = str(value)
            elif isinstance(field, forms.ChoiceField):
                shown = str(dict(cast("list[tuple[str, str]]", field.choices))[value])
            elif isinstance(value, date):
                shown = formats.date_format(value)  # as the pages write a day
            else:
                shown = str(self[name].value())
            rest = cast("QueryDict", self.data).copy()  # bound to request.GET
            for key in (name, "before", "after"):
                rest.pop(key, None)
            chips.append((str(self[name].label), shown, rest.urlencode()))
        return chips


# What a typed phone number may hold besides digits: `(+91) 98765-40004`, `098765 40004`.
PHONE_TEXT = re.compile(r"[\d\s()+.-]+")


def _search(q: str) -> Q:
    """Calls to a number however it is typed (its last digits will do), or whose provider id
    starts with `q`, in any case. Both are index reads: `to` or `to_reversed` as a range, and
    `provider_key` (stored lower case) by prefix."""
    by_id = Q(provider_key__startswith=provider_key(q))
    if not PHONE_TEXT.fullmatch(q):
        return by_id
    digits = re.sub(r"\D", "", q)
    if not digits:
        return by_id
    by_number = None
    if q.lstrip("( ").startswith("+"):
        with suppress(ValidationError):
            by_number = Q(to=normalize_number(q))
    if by_number is None:
        # A long number's leading zeros are a trunk or international prefix (098765 40004,
        # 0091 …), never part of the stored digits; a short ending like 0004 keeps them.
        by_number = _ending(digits.lstrip("0") if len(digits) > 8 else digits)
    # An id of digits only (a uuid may start so) is a number or the start of an id.
    return by_number | by_id if q.isdigit() else by_number


def _ending(digits: str) -> Q:
    """Numbers ending in `digits`, as a range on the reversed number's index."""
    tail = digits[::-1]
    after = _next_prefix(tail)
    return Q(to_reversed__gte=tail, to_reversed__lt=after) if after else Q(to_reversed__gte=tail)


def _next_prefix(digits: str) -> str | None:
    """The smallest digit string after every one starting with `digits` ("129" → "13");
    None for all nines, which nothing made of digits comes after."""
    stripped = digits.rstrip("9")
    return stripped[:-1] + str(int(stripped[-1]) + 1) if stripped else None


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))
