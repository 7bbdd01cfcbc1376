"""The supervisor's numbers: the period's roll-ups (calls/rollups.py), rolled up in Python."""

from collections import Counter, defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict, cast

from django.utils import timezone

from calls.models import AudioAsset, Bridge, IvrFlow
from calls.rollups import placed_by_hour, placed_groups
from calls.vocabulary import FAILURES, OUTCOME_ORDER, OUTCOMES, CallStatus, provider_words

PERIODS = {"today": "Today", "7d": "Last 7 days", "30d": "Last 30 days"}
type Row = dict[str, object]  # one row or bar of a table on the dashboard page
type ContentKey = tuple[int | None, int | None]  # (flow id, audio id)


class Failure(TypedDict):
    status: str
    provider_status: str
    http_status: int | None


def period_start(period: str, now: datetime | None = None) -> datetime:
    now = timezone.localtime(now or timezone.now())
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "today": midnight,
        "7d": midnight - timedelta(days=6),
        "30d": midnight - timedelta(days=29),
    }[period]


@dataclass
class Dashboard:
    period: str
    since: datetime
    placed: int
    answered: int
    settled: int
    avg_answered_duration: float | None
    cost: object
    mix: list[tuple[str, str, int]]
    failures: list[Row]
    by_bridge: list[Row]
    by_flow: list[Row]
    hours: list[Row]

    @property
    def legend(self) -> list[tuple[str, str]]:
        """The chart's buckets: (CSS class part, words)."""
        return list(CHART_WORDS.items())

    @property
    def answer_rate(self) -> float | None:
        """Answered ÷ calls that reached a final outcome (not those still in flight or refused)."""
        return round(100 * self.answered / self.settled, 1) if self.settled else None


def build_dashboard(period: str) -> Dashboard:
    """Everything on the page from the roll-ups of the period's calls (calls/rollups.py): a few
    thousand rows at most, whatever the number of calls, rolled up here."""
    since = period_start(period)
    total: Counter[str] = Counter()
    mix: Counter[str] = Counter()
    failures: Counter[tuple[str, str, int | None]] = Counter()
    by_bridge: defaultdict[int, Counter[str]] = defaultdict(Counter)
    by_content: defaultdict[ContentKey, Counter[str]] = defaultdict(Counter)
    answered_seconds = answered_timed = 0
    cost = None
    # Calls that were sent (or tried): not campaign rows still waiting, or canceled unsent.
    for group in placed_groups(since):
        status, n = group.status, group.n
        tally = {
            "placed": n,
            "answered": n if status == CallStatus.ANSWERED else 0,
            "settled": n if status in OUTCOMES else 0,
        }
        total.update(tally)
        by_bridge[group.bridge].update(tally)
        by_content[group.flow, group.audio].update(tally)
        mix[status] += n
        if status in FAILURES:
            provider_status = group.provider_status if status == CallStatus.FAILED else ""
            failures[status, provider_status, group.http_status] += n
        if status == CallStatus.ANSWERED:
            answered_seconds += group.seconds
            answered_timed += group.timed
        if group.cost is not None:
            cost = (cost or 0) + group.cost
    hours: defaultdict[int, Counter[str]] = defaultdict(Counter)
    for hour, statuses in placed_by_hour(since, timezone.get_current_timezone()).items():
        for status, n in statuses.items():
            hours[hour][status if status in OUTCOME_ORDER else "other"] += n
    labels = dict(CallStatus.choices)
    return Dashboard(
        period=period,
        since=since,
        placed=total["placed"],
        answered=total["answered"],
        settled=total["settled"],
        avg_answered_duration=answered_seconds / answered_timed if answered_timed else None,
        cost=cost,
        mix=[(s, labels[s], mix[s]) for s in labels if mix[s]],
        failures=[
            {
                "status": s,
                "label": labels[s],
                "provider_status": p,
                "http_status": h,
                "n": n,
                "reason": _failure_reason({"status": s, "provider_status": p, "http_status": h}),
            }
            for (s, p, h), n in failures.most_common(10)
        ],
        by_bridge=_rows(by_bridge, _bridge_names(by_bridge)),
        by_flow=_rows(by_content, _content_names(by_content))[:20],
        hours=_bars(hours),
    )


def _bridge_names(groups: Collection[int]) -> dict[int, dict[str, str]]:
    bridges = Bridge.objects.in_bulk(list(groups))
    return {
        k: {"bridge__label": bridges[k].label, "bridge__number": bridges[k].number} for k in groups
    }


def _content_names(groups: Collection[ContentKey]) -> dict[ContentKey, dict[str, str | None]]:
    flows = IvrFlow.objects.in_bulk([f for f, _ in groups if f])
    audio = AudioAsset.objects.in_bulk([a for _, a in groups if a])
    return {
        (f, a): {
            "flow__name": flows[f].name if f else None,
            "audio__name": audio[a].name if a else None,
        }
        for f, a in groups
    }


def _rows[K](
    groups: Mapping[K, Counter[str]], names: Mapping[K, Mapping[str, object]]
) -> list[Row]:
    rows = []
    for key, tally in groups.items():
        rate = round(100 * tally["answered"] / tally["settled"], 1) if tally["settled"] else None
        rows.append(
            {
                **names[key],
                "placed": tally["placed"],
                "answered": tally["answered"],
                "settled": tally["settled"],
                "rate": rate,
            }
        )
    return sorted(rows, key=lambda row: -cast(int, row["placed"]))


def _failure_reason(row: Failure) -> str:
    if row["provider_status"] and row["status"] == CallStatus.FAILED:
        return provider_words(row["provider_status"])
    if row["http_status"]:
        return f"provider answered HTTP {row['http_status']}"
    reasons: dict[str, str] = {
        CallStatus.ERROR: "provider unreachable, not sent",
        CallStatus.UNKNOWN: "sent, not confirmed by the provider yet (timeout or server error)",
        CallStatus.REJECTED: "refused by the provider",
    }
    return reasons.get(row["status"], row["status"])


# The chart's buckets in the legend's words, also said when a bar's part is pointed at.
CHART_WORDS = {
    CallStatus.ANSWERED: "answered",
    CallStatus.NO_ANSWER: "no answer",
    CallStatus.BUSY: "busy",
    CallStatus.CANCELED: "hung up",
    CallStatus.FAILED: "failed",
    "other": "in flight / not sent",
}


def _bars(table: Mapping[int, Mapping[str, int]]) -> list[Row]:
    """Calls per hour of the day (portal time) by outcome, as bars for a small SVG chart."""
    table = {h: table.get(h, {}) for h in range(24)}
    peak = max((sum(v.values()) for v in table.values()), default=0) or 1
    bars: list[Row] = []
    for hour, counts in table.items():
        y: float = 160
        segments: list[Row] = []
        for bucket in [*OUTCOME_ORDER, "other"]:
            height = round(150 * counts.get(bucket, 0) / peak, 1)
            if height:
                y -= height
                segments.append(
                    {
                        "outcome": bucket,
                        "words": CHART_WORDS[bucket],
                        "y": round(y, 1),
                        "height": height,
                        "n": counts[bucket],
                    }
                )
        bars.append(
            {"hour": hour, "x": 30 + hour * 26, "total": sum(counts.values()), "segments": segments}
        )
    return bars
