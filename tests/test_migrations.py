"""Migrations that rewrite stored words (calls/migrations/0016): a campaign stored as canceled
is stopped, its audit says so, a schedule taken off has its own word, and rows set aside keep
their campaign; undone, the old words come back."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("calls", "0015_engine_schedule")]
AFTER = [("calls", "0016_one_word_one_meaning")]


def migrate(to: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(to)
    return executor.loader.project_state(to).apps


@pytest.mark.django_db(transaction=True)
def test_0016_stops_canceled_campaigns_and_keeps_their_rows_set_aside():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("calls")
    old = migrate(BEFORE)
    try:
        bridge = old.get_model("calls", "Bridge").objects.create(number="918068287602")
        audio = old.get_model("calls", "AudioAsset").objects.create(
            name="Reminder", sound_id="39888925-718e-43bb-a8b1-d4a3c0de0001"
        )
        Campaign = old.get_model("calls", "Campaign")
        made = {"bridge": bridge, "audio": audio, "pace": 1}
        canceled = Campaign.objects.create(name="a", status="canceled", rows_rejected=1, **made)
        finished = Campaign.objects.create(name="b", status="finished", **made)
        old.get_model("calls", "RejectedRow").objects.create(campaign=canceled, line=2, reason="x")
        audit = old.get_model("calls", "AuditEntry").objects
        audit.create(campaign=canceled, action="canceled")
        audit.create(
            campaign=finished, action="canceled", detail="Only its schedule: back to a draft."
        )

        new = migrate(AFTER)

        statuses = dict(new.get_model("calls", "Campaign").objects.values_list("name", "status"))
        assert statuses == {"a": "stopped", "b": "finished"}
        stopped = new.get_model("calls", "Campaign").objects.get(name="a")
        assert stopped.rows_set_aside == 1 and stopped.set_aside_rows.get().line == 2
        entries = new.get_model("calls", "AuditEntry").objects.order_by("id")
        assert list(entries.values_list("action", "detail")) == [
            ("stopped", ""),
            ("unscheduled", ""),
        ]

        back = migrate(BEFORE)
        assert back.get_model("calls", "Campaign").objects.get(name="a").status == "canceled"
        assert list(
            back.get_model("calls", "AuditEntry")
            .objects.order_by("id")
            .values_list("action", "detail")
        ) == [("canceled", ""), ("canceled", "Only its schedule: back to a draft.")]
    finally:
        migrate(latest)


@pytest.mark.django_db(transaction=True)
def test_0026_gives_calls_and_campaigns_made_through_the_api_their_key_from_the_audit():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("calls")
    old = migrate([("calls", "0025_statement_tallies")])
    try:
        key = old.get_model("calls", "ApiKey").objects.create(name="CRM", prefix="ab", key_hash="x")
        user = old.get_model("auth", "User").objects.create(username="asha")
        bridge = old.get_model("calls", "Bridge").objects.create(number="918068287602")
        audio = old.get_model("calls", "AudioAsset").objects.create(
            name="Reminder", sound_id="39888925-718e-43bb-a8b1-d4a3c0de0001"
        )
        Campaign, CallLog = old.get_model("calls", "Campaign"), old.get_model("calls", "CallLog")
        audit = old.get_model("calls", "AuditEntry").objects
        made = {"bridge": bridge, "audio": audio}
        by_key = Campaign.objects.create(name="by key", pace=1, **made)
        by_asha = Campaign.objects.create(name="by asha", pace=1, created_by=user, **made)
        audit.create(campaign=by_key, action="created", api_key=key)
        audit.create(campaign=by_asha, action="created", actor=user)
        single = CallLog.objects.create(to="918867135123", **made)
        audit.create(call=single, action="placed", api_key=key)
        for campaign in (by_key, by_asha):
            CallLog.objects.create(to="918867135124", campaign=campaign, **made)
        CallLog.objects.create(to="918867135125", created_by=user, **made)

        new = migrate([("calls", "0026_api_key_of_calls")])

        campaigns = new.get_model("calls", "Campaign").objects.values_list("name", "api_key")
        assert dict(campaigns) == {"by key": key.pk, "by asha": None}
        calls = new.get_model("calls", "CallLog").objects.order_by("id")
        assert list(calls.values_list("api_key", flat=True)) == [key.pk, key.pk, None, None]
    finally:
        migrate(latest)


def _calls_indexes() -> set[str]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "calls_calllog")
    return {name for name, spec in found.items() if spec["index"] or spec["unique"]}


def _calls_triggers() -> set[str]:
    sql = (
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'calls_calllog'"
        if connection.vendor == "sqlite"
        else "SELECT tgname FROM pg_trigger WHERE tgrelid = 'calls_calllog'::regclass"
        " AND NOT tgisinternal"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_0028_orders_the_catalogue_filters_indexes_and_keeps_the_calls_triggers():
    ordered = {"call_bridge_dialled", "call_flow_dialled", "call_placed_by_dialled"}
    plain = {
        "calls_calllog_bridge_id_135fd928",
        "calls_calllog_flow_id_1e51e729",
        "calls_calllog_created_by_id_84b3019f",
    }
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("calls")
    triggers = _calls_triggers()
    assert triggers, "the roll-up triggers are on the calls table"
    assert ordered <= _calls_indexes() and not plain & _calls_indexes()
    try:
        migrate([("calls", "0027_call_log_indexes")])
        assert plain <= _calls_indexes() and not ordered & _calls_indexes()
    finally:
        migrate(latest)
    assert ordered <= _calls_indexes() and not plain & _calls_indexes()
    assert _calls_triggers() == triggers


@pytest.mark.django_db(transaction=True)
def test_0029_drops_the_indexes_others_lead_with_the_same_column_and_keeps_the_triggers():
    dropped = {
        "calls_calllog_to_a4e1fdf7",
        "calls_calllog_provider_id_7d6f4791",
        "calls_calllog_created_at_5064b0f2",
        "calls_calllog_campaign_id_2d035d46",
        "calls_calllog_retry_of_id_7fddb324",
    }
    leading = {
        "call_to_bridge_recent",
        "call_dashboard",
        "call_campaign_status",
        "call_one_attempt",
    }
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("calls")
    triggers = _calls_triggers()
    assert leading <= _calls_indexes() and not dropped & _calls_indexes()
    try:
        migrate([("calls", "0028_catalogue_filter_indexes")])
        assert dropped <= _calls_indexes()
    finally:
        migrate(latest)
    assert leading <= _calls_indexes() and not dropped & _calls_indexes()
    assert _calls_triggers() == triggers


def _index_sql(name: str) -> str:
    sql = (
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = %s"
        if connection.vendor == "sqlite"
        else "SELECT pg_get_indexdef(%s::regclass)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [name])
        return str(cursor.fetchone()[0]).replace('"', "")


@pytest.mark.django_db(transaction=True)
def test_0031_gives_each_catalogue_index_the_other_two_columns_and_keeps_the_triggers() -> None:
    others = {
        "call_bridge_dialled": ("flow_id", "created_by_id"),
        "call_flow_dialled": ("bridge_id", "created_by_id"),
        "call_placed_by_dialled": ("bridge_id", "flow_id"),
    }

    def carried() -> dict[str, bool]:
        return {
            name: _index_sql(name).endswith(f"id, {', '.join(columns)})")
            for name, columns in others.items()
        }

    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("calls")
    triggers = _calls_triggers()
    assert all(carried().values())
    try:
        migrate([("calls", "0030_event_dedupe_key_one_index")])
        assert not any(carried().values())
    finally:
        migrate(latest)
    assert all(carried().values())
    assert _calls_triggers() == triggers
