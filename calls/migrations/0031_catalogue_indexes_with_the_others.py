"""The catalogue filters' indexes (0028) carry the other two catalogue columns as trailing keys:
walking one filter's range in the log's order, PostgreSQL checks the others in the index (an
Index Cond) and reads only the calls that match. The rarest bridge, flow and agent together (37
of 10⁷ calls) read 188k rows walking the agent's index alone (79k buffers, 240-330 ms); now 37
(1.4k buffers, 4-12 ms). Not INCLUDE columns: those are read only by an index-only scan, which
the log's query (whole rows) never is. Each index is written on the same UPDATEs as before (a
change of status is never HOT), with larger entries (387 -> 558-560 MiB each at 10⁷ calls).

RemoveIndex and AddIndex by name: no rebuild of the calls table on SQLite, whose roll-up
triggers (0008) stay."""

import django.db.models.functions.comparison
from django.conf import settings
from django.db import migrations, models

DIALLED_AT = django.db.models.functions.comparison.Coalesce("submitted_at", "created_at")
# Each index: the filter it leads with, then the other two.
CATALOGUE = {
    "call_bridge_dialled": ("bridge", "flow", "created_by"),
    "call_flow_dialled": ("flow", "bridge", "created_by"),
    "call_placed_by_dialled": ("created_by", "bridge", "flow"),
}


def keyed(name: str, lead: str, *others: str) -> migrations.AddIndex:
    columns = (models.F(lead), DIALLED_AT, models.F("id"), *map(models.F, others))
    return migrations.AddIndex(model_name="calllog", index=models.Index(*columns, name=name))


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0030_event_dedupe_key_one_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        *(migrations.RemoveIndex(model_name="calllog", name=name) for name in CATALOGUE),
        *(keyed(name, *columns) for name, columns in CATALOGUE.items()),
    ]
