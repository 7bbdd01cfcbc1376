"""The dedupe key keeps one index, its unique one. On PostgreSQL, Django gives a unique CharField
a second index (`varchar_pattern_ops`, for LIKE 'x%'): nothing looks a dedupe key up by its
prefix, and the door's INSERT and the worker's write-back of each event paid for a second
64-character entry. Dropped by its frozen name; Django drops it with IF EXISTS if the field
changes later. SQLite has no such index."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

INDEX = "calls_callevent_dedupe_key_d69c65c3_like"


def drop_index(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'DROP INDEX IF EXISTS "{INDEX}"')


def create_index(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "calls_callevent" '
            '("dedupe_key" varchar_pattern_ops)'
        )


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0029_fewer_call_indexes"),
    ]

    operations = [migrations.RunPython(drop_index, create_index)]
