"""The dashboard page (calls/views.py dashboard): its numbers, tables and SVG chart."""

import re

import pytest
from django.utils import timezone

from calls.models import CallLog
from calls.vocabulary import provider_words
from tests.helpers.dashboard import EXPECTED, PERIODS
from tests.helpers.portal import text_of


def table_rows(html: str) -> list[list[str]]:
    return [
        [text_of(cell) for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S)
    ]


@pytest.mark.parametrize("period", PERIODS)
def test_the_dashboard_page_shows_the_numbers_and_an_svg_chart(agent_client, known_calls, period):
    expected = EXPECTED[period]
    response = agent_client.get("/", {"period": period})
    assert response.status_code == 200
    html = response.content.decode()

    def stat(name: str) -> str:
        return text_of(re.search(rf'id="stat-{name}"[^>]*>(.*?)</', html, re.S)[1])

    assert stat("placed") == str(expected.placed)
    assert stat("rate") == f"{expected.rate}%"
    assert stat("duration") == f"{expected.avg_duration:.0f} s"
    assert stat("cost") == f"{expected.cost.normalize():f} credits"  # no price configured
    assert f"{expected.answered} of {expected.settled} with an outcome" in text_of(html)

    rows = table_rows(html)
    for label, placed, answered, rate in expected.by_bridge + expected.by_flow:
        assert [label, str(placed), str(answered), f"{rate}%"] in rows
    failure_rows = [row for row in rows if len(row) == 3]
    assert len(failure_rows) == len(expected.failures)
    for status, provider_status, http_status, n in expected.failures:
        label = CallLog.Status(status).label  # shown in words, as in the outcome mix
        (shown,) = [row for row in failure_rows if row[0] == label]
        assert shown[2] == str(n)
        assert str(http_status or provider_words(provider_status)) in shown[1]
        assert not provider_status or provider_status not in shown[1]  # CONGESTION: in words

    svg = re.search(r"<svg\b.*?</svg>", html, re.S)
    assert svg is not None
    assert svg[0].count("<rect") == len(expected.per_hour)
    hour = timezone.localtime(known_calls).hour
    assert f"{hour}:00 — {expected.placed} calls" in svg[0]


def test_the_dashboard_ignores_an_unknown_period(agent_client, known_calls):
    html = agent_client.get("/", {"period": "forever"}).content.decode()
    assert re.search(r'id="stat-placed"[^>]*>7<', html)


def test_each_rate_in_the_tables_names_what_it_counts(agent_client, known_calls):
    html = agent_client.get("/", {"period": "today"}).content.decode()
    expected = EXPECTED["today"]
    # The tables show calls placed; a rate counts only those with an outcome: it says so.
    assert "Rate: answered of the calls with an outcome" in text_of(html)
    cells = re.findall(
        r'<td class="num" title="(\d+) of (\d+) with an outcome">([\d.]+)%</td>', html
    )
    assert len(cells) == len(expected.by_bridge) + len(expected.by_flow)
    for answered, settled, rate in cells:
        assert float(rate) == round(100 * int(answered) / int(settled), 1)


def test_the_charts_parts_are_named_in_the_legends_words(agent_client, known_calls):
    html = agent_client.get("/", {"period": "today"}).content.decode()

    svg = re.search(r"<svg\b.*?</svg>", html, re.S)[0]
    parts = re.findall(r'class="seg-(\w+)"><title>\d+:00 ([^:]+): \d+</title>', svg)
    legend = dict(re.findall(r'<li><i class="seg-(\w+)"></i>([^<]+)</li>', html))
    assert parts and legend["no_answer"] == "no answer" and legend["canceled"] == "hung up"
    assert all(words == legend[bucket] for bucket, words in parts), parts
    assert not any("_" in words for _, words in parts)
