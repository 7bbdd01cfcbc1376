# Sends in the worker (issue 19): the circuit breaker's pause reason and count; the notice it posts.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('calls', '0012_provider_list_reads'),
    ]

    operations = [
        migrations.AddField(
            model_name='campaign',
            name='paused_reason',
            field=models.CharField(blank=True, editable=False, max_length=300),
        ),
        migrations.AddField(
            model_name='campaign',
            name='provider_failures',
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AlterField(
            model_name='notice',
            name='kind',
            field=models.CharField(choices=[('campaign_finished', 'a campaign finished'), ('failures', 'failures passed your threshold'), ('low_balance', 'calls refused for lack of balance'), ('unreadable_optouts', 'opt-outs the provider listed could not be read'), ('campaign_paused', 'a campaign paused itself')], max_length=20),
        ),
    ]
