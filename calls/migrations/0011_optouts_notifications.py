from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("calls", "0010_keypresses_recordings")]

    operations: list[migrations.operations.base.Operation] = []
