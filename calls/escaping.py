"""HTML written in Python where a page writes a lot of it (the call log's rows, its filters'
options), escaped as Django's templates and `format_html` escape. Django's `conditional_escape`
checks every value for lazy text first (`keep_lazy`), which cost the log's rows more than the
rest of them; a lazy value is still written right here (as text, then escaped)."""

import html
from collections.abc import Iterable

from django.utils.safestring import SafeString


def escaped(value: object) -> str:
    """As `conditional_escape`: safe HTML as it is, anything else escaped."""
    return str(value.__html__()) if hasattr(value, "__html__") else html.escape(str(value))


def formatted(template: str, *args: object, **kwargs: object) -> SafeString:
    """As `format_html`: `template` filled with the values escaped."""
    return joined(
        [template.format(*map(escaped, args), **{k: escaped(v) for k, v in kwargs.items()})]
    )


def joined(pieces: Iterable[str]) -> SafeString:
    """Pieces of HTML, each escaped already (by `escaped` or `formatted`), one after another."""
    return SafeString("".join(pieces))  # nosec B703 (the callers escape every value first)
