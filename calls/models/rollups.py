"""The dashboard's running tallies of calls placed, kept by database triggers (see rollups.py)."""

from django.db import models


class CallTally(models.Model):
    """A signed contribution to the count of calls placed (submitted_at set) with these
    dimensions in this bucket. The triggers on the calls table only ever insert these (+1 for a
    call's new dimensions, -1 for its old ones), never update one, so concurrent writers never
    wait on each other; `fold_tallies` later replaces each key's rows by their sum.

    A bucket is a quarter hour of created_at (UTC), numbered from the Unix epoch: whole in every
    time zone, as all of them are whole quarter hours from UTC."""

    class Kind(models.TextChoices):
        # Every dimension, per quarter: the start of a period that falls inside a UTC day.
        QUARTER = "q"
        # Every dimension, per UTC day (bucket = its first quarter): the period's whole days.
        DAY = "d"
        # Status only, per quarter: the calls-per-hour chart, in whichever zone is asked.
        SLOT = "s"

    kind = models.CharField(max_length=1, choices=Kind)
    bucket = models.IntegerField()
    # Ids, not foreign keys: a tally row must not lock or hold back its bridge, flow or audio.
    # No NULLs in the key (so keys compare with `=`): 0 stands for "none".
    bridge_id = models.BigIntegerField(default=0)
    flow_id = models.BigIntegerField(default=0)
    audio_id = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16)
    provider_status = models.CharField(max_length=32, default="")
    http_status = models.IntegerField(default=0)
    n = models.IntegerField()
    timed = models.IntegerField(default=0, help_text="Calls with a duration.")
    seconds = models.BigIntegerField(default=0)
    # In ten-thousandths of a credit (a call's cost has 4 decimal places): an integer, so sums
    # are exact on SQLite too, which keeps decimals as floats.
    cost = models.BigIntegerField(default=0)
    priced = models.IntegerField(default=0, help_text="Calls with a cost.")
    # Written by a trigger and not yet summed with the other rows of its key.
    folded = models.BooleanField(default=False)

    class Meta:
        indexes = [
            # The key, then the sums, so reading is an index-only scan on both databases.
            models.Index(
                fields=[
                    "kind",
                    "bucket",
                    "bridge_id",
                    "flow_id",
                    "audio_id",
                    "status",
                    "provider_status",
                    "http_status",
                    "n",
                    "timed",
                    "seconds",
                    "cost",
                    "priced",
                ],
                name="tally_key",
            ),
            models.Index(
                fields=["kind", "bucket"], condition=models.Q(folded=False), name="tally_unfolded"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.n:+d} {self.status} in {self.kind}{self.bucket}"
