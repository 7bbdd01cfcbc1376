"""A person's or an API key's action on a campaign (start, pause, resume, stop, unschedule):
the campaign's own move, its audit entry, and its dispatchers when it runs. One sequence for the
page and the API."""

from django.contrib.auth.models import User

from calls.engine.dispatch import start_dispatchers
from calls.models import ApiKey, AuditEntry, Campaign


def act(campaign: Campaign, action: str, user: User | None, api_key: ApiKey | None = None) -> bool:
    """Do `action`; False (nothing changed) when the campaign's status does not allow it."""
    move, recorded_as = {
        "start": (campaign.start, AuditEntry.Action.STARTED),
        "pause": (campaign.pause, AuditEntry.Action.PAUSED),
        "resume": (campaign.resume, AuditEntry.Action.RESUMED),
        "stop": (campaign.stop, AuditEntry.Action.STOPPED),
        "unschedule": (campaign.unschedule, AuditEntry.Action.UNSCHEDULED),
    }[action]
    if not move():
        return False
    AuditEntry.record(user, recorded_as, campaign=campaign, api_key=api_key)
    if action in ("start", "resume") and campaign.status == Campaign.Status.RUNNING:
        start_dispatchers(campaign)
    return True


def refused_words(campaign: Campaign, action: str) -> str:
    return f"A {campaign.get_status_display().lower()} campaign cannot {action}."
