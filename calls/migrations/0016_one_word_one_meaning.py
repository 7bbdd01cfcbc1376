"""One word, one meaning: a CSV row is "set aside" (not "rejected", the provider's refusal), a
campaign is "stopped" (not "canceled", the provider's word for a caller who hung up)."""

import django.db.models.deletion
from django.db import migrations, models

# Frozen here (not read from the models): the values as they were and as they are.
FORWARD = [
    "UPDATE calls_campaign SET status = 'stopped' WHERE status = 'canceled'",
    # A schedule taken off was recorded as a cancel with this detail; it has its own word now.
    "UPDATE calls_auditentry SET action = 'unscheduled', detail = '' "
    "WHERE action = 'canceled' AND detail = 'Only its schedule: back to a draft.'",
    "UPDATE calls_auditentry SET action = 'stopped' WHERE action = 'canceled'",
]
BACKWARD = [
    "UPDATE calls_campaign SET status = 'canceled' WHERE status = 'stopped'",
    "UPDATE calls_auditentry SET action = 'canceled' WHERE action = 'stopped'",
    "UPDATE calls_auditentry SET action = 'canceled', detail = 'Only its schedule: back to a draft.' "
    "WHERE action = 'unscheduled'",
]


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0015_engine_schedule"),
    ]

    operations = [
        migrations.RenameModel("RejectedRow", "SetAsideRow"),
        migrations.RenameField("campaign", "rows_rejected", "rows_set_aside"),
        migrations.RenameField("campaignimport", "rejected", "set_aside"),
        migrations.AlterField(
            model_name="setasiderow",
            name="campaign",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="set_aside_rows",
                to="calls.campaign",
            ),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="action",
            field=models.CharField(
                choices=[
                    ("placed", "placed the call"),
                    ("retried", "retried the call"),
                    ("created", "created the campaign"),
                    ("uploaded", "uploaded rows"),
                    ("started", "started the campaign"),
                    ("paused", "paused the campaign"),
                    ("resumed", "resumed the campaign"),
                    ("stopped", "stopped the campaign"),
                    ("unscheduled", "took the campaign off its schedule"),
                    ("canceled_call", "canceled the call before it was sent"),
                    ("sound_uploaded", "uploaded a sound"),
                    ("webhook_created", "created the provider's webhook"),
                    ("webhook_updated", "updated the provider's webhook"),
                    ("subscribed", "subscribed the webhook to an event"),
                ],
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="calllog",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("queued", "Queued"),
                    ("rejected", "Refused"),
                    ("error", "Not sent"),
                    ("unknown", "Unknown"),
                    ("answered", "Answered"),
                    ("no_answer", "No answer"),
                    ("busy", "Busy"),
                    ("canceled", "Hung up"),
                    ("failed", "Failed"),
                    ("withdrawn", "Not sent (withdrawn)"),
                ],
                default="pending",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="campaign",
            name="status",
            field=models.CharField(
                choices=[
                    ("importing", "Importing"),
                    ("draft", "Draft"),
                    ("scheduled", "Scheduled"),
                    ("running", "Running"),
                    ("paused", "Paused"),
                    ("finished", "Finished"),
                    ("stopped", "Stopped"),
                ],
                db_index=True,
                default="draft",
                max_length=16,
            ),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
