"""rows_update: many rows in one UPDATE, built before it runs (before a lock), optionally guarded."""

import pytest

from calls.models import CallLog
from calls.models.bulk import rows_update
from tests.clock import pinned_now

pytestmark = pytest.mark.django_db


def test_the_write_holds_the_values_it_was_built_with_and_names_the_rows_it_wrote(make_call):
    calls = [make_call("a"), make_call("b")]
    for call in calls:
        call.error = f"built {call.pk}"
    write = rows_update(calls, ["error"])
    calls[0].error = "changed after it was built"

    assert write() == {call.pk for call in calls}
    assert dict(CallLog.objects.values_list("pk", "error")) == {
        c.pk: f"built {c.pk}" for c in calls
    }


def test_while_null_writes_only_the_rows_whose_column_is_still_empty(make_call):
    now = pinned_now()
    calls = [make_call("a", submitted_at=None), make_call("b", submitted_at=None)]
    for call in calls:
        call.submitted_at, call.error = now, "written"
    write = rows_update(calls, ["submitted_at", "error"], while_null="submitted_at")
    CallLog.objects.filter(pk=calls[0].pk).update(submitted_at=now, error="another was first")

    assert write() == {calls[1].pk}
    assert dict(CallLog.objects.values_list("pk", "error")) == {
        calls[0].pk: "another was first",
        calls[1].pk: "written",
    }


def test_a_guard_on_a_field_it_does_not_write_is_refused(make_call):
    with pytest.raises(ValueError, match="not among the fields"):
        rows_update([make_call("a")], ["error"], while_null="submitted_at")


def test_no_rows_write_nothing():
    assert rows_update([], ["error"])() == set()
