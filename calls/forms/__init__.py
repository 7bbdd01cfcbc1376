"""The forms, one module per page family; import them from here (`from calls.forms import …`)."""

from calls.forms.calls import PlaceCallForm, RetryForm
from calls.forms.campaigns import CallAgainForm, CampaignForm, CsvUploadForm
from calls.forms.fields import CsvFileField, DayField, NumberField
from calls.forms.filters import CallFilterForm
from calls.forms.sounds import SoundUploadForm

__all__ = [
    "CallAgainForm",
    "CallFilterForm",
    "CampaignForm",
    "CsvFileField",
    "CsvUploadForm",
    "DayField",
    "NumberField",
    "PlaceCallForm",
    "RetryForm",
    "SoundUploadForm",
]
