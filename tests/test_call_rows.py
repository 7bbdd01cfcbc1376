"""The call log's status badge (calls/templatetags/call_rows.py), written in Python for speed:
each state's HTML exactly as the log and the call page have always written it."""

from datetime import timedelta

import pytest

from calls.models import Bridge, CallLog, Campaign
from calls.templatetags.call_rows import as_rows, call_rows, call_status, name_rows
from tests.clock import pinned_now
from tests.helpers.campaigns import make_campaign


def _call(bridge, sound, **fields: object) -> CallLog:
    return CallLog.objects.create(bridge=bridge, audio=sound, to="918867135124", **fields)


def _rows(*calls: CallLog) -> list[CallLog]:
    """`calls` as the log reads them."""
    rows = list(as_rows(CallLog.objects.filter(pk__in=[call.pk for call in calls])))
    name_rows(rows)
    return rows


def test_a_call_waiting_for_a_later_time_is_scheduled(bridge, sound):
    call = _call(bridge, sound, status="pending", not_before=pinned_now() + timedelta(hours=1))
    assert call_status(call) == (
        '<span class="status status-scheduled" '
        'title="Placed for a later time, not sent yet">Scheduled</span>'
    )


def test_a_call_on_its_way_is_sending_and_announced(bridge, sound):
    call = _call(bridge, sound, status="pending")
    assert call_status(call) == (
        f'<span class="status status-pending" data-announce-key="call-{call.pk}" '
        f'data-announce="Call #{call.pk} to +91 88671 35124: sending" '
        'title="Being sent to the provider">Sending…</span>'
    )


@pytest.mark.parametrize(
    ("provider_status", "title"),
    [("", "Answered"), ("COMPLETED", "answered"), ("<b>", "&lt;b&gt;")],
)
def test_an_outcome_is_worded_with_the_providers_words_as_its_title(
    bridge, sound, provider_status, title
):
    call = _call(bridge, sound, status="answered", provider_status=provider_status)
    assert call_status(call) == (
        f'<span class="status status-answered" data-announce-key="call-{call.pk}" '
        f'data-announce="Call #{call.pk} to +91 88671 35124: Answered" '
        f'title="{title}">Answered</span>'
    )


def test_a_row_links_to_the_calls_page_and_writes_its_numbers_as_the_template_would(
    bridge, sound, settings
):
    call = _call(
        bridge, sound, pk=54321, status="answered", duration=12345, submitted_at=pinned_now()
    )
    row = call_rows(_rows(call))
    assert row.count('href="/calls/54321/"') == 2
    assert ">54321</a>" in row
    assert ">12345 s</td>" in row
    settings.USE_THOUSAND_SEPARATOR = True  # the shortcut for whole numbers is not taken then
    row = call_rows(_rows(call))
    assert row.count('href="/calls/54321/"') == 2  # an address, never localized
    assert ">54,321</a>" in row
    assert ">12,345 s</td>" in row


HOSTILE = "<script>alert(\"x\")</script> & 'it'"


def test_the_rows_a_page_names_are_read_in_a_query_a_relation_and_written_escaped(
    bridge, otp_flow, sound, django_user_model, django_assert_num_queries
):
    """However many calls a page holds: one query for its calls, then one for its bridges, its
    flows, its sounds, its campaigns and the people who placed them; writing the rows asks
    the database nothing more. What those rows are named is written escaped."""
    other = Bridge.objects.create(number="912262345678", label=HOSTILE)
    agent = django_user_model.objects.create(username=HOSTILE)
    campaign = make_campaign(other, flow=otp_flow)
    Campaign.objects.filter(pk=campaign.pk).update(name=HOSTILE)
    made = [
        _call(bridge, sound, status="answered", submitted_at=pinned_now()),
        _call(
            other, None, flow=otp_flow, status="busy", submitted_at=pinned_now(), created_by=agent
        ),
        _call(
            other,
            None,
            flow=otp_flow,
            status="queued",
            campaign=campaign,
            submitted_at=pinned_now(),
        ),
    ]
    with django_assert_num_queries(1 + 5):  # the calls; bridges, flows, sounds, campaigns, users
        calls = list(as_rows(CallLog.objects.filter(pk__in=[c.pk for c in made]).order_by("id")))
        name_rows(calls)
    with django_assert_num_queries(0):
        rows = call_rows(calls)
    assert HOSTILE not in rows and "<script>" not in rows
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;it&#x27;"
    assert rows.count(escaped) == 4  # two rows' bridge, a campaign, an agent
    assert bridge.label in rows and sound.name in rows and otp_flow.name in rows


def test_a_call_naming_no_campaign_nor_person_asks_for_none(
    bridge, sound, django_assert_num_queries
):
    calls = list(as_rows(CallLog.objects.filter(pk=_call(bridge, sound, status="busy").pk)))
    with django_assert_num_queries(2):  # its bridge and its sound; no flow, campaign or person
        name_rows(calls)
    with django_assert_num_queries(0):
        assert "single call" in call_rows(calls)
