"""Signed callbacks: endpoints, the outbox of events, each delivery and its attempts; notices
of an endpoint disabled after days of failure."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('calls', '0021_audit_actions_for_keys'),
    ]

    operations = [
        migrations.CreateModel(
            name='CallbackDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('given_up_at', models.DateTimeField(blank=True, null=True)),
                ('last_status_code', models.PositiveSmallIntegerField(blank=True, null=True)),
                ('last_error', models.CharField(blank=True, max_length=200)),
                ('ordering_key', models.CharField(blank=True, max_length=64)),
            ],
            options={
                'verbose_name_plural': 'callback deliveries',
                'ordering': ['-event_id', 'pk'],
            },
        ),
        migrations.CreateModel(
            name='CallbackEndpoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('url', models.CharField(help_text='http(s) only', max_length=2000, verbose_name='URL')),
                ('description', models.CharField(blank=True, max_length=100)),
                ('event_types', models.JSONField(default=list, help_text='The events this endpoint hears of')),
                ('sealed_secret', models.TextField(editable=False)),
                ('sealed_previous_secret', models.TextField(blank=True, editable=False)),
                ('previous_secret_expires_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('enabled', models.BooleanField(default=True)),
                ('disabled_at', models.DateTimeField(blank=True, null=True)),
                ('disabled_reason', models.CharField(blank=True, max_length=200)),
                ('failing_since', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'verbose_name': 'callback endpoint',
                'ordering': ['url', 'pk'],
            },
        ),
        migrations.CreateModel(
            name='CallbackEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('message_id', models.CharField(max_length=40, unique=True)),
                ('type', models.CharField(choices=[('call.settled', 'call settled (it has its outcome)'), ('call.answered', 'call answered'), ('call.not_reached', 'call not reached (no answer, busy, failed…)'), ('keypress.received', 'keys pressed on a call'), ('campaign.finished', 'campaign finished (or canceled)'), ('number.opted_out', 'number opted out')], max_length=32)),
                ('payload', models.JSONField(default=dict)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('ordering_key', models.CharField(blank=True, max_length=64)),
            ],
            options={
                'ordering': ['-id'],
            },
        ),
        migrations.AlterField(
            model_name='notice',
            name='kind',
            field=models.CharField(choices=[('campaign_finished', 'a campaign finished'), ('failures', 'failures passed your threshold'), ('low_balance', 'calls refused for lack of balance'), ('unreadable_optouts', 'opt-outs the provider listed could not be read'), ('campaign_paused', 'a campaign paused itself'), ('callbacks_disabled', 'a callback endpoint was disabled')], max_length=20),
        ),
        migrations.CreateModel(
            name='CallbackAttempt',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField()),
                ('attempted_at', models.DateTimeField()),
                ('status_code', models.PositiveSmallIntegerField(blank=True, null=True)),
                ('duration_ms', models.PositiveIntegerField()),
                ('error', models.CharField(blank=True, max_length=200)),
                ('delivery', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attempt_log', to='calls.callbackdelivery')),
            ],
            options={
                'ordering': ['-attempted_at', '-pk'],
            },
        ),
        migrations.AddField(
            model_name='callbackdelivery',
            name='endpoint',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='calls.callbackendpoint'),
        ),
        migrations.AddField(
            model_name='callbackdelivery',
            name='event',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='calls.callbackevent'),
        ),
        migrations.AddIndex(
            model_name='callbackdelivery',
            index=models.Index(condition=models.Q(('delivered_at', None), ('given_up_at', None)), fields=['next_attempt_at'], name='callback_due'),
        ),
        migrations.AddIndex(
            model_name='callbackdelivery',
            index=models.Index(condition=models.Q(('delivered_at', None), ('given_up_at', None)), fields=['endpoint', 'ordering_key', 'event'], name='callback_order'),
        ),
        migrations.AddConstraint(
            model_name='callbackdelivery',
            constraint=models.UniqueConstraint(fields=('endpoint', 'event'), name='callback_once_per_endpoint'),
        ),
    ]
