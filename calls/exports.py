"""CSV downloads: streamed row by row, and safe to open in a spreadsheet.

Every cell goes through one place, `spreadsheet_cell`: what came from outside (names, reasons,
provider messages) may start like a formula, and numbers must not turn into 9.18867E+11. Each
file is written in the flavour its reader chose (`Spreadsheet`): by default what Excel on Windows
opens right, UTF-8 with a byte-order mark."""

import csv
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.text import slugify

from calls.models import CallLog, Campaign, UserPreference
from calls.money import price_of
from calls.vocabulary import variable_field

# OWASP's CSV injection list: a cell starting with one of these is read as a formula by Excel,
# LibreOffice Calc or Google Sheets (a tab or carriage return is skipped, then `=` is seen).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The spreadsheet's own "this cell is text" marker: Excel and Calc keep what follows as typed.
TEXT_MARKER = "'"


# Excel on Windows takes a file for UTF-8 only when it starts with this mark.
BYTE_ORDER_MARK = "\ufeff"


@dataclass(frozen=True)
class Spreadsheet:
    """How a CSV file is written for the program its reader opens it in."""

    byte_order_mark: bool
    separator: str
    # Where lists are separated by `;`, the comma is the decimal mark: 0,45 is a number there.
    decimal_mark: str = "."

    def number(self, value: Decimal | float) -> str:
        """A fractional number as this spreadsheet reads one (2.5 → "2.5", or "2,5")."""
        written = f"{value:f}" if isinstance(value, Decimal) else repr(value)
        return written.replace(".", self.decimal_mark)

    @classmethod
    def of(cls, user: AbstractBaseUser) -> "Spreadsheet":
        """The flavour `user` chose on their preferences page (Excel's, comma, by default)."""
        chosen = (
            UserPreference.objects.filter(user_id=user.pk)
            .values_list("export_flavour", flat=True)
            .first()
        )
        return FLAVOURS[UserPreference.ExportFlavour(chosen or UserPreference.ExportFlavour.EXCEL)]


FLAVOURS = {
    UserPreference.ExportFlavour.EXCEL: Spreadsheet(byte_order_mark=True, separator=","),
    UserPreference.ExportFlavour.EXCEL_SEMICOLON: Spreadsheet(
        byte_order_mark=True, separator=";", decimal_mark=","
    ),
    UserPreference.ExportFlavour.PLAIN: Spreadsheet(byte_order_mark=False, separator=","),
}


class Echo:
    """A file-like sink for csv.writer that hands each row back instead of storing it."""

    def write(self, value: str) -> str:
        return value


def neutralise(value: object) -> object:
    """A text that a spreadsheet would run as a formula, made inert text (OWASP's advice)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return TEXT_MARKER + value
    return value


def as_typed(cell: str) -> str:
    """A cell read back from a file as its author typed it: without the text marker that this
    file (or a spreadsheet) puts before a number or what would read as a formula, so a row
    fixed in the set-aside download and uploaded again shows no stray apostrophe."""
    cell = cell.strip()
    marked = cell[1:]
    if cell.startswith(TEXT_MARKER) and (marked[:1].isdigit() or marked.startswith(FORMULA_STARTS)):
        return marked
    return cell


def spreadsheet_cell(value: object, *, phone: bool = False) -> object:
    """One cell as written to the file.

    A phone number is written with the text marker in front (`'918867135123`): without it a
    spreadsheet reads twelve digits as a number and shows 9.18867E+11 (and saves it back that
    way, destroying it). The marker is the well-known way to say "text" that works in Excel and
    LibreOffice alike, and it is the same one that neutralises formulas, so a number as typed
    with a `+` (`+91 88671 35123`) is text too and never becomes a formula. The alternative
    `="918867135123"` is itself a formula, which this file must never contain. Our own upload
    reads the marked number back unchanged: phone numbers are parsed from their digits."""
    if phone and isinstance(value, str) and value:
        return TEXT_MARKER + value
    return neutralise(value)


def csv_download(
    filename: str,
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    spreadsheet: Spreadsheet,
    phone_columns: Collection[str] = (),
) -> StreamingHttpResponse:
    """A streamed CSV attachment: the header, then each row with every cell made safe."""
    return _attachment(filename, _lines(header, rows, phone_columns, spreadsheet))


# The call export's columns (the zone goes in the time columns' names, a
# column per flow variable after `audio`, and the cost in money when a credit has a price).
EXPORT_COLUMNS = [
    "id",
    "created_at",
    "to",
    "bridge",
    "flow",
    "audio",
    "status",
    "provider_status",
    "provider_id",
    "http_status",
    "cost",
    "started_at",
    "ended_at",
    "duration",
    "attempts",
    "error",
    "campaign_id",
    "placed_by",
]
TIME_COLUMNS = ("created_at", "started_at", "ended_at")
PHONE_COLUMNS = ("to", "bridge")  # kept as text in spreadsheets


def export_row(call: CallLog, zone: tzinfo) -> dict[str, object]:
    """A call's cells by column, times in `zone`; each variable (as stored, so sensitive
    values stay masked) under its `variables[Name]` field."""

    def moment(value: datetime | None) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if value else ""

    return {
        "id": call.pk,
        "created_at": moment(call.created_at),
        "to": call.to,
        "bridge": call.bridge.number,
        "flow": call.flow.name if call.flow else "",
        "audio": call.audio.name if call.audio else "",
        "status": call.status,
        "provider_status": call.provider_status,
        "provider_id": call.provider_id,
        "http_status": call.http_status or "",
        "cost": None if call.cost is None else call.cost.normalize(),  # 2.5000 → 2.5
        "price": None if call.cost is None else price_of(call.cost),
        "started_at": moment(call.started_at),
        "ended_at": moment(call.ended_at),
        "duration": "" if call.duration is None else call.duration,
        "attempts": call.attempts,
        "error": call.error,
        "campaign_id": call.campaign_id or "",
        "placed_by": call.placed_by,
    } | {variable_field(name): value for name, value in call.variables.items()}


def call_log_csv(
    calls: QuerySet[CallLog], campaign: Campaign | None, spreadsheet: Spreadsheet
) -> StreamingHttpResponse:
    """The calls as a spreadsheet reads them: times in the user's zone (named in the header),
    one column per variable, the cost in money too when a credit has a price. Named after the
    campaign when it is one campaign's results."""
    zone, zone_name = timezone.get_current_timezone(), timezone.get_current_timezone_name()
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    what = [f"campaign-{campaign.pk}", slugify(campaign.name)] if campaign else []
    filename = "-".join(filter(None, [*what, "calls", stamp])) + ".csv"
    names = {
        **{column: f"{column} ({zone_name})" for column in TIME_COLUMNS},
        "cost": "cost (credits)",
        "price": f"cost ({settings.OBD_CURRENCY})",
    }

    def lines() -> Iterator[str]:
        # Inside the stream, so scanning the variables does not hold back the response; the zone
        # is taken along, as the middleware has restored the portal's by the time this runs.
        if campaign:
            variables = campaign.flow.variables if campaign.flow else []
        else:
            variables = _variable_names(calls)
        columns: list[str] = []
        for column in EXPORT_COLUMNS:
            columns.append(column)
            if column == "audio":
                columns += [variable_field(name) for name in variables]
            if column == "cost" and settings.OBD_PRICE_PER_CREDIT is not None:
                columns.append("price")
        rows = (export_row(call, zone) for call in calls.order_by("-id").iterator(chunk_size=2000))
        yield from _lines(
            [names.get(column, column) for column in columns],
            ([cells.get(column, "") for column in columns] for cells in rows),
            PHONE_COLUMNS,
            spreadsheet,
        )

    return _attachment(filename, lines())


def _variable_names(calls: QuerySet[CallLog]) -> list[str]:
    """Every variable name the calls hold, in alphabetical order (one pass over that column)."""
    names: set[str] = set()
    for stored in (
        calls.exclude(variables={}).order_by().values_list("variables", flat=True).iterator(5000)
    ):
        names.update(stored)
    return sorted(names, key=str.casefold)


def _lines(
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    phone_columns: Collection[str],
    spreadsheet: Spreadsheet,
) -> Iterator[str]:
    phone = {index for index, name in enumerate(header) if name in phone_columns}
    writer = csv.writer(Echo(), delimiter=spreadsheet.separator)
    mark = BYTE_ORDER_MARK if spreadsheet.byte_order_mark else ""
    yield mark + writer.writerow([neutralise(name) for name in header])
    for row in rows:
        cells = (spreadsheet.number(v) if isinstance(v, Decimal | float) else v for v in row)
        yield writer.writerow([spreadsheet_cell(v, phone=i in phone) for i, v in enumerate(cells)])


def _attachment(filename: str, lines: Iterator[str]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
