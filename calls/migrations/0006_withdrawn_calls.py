"""Campaign rows never sent because their campaign was canceled get their own status,
`withdrawn`, instead of sharing `canceled` with calls the caller hung up on."""

from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def withdraw_unsent(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    CallLog = apps.get_model("calls", "CallLog")
    CallLog.objects.filter(
        status="canceled", submitted_at=None, campaign__isnull=False
    ).update(status="withdrawn")


def cancel_withdrawn(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    CallLog = apps.get_model("calls", "CallLog")
    CallLog.objects.filter(status="withdrawn").update(status="canceled")


class Migration(migrations.Migration):
    dependencies = [("calls", "0005_call_attempts")]

    operations = [
        migrations.AlterField(
            model_name="calllog",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("queued", "Queued"),
                    ("rejected", "Rejected"),
                    ("error", "Not sent"),
                    ("unknown", "Unknown"),
                    ("answered", "Answered"),
                    ("no_answer", "No answer"),
                    ("busy", "Busy"),
                    ("canceled", "Canceled"),
                    ("failed", "Failed"),
                    ("withdrawn", "Not sent (campaign canceled)"),
                ],
                default="pending",
                max_length=16,
            ),
        ),
        migrations.RunPython(withdraw_unsent, cancel_withdrawn),
    ]
