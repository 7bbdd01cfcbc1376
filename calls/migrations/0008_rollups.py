from django.db import migrations, models

from calls.rollups import drop_trigger_sql, install_triggers, rebuild_tallies


def count_calls(apps, schema_editor):
    """The triggers that keep the tallies from now on, and the calls already there counted."""
    install_triggers(schema_editor.connection)
    rebuild_tallies(schema_editor.connection)


def drop_triggers(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for sql in drop_trigger_sql(schema_editor.connection.vendor):
            cursor.execute(sql)


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
