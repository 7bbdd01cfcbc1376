import django.db.models.deletion
from django.db import migrations, models
from django.db.models.functions import Lower


def lower_provider_keys(apps, schema_editor):
    """Provider keys are stored lower case from now on (searched by prefix, matched by equality)."""
    CallLog = apps.get_model("calls", "CallLog")
    CallLog.objects.exclude(provider_key=Lower("provider_key")).update(
        provider_key=Lower("provider_key")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0004_user_preferences"),
    ]

    operations = [
        migrations.CreateModel(
            name="FailedSubmission",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "submitted_at",
                    models.DateTimeField(blank=True, help_text="When the POST began.", null=True),
                ),
                ("http_status", models.PositiveSmallIntegerField(blank=True, null=True)),
                ("error", models.TextField(blank=True)),
                (
                    "call",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="failed_submissions",
                        to="calls.calllog",
                    ),
                ),
            ],
            options={"ordering": ["submitted_at", "id"]},
        ),
        migrations.RunPython(lower_provider_keys, migrations.RunPython.noop),
    ]
