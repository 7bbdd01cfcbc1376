from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("calls", "0009_campaign_policies")]

    operations: list[migrations.operations.base.Operation] = []
