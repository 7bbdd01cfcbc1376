"""Issue 23: each provider list's last read (rows, unreadable rows) for /healthz, and the
supervisors' notice of opt-outs that could not be read."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0011_optouts_notifications"),
    ]

    operations = [
        migrations.CreateModel(
            name="ProviderListRead",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "name",
                    models.CharField(
                        choices=[
                            ("unsubscribers", "the unsubscribers list (opt-outs)"),
                            ("recordings", "the recordings list"),
                        ],
                        max_length=16,
                        unique=True,
                    ),
                ),
                ("read_at", models.DateTimeField()),
                ("rows", models.PositiveIntegerField()),
                ("unreadable", models.PositiveIntegerField()),
                ("complete", models.BooleanField()),
            ],
        ),
        migrations.AlterField(
            model_name="notice",
            name="kind",
            field=models.CharField(
                choices=[
                    ("campaign_finished", "a campaign finished"),
                    ("failures", "failures passed your threshold"),
                    ("low_balance", "calls refused for lack of balance"),
                    ("unreadable_optouts", "opt-outs the provider listed could not be read"),
                ],
                max_length=20,
            ),
        ),
    ]
