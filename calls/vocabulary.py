"""The words every layer shares, each defined once: a call's statuses and their groups, the key of
a provider id, and the form field that carries a flow variable. No ORM, no HTTP."""

from django.db import models

MASK = "******"
# The keys a phone's keypad can send (the provider's `dtmf`).
KEYPAD = "0123456789*#"


class CallStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    REJECTED = "rejected", "Refused"  # by the provider: the call never left
    ERROR = "error", "Not sent"
    UNKNOWN = "unknown", "Unknown"
    ANSWERED = "answered", "Answered"
    NO_ANSWER = "no_answer", "No answer"
    BUSY = "busy", "Busy"
    # The provider's word (kept as it is stored): the caller hung up before the answer.
    CANCELED = "canceled", "Hung up"
    FAILED = "failed", "Failed"
    # A call never sent because it was withdrawn (its campaign stopped or ended, a retry the
    # policy no longer allows, a scheduled call canceled; its error says which): no outcome,
    # unlike `canceled` (the provider's word for a caller who hung up before the answer).
    WITHDRAWN = "withdrawn", "Not sent (withdrawn)"


# What the customer's phone did: the provider told us, by webhook or status look-up.
OUTCOMES = frozenset(
    {
        CallStatus.ANSWERED,
        CallStatus.NO_ANSWER,
        CallStatus.BUSY,
        CallStatus.CANCELED,
        CallStatus.FAILED,
    }
)
# Not settled yet: stored and not answered, accepted by the provider, or fate unknown.
IN_FLIGHT = frozenset({CallStatus.PENDING, CallStatus.QUEUED, CallStatus.UNKNOWN})
# Settled one way or another: an outcome, or refused, or never sent (or withdrawn).
SETTLED = frozenset(CallStatus) - IN_FLIGHT
# Sent (or maybe sent) and its outcome not known yet: what a status look-up asks about.
AWAITING_OUTCOME = frozenset({CallStatus.QUEUED, CallStatus.UNKNOWN})
# What the POST to outgoing/send can come back as.
SUBMISSION_RESULTS = frozenset(
    {CallStatus.QUEUED, CallStatus.REJECTED, CallStatus.ERROR, CallStatus.UNKNOWN}
)
# The POST did not get the call accepted: refused, never sent, or its answer lost.
NOT_ACCEPTED = frozenset({CallStatus.REJECTED, CallStatus.ERROR, CallStatus.UNKNOWN})
# The phone never rang: the provider refused the call, or it was never sent.
NEVER_RANG = frozenset({CallStatus.REJECTED, CallStatus.ERROR})
# The outcomes a campaign's retry may follow. Never: answered, refused by the provider, or a
# number on the do-not-call list (those rows are never sent at all).
RETRYABLE = (CallStatus.NO_ANSWER, CallStatus.BUSY, CallStatus.FAILED)
# The outcomes "call the unanswered again" offers, and those it ticks at first.
CALL_AGAIN_OUTCOMES = (
    CallStatus.NO_ANSWER,
    CallStatus.BUSY,
    CallStatus.FAILED,
    CallStatus.CANCELED,
)
CALL_AGAIN_TICKED = (CallStatus.NO_ANSWER, CallStatus.BUSY)
# Failures, for the dashboard: refused, never sent, fate unknown, or failed on the network.
FAILURES = (CallStatus.REJECTED, CallStatus.ERROR, CallStatus.UNKNOWN, CallStatus.FAILED)
# The order pages list outcomes in.
OUTCOME_ORDER = (
    CallStatus.ANSWERED,
    CallStatus.NO_ANSWER,
    CallStatus.BUSY,
    CallStatus.CANCELED,
    CallStatus.FAILED,
)
# Shown in a campaign's counts only when some call has them.
RARE = frozenset({CallStatus.ERROR, CallStatus.CANCELED, CallStatus.WITHDRAWN})


class CampaignStatus(models.TextChoices):
    IMPORTING = "importing", "Importing"  # its CSV is being read: nothing may start it yet
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    FINISHED = "finished", "Finished"
    STOPPED = "stopped", "Stopped"


# Started and not ended: the schedule's work (start, end, retries) concerns these.
CAMPAIGN_UNDER_WAY = frozenset(
    {CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED}
)
# Its calls may still be sent or retried.
CAMPAIGN_SENDING = frozenset({CampaignStatus.RUNNING, CampaignStatus.PAUSED})
# Over: nothing more is sent; its numbers may be called again in a new campaign.
CAMPAIGN_ENDED = frozenset({CampaignStatus.FINISHED, CampaignStatus.STOPPED})
# Something moves: its page refreshes itself.
CAMPAIGN_MOVING = frozenset({CampaignStatus.RUNNING, CampaignStatus.IMPORTING})


# The provider's words for an outcome, in ours; any other final word means the call failed.
PROVIDER_OUTCOMES = {
    "ANSWER": CallStatus.ANSWERED,
    "ANSWERED": CallStatus.ANSWERED,
    "COMPLETED": CallStatus.ANSWERED,
    "NOANSWER": CallStatus.NO_ANSWER,
    "NO_ANSWER": CallStatus.NO_ANSWER,
    "MISSED": CallStatus.NO_ANSWER,
    "BUSY": CallStatus.BUSY,
    "CANCEL": CallStatus.CANCELED,
    "CANCELED": CallStatus.CANCELED,
}
# The provider's words for a call not finished yet (the status API may show them): no outcome.
PROVIDER_NOT_FINAL = frozenset(
    {"QUEUED", "PENDING", "RINGING", "INITIATED", "IN-PROGRESS", "PROGRESS"}
)


# The provider's own status words, as a person says them. The provider's raw word stays stored
# (and exported) as it came; pages show these.
PROVIDER_WORDS = {
    "ANSWER": "answered",
    "ANSWERED": "answered",
    "COMPLETED": "answered",
    "NOANSWER": "rang, not answered",
    "NO_ANSWER": "rang, not answered",
    "MISSED": "rang, not answered",
    "BUSY": "line busy",
    "CANCEL": "caller hung up before the customer answered",
    "CANCELED": "caller hung up before the customer answered",
    "CONGESTION": "network congestion",
    "CHANUNAVAIL": "number unreachable (switched off or out of coverage)",
    "FAILED": "failed on the network",
    "QUEUED": "queued at the provider",
    "PENDING": "waiting at the provider",
    "INITIATED": "dialling",
    "RINGING": "ringing",
    "IN-PROGRESS": "in progress",
    "PROGRESS": "in progress",
}


def provider_words(word: str) -> str:
    """A provider status in plain words; a word we do not know is shown as it came."""
    return PROVIDER_WORDS.get(word.strip().upper(), word)


# The longest provider call id we keep (the column); the documented ids are 36-character UUIDs.
MAX_ID = 128


def provider_key(provider_id: str) -> str:
    """The provider's call id without the legacy `:n` suffix, so `<uuid>:1` and `<uuid>` match;
    lower case, so ids match (and are searched by prefix on an index) whatever their case; cut
    to its column, so an id too long for it still matches the one kept."""
    # Cut first, so an id matches the one kept (cut) whatever follows; cut again, as lower
    # case may be longer.
    return provider_id[:MAX_ID].split(":")[0].lower()[:MAX_ID]


VARIABLE_FIELD_PREFIX = "variables["


def variable_field(name: str) -> str:
    """The form and API field that carries a flow variable: `variables[Name]`."""
    return f"{VARIABLE_FIELD_PREFIX}{name}]"


def variable_of(field: str) -> str | None:
    """The variable a `variables[Name]` field carries; None for any other field."""
    if field.startswith(VARIABLE_FIELD_PREFIX) and field.endswith("]"):
        return field[len(VARIABLE_FIELD_PREFIX) : -1]
    return None
