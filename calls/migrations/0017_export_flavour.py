"""Each person's spreadsheet flavour for CSV downloads (byte-order mark and separator)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0016_one_word_one_meaning"),
    ]

    operations: list[migrations.operations.base.Operation] = [
        migrations.AddField(
            model_name="userpreference",
            name="export_flavour",
            field=models.CharField(
                choices=[
                    ("excel", "Excel (comma-separated, as in India, the UK and the US)"),
                    ("excel_semicolon", "Excel where lists are separated by ; (most of Europe)"),
                    (
                        "plain",
                        "Plain UTF-8, comma-separated (LibreOffice, Google Sheets, scripts)",
                    ),
                ],
                default="excel",
                max_length=16,
                verbose_name="exports open in",
            ),
        ),
    ]
