"""The dashboard's roll-ups: tallies of calls placed, kept by triggers on the calls table, folded
by a periodic job (calls/engine/jobs.py), rebuilt by `manage.py rebuild_rollups`, and read by
reports.py.

Every change to a counted column of a call (whatever code makes it: a model method, a bulk
update, the admin, a cascade delete) fires a trigger in the same transaction, which inserts the
call's old dimensions with -1 and its new ones with +1 (calls/models/rollups.py). On PostgreSQL
the trigger runs once per statement and sums its calls' rows per key first (a batch of outcomes
writes a row per key, not six per call); on SQLite, once per call. Insert-only, so concurrent
transactions never wait on a shared row, and nothing is lost: the tallies are the calls, counted. `fold_tallies` sums each key's rows into one, so reading stays small.

Three kinds of rows, so that a period of any length is read from a few thousand rows: per UTC day
with every dimension (the period's whole days), per quarter hour with every dimension (the rest of
the UTC day the period starts in: a local midnight is a quarter hour, rarely a UTC midnight), per
quarter hour with only the status (the calls-per-hour chart, in the reader's zone).

The SQL is built from our own table and column names only (hence the S608 waivers); values are
query parameters."""

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Sum

from calls.models import CallLog, CallTally

QUARTER_SECONDS = 15 * 60
QUARTERS_A_DAY = 24 * 4
COST_PLACES = 4  # a call's cost has 4 decimal places: tallies count ten-thousandths
CALLS = CallLog._meta.db_table
TALLIES = CallTally._meta.db_table
KEY = ["kind", "bucket", "bridge_id", "flow_id", "audio_id", "status", "provider_status"]
KEY += ["http_status"]
SUMS = ["n", "timed", "seconds", "cost", "priced"]
# The call columns the tallies count: a change to any other column fires nothing.
COUNTED = ["created_at", "bridge_id", "flow_id", "audio_id", "status", "provider_status"]
COUNTED += ["http_status", "duration", "cost"]
FIELDS = [*COUNTED, "submitted_at"]  # what the tally rows of a call are made of
TRIGGERS = ["calls_tally_insert", "calls_tally_update", "calls_tally_delete"]
FOLD_LOCK = 0x7A11  # pg_advisory_xact_lock key: one fold (or rebuild) at a time
FOLD_EVERY = timedelta(seconds=60)


def quarter(moment: datetime) -> int:
    """The bucket of an instant (local midnights are whole quarters in every zone)."""
    return int(moment.timestamp()) // QUARTER_SECONDS


# --- The SQL that counts calls (triggers, rebuild) -------------------------------------------


def _rows(vendor: str, row: str, sums: list[str]) -> list[str]:
    """The three tally rows of the calls `row` names ("NEW.", "OLD." or "" for the table), as
    SELECT lists: the quarter and day rows with every dimension, the slot row with the status."""
    if vendor == "postgresql":
        bucket = f"floor(extract(epoch FROM {row}created_at) / {QUARTER_SECONDS})::integer"
    else:
        bucket = f"CAST(strftime('%s', {row}created_at) AS INTEGER) / {QUARTER_SECONDS}"
    dims = [
        f"{row}bridge_id",
        f"COALESCE({row}flow_id, 0)",
        f"COALESCE({row}audio_id, 0)",
        f"{row}status",
        f"{row}provider_status",
        f"COALESCE({row}http_status, 0)",
    ]
    day = f"{bucket} / {QUARTERS_A_DAY} * {QUARTERS_A_DAY}"
    slot = ["0", "0", "0", f"{row}status", "''", "0", sums[0], "0", "0", "0", "0"]
    return [
        ", ".join([f"'{CallTally.Kind.QUARTER}'", bucket, *dims, *sums]),
        ", ".join([f"'{CallTally.Kind.DAY}'", day, *dims, *sums]),
        ", ".join([f"'{CallTally.Kind.SLOT}'", bucket, *slot]),
    ]


def _units(cost: str) -> str:
    """A cost in credits as an integer count of ten-thousandths (CallTally.cost)."""
    return f"CAST(ROUND({cost} * {10**COST_PLACES}) AS BIGINT)"


def _sums(row: str, sign: str) -> list[str]:
    """A call's sums with `sign` (a number, or a column holding one)."""
    return [
        sign,
        f"CASE WHEN {row}duration IS NULL THEN 0 ELSE {sign} END",
        f"{sign} * COALESCE({row}duration, 0)",
        f"{sign} * {_units('COALESCE(' + row + 'cost, 0)')}",
        f"CASE WHEN {row}cost IS NULL THEN 0 ELSE {sign} END",
    ]


def _tally_call(vendor: str, row: str, sign: int) -> str:
    """An INSERT of a call's three tally rows with `sign`, if the call was placed."""
    placed = f"WHERE {row}submitted_at IS NOT NULL"
    rows = _rows(vendor, row, _sums(row, str(sign)))
    selects = " UNION ALL ".join(f"SELECT {s}, FALSE {placed}" for s in rows)
    return f"INSERT INTO {TALLIES} ({', '.join(KEY + SUMS)}, folded) {selects};"


def _tally_statement(moved: str) -> str:
    """An INSERT of the tally rows of every call a statement changed, summed per key (PostgreSQL):
    `moved` selects the calls' old FIELDS with sign -1 and new ones with +1. A bulk update of a
    thousand calls from one status to another writes six rows, not six thousand."""
    key = ", ".join(str(i + 1) for i in range(len(KEY)))
    sums = ", ".join(f"SUM(t.{s})" for s in SUMS)
    nonzero = " OR ".join(f"SUM(t.{s}) <> 0" for s in SUMS)
    kinds = ", ".join(f"({s})" for s in _rows("postgresql", "r.", _sums("r.", "r.sign")))
    return (
        f"INSERT INTO {TALLIES} ({', '.join(KEY + SUMS)}, folded) "  # noqa: S608  # nosec B608
        f"SELECT {', '.join('t.' + k for k in KEY)}, {sums}, FALSE FROM ({moved}) AS r "
        f"CROSS JOIN LATERAL (VALUES {kinds}) AS t ({', '.join(KEY + SUMS)}) "
        f"WHERE r.submitted_at IS NOT NULL GROUP BY {key} HAVING {nonzero};"
    )


def _changed(vendor: str, old: str = "OLD.", new: str = "NEW.") -> str:
    differs = "IS DISTINCT FROM" if vendor == "postgresql" else "IS NOT"
    changes = [f"{old}{c} {differs} {new}{c}" for c in COUNTED]
    changes.append(f"({old}submitted_at IS NULL) <> ({new}submitted_at IS NULL)")
    return " OR ".join(changes)


def trigger_sql(vendor: str) -> list[str]:
    """The statements creating the triggers that keep the tallies: on PostgreSQL, AFTER each
    statement, from its transition tables (gone: the old rows, came: the new); on SQLite, which
    has no transition tables, AFTER each row change."""
    insert, update, delete = TRIGGERS
    if vendor == "postgresql":
        fields = ", ".join(FIELDS)
        came = f"SELECT 1 AS sign, {fields} FROM came"  # noqa: S608  # nosec B608
        gone = f"SELECT -1 AS sign, {fields} FROM gone"  # noqa: S608  # nosec B608
        # A call updated in columns not counted comes and goes with the same key: its rows
        # sum to zero and are not written (a statement trigger has no WHEN to skip them).
        moved = {"INSERT": came, "DELETE": gone, "UPDATE": f"{gone} UNION ALL {came}"}
        function = f"""CREATE OR REPLACE FUNCTION calls_tally() RETURNS trigger LANGUAGE plpgsql
            AS $$ BEGIN
                IF TG_OP = 'INSERT' THEN {_tally_statement(moved["INSERT"])}
                ELSIF TG_OP = 'DELETE' THEN {_tally_statement(moved["DELETE"])}
                ELSE {_tally_statement(moved["UPDATE"])}
                END IF;
                RETURN NULL;
            END $$"""
        tables = {insert: "NEW TABLE AS came", update: "OLD TABLE AS gone NEW TABLE AS came"}
        tables[delete] = "OLD TABLE AS gone"
        events = {insert: "INSERT", update: "UPDATE", delete: "DELETE"}
        return [
            *drop_trigger_sql(vendor)[:-1],
            function,
            *(
                f"CREATE TRIGGER {name} AFTER {events[name]} ON {CALLS} REFERENCING {tables[name]} "
                "FOR EACH STATEMENT EXECUTE FUNCTION calls_tally()"
                for name in TRIGGERS
            ),
        ]
    old, new = _tally_call(vendor, "OLD.", -1), _tally_call(vendor, "NEW.", 1)
    when = {
        insert: ("INSERT", "NEW.submitted_at IS NOT NULL", new),
        update: ("UPDATE", _changed(vendor), old + new),
        delete: ("DELETE", "OLD.submitted_at IS NOT NULL", old),
    }
    return [
        f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON {CALLS} FOR EACH ROW "
        f"WHEN {condition} BEGIN {body} END"
        for name, (event, condition, body) in when.items()
    ]


def drop_trigger_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {name} ON {CALLS}" for name in TRIGGERS] + [
            "DROP FUNCTION IF EXISTS calls_tally()"
        ]
    return [f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS]


def install_triggers(conn: BaseDatabaseWrapper) -> None:
    with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
        for sql in trigger_sql(conn.vendor):
            cursor.execute(sql)


def triggers_missing(conn: BaseDatabaseWrapper) -> bool:
    if conn.vendor == "postgresql":
        query = "SELECT count(*) FROM pg_trigger WHERE tgname = ANY(%s)"
    else:
        query = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN (%s, %s, %s)"
    with conn.cursor() as cursor:
        cursor.execute(query, [TRIGGERS] if conn.vendor == "postgresql" else TRIGGERS)
        (found,) = cursor.fetchone()
    return bool(found < len(TRIGGERS))


def rebuild_tallies(conn: BaseDatabaseWrapper = connection) -> dict[str, int]:
    """Count every placed call again, into one folded row per key; how many rows of each kind.
    Writers to the calls table wait meanwhile (on SQLite, writes are serialised anyway), so the
    recount and the triggers' rows never overlap or miss a change."""
    sums = ["COUNT(*)", "COUNT(duration)", "COALESCE(SUM(duration), 0)"]
    sums += [f"COALESCE(SUM({_units('cost')}), 0)", "COUNT(cost)"]
    group = ", ".join(str(i + 1) for i in range(len(KEY)))
    with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            # No fold meanwhile (its sums, committed after our DELETE began, would stay).
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
            # Readers go on; transactions writing calls finish first, later ones wait for us.
            cursor.execute(f"LOCK TABLE {CALLS} IN SHARE MODE")
        cursor.execute(f"DELETE FROM {TALLIES}")  # noqa: S608  # nosec B608
        for select in _rows(conn.vendor, "", sums):
            cursor.execute(
                f"INSERT INTO {TALLIES} ({', '.join(KEY + SUMS)}, folded) "  # noqa: S608  # nosec B608
                f"SELECT {select}, TRUE FROM {CALLS} WHERE submitted_at IS NOT NULL "
                f"GROUP BY {group}"
            )
        cursor.execute(f"SELECT kind, count(*) FROM {TALLIES} GROUP BY kind")  # noqa: S608  # nosec B608
        return dict(cursor.fetchall())


def ensure_tallies(using: str = "default", **kwargs: object) -> None:
    """After migrations (post_migrate): put the triggers back if they are gone (SQLite drops
    them with the table whenever a migration remakes the calls table) and recount, since
    changes made meanwhile were not counted. With no calls at all, recounting costs nothing and
    clears what a flush may leave (it can empty the tallies before the calls, whose delete
    triggers then write rows again)."""
    from django.db import connections

    conn = connections[using]
    if TALLIES not in conn.introspection.table_names():
        return  # migrated to before the roll-ups
    if triggers_missing(conn) or not CallLog.objects.using(using).exists():
        install_triggers(conn)
        rebuild_tallies(conn)


# --- Folding ----------------------------------------------------------------------------------


def fold_tallies() -> int:
    """Sum the rows of every key that has rows not yet folded into one folded row (none when
    they sum to zero); how many rows it took away. One fold at a time; the triggers go on."""
    key, sums = ", ".join(KEY), ", ".join(f"SUM({s})" for s in SUMS)
    nonzero = " OR ".join(f"SUM({s}) <> 0" for s in SUMS)
    fresh = f"SELECT {key} FROM {TALLIES} WHERE NOT folded"  # noqa: S608  # nosec B608
    insert = f"INSERT INTO {TALLIES} ({key}, {', '.join(SUMS)}, folded)"
    if not CallTally.objects.filter(folded=False).exists():
        return 0  # nothing new: no lock taken, no scan
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
            # One statement, one snapshot: the rows deleted are exactly the rows summed (rows
            # that other transactions commit meanwhile stay, for the next fold).
            cursor.execute(
                f"WITH gone AS (DELETE FROM {TALLIES} WHERE ({key}) IN ({fresh}) "  # noqa: S608  # nosec B608
                f"RETURNING {key}, {', '.join(SUMS)}), "
                f"kept AS ({insert} SELECT {key}, {sums}, TRUE FROM gone GROUP BY {key} "
                f"HAVING {nonzero} RETURNING 1) "
                "SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM kept)"
            )
            deleted, inserted = cursor.fetchone()
        else:
            # This transaction holds SQLite's one write lock from its start: nothing moves.
            cursor.execute(f"SELECT coalesce(max(id), 0) FROM {TALLIES}")  # noqa: S608  # nosec B608
            (last,) = cursor.fetchone()
            cursor.execute(
                f"{insert} SELECT {key}, {sums}, TRUE FROM {TALLIES} WHERE ({key}) IN ({fresh}) "  # noqa: S608  # nosec B608
                f"GROUP BY {key} HAVING {nonzero}"
            )
            inserted = cursor.rowcount
            cursor.execute(
                f"DELETE FROM {TALLIES} WHERE id <= %s AND ({key}) IN ({fresh} AND id <= %s)",  # noqa: S608  # nosec B608
                [last, last],
            )
            deleted = cursor.rowcount
    return int(deleted - inserted)


# --- Reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """Calls placed with these dimensions in the period, as the dashboard adds them up."""

    bridge: int
    flow: int | None
    audio: int | None
    status: str
    provider_status: str
    http_status: int | None
    n: int
    timed: int
    seconds: int
    cost: Decimal | None


def placed_groups(since: datetime) -> list[Group]:
    """Calls created since `since` (a whole quarter) and placed, by every dimension: the UTC
    days from the first whole one on, the quarters before it (two index-only reads)."""
    first = quarter(since)
    day = -(-first // QUARTERS_A_DAY) * QUARTERS_A_DAY
    tallies = CallTally.objects.values_list(*KEY[2:]).annotate(*(Sum(s) for s in SUMS)).order_by()
    totals: defaultdict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * len(SUMS))
    for part in [
        tallies.filter(kind=CallTally.Kind.DAY, bucket__gte=day),
        tallies.filter(kind=CallTally.Kind.QUARTER, bucket__gte=first, bucket__lt=day),
    ]:
        for row in part:
            total = totals[row[: -len(SUMS)]]
            for i, value in enumerate(row[-len(SUMS) :]):
                total[i] += value
    return [
        Group(
            bridge,
            flow or None,
            audio or None,
            status,
            provider,
            http or None,
            n,
            timed,
            seconds,
            Decimal(cost).scaleb(-COST_PLACES) if priced else None,
        )
        for (bridge, flow, audio, status, provider, http), (n, timed, seconds, cost, priced) in (
            totals.items()
        )
        if n  # every call of the key moved elsewhere
    ]


def placed_by_hour(since: datetime, zone: tzinfo) -> dict[int, Counter[str]]:
    """Calls created since `since` and placed, by hour of the day in `zone` and status."""
    hours: defaultdict[int, Counter[str]] = defaultdict(Counter)
    stretches = _stretches(quarter(since), quarter(datetime.now(UTC)), zone)
    for (first, offset), (end, _) in zip(stretches, [*stretches[1:], (None, 0)], strict=True):
        rows = CallTally.objects.filter(kind=CallTally.Kind.SLOT, bucket__gte=first)
        if end is not None:
            rows = rows.filter(bucket__lt=end)
        slots = (
            rows.annotate(slot=F("bucket") % QUARTERS_A_DAY)
            .values_list("slot", "status")
            .annotate(Sum("n"))
            .order_by()
        )
        for slot, status, n in slots:
            if n:
                hours[(slot * 15 + offset) // 60 % 24][status] += n
    return hours


def _stretches(first: int, last: int, zone: tzinfo) -> list[tuple[int, int]]:
    """The quarters from `first` to `last` as stretches of one UTC offset (a DST change starts
    another): each stretch's first quarter and its offset in minutes."""

    def offset(bucket: int) -> int:
        moment = datetime.fromtimestamp(bucket * QUARTER_SECONDS, zone).utcoffset()
        return int(moment.total_seconds()) // 60 if moment else 0

    stretches = [(first, offset(first))]
    at = first
    while at < last:
        step = min(at + QUARTERS_A_DAY, last)
        if offset(step) == stretches[-1][1]:
            at = step
            continue
        low, high = at, step  # the change is after low and at or before high
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if offset(middle) == stretches[-1][1] else (low, middle)
        stretches.append((high, offset(high)))
        at = high
    return stretches
