"""A campaign's CSV becomes pending calls: streamed row by row, every row validated before
anything is sent, valid rows bulk-inserted, rejected rows kept with their reason."""

import _csv
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, cast

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from calls.models import MASK, CallLog, Campaign, DoNotCall, IvrFlow, RejectedRow
from calls.phone import normalize_number

NUMBER_COLUMNS = ("number", "to", "mobile", "phone", "msisdn")
BATCH = 2000
MAX_COLUMNS = 100  # a number, a few variables and some columns to ignore; more is not our file
REASON_MAX = RejectedRow._meta.get_field("reason").max_length or 300
SAMPLE_NUMBER = "+91 98765 43210"


class UnreadableFile(ValueError):
    """The file as a whole cannot be used; the message says what to change."""


@dataclass
class ImportReport:
    accepted: int = 0
    rejected: int = 0
    columns: dict[str, str] = field(default_factory=dict)  # CSV header → variable (or "number")


def import_rows(campaign: Campaign, binary: IO[bytes], user: User | None = None) -> ImportReport:
    """Read a CSV file (utf-8, with or without BOM; `,` or `;`) into the campaign's calls.
    All or nothing: a file that turns out unreadable half-way imports no row."""
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    try:
        with transaction.atomic():
            return _import(campaign, text, user)
    except UnicodeDecodeError:
        raise UnreadableFile(
            "The file is not UTF-8 text: save it as “CSV UTF-8” and upload again."
        ) from None
    finally:
        text.detach()  # leave the upload open for Django to close


def _import(campaign: Campaign, text: io.TextIOWrapper, user: User | None) -> ImportReport:
    header_at = 0
    for header_line in text:
        header_at += 1
        if header_line.strip():
            break
    else:
        raise UnreadableFile("The file is empty.")
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    _, cells = next(
        _records(csv.reader([header_line], delimiter=delimiter, strict=True), header_at - 1)
    )
    header = [h.strip() for h in cells]
    report, number_index, variable_index = _map_columns(campaign, header)
    secret_columns = [
        header[i]
        for var, i in variable_index.items()
        if campaign.flow is not None and campaign.flow.is_sensitive(var)
    ]

    # This upload fixes the rows set aside before: they are replaced by this file's.
    campaign.rejected_rows.all().delete()
    do_not_call = dict(DoNotCall.objects.values_list("number", "reason"))
    seen = set(campaign.calls.values_list("to", flat=True))  # earlier uploads count as duplicates
    calls: list[CallLog] = []
    rejected: list[RejectedRow] = []
    for line, row in _records(csv.reader(text, delimiter=delimiter, strict=True), header_at):
        if not any(cell.strip() for cell in row):
            continue
        values = {name: row[i].strip() if i < len(row) else "" for i, name in enumerate(header)}
        number, reason = _check_number(values[header[number_index]], seen, do_not_call)
        variables = {var: values[header[i]] for var, i in variable_index.items()}
        missing = [var for var, value in variables.items() if not value]
        # A masked value comes from our own rejected-rows file: the secret must be typed again.
        masked = [var for var, value in variables.items() if value == MASK]
        if not reason and missing:
            reason = "Missing value for " + ", ".join(missing)
        if not reason and masked:
            reason = f"Type {', '.join(masked)} again: secrets are masked in the rejected-rows file"
        if reason:
            values |= {column: MASK for column in secret_columns if values[column]}
            reason = reason if len(reason) <= REASON_MAX else reason[: REASON_MAX - 1] + "…"
            rejected.append(RejectedRow(campaign=campaign, line=line, values=values, reason=reason))
            report.rejected += 1
        else:
            seen.add(number)
            calls.append(_call(campaign, number, variables, user))
            report.accepted += 1
        if len(calls) >= BATCH or len(rejected) >= BATCH:
            _flush(calls, rejected)
    _flush(calls, rejected)
    if not report.accepted and not report.rejected:
        raise UnreadableFile("The file has a header but no rows: add one row per number.")
    campaign.columns = [[column, report.columns.get(column, "")] for column in header]
    campaign.rows_rejected = report.rejected
    campaign.save(update_fields=["columns", "rows_rejected"])
    return report


def _records(reader: _csv.Reader, before: int) -> Iterator[tuple[int, list[str]]]:
    """Each row with the line of the file it ends on (`before` lines come ahead of the reader's).
    A row that cannot be read, or could not be stored, stops the import saying what to change."""
    while True:
        starts = before + reader.line_num + 1
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
        yield before + reader.line_num, row


def _malformed(error: str, line: int) -> str:
    if "field larger than field limit" in error:
        return (
            f"Line {line} holds a value longer than {csv.field_size_limit() // 1024} KB, or opens "
            'a quote (") that is never closed: fix that line and upload again.'
        )
    if "unexpected end of data" in error:
        return f'Line {line} opens a quote (") that is never closed: close it or remove it.'
    return f"Line {line} is not well-formed CSV ({error}): save it as “CSV UTF-8” and try again."


def sample(flow: IvrFlow | None) -> tuple[list[str], list[str]]:
    """The CSV a campaign playing `flow` reads: its header (the number, then each variable of
    the flow) and one example row."""
    variables = flow.variables if flow else []
    return ["number", *variables], [SAMPLE_NUMBER, *(_example(flow, v) for v in variables)]


def _example(flow: IvrFlow | None, variable: str) -> str:
    if flow is not None and flow.is_sensitive(variable):
        return "482913"
    return "Asha" if "name" in variable.lower() else f"{variable} for this customer"


def _map_columns(campaign: Campaign, header: list[str]) -> tuple[ImportReport, int, dict[str, int]]:
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
    report = ImportReport(columns={header[number_index]: "number"})
    report.columns |= {header[i]: "{" + var + "}" for var, i in variable_index.items()}
    return report, number_index, variable_index


def _check_number(raw: str, seen: set[str], do_not_call: dict[str, str]) -> tuple[str, str]:
    try:
        number = normalize_number(raw)
    except ValidationError as exc:
        return "", exc.messages[0]
    if number in do_not_call:
        why = do_not_call[number]
        return number, "On the do-not-call list" + (f" ({why})" if why else "")
    if number in seen:
        return number, "Duplicate number in this campaign"
    return number, ""


def _call(campaign: Campaign, number: str, variables: dict[str, str], user: User | None) -> CallLog:
    return campaign.new_row(number, variables, seal_secrets=True, created_by=user)


def _flush(calls: list[CallLog], rejected: list[RejectedRow]) -> None:
    _insert(calls)
    RejectedRow.objects.bulk_create(rejected)
    calls.clear()
    rejected.clear()


def _insert(calls: list[CallLog]) -> None:
    """bulk_create, minus its cost: it compiles one huge INSERT per batch, which took half of a
    100,000-row import. Here the values are prepared by the fields themselves, as Django does,
    then sent by COPY on PostgreSQL and by one prepared INSERT (executemany) on SQLite: half
    the time on SQLite, a third less on PostgreSQL (bench/campaigns.py)."""
    if not calls:
        return
    fields = [f for f in CallLog._meta.concrete_fields if not (f.primary_key or f.generated)]
    quote = connection.ops.quote_name
    table = quote(CallLog._meta.db_table)
    columns = ", ".join(quote(cast(str, f.column)) for f in fields)  # concrete: never None
    rows = [
        tuple(f.get_db_prep_save(getattr(c, f.attname), connection) for f in fields) for c in calls
    ]
    # Names come from the model, values are bound or streamed: nothing from the file is SQL.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(fields))
            sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608  # nosec B608
            cursor.executemany(sql, rows)
