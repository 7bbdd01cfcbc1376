"""Keypresses: the keys a customer pressed on a call (looked up after an answer, with bounded
tries and a small partial index for the look-up queue), and what each key means in a flow."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("calls", "0009_campaign_policies")]

    operations = [
        migrations.AddField(
            model_name="calllog",
            name="keypresses",
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AddField(
            model_name="calllog",
            name="keypresses_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="keypresses fetched at"),
        ),
        migrations.AddField(
            model_name="calllog",
            name="keypress_tries",
            field=models.PositiveSmallIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="calllog",
            name="keypress_retry_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddIndex(
            model_name="calllog",
            index=models.Index(
                condition=models.Q(
                    ("flow__isnull", False),
                    ("keypress_tries__lt", 3),
                    ("keypresses_at", None),
                    ("status", "answered"),
                ),
                fields=["keypress_retry_at"],
                name="call_keypresses_due",
            ),
        ),
        migrations.AddField(
            model_name="ivrflow",
            name="choices",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="ivrflow",
            name="stop_key",
            field=models.CharField(
                blank=True,
                help_text="The key that means “stop calling me”: a customer who presses it is "
                "put on the do-not-call list. Empty: none.",
                max_length=1,
            ),
        ),
    ]
