"""An administrator connects the provider from the portal (calls/connect.py): in the sandbox
the page says what would be done; against the provider stand-in it is done, and shown. No
secret is ever on the page."""

from playwright.sync_api import expect

from calls.connect import run_provider_check
from calls.models import AuditEntry
from tests.browser.conftest import log_in, screenshot
from tests.conftest import _user
from tests.helpers.portal import API_TOKEN, WEBHOOK_SECRET
from tests.helpers.provider_account import ProviderAccount
from tests.helpers.tasks import run_queued

SECRETS = (WEBHOOK_SECRET, "verify-me", API_TOKEN)


def connect_as_admin(page, django_user_model) -> None:
    _user(django_user_model, "root", is_staff=True, is_superuser=True)
    log_in(page, "root", "pw-root")
    page.get_by_role("link", name="Connect").click()
    page.fill("#id_webhook_url", "https://obd.example.com/webhooks/mobtexting/")
    press_connect(page)


def press_connect(page) -> None:
    """Press Connect: the result says it is asking the provider and refreshes itself while a
    worker (here, the test's own process) runs it."""
    page.get_by_role("button", name="Connect").click()
    expect(page.locator("#connect-result")).to_contain_text("asking the provider")
    assert run_queued(run_provider_check) in (["done"], ["failed"])


def test_in_the_sandbox_an_admin_sees_what_connect_would_do(
    page, transactional_db, django_user_model
):
    connect_as_admin(page, django_user_model)
    result = page.locator("#connect-result")
    expect(result).to_contain_text("Sandbox: nothing is sent to a provider")
    expect(result).to_contain_text("Subscribe the webhook to voice:unsubscription")
    assert not AuditEntry.objects.exists()
    assert not [s for s in SECRETS if s in page.content()]


def test_an_admin_connects_the_provider_and_sees_the_webhook(
    page, transactional_db, django_user_model, real_gateway
):
    real_gateway.reply = account = ProviderAccount()
    connect_as_admin(page, django_user_model)
    result = page.locator("#connect-result")
    expect(result.locator("#connected")).to_contain_text("voice:message:out")
    (hook_id,) = account.webhooks
    expect(result).to_contain_text(hook_id)
    screenshot(page, "connect-provider")
    assert not [s for s in SECRETS if s in page.content()]
    assert len(account.subscriptions) == 2


def test_in_the_sandbox_connect_at_this_machines_address_previews_and_warns(
    page, transactional_db, django_user_model, settings
):
    settings.OBD_WEBHOOK_SECRET = ""
    _user(django_user_model, "root", is_staff=True, is_superuser=True)
    log_in(page, "root", "pw-root")
    page.goto("/connect/")
    press_connect(page)  # the address offered: the live server's

    result = page.locator("#connect-result")
    expect(result).to_contain_text("Sandbox: nothing is sent to a provider")
    expect(result).to_contain_text("Subscribe the webhook to voice:message:out")
    expect(result).to_contain_text("The provider cannot reach this address")
    expect(result).to_contain_text("Before connecting for real, set OBD_WEBHOOK_SECRET")
    expect(result.locator(".errors")).to_have_count(0)
    screenshot(page, "connect-sandbox-preview")
