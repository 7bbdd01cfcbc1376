import django.db.models.deletion
from django.db import migrations, models
from django.db.models import F
from django.db.models.functions import Coalesce



def provider_key(provider_id: str) -> str:
    """calls.vocabulary.provider_key as it was when this migration was written (frozen)."""
    return provider_id.split(":")[0].lower()


def mark_stored_as_applied(apps: object, schema_editor: object) -> None:
    """Every event stored before this change was applied when it came; their ids' keys let a
    call that learns its id later find them."""
    event_model = apps.get_model("calls", "CallEvent")  # type: ignore[attr-defined]
    event_model.objects.update(applied_at=F("received_at"))
    waiting = event_model.objects.exclude(provider_id="").only("provider_id")
    for event in waiting.iterator(chunk_size=2000):
        event.provider_key = provider_key(event.provider_id)
        event.save(update_fields=["provider_key"])


class Migration(migrations.Migration):
    dependencies = [("calls", "0006_withdrawn_calls")]

    operations = [
        migrations.AddField(
            model_name="callevent",
            name="applied_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When the deliveries worker read it (empty: waiting).",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="callevent",
            name="provider_key",
            field=models.CharField(blank=True, editable=False, max_length=128),
        ),
        migrations.RunPython(mark_stored_as_applied, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="callevent",
            index=models.Index(
                condition=models.Q(("applied_at", None)), fields=["id"], name="event_waiting"
            ),
        ),
        # The webhook's INSERT writes only the indexes it needs: the others are partial.
        migrations.AlterField(
            model_name="callevent",
            name="call",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="events",
                to="calls.calllog",
            ),
        ),
        migrations.AlterField(
            model_name="callevent",
            name="provider_id",
            field=models.CharField(blank=True, max_length=128),
        ),
        migrations.AddIndex(
            model_name="callevent",
            index=models.Index(
                condition=models.Q(("call__isnull", False)), fields=["call"], name="event_call"
            ),
        ),
        migrations.AddIndex(
            model_name="callevent",
            index=models.Index(
                condition=models.Q(("provider_id", ""), _negated=True),
                fields=["provider_id"],
                name="event_provider_id",
            ),
        ),
        migrations.AddIndex(
            model_name="callevent",
            index=models.Index(
                condition=models.Q(("call", None), models.Q(("provider_key", ""), _negated=True)),
                fields=["provider_key"],
                name="event_unmatched_key",
            ),
        ),
        # The call log's order: most recently dialled first (calls/paging.py).
        migrations.AddIndex(
            model_name="calllog",
            index=models.Index(
                Coalesce("submitted_at", "created_at"), models.F("id"), name="call_dialled"
            ),
        ),
        migrations.AddIndex(
            model_name="calllog",
            index=models.Index(
                models.F("campaign"),
                Coalesce("submitted_at", "created_at"),
                models.F("id"),
                name="call_campaign_dialled",
            ),
        ),
    ]
