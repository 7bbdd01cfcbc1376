"""The REST API's own records: keys for integrations (separate from staff logins), the
responses kept for `Idempotency-Key` replays, and each key's request counts for its rate limit."""

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, models
from django.db.models import Q
from django.utils import timezone

# What a key may do: read and/or write, per resource.
RESOURCES = ("calls", "campaigns", "catalogue", "optouts")
SCOPE_CHOICES = [
    (f"{resource}:{access}", f"{access} {resource}")
    for resource in RESOURCES
    for access in ("read", "write")
]
KEY_START = "obd_"
# last_used_at is written at most this often per key: every request would be a write.
LAST_USED_EVERY = timedelta(seconds=60)


def author_words(user: object | None, api_key: "ApiKey | None") -> str:
    """Who made a call or campaign, in words: the API key it came through, or the person; ""
    for the system (a person's account removed since included)."""
    if api_key is not None:
        return api_key.shown_as
    return str(user) if user is not None else ""


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(models.Model):
    """A key another system sends as `Authorization: Bearer obd_<prefix>_<secret>`. Only the
    SHA-256 of the whole key is stored (the secret is 256 random bits, so a fast hash is
    enough); the prefix stays visible so people can tell keys apart."""

    name = models.CharField(max_length=100, unique=True, help_text="e.g. CRM order calls")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires")
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The whole key, on the instance `issue` made it for only (never saved): shown once.
    issued_key = ""
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({KEY_START}{self.prefix}_…)"

    @property
    def shown_as(self) -> str:
        """How pages name what was done with this key (the secret's prefix is for admins)."""
        return f"API key “{self.name}”"

    def issue(self) -> str:
        """Give this (unsaved) key its secret; the whole key is returned once, never stored."""
        self.prefix = secrets.token_hex(4)
        key = f"{KEY_START}{self.prefix}_{secrets.token_urlsafe(32)}"
        self.key_hash = _digest(key)
        self.issued_key = key
        return key

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    def is_usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @classmethod
    def authenticate(cls, key: str, now: datetime) -> "ApiKey | None":
        """The live key `key` is, else None. Read from the database on every request (no cache),
        so a key revoked or expired is refused on its very next request."""
        start, _, rest = key.partition("_")
        prefix, _, secret = rest.partition("_")
        if f"{start}_" != KEY_START or not prefix or not secret or len(key) > 200:
            return None
        found = cls.objects.filter(prefix=prefix).first()
        if found is None or not hmac.compare_digest(found.key_hash, _digest(key)):
            return None
        if not found.is_usable(now):
            return None
        if found.last_used_at is None or found.last_used_at < now - LAST_USED_EVERY:
            stale = Q(last_used_at=None) | Q(last_used_at__lt=now - LAST_USED_EVERY)
            cls.objects.filter(stale, pk=found.pk).update(last_used_at=now)
        return found


class IdempotentRequest(models.Model):
    """One `Idempotency-Key` a key used on a POST: the request's fingerprint and, once it is
    answered, the answer, replayed to a retry for OBD_API_IDEMPOTENCY_HOURS (Stripe's rules)."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body")
    # Empty while the first request is being answered: a retry then gets 409.
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    body = models.BinaryField(blank=True, default=b"")
    content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_key_per_api_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.response_status or 'in flight'})"


class RateWindow(models.Model):
    """How many requests a key made in one minute: a fixed-window counter in the database, so
    every web process counts against the same limit."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "minute"], name="one_window_per_minute")
        ]

    def __str__(self) -> str:
        return f"{self.api_key_id} {self.minute:%H:%M}: {self.count}"

    @classmethod
    def count_request(cls, api_key: ApiKey, now: datetime) -> tuple[int, int]:
        """Count one request in this minute's window, in one statement (two processes at once
        both count); the count so far and the seconds until the window ends."""
        minute = now.replace(second=0, microsecond=0)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO calls_ratewindow (api_key_id, minute, count) VALUES (%s, %s, 1) "
                "ON CONFLICT (api_key_id, minute) DO UPDATE SET count = calls_ratewindow.count + 1 "
                "RETURNING count",
                [api_key.pk, minute],
            )
            row = cursor.fetchone()
        assert row is not None  # RETURNING gives the row written
        left = 60 - now.second
        return int(row[0]), left


def purge_api_records(now: datetime) -> dict[str, int]:
    """Forget idempotency keys older than OBD_API_IDEMPOTENCY_HOURS and finished rate windows."""
    kept_from = now - timedelta(hours=settings.OBD_API_IDEMPOTENCY_HOURS)
    keys, _ = IdempotentRequest.objects.filter(created_at__lt=kept_from).delete()
    windows, _ = RateWindow.objects.filter(minute__lt=now - timedelta(minutes=2)).delete()
    return {"idempotency_keys": keys, "rate_windows": windows}
