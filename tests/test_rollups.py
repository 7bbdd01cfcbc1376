"""The dashboard's roll-ups (calls/rollups.py): whatever path changes a call, the tallies equal a
full recount of the calls; folding and rebuilding keep them so; concurrent submissions, outcomes
and folds lose nothing; and the dashboard read from them equals the old scan of every call."""

import io
import json
import random
import threading
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Sum
from django.db.models.functions import ExtractHour
from django.utils import timezone

from calls.models import Bridge, CallEvent, CallLog, CallTally
from calls.models.events import apply_waiting
from calls.provider.base import SendResult
from calls.reports import build_dashboard, period_start
from calls.rollups import (
    KEY,
    QUARTERS_A_DAY,
    SUMS,
    drop_trigger_sql,
    ensure_tallies,
    fold_tallies,
    placed_by_hour,
    placed_groups,
    quarter,
)
from tests.clock import pinned_now
from tests.helpers.campaigns import running_campaign
from tests.helpers.engine import job
from tests.helpers.webhooks import BRIDGE, push

Sums = tuple[int, ...]  # n, timed, seconds, cost (ten-thousandths), priced


def recount() -> dict[tuple, Sums]:
    """The tallies as they should be: every placed call counted again, here in Python."""
    counted: defaultdict[tuple, list] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for call in CallLog.objects.exclude(submitted_at=None).values():
        bucket = quarter(call["created_at"])
        dims = (
            call["bridge_id"],
            call["flow_id"] or 0,
            call["audio_id"] or 0,
            call["status"],
            call["provider_status"],
            call["http_status"] or 0,
        )
        duration, cost = call["duration"], call["cost"]
        units = int((cost or 0) * 10_000)
        full = (1, duration is not None, duration or 0, units, cost is not None)
        for key, sums in [
            (("q", bucket, *dims), full),
            (("d", bucket // QUARTERS_A_DAY * QUARTERS_A_DAY, *dims), full),
            (("s", bucket, 0, 0, 0, call["status"], "", 0), (1, 0, 0, 0, 0)),
        ]:
            for i, value in enumerate(sums):
                counted[key][i] += value
    return {key: tuple(sums) for key, sums in counted.items()}


def tallied() -> dict[tuple, Sums]:
    rows = CallTally.objects.values_list(*KEY).annotate(*(Sum(s) for s in SUMS)).order_by()
    return {tuple(row[: len(KEY)]): row[len(KEY) :] for row in rows if any(row[len(KEY) :])}


def assert_counted() -> dict[tuple, Sums]:
    expected = recount()
    assert tallied() == expected
    return expected


@pytest.fixture
def other_bridge(db) -> Bridge:
    return Bridge.objects.create(number="912262345678", label="Mumbai")


def placed(bridge, flow, **fields) -> CallLog:
    fields = {"status": "queued", "submitted_at": pinned_now(), **fields}
    return CallLog.objects.create(bridge=bridge, flow=flow, to="918867135123", **fields)


# --- every path that changes a call -----------------------------------------------------------


def test_a_call_is_counted_once_its_post_begins_and_with_its_answer(bridge, otp_flow):
    call = CallLog.objects.create(bridge=bridge, flow=otp_flow, to="918867135123")
    assert assert_counted() == {}  # pending, never sent: not a call placed

    assert call.begin_sending()
    assert assert_counted()[("s", quarter(call.created_at), 0, 0, 0, "pending", "", 0)][0] == 1

    result = SendResult(status="rejected", http_status=422, cost=Decimal("0.5"), error="no")
    call.record_submission(result, {})
    counted = assert_counted()
    dims = (bridge.pk, otp_flow.pk, 0, "rejected", "", 422)
    assert counted[("q", quarter(call.created_at), *dims)] == (1, 0, 0, 5000, 1)


def test_an_outcome_from_the_webhook_moves_the_call_to_its_outcome(make_call):
    call = make_call(submitted_at=pinned_now())
    before = assert_counted()

    body = json.dumps(push(status="ANSWER", duration="23")).encode()
    CallEvent.objects.ingest(source=CallEvent.Source.WEBHOOK, body=body)

    counted = assert_counted()
    assert counted != before
    day = quarter(call.created_at) // QUARTERS_A_DAY * QUARTERS_A_DAY
    key = ("d", day, call.bridge_id, call.flow_id, 0, "answered", "ANSWER", 0)
    assert counted[key][:3] == (1, 1, 23)


def test_the_sweeper_and_a_retry_move_the_call_and_take_it_out(bridge, otp_flow):
    began = pinned_now() - timedelta(hours=1)
    stuck = placed(bridge, otp_flow, status="pending", submitted_at=began)
    failed = placed(bridge, otp_flow, status="error")
    assert_counted()

    assert CallLog.objects.recover_abandoned(pinned_now()) == (0, 1)
    counted = assert_counted()
    assert ("s", quarter(stuck.created_at), 0, 0, 0, "unknown", "", 0) in counted

    assert failed.reopen_for_retry()  # never sent: no longer a call placed
    counted = assert_counted()
    assert sum(n for key, (n, *_) in counted.items() if key[0] == "s") == 1


def test_stop_and_delete_of_a_campaign_count_its_calls_right(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=3)
    first = campaign.calls.order_by("id").first()
    assert first.begin_sending()
    first.record_submission(SendResult(status="queued", provider_id=str(uuid.uuid4())), {})
    assert campaign.stop()
    assert sum(n for (kind, *_), (n, *_) in assert_counted().items() if kind == "d") == 1

    campaign.delete()  # its calls go with it

    assert assert_counted() == {}


def test_bulk_writes_and_admin_edits_are_counted(bridge, other_bridge, otp_flow, sound):
    now = pinned_now()
    CallLog.objects.bulk_create(
        [
            CallLog(bridge=bridge, audio=sound, to="918867135123", status=status, submitted_at=at)
            for status, at in [("queued", now), ("answered", now), ("pending", None)]
        ]
    )
    assert_counted()

    moved = CallLog.objects.filter(status="answered").update(
        bridge=other_bridge, created_at=now - timedelta(days=3), duration=40, cost=Decimal("1.25")
    )
    assert moved == 1
    counted = assert_counted()
    assert any(key[2] == other_bridge.pk and sums[2] == 40 for key, sums in counted.items())

    CallLog.objects.filter(status="queued").delete()
    CallLog.objects.filter(status="answered").update(submitted_at=None)
    assert assert_counted() == {}


def test_changes_to_columns_not_counted_write_no_tally(bridge, otp_flow):
    call = placed(bridge, otp_flow)
    rows = CallTally.objects.count()

    CallLog.objects.filter(pk=call.pk).update(error="x", lease_until=pinned_now(), attempts=2)
    CallLog.objects.filter(pk=call.pk).update(submitted_at=pinned_now())  # still placed

    assert CallTally.objects.count() == rows


# --- folding, rebuilding, repairing --------------------------------------------------------


def test_folding_keeps_the_sums_in_one_row_per_key_and_drops_zeros(bridge, other_bridge, otp_flow):
    calls = [placed(bridge, otp_flow, cost=Decimal("0.1")) for _ in range(5)]
    CallLog.objects.filter(pk__in=[c.pk for c in calls[:3]]).update(status="answered")
    gone = placed(other_bridge, otp_flow)
    gone.delete()
    counted = assert_counted()
    rows = CallTally.objects.count()

    assert fold_tallies() == rows - len(counted)

    assert tallied() == counted
    assert CallTally.objects.count() == len(counted)
    assert not CallTally.objects.filter(folded=False).exists()
    assert not CallTally.objects.filter(bridge_id=other_bridge.pk).exists()
    assert fold_tallies() == 0  # nothing new to fold


def test_rebuild_recounts_every_call(bridge, otp_flow):
    for status in ["answered", "busy", "answered"]:
        placed(bridge, otp_flow, status=status, duration=10)
    counted = assert_counted()
    CallTally.objects.filter(kind="d").delete()
    CallTally.objects.create(kind="q", bucket=1, status="busy", n=7)

    out = io.StringIO()
    call_command("rebuild_rollups", stdout=out)

    assert tallied() == counted
    assert not CallTally.objects.filter(folded=False).exists()
    assert "2 by day, 2 by quarter hour, 2 by quarter hour and status" in out.getvalue()


def test_lost_triggers_are_put_back_after_migrating_and_the_calls_recounted(bridge, otp_flow):
    """SQLite drops them when a migration remakes the calls table."""
    placed(bridge, otp_flow)
    with connection.cursor() as cursor:
        for sql in drop_trigger_sql(connection.vendor):
            cursor.execute(sql)
    placed(bridge, otp_flow, status="busy")  # not counted: no trigger

    ensure_tallies()

    assert_counted()
    placed(bridge, otp_flow, status="failed")
    assert_counted()


def test_the_fold_runs_every_minute():
    assert job("tallies").every() == timedelta(minutes=1)


# --- concurrency ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_submissions_outcomes_and_folds_lose_nothing(bridge, other_bridge, otp_flow):
    """Real on PostgreSQL (CI runs the suite there too): four workers place, answer, retry and
    edit calls at random, through the model's own methods and the deliveries' batch applier,
    while folds run; the tallies then equal a full recount."""
    bridges = [bridge, other_bridge]
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            start.wait(timeout=10)
            for _ in range(40):
                act(rng)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def act(rng: random.Random) -> None:
        step = rng.choice(["create", "submit", "submit", "outcome", "outcome", "other"])
        if step == "create":
            to = f"9188671{rng.randrange(10**5):05d}"
            created = pinned_now() - timedelta(minutes=rng.randrange(3 * 24 * 60))
            CallLog.objects.create(
                bridge=rng.choice(bridges), flow=otp_flow, to=to, created_at=created
            )
        elif step == "submit":
            call = CallLog.objects.filter(status="pending", submitted_at=None).order_by("?").first()
            if call and call.begin_sending():
                status = rng.choice(["queued", "queued", "rejected", "error", "unknown"])
                cost = rng.choice([None, Decimal("0.5"), Decimal("1.25")])
                result = SendResult(
                    status=status,
                    http_status={"queued": 200, "rejected": 422}.get(status),
                    provider_id=str(uuid.uuid4()) if status == "queued" else "",
                    cost=cost,
                )
                call.record_submission(result, {})
        elif step == "outcome":
            for call in CallLog.objects.exclude(provider_id="").order_by("?")[:3]:
                status = rng.choice(["ANSWER", "NOANSWER", "BUSY", "CONGESTION"])
                delivery = push(
                    mid=call.provider_id,
                    to=call.to,
                    bridge=BRIDGE,
                    status=status,
                    duration=str(rng.randrange(1, 90)),
                    start_at=f"2026-11-20 10:{rng.randrange(60):02d}:00",
                )
                CallEvent.objects.store(
                    source=CallEvent.Source.WEBHOOK, body=json.dumps(delivery).encode()
                )
            apply_waiting()
        else:
            other = rng.choice(["retry", "edit", "fold"])
            if other == "retry":
                call = CallLog.objects.filter(status="error").order_by("?").first()
                if call:
                    call.reopen_for_retry()
            elif other == "edit":
                CallLog.objects.filter(
                    pk__in=CallLog.objects.order_by("?").values("pk")[:2]
                ).update(bridge=rng.choice(bridges))
            else:
                fold_tallies()

    # Calls waiting to be sent from the start, so every "submit" finds one however the threads
    # interleave on a loaded machine, and the mix reaches many statuses.
    for n in range(40):
        CallLog.objects.create(bridge=bridges[n % 2], flow=otp_flow, to=f"91886700{n:04d}")
    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors, errors
    counted = assert_counted()
    assert len({key[5] for key in counted}) >= 4  # the mix really moved calls around
    fold_tallies()
    assert tallied() == counted


# --- the dashboard from the tallies equals the old scan of every call ------------------------


def scanned(since: datetime) -> list[tuple]:
    """The dashboard's query before the roll-ups: one grouped scan of the period's calls."""
    return list(
        CallLog.objects.filter(created_at__gte=since, submitted_at__isnull=False)
        .annotate(hour=ExtractHour("created_at", tzinfo=timezone.get_current_timezone()))
        .values_list(
            "bridge_id", "flow_id", "audio_id", "status", "provider_status", "http_status", "hour"
        )
        .annotate(n=Count("*"), timed=Count("duration"), seconds=Sum("duration"), cost=Sum("cost"))
        .order_by()
    )


def random_calls(rng: random.Random, bridges, flow, sound, count: int) -> None:
    now = pinned_now()
    for _ in range(count):
        status, provider_status = rng.choice(
            [
                *[("answered", "ANSWER"), ("no_answer", "NOANSWER"), ("failed", "CONGESTION")],
                *[("failed", "CHANUNAVAIL"), ("queued", ""), ("rejected", ""), ("error", "")],
                *[("pending", ""), ("withdrawn", ""), ("busy", "BUSY"), ("canceled", "CANCEL")],
            ]
        )
        plays = {"flow": flow} if rng.random() < 0.7 else {"audio": sound}
        CallLog.objects.create(
            bridge=rng.choice(bridges),
            to="918867135123",
            status=status,
            provider_status=provider_status,
            http_status=rng.choice([None, 200, 422, 500]),
            duration=rng.choice([None, rng.randrange(200)]) if status == "answered" else None,
            cost=rng.choice([None, Decimal(rng.randrange(1000)) / 100]),
            created_at=now - timedelta(seconds=rng.randrange(40 * 86400)),
            submitted_at=None if status in ("pending", "withdrawn") else now,
            **plays,
        )


@pytest.mark.parametrize(
    "zone", ["Asia/Kolkata", "Asia/Kathmandu", "America/Los_Angeles", "Pacific/Chatham"]
)
def test_the_dashboard_equals_the_scan_of_every_call(bridge, other_bridge, otp_flow, sound, zone):
    rng = random.Random(zone)
    random_calls(rng, [bridge, other_bridge], otp_flow, sound, 400)
    fold_tallies()
    CallLog.objects.filter(pk__in=CallLog.objects.order_by("?").values("pk")[:40]).update(
        status="busy", provider_status="BUSY"
    )
    with timezone.override(ZoneInfo(zone)):
        for period in ["today", "7d", "30d"]:
            since = period_start(period)
            groups = scanned(since)
            dims: Counter[tuple] = Counter()
            sums: defaultdict[tuple, list] = defaultdict(lambda: [0, 0, 0, None])
            hours: defaultdict[int, Counter[str]] = defaultdict(Counter)
            for *key, hour, n, timed, seconds, cost in groups:
                dims[tuple(key)] += n
                total = sums[tuple(key)]
                total[:3] = [total[0] + n, total[1] + timed, total[2] + (seconds or 0)]
                if cost is not None:  # SQLite sums decimals as floats: to their 4 places
                    total[3] = (total[3] or 0) + cost.quantize(Decimal("0.0001"))
                hours[hour][key[3]] += n
            read = {
                (g.bridge, g.flow, g.audio, g.status, g.provider_status, g.http_status): [
                    g.n,
                    g.timed,
                    g.seconds,
                    g.cost,
                ]
                for g in placed_groups(since)
            }
            assert read == dict(sums), period
            assert placed_by_hour(since, ZoneInfo(zone)) == hours, period

            board = build_dashboard(period)
            assert board.placed == sum(dims.values())
            costs = [c for *_, c in groups if c is not None]
            cent = Decimal("0.0001")
            assert board.cost == (sum(c.quantize(cent) for c in costs) if costs else None)
            by_hour = [bar["total"] for bar in board.hours]
            assert by_hour == [sum(hours[h].values()) for h in range(24)]


def test_calls_per_hour_follow_a_change_of_summer_time(bridge, sound):
    """The stretches before and after the latest DST change in New York each get their own
    offset (on a day of the change too)."""
    zone = ZoneInfo("America/New_York")
    day = pinned_now().astimezone(zone)
    while day.utcoffset() == (day - timedelta(days=1)).utcoffset():
        day -= timedelta(days=1)
    since = (day - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    expected: defaultdict[int, Counter[str]] = defaultdict(Counter)
    at = since.astimezone(UTC)
    while at < day + timedelta(days=3):
        CallLog.objects.create(
            bridge=bridge,
            audio=sound,
            to="918867135123",
            status="queued",
            created_at=at,
            submitted_at=at,
        )
        expected[at.astimezone(zone).hour]["queued"] += 1
        at += timedelta(minutes=35)

    assert placed_by_hour(since, zone) == expected
