"""One INSERT per delivery through the same middleware stack as the portal; no model, no parsing.

The table is made by bench/webhook_load.py (`TABLE`, created with `create_table`)."""

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bench.bare import app as bare

TABLE = "bench_baseline_delivery"


def create_table() -> None:
    bare.create_table(TABLE)


@csrf_exempt
@login_not_required
@require_POST
def store(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (received_at, body) VALUES (%s, %s)",
            [timezone.now(), request.body.decode()],
        )
    return JsonResponse({"stored": True}, status=202)
