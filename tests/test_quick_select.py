"""The call log's <select>s (calls/forms/fields.py QuickSelect) are written in Python for speed:
they must give exactly the HTML Django's own Select writes, escaping included."""

import pytest
from django import forms
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from calls.forms.fields import QuickModelChoiceField, QuickSelect
from calls.models import Bridge

HOSTILE = "<script>alert(\"x\")</script> & 'quotes' \x00"
CHOICES = [
    ("", "Any"),
    ("a", "Plain"),
    (HOSTILE, HOSTILE),
    ("Group <b>", [("g1", "In a group"), ("g2", "Also & here")]),
    (7, "A number"),
]


@pytest.mark.parametrize("value", [None, "", "a", HOSTILE, "g2", 7, ["a", "g1"]])
@pytest.mark.parametrize("attrs", [None, {"class": 'x"y', "required": True, "disabled": False}])
def test_a_quick_select_writes_the_same_html_as_djangos_select(value, attrs):
    ours = QuickSelect(attrs=attrs, choices=CHOICES).render("pick", value, {"id": "id_<pick>"})
    django = forms.Select(attrs=attrs, choices=CHOICES).render("pick", value, {"id": "id_<pick>"})
    assert ours == django


def test_a_quick_select_with_an_option_selected_marks_only_that_one():
    html = QuickSelect(choices=CHOICES).render("pick", "g1", None)
    assert html.count(" selected") == 1
    assert '<option value="g1" selected>In a group</option>' in html
    assert "<script>" not in html


def test_labels_already_safe_or_lazy_are_written_as_djangos_select_writes_them():
    choices = [
        (None, "None stands for empty"),
        ("s", mark_safe("<em>safe</em>")),  # a fixed string: what a safe label is
        ("l", gettext_lazy("Lazy & translated")),
        (mark_safe("<v>"), "A safe value is escaped all the same"),
    ]
    for value in (None, "s", "<v>"):
        ours = QuickSelect(choices=choices).render("pick", value)
        assert ours == forms.Select(choices=choices).render("pick", value)


@pytest.mark.django_db
def test_a_model_fields_choices_are_written_as_djangos_select_writes_them():
    bridges = [Bridge.objects.create(number=f"91806828760{i}", label=f"Line <{i}>") for i in (1, 2)]
    field = QuickModelChoiceField(Bridge.objects.all(), required=False, empty_label="Any & all")
    django = forms.Select(choices=field.choices)  # the same choices, written by Django
    for value in (None, bridges[1].pk, str(bridges[0].pk)):
        assert field.widget.render("bridge", value) == django.render("bridge", value)
