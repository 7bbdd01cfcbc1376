from django.db import migrations, models

# The SQL as it was when this migration was written (frozen: later changes live in later
# migrations and in calls.rollups, which puts the current triggers back after migrating).
POSTGRESQL = {
    'triggers': [
        "CREATE OR REPLACE FUNCTION calls_tally() RETURNS trigger LANGUAGE plpgsql\n            AS $$ BEGIN\n                IF TG_OP <> 'INSERT' THEN INSERT INTO calls_calltally (kind, bucket, bridge_id, flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, cost, priced, folded) SELECT 'q', floor(extract(epoch FROM OLD.created_at) / 900)::integer, OLD.bridge_id, COALESCE(OLD.flow_id, 0), COALESCE(OLD.audio_id, 0), OLD.status, OLD.provider_status, COALESCE(OLD.http_status, 0), -1, CASE WHEN OLD.duration IS NULL THEN 0 ELSE -1 END, -1 * COALESCE(OLD.duration, 0), -1 * CAST(ROUND(COALESCE(OLD.cost, 0) * 10000) AS BIGINT), CASE WHEN OLD.cost IS NULL THEN 0 ELSE -1 END, FALSE WHERE OLD.submitted_at IS NOT NULL UNION ALL SELECT 'd', floor(extract(epoch FROM OLD.created_at) / 900)::integer / 96 * 96, OLD.bridge_id, COALESCE(OLD.flow_id, 0), COALESCE(OLD.audio_id, 0), OLD.status, OLD.provider_status, COALESCE(OLD.http_status, 0), -1, CASE WHEN OLD.duration IS NULL THEN 0 ELSE -1 END, -1 * COALESCE(OLD.duration, 0), -1 * CAST(ROUND(COALESCE(OLD.cost, 0) * 10000) AS BIGINT), CASE WHEN OLD.cost IS NULL THEN 0 ELSE -1 END, FALSE WHERE OLD.submitted_at IS NOT NULL UNION ALL SELECT 's', floor(extract(epoch FROM OLD.created_at) / 900)::integer, 0, 0, 0, OLD.status, '', 0, -1, 0, 0, 0, 0, FALSE WHERE OLD.submitted_at IS NOT NULL; END IF;\n                IF TG_OP <> 'DELETE' THEN INSERT INTO calls_calltally (kind, bucket, bridge_id, flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, cost, priced, folded) SELECT 'q', floor(extract(epoch FROM NEW.created_at) / 900)::integer, NEW.bridge_id, COALESCE(NEW.flow_id, 0), COALESCE(NEW.audio_id, 0), NEW.status, NEW.provider_status, COALESCE(NEW.http_status, 0), 1, CASE WHEN NEW.duration IS NULL THEN 0 ELSE 1 END, 1 * COALESCE(NEW.duration, 0), 1 * CAST(ROUND(COALESCE(NEW.cost, 0) * 10000) AS BIGINT), CASE WHEN NEW.cost IS NULL THEN 0 ELSE 1 END, FALSE WHERE NEW.submitted_at IS NOT NULL UNION ALL SELECT 'd', floor(extract(epoch FROM NEW.created_at) / 900)::integer / 96 * 96, NEW.bridge_id, COALESCE(NEW.flow_id, 0), COALESCE(NEW.audio_id, 0), NEW.status, NEW.provider_status, COALESCE(NEW.http_status, 0), 1, CASE WHEN NEW.duration IS NULL THEN 0 ELSE 1 END, 1 * COALESCE(NEW.duration, 0), 1 * CAST(ROUND(COALESCE(NEW.cost, 0) * 10000) AS BIGINT), CASE WHEN NEW.cost IS NULL THEN 0 ELSE 1 END, FALSE WHERE NEW.submitted_at IS NOT NULL UNION ALL SELECT 's', floor(extract(epoch FROM NEW.created_at) / 900)::integer, 0, 0, 0, NEW.status, '', 0, 1, 0, 0, 0, 0, FALSE WHERE NEW.submitted_at IS NOT NULL; END IF;\n                RETURN NULL;\n            END $$",
        'CREATE OR REPLACE TRIGGER calls_tally_insert AFTER INSERT ON calls_calllog FOR EACH ROW WHEN (NEW.submitted_at IS NOT NULL) EXECUTE FUNCTION calls_tally()',
        'CREATE OR REPLACE TRIGGER calls_tally_update AFTER UPDATE ON calls_calllog FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at OR OLD.bridge_id IS DISTINCT FROM NEW.bridge_id OR OLD.flow_id IS DISTINCT FROM NEW.flow_id OR OLD.audio_id IS DISTINCT FROM NEW.audio_id OR OLD.status IS DISTINCT FROM NEW.status OR OLD.provider_status IS DISTINCT FROM NEW.provider_status OR OLD.http_status IS DISTINCT FROM NEW.http_status OR OLD.duration IS DISTINCT FROM NEW.duration OR OLD.cost IS DISTINCT FROM NEW.cost OR (OLD.submitted_at IS NULL) <> (NEW.submitted_at IS NULL)) EXECUTE FUNCTION calls_tally()',
        'CREATE OR REPLACE TRIGGER calls_tally_delete AFTER DELETE ON calls_calllog FOR EACH ROW WHEN (OLD.submitted_at IS NOT NULL) EXECUTE FUNCTION calls_tally()',
    ],
    'drop': [
        'DROP TRIGGER IF EXISTS calls_tally_insert ON calls_calllog',
        'DROP TRIGGER IF EXISTS calls_tally_update ON calls_calllog',
        'DROP TRIGGER IF EXISTS calls_tally_delete ON calls_calllog',
        'DROP FUNCTION IF EXISTS calls_tally()',
    ],
    'recount': [
        'DELETE FROM calls_calltally',
        "INSERT INTO calls_calltally (kind, bucket, bridge_id, flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, cost, priced, folded) SELECT 'q', floor(extract(epoch FROM created_at) / 900)::integer, bridge_id, COALESCE(flow_id, 0), COALESCE(audio_id, 0), status, provider_status, COALESCE(http_status, 0), COUNT(*), COUNT(duration), COALESCE(SUM(duration), 0), COALESCE(SUM(CAST(ROUND(cost * 10000) AS BIGINT)), 0), COUNT(cost), TRUE FROM calls_calllog WHERE submitted_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
        "INSERT INTO calls_calltally (kind, bucket, bridge_id, flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, cost, priced, folded) SELECT 'd', floor(extract(epoch FROM created_at) / 900)::integer / 96 * 96, bridge_id, COALESCE(flow_id, 0), COALESCE(audio_id, 0), status, provider_status, COALESCE(http_status, 0), COUNT(*), COUNT(duration), COALESCE(SUM(duration), 0), COALESCE(SUM(CAST(ROUND(cost * 10000) AS BIGINT)), 0), COUNT(cost), TRUE FROM calls_calllog WHERE submitted_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
        "INSERT INTO calls_calltally (kind, bucket, bridge_id, flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, cost, priced, folded) SELECT 's', floor(extract(epoch FROM created_at) / 900)::integer, 0, 0, 0, status, '', 0, COUNT(*), 0, 0, 0, 0, TRUE FROM calls_calllog WHERE submitted_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
    ],
}
SQLITE = {
    'triggers': [
        "CREATE TRIGGER IF NOT EXISTS calls_tally_insert AFTER INSERT ON calls_calllog FOR EACH ROW WHEN NEW.submitted_at IS NOT NULL BEGIN INSERT INTO calls_calltally (kind, bucket, bridge_id, flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, cost, priced, folded) SELECT 'q', CAST(strftime('%s', NEW.created_at) AS INTEGER) / 900, NEW.bridge_id, COALESCE(NEW.flow_id, 0), COALESCE(NEW.audio_id, 0), NEW.status, NEW.provider_status, COALESCE(NEW.http_status, 0), 1, CASE WHEN NEW.duration IS NULL THEN 0 ELSE 1 END, 1 * COALESCE(NEW.duration, 0), 1 * CAST(ROUND(COALESCE(NEW.cost, 0) * 10000) AS BIGINT), CASE WHEN NEW.cost IS NULL THEN 0 ELSE 1 END, FALSE WHERE NEW.submitted_at IS NOT NULL UNION ALL SELECT 'd', CAST(strftime('%s', NEW.created_at) AS INTEGER) / 900 / 96 * 96, NEW.bridge_id, COALESCE(NEW.flow_id, 0), COALESCE(NEW.audio_id, 0), NEW.status, NEW.provider_status, COALESCE(NEW.http_status, 0), 1, CASE WHEN NEW.duration IS NULL THEN 0 ELSE 1 END, 1 * COALESCE(NEW.duration, 0), 1 * CAST(ROUND(COALESCE(NEW.cost, 0) * 10000) AS BIGINT), CASE WHEN NEW.cost IS NULL THEN 0 ELSE 1 END, FALSE WHERE NEW.submitted_at IS NOT NULL UNION ALL SELECT 's', CAST(strftime('%s', NEW.created_at) AS INTEGER) / 900, 0, 0, 0, NEW.status, '', 0, 1, 0, 0, 0, 0, FALSE WHERE NEW.submitted_at IS NOT NULL; END",
        "CREATE TRIGGER IF NOT EXISTS calls_tally_update AFTER UPDATE ON calls_calllog FOR EACH ROW WHEN OLD.created_at IS NOT NEW.created_at OR OLD.bridge_id IS NOT NEW.bridge_id OR OLD.flow_id IS NOT NEW.flow_id OR OLD.audio_id IS NOT NEW.audio_id OR OLD.status IS NOT NEW.status OR OLD.provider_status IS NOT NEW.provider_status OR OLD.http_status IS NOT NEW.http_status OR OLD.duration IS NOT NEW.duration OR OLD.cost IS NOT NEW.cost OR (OLD.submitted_at IS NULL) <> (NEW.submitted_at IS NULL) BEGIN INSERT INTO calls_calltally (kind, bucket, bridge_id, flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, cost, priced, folded) SELECT 'q', CAST(strftime('%s', OLD.created_at) AS INTEGER) / 900, OLD.bridge_id, COALESCE(OLD.flow_id, 0), COALESCE(OLD.audio_id, 0), OLD.status, OLD.provider_status, COALESCE(OLD.http_status, 0), -1, CASE WHEN OLD.duration IS NULL THEN 0 ELSE -1 END, -1 * COALESCE(OLD.duration, 0), -1 * CAST(ROUND(COALESCE(OLD.cost, 0) * 10000) AS BIGINT), CASE WHEN OLD.cost IS NULL THEN 0 ELSE -1 END, FALSE WHERE OLD.submitted_at IS NOT NULL UNION ALL SELECT 'd', CAST(strftime('%s', OLD.created_at) AS INTEGER) / 900 / 96 * 96, OLD.bridge_id, COALESCE(OLD.flow_id, 0), COALESCE(OLD.audio_id, 0), OLD.status, OLD.provider_status, COALESCE(OLD.http_status, 0), -1, CASE WHEN OLD.duration IS NULL THEN 0 ELSE -1 END, -1 * COALESCE(OLD.duration, 0), -1 * CAST(ROUND(COALESCE(OLD.cost, 0) * 10000) AS BIGINT), CASE WHEN OLD.cost IS NULL THEN 0 ELSE -1 END, FALSE WHERE OLD.submitted_at IS NOT NULL UNION ALL SELECT 's', CAST(strftime('%s', OLD.created_at) AS INTEGER) / 900, 0, 0, 0, OLD.status, '', 0, -1, 0, 0, 0, 0, FALSE WHERE OLD.submitted_at IS NOT NULL;INSERT INTO calls_calltally (kind, bucket, bridge_id, flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, cost, priced, folded) SELECT 'q', CAST(strftime('%s', NEW.created_at) AS INTEGER) / 900, NEW.bridge_id, COALESCE(NEW.flow_id, 0), COALESCE(NEW.audio_id, 0), NEW.status, NEW.provider_status, COALESCE(NEW.http_status, 0), 1, CASE WHEN NEW.duration IS NULL THEN 0 ELSE 1 END, 1 * COALESCE(NEW.duration, 0), 1 * CAST(ROUND(COALESCE(NEW.cost, 0) * 10000) AS BIGINT), CASE WHEN NEW.cost IS NULL THEN 0 ELSE 1 END, FALSE WHERE NEW.submitted_at IS NOT NULL UNION ALL SELECT 'd', CAST(strftime('%s', NEW.created_at) AS INTEGER) / 900 / 96 * 96, NEW.bridge_id, COALESCE(NEW.flow_id, 0), COALESCE(NEW.audio_id, 0), NEW.status, NEW.provider_status, COALESCE(NEW.http_status, 0), 1, CASE WHEN NEW.duration IS NULL THEN 0 ELSE 1 END, 1 * COALESCE(NEW.duration, 0), 1 * CAST(ROUND(COALESCE(NEW.cost, 0) * 10000) AS BIGINT), CASE WHEN NEW.cost IS NULL THEN 0 ELSE 1 END, FALSE WHERE NEW.submitted_at IS NOT NULL UNION ALL SELECT 's', CAST(strftime('%s', NEW.created_at) AS INTEGER) / 900, 0, 0, 0, NEW.status, '', 0, 1, 0, 0, 0, 0, FALSE WHERE NEW.submitted_at IS NOT NULL; END",
        "CREATE TRIGGER IF NOT EXISTS calls_tally_delete AFTER DELETE ON calls_calllog FOR EACH ROW WHEN OLD.submitted_at IS NOT NULL BEGIN INSERT INTO calls_calltally (kind, bucket, bridge_id, flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, cost, priced, folded) SELECT 'q', CAST(strftime('%s', OLD.created_at) AS INTEGER) / 900, OLD.bridge_id, COALESCE(OLD.flow_id, 0), COALESCE(OLD.audio_id, 0), OLD.status, OLD.provider_status, COALESCE(OLD.http_status, 0), -1, CASE WHEN OLD.duration IS NULL THEN 0 ELSE -1 END, -1 * COALESCE(OLD.duration, 0), -1 * CAST(ROUND(COALESCE(OLD.cost, 0) * 10000) AS BIGINT), CASE WHEN OLD.cost IS NULL THEN 0 ELSE -1 END, FALSE WHERE OLD.submitted_at IS NOT NULL UNION ALL SELECT 'd', CAST(strftime('%s', OLD.created_at) AS INTEGER) / 900 / 96 * 96, OLD.bridge_id, COALESCE(OLD.flow_id, 0), COALESCE(OLD.audio_id, 0), OLD.status, OLD.provider_status, COALESCE(OLD.http_status, 0), -1, CASE WHEN OLD.duration IS NULL THEN 0 ELSE -1 END, -1 * COALESCE(OLD.duration, 0), -1 * CAST(ROUND(COALESCE(OLD.cost, 0) * 10000) AS BIGINT), CASE WHEN OLD.cost IS NULL THEN 0 ELSE -1 END, FALSE WHERE OLD.submitted_at IS NOT NULL UNION ALL SELECT 's', CAST(strftime('%s', OLD.created_at) AS INTEGER) / 900, 0, 0, 0, OLD.status, '', 0, -1, 0, 0, 0, 0, FALSE WHERE OLD.submitted_at IS NOT NULL; END",
    ],
    'drop': [
        'DROP TRIGGER IF EXISTS calls_tally_insert',
        'DROP TRIGGER IF EXISTS calls_tally_update',
        'DROP TRIGGER IF EXISTS calls_tally_delete',
    ],
    'recount': [
        'DELETE FROM calls_calltally',
        "INSERT INTO calls_calltally (kind, bucket, bridge_id, flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, cost, priced, folded) SELECT 'q', CAST(strftime('%s', created_at) AS INTEGER) / 900, bridge_id, COALESCE(flow_id, 0), COALESCE(audio_id, 0), status, provider_status, COALESCE(http_status, 0), COUNT(*), COUNT(duration), COALESCE(SUM(duration), 0), COALESCE(SUM(CAST(ROUND(cost * 10000) AS BIGINT)), 0), COUNT(cost), TRUE FROM calls_calllog WHERE submitted_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
        "INSERT INTO calls_calltally (kind, bucket, bridge_id, flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, cost, priced, folded) SELECT 'd', CAST(strftime('%s', created_at) AS INTEGER) / 900 / 96 * 96, bridge_id, COALESCE(flow_id, 0), COALESCE(audio_id, 0), status, provider_status, COALESCE(http_status, 0), COUNT(*), COUNT(duration), COALESCE(SUM(duration), 0), COALESCE(SUM(CAST(ROUND(cost * 10000) AS BIGINT)), 0), COUNT(cost), TRUE FROM calls_calllog WHERE submitted_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
        "INSERT INTO calls_calltally (kind, bucket, bridge_id, flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, cost, priced, folded) SELECT 's', CAST(strftime('%s', created_at) AS INTEGER) / 900, 0, 0, 0, status, '', 0, COUNT(*), 0, 0, 0, 0, TRUE FROM calls_calllog WHERE submitted_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
    ],
}


def _run(schema_editor, part):
    sql = POSTGRESQL if schema_editor.connection.vendor == "postgresql" else SQLITE
    with schema_editor.connection.cursor() as cursor:
        for statement in sql[part]:
            cursor.execute(statement)


def count_calls(apps, schema_editor):
    """The triggers that keep the tallies from now on, and the calls already there counted."""
    _run(schema_editor, "triggers")
    _run(schema_editor, "recount")


def drop_triggers(apps, schema_editor):
    _run(schema_editor, "drop")


class Migration(migrations.Migration):
    dependencies = [("calls", "0007_stored_deliveries")]

    operations = [
        migrations.CreateModel(
            name="CallTally",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(choices=[("q", "Quarter"), ("d", "Day"), ("s", "Slot")], max_length=1)),
                ("bucket", models.IntegerField()),
                ("bridge_id", models.BigIntegerField(default=0)),
                ("flow_id", models.BigIntegerField(default=0)),
                ("audio_id", models.BigIntegerField(default=0)),
                ("status", models.CharField(max_length=16)),
                ("provider_status", models.CharField(default="", max_length=32)),
                ("http_status", models.IntegerField(default=0)),
                ("n", models.IntegerField()),
                ("timed", models.IntegerField(default=0, help_text="Calls with a duration.")),
                ("seconds", models.BigIntegerField(default=0)),
                ("cost", models.BigIntegerField(default=0)),
                ("priced", models.IntegerField(default=0, help_text="Calls with a cost.")),
                ("folded", models.BooleanField(default=False)),
            ],
            options={
                "indexes": [
                    models.Index(fields=["kind", "bucket", "bridge_id", "flow_id", "audio_id", "status", "provider_status", "http_status", "n", "timed", "seconds", "cost", "priced"], name="tally_key"),
                    models.Index(condition=models.Q(("folded", False)), fields=["kind", "bucket"], name="tally_unfolded"),
                ],
            },
        ),
        migrations.RunPython(count_calls, drop_triggers),
    ]
