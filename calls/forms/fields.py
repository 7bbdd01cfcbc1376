"""Fields the forms share: a phone number typed any usual way, a day as the pages write it, a CSV file within its size cap, a name on one line."""

import unicodedata
from collections.abc import Iterator
from datetime import date
from typing import Any, TypeVar

import phonenumbers
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Model
from django.forms.models import ModelChoiceIterator, ModelChoiceIteratorValue
from django.forms.renderers import BaseRenderer
from django.template.defaultfilters import filesizeformat
from django.utils import formats
from django.utils.functional import lazy
from django.utils.safestring import SafeString
from phonenumbers import PhoneNumberType
from phonenumbers.geocoder import country_name_for_number

from calls.escaping import escaped, joined
from calls.phone import normalize_number

M = TypeVar("M", bound=Model)


def one_line(value: str) -> str:
    """A name shown in lists, CSV exports and log lines: a line break or another control
    character in it would split or forge a line there, so it is refused, said in words."""
    if any(unicodedata.category(character) == "Cc" for character in value):
        raise ValidationError("Write the name on one line, without tabs or control characters.")
    return value


def number_hint() -> str:
    """How to type a number: with its country code, or, given a default region
    (OBD_DEFAULT_REGION), as dialled in that country."""
    international = "With country code, e.g. +91 88671 35123"
    region = settings.OBD_DEFAULT_REGION
    example = region and phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
    if not example:  # no default region, or one phonenumbers does not know
        return international
    country = country_name_for_number(example, "en") or region
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    return f"{international}, or a number in {country} without it, e.g. {national}"


class NumberField(forms.CharField):
    """A phone number typed any usual way, cleaned to digits with country code."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 32)
        # Read when shown, so the hint follows the default region of the running settings.
        kwargs.setdefault("help_text", lazy(number_hint, str)())
        super().__init__(**kwargs)
        # A phone's keypad, not its keyboard, whichever text widget (and hx-* attributes) the
        # form gives the field; the widget is the field's own copy.
        if isinstance(self.widget, forms.TextInput):
            self.widget.input_type = "tel"
        self.widget.attrs.setdefault("inputmode", "tel")

    def clean(self, value: str) -> str:
        return normalize_number(super().clean(value))


class DayInput(forms.DateInput):
    """A day shown as every page writes it (DATE_FORMAT: 27 Nov 2026), not as the browser's
    locale would in a date picker."""

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, date):
            return formats.date_format(value)
        return super().format_value(value)


class DayField(forms.DateField):
    """A day typed as the pages write it (27 Nov 2026); ISO days (2026-11-27) are read too, so
    links keep working."""

    widget = DayInput(attrs={"placeholder": "e.g. 27 Nov 2026", "size": 12})
    input_formats = ["%d %b %Y", "%d %B %Y", "%Y-%m-%d"]
    default_error_messages = {"invalid": "Enter a day like 27 Nov 2026."}
    # A filter's day becomes a range of instants in the user's zone: a day at the calendar's
    # ends would overflow datetime (the day after 31 Dec 9999).
    FIRST, LAST = date(1970, 1, 1), date(9998, 12, 31)

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value and not self.FIRST <= value <= self.LAST:
            raise ValidationError(
                f"Enter a day between {self.FIRST:%-d %b %Y} and {self.LAST:%-d %b %Y}.",
                code="out_of_range",
            )

    def prepare_value(self, value: Any) -> Any:
        """A day as typed (2026-11-27) is shown back the pages' way; a typo as typed."""
        if isinstance(value, str):
            try:
                return self.to_python(value)
            except ValidationError:
                pass
        return value


class CsvFileField(forms.FileField):
    """An uploaded CSV no larger than OBD_CSV_MAX_BYTES; its content is checked by its importer."""

    default_error_messages = {"required": "Choose a CSV file to upload."}

    def validate(self, value: UploadedFile[bytes] | None) -> None:
        super().validate(value)
        limit = settings.OBD_CSV_MAX_BYTES
        if value is not None and value.size is not None and value.size > limit:
            raise ValidationError(
                "The file is %(size)s; the limit is %(limit)s. Split it into smaller files.",
                code="too_big",
                params={"size": filesizeformat(value.size), "limit": filesizeformat(limit)},
            )


class QuickSelect(forms.Select):
    """Django's <select>, the same HTML, written here rather than by its templates, which include
    a template per option and another per option's attributes, and build a dictionary per
    option first: the call log's filters list a hundred campaigns and every agent, and Django's
    way took a third of the page's time. Chosen as Django's `optgroups` chooses: the first
    option whose value, as text, is one of the widget's values. Escaped as the templates do:
    what is not safe already."""

    def render(
        self,
        name: str,
        value: Any,
        attrs: dict[str, Any] | None = None,
        renderer: BaseRenderer | None = None,
    ) -> SafeString:
        # Widget's context, not ChoiceWidget's: the options are written from the choices below.
        widget = forms.Widget.get_context(self, name, value, attrs)["widget"]
        chosen, found = set(widget["value"]), False
        parts = [f'<select name="{escaped(widget["name"])}"{_attrs(widget["attrs"])}>']
        for group_value, group_label in self.choices:
            group = None
            options: Any = [(group_value, group_label)]
            if isinstance(group_label, (list, tuple)):
                group, options = group_value, group_label
            elif group_value is None:
                options = [("", group_label)]
            if group:
                parts.append(f'\n  <optgroup label="{escaped(group)}">')
            for option_value, label in options:
                selected = not found and str(option_value) in chosen
                found |= selected
                parts.append(
                    f'\n  <option value="{escaped(option_value)}"'
                    f"{' selected' if selected else ''}>{escaped(label)}</option>\n"
                )
            if group:
                parts.append("\n  </optgroup>")
        parts.append("\n</select>")
        return joined(parts)


def _attrs(attrs: dict[str, Any]) -> str:
    """As django/forms/widgets/attrs.html writes them: True bare, False left out."""
    return "".join(
        f" {escaped(name)}" if value is True else f' {escaped(name)}="{escaped(value)}"'
        for name, value in attrs.items()
        if value is not False
    )


class ListedChoices(ModelChoiceIterator[Any]):
    """A model field's choices read in one plain query. Django streams them (`iterator()`),
    which on PostgreSQL is a server-side cursor: DECLARE, FETCH and CLOSE, three round trips a
    field, to spare the memory of lists far longer than a filter's."""

    def __iter__(self) -> Iterator[tuple[ModelChoiceIteratorValue | str, str]]:
        if self.field.empty_label is not None:
            yield ("", str(self.field.empty_label))
        for obj in self.queryset.all():
            yield self.choice(obj)


class QuickModelChoiceField(forms.ModelChoiceField[M]):
    """A model chosen in a QuickSelect: its choices read in one query."""

    iterator = ListedChoices
    widget = QuickSelect
