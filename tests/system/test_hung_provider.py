"""A provider that hangs, on the real processes: gunicorn (two sync workers) and a real `db_worker`,
with a local HTTP stand-in for the provider that never answers a POST. Four agents place calls
at once: every request answers at once, and while the provider hangs /healthz, the pages and the
webhook door still answer. Each call is POSTed once (counted at the stand-in) and ends `unknown`
when its read timeout passes; none is sent again."""

import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.test import Client

from calls.models import CallLog
from calls.schedules import queue_overdue_calls
from tests.clock import pinned_now
from tests.conftest import _user
from tests.system.conftest import GUNICORN, Server, serve, start_db_worker

pytestmark = pytest.mark.django_db(transaction=True)
AGENTS = 4
# Generous: a loaded machine may be slow, but a request that waited on the provider would wait
# for ever here (the stand-in never answers).
PATIENCE = 60


class HungProvider:
    """Takes every POST to outgoing/send, counts it by number, and never answers it."""

    def __init__(self) -> None:
        self.posted: Counter[str] = Counter()
        self.released = threading.Event()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                provider.posted[json.loads(body)["to"]] += 1
                provider.released.wait(PATIENCE * 3)  # hangs

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v2/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hung_provider() -> Iterator[HungProvider]:
    provider = HungProvider()
    yield provider
    provider.close()


def provider_env(provider: HungProvider, read_timeout: int) -> dict[str, str]:
    return {
        "MOBTEXTING_API_TOKEN": "tok-123",
        "MOBTEXTING_API_URL": provider.url,
        "MOBTEXTING_READ_TIMEOUT": str(read_timeout),
        "OBD_WEBHOOK_SECRET": "hook-secret",
    }


@pytest.fixture
def portal(transactional_db, tmp_path, hung_provider) -> Iterator[Server]:
    """The web processes would wait ten minutes for the provider, were they ever to ask it."""
    log = tmp_path / "gunicorn.log"
    env = provider_env(hung_provider, read_timeout=600)
    for url in serve([*GUNICORN, "--bind"], log, **env):
        yield Server(url=url, log=log)


@pytest.fixture
def worker(transactional_db, hung_provider) -> Iterator[None]:
    """The worker gives up on a POST after 3 s (so the test ends sooner): `unknown`."""
    process = start_db_worker(**provider_env(hung_provider, read_timeout=3))
    yield
    process.terminate()
    process.wait(timeout=10)


def agent_session(user) -> requests.Session:
    """A browser of a logged-in agent: the session cookie of a real log-in."""
    client = Client()
    client.force_login(user)
    session = requests.Session()
    session.cookies.set("sessionid", client.cookies["sessionid"].value)
    return session


def place(session: requests.Session, url: str, bridge, sound, to: str) -> requests.Response:
    form = session.get(f"{url}/calls/new/", timeout=PATIENCE)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token, form.text[:500]
    data = {
        "csrfmiddlewaretoken": token.group(1),
        "bridge": bridge.pk,
        "to": to,
        "audio": sound.pk,
        "interval": "0",
        "idempotency_key": str(uuid.uuid4()),
    }
    return session.post(
        f"{url}/calls/new/",
        data=data,
        headers={"Referer": f"{url}/calls/new/"},
        allow_redirects=False,
        timeout=PATIENCE,
    )


def wait_for(what: str, done, seconds: float = PATIENCE) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.2)


def test_four_agents_place_calls_while_the_provider_hangs_and_the_portal_keeps_answering(
    portal, worker, hung_provider, bridge, sound, django_user_model
):
    numbers = [f"+91 98765 4{n:04d}" for n in range(11, 11 + AGENTS)]
    agents = [_user(django_user_model, f"agent{n}", "Agents") for n in range(AGENTS)]
    sessions = [agent_session(agent) for agent in agents]

    with ThreadPoolExecutor(max_workers=AGENTS) as pool:
        placed = list(
            pool.map(lambda s, to: place(s, portal.url, bridge, sound, to), sessions, numbers)
        )

    assert [r.status_code for r in placed] == [302] * AGENTS
    assert CallLog.objects.count() == AGENTS
    wait_for("the worker's first POST reaches the provider", lambda: hung_provider.posted)

    # The provider holds a POST and answers nothing; the portal answers everyone.
    health = requests.get(f"{portal.url}/healthz", timeout=PATIENCE)
    assert health.json()["database"] == "ok"
    # The worker, held in the POST, still beats; only the engine (not run here) is missing.
    assert (health.status_code, health.json()["problems"]) == (
        503,
        ["No engine is running: periodic jobs and webhook outcomes wait."],
    )
    page = sessions[0].get(f"{portal.url}{placed[0].headers['Location']}", timeout=PATIENCE)
    assert page.status_code == 200 and "Call #" in page.text
    log = sessions[1].get(f"{portal.url}/calls/", timeout=PATIENCE)
    assert log.status_code == 200 and "sending…" in log.text
    door = requests.post(
        f"{portal.url}/webhooks/mobtexting/",
        json={"mid": "someone-elses-call", "status": "BUSY"},
        headers={"Authorization": "Bearer hook-secret"},
        timeout=PATIENCE,
    )
    assert door.status_code == 202
    assert not hung_provider.released.is_set()  # all of it while the provider hung

    def settled() -> bool:
        return not CallLog.objects.filter(status="pending").exists()

    wait_for("every call leaves pending (its read timeout passed)", settled, PATIENCE * 2)
    assert set(CallLog.objects.values_list("status", flat=True)) <= {"unknown", "answered"}
    assert queue_overdue_calls(pinned_now() + timedelta(hours=1)) == 0  # never sent again
    time.sleep(2)  # a second POST would come now, if any process were to make one
    assert hung_provider.posted == Counter(CallLog.objects.values_list("to", flat=True))
    assert set(hung_provider.posted.values()) == {1}  # each call POSTed once
