"""The engine's records: one beat per background process (the old single heartbeat row is
dropped: it meant "some db_worker ran the heartbeat task"), the periodic schedule, and the
seats of a campaign's dispatch tasks. The periodic tasks the old chains left queued fail once
when a worker takes them (their functions are gone); nothing is written into the queue's
tables here."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0014_background_imports"),
    ]

    operations: list[migrations.operations.base.Operation] = [
        migrations.DeleteModel(name="WorkerHeartbeat"),
        migrations.CreateModel(
            name="WorkerHeartbeat",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("process", models.CharField(max_length=64, unique=True)),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("engine", "engine"),
                            ("worker", "worker"),
                            ("deliveries", "deliveries applier"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "queues",
                    models.CharField(
                        blank=True, help_text="A worker's queues (*: all)", max_length=200
                    ),
                ),
                ("host", models.CharField(max_length=255)),
                ("pid", models.PositiveIntegerField()),
                ("started_at", models.DateTimeField()),
                ("beat_at", models.DateTimeField()),
            ],
        ),
        migrations.CreateModel(
            name="PeriodicJob",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=40, unique=True)),
                ("every", models.DurationField(help_text="As last scheduled (from the settings)")),
                ("next_run_at", models.DateTimeField()),
                ("lease_until", models.DateTimeField(blank=True, null=True)),
                (
                    "holder",
                    models.CharField(
                        blank=True, help_text="The process running it", max_length=64
                    ),
                ),
                ("last_started_at", models.DateTimeField(blank=True, null=True)),
                ("last_finished_at", models.DateTimeField(blank=True, null=True)),
                ("last_result", models.JSONField(blank=True, default=dict)),
                ("last_error", models.TextField(blank=True)),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.CreateModel(
            name="DispatchSeat",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("number", models.PositiveSmallIntegerField()),
                ("ticket", models.CharField(blank=True, max_length=32)),
                (
                    "task_id",
                    models.CharField(
                        blank=True, help_text="The queued task's result id", max_length=64
                    ),
                ),
                ("queued_at", models.DateTimeField()),
                (
                    "held_until",
                    models.DateTimeField(
                        blank=True, help_text="Empty: queued, not taken", null=True
                    ),
                ),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="seats",
                        to="calls.campaign",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("campaign", "number"), name="seat_once_a_campaign"
                    )
                ],
            },
        ),
    ]
