"""The words every layer shares, each defined once: a call's statuses and their groups, the key of
a provider id, and the form field that carries a flow variable. No ORM, no HTTP."""

from django.db import models

MASK = "******"
# The keys a phone's keypad can send (the provider's `dtmf`).
KEYPAD = "0123456789*#"


class CallStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    REJECTED = "rejected", "Rejected"
    ERROR = "error", "Not sent"
    UNKNOWN = "unknown", "Unknown"
    ANSWERED = "answered", "Answered"
    NO_ANSWER = "no_answer", "No answer"
    BUSY = "busy", "Busy"
    CANCELED = "canceled", "Canceled"
    FAILED = "failed", "Failed"
    # A call never sent because it was withdrawn (its campaign canceled or ended, a retry the
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
FINAL = frozenset(CallStatus) - IN_FLIGHT
# What the POST to outgoing/send can come back as.
SUBMISSION_RESULTS = frozenset(
    {CallStatus.QUEUED, CallStatus.REJECTED, CallStatus.ERROR, CallStatus.UNKNOWN}
)
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


def provider_key(provider_id: str) -> str:
    """The provider's call id without the legacy `:n` suffix, so `<uuid>:1` and `<uuid>` match;
    lower case, so ids match (and are searched by prefix on an index) whatever their case."""
    return provider_id.split(":")[0].lower()


VARIABLE_FIELD_PREFIX = "variables["


def variable_field(name: str) -> str:
    """The form and API field that carries a flow variable: `variables[Name]`."""
    return f"{VARIABLE_FIELD_PREFIX}{name}]"


def variable_of(field: str) -> str | None:
    """The variable a `variables[Name]` field carries; None for any other field."""
    if field.startswith(VARIABLE_FIELD_PREFIX) and field.endswith("]"):
        return field[len(VARIABLE_FIELD_PREFIX) : -1]
    return None
