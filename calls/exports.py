"""CSV downloads: streamed row by row, and safe to open in a spreadsheet.

Every cell goes through one place, `spreadsheet_cell`: what came from outside (names, reasons,
provider messages) may start like a formula, and numbers must not turn into 9.18867E+11."""

import csv
import itertools
from collections.abc import Collection, Iterable, Sequence

from django.http import StreamingHttpResponse

# OWASP's CSV injection list: a cell starting with one of these is read as a formula by Excel,
# LibreOffice Calc or Google Sheets (a tab or carriage return is skipped, then `=` is seen).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The spreadsheet's own "this cell is text" marker: Excel and Calc keep what follows as typed.
TEXT_MARKER = "'"


class Echo:
    """A file-like sink for csv.writer that hands each row back instead of storing it."""

    def write(self, value: str) -> str:
        return value


def neutralise(value: object) -> object:
    """A text that a spreadsheet would run as a formula, made inert text (OWASP's advice)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return TEXT_MARKER + value
    return value


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
    phone_columns: Collection[str] = (),
) -> StreamingHttpResponse:
    """A streamed CSV attachment: the header, then each row with every cell made safe."""
    phone = {index for index, name in enumerate(header) if name in phone_columns}
    writer = csv.writer(Echo())
    lines = (
        writer.writerow([spreadsheet_cell(v, phone=i in phone) for i, v in enumerate(row)])
        for row in rows
    )
    header_line = writer.writerow([neutralise(name) for name in header])
    response = StreamingHttpResponse(itertools.chain([header_line], lines), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
