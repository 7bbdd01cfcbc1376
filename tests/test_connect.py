"""Connect the provider (calls/connect.py): the administrators' page checks the configuration,
makes or updates the portal's webhook, subscribes it to the call and opt-out events, and never
shows a secret; against a real local provider stand-in and in the sandbox."""

import html
from datetime import timedelta

import pytest
from django.test import TestCase
from django_tasks_db.models import DBTaskResult

from calls.connect import EVENTS, run_provider_check
from calls.models import AuditEntry, ProviderCheck
from tests.clock import pinned, pinned_now
from tests.helpers.portal import API_TOKEN, WEBHOOK_SECRET, logged_in
from tests.helpers.provider_account import ProviderAccount
from tests.helpers.tasks import run_queued

URL = "https://obd.example.com/webhooks/mobtexting/"


@pytest.fixture
def account(real_gateway) -> ProviderAccount:
    real_gateway.reply = account = ProviderAccount()
    return account


@pytest.fixture
def admin_client(admin_user):
    return logged_in(admin_user)


def run(client, action: str = "connect", url: str = URL, **headers) -> str:
    """Press Check or Connect as a person does: the page stores the ask and says so (its result
    refreshes itself); a worker runs it; the next refresh shows what it found and did."""
    asked = ask(client, action, url, **headers)
    assert asked.status_code == 200, asked.content.decode()[:2000]
    assert "asking the provider" in asked.text and 'hx-trigger="every 1s"' in asked.text
    assert run_queued(run_provider_check) in (["done"], ["failed"])
    response = client.get(f"/connect/?check={ProviderCheck.objects.latest('pk').pk}", **headers)
    page = response.content.decode()
    assert "every 1s" not in page  # settled: the result stops asking
    for secret in (WEBHOOK_SECRET, "verify-me", API_TOKEN):
        assert secret not in page
    return page


def ask(client, action: str = "connect", url: str = URL, **headers):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post("/connect/", {"webhook_url": url, "action": action}, **headers)


def actions() -> list[str]:
    return list(AuditEntry.objects.order_by("id").values_list("action", flat=True))


def test_connect_makes_the_webhook_with_its_secrets_and_subscribes_it(admin_client, account):
    page = run(admin_client)

    (hook,) = account.webhooks.values()
    assert (hook["uri"], hook["secret"], hook["token"], hook["status"]) == (
        URL,
        WEBHOOK_SECRET,
        "verify-me",
        1,
    )
    assert [(s["event"], s["webhook_id"]) for s in account.subscriptions] == [
        (event, hook["id"]) for event in EVENTS
    ]
    assert actions() == ["webhook_created", "subscribed", "subscribed"]
    assert hook["id"] in page and "voice:unsubscription" in page


def test_connecting_again_updates_the_webhook_and_duplicates_nothing(
    admin_client, account, real_gateway
):
    run(admin_client)
    run(admin_client)
    assert len(account.webhooks) == 1 and len(account.subscriptions) == 2
    assert actions()[-1] == "webhook_updated"
    (put,) = [r for r in real_gateway.requests if r.method == "PUT"]
    assert put.json() == {"name": "OBD Portal", "uri": URL, "status": 1, "secret": WEBHOOK_SECRET}


def test_a_run_stopped_half_way_is_finished_by_the_next(admin_client, account, real_gateway):
    account.faults["POST developer/subscriptions"] = [None, 500]
    page = run(admin_client)
    assert "HTTP 500" in page and "run Connect again" in page
    assert [s["event"] for s in account.subscriptions] == ["voice:message:out"]

    run(admin_client)
    assert len(account.webhooks) == 1
    assert [s["event"] for s in account.subscriptions] == list(EVENTS)
    methods = [(r.method, r.path.split("?")[0]) for r in real_gateway.requests]
    assert methods.count(("POST", "/api/v2/developer/webhooks")) == 1


def test_a_webhook_created_though_its_answer_timed_out_is_found_not_made_twice(
    admin_client, account, settings
):
    settings.MOBTEXTING_READ_TIMEOUT = 0.3
    account.slow_seconds = 0.8
    account.faults["POST developer/webhooks"] = ["slow"]
    assert "No answer from the provider" in run(admin_client)
    assert actions() == []  # nothing confirmed, nothing recorded as done
    run(admin_client)
    assert len(account.webhooks) == 1
    assert actions() == ["webhook_updated", "subscribed", "subscribed"]


def test_a_refusal_quoting_the_secret_is_shown_masked(admin_client, real_gateway, settings):
    real_gateway.answer(422, {"message": f"secret {WEBHOOK_SECRET} is too weak"})
    page = run(admin_client)  # asserts the secret is absent
    assert "secret ****** is too weak" in page


@pytest.mark.parametrize(
    ("setup", "said"),
    [
        ("bad-token", "check MOBTEXTING_API_TOKEN"),
        ("unreachable", "connection refused"),
        ("garbage", "not the documented JSON"),
        ("down", "HTTP 503"),
    ],
)
def test_check_says_what_is_wrong_with_the_configuration(
    admin_client, account, settings, setup, said
):
    if setup == "unreachable":
        settings.MOBTEXTING_API_URL = "http://127.0.0.1:9/api/v2/"
    else:
        fault = {"bad-token": 401, "down": 503}.get(setup, "garbage")
        account.faults["GET developer/webhooks"] = [fault]
    assert said in run(admin_client, "check")
    assert account.webhooks == {}


def test_check_shows_what_is_connected_and_what_connect_would_do(admin_client, account):
    account.webhooks["h-1"] = {"id": "h-1", "name": "Old", "uri": URL, "secret": WEBHOOK_SECRET}
    account.subscriptions.append({"id": 1, "event": "voice:message:out", "webhook_id": "h-1"})
    page = run(admin_client, "check")
    assert "h-1" in page and "voice:message:out" in page
    assert "Update webhook h-1" in page and "Subscribe the webhook to voice:unsubscription" in page
    assert actions() == []


def test_in_the_sandbox_connect_explains_and_changes_nothing(admin_client):
    page = run(admin_client, HTTP_HX_REQUEST="true")
    assert "Sandbox:" in page and "nothing was created" in page
    assert "Create a webhook" in page and "<html" not in page  # the partial only
    assert actions() == []


def test_without_a_webhook_secret_nothing_is_connected_and_the_check_stays(
    admin_client, account, settings
):
    settings.OBD_WEBHOOK_SECRET = ""
    response = ask(admin_client)
    assert response.status_code == 422
    assert "Set OBD_WEBHOOK_SECRET first" in response.content.decode()
    assert run_queued(run_provider_check) == ["done"]
    page = admin_client.get(f"/connect/?check={ProviderCheck.objects.get().pk}").text
    assert "Set OBD_WEBHOOK_SECRET first" in page
    assert "Connect would:" in page and "Create a webhook" in page
    assert account.webhooks == {}


def test_a_provider_that_never_answers_does_not_hold_the_connect_page(
    admin_client, silent_provider
):
    for action in ("check", "connect"):
        response = ask(admin_client, action)  # returned: the request did not wait on it
        assert response.status_code == 200 and "asking the provider" in response.text

    assert silent_provider.connections == 0
    assert set(ProviderCheck.objects.values_list("state", flat=True)) == {"pending"}


def test_a_run_whose_worker_died_says_to_press_again_and_is_not_run_again(admin_client, account):
    ask(admin_client)
    assert ProviderCheck.claim(ProviderCheck.objects.get().pk, pinned_now())  # then it died
    with pinned(pinned_now() + timedelta(minutes=6)):
        assert run_queued(run_provider_check) == ["not ours to run"]
        page = admin_client.get(f"/connect/?check={ProviderCheck.objects.get().pk}").text
    assert "stopped part-way" in page and "every 1s" not in page
    assert account.webhooks == {} and actions() == []


def test_an_unknown_or_malformed_check_is_not_a_500(admin_client):
    assert admin_client.get("/connect/?check=999999").status_code == 404
    for junk in ("²", "-1", "x" * 5000, "1\x00"):
        assert admin_client.get("/connect/", {"check": junk}).status_code == 200


def test_in_the_sandbox_connect_without_a_secret_is_a_complete_preview(admin_client, settings):
    settings.OBD_WEBHOOK_SECRET = ""
    page = run(admin_client, HTTP_HX_REQUEST="true")
    assert "Sandbox:" in page and "Subscribe the webhook to voice:unsubscription" in page
    assert "Before connecting for real, set OBD_WEBHOOK_SECRET" in page
    assert "errors" not in page and actions() == []


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://localhost:8000/webhooks/mobtexting/", "“localhost” is this machine's own name"),
        ("http://portal.localhost/webhooks/mobtexting/", "this machine's own name"),
        ("http://127.0.0.1:8000/webhooks/mobtexting/", "loopback"),
        ("http://[::1]:8000/webhooks/mobtexting/", "loopback"),
        ("https://192.168.1.20/webhooks/mobtexting/", "192.168.1.20 is a private address"),
        ("https://10.0.0.5/webhooks/mobtexting/", "private address"),
        ("https://169.254.1.1/webhooks/mobtexting/", "private address"),
    ],
)
def test_an_address_the_provider_cannot_reach_is_warned_of(admin_client, url, said):
    page = html.unescape(run(admin_client, "check", url=url))
    assert "The provider cannot reach this address" in page and said in page


def test_a_public_address_is_not_warned_of(admin_client):
    for url in (URL, "https://203.0.113.9.nip.io/webhooks/mobtexting/"):
        assert "cannot reach" not in run(admin_client, "check", url=url)


def test_only_an_administrator_may_connect(supervisor, admin_client):
    assert logged_in(supervisor).get("/connect/").status_code == 403
    page = admin_client.get("/connect/").content.decode()
    assert (
        "http://testserver/webhooks/mobtexting/" in page
        and "set (hidden)" in page
        and WEBHOOK_SECRET not in page
    )


def test_an_ask_whose_task_was_lost_is_queued_again(admin_client, account):
    ask(admin_client, "check")
    DBTaskResult.objects.all().delete()  # the task lost before any worker took it
    check = ProviderCheck.objects.get()
    with pinned(pinned_now() + timedelta(minutes=2)):
        with TestCase.captureOnCommitCallbacks(execute=True):
            page = admin_client.get(f"/connect/?check={check.pk}").text
        assert "asking the provider" in page
        assert run_queued(run_provider_check) == ["done"]
    assert "Connect would:" in admin_client.get(f"/connect/?check={check.pk}").text
