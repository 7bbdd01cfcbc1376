"""A receiving system on this machine, over real HTTP: it verifies each callback with the
`standardwebhooks` library, as a client's code would, and can be down, slow or failing."""

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from calls.engine.jobs import JOBS
from calls.models import CallbackEndpoint
from calls.models.callbacks import EventType


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: dict | None  # the payload, when its signature verified with the receiver's secret


@dataclass
class Receiver:
    """Answers `status` after `delay` seconds; `stop()` takes it off the network (connections
    refused) and `start()` puts it back on the same port."""

    secrets: list[str] = field(default_factory=list)
    status: int = 204
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/obd?source=portal"

    def verify(self, body: bytes, headers: dict[str, str]) -> dict | None:
        for secret in self.secrets:
            try:
                return Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
        return None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = dict(self.headers.items())
                receiver.received.append(Received(headers, body, receiver.verify(body, headers)))
                time.sleep(receiver.delay)
                try:
                    self.send_response(receiver.status)
                    for name, value in receiver.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def verified(self) -> list[dict]:
        return [r.verified for r in self.received if r.verified is not None]


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1, which only OBD_CALLBACKS_ALLOW_PRIVATE lets the portal reach."""
    settings.OBD_CALLBACKS_ALLOW_PRIVATE = True
    settings.OBD_CALLBACK_READ_TIMEOUT = 0.5
    settings.OBD_CALLBACK_CONNECT_TIMEOUT = 0.5
    found = Receiver()
    found.start()
    yield found
    found.stop()


def register(url: str, types: list[str] | None = None) -> tuple[CallbackEndpoint, str]:
    """An endpoint hearing `types` (all of them by default), and its secret."""
    endpoint = CallbackEndpoint(url=url, event_types=types or list(EventType.values))
    secret = endpoint.set_new_secret()
    endpoint.full_clean()
    endpoint.save()
    return endpoint, secret


@pytest.fixture
def endpoint(receiver: Receiver) -> CallbackEndpoint:
    """The receiver registered for every event type; it holds the secret."""
    found, secret = register(receiver.url)
    receiver.secrets.append(secret)
    return found


def later(**delta: float) -> time_machine.travel:
    """The clock moved on by `delta` (it stands still there, so due times are exact)."""
    return time_machine.travel(timezone.now() + timedelta(**delta), tick=False)


def run_job() -> dict[str, int]:
    """One run of the engine's `callbacks` job, as the schedule runs it; what it did."""
    (job,) = [job for job in JOBS if job.name == "callbacks"]
    return job.run().summary
