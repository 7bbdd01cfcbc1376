"""A local stand-in for the provider, for bench/system.py: answers `outgoing/send` like
Mobtexting (one id per number) and later posts realistic OBD webhooks back to the portal.

Per call it draws the attempts the provider would make with `interval` retries (1 to 3, with distinct
start times 5 minutes apart; only the last may be answered, as the provider stops retrying an
answered call), so the outcome the portal must end with is known here: the last attempt's
status and start time. Deliveries are posted 0.2 to 3 s after the send (the retries' waits are
compressed, their timestamps are not), with some of them:

- duplicated (the same body posted again a little later: the provider's retries);
- out of order (the last attempt posted before an earlier one);
- for unknown ids (a random id and a number nobody called);
- posted before the send is even answered (the provider's webhook beating its own answer).

A delivery answered other than 2xx, or not answered, is posted again up to 3 times, 1 s apart
(the provider waits 30 minutes). Everything sent and posted is recorded for the report.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

# The provider's naive timestamps are in this zone (the portal's OBD_PROVIDER_TIMEZONE default).
PROVIDER_ZONE = ZoneInfo("Asia/Kolkata")
# The provider's word for each outcome, and the portal's status it must become.
OUTCOMES = {
    "ANSWER": "answered",
    "NOANSWER": "no_answer",
    "BUSY": "busy",
    "CANCEL": "canceled",
    "CONGESTION": "failed",
}
FINAL_WEIGHTS = {"ANSWER": 50, "NOANSWER": 20, "BUSY": 12, "CANCEL": 8, "CONGESTION": 10}
RETRIED = ["NOANSWER", "BUSY", "CONGESTION", "CANCEL"]  # an earlier attempt is never answered
ATTEMPT_WEIGHTS = {1: 40, 2: 35, 3: 25}  # about 2 deliveries per call with the extras below
INTERVAL = timedelta(minutes=5)


@dataclass
class Mix:
    """How often each awkward case happens (fractions)."""

    duplicate: float = 0.10  # of deliveries
    out_of_order: float = 0.10  # of calls with more than one attempt
    unknown: float = 0.03  # extra deliveries per delivery, for ids nobody sent
    before_answer: float = 0.02  # of sends
    delay: tuple[float, float] = (0.2, 3.0)  # seconds from the send to the first delivery


@dataclass
class Expected:
    """What the portal must end with for one call."""

    status: str
    started_at: datetime
    deciding_posted: float | None = None  # monotonic start of the deciding delivery's first POST


@dataclass(order=True)
class Delivery:
    due: float
    seq: int
    body: bytes = field(compare=False)
    to: str = field(compare=False)
    kind: str = field(compare=False)  # "call" or "unknown"
    deciding: bool = field(compare=False, default=False)
    tries: int = field(compare=False, default=0)
    written: threading.Event | None = field(compare=False, default=None)


@dataclass
class Post:
    started: float  # monotonic
    seconds: float
    status: int  # HTTP status, -1 when the exchange failed
    kind: str


class StandIn:
    """The provider: an HTTP server for outgoing/send and a poster of webhooks."""

    def __init__(
        self,
        webhook_url: str,
        secret: str,
        token: str,
        *,
        on_deciding: Callable[[str, Expected], None],
        mix: Mix | None = None,
        seed: int = 12,
        posters: int = 48,
    ) -> None:
        parts = urlsplit(webhook_url)
        self.host, self.port, self.path = parts.hostname or "", parts.port or 80, parts.path
        self.secret, self.token = secret, token
        self.on_deciding = on_deciding
        self.mix = mix or Mix()
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.sends: list[tuple[float, str]] = []  # (monotonic, to), every POST outgoing/send
        self.expected: dict[str, Expected] = {}
        self.posts: list[Post] = []
        self._heap: list[Delivery] = []
        self._seq = itertools.count()
        self._wake = threading.Condition(self.lock)
        self._in_flight = 0
        self._stop = False
        self._pool = ThreadPoolExecutor(posters, thread_name_prefix="standin-post")
        self._unknown = itertools.count()
        handler = type("Handler", (_Handler,), {"standin": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v2/"
        self._threads = [
            threading.Thread(target=self.server.serve_forever, daemon=True),
            threading.Thread(target=self._schedule, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # --- outgoing/send ------------------------------------------------------------------------

    def answer_send(self, payload: dict[str, object]) -> dict[str, object]:
        """Record the send, plan the call's deliveries, and answer as the provider does."""
        to, bridge = str(payload.get("to", "")), str(payload.get("bridge", ""))
        now_wall = datetime.now(UTC).replace(microsecond=0)
        call_id = str(uuid.uuid4())
        with self.lock:
            self.sends.append((time.monotonic(), to))
            rng = self.rng
            attempts = rng.choices(list(ATTEMPT_WEIGHTS), list(ATTEMPT_WEIGHTS.values()))[0]
            statuses = [rng.choice(RETRIED) for _ in range(attempts - 1)]
            statuses += rng.choices(list(FINAL_WEIGHTS), list(FINAL_WEIGHTS.values()))
            first_start = now_wall + timedelta(seconds=1)
            starts = [first_start + i * INTERVAL for i in range(attempts)]
            bodies = [
                webhook_body(call_id, to, bridge, status, start, rng)
                for status, start in zip(statuses, starts, strict=True)
            ]
            self.expected.setdefault(to, Expected(OUTCOMES[statuses[-1]], starts[-1]))
            order = list(range(attempts))
            if attempts > 1 and rng.random() < self.mix.out_of_order:
                order[-1], order[-2] = order[-2], order[-1]  # the last attempt comes first
            due = time.monotonic() + rng.uniform(*self.mix.delay)
            early = rng.random() < self.mix.before_answer
            planned = []
            for position, index in enumerate(order):
                if position:
                    due += rng.uniform(0.05, 0.5)
                delivery = Delivery(
                    due, next(self._seq), bodies[index], to, "call", index == attempts - 1
                )
                planned.append(delivery)
        if early:  # on its way before this answer goes back (its request written, at most 1 s)
            first, planned = planned[0], planned[1:]
            first.written = threading.Event()
            with self.lock:
                self._in_flight += 1
            self._pool.submit(self._post_and_count, first)
            first.written.wait(timeout=1.0)
        for delivery in planned:
            self._add(delivery)
        return {
            "status": "OK",
            "message": "Calls queued successfully",
            "data": [
                {
                    "id": call_id,
                    "channel": "outgoing",
                    "caller_id": bridge,
                    "mobile": to,
                    "flow_id": str(payload.get("flow_id", "")),
                    "credits": 1,
                    "created_at": now_wall.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
                    "foreign_id": None,
                    "options": None,
                    "status": "queued",
                }
            ],
        }

    # --- webhooks -----------------------------------------------------------------------------

    def _add(self, delivery: Delivery) -> None:
        """Schedule a delivery, and with it maybe a duplicate and a delivery for an unknown id."""
        with self.lock:
            extra = []
            if delivery.kind == "call" and self.rng.random() < self.mix.duplicate:
                again = delivery.due + self.rng.uniform(0.05, 1.0)
                extra.append(Delivery(again, 0, delivery.body, delivery.to, "call"))
            if delivery.kind == "call" and self.rng.random() < self.mix.unknown:
                number = f"9196{next(self._unknown):08d}"  # never called
                body = webhook_body(
                    str(uuid.uuid4()),
                    number,
                    str(json.loads(delivery.body)["bridge"]),
                    "NOANSWER",
                    datetime.now(UTC).replace(microsecond=0),
                    self.rng,
                )
                extra.append(Delivery(delivery.due, 0, body, number, "unknown"))
            for item in [delivery, *extra]:
                item.seq = next(self._seq)
                heapq.heappush(self._heap, item)
            self._wake.notify()

    def _schedule(self) -> None:
        with self.lock:
            while not self._stop:
                if not self._heap:
                    self._wake.wait()
                    continue
                wait = self._heap[0].due - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                delivery = heapq.heappop(self._heap)
                self._in_flight += 1
                self._pool.submit(self._post_and_count, delivery)

    def _post_and_count(self, delivery: Delivery) -> None:
        try:
            self._post(delivery)
        finally:
            with self.lock:
                self._in_flight -= 1

    def _post(self, delivery: Delivery) -> None:
        started = time.monotonic()
        if delivery.deciding and delivery.tries == 0:
            expected = self.expected[delivery.to]
            expected.deciding_posted = started
            self.on_deciding(delivery.to, expected)
        status = -1
        try:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                conn.request(
                    "POST",
                    self.path,
                    body=delivery.body,
                    headers={
                        "Authorization": f"Bearer {self.secret}",
                        "Content-Type": "application/json",
                        "User-Agent": "obd-standin",
                        "Connection": "close",
                    },
                )
                if delivery.written:
                    delivery.written.set()
                response = conn.getresponse()
                response.read()
                status = response.status
            finally:
                conn.close()
        except OSError:
            status = -1
        with self.lock:
            self.posts.append(Post(started, time.monotonic() - started, status, delivery.kind))
        if status not in (200, 202) and delivery.tries < 3:
            delivery.tries += 1
            delivery.due = time.monotonic() + 1.0
            with self.lock:
                delivery.seq = next(self._seq)
                heapq.heappush(self._heap, delivery)
                self._wake.notify()

    def idle(self) -> bool:
        """Nothing left to post."""
        with self.lock:
            return not self._heap and self._in_flight == 0

    def close(self) -> None:
        with self.lock:
            self._stop = True
            self._wake.notify()
        self.server.shutdown()
        self.server.server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def send_counts(self) -> Counter[str]:
        with self.lock:
            return Counter(to for _, to in self.sends)


def webhook_body(
    call_id: str, to: str, bridge: str, status: str, start: datetime, rng: random.Random
) -> bytes:
    """One OBD push as documented: numbers unquoted, times naive in the provider's zone."""
    duration = rng.randrange(5, 180) if status == "ANSWER" else 0
    local = start.astimezone(PROVIDER_ZONE)
    push = {
        "bridge": int(bridge) if bridge.isdigit() else bridge,
        "from": int(bridge) if bridge.isdigit() else bridge,
        "to": int(to) if to.isdigit() else to,
        "source": "OBD",
        "mid": call_id,
        "flow_id": 24,
        "start_at": local.strftime("%Y-%m-%d %H:%M:%S"),
        "end_at": (local + timedelta(seconds=duration)).strftime("%Y-%m-%d %H:%M:%S"),
        "duration": str(duration),
        "status": status,
        "recording_url": f"https://recordings.example.com/{call_id}-{start:%H%M}.mp3"
        if duration
        else "",
    }
    return json.dumps(push).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real provider
    disable_nagle_algorithm = True
    standin: StandIn

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Authorization") != f"Bearer {self.standin.token}":
            self._reply(401, {"status": "Unauthenticated", "message": "bad token"})
            return
        if not self.path.endswith("/outgoing/send"):
            self._reply(404, {"status": "error", "message": "not here"})
            return
        try:
            payload = json.loads(body)
        except ValueError:
            self._reply(400, {"status": "error", "message": "not JSON"})
            return
        self._reply(200, self.standin.answer_send(payload))

    def _reply(self, status: int, answer: dict[str, object]) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass
