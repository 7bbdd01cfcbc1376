"""The API key a call or campaign was made with (a campaign's rows carry its key), and the key
an endpoint hears for (none: the whole portal). Calls and campaigns made through the API before
this are given their key from the audit entry that recorded them."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('calls', '0025_statement_tallies'),
    ]

    operations = [
        migrations.AddField(
            model_name='callbackendpoint',
            name='api_key',
            field=models.ForeignKey(blank=True, help_text="Only the calls and campaigns made with this key. Empty: the whole portal's", null=True, on_delete=django.db.models.deletion.PROTECT, related_name='callback_endpoints', to='calls.apikey', verbose_name='API key'),
        ),
        migrations.AddField(
            model_name='calllog',
            name='api_key',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='calls', to='calls.apikey'),
        ),
        migrations.AddField(
            model_name='campaign',
            name='api_key',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='campaigns', to='calls.apikey'),
        ),
        migrations.RunSQL(
            [
                "UPDATE calls_campaign SET api_key_id = (SELECT MIN(a.api_key_id) "
                "FROM calls_auditentry a WHERE a.campaign_id = calls_campaign.id "
                "AND a.action = 'created') WHERE created_by_id IS NULL",
                "UPDATE calls_calllog SET api_key_id = (SELECT MIN(a.api_key_id) "
                "FROM calls_auditentry a WHERE a.call_id = calls_calllog.id "
                "AND a.action = 'placed') WHERE created_by_id IS NULL AND campaign_id IS NULL",
                "UPDATE calls_calllog SET api_key_id = (SELECT c.api_key_id FROM calls_campaign c "
                "WHERE c.id = calls_calllog.campaign_id) WHERE campaign_id IS NOT NULL "
                "AND campaign_id IN (SELECT id FROM calls_campaign WHERE api_key_id IS NOT NULL)",
            ],
            migrations.RunSQL.noop,
        ),
    ]
