from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("calls", "0007_stored_deliveries")]

    operations: list[migrations.operations.base.Operation] = []
