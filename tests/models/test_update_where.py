"""update_where: one guarded UPDATE, its SQL written once per shape (the send path's statements)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from calls.models import CallLog, Campaign
from calls.models.bulk import update_where
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
