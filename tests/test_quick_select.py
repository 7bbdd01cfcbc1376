"""The call log's <select>s (calls/forms/fields.py QuickSelect) are written in Python for speed:
they must give exactly the HTML Django's own Select writes, escaping included."""

import pytest
from django import forms

from calls.forms.fields import QuickSelect

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
