"""The roll-ups' triggers on PostgreSQL fire once per statement (calls/migrations/0018): a statement
changing many calls writes their tally rows summed per key, and the tallies still equal a fresh
count of the calls, before and after folding. SQLite keeps its triggers per row: same tallies,
more rows."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Case, F, Value, When

from calls.models import CallLog, CallTally
from calls.rollups import fold_tallies, rebuild_tallies
from tests.clock import pinned_now
from tests.test_rollups import assert_counted, placed, tallied

KINDS = 3  # a call is counted by quarter, by day and in the calls-per-hour slot


def per_row(postgresql: int, sqlite: int) -> int:
    return postgresql if connection.vendor == "postgresql" else sqlite


def assert_fold_equals_a_fresh_count() -> None:
    expected = assert_counted()
    fold_tallies()
    folded = tallied()
    assert folded == expected
    assert CallTally.objects.count() == len(expected)  # one row per key
    rebuild_tallies()
    assert tallied() == folded


def test_a_bulk_update_of_many_calls_writes_one_row_per_key_and_folds_to_a_fresh_count(
    bridge, otp_flow
):
    for i in range(60):
        created = pinned_now() - timedelta(days=2 * (i % 2))
        cost = Decimal("0.1") if i % 3 else None
        placed(bridge, otp_flow, status="queued", created_at=created, cost=cost)
    assert_counted()
    before = CallTally.objects.count()

    moved = CallLog.objects.filter(bridge=bridge).update(
        status="answered", provider_status="ANSWER", duration=F("id") % 50
    )

    assert moved == 60
    # Two buckets of created_at, each: the old key out and the new key in, of each kind.
    written = CallTally.objects.count() - before
    assert written == per_row(postgresql=2 * 2 * KINDS, sqlite=60 * 2 * KINDS)
    assert_fold_equals_a_fresh_count()


def test_a_status_moved_back_and_forth_is_counted_where_it_ends(bridge, otp_flow):
    call = placed(bridge, otp_flow, status="queued")
    one = CallLog.objects.filter(pk=call.pk)

    for status in ["ringing", "queued", "answered", "queued"]:
        assert one.update(status=status) == 1
        assert_counted()

    fold_tallies()
    assert {key[0]: sums[0] for key, sums in tallied().items()} == {"q": 1, "d": 1, "s": 1}
    assert all(key[5] == "queued" for key in tallied())
    assert_fold_equals_a_fresh_count()


def test_calls_swapping_statuses_in_one_statement_write_no_tally_on_postgresql(bridge, otp_flow):
    placed(bridge, otp_flow, status="queued", created_at=pinned_now())
    placed(bridge, otp_flow, status="ringing", created_at=pinned_now())
    before = CallTally.objects.count()

    swapped = CallLog.objects.update(
        status=Case(When(status="queued", then=Value("ringing")), default=Value("queued"))
    )

    assert swapped == 2
    assert CallTally.objects.count() - before == per_row(postgresql=0, sqlite=2 * 2 * KINDS)
    assert_fold_equals_a_fresh_count()


def test_a_statement_changing_no_call_writes_no_tally(bridge, otp_flow):
    call = placed(bridge, otp_flow, status="queued")
    before = CallTally.objects.count()

    assert CallLog.objects.filter(pk=call.pk, status="ringing").update(status="answered") == 0
    CallLog.objects.filter(pk=call.pk).update(status="queued", attempts=3)  # not counted

    assert CallTally.objects.count() == before


@pytest.mark.django_db(transaction=True)
def test_undoing_the_statement_triggers_goes_on_counting_per_row(bridge, otp_flow):
    # That migration alone, undone and done again: the ones after it stay as they are.
    loader = MigrationExecutor(connection).loader
    (ours,) = [key for key in loader.disk_migrations if key[1].endswith("_tallies")]
    migration = loader.get_migration(*ours)
    with connection.schema_editor() as editor:
        migration.unapply(loader.project_state(ours), editor)
    try:
        for status in ["queued", "ringing", "queued"]:
            placed(bridge, otp_flow, status=status)
        before = CallTally.objects.count()

        CallLog.objects.update(status="busy")

        assert CallTally.objects.count() - before == 3 * 2 * KINDS
        assert_counted()
    finally:
        with connection.schema_editor() as editor:
            migration.apply(loader.project_state(ours, at_end=False), editor)
    CallLog.objects.update(status="failed")
    assert_fold_equals_a_fresh_count()
