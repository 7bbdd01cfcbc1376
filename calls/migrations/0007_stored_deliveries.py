from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("calls", "0006_withdrawn_calls")]

    operations: list[migrations.operations.base.Operation] = []
