"""The call log's status badge (calls/templatetags/call_rows.py), written in Python for speed:
each state's HTML exactly as the log and the call page have always written it."""

from datetime import timedelta

import pytest

from calls.models import CallLog
from calls.templatetags.call_rows import as_rows, call_rows, call_status
from tests.clock import pinned_now


def _call(bridge, sound, **fields: object) -> CallLog:
    return CallLog.objects.create(bridge=bridge, audio=sound, to="918867135124", **fields)


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
    row = call_rows(list(as_rows(CallLog.objects.filter(pk=call.pk))))
    assert row.count('href="/calls/54321/"') == 2
    assert ">54321</a>" in row
    assert ">12345 s</td>" in row
    settings.USE_THOUSAND_SEPARATOR = True  # the shortcut for whole numbers is not taken then
    row = call_rows(list(as_rows(CallLog.objects.filter(pk=call.pk))))
    assert row.count('href="/calls/54321/"') == 2  # an address, never localized
    assert ">54,321</a>" in row
    assert ">12,345 s</td>" in row
