"""Rows changed in one statement, cheaply: many rows at once (`update_rows`; `rows_update` builds
it before a lock is taken), or one guarded change on a hot path (`update_where`, through
`prepared_cursor`)."""

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from functools import cache
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


def update_rows(rows: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write `fields` of every row in one `WITH v AS (…) UPDATE … FROM v`. Django's bulk_update
    builds a CASE per field and row, which costs far more Python than the database spends
    (about 10 ms a row in a batch of 500)."""
    rows_update(rows, fields)()


def rows_update(
    rows: Sequence[models.Model], fields: Sequence[str], *, while_null: str = ""
) -> Callable[[], set[Any]]:
    """`update_rows` built now and run when called: its text and values are made before the
    caller takes a lock, which is then held for the statement alone. With `while_null` (a field
    among `fields`), a row is written only while that column is still empty (compare-and-set).
    The call returns the keys of the rows written."""
    if not rows:
        return set
    meta = rows[0]._meta
    columns: list[models.Field[object, object]] = [meta.pk]
    for name in fields:
        field = meta.get_field(name)
        assert isinstance(field, models.Field)  # a column, not a reverse relation
        columns.append(field)
    db = this_connection()
    q = db.ops.quote_name
    names = [f"v_{c.column}" for c in columns]
    table, key = q(str(meta.db_table)), q(str(columns[0].column))
    assignments = ", ".join(
        f"{q(str(c.column))} = v.{q(n)}" for c, n in zip(columns[1:], names[1:], strict=True)
    )
    if db.vendor == "postgresql":
        # The rows as one JSON text, typed by the columns on the server: json.dumps is C, where
        # arrays or a VALUES list are quoted value by value in Python by the client cursor.
        named = list(zip(columns, names, strict=True))
        typed = ", ".join(f"{q(n)} {c.db_type(db)}" for c, n in named)
        source = f"jsonb_to_recordset(%s::jsonb) AS r ({typed})"
        rows_json = [{n: _plain(c, row, db) for c, n in named} for row in rows]
        params: list[Any] = [json.dumps(rows_json, default=_iso)]
    else:
        holders = f"({', '.join(['%s'] * len(columns))})"
        source = f"(VALUES {', '.join([holders] * len(rows))})"
        params = [c.get_db_prep_save(getattr(r, c.attname), db) for r in rows for c in columns]
    guarded = [c for c in columns if c.name == while_null]
    if len(guarded) != bool(while_null):
        raise ValueError(f"{while_null} is not among the fields written")
    guard = "".join(f" AND {table}.{q(str(c.column))} IS NULL" for c in guarded)
    sql = (
        f"WITH v ({', '.join(q(n) for n in names)}) AS (SELECT * FROM {source}) "  # noqa: S608  # nosec B608 (the model's own names; values are parameters)
        f"UPDATE {table} SET {assignments} FROM v WHERE {table}.{key} = v.{q(names[0])}{guard} "
        f"RETURNING {table}.{key}"
    )

    def run() -> set[Any]:
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return {pk for (pk,) in cursor.fetchall()}

    return run


def _plain(
    field: models.Field[object, object], row: models.Model, db: BaseDatabaseWrapper
) -> object:
    """A row's value as JSON carries it: a JSON column's own value, any other as prepared."""
    value = getattr(row, field.attname)
    if isinstance(field, models.JSONField):
        return value
    return field.get_db_prep_save(value, db)


def _iso(value: object) -> str:
    if isinstance(value, date):  # datetimes too: ISO 8601 with its offset, as PostgreSQL reads
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")


Model = type[models.Model]
MANY = (list, tuple, set, frozenset)  # a `where` value any of whose items may match


def update_where(
    model: Model,
    where: Mapping[str, object],
    values: Mapping[str, object],
    *,
    also: str = "",
    also_params: Sequence[Any] = (),
) -> int:
    """`UPDATE … SET values WHERE where [AND also]`; the rows changed. Each `where` field must
    hold its value: None is `IS NULL`, a list, tuple or set is `IN`. `also` is a condition in SQL
    of the caller's own (its values in `also_params`). The statement's text is built once per shape:
    on the send path, Django building an UPDATE cost more than the database running it. It is
    planned once for any values (prepared; on SQLite, always): a partial index serves it only if
    `also` says the index's condition, word for word."""
    shape = tuple(
        (name, "null" if v is None else len(v) if isinstance(v, MANY) else "=")
        for name, v in where.items()
    )
    db = this_connection()
    sql, fields = _update_sql(db.vendor, model, shape, tuple(values), also)
    params: list[Any] = [fields[name].get_db_prep_save(value, db) for name, value in values.items()]
    for name, value in where.items():
        field = fields[name]
        if isinstance(value, MANY):
            params += [field.get_db_prep_value(v, db) for v in value]
        elif value is not None:
            params.append(field.get_db_prep_value(value, db))
    with prepared_cursor(db) as cursor:
        cursor.execute(sql, [*params, *also_params])
        return int(cursor.rowcount)


def this_connection() -> BaseDatabaseWrapper:
    """This thread's connection itself. `django.db.connection` stands for it and looks it up
    again (a thread-local read) at every attribute: some fifty times a send, a dozen a delivery,
    on the hot paths that read it so often."""
    return connections[DEFAULT_DB_ALIAS]


def prepared_cursor(db: BaseDatabaseWrapper | None = None) -> CursorWrapper:
    """A cursor for the few statements run for every call (a send's UPDATEs, the door's INSERT).
    Django's cursors send each statement as new text, which PostgreSQL parses and plans every
    time: for the send's compare-and-set that was 0.18 of its 0.5 ms. This one sends the values
    apart from the text (server-side binding), so psycopg has each statement prepared once per
    connection (`prepare_threshold` in settings; Django's own cursors are never prepared). A
    plain cursor on SQLite, and behind a pooler in transaction mode, where a prepared statement
    may be on another server connection (Django's DISABLE_SERVER_SIDE_CURSORS says so)."""
    db = db or this_connection()
    if db.vendor != "postgresql" or db.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"):
        return db.cursor()
    db.validate_thread_sharing()  # as Django's own cursors do before each
    db.close_if_health_check_failed()
    db.ensure_connection()
    wrapper = CursorDebugWrapper if db.queries_logged else CursorWrapper
    return wrapper(psycopg.Cursor(db.connection), db)


@cache
def _update_sql(
    vendor: str,
    model: Model,
    where: tuple[tuple[str, object], ...],
    names: tuple[str, ...],
    also: str,
) -> tuple[str, dict[str, models.Field[object, object]]]:
    meta = model._meta
    q = connection.ops.quote_name
    fields: dict[str, models.Field[object, object]] = {}
    for name in {*names, *(name for name, _ in where)}:
        field = meta.get_field(name)
        assert isinstance(field, models.Field)  # a column, not a reverse relation
        fields[name] = field
    conditions = []
    for name, test in where:
        column = q(str(fields[name].column))
        if test == "null":
            conditions.append(f"{column} IS NULL")
        elif test == "=":
            conditions.append(f"{column} = %s")
        else:
            assert test, f"{name}: no value may match"
            conditions.append(f"{column} IN ({', '.join(['%s'] * int(str(test)))})")
    if also:
        conditions.append(f"({also})")
    assignments = ", ".join(f"{q(str(fields[n].column))} = %s" for n in names)
    table = q(str(meta.db_table))
    sql = f"UPDATE {table} SET {assignments} WHERE {' AND '.join(conditions)}"  # noqa: S608  # nosec B608 (the model's own names; values are parameters)
    return sql, fields
