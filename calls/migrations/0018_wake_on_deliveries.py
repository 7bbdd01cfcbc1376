"""On PostgreSQL, a webhook delivery stored (or queued to be applied again) sends a notice on
`obd_deliveries` at its commit, which wakes a waiting engine (calls/engine/wakeup.py). A trigger,
so the webhook door's one INSERT stays one statement; notices in one transaction fold into one.
SQLite has no notices: its engines poll."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

CREATE = """
CREATE FUNCTION calls_callevent_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('obd_deliveries', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER calls_callevent_wake
    AFTER INSERT OR UPDATE OF applied_at ON calls_callevent
    FOR EACH ROW WHEN (NEW.applied_at IS NULL)
    EXECUTE FUNCTION calls_callevent_wake();
"""
DROP = """
DROP TRIGGER IF EXISTS calls_callevent_wake ON calls_callevent;
DROP FUNCTION IF EXISTS calls_callevent_wake();
"""


def create_trigger(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_trigger(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0017_export_flavour"),
    ]

    operations = [migrations.RunPython(create_trigger, drop_trigger)]
