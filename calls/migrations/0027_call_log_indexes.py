from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0026_api_key_of_calls"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="calllog",
            index=models.Index(
                fields=["status", "bridge", "flow", "created_by"], name="call_status_filters"
            ),
        ),
    ]
