"""Call log at scale: how fast `/calls/` answers with 10k, 1M or 10M calls, and in how many queries.

What it does, for each table size (default 10,000 and 1,000,000 rows), in its own database:

1. migrates the database and seeds it with a realistic mix of calls (statuses, bridges, flows and
   audio, repeat customers, agents, provider ids, campaigns, spread over 90 days). PostgreSQL is
   seeded in SQL (`seed_calls_postgres`: INSERT ... SELECT generate_series, indexes built after,
   10M rows in about 25 minutes on 2 busy cores), with 100 campaigns whose rows are uploaded at
   once and dialled over the following hours (the last one still sending, one canceled half-way);
   SQLite row by row (`make_row`, executemany). Seeding is idempotent: a database that already
   holds the rows is not seeded again (an interrupted seed is completed).
2. logs in a user of the Agents group (which has `view_calllog`) with Django's test Client and
   times ~30 requests of each page in `PAGES` (full page and HTMX partial), after a warm-up.
   The figure is the server time seen by the test Client (no network): median and p90, and the
   slowest SQL query of the page (what grows with the table; the rest is rendering).
3. counts the SQL queries of each page (CaptureQueriesContext), to show the count does not grow
   with the table, and prints the plan (EXPLAIN (ANALYZE, BUFFERS) / EXPLAIN QUERY PLAN) of the
   page's queries on the calls table for any page whose median misses the target (every page with
   --explain).

Seeding 1M rows takes about 1.5 minutes on PostgreSQL and on SQLite (2 cores); a run on seeded
databases takes about 2 minutes.

Each size runs in a child process (one Django setup per database). Run from the repository root:

    .venv/bin/python bench/call_log.py                                  # PostgreSQL, 10k and 1M
    .venv/bin/python bench/call_log.py --database-url sqlite:////tmp/bench_calls.sqlite3
    .venv/bin/python bench/call_log.py --sizes 10000 --requests 10      # a quick look
    .venv/bin/python bench/call_log.py --rows 10000000 \
        --database-url "postgres://postgres@/obd_h2?host=/tmp/pg&port=54329"  # 10M, that database

The database URL names the base database: sizes get a suffix (bench_calls_10k, bench_calls_1m;
/tmp/bench_calls_1m.sqlite3); with --rows, the one database named. PostgreSQL databases are
created when missing (the server must trust the user or the URL must carry a password).

To add a page, append a `Page` to `PAGES` (the dashboard has its own bench/dashboard.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:55432/bench_calls"
TARGET_MS = 50.0  # issue 12: every call-log page under 50 ms at 10^7 calls
SEED = 20240710


# --- What is measured -------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """A named URL to time. `url` gets the sample values found in the seeded data."""

    name: str
    url: Callable[[dict], str]
    htmx: bool = True  # also time it as the HTMX partial (header HX-Request: true)
    target_ms: float = TARGET_MS


def _q(path: str, **params) -> str:
    return f"{path}?{urlencode(params)}"


PAGES: list[Page] = [
    Page("first page", lambda s: "/calls/"),
    Page("status common", lambda s: _q("/calls/", status="busy")),
    Page("status rare", lambda s: _q("/calls/", status="unknown")),
    Page("bridge rare", lambda s: _q("/calls/", bridge=s["rare_bridge"])),
    Page("flow rare", lambda s: _q("/calls/", flow=s["rare_flow"])),
    Page("campaign old", lambda s: _q("/calls/", campaign=s["old_campaign"])),
    Page("campaign sending", lambda s: _q("/calls/", campaign=s["sending_campaign"])),
    Page("campaign older", lambda s: s["campaign_older"]),
    Page("kind single", lambda s: _q("/calls/", kind="single")),
    Page("kind campaign", lambda s: _q("/calls/", kind="campaign")),
    Page("since last week", lambda s: _q("/calls/", since=s["week_ago"])),
    Page("status+bridge", lambda s: _q("/calls/", status="busy", bridge=s["bridge"])),
    Page("full number", lambda s: _q("/calls/", q="+" + s["number"])),
    Page("provider id", lambda s: _q("/calls/", q=s["provider_id"])),
    Page("older page", lambda s: s["older"]),
    Page("newer page", lambda s: s["newer"]),
    Page("oldest page", lambda s: s["oldest"]),
    Page("busy, older", lambda s: s["busy_older"]),
    Page(
        "rare filters",
        lambda s: _q("/calls/", status="unknown", bridge=s["rare_bridge"], flow=s["rare_flow"]),
    ),
    Page("placed by", lambda s: _q("/calls/", placed_by=s["rare_user"])),
    Page("old date range", lambda s: _q("/calls/", since=s["old_since"], until=s["old_until"])),
    Page("number ending", lambda s: _q("/calls/", q=s["number"][-4:])),
    Page("ending 2 digits", lambda s: _q("/calls/", q=s["number"][-2:])),
]


# --- Databases --------------------------------------------------------------------------------


def size_label(rows: int) -> str:
    if rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}m"
    if rows % 1_000 == 0:
        return f"{rows // 1_000}k"
    return str(rows)


def url_for_size(base_url: str, rows: int) -> str:
    """bench_calls → bench_calls_1m; /tmp/bench_calls.sqlite3 → /tmp/bench_calls_1m.sqlite3."""
    head, _, name = base_url.rpartition("/")
    stem, dot, ext = name.partition(".")
    return f"{head}/{stem}_{size_label(rows)}{dot}{ext}"


def ensure_postgres_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"  created database {name}", file=sys.stderr)


# --- Seeding (child process, Django set up) ---------------------------------------------------

BRIDGES = [
    ("918068287602", "Bengaluru support line", 40),
    ("914066554433", "Hyderabad collections", 25),
    ("912261234567", "Mumbai sales", 15),
    ("911141234567", "Delhi support", 10),
    ("914428123456", "Chennai renewals", 7),
    ("913340123456", "Kolkata pilot", 3),
]
FLOWS = [
    ("24", "Login OTP", "Hello {Name}, your otp for login is {otp}", 35),
    ("31", "Delivery reminder", "Hi {Name}, your order {order_id} arrives on {date}.", 25),
    ("23", "Welcome call", "Welcome to Acme. Thank you for choosing us.", 10),
    ("40", "Payment due", "Dear {Name}, {amount} rupees are due on {date}.", 8),
    ("41", "Feedback", "Hi {Name}, press 1 to 5 to rate your last delivery.", 2),
]
AUDIO = [
    ("Payment reminder (sound)", "39888925-718e-43bb-a8b1-d4a3c0de0001", "", 10),
    ("Holiday notice (URL)", "", "https://cdn.example.com/audio/holiday-notice.mp3", 6),
    ("Survey intro (sound)", "39888925-718e-43bb-a8b1-d4a3c0de0002", "", 4),
]
STATUSES = [  # (status, provider status, weight) for calls older than a few minutes
    ("answered", "ANSWER", 46),
    ("no_answer", "NOANSWER", 18),
    ("busy", "BUSY", 10),
    ("failed", "CONGESTION", 4),
    ("failed", "CHANUNAVAIL", 3),
    ("canceled", "CANCEL", 5),
    ("rejected", "", 3),
    ("error", "", 2),
    ("unknown", "", 1),
]
NAMES = ["Asha", "Ravi", "Priya", "Arjun", "Meena", "Vikram", "Sunita", "Kiran", "Deepak", "Anil"]
CAMPAIGNS = ["", "", "obd_api_call", "otp_login", "delivery_reminders", "dues_march", "welcome"]
AGENTS = 25
SPAN = timedelta(days=90)


def seed_catalogue() -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from calls.models import AudioAsset, Bridge, IvrFlow

    bridges = [
        (Bridge.objects.get_or_create(number=n, defaults={"label": label})[0].pk, w)
        for n, label, w in BRIDGES
    ]
    flows = [
        (IvrFlow.objects.get_or_create(flow_id=f, defaults={"name": n, "template": t})[0], w)
        for f, n, t, w in FLOWS
    ]
    audio = [
        (AudioAsset.objects.get_or_create(name=n, defaults={"sound_id": s, "url": u})[0], w)
        for n, s, u, w in AUDIO
    ]
    agents = Group.objects.get(name="Agents")
    users = []
    for i in range(AGENTS):
        user, created = get_user_model().objects.get_or_create(
            username=f"agent{i:02d}", defaults={"first_name": NAMES[i % len(NAMES)]}
        )
        if created:
            user.groups.add(agents)
        users.append(user.pk)
    viewer, created = get_user_model().objects.get_or_create(username="bench-viewer")
    if created:
        viewer.groups.add(agents)
    return {"bridges": bridges, "flows": flows, "audio": audio, "users": users, "viewer": viewer}


def number_pool(rows: int) -> list[str]:
    rng = random.Random(SEED)
    return [
        f"91{rng.choice('6789')}{rng.randrange(10**9):09d}" for _ in range(max(1000, rows // 5))
    ]


def make_row(i: int, rows: int, start: datetime, rng: random.Random, cat: dict, pool) -> dict:
    from calls.vocabulary import provider_key, variable_field

    """The columns of call number `i` of `rows`; ids and created_at grow together."""
    created_at = start + SPAN * (i / rows) + timedelta(seconds=rng.random() * 0.5)
    bridge_id = cat["bridge_ids"][cat["bridge_pick"](rng)]
    bridge_number = cat["bridge_numbers"][bridge_id]
    to = pool[int(len(pool) * rng.random() ** 1.3)]  # some customers are called a lot
    use_flow = rng.random() < 0.8
    flow = cat["flow_list"][cat["flow_pick"](rng)] if use_flow else None
    audio = None if use_flow else cat["audio_list"][cat["audio_pick"](rng)]
    name = rng.choice(NAMES)
    values = {}
    if flow is not None:
        clear = {
            "Name": name,
            "otp": f"{rng.randrange(10**6):06d}",
            "order_id": f"ORD{rng.randrange(10**7)}",
            "date": (created_at + timedelta(days=2)).strftime("%d %b"),
            "amount": str(rng.randrange(200, 20000)),
        }
        values = flow.mask({v: clear[v] for v in flow.variables})
    campaign = rng.choice(CAMPAIGNS)
    payload = {"bridge": bridge_number, "to": to}
    payload |= {"flow_id": flow.flow_id} if flow else {"audio": audio.audio}
    if campaign:
        payload["name"] = campaign
    payload |= {variable_field(k): v for k, v in values.items()}
    recent = (rows - i) * SPAN.total_seconds() / rows < 300  # the last five minutes
    if recent and rng.random() < 0.6:
        status, provider_status = rng.choice([("queued", "queued"), ("pending", "")])
    else:
        status, provider_status = cat["status_list"][cat["status_pick"](rng)]
    sent = status not in ("pending", "rejected", "error")
    provider_id = str(uuid.UUID(int=rng.getrandbits(128), version=4)) if sent else ""
    if sent and rng.random() < 0.1:
        provider_id += ":1"  # the legacy id form
    row = {
        "bridge_id": bridge_id,
        "to": to,
        "flow_id": flow.pk if flow else None,
        "audio_id": audio.pk if audio else None,
        "name": campaign,
        "interval": rng.choice([0, 0, 0, 0, 5, 15]),
        "webhook_id": "",
        "variables": values,
        "request_payload": payload,
        "response_body": "",
        "http_status": None,
        "provider_id": provider_id,
        "provider_key": provider_key(provider_id),
        "cost": Decimal("1.0000") if sent else None,
        "provider_created_at": created_at + timedelta(milliseconds=300) if sent else None,
        "status": status,
        "provider_status": provider_status,
        "error": "",
        "submitted_at": created_at if status != "pending" else None,
        "started_at": None,
        "ended_at": None,
        "duration": None,
        "recording_url": "",
        "attempts": 0,
        "outcome_at": None,
        "created_by_id": None if rng.random() < 0.08 else cat["user_pick"](rng),
        "created_at": created_at,
        "idempotency_key": uuid.UUID(int=rng.getrandbits(128), version=4),
    }
    if sent:
        row["http_status"] = 200
        row["response_body"] = json.dumps(
            {
                "status": "OK",
                "message": "Calls queued successfully",
                "data": [
                    {
                        "id": provider_key(provider_id),
                        "channel": "outgoing",
                        "caller_id": bridge_number,
                        "mobile": to,
                        "credits": 1,
                        "created_at": created_at.isoformat(),
                        "status": "queued",
                    }
                ],
            }
        )
    elif status == "rejected":
        row["http_status"] = 422
        row["response_body"] = '{"message": "The to field is invalid."}'
        row["error"] = "The to field is invalid."
    elif status == "error":
        row["error"] = "Provider unreachable: connection refused"
    if status in ("answered", "no_answer", "busy", "failed", "canceled"):
        started = created_at + timedelta(seconds=rng.randrange(3, 40))
        duration = rng.randrange(5, 180) if status == "answered" else 0
        row |= {
            "started_at": started,
            "ended_at": started + timedelta(seconds=duration + 15),
            "duration": duration,
            "attempts": 1 if rng.random() < 0.9 else 2,
            "outcome_at": started + timedelta(seconds=duration + 17),
        }
        if status == "answered" and rng.random() < 0.3:
            row["recording_url"] = f"https://recordings.example.com/{provider_id[:36]}.mp3"
    return row


def _picker(weights: list[int]) -> Callable[[random.Random], int]:
    cumulative, total = [], 0
    for w in weights:
        total += w
        cumulative.append(total)

    def pick(rng: random.Random) -> int:
        import bisect

        return bisect.bisect_right(cumulative, rng.random() * total)

    return pick


def seed_calls(rows: int, batch: int) -> None:
    """Insert calls until the table holds `rows` of them (none when it already does)."""
    from django.db import connection

    from calls.models import Bridge, CallLog

    cat = seed_catalogue()
    existing = CallLog.objects.count()
    if existing >= rows:
        print(f"  {existing:,} calls already there: not seeding", file=sys.stderr)
        return
    bridges, flows, audio = cat["bridges"], cat["flows"], cat["audio"]
    users = cat["users"]
    user_weights = [max(1, 100 // (k + 1)) for k in range(len(users))]
    user_pick = _picker(user_weights)
    picks = {
        "bridge_ids": [b for b, _ in bridges],
        "bridge_numbers": dict(Bridge.objects.values_list("pk", "number")),
        "bridge_pick": _picker([w for _, w in bridges]),
        "flow_list": [f for f, _ in flows],
        "flow_pick": _picker([w for _, w in flows]),
        "audio_list": [a for a, _ in audio],
        "audio_pick": _picker([w for _, w in audio]),
        "status_list": [(s, p) for s, p, _ in STATUSES],
        "status_pick": _picker([w for _, _, w in STATUSES]),
        "user_pick": lambda rng: users[user_pick(rng)],
    }
    pool = number_pool(rows)
    # Where the timeline starts is stored nowhere, so a completed seed continues the same spread.
    first = CallLog.objects.order_by("id").values_list("created_at", flat=True).first()
    start = first or (datetime.now().astimezone() - SPAN)
    fields = [f for f in CallLog._meta.concrete_fields if not (f.primary_key or f.generated)]
    columns = [f.column for f in fields]
    convert = _converters(fields, connection.vendor)
    table = CallLog._meta.db_table
    print(f"  seeding {rows - existing:,} calls into {table} ...", file=sys.stderr)
    began = time.perf_counter()
    for low in range(existing, rows, batch):
        high = min(rows, low + batch)
        rng = random.Random(SEED * 1_000 + low)
        data = []
        for i in range(low, high):
            row = make_row(i, rows, start, rng, picks, pool)
            data.append([conv(row.get(f.attname, default)) for f, (conv, default) in convert])
        _insert(connection, table, columns, data)
        rate = (high - existing) / (time.perf_counter() - began)
        print(f"  {high:,}/{rows:,} ({rate:,.0f} rows/s)", file=sys.stderr)
    with connection.cursor() as cursor:
        cursor.execute(
            f"VACUUM ANALYZE {table}" if connection.vendor == "postgresql" else "ANALYZE"
        )
    print(f"  seeded in {time.perf_counter() - began:.0f} s", file=sys.stderr)


def _converters(fields, vendor: str) -> list:
    """Per column: a function making the stored value, and the model default for columns we do
    not generate (so a field added later still gets a valid value)."""
    from django.db import connection, models

    out = []
    for field in fields:
        default = field.get_default() if field.has_default() or field.null else ""
        if isinstance(field, models.JSONField):
            conv = json.dumps
        elif vendor == "sqlite" and isinstance(field, models.DateTimeField):
            conv = connection.ops.adapt_datetimefield_value
        elif vendor == "sqlite" and isinstance(field, models.UUIDField):
            conv = lambda v: v.hex if v is not None else None  # noqa: E731
        elif vendor == "sqlite" and isinstance(field, models.DecimalField):
            conv = lambda v: str(v) if v is not None else None  # noqa: E731
        else:
            conv = lambda v: v  # noqa: E731
        out.append((field, (conv, default)))
    return out


def _insert(connection, table: str, columns: list[str], data: list[list]) -> None:
    from django.db import transaction

    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    if connection.vendor == "postgresql":
        sql = f"COPY {table} ({quoted}) FROM STDIN"
        with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for row in data:
                copy.write_row(row)
        return
    placeholders = ", ".join(["%s"] * len(columns))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({quoted}) VALUES ({placeholders})", data)


# --- Seeding 10^7 rows on PostgreSQL: one INSERT ... SELECT generate_series per million -----------

CAMPAIGN_BLOCKS = 100  # the timeline is cut in up to this many blocks, each opening with a campaign
CAMPAIGN_SHARE = 0.3  # of each block's rows: the campaign's (uploaded at once, sent over hours)
SQL_CHUNK = 1_000_000  # rows per INSERT (each commits, so an interrupted seed resumes)


def campaign_blocks(rows: int) -> int:
    """Blocks of at least 20,000 rows, so every campaign has several pages of calls."""
    return max(2, min(CAMPAIGN_BLOCKS, rows // 20_000))


def seed_campaigns(start: datetime, rows: int) -> list[int]:
    """One campaign per block of the timeline, uploaded at the block's start: all finished but
    the one in the middle (canceled half-way) and the last (still sending)."""
    from django.contrib.auth import get_user_model

    from calls.models import Bridge, Campaign, IvrFlow

    blocks = campaign_blocks(rows)
    names = [f"Bench campaign {c:03d}" for c in range(blocks)]
    have = dict(Campaign.objects.filter(name__in=names).values_list("name", "pk"))
    block = SPAN / blocks
    bridges = list(Bridge.objects.filter(number__in=[b[0] for b in BRIDGES]).order_by("pk"))
    flows = list(IvrFlow.objects.filter(flow_id__in=[f[0] for f in FLOWS]).order_by("pk"))
    agents = list(
        get_user_model().objects.filter(username__startswith="agent").order_by("username")
    )
    new = []
    for c, name in enumerate(names):
        if name in have:
            continue
        state = Campaign.Status.FINISHED
        if c == blocks - 1:
            state = Campaign.Status.RUNNING
        elif c == blocks // 2:
            state = Campaign.Status.STOPPED
        created = start + block * c
        new.append(
            Campaign(
                name=name,
                bridge=bridges[c % len(bridges)],
                flow=flows[c % len(flows)],
                pace=Decimal("5"),
                status=state,
                created_by=agents[c % len(agents)],
                created_at=created,
                started_at=created + timedelta(minutes=10),
                finished_at=None if state == Campaign.Status.RUNNING else created + block * 0.9,
            )
        )
    Campaign.objects.bulk_create(new)
    return list(
        Campaign.objects.filter(name__in=names).order_by("name").values_list("pk", flat=True)
    )


def _thresholds(weights: list[int]) -> str:
    """Cumulative shares for width_bucket(): the index of the weight a uniform draw falls in."""
    total, out = sum(weights), []
    for w in weights[:-1]:
        out.append((out[-1] if out else 0) + w / total)
    return "ARRAY[" + ",".join(f"{t:.6f}" for t in out) + "]::float8[]"


def _pick(values: list, weights: list[int], draw: str) -> str:
    """SQL choosing one of `values` with these weights by the uniform draw `draw`."""
    array = "ARRAY[" + ",".join(str(v) for v in values) + "]"
    return f"({array})[width_bucket({draw}, {_thresholds(weights)}) + 1]"


def seed_calls_postgres(rows: int) -> None:
    """Fill the calls table to `rows` rows in SQL (10^7 in minutes, not hours): each row is a
    function of its number, so an interrupted seed continues the same data.

    The timeline (90 days up to now) is cut in blocks (100 for 2M rows and more). Each opens with a
    campaign upload (30 % of the block's rows, created together, then sent at its pace over most
    of the block: created long before they are dialled), followed by single calls placed through
    the block. The last campaign is still sending (rows due later are pending, not sent), the
    middle one was canceled half-way (the rest withdrawn). Indexes are dropped while loading an
    empty table and rebuilt after, from their saved definitions."""
    from django.db import connection, transaction

    from calls.models import CallLog

    cat = seed_catalogue()
    table = CallLog._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_saved_index (name text, sql text)")
        cursor.execute(f"SELECT count(*) FROM {table}")
        existing = cursor.fetchone()[0]
    now = datetime.now().astimezone()
    first = CallLog.objects.order_by("id").values_list("created_at", flat=True).first()
    # Where the timeline started is the first row's block start, so a resumed seed continues it.
    start = first or (now - SPAN)
    campaigns = seed_campaigns(start, rows)
    if existing < rows:
        print(f"  seeding {rows - existing:,} calls into {table} in SQL ...", file=sys.stderr)
        began = time.perf_counter()
        if rows - existing >= SQL_CHUNK:  # a big load: indexes built after, once
            _drop_indexes(connection, table)
        sql = _insert_select(rows, start, now, cat, campaigns)
        for low in range(existing, rows, SQL_CHUNK):
            high = min(rows, low + SQL_CHUNK)
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, {"low": low, "high": high - 1})
            rate = (high - existing) / (time.perf_counter() - began)
            print(f"  {high:,}/{rows:,} ({rate:,.0f} rows/s)", file=sys.stderr, flush=True)
        print(f"  inserted in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    else:
        print(f"  {existing:,} calls already there: not seeding", file=sys.stderr)
    _restore_indexes(connection)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT max(id) FROM " + table + "))",
            [table],
        )


def _drop_indexes(connection, table: str) -> None:
    """Keep the definitions, then drop the indexes, unique and foreign-key constraints (checked
    or built once after the load, by sorting, instead of row by row): all but the primary key."""
    from django.db import transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO bench_saved_index
               SELECT c.conname, format('ALTER TABLE %%I ADD CONSTRAINT %%I %%s', %s, c.conname,
                                        pg_get_constraintdef(c.oid))
               FROM pg_constraint c WHERE c.conrelid = %s::regclass AND c.contype IN ('u', 'f')""",
            [table, table],
        )
        cursor.execute(
            """INSERT INTO bench_saved_index
               SELECT i.indexname, i.indexdef FROM pg_indexes i
               WHERE i.tablename = %s AND NOT EXISTS (
                   SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)""",
            [table],
        )
        cursor.execute("SELECT name, sql FROM bench_saved_index")
        for name, sql in cursor.fetchall():
            if sql.startswith("ALTER TABLE"):
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT IF EXISTS "{name}"')
            else:
                cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


def _restore_indexes(connection) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, sql FROM bench_saved_index ORDER BY sql LIKE 'ALTER%%'")
        saved = cursor.fetchall()
        if not saved:
            return
        cursor.execute("SET maintenance_work_mem = '1GB'")
        for name, sql in saved:
            began = time.perf_counter()
            cursor.execute(sql.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1))
            cursor.execute("DELETE FROM bench_saved_index WHERE name = %s", [name])
            print(f"  index {name}: {time.perf_counter() - began:.0f} s", file=sys.stderr)


def _insert_select(rows: int, start: datetime, now: datetime, cat: dict, campaigns: list) -> str:
    """One INSERT ... SELECT over generate_series(%(low)s, %(high)s): every value is drawn from
    hashes of the row number (u(k)), so any stretch of rows can be built again identically."""
    from django.db import connection

    from calls.models import Bridge, CallLog

    numbers = dict(Bridge.objects.values_list("pk", "number"))
    bridge_ids = [b for b, _ in cat["bridges"]]
    flows = cat["flows"]  # (IvrFlow, weight), in FLOWS order
    audio = cat["audio"]
    users = cat["users"]
    blocks = campaign_blocks(rows)
    block_rows = -(-rows // blocks)
    camp_rows = int(block_rows * CAMPAIGN_SHARE)
    block_s = SPAN.total_seconds() / blocks
    status_names = [f"'{s}'" for s, _, _ in STATUSES]
    status_weights = [w for _, _, w in STATUSES]
    user_weights = [max(1, 100 // (k + 1)) for k in range(len(users))]
    flow_case = " ".join(
        f"WHEN {flow.pk} THEN jsonb_build_object("
        + ", ".join(
            f"'{v}', "
            + {
                "Name": f"(ARRAY[{','.join(repr(n) for n in NAMES)}])[1 + floor(u(i, 20) * {len(NAMES)})::int]",
                "otp": "'******'",
                "order_id": "'ORD' || floor(u(i, 21) * 1e7)::bigint",
                "date": "to_char(created_at + interval '2 days', 'DD Mon')",
                "amount": "(200 + floor(u(i, 22) * 19800))::int::text",
            }[v]
            for v in flow.variables
        )
        + ")"
        for flow, _ in flows
    )
    bridge_case = " ".join(f"WHEN {pk} THEN '{n}'" for pk, n in numbers.items())
    flow_ids = " ".join(f"WHEN {flow.pk} THEN '{flow.flow_id}'" for flow, _ in flows)
    audio_values = " ".join(f"WHEN {a.pk} THEN '{a.audio}'" for a, _ in audio)
    pool = max(1000, rows // 5)
    u = "(hashint8extended(i, {k}) & 9007199254740991)::float8 / 9007199254740992"

    # `u(i, k)`: a uniform draw in [0, 1), the k-th of row i.
    def draw(text: str) -> str:
        import re

        return re.sub(r"u\(i, (\d+)\)", lambda m: "(" + u.format(k=m[1]) + ")", text)

    base = f"""
      SELECT i, b, j, campaign_id, created_at, due,
        CASE
          WHEN campaign_id IS NOT NULL AND b = {blocks // 2} AND b < {blocks - 1} AND j >= {camp_rows // 2}
            THEN 'withdrawn'
          WHEN due > %(now)s THEN 'pending'
          WHEN due > %(now)s - interval '5 minutes' AND u(i, 2) < 0.6 THEN 'queued'
          ELSE (ARRAY[{",".join(status_names)}])[width_bucket(u(i, 3), {_thresholds(status_weights)}) + 1]
        END AS status,
        CASE WHEN campaign_id IS NULL AND u(i, 4) < 0.8
          THEN {_pick([f.pk for f, _ in flows], [w for _, w in flows], "u(i, 5)")}
        END AS single_flow,
        CASE WHEN campaign_id IS NULL
          THEN {_pick(bridge_ids, [w for _, w in cat["bridges"]], "u(i, 6)")} END AS single_bridge,
        CASE WHEN campaign_id IS NULL AND u(i, 7) >= 0.08
          THEN {_pick(users, user_weights, "u(i, 8)")} END AS single_user,
        floor({pool} * u(i, 9) ^ 1.3)::bigint AS customer
      FROM (
        SELECT i, b, j,
          CASE WHEN j < {camp_rows} THEN (ARRAY[{",".join(map(str, campaigns))}])[b + 1] END
            AS campaign_id,
          %(start)s::timestamptz + make_interval(secs => b * {block_s}
            + CASE WHEN j < {camp_rows} THEN 0
                   ELSE (j - {camp_rows} + u(i, 1)) * {block_s} / {block_rows - camp_rows} END)
            AS created_at,
          %(start)s::timestamptz + make_interval(secs => b * {block_s}
            + CASE WHEN j < {camp_rows} THEN 600 + j * {block_s * 0.8 / max(camp_rows, 1)}
                     * CASE WHEN b = {blocks - 1} THEN 2 ELSE 1 END
                   ELSE (j - {camp_rows} + u(i, 1)) * {block_s} / {block_rows - camp_rows} END)
            AS due
        FROM (SELECT i, i / {block_rows} AS b, mod(i, {block_rows}) AS j
              FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS i) AS n
      ) AS t
    """
    shaped = f"""
      SELECT s.*,
        coalesce(single_bridge, c_bridge) AS bridge_id,
        coalesce(single_flow, c_flow) AS flow_id,
        CASE WHEN campaign_id IS NULL AND single_flow IS NULL
          THEN {_pick([a.pk for a, _ in audio], [w for _, w in audio], "u(i, 10)")} END AS audio_id,
        CASE WHEN campaign_id IS NULL THEN single_user ELSE c_user END AS user_id,
        '91' || (6 + mod(customer, 4))
          || lpad(mod(customer * 982451653 + 12345, 1000000000)::text, 9, '0')
          AS number,
        status NOT IN ('pending', 'withdrawn', 'rejected', 'error') AS sent,
        status IN ('answered', 'no_answer', 'busy', 'failed', 'canceled') AS settled,
        CASE WHEN status IN ('pending', 'withdrawn') THEN NULL ELSE due END AS submitted,
        md5(i::text || 'call')::uuid::text AS uuid_text
      FROM ({base}) AS s LEFT JOIN (
        SELECT id AS c_id, bridge_id AS c_bridge, flow_id AS c_flow, created_by_id AS c_user
        FROM calls_campaign) AS cc ON cc.c_id = s.campaign_id
    """
    final = f"""
      SELECT r.*,
        CASE WHEN sent THEN uuid_text || CASE WHEN u(i, 11) < 0.1 THEN ':1' ELSE '' END ELSE '' END
          AS provider_id,
        CASE WHEN flow_id IS NULL THEN '{{}}'::jsonb ELSE CASE flow_id {flow_case} END END
          AS vars,
        submitted + make_interval(secs => 3 + floor(u(i, 12) * 37)) AS started,
        CASE WHEN status = 'answered' THEN 5 + floor(u(i, 13) * 175)::int ELSE 0 END AS dur
      FROM ({shaped}) AS r
    """
    provider_status = (
        "CASE status WHEN 'queued' THEN 'queued' "
        + " ".join(f"WHEN '{s}' THEN '{p}'" for s, p, _ in STATUSES if s != "failed")
        + " WHEN 'failed' THEN CASE WHEN u(i, 14) < 0.57 THEN 'CONGESTION' ELSE 'CHANUNAVAIL' END"
        + " ELSE '' END"
    )
    columns = {
        "interval": "(ARRAY[0,0,0,0,5,15])[1 + floor(u(i, 15) * 6)::int]",
        "webhook_id": "''",
        "to": "number",
        "name": "''",
        "variables": "vars",
        "request_payload": f"""jsonb_build_object('bridge', CASE bridge_id {bridge_case} END,
            'to', number) || CASE WHEN flow_id IS NULL
              THEN jsonb_build_object('audio', CASE audio_id {audio_values} END)
              ELSE jsonb_build_object('flow_id', CASE flow_id {flow_ids} END) END
            || coalesce((SELECT jsonb_object_agg('variables[' || key || ']', value)
                         FROM jsonb_each(vars)), '{{}}'::jsonb)""",
        "response_body": """CASE WHEN sent THEN json_build_object('status', 'OK',
            'message', 'Calls queued successfully', 'data', json_build_array(json_build_object(
              'id', uuid_text, 'channel', 'outgoing', 'mobile', number, 'credits', 1,
              'status', 'queued')))::text
            WHEN status = 'rejected' THEN '{"message": "The to field is invalid."}'
            ELSE '' END""",
        "http_status": "CASE WHEN sent THEN 200 WHEN status = 'rejected' THEN 422 END",
        "provider_id": "provider_id",
        "provider_key": "CASE WHEN sent THEN uuid_text ELSE '' END",
        "cost": "CASE WHEN sent THEN 1.0 END",
        "provider_created_at": "CASE WHEN sent THEN submitted + interval '300 ms' END",
        "status": "status",
        "provider_status": provider_status,
        "error": """CASE status WHEN 'rejected' THEN 'The to field is invalid.'
            WHEN 'error' THEN 'Provider unreachable: connection refused' ELSE '' END""",
        "submitted_at": "submitted",
        "started_at": "CASE WHEN settled THEN started END",
        "ended_at": "CASE WHEN settled THEN started + make_interval(secs => dur) END",
        "duration": "CASE WHEN settled THEN dur END",
        "recording_url": """CASE WHEN status = 'answered' AND u(i, 16) < 0.3
            THEN 'https://recordings.example.com/' || uuid_text || '.mp3' ELSE '' END""",
        "attempts": "CASE WHEN settled THEN 1 + (u(i, 17) < 0.1)::int ELSE 0 END",
        "outcome_at": "CASE WHEN settled THEN started + make_interval(secs => dur + 17) END",
        "created_at": "created_at",
        "idempotency_key": "md5(i::text || 'key')::uuid",
        "sealed_variables": "''",
        "audio_id": "audio_id",
        "bridge_id": "bridge_id",
        "created_by_id": "user_id",
        "campaign_id": "campaign_id",
        "flow_id": "flow_id",
    }
    fields = [f for f in CallLog._meta.concrete_fields if not (f.primary_key or f.generated)]
    # A column added later gets the model's default (or NULL, or ""): the seed still runs.
    for field in fields:
        if field.column not in columns:
            default = field.get_default() if field.has_default() or field.null else ""
            value = field.get_db_prep_save(default, connection)
            columns[field.column] = connection.ops.compose_sql("%s", [value])
    stored = {f.column for f in fields}
    names = [c for c in columns if c in stored]
    quoted = ", ".join(f'"{c}"' for c in names)
    values = ", ".join(columns[c] for c in names)
    sql = f"INSERT INTO {CallLog._meta.db_table} ({quoted}) SELECT {values} FROM ({final}) AS f"
    sql = draw(sql)
    return sql.replace("%(now)s", f"'{now.isoformat()}'::timestamptz").replace(
        "%(start)s", f"'{start.isoformat()}'"
    )


# --- Measuring (child process) ----------------------------------------------------------------


def samples(client) -> dict:
    """Values for the URLs: a busy bridge, a number that exists, a rare agent, old and sending
    campaigns... Deep pages are the "Older →" / "← Newer" links the log itself writes (whatever
    its cursor looks like), found from a page ending on an old day."""
    import re

    from django.contrib.auth import get_user_model
    from django.db.models import Count

    from calls.models import Bridge, CallLog, Campaign, IvrFlow

    last = CallLog.objects.order_by("-id").values_list("id", flat=True).first()
    first = CallLog.objects.order_by("id").values_list("id", flat=True).first()
    middle = CallLog.objects.filter(id__gte=(first + last) // 2).order_by("id").first()
    with_id = (
        CallLog.objects.filter(id__gte=first + (last - first) // 3)
        .exclude(provider_id="")
        .order_by("id")
        .first()
    )
    newest = CallLog.objects.order_by("-id").values_list("created_at", flat=True).first()
    oldest = CallLog.objects.order_by("id").values_list("created_at", flat=True).first()
    rare = (
        get_user_model()
        .objects.filter(username__startswith="agent")
        .annotate(n=Count("calls"))
        .order_by("n")
        .first()
    )
    campaigns = list(Campaign.objects.order_by("created_at").values_list("pk", flat=True))

    def link(url: str, rel: str) -> str:
        """The query parameter of the pager's link `rel` ("before" or "after") on `url`."""
        page = client.get(url).content.decode()
        found = re.search(rf"[?&;]({rel}=[^\"&]+)", page.replace("&amp;", "&"))
        assert found, (url, rel)
        return found[1]

    def day(when) -> str:
        return when.date().isoformat()

    span = newest - oldest
    quarter = oldest + span / 4
    older = "/calls/?" + link(_q("/calls/", until=day(quarter)), "before")
    values = {
        "bridge": middle.bridge_id,
        "rare_bridge": Bridge.objects.get(number=BRIDGES[-1][0]).pk,
        "rare_flow": IvrFlow.objects.get(flow_id=FLOWS[-1][0]).pk,
        "number": middle.to,
        "provider_id": with_id.provider_id,
        "rare_user": rare.pk,
        "old_since": day(newest - timedelta(days=80)),
        "old_until": day(newest - timedelta(days=75)),
        "week_ago": day(newest - timedelta(days=7)),
        "older": older,
        "newer": "/calls/?" + link(older, "after"),
        "oldest": "/calls/?" + link(_q("/calls/", until=day(oldest + span / 20)), "before"),
        "busy_older": "/calls/?status=busy&"
        + link(_q("/calls/", status="busy", until=day(quarter)), "before"),
        "old_campaign": campaigns[len(campaigns) // 5] if campaigns else "",
        "sending_campaign": campaigns[-1] if campaigns else "",
    }
    campaign = values["old_campaign"]
    values["campaign_older"] = f"/calls/?campaign={campaign}&" + link(
        _q("/calls/", campaign=campaign), "before"
    )
    return values


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def explain(connection, sql: str) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql)
        return "\n".join(" | ".join(str(c) for c in row) for row in cursor.fetchall())


def measure(requests: int, warmup: int, always_explain: bool) -> list[dict]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(seed_catalogue()["viewer"])
    sample = samples(client)
    results = []
    for page in PAGES:
        url = page.url(sample)
        for htmx in (False, True) if page.htmx else (False,):
            headers = {"HX-Request": "true"} if htmx else {}
            for _ in range(warmup):
                response = client.get(url, headers=headers)
                assert response.status_code == 200, (url, response.status_code)
            times, cpu = [], []
            for _ in range(requests):
                began, began_cpu = time.perf_counter(), time.process_time()
                response = client.get(url, headers=headers)
                times.append((time.perf_counter() - began) * 1000)
                cpu.append((time.process_time() - began_cpu) * 1000)
                assert response.status_code == 200, (url, response.status_code)
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url, headers=headers)
            rows = response.content.count(b'<tr id="call-')
            result = {
                "page": page.name,
                "variant": "htmx" if htmx else "full",
                "url": url,
                "median_ms": statistics.median(times),
                "p90_ms": percentile(times, 0.9),
                # This process's CPU (Django, rendering; not PostgreSQL's): less noisy than the
                # wall clock on a machine other work shares.
                "cpu_ms": statistics.median(cpu),
                "queries": len(queries.captured_queries),
                "rows_shown": rows,
                "bytes": len(response.content),
            }
            captured = queries.captured_queries
            result["slowest_query_ms"] = max(float(q["time"]) for q in captured) * 1000
            result["target_ms"] = page.target_ms
            if always_explain or (not htmx and result["median_ms"] > page.target_ms):
                # The call-log queries (SQLite's timings leave out fetching, so not by time).
                sqls = [q["sql"] for q in captured if 'FROM "calls_calllog"' in q["sql"]]
                sqls = sqls or [max(captured, key=lambda q: float(q["time"]))["sql"]]
                result["explain"] = [(sql, explain(connection, sql)) for sql in sqls]
            results.append(result)
            print(
                f"  {page.name:<16} {result['variant']:<5} median {result['median_ms']:7.1f} ms"
                f"  p90 {result['p90_ms']:7.1f} ms  {result['queries']} queries  {rows} rows",
                file=sys.stderr,
            )
    return results


def child(args: argparse.Namespace) -> None:
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "obdportal.settings")
    os.environ["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    warnings.filterwarnings("ignore", "No directory at")  # staticfiles/ before collectstatic
    code = Path(args.code).resolve() if args.code else REPO
    os.chdir(code)
    sys.path.insert(0, str(code))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:  # a bigger page cache for this one process
            cursor.execute("PRAGMA cache_size=-262144")
    if connection.vendor == "postgresql":
        seed_calls_postgres(args.size)
    else:
        seed_calls(args.size, args.batch)
    with connection.cursor() as cursor:  # fresh statistics and visibility, also after a migration
        cursor.execute(
            "VACUUM ANALYZE calls_calllog" if connection.vendor == "postgresql" else "ANALYZE"
        )
    from calls.models import CallLog

    count = CallLog.objects.count()
    load_before = os.getloadavg()[0]
    results = measure(args.requests, args.warmup, args.explain)
    out = {"rows": count, "vendor": connection.vendor, "results": results}
    out["load"] = [load_before, os.getloadavg()[0]]
    Path(args.result_file).write_text(json.dumps(out))


# --- Orchestration (parent) -------------------------------------------------------------------


def run_size(args: argparse.Namespace, rows: int, url: str) -> dict:
    print(f"== {size_label(rows)} rows on {url}", file=sys.stderr, flush=True)
    if url.startswith(("postgres://", "postgresql://", "pgsql://")):
        ensure_postgres_database(url)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, __file__, "--child", "--size", str(rows)]
        command += ["--database-url", url, "--result-file", out.name]
        command += ["--requests", str(args.requests), "--warmup", str(args.warmup)]
        command += ["--batch", str(args.batch)] + (["--explain"] if args.explain else [])
        command += ["--code", args.code] if args.code else []
        subprocess.run(command, check=True, cwd=REPO)
        return json.loads(Path(out.name).read_text())


def report(runs: list[dict]) -> None:
    vendor = runs[0]["vendor"]
    print(
        f"\nCall log on {vendor}: server time per request (test Client), target {TARGET_MS:.0f} ms"
    )
    head = f"{'page':<16} {'variant':<7}"
    for run in runs:
        label = size_label(run["rows"])
        head += f" | {label + ' median':>11} {label + ' p90':>9} {'queries':>7} {'sql':>7}"
    print(head)
    print("-" * len(head))
    by_key = [{(r["page"], r["variant"]): r for r in run["results"]} for run in runs]
    for key in by_key[0]:
        line = f"{key[0]:<16} {key[1]:<7}"
        for table in by_key:
            r = table[key]
            flag = "*" if r["median_ms"] > r["target_ms"] else " "
            line += f" | {r['median_ms']:8.1f}{flag}ms {r['p90_ms']:6.1f} ms {r['queries']:>7}"
            line += f" {r['slowest_query_ms']:4.0f} ms"
        print(line)
    counts = {key: {t[key]["queries"] for t in by_key} for key in by_key[0]}
    constant = all(len(c) == 1 for c in counts.values())
    sizes = " vs ".join(f"{run['rows']:,}" for run in runs)
    print(f"(* = median over the target: {TARGET_MS:.0f} ms)")
    for run in runs:
        low, high = run["load"]
        print(f"load average while measuring {run['rows']:,} rows: {low:.1f} → {high:.1f}")
    print(f"\nQueries per page constant across {sizes} rows: {'yes' if constant else 'NO'}")
    for run in runs:
        for r in run["results"]:
            for sql, plan in r.get("explain", []):
                print(f"\n-- {r['page']} ({r['variant']}) at {run['rows']:,} rows: {r['url']}")
                print(f"   median {r['median_ms']:.1f} ms; plan of: {sql}")
                print("   " + plan.replace("\n", "\n   "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="base database; each size gets its own (suffix _10k, _1m). "
        f"Default $BENCH_DATABASE_URL or {DEFAULT_DATABASE_URL}",
    )
    parser.add_argument("--sizes", default="10000,1000000", help="comma-separated row counts")
    parser.add_argument(
        "--rows",
        type=int,
        help="one size only, in the database of --database-url as named (no suffix): "
        "e.g. --rows 10000000 (built in SQL on PostgreSQL, reused by later runs)",
    )
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first")
    parser.add_argument("--batch", type=int, default=50_000, help="rows per COPY/executemany")
    parser.add_argument("--explain", action="store_true", help="print every page's plan")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--code",
        help="time the portal of this checkout (e.g. a worktree of an older commit) instead of "
        "this one's, for before/after runs: see bench/call_log_compare.py",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.rows:
        runs = [run_size(args, args.rows, args.database_url)]
    else:
        sizes = [int(rows) for rows in args.sizes.split(",")]
        runs = [run_size(args, rows, url_for_size(args.database_url, rows)) for rows in sizes]
    report(runs)
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
