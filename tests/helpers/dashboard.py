"""A known set of calls over forty days, and the dashboard's numbers for it in each period."""

from dataclasses import dataclass
from decimal import Decimal

# (days ago, status, bridge, plays, duration, cost, other fields)
KNOWN_CALLS = [
    (0, "answered", "blr", "flow", 30, "1.5", {}),
    (0, "answered", "mum", "audio", 50, "1", {}),
    (0, "no_answer", "blr", "flow", None, "0.5", {}),
    (0, "busy", "blr", "flow", None, None, {}),
    (0, "queued", "blr", "flow", None, None, {}),
    (0, "rejected", "blr", "audio", None, None, {"http_status": 422}),
    (0, "error", "mum", "audio", None, None, {}),
    (3, "answered", "blr", "flow", 90, "2", {}),
    (3, "answered", "blr", "audio", 70, "0", {}),
    (3, "failed", "mum", "flow", None, None, {"provider_status": "CONGESTION"}),
    (20, "canceled", "blr", "audio", None, None, {}),
    (20, "no_answer", "mum", "audio", None, "0.25", {}),
    (40, "answered", "blr", "flow", 1000, "100", {}),  # outside every period
]


@dataclass
class Expected:
    placed: int
    answered: int
    settled: int
    rate: float
    avg_duration: float
    cost: Decimal
    by_bridge: list[tuple[str, int, int, float]]  # label, placed, answered, rate
    by_flow: list[tuple[str, int, int, float]]  # flow or audio name, placed, answered, rate
    failures: list[tuple[str, str, int | None, int]]  # status, provider status, HTTP, count
    per_hour: dict[str, int]  # outcome (or other) → calls, all in the current hour


REJECTED_422 = ("rejected", "", 422, 1)


NOT_SENT = ("error", "", None, 1)


CONGESTION = ("failed", "CONGESTION", None, 1)


EXPECTED = {
    "today": Expected(
        placed=7,
        answered=2,
        settled=4,  # queued, rejected and error have no outcome
        rate=50.0,
        avg_duration=40.0,
        cost=Decimal("3"),
        by_bridge=[("Bengaluru", 5, 1, 33.3), ("Mumbai", 2, 1, 100.0)],
        by_flow=[("Login OTP", 4, 1, 33.3), ("Reminder", 3, 1, 100.0)],
        failures=[REJECTED_422, NOT_SENT],
        per_hour={"answered": 2, "no_answer": 1, "busy": 1, "other": 3},
    ),
    "7d": Expected(
        placed=10,
        answered=4,
        settled=7,
        rate=57.1,
        avg_duration=60.0,
        cost=Decimal("5"),
        by_bridge=[("Bengaluru", 7, 3, 60.0), ("Mumbai", 3, 1, 50.0)],
        by_flow=[("Login OTP", 6, 2, 40.0), ("Reminder", 4, 2, 100.0)],
        failures=[REJECTED_422, NOT_SENT, CONGESTION],
        per_hour={"answered": 4, "no_answer": 1, "busy": 1, "failed": 1, "other": 3},
    ),
    "30d": Expected(
        placed=12,
        answered=4,
        settled=9,
        rate=44.4,
        avg_duration=60.0,
        cost=Decimal("5.25"),
        by_bridge=[("Bengaluru", 8, 3, 50.0), ("Mumbai", 4, 1, 33.3)],
        by_flow=[("Login OTP", 6, 2, 40.0), ("Reminder", 6, 2, 50.0)],
        failures=[REJECTED_422, NOT_SENT, CONGESTION],
        per_hour={
            "answered": 4,
            "no_answer": 2,
            "busy": 1,
            "canceled": 1,
            "failed": 1,
            "other": 3,
        },
    ),
}


PERIODS = list(EXPECTED)
