"""The gateway's management calls (calls/provider/mobtexting.py, listing.py, the sandbox twins):
unsubscribers, webhooks and subscriptions over real HTTP, in pages, and every way they fail."""

import pytest

from calls.provider.base import GatewayError, ProviderPage
from calls.provider.listing import (
    MAX_PAGES,
    ListReader,
    every_row,
    read_object,
    read_page,
    unsubscriber_number,
)
from calls.provider.mobtexting import MobtextingGateway
from calls.provider.sandbox import SANDBOX_UNSUBSCRIBERS, SandboxGateway
from tests.helpers.provider_account import ProviderAccount
from tests.helpers.provider_shapes import UNSUBSCRIBER_SHAPES, listed

TOKEN = "tok-management-1"


@pytest.fixture
def account(fake_provider) -> ProviderAccount:
    fake_provider.reply = account = ProviderAccount()
    return account


def gateway(fake_provider, read_timeout: float = 5) -> MobtextingGateway:
    return MobtextingGateway(fake_provider.url, TOKEN, timeout=(2, read_timeout))


def test_the_unsubscribers_list_is_read_page_by_page_with_the_token_in_a_header(
    fake_provider, account
):
    account.unsubscribers = [{"id": n, "receiver": f"9198765{n:05d}"} for n in range(40)]
    rows = list(every_row(gateway(fake_provider).unsubscribers))
    assert [row["id"] for row in rows] == list(range(40))
    paths = [r.path for r in fake_provider.requests]
    assert paths == [f"/api/v2/outgoing/suppressions/unsubscribers?page={n}" for n in (1, 2, 3)]
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in fake_provider.requests)
    assert not [p for p in paths if TOKEN in p]


def test_a_webhook_is_created_by_post_and_edited_by_put_on_its_quoted_id(fake_provider, account):
    made = gateway(fake_provider).save_webhook({"name": "OBD", "uri": "https://x/"})
    account.webhooks["a/b"] = {"id": "a/b", "uri": "https://y/"}
    edited = gateway(fake_provider).save_webhook({"uri": "https://z/"}, "a/b")
    assert made["uri"] == "https://x/" and edited["uri"] == "https://z/"
    assert [(r.method, r.path) for r in fake_provider.requests] == [
        ("POST", "/api/v2/developer/webhooks"),
        ("PUT", "/api/v2/developer/webhooks/a%2Fb"),
    ]


def test_a_subscription_is_posted_with_the_documented_body(fake_provider, account):
    row = gateway(fake_provider).subscribe("voice:message:out", "hook-1")
    assert row["id"] == 1
    assert fake_provider.requests[0].json() == {
        "event": "voice:message:out",
        "identity": "all",
        "webhook_id": "hook-1",
    }


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (401, b'{"message": "Unauthenticated"}', "MOBTEXTING_API_TOKEN"),
        (503, b"Service Unavailable", "HTTP 503"),
        (200, b"<html>maintenance</html>", "not the documented JSON"),
        (200, b'{"status": "ERROR", "message": "no access"}', "no access"),
        (200, b'{"status": "OK", "data": "nope"}', "no list of rows"),
        (200, b"[" * 100_000, "not the documented JSON"),
    ],
    ids=["bad-token", "5xx", "garbage", "refused-in-body", "no-rows", "deep-nesting"],
)
def test_a_failed_list_says_why_and_never_holds_the_token(fake_provider, status, body, said):
    fake_provider.answer(status, body)
    with pytest.raises(GatewayError, match=said) as caught:
        gateway(fake_provider).webhooks(1)
    assert TOKEN not in str(caught.value)


def test_a_timeout_or_an_unreachable_provider_is_a_gateway_error(fake_provider, account):
    account.faults["POST developer/webhooks"] = ["slow"]
    account.slow_seconds = 1.0
    with pytest.raises(GatewayError, match="No answer from the provider to POST"):
        gateway(fake_provider, read_timeout=0.3).save_webhook({"uri": "https://x/"})
    with pytest.raises(GatewayError, match="connection refused"):
        MobtextingGateway("http://127.0.0.1:9/api/v2/", TOKEN).webhooks(1)
    assert len(fake_provider.requests) == 1  # never sent twice


def test_a_created_object_without_an_id_is_refused():
    with pytest.raises(GatewayError, match="holds no id"):
        read_object(200, '{"status": "OK", "data": {"name": "x"}}', "webhook")


def test_pages_follow_links_when_meta_is_missing_and_stop_on_an_empty_page():
    # Entries that are no JSON object are kept apart, for the reader to count as unreadable.
    assert read_page(200, '{"data": [{"id": 1}, 5, "x"], "links": {"next": "?page=2"}}', "l") == (
        ProviderPage(rows=[{"id": 1}], more=True, junk=(5, "x"))
    )
    # A page without rows ends the list whatever its links say (no endless paging).
    assert not read_page(200, '{"data": [], "links": {"next": "?page=9"}}', "l").more
    assert not read_page(
        200, '{"data": [{"id": 1}], "meta": {"current_page": 3, "last_page": 3}}', "l"
    ).more


@pytest.mark.parametrize("shape", UNSUBSCRIBER_SHAPES.values(), ids=UNSUBSCRIBER_SHAPES.keys())
def test_every_documented_unsubscriber_row_gives_its_number(fake_provider, shape):
    fake_provider.answer(200, listed([shape, "junk", shape]))
    rows = ListReader(gateway(fake_provider).unsubscribers)
    numbers = [unsubscriber_number(row) for row in rows]
    assert numbers == [shape.get("receiver") or shape["mobile"]] * 2
    assert (rows.junk, rows.complete) == (["junk"], True)


def test_paging_is_bounded(caplog):
    pages: list[int] = []

    def endless(page: int) -> ProviderPage:
        pages.append(page)
        return ProviderPage(rows=[{"id": page}], more=True)

    assert len(list(every_row(endless))) == MAX_PAGES
    assert pages[-1] == MAX_PAGES
    assert "cut at" in caplog.text


def test_the_sandbox_lists_its_fixed_opt_outs_and_refuses_to_pretend_it_connected():
    sandbox = SandboxGateway()
    assert sandbox.unsubscribers(1).rows == [dict(r) for r in SANDBOX_UNSUBSCRIBERS]
    assert sandbox.webhooks(1) == ProviderPage(rows=[], more=False)
    assert sandbox.subscriptions(1) == ProviderPage(rows=[], more=False)
    with pytest.raises(GatewayError, match="nothing was created"):
        sandbox.save_webhook({"uri": "https://x/"})
    with pytest.raises(GatewayError, match="nothing was created"):
        sandbox.subscribe("voice:message:out", "hook")
