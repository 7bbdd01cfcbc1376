"""update_where: one guarded UPDATE, its SQL written once per shape (the send path's statements)."""

from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calls.models import CallLog, Campaign
from calls.models.bulk import prepared_cursor, update_where
from calls.vocabulary import CallStatus
from tests.clock import pinned_now

pytestmark = pytest.mark.django_db


def test_only_rows_holding_every_expected_value_change(make_call):
    leased = pinned_now()
    target = make_call("a", status=CallStatus.PENDING, lease_until=leased)
    other_status = make_call("b", status=CallStatus.QUEUED, lease_until=leased)
    other_lease = make_call("c", status=CallStatus.PENDING, lease_until=None)
    expected = {"status": [CallStatus.PENDING, CallStatus.UNKNOWN], "lease_until": leased}

    changed = update_where(CallLog, expected, {"error": "changed", "cost": Decimal("0.25")})

    assert changed == 1
    rows = {c.pk: (c.error, c.cost) for c in CallLog.objects.all()}
    assert rows[target.pk] == ("changed", Decimal("0.25"))
    assert rows[other_status.pk] == rows[other_lease.pk] == ("", None)


def test_none_asks_for_null_and_a_second_shape_gets_its_own_statement(make_call):
    leased = pinned_now()
    unleased = make_call("a", lease_until=None)
    make_call("b", lease_until=leased)

    assert update_where(CallLog, {"lease_until": None}, {"submitted_at": leased}) == 1
    assert update_where(CallLog, {"lease_until": leased}, {"submitted_at": None}) == 1

    assert CallLog.objects.get(pk=unleased.pk).submitted_at == leased
    assert CallLog.objects.filter(submitted_at=None).count() == 1


def test_a_condition_of_the_caller_s_own_is_added_with_its_values(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(provider_failures=2)
    over = '"provider_failures" > %s'

    assert (
        update_where(
            Campaign, {"id": campaign.pk}, {"provider_failures": 0}, also=over, also_params=[5]
        )
        == 0
    )
    assert (
        update_where(
            Campaign, {"id": campaign.pk}, {"provider_failures": 0}, also=over, also_params=[1]
        )
        == 1
    )

    campaign.refresh_from_db()
    assert campaign.provider_failures == 0


def test_a_value_is_stored_as_its_field_prepares_it(make_call):
    call = make_call("a")
    when = pinned_now() - timedelta(hours=3)

    update_where(CallLog, {"id": call.pk}, {"provider_created_at": when, "status": CallStatus.BUSY})

    call.refresh_from_db()
    assert (call.provider_created_at, call.status) == (when, "busy")


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [statement for (statement,) in cursor.fetchall()]


def test_the_statement_is_prepared_once_per_connection_on_postgresql(campaign):
    """Parsed and planned once, not for every send; on SQLite there is nothing to prepare."""
    for _ in range(3):
        update_where(Campaign, {"id": campaign.pk}, {"name": "once"})
    with CaptureQueriesContext(connection) as seen:  # still in Django's query log
        update_where(Campaign, {"id": campaign.pk}, {"name": "once"})

    assert ['UPDATE "calls_campaign"' in q["sql"] for q in seen.captured_queries] == [True]
    if connection.vendor == "postgresql":
        statement = 'UPDATE "calls_campaign" SET "name" = $1 WHERE "id" = $2'
        assert _prepared_statements().count(statement) == 1
    else:
        assert prepared_cursor().cursor.__class__.__module__.startswith(
            "django.db.backends.sqlite3"
        )


def test_behind_a_pooler_in_transaction_mode_nothing_is_prepared(campaign, monkeypatch):
    """A pooler in transaction mode may hand each transaction another server connection, where
    a statement prepared on the first does not exist: Django's DISABLE_SERVER_SIDE_CURSORS."""
    monkeypatch.setitem(connection.settings_dict, "DISABLE_SERVER_SIDE_CURSORS", True)

    for _ in range(3):
        assert update_where(Campaign, {"id": campaign.pk}, {"paused_reason": "pooled"}) == 1

    if connection.vendor == "postgresql":
        assert isinstance(prepared_cursor().cursor, psycopg.ClientCursor)
        assert not [s for s in _prepared_statements() if '"paused_reason" = $1' in s]
    else:
        assert prepared_cursor().cursor.__class__.__module__.startswith(
            "django.db.backends.sqlite3"
        )
