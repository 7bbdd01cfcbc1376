from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("calls", "0008_rollups")]

    operations: list[migrations.operations.base.Operation] = []
