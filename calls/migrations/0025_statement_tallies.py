from django.db import migrations

# The SQL as it was when this migration was written (frozen: later changes live in later
# migrations and in calls.rollups, which puts the current triggers back after migrating).
# PostgreSQL only: the tallies are written once per statement from its transition tables, summed
# per key, instead of once per call changed. SQLite has no transition tables: its row triggers stay.
STATEMENT_TRIGGERS = ['DROP TRIGGER IF EXISTS calls_tally_insert ON calls_calllog',
 'DROP TRIGGER IF EXISTS calls_tally_update ON calls_calllog',
 'DROP TRIGGER IF EXISTS calls_tally_delete ON calls_calllog',
 'CREATE OR REPLACE FUNCTION calls_tally() RETURNS trigger LANGUAGE plpgsql\n'
 '            AS $$ BEGIN\n'
 "                IF TG_OP = 'INSERT' THEN INSERT INTO calls_calltally (kind, bucket, bridge_id, "
 'flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, cost, priced, '
 'folded) SELECT t.kind, t.bucket, t.bridge_id, t.flow_id, t.audio_id, t.status, '
 't.provider_status, t.http_status, SUM(t.n), SUM(t.timed), SUM(t.seconds), SUM(t.cost), '
 'SUM(t.priced), FALSE FROM (SELECT 1 AS sign, created_at, bridge_id, flow_id, audio_id, status, '
 'provider_status, http_status, duration, cost, submitted_at FROM came) AS r CROSS JOIN LATERAL '
 "(VALUES ('q', floor(extract(epoch FROM r.created_at) / 900)::integer, r.bridge_id, "
 'COALESCE(r.flow_id, 0), COALESCE(r.audio_id, 0), r.status, r.provider_status, '
 'COALESCE(r.http_status, 0), r.sign, CASE WHEN r.duration IS NULL THEN 0 ELSE r.sign END, r.sign '
 '* COALESCE(r.duration, 0), r.sign * CAST(ROUND(COALESCE(r.cost, 0) * 10000) AS BIGINT), CASE '
 "WHEN r.cost IS NULL THEN 0 ELSE r.sign END), ('d', floor(extract(epoch FROM r.created_at) / "
 '900)::integer / 96 * 96, r.bridge_id, COALESCE(r.flow_id, 0), COALESCE(r.audio_id, 0), r.status, '
 'r.provider_status, COALESCE(r.http_status, 0), r.sign, CASE WHEN r.duration IS NULL THEN 0 ELSE '
 'r.sign END, r.sign * COALESCE(r.duration, 0), r.sign * CAST(ROUND(COALESCE(r.cost, 0) * 10000) '
 "AS BIGINT), CASE WHEN r.cost IS NULL THEN 0 ELSE r.sign END), ('s', floor(extract(epoch FROM "
 "r.created_at) / 900)::integer, 0, 0, 0, r.status, '', 0, r.sign, 0, 0, 0, 0)) AS t (kind, "
 'bucket, bridge_id, flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, '
 'cost, priced) WHERE r.submitted_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 HAVING SUM(t.n) '
 '<> 0 OR SUM(t.timed) <> 0 OR SUM(t.seconds) <> 0 OR SUM(t.cost) <> 0 OR SUM(t.priced) <> 0;\n'
 "                ELSIF TG_OP = 'DELETE' THEN INSERT INTO calls_calltally (kind, bucket, "
 'bridge_id, flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, cost, '
 'priced, folded) SELECT t.kind, t.bucket, t.bridge_id, t.flow_id, t.audio_id, t.status, '
 't.provider_status, t.http_status, SUM(t.n), SUM(t.timed), SUM(t.seconds), SUM(t.cost), '
 'SUM(t.priced), FALSE FROM (SELECT -1 AS sign, created_at, bridge_id, flow_id, audio_id, status, '
 'provider_status, http_status, duration, cost, submitted_at FROM gone) AS r CROSS JOIN LATERAL '
 "(VALUES ('q', floor(extract(epoch FROM r.created_at) / 900)::integer, r.bridge_id, "
 'COALESCE(r.flow_id, 0), COALESCE(r.audio_id, 0), r.status, r.provider_status, '
 'COALESCE(r.http_status, 0), r.sign, CASE WHEN r.duration IS NULL THEN 0 ELSE r.sign END, r.sign '
 '* COALESCE(r.duration, 0), r.sign * CAST(ROUND(COALESCE(r.cost, 0) * 10000) AS BIGINT), CASE '
 "WHEN r.cost IS NULL THEN 0 ELSE r.sign END), ('d', floor(extract(epoch FROM r.created_at) / "
 '900)::integer / 96 * 96, r.bridge_id, COALESCE(r.flow_id, 0), COALESCE(r.audio_id, 0), r.status, '
 'r.provider_status, COALESCE(r.http_status, 0), r.sign, CASE WHEN r.duration IS NULL THEN 0 ELSE '
 'r.sign END, r.sign * COALESCE(r.duration, 0), r.sign * CAST(ROUND(COALESCE(r.cost, 0) * 10000) '
 "AS BIGINT), CASE WHEN r.cost IS NULL THEN 0 ELSE r.sign END), ('s', floor(extract(epoch FROM "
 "r.created_at) / 900)::integer, 0, 0, 0, r.status, '', 0, r.sign, 0, 0, 0, 0)) AS t (kind, "
 'bucket, bridge_id, flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, '
 'cost, priced) WHERE r.submitted_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 HAVING SUM(t.n) '
 '<> 0 OR SUM(t.timed) <> 0 OR SUM(t.seconds) <> 0 OR SUM(t.cost) <> 0 OR SUM(t.priced) <> 0;\n'
 '                ELSE INSERT INTO calls_calltally (kind, bucket, bridge_id, flow_id, audio_id, '
 'status, provider_status, http_status, n, timed, seconds, cost, priced, folded) SELECT t.kind, '
 't.bucket, t.bridge_id, t.flow_id, t.audio_id, t.status, t.provider_status, t.http_status, '
 'SUM(t.n), SUM(t.timed), SUM(t.seconds), SUM(t.cost), SUM(t.priced), FALSE FROM (SELECT -1 AS '
 'sign, created_at, bridge_id, flow_id, audio_id, status, provider_status, http_status, duration, '
 'cost, submitted_at FROM gone UNION ALL SELECT 1 AS sign, created_at, bridge_id, flow_id, '
 'audio_id, status, provider_status, http_status, duration, cost, submitted_at FROM came) AS r '
 "CROSS JOIN LATERAL (VALUES ('q', floor(extract(epoch FROM r.created_at) / 900)::integer, "
 'r.bridge_id, COALESCE(r.flow_id, 0), COALESCE(r.audio_id, 0), r.status, r.provider_status, '
 'COALESCE(r.http_status, 0), r.sign, CASE WHEN r.duration IS NULL THEN 0 ELSE r.sign END, r.sign '
 '* COALESCE(r.duration, 0), r.sign * CAST(ROUND(COALESCE(r.cost, 0) * 10000) AS BIGINT), CASE '
 "WHEN r.cost IS NULL THEN 0 ELSE r.sign END), ('d', floor(extract(epoch FROM r.created_at) / "
 '900)::integer / 96 * 96, r.bridge_id, COALESCE(r.flow_id, 0), COALESCE(r.audio_id, 0), r.status, '
 'r.provider_status, COALESCE(r.http_status, 0), r.sign, CASE WHEN r.duration IS NULL THEN 0 ELSE '
 'r.sign END, r.sign * COALESCE(r.duration, 0), r.sign * CAST(ROUND(COALESCE(r.cost, 0) * 10000) '
 "AS BIGINT), CASE WHEN r.cost IS NULL THEN 0 ELSE r.sign END), ('s', floor(extract(epoch FROM "
 "r.created_at) / 900)::integer, 0, 0, 0, r.status, '', 0, r.sign, 0, 0, 0, 0)) AS t (kind, "
 'bucket, bridge_id, flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, '
 'cost, priced) WHERE r.submitted_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 HAVING SUM(t.n) '
 '<> 0 OR SUM(t.timed) <> 0 OR SUM(t.seconds) <> 0 OR SUM(t.cost) <> 0 OR SUM(t.priced) <> 0;\n'
 '                END IF;\n'
 '                RETURN NULL;\n'
 '            END $$',
 'CREATE TRIGGER calls_tally_insert AFTER INSERT ON calls_calllog REFERENCING NEW TABLE AS came '
 'FOR EACH STATEMENT EXECUTE FUNCTION calls_tally()',
 'CREATE TRIGGER calls_tally_update AFTER UPDATE ON calls_calllog REFERENCING OLD TABLE AS gone '
 'NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION calls_tally()',
 'CREATE TRIGGER calls_tally_delete AFTER DELETE ON calls_calllog REFERENCING OLD TABLE AS gone '
 'FOR EACH STATEMENT EXECUTE FUNCTION calls_tally()']
ROW_TRIGGERS = ['DROP TRIGGER IF EXISTS calls_tally_insert ON calls_calllog',
 'DROP TRIGGER IF EXISTS calls_tally_update ON calls_calllog',
 'DROP TRIGGER IF EXISTS calls_tally_delete ON calls_calllog',
 'CREATE OR REPLACE FUNCTION calls_tally() RETURNS trigger LANGUAGE plpgsql\n'
 '            AS $$ BEGIN\n'
 "                IF TG_OP <> 'INSERT' THEN INSERT INTO calls_calltally (kind, bucket, bridge_id, "
 'flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, cost, priced, '
 "folded) SELECT 'q', floor(extract(epoch FROM OLD.created_at) / 900)::integer, OLD.bridge_id, "
 'COALESCE(OLD.flow_id, 0), COALESCE(OLD.audio_id, 0), OLD.status, OLD.provider_status, '
 'COALESCE(OLD.http_status, 0), -1, CASE WHEN OLD.duration IS NULL THEN 0 ELSE -1 END, -1 * '
 'COALESCE(OLD.duration, 0), -1 * CAST(ROUND(COALESCE(OLD.cost, 0) * 10000) AS BIGINT), CASE WHEN '
 'OLD.cost IS NULL THEN 0 ELSE -1 END, FALSE WHERE OLD.submitted_at IS NOT NULL UNION ALL SELECT '
 "'d', floor(extract(epoch FROM OLD.created_at) / 900)::integer / 96 * 96, OLD.bridge_id, "
 'COALESCE(OLD.flow_id, 0), COALESCE(OLD.audio_id, 0), OLD.status, OLD.provider_status, '
 'COALESCE(OLD.http_status, 0), -1, CASE WHEN OLD.duration IS NULL THEN 0 ELSE -1 END, -1 * '
 'COALESCE(OLD.duration, 0), -1 * CAST(ROUND(COALESCE(OLD.cost, 0) * 10000) AS BIGINT), CASE WHEN '
 'OLD.cost IS NULL THEN 0 ELSE -1 END, FALSE WHERE OLD.submitted_at IS NOT NULL UNION ALL SELECT '
 "'s', floor(extract(epoch FROM OLD.created_at) / 900)::integer, 0, 0, 0, OLD.status, '', 0, -1, "
 '0, 0, 0, 0, FALSE WHERE OLD.submitted_at IS NOT NULL; END IF;\n'
 "                IF TG_OP <> 'DELETE' THEN INSERT INTO calls_calltally (kind, bucket, bridge_id, "
 'flow_id, audio_id, status, provider_status, http_status, n, timed, seconds, cost, priced, '
 "folded) SELECT 'q', floor(extract(epoch FROM NEW.created_at) / 900)::integer, NEW.bridge_id, "
 'COALESCE(NEW.flow_id, 0), COALESCE(NEW.audio_id, 0), NEW.status, NEW.provider_status, '
 'COALESCE(NEW.http_status, 0), 1, CASE WHEN NEW.duration IS NULL THEN 0 ELSE 1 END, 1 * '
 'COALESCE(NEW.duration, 0), 1 * CAST(ROUND(COALESCE(NEW.cost, 0) * 10000) AS BIGINT), CASE WHEN '
 'NEW.cost IS NULL THEN 0 ELSE 1 END, FALSE WHERE NEW.submitted_at IS NOT NULL UNION ALL SELECT '
 "'d', floor(extract(epoch FROM NEW.created_at) / 900)::integer / 96 * 96, NEW.bridge_id, "
 'COALESCE(NEW.flow_id, 0), COALESCE(NEW.audio_id, 0), NEW.status, NEW.provider_status, '
 'COALESCE(NEW.http_status, 0), 1, CASE WHEN NEW.duration IS NULL THEN 0 ELSE 1 END, 1 * '
 'COALESCE(NEW.duration, 0), 1 * CAST(ROUND(COALESCE(NEW.cost, 0) * 10000) AS BIGINT), CASE WHEN '
 'NEW.cost IS NULL THEN 0 ELSE 1 END, FALSE WHERE NEW.submitted_at IS NOT NULL UNION ALL SELECT '
 "'s', floor(extract(epoch FROM NEW.created_at) / 900)::integer, 0, 0, 0, NEW.status, '', 0, 1, 0, "
 '0, 0, 0, FALSE WHERE NEW.submitted_at IS NOT NULL; END IF;\n'
 '                RETURN NULL;\n'
 '            END $$',
 'CREATE OR REPLACE TRIGGER calls_tally_insert AFTER INSERT ON calls_calllog FOR EACH ROW WHEN '
 '(NEW.submitted_at IS NOT NULL) EXECUTE FUNCTION calls_tally()',
 'CREATE OR REPLACE TRIGGER calls_tally_update AFTER UPDATE ON calls_calllog FOR EACH ROW WHEN '
 '(OLD.created_at IS DISTINCT FROM NEW.created_at OR OLD.bridge_id IS DISTINCT FROM NEW.bridge_id '
 'OR OLD.flow_id IS DISTINCT FROM NEW.flow_id OR OLD.audio_id IS DISTINCT FROM NEW.audio_id OR '
 'OLD.status IS DISTINCT FROM NEW.status OR OLD.provider_status IS DISTINCT FROM '
 'NEW.provider_status OR OLD.http_status IS DISTINCT FROM NEW.http_status OR OLD.duration IS '
 'DISTINCT FROM NEW.duration OR OLD.cost IS DISTINCT FROM NEW.cost OR (OLD.submitted_at IS NULL) '
 '<> (NEW.submitted_at IS NULL)) EXECUTE FUNCTION calls_tally()',
 'CREATE OR REPLACE TRIGGER calls_tally_delete AFTER DELETE ON calls_calllog FOR EACH ROW WHEN '
 '(OLD.submitted_at IS NOT NULL) EXECUTE FUNCTION calls_tally()']


def _run(schema_editor, statements):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def per_statement(apps, schema_editor):
    _run(schema_editor, STATEMENT_TRIGGERS)


def per_row(apps, schema_editor):
    _run(schema_editor, ROW_TRIGGERS)


class Migration(migrations.Migration):
    dependencies = [("calls", "0024_event_lean_row")]

    operations = [migrations.RunPython(per_statement, per_row)]
