"""The dashboard's numbers (calls/reports.py, build_dashboard) for a known set of calls."""

import pytest
from django.utils import timezone

from calls.reports import build_dashboard
from tests.helpers.dashboard import EXPECTED, PERIODS


@pytest.mark.parametrize("period", PERIODS)
def test_the_dashboard_numbers_match_a_known_data_set(known_calls, period):
    expected = EXPECTED[period]
    board = build_dashboard(period)
    assert (board.placed, board.answered, board.settled) == (
        expected.placed,
        expected.answered,
        expected.settled,
    )
    assert board.answer_rate == expected.rate
    assert board.avg_answered_duration == pytest.approx(expected.avg_duration)
    assert board.cost == expected.cost
    assert sorted(
        (row["bridge__label"], row["placed"], row["answered"], row["rate"])
        for row in board.by_bridge
    ) == sorted(expected.by_bridge)
    assert board.by_bridge[0]["placed"] >= board.by_bridge[-1]["placed"]  # busiest first
    assert sorted(
        (row["flow__name"] or row["audio__name"], row["placed"], row["answered"], row["rate"])
        for row in board.by_flow
    ) == sorted(expected.by_flow)
    assert sorted(
        (f["status"], f["provider_status"], f["http_status"], f["n"]) for f in board.failures
    ) == sorted(expected.failures, key=str)


@pytest.mark.parametrize("period", PERIODS)
def test_the_per_hour_chart_counts_each_call_once_in_its_hour(known_calls, period):
    expected = EXPECTED[period]
    hours = build_dashboard(period).hours
    hour = timezone.localtime(known_calls).hour
    assert [bar["hour"] for bar in hours] == list(range(24))
    assert sum(bar["total"] for bar in hours) == expected.placed
    assert hours[hour]["total"] == expected.placed
    assert {seg["outcome"]: seg["n"] for seg in hours[hour]["segments"]} == expected.per_hour
    tallest = hours[hour]["segments"]
    assert sum(seg["height"] for seg in tallest) == pytest.approx(150, abs=0.5)
