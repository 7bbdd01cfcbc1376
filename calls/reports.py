"""The supervisor's numbers: a handful of aggregate queries over one period, never a row loop."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Avg, Count, Q, Sum
from django.db.models.functions import ExtractHour
from django.utils import timezone

from calls.models import CallLog

PERIODS = {"today": "Today", "7d": "Last 7 days", "30d": "Last 30 days"}
OUTCOME_ORDER = ["answered", "no_answer", "busy", "canceled", "failed"]
FAILURES = ["rejected", "error", "unknown", "failed"]


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
    failures: list[dict]
    by_bridge: list[dict]
    by_flow: list[dict]
    hours: list[dict]

    @property
    def answer_rate(self) -> float | None:
        """Answered ÷ calls that reached a final outcome (not those still in flight or refused)."""
        return round(100 * self.answered / self.settled, 1) if self.settled else None


def build_dashboard(period: str) -> Dashboard:
    since = period_start(period)
    calls = CallLog.objects.filter(created_at__gte=since)
    answered = Q(status="answered")
    settled = Q(status__in=CallLog.OUTCOMES)
    totals = calls.aggregate(
        placed=Count("id"),
        answered=Count("id", filter=answered),
        settled=Count("id", filter=settled),
        avg=Avg("duration", filter=answered),
        cost=Sum("cost"),
    )
    mix_counts = dict(calls.values_list("status").annotate(n=Count("id")).order_by())
    labels = dict(CallLog.Status.choices)
    mix = [(s, labels[s], mix_counts[s]) for s in labels if mix_counts.get(s)]
    failures = [
        {**row, "reason": _failure_reason(row)}
        for row in calls.filter(status__in=FAILURES)
        .values("status", "provider_status", "http_status")
        .annotate(n=Count("id"))
        .order_by("-n")[:10]
    ]
    grouped = {
        "placed": Count("id"),
        "answered": Count("id", filter=answered),
        "settled": Count("id", filter=settled),
    }
    by_bridge = list(
        calls.values("bridge__label", "bridge__number").annotate(**grouped).order_by("-placed")
    )
    by_flow = list(
        calls.values("flow__name", "audio__name").annotate(**grouped).order_by("-placed")[:20]
    )
    for row in by_bridge + by_flow:
        row["rate"] = round(100 * row["answered"] / row["settled"], 1) if row["settled"] else None
    return Dashboard(
        period=period,
        since=since,
        placed=totals["placed"],
        answered=totals["answered"],
        settled=totals["settled"],
        avg_answered_duration=totals["avg"],
        cost=totals["cost"],
        mix=mix,
        failures=failures,
        by_bridge=by_bridge,
        by_flow=by_flow,
        hours=_hours(calls),
    )


def _failure_reason(row: dict) -> str:
    if row["provider_status"] and row["status"] == "failed":
        return f"provider says {row['provider_status']}"
    if row["http_status"]:
        return f"provider answered HTTP {row['http_status']}"
    return {
        "error": "provider unreachable, not sent",
        "unknown": "no answer from the provider",
        "rejected": "refused by the provider",
    }.get(row["status"], row["status"])


def _hours(calls) -> list[dict]:
    """Calls per hour of the day (portal time) by outcome, as bars for a small SVG chart."""
    rows = (
        calls.annotate(hour=ExtractHour("created_at", tzinfo=timezone.get_current_timezone()))
        .values_list("hour", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    table = {h: {} for h in range(24)}
    for hour, status, n in rows:
        bucket = status if status in OUTCOME_ORDER else "other"
        table[hour][bucket] = table[hour].get(bucket, 0) + n
    peak = max((sum(v.values()) for v in table.values()), default=0) or 1
    bars = []
    for hour, counts in table.items():
        y = 160
        segments = []
        for bucket in [*OUTCOME_ORDER, "other"]:
            height = round(150 * counts.get(bucket, 0) / peak, 1)
            if height:
                y -= height
                segments.append(
                    {"outcome": bucket, "y": round(y, 1), "height": height, "n": counts[bucket]}
                )
        bars.append(
            {"hour": hour, "x": 30 + hour * 26, "total": sum(counts.values()), "segments": segments}
        )
    return bars
