"""Signed callbacks (issue 20), in-process, on one database:

1. what the outbox costs the deliveries worker: outcomes applied per second (batch 500) with no
   endpoint, and with one endpoint hearing every event (each outcome then records two events and
   two deliveries in the batch's transaction), side by side;
2. the engine's look-up of due deliveries over a backlog (an endpoint that was down: --backlog
   pending deliveries, five events per call, so the per-call order check has work to do);
3. deliveries posted per second by one run of the job to local receivers answering 204 at once,
   signed and verified-able (one endpoint, then four).

Run from the repository root (the database is migrated, not emptied; use a benchmark database):

    .venv/bin/python bench/callbacks.py --database-url postgres://postgres@127.0.0.1:54329/bench_cb
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import webhook_profile


class Quick(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def receiver() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Quick)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/hook"


def endpoint(url: str):
    from calls.models import CallbackEndpoint
    from calls.models.callbacks import EventType

    made = CallbackEndpoint(url=url, event_types=list(EventType.values))
    made.set_new_secret()
    made.save()
    return made


def outbox_cost(n: int) -> None:
    from calls.models import CallbackEndpoint

    CallbackEndpoint.objects.all().delete()
    bare = webhook_profile.applied_per_second(webhook_profile.deliveries(n), 500)
    endpoint("https://crm.example/hook")
    told = webhook_profile.applied_per_second(webhook_profile.deliveries(n), 500)
    print(f"outcomes applied/s, batch 500: no endpoint {bare:,.0f}; one hearing all {told:,.0f}")


def due_lookup(backlog: int) -> None:
    from django.utils import timezone

    from calls.models import CallbackDelivery, CallbackEndpoint, CallbackEvent
    from calls.models.callbacks import new_message_id

    CallbackEndpoint.objects.all().delete()
    down = endpoint("https://down.example/hook")
    now = timezone.now()
    events = CallbackEvent.objects.bulk_create(
        CallbackEvent(
            message_id=new_message_id(),
            type="call.settled",
            payload={"call_id": i // 5},
            ordering_key=f"call:{i // 5}",
            created_at=now - timedelta(hours=1),
        )
        for i in range(backlog)
    )
    CallbackDelivery.objects.bulk_create(
        CallbackDelivery(endpoint=down, event=e, next_attempt_at=now, ordering_key=e.ordering_key)
        for e in events
    )
    times = []
    for _ in range(7):
        began = time.perf_counter()
        found = list(CallbackDelivery.objects.due(now).select_related("event", "endpoint")[:500])
        times.append((time.perf_counter() - began) * 1000)
    print(
        f"due look-up over {backlog:,} pending: {statistics.median(times):.1f} ms "
        f"(median of 7), {len(found)} found (one per call)"
    )


def sending(n: int, endpoints: int) -> None:
    from django.conf import settings

    from calls.callbacks.delivery import send_due
    from calls.models import CallbackEndpoint
    from calls.models.callbacks import EventType
    from calls.models.outbox import record

    settings.OBD_CALLBACKS_ALLOW_PRIVATE = True
    CallbackEndpoint.objects.all().delete()
    for _ in range(endpoints):
        endpoint(receiver())
    record((EventType.CALL_SETTLED, {"call_id": i}, f"call:{i}") for i in range(n))
    began = time.perf_counter()
    sent = 0
    while summary := send_due():
        sent += summary.get("delivered", 0)
        if not summary["waiting"]:
            break
    took = time.perf_counter() - began
    print(f"posted to {endpoints} endpoint(s): {sent:,} in {took:.1f} s = {sent / took:,.0f}/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a benchmark database")
    parser.add_argument("--outcomes", type=int, default=3000)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--posts", type=int, default=1000)
    args = parser.parse_args()
    webhook_profile.setup(args.database_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    outbox_cost(args.outcomes)
    due_lookup(args.backlog)
    sending(args.posts, 1)
    sending(args.posts, 4)


if __name__ == "__main__":
    main()
