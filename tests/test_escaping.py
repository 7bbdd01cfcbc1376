"""calls/escaping.py writes what Django's own escaping writes, for every kind of value."""

import pytest
from django.utils.functional import lazy
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

from calls.escaping import escaped, formatted, joined

HOSTILE = [
    "<script>alert(1)</script>",
    "\" onmouseover='x' &amp;",
    "javascript:alert(1)",
    '=HYPERLINK("http://x")',
    "nul\x00byte",
    "",
    42,
    None,
    mark_safe("<b>already safe</b>"),
    lazy(lambda: "<i>lazy</i>", str)(),
]


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_a_value_is_escaped_as_conditional_escape_escapes_it(value):
    assert escaped(value) == conditional_escape(value)


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_a_template_is_filled_as_format_html_fills_it(value):
    template = '<option value="{}" title="{title}">{}</option>'
    ours = formatted(template, value, value, title=value)
    django = format_html(template, value, value, title=value)
    assert ours == django
    assert hasattr(ours, "__html__")  # safe: a template writes it as it is


def test_pieces_are_joined_as_safe_html_without_escaping_them_again():
    pieces = [formatted("<td>{}</td>", "<x>"), escaped("a & b")]
    html = joined(pieces)
    assert html == "<td>&lt;x&gt;</td>a &amp; b"
    assert conditional_escape(html) == html
