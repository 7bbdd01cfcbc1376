"""The call log's order and pages (calls/paging.py): newest dialled first, by a keyset on an
index, in as many queries whatever the table holds."""

import re
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls import paging
from calls.models import CallLog
from tests.clock import pinned_now


@pytest.fixture
def now() -> datetime:
    """The test's pinned clock read once, so the rows it makes share one instant."""
    return pinned_now()


def _calls(bridge, sound, count: int, **fields: object) -> list[CallLog]:
    return CallLog.objects.bulk_create(
        CallLog(bridge=bridge, audio=sound, to=f"9188671{i:05d}", **{"status": "answered"} | fields)
        for i in range(count)
    )


def _shown(agent_client, url: str, params: dict) -> tuple[list[int], dict[str, str]]:
    """The ids on a page, and its pager links by name ("before", "after")."""
    page = agent_client.get(url, params)
    assert page.status_code == 200
    pager = page.text.split('class="pager"', 1)[1].split("</nav>", 1)[0].replace("&amp;", "&")
    links = dict(re.findall(r"[?&](before|after)=([0-9-]+)\"", pager))
    return [call.pk for call in page.context["page"].rows], links


def test_a_campaign_row_uploaded_long_ago_and_dialled_now_is_on_top(
    now, agent_client, bridge, sound, campaign
):
    uploaded = now - timedelta(days=10)
    dialled_now = CallLog.objects.create(
        bridge=bridge,
        audio=sound,
        to="918867135124",
        status="queued",
        campaign=campaign,
        created_at=uploaded,
    )
    _calls(
        bridge, sound, 3, created_at=now - timedelta(hours=1), submitted_at=now - timedelta(hours=1)
    )
    CallLog.objects.filter(pk=dialled_now.pk).update(submitted_at=now)

    rows = agent_client.get("/calls/").context["page"].rows
    assert rows[0] == dialled_now
    # The days are those of dialling too, as the log shows them.
    today = {"since": timezone.localdate(now).isoformat()}
    assert dialled_now in agent_client.get("/calls/", today).context["page"].rows
    upload_day = {"until": timezone.localdate(uploaded).isoformat()}
    assert agent_client.get("/calls/", upload_day).context["page"].rows == []


@pytest.mark.parametrize(
    ("filters", "matching"),
    [({}, {}), ({"status": "answered"}, {"status": "answered"}), ({"kind": "single"}, {})],
)
def test_older_and_newer_links_walk_every_call_once_in_order_through_ties(
    now, agent_client, bridge, sound, monkeypatch, filters, matching
):
    monkeypatch.setattr(paging, "PAGE_SIZE", 4)
    # Ties on the dialled time across page boundaries, calls not sent yet (placed by when they
    # were made), and ids that do not follow the dialled order.
    same = now - timedelta(minutes=5)
    _calls(bridge, sound, 7, submitted_at=same)
    _calls(bridge, sound, 3, submitted_at=now - timedelta(minutes=1))
    _calls(bridge, sound, 2, submitted_at=now - timedelta(days=1))
    _calls(bridge, sound, 2, created_at=same, status="pending")
    calls = CallLog.objects.filter(**matching)
    newest_first = sorted(calls, key=lambda c: (c.submitted_at or c.created_at, c.pk), reverse=True)

    pages, params = [], {}
    while True:
        ids, links = _shown(agent_client, "/calls/", filters | params)
        pages.append(ids)
        if "before" not in links:
            break
        params = {"before": links["before"]}
    assert [pk for ids in pages for pk in ids] == [call.pk for call in newest_first]
    assert len(pages) > 2 and all(len(ids) == 4 for ids in pages[:-1])

    # Back from the oldest page by the newer links: the same pages.
    back = [pages[-1]]
    while "after" in links:
        ids, links = _shown(agent_client, "/calls/", filters | {"after": links["after"]})
        back.append(ids)
    assert back[::-1] == pages


URLS = [
    {},
    {"status": "busy"},
    {"q": "5123"},
    {"kind": "campaign"},
    {"since": "2020-01-01", "until": "2099-12-31"},
    {"before": "1764240000000000-5"},
    {"after": "1000-1"},
]


@pytest.mark.parametrize("htmx", [False, True])
def test_a_call_log_page_takes_as_many_queries_and_no_count_with_more_calls(
    now, agent_client, bridge, sound, campaign, htmx
):
    headers = {"HX-Request": "true"} if htmx else {}

    def queries() -> list[list[str]]:
        seen = []
        for params in URLS:
            with CaptureQueriesContext(connection) as captured:
                assert agent_client.get("/calls/", params, headers=headers).status_code == 200
            seen.append([q["sql"] for q in captured.captured_queries])
        return seen

    def mixed(count: int, when: datetime) -> None:
        """Single and campaign calls in turn: a page reads the rows its calls name (bridges,
        campaigns…) in a query each, so every page of both tables shows both kinds."""
        CallLog.objects.bulk_create(
            CallLog(
                bridge=bridge,
                audio=sound,
                to=f"9188671{i:05d}",
                status="answered",
                submitted_at=when,
                campaign=campaign if i % 2 else None,
            )
            for i in range(count)
        )

    mixed(2, now)
    few = queries()
    mixed(400, now - timedelta(hours=1))
    many = queries()

    assert [len(page) for page in many] == [len(page) for page in few]
    assert not [sql for page in many for sql in page if "COUNT(" in sql.upper()]


@pytest.mark.parametrize(
    "cursor",
    [
        "5",
        "-5",
        "1-",
        "²-1",
        "1-²",
        "99999999999999999999999-1",
        "1-99999999999999999999999",
        "253402214400000000-1",
        "1.5-1",
        "9" * 5000,  # past int()'s 4300 digits
        "1-" + "9" * 5000,
    ],
)
def test_a_mangled_cursor_never_fails_the_call_log(now, agent_client, bridge, sound, cursor):
    _calls(bridge, sound, 2, submitted_at=now)
    for name in ("before", "after"):
        assert agent_client.get("/calls/", {name: cursor}).status_code == 200


def test_a_cursor_reads_back_what_it_wrote(now):
    cursor = paging.Cursor(now, 42)
    assert paging.Cursor.read(str(cursor)) == cursor
    assert paging.Cursor.read("nonsense") is None


def test_a_page_reads_its_calls_unjoined_and_the_rows_they_name_once_each(
    now, agent_client, bridge, sound, campaign
):
    # Joining six tables took PostgreSQL longer to plan than to read the page.
    _calls(bridge, sound, 3, submitted_at=now)
    _calls(bridge, sound, 3, campaign=campaign, submitted_at=now)
    with CaptureQueriesContext(connection) as captured:
        assert agent_client.get("/calls/").status_code == 200
    sqls = [q["sql"] for q in captured.captured_queries]

    (calls,) = [sql for sql in sqls if 'FROM "calls_calllog"' in sql]
    assert "JOIN" not in calls
    assert "request_payload" not in calls  # only the columns a row shows
    assert len([sql for sql in sqls if 'FROM "calls_campaign"' in sql]) == 2  # rows, filter
    # The filters' choices in plain queries, not a server-side cursor each.
    assert not [sql for sql in sqls if sql.startswith("DECLARE")]
