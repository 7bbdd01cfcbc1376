"""Playwright driving Debian's Chromium against pytest-django's live server, plus a real worker
and the engine on the same test database for background work (sandbox outcomes, periodic jobs)."""

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.db import connection

from tests.conftest import _user
from tests.system.conftest import (  # noqa: F401 - gunicorn: a fixture
    gunicorn,
    start_db_worker,
    start_engine,
)

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-results"
# Chromium's own background traffic is refused on closed networks; these keep it quiet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session", autouse=True)
def _orm_beside_playwright():
    """Playwright's sync API keeps an event loop running in the test thread; the ORM calls the
    tests make between browser steps (and database teardown) are still plain synchronous code."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium is missing at {CHROMIUM}: CI must install it (.ci/run does)")
        pytest.skip("Chromium is not installed here (CI installs it; apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)  # generous: CI machines are small and busy
    page = context.new_page()
    yield page
    close(context)


def close(context: "BrowserContext") -> None:
    """Close a test's browser context before its database is flushed: its pages are sent
    away (no poll or partial of theirs starts after that), then it waits (a few seconds at
    most) until no other connection runs a statement. A request a page made just before it
    closed may still be at work in the live server, and PostgreSQL's TRUNCATE at the test's
    teardown, meeting its reads, ends in a deadlock; SQLite's flush simply waits its turn."""
    for page in context.pages:
        page.goto("about:blank")
    context.close()
    if connection.vendor != "postgresql":
        return
    give_up = time.monotonic() + 5
    while time.monotonic() < give_up:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state = 'active'"
            )
            if not cursor.fetchone()[0]:
                return
        time.sleep(0.02)


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path


def log_in(page, username: str, password: str) -> None:
    page.goto("/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login" not in url)


@pytest.fixture
def supervisor_page(page, transactional_db, django_user_model):
    _user(django_user_model, "sam", "Supervisors", is_staff=True)
    log_in(page, "sam", "pw-sam")
    return page


@pytest.fixture
def task_worker(transactional_db) -> Iterator[subprocess.Popen]:
    """A real worker process and the engine on the test database, as `make run` starts them
    beside the server, with the live server's settings (no default region: the tests' autouse
    settings)."""
    env = {"OBD_SANDBOX_DELAY_SECONDS": "1", "MOBTEXTING_API_TOKEN": "", "OBD_DEFAULT_REGION": ""}
    worker, engine = start_db_worker(**env), start_engine(**env)
    yield worker
    for process in (worker, engine):
        process.terminate()
        process.wait(timeout=10)
