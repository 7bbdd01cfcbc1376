"""A flow as the admin edits it: its keys' names typed one a line (`1 = confirm`)."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from calls.models import IvrFlow
from calls.vocabulary import KEYPAD

MAX_NAME = 40  # a name fits the results' chart and the do-not-call reason


class KeypadChoicesField(forms.CharField):
    """`1 = confirm` a line, stored as {"1": "confirm"}; each key of the keypad at most once."""

    widget = forms.Textarea(attrs={"rows": 4, "placeholder": "1 = confirm\n9 = stop calling me"})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return "\n".join(f"{key} = {name}" for key, name in value.items())
        return value

    def clean(self, value: Any) -> dict[str, str]:
        choices: dict[str, str] = {}
        for number, line in enumerate(str(super().clean(value)).splitlines(), 1):
            if not line.strip():
                continue
            key, sep, name = (part.strip() for part in line.partition("="))
            if not sep or len(key) != 1 or key not in KEYPAD or not name:
                raise ValidationError(
                    f"Line {number}: write a key of the keypad, “=”, and what it means, "
                    "e.g. 1 = confirm."
                )
            if key in choices:
                raise ValidationError(f"Line {number}: key {key} is named twice.")
            if len(name) > MAX_NAME:
                raise ValidationError(f"Line {number}: at most {MAX_NAME} characters a name.")
            choices[key] = name
        return choices


class IvrFlowForm(forms.ModelForm[IvrFlow]):
    choices = KeypadChoicesField(
        required=False,
        label="Keys",
        help_text="What each key means in this flow, one a line, e.g. 1 = confirm. Campaign "
        "results count answered calls by the first key pressed.",
    )

    class Meta:
        model = IvrFlow
        fields = [
            "flow_id",
            "name",
            "template",
            "sensitive_variables",
            "choices",
            "stop_key",
            "is_active",
        ]
