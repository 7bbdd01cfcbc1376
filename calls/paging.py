"""The call log's pages: newest dialled first, found by a keyset on an index (call_dialled),
never by OFFSET or COUNT(*), so a page costs the same at 10^7 calls as at ten."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Self, TypedDict

from django.db.models import Q, QuerySet
from django.http import QueryDict

from calls.http import id_in
from calls.models import CallLog
from calls.models.calls import DIALLED_AT

PAGE_SIZE = 50
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
LATEST = (datetime(9999, 12, 31, tzinfo=UTC) - EPOCH) // MICROSECOND


@dataclass(frozen=True)
class Cursor:
    """A place in the log: a call's dialled time, ties broken by its id. Written in links as
    `<microseconds since 1970>-<id>`, exact, so no call is skipped or shown twice."""

    dialled: datetime
    id: int

    def __str__(self) -> str:
        return f"{(self.dialled - EPOCH) // MICROSECOND}-{self.id}"

    @classmethod
    def read(cls, text: str | None) -> Self | None:
        """The cursor a link carries; None for anything else (a query string is hostile)."""
        micros, _, pk = (text or "").partition("-")
        when, call = id_in(micros), id_in(pk)
        if when is None or call is None or when > LATEST:
            return None
        return cls(EPOCH + when * MICROSECOND, call)


class Dialled(TypedDict):
    dialled: datetime


if TYPE_CHECKING:  # django-stubs' annotated model, known to the type checker only
    from django_stubs_ext import WithAnnotations

    # A call read with its place in the log.
    PlacedCall = WithAnnotations[CallLog, Dialled]


@dataclass
class KeysetPage:
    rows: list["PlacedCall"]
    newer: Cursor | None  # where the newer page starts, when there is one
    older: Cursor | None


def keyset_page(rows: QuerySet[CallLog], params: QueryDict) -> KeysetPage:
    """The page of `rows` after the cursor `before` (older calls) or `after` (newer), else the
    newest. The redundant bound (dialled ≤ t) is what the index range reads; the OR breaks ties."""
    rows = rows.annotate(dialled=DIALLED_AT)
    before, after = Cursor.read(params.get("before")), Cursor.read(params.get("after"))
    if after:
        rows = rows.filter(
            Q(dialled__gt=after.dialled) | Q(id__gt=after.id), dialled__gte=after.dialled
        )
        found = list(rows.order_by("dialled", "id")[: PAGE_SIZE + 1])
        more_newer = len(found) > PAGE_SIZE
        found = found[:PAGE_SIZE][::-1]
        return KeysetPage(
            found, _cursor(found[0]) if more_newer else None, _cursor(found[-1]) if found else None
        )
    if before:
        rows = rows.filter(
            Q(dialled__lt=before.dialled) | Q(id__lt=before.id), dialled__lte=before.dialled
        )
    found = list(rows.order_by("-dialled", "-id")[: PAGE_SIZE + 1])
    more_older = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    return KeysetPage(
        found,
        _cursor(found[0]) if found and before else None,
        _cursor(found[-1]) if more_older else None,
    )


def _cursor(call: "PlacedCall") -> Cursor:
    return Cursor(call.dialled, call.pk)
