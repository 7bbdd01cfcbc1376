"""The webhook door's INSERT writes one index fewer: `received_at` is not indexed (events are
listed newest first by id, given in the order deliveries arrive). The index is dropped by name,
the same on both databases; Django's own AlterField would rebuild the whole table on SQLite."""

import django.utils.timezone
from django.db import migrations, models

INDEX = "calls_callevent_received_at_e99fb86a"


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0023_sound_uploads"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="callevent",
            options={"ordering": ["-id"], "verbose_name": "call event"},
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="callevent",
                    name="received_at",
                    field=models.DateTimeField(default=django.utils.timezone.now),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{INDEX}"',
                    reverse_sql=f'CREATE INDEX "{INDEX}" ON "calls_callevent" ("received_at")',
                ),
            ],
        ),
    ]
