"""A campaign's CSV read into pending calls: the file's layout (its header), its rows read a
chunk at a time from a mark a worker can resume from, every row checked before anything is sent,
valid rows written in bulk, rows set aside kept with their reason. No ORM state of its own: the
worker (calls/engine/imports.py) decides when a chunk is stored."""

import _csv
import csv
import io
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import cast

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connections

from calls.exports import as_typed
from calls.models import MASK, CallLog, Campaign, DoNotCall, IvrFlow, SetAsideRow
from calls.phone import normalize_number

NUMBER_COLUMNS = ("number", "to", "mobile", "phone", "msisdn")
MAX_COLUMNS = 100  # a number, a few variables and some columns to ignore; more is not our file
REASON_MAX = SetAsideRow._meta.get_field("reason").max_length or 300
SAMPLE_NUMBER = "+91 98765 43210"


class UnreadableFile(ValueError):
    """The file as a whole cannot be used; the message says what to change."""


@dataclass(frozen=True)
class Mark:
    """How far the file has been read: characters of its text, and lines of the file."""

    position: int = 0
    line: int = 0


@dataclass(frozen=True)
class Layout:
    """What the header says: the delimiter, the columns and what each fills."""

    delimiter: str
    header: list[str]
    number_index: int
    variable_index: dict[str, int]  # flow variable -> column
    secret_columns: list[str]  # masked when their row is set aside
    rows_from: Mark  # the first row after the header

    @property
    def columns(self) -> list[list[str]]:
        """[[CSV column, "number" | "{variable}" | ""], ...], as the campaign keeps them."""
        targets = {self.number_index: "number"}
        targets |= {i: "{" + var + "}" for var, i in self.variable_index.items()}
        return [[column, targets.get(i, "")] for i, column in enumerate(self.header)]


def decode(content: bytes) -> str:
    """The file's text (UTF-8, with or without a BOM)."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableFile(
            "The file is not UTF-8 text: save it as “CSV UTF-8” and upload again."
        ) from None


def read_layout(campaign: Campaign, text: str) -> Layout:
    """The header (the first line that is not blank): `,` or `;`, a number column and a
    column for each of the flow's variables."""
    lines = _Lines(text, Mark())
    for header_line in lines:
        if header_line.strip():
            break
    else:
        raise UnreadableFile("The file is empty.")
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader([header_line], delimiter=delimiter, strict=True)
    _, cells = next(_records(reader, lambda: lines.read.line - 1 + reader.line_num))
    header = [h.strip() for h in cells]
    lowered = [h.lower() for h in header]
    number_index = next((lowered.index(n) for n in NUMBER_COLUMNS if n in lowered), None)
    if number_index is None:
        raise UnreadableFile(
            "No number column: name one of the columns " + ", ".join(NUMBER_COLUMNS) + "."
        )
    variables = campaign.flow.variables if campaign.flow else []
    if missing := [v for v in variables if v.lower() not in lowered]:
        names = ", ".join(f"“{v}”" for v in missing)
        raise UnreadableFile(
            f"No column for the flow's variable{'s' if len(missing) > 1 else ''} "
            f"{', '.join('{' + v + '}' for v in missing)}: add a column named {names}."
        )
    variable_index = {v: lowered.index(v.lower()) for v in variables}
    secret_columns = [
        header[i]
        for var, i in variable_index.items()
        if campaign.flow is not None and campaign.flow.is_sensitive(var)
    ]
    return Layout(delimiter, header, number_index, variable_index, secret_columns, lines.read)


class RowReader:
    """The file's rows from a mark, a chunk at a time, each with the line it ends on."""

    def __init__(self, text: str, layout: Layout, since: Mark) -> None:
        self.length = len(text)
        self.lines = _Lines(text, since)
        reader = csv.reader(self.lines, delimiter=layout.delimiter, strict=True)
        self.records = _records(reader, lambda: self.lines.read.line)

    def take(self, limit: int) -> tuple[list[tuple[int, list[str]]], Mark, bool]:
        """Up to `limit` rows; the mark just after the last of them, and whether the file ends
        there. A row that cannot be read stops the import saying what to change."""
        rows = list(itertools.islice(self.records, limit))
        after = self.lines.read
        return rows, after, len(rows) < limit or after.position >= self.length


class _Lines:
    """The text's lines from a mark, as a file opened with newline="" gives them; `read` is
    the mark after the last line handed out (a CSV reader takes one record's lines, no more)."""

    def __init__(self, text: str, since: Mark) -> None:
        self.buffer = io.StringIO(text, newline="")
        self.buffer.seek(since.position)
        self.read = since

    def __iter__(self) -> Iterator[str]:
        for line in self.buffer:
            self.read = Mark(self.read.position + len(line), self.read.line + 1)
            yield line


def _records(reader: _csv.Reader, lines_read: Callable[[], int]) -> Iterator[tuple[int, list[str]]]:
    """Each row with the line of the file it ends on (`lines_read`: lines read so far)."""
    while True:
        starts = lines_read() + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UnreadableFile(_malformed(str(exc), starts)) from None
        if len(row) > MAX_COLUMNS:
            raise UnreadableFile(
                f"Line {starts} has {len(row)} columns; at most {MAX_COLUMNS} are read: "
                "keep the number column and the flow's variables."
            )
        if any("\x00" in cell for cell in row):  # PostgreSQL text cannot hold it
            raise UnreadableFile(
                f"Line {starts} contains a NUL character, which is never part of a CSV text: "
                "the file may be a spreadsheet or UTF-16; save it as “CSV UTF-8” and upload again."
            )
        yield lines_read(), row


def _malformed(error: str, line: int) -> str:
    if "field larger than field limit" in error:
        return (
            f"Line {line} holds a value longer than {csv.field_size_limit() // 1024} KB, or opens "
            'a quote (") that is never closed: fix that line and upload again.'
        )
    if "unexpected end of data" in error:
        return f'Line {line} opens a quote (") that is never closed: close it or remove it.'
    return f"Line {line} is not well-formed CSV ({error}): save it as “CSV UTF-8” and try again."


class RowCheck:
    """Sorts rows into pending calls and rows set aside (bad number, missing value, duplicate,
    do-not-call). Numbers already in the campaign, earlier chunks and earlier uploads included,
    count as duplicates."""

    def __init__(self, campaign: Campaign, layout: Layout, user: User | None) -> None:
        self.campaign = campaign
        self.layout = layout
        self.user = user
        self.do_not_call = dict(DoNotCall.objects.values_list("number", "reason"))
        self.seen = set(campaign.calls.values_list("to", flat=True))

    def sort(self, rows: list[tuple[int, list[str]]]) -> tuple[list[CallLog], list[SetAsideRow]]:
        calls: list[CallLog] = []
        set_aside: list[SetAsideRow] = []
        header = self.layout.header
        for line, row in rows:
            if not any(cell.strip() for cell in row):
                continue
            values = {
                name: as_typed(row[i]) if i < len(row) else "" for i, name in enumerate(header)
            }
            number, reason = self._check_number(values[header[self.layout.number_index]])
            variables = {var: values[header[i]] for var, i in self.layout.variable_index.items()}
            missing = [var for var, value in variables.items() if not value]
            # A masked value comes from our own set-aside file: the secret must be typed again.
            masked = [var for var, value in variables.items() if value == MASK]
            if not reason and missing:
                reason = "Missing value for " + ", ".join(missing)
            if not reason and masked:
                reason = f"Type {', '.join(masked)} again: secrets are masked in the set-aside file"
            if reason:
                values |= {column: MASK for column in self.layout.secret_columns if values[column]}
                reason = reason if len(reason) <= REASON_MAX else reason[: REASON_MAX - 1] + "…"
                set_aside.append(
                    SetAsideRow(campaign=self.campaign, line=line, values=values, reason=reason)
                )
            else:
                self.seen.add(number)
                calls.append(
                    self.campaign.new_row(
                        number, variables, seal_secrets=True, created_by=self.user
                    )
                )
        return calls, set_aside

    def _check_number(self, raw: str) -> tuple[str, str]:
        try:
            number = normalize_number(raw)
        except ValidationError as exc:
            return "", exc.messages[0]
        if number in self.do_not_call:
            why = self.do_not_call[number]
            return number, "On the do-not-call list" + (f" ({why})" if why else "")
        if number in self.seen:
            return number, "Duplicate number in this campaign"
        return number, ""


def store(calls: list[CallLog], set_aside: list[SetAsideRow]) -> None:
    """Write a chunk's rows (inside the caller's transaction)."""
    _insert(calls)
    SetAsideRow.objects.bulk_create(set_aside)


def _insert(calls: list[CallLog]) -> None:
    """bulk_create, minus its cost: it compiles one huge INSERT per batch, which took half of a
    100,000-row import. Here the values are prepared by the fields themselves, as Django does,
    then sent by COPY on PostgreSQL and by one prepared INSERT (executemany) on SQLite: half
    the time on SQLite, a third less on PostgreSQL (bench/campaigns.py). The connection's proxy
    cost 8 % of an import (a look-up per value), hence the connection itself."""
    if not calls:
        return
    db = connections[DEFAULT_DB_ALIAS]  # itself, not the proxy that looks it up per value
    fields = [f for f in CallLog._meta.concrete_fields if not (f.primary_key or f.generated)]
    quote = db.ops.quote_name
    table = quote(CallLog._meta.db_table)
    columns = ", ".join(quote(cast(str, f.column)) for f in fields)  # concrete: never None
    rows = [tuple(f.get_db_prep_save(getattr(c, f.attname), db) for f in fields) for c in calls]
    # Names come from the model, values are bound or streamed: nothing from the file is SQL.
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(fields))
            sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608  # nosec B608
            cursor.executemany(sql, rows)


def sample(flow: IvrFlow | None) -> tuple[list[str], list[str]]:
    """The CSV a campaign playing `flow` reads: its header (the number, then each variable of
    the flow) and one example row."""
    variables = flow.variables if flow else []
    return ["number", *variables], [SAMPLE_NUMBER, *(_example(flow, v) for v in variables)]


def _example(flow: IvrFlow | None, variable: str) -> str:
    if flow is not None and flow.is_sensitive(variable):
        return "482913"
    return "Asha" if "name" in variable.lower() else f"{variable} for this customer"
