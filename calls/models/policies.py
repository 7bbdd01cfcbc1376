"""How a campaign calls, as call centres set it: its retry policy, its schedule and its
recipients' calling hours (see hours.py for the time arithmetic)."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from calls.hours import TRAI_HOURS, CallingHours, intersect, is_indian, spans, zones_for
from calls.vocabulary import CallStatus

MAX_ATTEMPTS = 5
WEEKDAYS = ((0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun"))


def every_day() -> list[int]:
    return [day for day, _ in WEEKDAYS]


class CampaignPolicy(models.Model):
    """The retry policy, schedule and calling hours of a campaign. The defaults are the safe
    ones: one attempt (no retry), every day, no holidays, promotional (the TRAI hours apply)."""

    window_start = models.TimeField(
        null=True, blank=True, help_text="Calls wait before this time, e.g. 09:00"
    )
    window_end = models.TimeField(
        null=True, blank=True, help_text="and after this time, e.g. 20:00"
    )
    # Empty: each recipient's own zone (the number's), so a campaign across zones keeps moving.
    window_timezone = models.CharField(
        max_length=64, default="Asia/Kolkata", blank=True, help_text="Empty: the recipient's"
    )
    max_attempts = models.PositiveSmallIntegerField(
        "attempts in all",
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_ATTEMPTS)],
        help_text=f"1 (no retry) to {MAX_ATTEMPTS}, the first call included",
    )
    retry_on = models.JSONField(
        "retry on", default=list, blank=True, help_text="The outcomes that are tried again"
    )
    retry_minutes = models.PositiveIntegerField(
        "minutes between attempts",
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)],
    )
    calling_days = models.JSONField(default=every_day, help_text="0 Monday … 6 Sunday")
    # ISO dates, in the recipient's own calendar.
    holidays = models.JSONField(default=list, blank=True)
    transactional = models.BooleanField(
        default=False,
        help_text="An OTP or a delivery update: exempt from the TRAI hours for promotional "
        "calls (09:00 to 21:00 for Indian numbers)",
    )
    start_at = models.DateTimeField("start at", null=True, blank=True)
    end_at = models.DateTimeField(
        "stop at", null=True, blank=True, help_text="Rows not sent by then are not sent"
    )
    follow_up_of = models.ForeignKey(
        "calls.Campaign",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="follow_ups",
        editable=False,
    )

    class Meta:
        abstract = True

    def in_window(self, moment: datetime) -> bool:
        """Whether the campaign's own window is open; a window in each recipient's zone is
        applied row by row (`opens_for`), so the campaign as a whole is always in it."""
        if not (self.window_start and self.window_end and self.window_timezone):
            return True
        local = moment.astimezone(ZoneInfo(self.window_timezone)).time()
        if self.window_start <= self.window_end:
            return self.window_start <= local < self.window_end
        return local >= self.window_start or local < self.window_end  # a window across midnight

    @property
    def window_words(self) -> str:
        """The calling window as the pages say it: "09:00 to 20:00 Asia/Kolkata" (an en dash between), or in each
        recipient's own time when it has no zone; empty without a window."""
        if not (self.window_start and self.window_end):
            return ""
        span = f"{self.window_start:%H:%M}\N{EN DASH}{self.window_end:%H:%M}"
        return f"{span} {self.window_timezone or 'in each recipient\N{RIGHT SINGLE QUOTATION MARK}s own time'}"

    def window_closed_until(self, moment: datetime | None = None) -> str:
        """When the calling window, closed at `moment` (now), opens again, in its own zone:
        "09:00 (Asia/Kolkata)"; empty while it is open."""
        moment = moment or timezone.now()
        if self.in_window(moment):
            return ""
        return f"{self.window_opens_after(moment):%H:%M} ({self.window_timezone})"

    def window_opens_after(self, moment: datetime) -> datetime:
        """The next instant the calling window opens after `moment`."""
        assert self.window_start is not None  # asked only of a campaign with a window
        zone = ZoneInfo(self.window_timezone)
        local = moment.astimezone(zone)
        opening = local.replace(
            hour=self.window_start.hour, minute=self.window_start.minute, second=0, microsecond=0
        )
        return opening if opening > local else opening + timedelta(days=1)

    @property
    def retries(self) -> bool:
        return self.max_attempts > 1 and bool(self.retry_on)

    def may_follow(self, attempt: int) -> bool:
        """Whether another attempt may follow attempt number `attempt`, whatever its outcome."""
        return self.retries and attempt < self.max_attempts

    @property
    def retry_words(self) -> str:
        if not self.retries:
            return "No retry"
        labels = [CallStatus(status).label.lower() for status in self.retry_on]
        return (
            f"Up to {self.max_attempts} attempts on {', '.join(labels)}, "
            f"{self.retry_minutes} min apart"
        )

    @property
    def day_words(self) -> str:
        days = [label for day, label in WEEKDAYS if day in self.calling_days]
        return "every day" if len(days) == len(WEEKDAYS) else ", ".join(days)

    def trai_applies(self, number: str) -> bool:
        return settings.OBD_TRAI_PRESET and not self.transactional and is_indian(number)

    def hours_for(self, number: str) -> CallingHours:
        """The recipient's hours: the window when it is in their zone, the TRAI preset."""
        allowed = spans(None, None)
        if not self.window_timezone:
            allowed = spans(self.window_start, self.window_end)
        if self.trai_applies(number):
            allowed = intersect(allowed, spans(*TRAI_HOURS))
        return CallingHours(
            spans=tuple(allowed),
            days=frozenset(self.calling_days),
            holidays=frozenset(date.fromisoformat(day) for day in self.holidays),
        )

    def opens_for(self, number: str, moment: datetime) -> datetime | None:
        """`moment` when `number` may be called then, else when it may next; None: never."""
        fallback = self.window_timezone or settings.TIME_ZONE
        zones = zones_for(number, fallback)
        return self.hours_for(number).opens_at(moment, zones, prefer=fallback)

    def zone_words(self, number: str) -> str:
        return ", ".join(zone.key for zone in zones_for(number, settings.TIME_ZONE))
