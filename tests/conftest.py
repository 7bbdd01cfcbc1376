import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth.models import Group
from django.db import connections
from django.test import Client

from calls.models import AudioAsset, Bridge, CallLog, Campaign, IvrFlow
from tests.clock import CLOCK_MODULES, DEFAULT_NOW, instant, pinned, pinned_now
from tests.helpers.campaigns import make_campaign
from tests.helpers.dashboard import KNOWN_CALLS
from tests.helpers.portal import API_TOKEN, WEBHOOK_SECRET, logged_in
from tests.helpers.portal import campaign_form as campaign_form  # tests may still import it here
from tests.helpers.sends import QueuedSends
from tests.helpers.silent import SilentProvider
from tests.helpers.webhooks import CALL_ID, TO


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--now",
        default=DEFAULT_NOW,
        type=instant,
        help=f"run every test as if it began at this ISO instant (default {DEFAULT_NOW})",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.relative_to(config.rootpath).as_posix() in CLOCK_MODULES:
            item.add_marker(pytest.mark.clock)


def pytest_report_header(config: pytest.Config) -> str:
    return f"clock: every test begins at {config.getoption('--now').isoformat()}"


@pytest.fixture(autouse=True)
def _pinned_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    """No test reads the real clock: each begins at `--now` (see tests/clock)."""
    with pinned(request.config.getoption("--now")):
        yield


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """No connection kept open between requests in tests: the live server answers each request
    on a thread of its own, whose kept connection would outlive the test database."""
    from django.conf import settings

    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


@pytest.fixture(autouse=True)
def _portal_settings(settings):
    """Every test starts on the sandbox with a known webhook secret, no default region and the
    portal's default zone (whatever the machine's environment says)."""
    settings.MOBTEXTING_API_TOKEN = ""
    settings.OBD_SANDBOX = True
    settings.OBD_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.OBD_WEBHOOK_VERIFICATION_TOKEN = "verify-me"
    settings.OBD_DEFAULT_REGION = None
    settings.TIME_ZONE = "Asia/Kolkata"
    settings.MOBTEXTING_WEBHOOK_ID = ""
    # Tests on the wall clock must not depend on the hour in India; the calling-hours tests
    # switch the TRAI preset (on by default) back on.
    settings.OBD_TRAI_PRESET = False
    # Real password hashing costs ~0.3 s per user; tests need the check, not the cost.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def bridge(db) -> Bridge:
    return Bridge.objects.create(number="918068287602", label="Bengaluru")


@pytest.fixture
def otp_flow(db) -> IvrFlow:
    return IvrFlow.objects.create(
        flow_id="24", name="Login OTP", template="Hello {Name}, your otp for login is {otp}"
    )


@pytest.fixture
def sound(db) -> AudioAsset:
    return AudioAsset.objects.create(
        name="Reminder", sound_id="39888925-718e-43bb-a8b1-d4a3c0de0001"
    )


def _user(django_user_model, username: str, group: str | None = None, **extra):
    user = django_user_model.objects.create_user(
        username=username, password="pw-" + username, **extra
    )
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def agent(db, django_user_model):
    return _user(django_user_model, "agent", "Agents")


@pytest.fixture
def supervisor(db, django_user_model):
    return _user(django_user_model, "supervisor", "Supervisors", is_staff=True)


@pytest.fixture
def admin_user(db, django_user_model):
    return _user(django_user_model, "boss", is_staff=True, is_superuser=True)


@pytest.fixture
def outsider(db, django_user_model):
    """Logged in, but in no group."""
    return _user(django_user_model, "outsider")


@pytest.fixture
def agent_client(agent) -> Client:
    return logged_in(agent)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class FakeProvider:
    """A real HTTP server on loopback playing the provider. `reply` decides each answer."""

    url: str
    requests: list[Recorded] = field(default_factory=list)
    reply: Callable[[Recorded], tuple[int, dict, bytes]] = lambda r: (200, {}, b"{}")

    # Replies by the path's end (e.g. "outgoing/callstatus"); other paths get `reply`.
    routes: dict[str, Callable[[Recorded], tuple[int, dict, bytes]]] = field(default_factory=dict)

    def answer(self, status: int, body: object, headers: dict | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.reply = lambda r: (status, headers or {"Content-Type": "application/json"}, raw)

    def route(self, path: str, reply: Callable[[Recorded], tuple[int, dict, bytes]]) -> None:
        self.routes[path] = reply

    def reply_for(self, recorded: Recorded) -> tuple[int, dict, bytes]:
        path = recorded.path.split("?")[0]
        for end, reply in self.routes.items():
            if path.endswith(end):
                return reply(recorded)
        return self.reply(recorded)


@pytest.fixture
def fake_provider() -> Iterator[FakeProvider]:
    provider = FakeProvider(url="")

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            recorded = Recorded(
                self.command, self.path, dict(self.headers), self.rfile.read(length)
            )
            provider.requests.append(recorded)
            try:
                status, headers, body = provider.reply_for(recorded)
            finally:  # a reply that looked at the database must not leave a session open
                connections.close_all()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    provider.url = f"http://127.0.0.1:{server.server_address[1]}/api/v2/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield provider
    server.shutdown()
    server.server_close()


@pytest.fixture
def sends(django_capture_on_commit_callbacks) -> Iterator[QueuedSends]:
    """The sends requests queued, run in this process as the worker would (`sends.run()`)."""
    queued = QueuedSends(django_capture_on_commit_callbacks)
    yield queued
    queued.close()


@pytest.fixture
def real_gateway(settings, fake_provider) -> FakeProvider:
    """The real MobtextingGateway, talking to the fake provider over HTTP."""
    settings.MOBTEXTING_API_TOKEN = API_TOKEN
    settings.MOBTEXTING_API_URL = fake_provider.url
    settings.OBD_SANDBOX = False
    return fake_provider


# --- webhooks -------------------------------------------------------------------------------------


@pytest.fixture
def silent_provider(settings) -> Iterator[SilentProvider]:
    """The real gateway, talking to a provider that takes connections and never answers."""
    provider = SilentProvider()
    settings.MOBTEXTING_API_TOKEN = API_TOKEN
    settings.MOBTEXTING_API_URL = provider.url
    settings.OBD_SANDBOX = False
    yield provider
    provider.close()


@pytest.fixture
def provider_client() -> Client:
    """The provider's side of the webhook door: not logged in, and with CSRF checks on."""
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def make_call(bridge, otp_flow):
    """Make a call to TO, playing the OTP flow, queued at the provider as `provider_id`."""

    def make(provider_id: str = CALL_ID, **fields) -> CallLog:
        fields = {"bridge": bridge, "to": TO, "flow": otp_flow, "status": "queued", **fields}
        return CallLog.objects.create(
            provider_id=provider_id, provider_key=provider_id.split(":")[0], **fields
        )

    return make


@pytest.fixture
def call(make_call) -> CallLog:
    """The queued call that webhook deliveries about CALL_ID are for."""
    return make_call()


# --- campaigns and the dashboard ------------------------------------------------------------------


@pytest.fixture
def campaign(bridge, otp_flow) -> Campaign:
    """A draft campaign of the Login OTP flow: variables {Name} and {otp}, the otp sensitive."""
    return make_campaign(bridge, flow=otp_flow)


@pytest.fixture
def known_calls(bridge, otp_flow, sound) -> datetime:
    """KNOWN_CALLS, each created at this instant minus its days; returns the instant."""
    now = pinned_now()
    bridges = {"blr": bridge, "mum": Bridge.objects.create(number="912262345678", label="Mumbai")}
    for days, status, where, plays, duration, cost, extra in KNOWN_CALLS:
        CallLog.objects.create(
            bridge=bridges[where],
            to="918867135123",
            flow=otp_flow if plays == "flow" else None,
            audio=sound if plays == "audio" else None,
            status=status,
            duration=duration,
            cost=Decimal(cost) if cost is not None else None,
            created_at=now - timedelta(days=days),
            submitted_at=now - timedelta(days=days),
            **extra,
        )
    # Campaign rows never sent (waiting, or withdrawn with their stopped campaign) are not calls placed.
    for status in ("pending", "withdrawn"):
        CallLog.objects.create(bridge=bridge, to="918867135124", audio=sound, status=status)
    return now
