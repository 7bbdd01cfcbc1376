"""The call log's catalogue filters (bridge, flow, placed by) each get an index in the log's own
order, replacing the plain foreign-key indexes they lead with. The plain ones are dropped by name
rather than by AlterField, which on SQLite rebuilds the calls table and loses its roll-up
triggers (0008)."""

import django.db.models.deletion
import django.db.models.functions.comparison
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0027_call_log_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS calls_calllog_bridge_id_135fd928",
                    reverse_sql='CREATE INDEX calls_calllog_bridge_id_135fd928 ON calls_calllog ("bridge_id")',
                ),
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS calls_calllog_flow_id_1e51e729",
                    reverse_sql='CREATE INDEX calls_calllog_flow_id_1e51e729 ON calls_calllog ("flow_id")',
                ),
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS calls_calllog_created_by_id_84b3019f",
                    reverse_sql='CREATE INDEX calls_calllog_created_by_id_84b3019f ON calls_calllog ("created_by_id")',
                ),
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS calls_campaign_bridge_id_574889e4",
                    reverse_sql='CREATE INDEX calls_campaign_bridge_id_574889e4 ON calls_campaign ("bridge_id")',
                ),
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS calls_campaign_flow_id_f699e222",
                    reverse_sql='CREATE INDEX calls_campaign_flow_id_f699e222 ON calls_campaign ("flow_id")',
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="calllog",
                    name="bridge",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="calls.bridge",
                    ),
                ),
                migrations.AlterField(
                    model_name="calllog",
                    name="created_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="calls",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="calllog",
                    name="flow",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="calls.ivrflow",
                    ),
                ),
                migrations.AlterField(
                    model_name="campaign",
                    name="bridge",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="calls.bridge",
                    ),
                ),
                migrations.AlterField(
                    model_name="campaign",
                    name="flow",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="calls.ivrflow",
                    ),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="calllog",
            index=models.Index(
                models.F("bridge"),
                django.db.models.functions.comparison.Coalesce("submitted_at", "created_at"),
                models.F("id"),
                name="call_bridge_dialled",
            ),
        ),
        migrations.AddIndex(
            model_name="calllog",
            index=models.Index(
                models.F("flow"),
                django.db.models.functions.comparison.Coalesce("submitted_at", "created_at"),
                models.F("id"),
                name="call_flow_dialled",
            ),
        ),
        migrations.AddIndex(
            model_name="calllog",
            index=models.Index(
                models.F("created_by"),
                django.db.models.functions.comparison.Coalesce("submitted_at", "created_at"),
                models.F("id"),
                name="call_placed_by_dialled",
            ),
        ),
    ]
