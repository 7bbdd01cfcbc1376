"""The call log's rows, written in Python: through the template engine a page of 50 rows spent
most of its time resolving some 45 variables a row. The same HTML, escaped as `{{ }}` would."""

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from django import template
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import ForeignKey, Model, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import get_format, localize
from django.utils.safestring import SafeString

from calls.escaping import formatted, joined
from calls.models import CallLog
from calls.templatetags.moments import written

register = template.Library()
STATUS_WORDS = dict(CallLog._meta.get_field("status").flatchoices)

# The columns a row reads (below, and the call's properties it asks), and each related row's.
ROW_COLUMNS = (
    "to",
    "status",
    "provider_status",
    "submitted_at",
    "not_before",
    "duration",
    "attempt_number",
    "bridge",
    "flow",
    "audio",
    "campaign",
    "created_by",
    "api_key",
)


# The rows a call names, and the columns of each that a row shows.
NAMED = {
    "bridge": ("number", "label"),
    "flow": ("flow_id", "name"),
    "audio": ("name",),
    "campaign": ("name", "max_attempts"),
    "created_by": (get_user_model().USERNAME_FIELD,),
    "api_key": ("name",),
}


def as_rows(calls: QuerySet[CallLog]) -> QuerySet[CallLog]:
    """`calls` as the log shows them: only the columns a row reads (not the payloads, the
    provider's answer, the sealed values). The rows they name are read by `name_rows`."""
    return calls.only(*ROW_COLUMNS)


def name_rows(calls: Sequence[CallLog]) -> None:
    """Give each of `calls` the rows it names (NAMED): read in a query a relation for the
    few on the page, not joined (a six-table join took PostgreSQL ~10 ms to plan, longer than
    reading the page), and not by `prefetch_related`, whose machinery cost more Python than
    its queries."""
    for name, columns in NAMED.items():
        field = cast("ForeignKey[Model, Model]", CallLog._meta.get_field(name))
        ids = {getattr(call, field.attname) for call in calls} - {None}
        found = field.related_model._default_manager.only(*columns).in_bulk(ids) if ids else {}
        for call in calls:
            if (named := found.get(getattr(call, field.attname))) is not None:
                field.set_cached_value(call, named)


ROW = """<tr id="call-{pk}" class="{in_flight}">
        <td class="wide-only"><a href="{url}">{pk}</a></td>
        <td>{dialled}</td>
        <td class="mono number"><a href="{url}">{to}</a></td>
        <td class="wide-only">{bridge}</td>
        <td class="wide-only">{plays}</td>
        <td class="wide-only">{campaign}</td>
        <td>{status}
{attempt}</td>
        <td class="wide-only">{duration}</td>
        <td class="wide-only">{placed_by}</td>
      </tr>"""


def _shown(value: object) -> str:
    """As `{{ value }}` writes it: localized (`formatted` escapes it). Text is itself, and so is a
    whole number without thousands separators (Django's own shortcut, taken here before the
    three look-ups of the language's number formats that precede it)."""
    if type(value) is str or (type(value) is int and not settings.USE_THOUSAND_SEPARATOR):
        return str(value)
    return str(localize(value))


def _time(value: datetime, page: "_Page") -> SafeString:
    """`<time datetime="{{ value|date:'c' }}">{{ value|moment:"SHORT_DATETIME_FORMAT" }}</time>`"""
    local = timezone.localtime(value)
    # `isoformat` is what the `c` format writes.
    return formatted('<time datetime="{}">{}</time>', local.isoformat(), written(local, page.dated))


def _muted(words: object) -> SafeString:
    return formatted('<span class="muted">{}</span>', words)


@register.simple_tag
def call_status(call: CallLog) -> SafeString:
    """A call's status as a badge that screen readers announce when it changes."""
    return _badge(call, _shown(call.pk), _shown(call.to_display))


def _badge(call: CallLog, pk: str, to: str) -> SafeString:
    """The badge of `call`, whose id and number a row has written already."""
    if call.is_scheduled:
        return formatted(
            '<span class="status status-scheduled" title="{}">Scheduled</span>',
            "Placed for a later time, not sent yet",
        )
    if call.is_sending:
        return formatted(
            '<span class="status status-pending" data-announce-key="call-{pk}" '
            'data-announce="Call #{pk} to {to}: sending" '
            'title="Being sent to the provider">Sending…</span>',
            pk=pk,
            to=to,
        )
    # As get_status_display() words it, without building the choices' dict a row.
    shown = _shown(STATUS_WORDS.get(call.status, call.status))
    return formatted(
        '<span class="status status-{status}" data-announce-key="call-{pk}" '
        'data-announce="Call #{pk} to {to}: {shown}" title="{title}">{shown}</span>',
        status=call.status,
        pk=pk,
        to=to,
        shown=shown,
        title=call.provider_status_words or shown,
    )


class _Page:
    """What every row of a page writes alike, looked up once a page: the date format of the
    active language, the address of a call's page, and the campaigns' links named so far."""

    def __init__(self) -> None:
        self.dated = get_format("SHORT_DATETIME_FORMAT")
        # A call's address around a stand-in id: `reverse` a row cost more than the row's SQL.
        self.before_id, self.after_id = reverse("calls:call-detail", args=[_STAND_IN]).split(
            str(_STAND_IN)
        )
        self.campaign_links: dict[int, str] = {}


_STAND_IN = 9_876_543_210  # an id no digits of the address around it can be mistaken for


@register.simple_tag
def call_rows(calls: list[CallLog]) -> SafeString:
    """The call log's rows (templates/calls/call_list.html), each on its line as the template
    indents them: one tag a page, not one a row."""
    page = _Page()
    return joined(f"\n      {_row(call, page)}\n    " for call in calls)


def _row(call: CallLog, page: _Page) -> SafeString:
    """One row of `page`."""
    if call.submitted_at:
        dialled = _time(call.submitted_at, page)
    elif call.is_scheduled and call.not_before:
        dialled = _muted(formatted("scheduled for {}", _time(call.not_before, page)))
    elif call.is_sending:
        dialled = _muted("sending…")
    else:
        dialled = _muted("not sent")
    if call.campaign:
        # A page's rows name a few campaigns: each link found once a page.
        campaign_pk = call.campaign.pk
        if campaign_pk not in page.campaign_links:
            page.campaign_links[campaign_pk] = reverse("calls:campaign-detail", args=[campaign_pk])
        link = page.campaign_links[campaign_pk]
        campaign = formatted('<a href="{}">{}</a>', link, _shown(call.campaign.name))
    else:
        campaign = _muted("single call")
    attempt = ""
    if call.attempts_allowed > 1:
        attempt = formatted(
            '<small class="attempt">attempt {} of {}</small>',
            _shown(call.attempt_number),
            _shown(call.attempts_allowed),
        )
    pk, to = _shown(call.pk), _shown(call.to_display)
    return formatted(
        ROW,
        pk=pk,
        in_flight="" if call.is_settled else "in-flight",
        url=f"{page.before_id}{call.pk}{page.after_id}",
        dialled=dialled,
        to=to,
        bridge=_shown(call.bridge.label or call.bridge.number),
        plays=_shown(call.content),
        campaign=campaign,
        status=_badge(call, pk, to),
        attempt=attempt,
        duration="—" if call.duration is None else f"{_shown(call.duration)} s",
        placed_by=_shown(call.placed_by or "—"),
    )
