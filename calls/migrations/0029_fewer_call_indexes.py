"""Fewer indexes on the calls table: each one is written again whenever a call's status
changes (an UPDATE that changes an indexed column cannot be HOT), and eight served nothing that
another index leading with the same column does not serve too:

- `to` (and its pattern index): call_to_bridge_recent leads with it;
- `created_at`: call_dashboard leads with it; `campaign`: call_campaign_status and
  call_campaign_dialled do; `retry_of`: call_one_attempt does;
- `provider_id` (and its pattern index): looked up by provider_key, never by it;
- the pattern index of `to_reversed`: the ending search reads it as a range, which the plain
  index serves (PostgreSQL made the pattern indexes; SQLite has none).

Dropped by name (IF EXISTS), not by AlterField, which on SQLite rebuilds the calls table and loses
its roll-up triggers (0008). Undone, the plain indexes come back on both, the pattern ones on
PostgreSQL."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

PLAIN = {
    "calls_calllog_to_a4e1fdf7": "to",
    "calls_calllog_provider_id_7d6f4791": "provider_id",
    "calls_calllog_created_at_5064b0f2": "created_at",
    "calls_calllog_campaign_id_2d035d46": "campaign_id",
    "calls_calllog_retry_of_id_7fddb324": "retry_of_id",
}
PATTERN = {
    "calls_calllog_to_a4e1fdf7_like": "to",
    "calls_calllog_provider_id_7d6f4791_like": "provider_id",
    "calls_calllog_to_reversed_a892e5d4_like": "to_reversed",
}


def drop(apps, schema_editor):
    for name in (*PLAIN, *PATTERN):
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


def make_again(apps, schema_editor):
    for name, column in PLAIN.items():
        schema_editor.execute(f'CREATE INDEX {name} ON calls_calllog ("{column}")')
    if schema_editor.connection.vendor == "postgresql":
        for name, column in PATTERN.items():
            schema_editor.execute(
                f'CREATE INDEX {name} ON calls_calllog ("{column}" varchar_pattern_ops)'
            )


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0028_catalogue_filter_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(drop, make_again)],
            state_operations=[
                migrations.AlterField(
                    model_name="calllog",
                    name="campaign",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="calls",
                        to="calls.campaign",
                    ),
                ),
                migrations.AlterField(
                    model_name="calllog",
                    name="created_at",
                    field=models.DateTimeField(default=django.utils.timezone.now),
                ),
                migrations.AlterField(
                    model_name="calllog",
                    name="provider_id",
                    field=models.CharField(blank=True, max_length=128),
                ),
                migrations.AlterField(
                    model_name="calllog",
                    name="retry_of",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="retries",
                        to="calls.calllog",
                    ),
                ),
                migrations.AlterField(
                    model_name="calllog",
                    name="to",
                    field=models.CharField(help_text="e.g. 918867135123", max_length=20),
                ),
            ],
        ),
    ]
