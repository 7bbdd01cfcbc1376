"""Reading the provider's management answers (webhooks, subscriptions, unsubscribers): one object
or one page of a Laravel-style list (`data`, `links`, `meta`). Pure: status and text in.

A failure raises GatewayError with a message safe to show: it never holds the token, and the
caller masks any secret the provider may quote back.
"""

import json
import logging
from collections.abc import Callable, Iterator

from calls.provider.base import GatewayError, ProviderPage, Row, rejection_message

# Fifteen rows a page is the documented default: 200 pages are 3,000 rows a run, well inside
# the 1,000 GETs a minute the provider allows.
MAX_PAGES = 200
logger = logging.getLogger(__name__)


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
    return ProviderPage([row for row in rows if isinstance(row, dict)], more and bool(rows))


def read_object(http_status: int, text: str, what: str) -> Row:
    data = read_answer(http_status, text, what).get("data")
    if not isinstance(data, dict) or not str(data.get("id") or ""):
        raise GatewayError(f"The provider's answer to the {what} holds no id.")
    return data


def every_row(fetch: Callable[[int], ProviderPage], max_pages: int = MAX_PAGES) -> Iterator[Row]:
    """Each row of a paged list, page after page, at most `max_pages` pages."""
    for page in range(1, max_pages + 1):
        answer = fetch(page)
        yield from answer.rows
        if not answer.more:
            return
    logger.warning("provider list cut at %s pages: later pages not read", max_pages)
