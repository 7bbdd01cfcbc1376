"""Reading the provider's management answers (webhooks, subscriptions, unsubscribers): one object
or one page of a Laravel-style list (`data`, `links`, `meta`), and the rows of each documented
shape (docs/provider-shapes.md). Pure: status and text in.

A failure raises GatewayError with a message safe to show: it never holds the token, and the
caller masks any secret the provider may quote back.
"""

import json
import logging
import re
from collections.abc import Callable, Iterator

from django.core.exceptions import ValidationError

from calls.phone import normalize_number
from calls.provider.base import GatewayError, ProviderPage, Row, rejection_message

# Fifteen rows a page is the documented default: 200 pages are 3,000 rows a run, well inside
# the 1,000 GETs a minute the provider allows.
MAX_PAGES = 200
logger = logging.getLogger(__name__)
# A number as a person or a provider writes it: `919876543210`, `+91 98765 43210`,
# `(0)98765-43210`. Anything else (letters, NUL bytes, 33 characters or more) is no number.
NUMBER_TEXT = re.compile(r"\+?[0-9][0-9 ().-]{0,31}")
# Where each documented shape of an unsubscriber keeps its number and its country: `receiver`
# and `iso` since 2023-05-08, `mobile` and `country` before (and in the first create answer,
# `receiver` with `country`).
UNSUBSCRIBER_NUMBER = ("receiver", "mobile")
UNSUBSCRIBER_COUNTRY = ("iso", "country")


def read_answer(http_status: int, text: str, what: str) -> Row:
    """The answer's JSON object when the provider says OK; else GatewayError saying why."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = None
    refused = isinstance(data, dict) and data.get("status") not in (None, "OK", 200, "200")
    if http_status >= 400 or refused:
        raise GatewayError(rejection_message(http_status, data, what=what))
    if not isinstance(data, dict):
        raise GatewayError(
            f"The provider answered the {what} with HTTP {http_status} and a body that is not "
            "the documented JSON."
        )
    return data


def read_page(http_status: int, text: str, what: str) -> ProviderPage:
    data = read_answer(http_status, text, what)
    rows = data.get("data")
    if not isinstance(rows, list):
        raise GatewayError(f"The provider's {what} has no list of rows (`data`).")
    meta, links = data.get("meta"), data.get("links")
    current, last = (
        (meta.get("current_page"), meta.get("last_page"))
        if isinstance(meta, dict)
        else (None, None)
    )
    if isinstance(current, int) and isinstance(last, int):
        more = current < last
    else:
        more = isinstance(links, dict) and bool(links.get("next"))
    return ProviderPage(
        [row for row in rows if isinstance(row, dict)],
        more and bool(rows),
        junk=tuple(row for row in rows if not isinstance(row, dict)),
    )


def read_object(http_status: int, text: str, what: str) -> Row:
    data = read_answer(http_status, text, what).get("data")
    if not isinstance(data, dict) or not str(data.get("id") or ""):
        raise GatewayError(f"The provider's answer to the {what} holds no id.")
    return data


class ListReader:
    """Each row of a paged list, page after page, at most `max_pages` pages. Keeps what a
    reader must account for: the entries that were no JSON object (`junk`), and whether the
    last page was reached (`complete`)."""

    def __init__(self, fetch: Callable[[int], ProviderPage], max_pages: int = MAX_PAGES) -> None:
        self.fetch, self.max_pages = fetch, max_pages
        self.junk: list[object] = []
        self.complete = False

    def __iter__(self) -> Iterator[Row]:
        for page in range(1, self.max_pages + 1):
            answer = self.fetch(page)
            self.junk.extend(answer.junk)
            yield from answer.rows
            if not answer.more:
                self.complete = True
                return
        logger.warning("provider list cut at %s pages: later pages not read", self.max_pages)


def every_row(fetch: Callable[[int], ProviderPage], max_pages: int = MAX_PAGES) -> Iterator[Row]:
    """Each row of a paged list, for readers with nothing to account for (webhooks, subscriptions)."""
    return iter(ListReader(fetch, max_pages))


def number_text(value: object) -> str | None:
    """A number field as text (a JSON number or a string that reads as one); None otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**32:
        return str(value)
    if isinstance(value, str) and NUMBER_TEXT.fullmatch(value.strip()):
        return value.strip()
    return None


def unsubscriber_number(row: Row) -> str | None:
    """The opted-out number of an unsubscriber row of any documented shape, as we store it
    (digits with country code); None when the row holds no valid one. A number written
    without its country code is read in the row's country (`iso` or `country`)."""
    present = [row[key] for key in UNSUBSCRIBER_NUMBER if row.get(key) not in (None, "")]
    if not present:
        return None
    text = number_text(present[0])
    country = next((row[key] for key in UNSUBSCRIBER_COUNTRY if row.get(key)), "")
    region = (
        country.upper() if isinstance(country, str) and re.fullmatch("[A-Za-z]{2}", country) else ""
    )
    try:
        return normalize_number(text, region=region) if text else None
    except ValidationError:
        return None
