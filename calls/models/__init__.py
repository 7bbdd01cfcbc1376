"""The models, one module per seam; import them from here (`from calls.models import CallLog`)."""

from calls.models.api import ApiKey, IdempotentRequest, RateWindow
from calls.models.callbacks import (
    CallbackAttempt,
    CallbackDelivery,
    CallbackEndpoint,
    CallbackEvent,
)
from calls.models.calls import CallLog
from calls.models.campaigns import Campaign
from calls.models.catalogue import (
    INTERVAL_CHOICES,
    SENSITIVE_HINTS,
    AudioAsset,
    Bridge,
    IvrFlow,
    Playback,
)
from calls.models.engine import DispatchSeat, PeriodicJob, WorkerHeartbeat
from calls.models.events import CallEvent
from calls.models.imports import CampaignImport, SetAsideRow
from calls.models.lookups import RecordingLookup
from calls.models.notices import Notice
from calls.models.provider_checks import ProviderCheck
from calls.models.provider_lists import ProviderListRead
from calls.models.records import AuditEntry, DoNotCall, UserPreference
from calls.models.rollups import CallTally
from calls.models.sound_uploads import SoundUpload
from calls.models.submissions import FailedSubmission
from calls.vocabulary import MASK

__all__ = [
    "INTERVAL_CHOICES",
    "MASK",
    "SENSITIVE_HINTS",
    "ApiKey",
    "AudioAsset",
    "AuditEntry",
    "Bridge",
    "CallEvent",
    "CallLog",
    "CallTally",
    "CallbackAttempt",
    "CallbackDelivery",
    "CallbackEndpoint",
    "CallbackEvent",
    "Campaign",
    "CampaignImport",
    "DispatchSeat",
    "DoNotCall",
    "FailedSubmission",
    "IdempotentRequest",
    "IvrFlow",
    "Notice",
    "PeriodicJob",
    "Playback",
    "ProviderCheck",
    "ProviderListRead",
    "RateWindow",
    "RecordingLookup",
    "SetAsideRow",
    "SoundUpload",
    "UserPreference",
    "WorkerHeartbeat",
]
