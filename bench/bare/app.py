"""The bare app's one view and URLconf. Its table is made by bench/webhook_load.py
(`create_table`)."""

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.utils import timezone

TABLE = "bench_bare_delivery"
PATH = "webhooks/bare/"


def create_table(table: str = TABLE) -> None:
    """A delivery table with only its primary key: what the bare app and the baseline write."""
    key = (
        "integer PRIMARY KEY AUTOINCREMENT"
        if connection.vendor == "sqlite"
        else "bigserial PRIMARY KEY"
    )
    moment = "datetime" if connection.vendor == "sqlite" else "timestamp with time zone"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (id {key}, received_at {moment} NOT NULL, body text NOT NULL)"
        )


def store(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (received_at, body) VALUES (%s, %s)",
            [timezone.now(), request.body.decode()],
        )
    return JsonResponse({"stored": True}, status=202)


urlpatterns = [path(PATH, store)]
