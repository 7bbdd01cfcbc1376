import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0010_keypresses_recordings"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations: list[migrations.operations.base.Operation] = [
        migrations.AddField(
            model_name="donotcall",
            name="source",
            field=models.CharField(
                choices=[
                    ("manual", "added by a person"),
                    ("webhook", "opted out (provider webhook)"),
                    ("provider_list", "opted out (provider's unsubscribers list)"),
                    ("keypress", "pressed the stop key"),
                ],
                default="manual",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="userpreference",
            name="notify_campaign_finished",
            field=models.BooleanField(default=False, verbose_name="when a campaign finishes"),
        ),
        migrations.AddField(
            model_name="userpreference",
            name="notify_failures_over",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="A number of failed calls; empty: never",
                null=True,
                verbose_name="when failures in 15 minutes reach",
            ),
        ),
        migrations.AddField(
            model_name="userpreference",
            name="notify_low_balance",
            field=models.BooleanField(
                default=False,
                verbose_name="when the provider refuses calls for lack of balance",
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
                    ("canceled", "canceled the campaign"),
                    ("canceled_call", "canceled the call before it was sent"),
                    ("sound_uploaded", "uploaded a sound"),
                    ("webhook_created", "created the provider's webhook"),
                    ("webhook_updated", "updated the provider's webhook"),
                    ("subscribed", "subscribed the webhook to an event"),
                ],
                max_length=20,
            ),
        ),
        migrations.AlterModelOptions(
            name="auditentry",
            options={
                "ordering": ["-at", "-id"],
                "permissions": [("connect_provider", "Can connect the portal to the provider")],
                "verbose_name_plural": "audit entries",
            },
        ),
        migrations.CreateModel(
            name="Notice",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("campaign_finished", "a campaign finished"),
                            ("failures", "failures passed your threshold"),
                            ("low_balance", "calls refused for lack of balance"),
                        ],
                        max_length=20,
                    ),
                ),
                ("key", models.CharField(max_length=64)),
                ("title", models.CharField(max_length=200)),
                ("link", models.CharField(blank=True, max_length=200)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("read_at", models.DateTimeField(blank=True, null=True)),
                ("emailed_at", models.DateTimeField(blank=True, null=True)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="notices",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("user", "kind", "key"), name="notice_once_per_user"
                    )
                ],
            },
        ),
    ]
