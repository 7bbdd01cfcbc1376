"""A provider on loopback for the portal's real processes: it answers `outgoing/send` with a
new id (holding one chosen POST until released, as a provider that hangs would), the status
API with what it was really sent, and posts each placed call's outcome to the portal's webhook
door a moment later, again and again until the door answers 2xx (the provider retries too).
Every POST is recorded, so a test can count them per number."""

import json
import threading
import time
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

BRIDGE = "918068287602"
SECRET = "hook-secret"
KOLKATA = ZoneInfo("Asia/Kolkata")
JSON = {"Content-Type": "application/json"}


class Quiet(ThreadingHTTPServer):
    """A client killed mid-request (the point of these tests) is not an error to print."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass


def provider_time(moment: datetime) -> str:
    return moment.astimezone(KOLKATA).strftime("%Y-%m-%d %H:%M:%S")


class StandIn:
    def __init__(self, hold_on: int | None = None) -> None:
        self.hold_on = hold_on  # the n-th POST waits for `release`
        self.held = threading.Event()  # ... and has arrived
        self.release = threading.Event()
        self.door = ""  # the portal's URL, once it serves
        self.posts: list[tuple[str, float]] = []  # (number, monotonic time)
        self.placed: dict[str, tuple[str, datetime]] = {}  # number -> (id, when)
        self.delivered: list[float] = []  # monotonic times the door took an outcome
        self.refused = 0  # deliveries the door did not take (it was down): posted again
        self.lock = threading.Lock()
        self.outbox = ThreadPoolExecutor(max_workers=8)
        self.server = Quiet(("127.0.0.1", 0), self.handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v2/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.outbox.shutdown(wait=False, cancel_futures=True)

    def per_number(self) -> Counter[str]:
        with self.lock:
            return Counter(number for number, _ in self.posts)

    def count(self) -> int:
        with self.lock:
            return len(self.posts)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                number = json.loads(self.rfile.read(length))["to"]
                self.answer(200, standin.send(number))

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                self.answer(200, standin.status(query.get("mobile", [""])[0]))

            def answer(self, status: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                for name, value in JSON.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def send(self, number: str) -> dict:
        call_id = str(uuid.uuid4())
        with self.lock:
            self.posts.append((number, time.monotonic()))
            self.placed[number] = (call_id, datetime.now(UTC))
            count = len(self.posts)
        if count == self.hold_on:
            self.held.set()
            self.release.wait(60)  # the sender is killed while this POST waits: it rang anyway
        self.outbox.submit(self.deliver, number)
        return {"status": "OK", "data": [{"id": call_id, "status": "queued", "credits": 1}]}

    def status(self, number: str) -> dict:
        rows = [
            {
                "id": call_id,
                "mobile": number,
                "caller_id": BRIDGE,
                "status": "ANSWER",
                "start_at": provider_time(when),
                "created_at": provider_time(when),
                "duration": 9,
            }
            for placed, (call_id, when) in list(self.placed.items())
            if placed == number
        ]
        return {"status": 200, "data": rows}

    def deliver(self, number: str) -> None:
        """The call's outcome, posted to the door until it takes it (for up to three minutes)."""
        time.sleep(0.3)
        call_id, when = self.placed[number]
        body = {
            "bridge": BRIDGE,
            "from": BRIDGE,
            "to": number,
            "source": "OBD",
            "mid": call_id,
            "status": "ANSWER",
            "start_at": provider_time(when),
            "end_at": provider_time(when + timedelta(seconds=9)),
            "duration": "9",
        }
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            request = urllib.request.Request(
                f"{self.door}/webhooks/mobtexting/",
                data=json.dumps(body).encode(),
                headers={**JSON, "Authorization": f"Bearer {SECRET}"},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    if 200 <= response.status < 300:
                        with self.lock:
                            self.delivered.append(time.monotonic())
                        return
            except OSError:
                pass
            with self.lock:
                self.refused += 1
            time.sleep(0.5)
