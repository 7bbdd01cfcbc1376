"""Campaigns as call centres run them (issue 13): retry policies (each retry a call row linked
to the first attempt, once per attempt number), schedules, the recipients' calling hours."""

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models

import calls.models.policies


class Migration(migrations.Migration):
    dependencies = [("calls", "0008_rollups")]

    operations = [
        migrations.AddField(
            model_name="calllog",
            name="attempt_number",
            field=models.PositiveSmallIntegerField(default=1, editable=False),
        ),
        migrations.AddField(
            model_name="calllog",
            name="not_before",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="calllog",
            name="retry_of",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="retries",
                to="calls.calllog",
            ),
        ),
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
                    ("withdrawn", "Not sent (withdrawn)"),
                ],
                default="pending",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="calling_days",
            field=models.JSONField(
                default=calls.models.policies.every_day, help_text="0 Monday … 6 Sunday"
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="end_at",
            field=models.DateTimeField(
                blank=True,
                help_text="Rows not sent by then are not sent",
                null=True,
                verbose_name="stop at",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="follow_up_of",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="follow_ups",
                to="calls.campaign",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="holidays",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="campaign",
            name="max_attempts",
            field=models.PositiveSmallIntegerField(
                default=1,
                help_text="1 (no retry) to 5, the first call included",
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(5),
                ],
                verbose_name="attempts in all",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="retry_minutes",
            field=models.PositiveIntegerField(
                default=30,
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(10080),
                ],
                verbose_name="minutes between attempts",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="retry_on",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="The outcomes that are tried again",
                verbose_name="retry on",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="start_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="start at"),
        ),
        migrations.AddField(
            model_name="campaign",
            name="transactional",
            field=models.BooleanField(
                default=False,
                help_text="An OTP or a delivery update: exempt from the TRAI hours for "
                "promotional calls (09:00 to 21:00 for Indian numbers)",
            ),
        ),
        migrations.AlterField(
            model_name="campaign",
            name="status",
            field=models.CharField(
                choices=[
                    ("draft", "Draft"),
                    ("scheduled", "Scheduled"),
                    ("running", "Running"),
                    ("paused", "Paused"),
                    ("finished", "Finished"),
                    ("canceled", "Canceled"),
                ],
                db_index=True,
                default="draft",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="campaign",
            name="window_timezone",
            field=models.CharField(
                blank=True,
                default="Asia/Kolkata",
                help_text="Empty: the recipient's",
                max_length=64,
            ),
        ),
        migrations.AddIndex(
            model_name="calllog",
            index=models.Index(
                condition=models.Q(
                    ("campaign", None), ("not_before__isnull", False), ("status", "pending")
                ),
                fields=["not_before"],
                name="call_scheduled",
            ),
        ),
        migrations.AddConstraint(
            model_name="calllog",
            constraint=models.UniqueConstraint(
                fields=("retry_of", "attempt_number"), name="call_one_attempt"
            ),
        ),
    ]
