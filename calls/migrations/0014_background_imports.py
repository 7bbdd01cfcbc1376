"""CSV imports in the background (issue 19): a campaign is `importing` while a worker reads its
file, stored in the database with the import's lease, progress and resume mark."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('calls', '0013_sends_in_worker'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='campaign',
            name='status',
            field=models.CharField(choices=[('importing', 'Importing'), ('draft', 'Draft'), ('scheduled', 'Scheduled'), ('running', 'Running'), ('paused', 'Paused'), ('finished', 'Finished'), ('canceled', 'Canceled')], db_index=True, default='draft', max_length=16),
        ),
        migrations.CreateModel(
            name='CampaignImport',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('made_campaign', models.BooleanField(default=False, help_text='The campaign was created with this upload: removed with it')),
                ('filename', models.CharField(max_length=255)),
                ('size', models.PositiveIntegerField(help_text='Bytes')),
                ('content', models.BinaryField(help_text='The file; emptied once it ends')),
                ('uploaded_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('state', models.CharField(choices=[('waiting', 'Waiting for a worker'), ('reading', 'Reading'), ('undoing', 'Removing the rows read'), ('done', 'Imported'), ('failed', 'Failed'), ('canceled', 'Canceled')], db_index=True, default='waiting', max_length=16)),
                ('ending', models.CharField(blank=True, choices=[('waiting', 'Waiting for a worker'), ('reading', 'Reading'), ('undoing', 'Removing the rows read'), ('done', 'Imported'), ('failed', 'Failed'), ('canceled', 'Canceled')], max_length=16)),
                ('error', models.TextField(blank=True, help_text='Why it failed, for the person who uploaded')),
                ('holder', models.UUIDField(editable=False, null=True)),
                ('lease_until', models.DateTimeField(null=True)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('calls_before', models.BigIntegerField(default=0)),
                ('set_aside_before', models.BigIntegerField(default=0)),
                ('length', models.PositiveIntegerField(default=0, help_text="Characters of the file's text")),
                ('position', models.PositiveIntegerField(default=0, help_text='Characters read and stored')),
                ('line', models.PositiveIntegerField(default=0, help_text='Lines read and stored')),
                ('accepted', models.PositiveIntegerField(default=0)),
                ('rejected', models.PositiveIntegerField(default=0)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('campaign', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='imports', to='calls.campaign')),
                ('uploaded_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-id'],
                'get_latest_by': 'id',
            },
        ),
    ]
