"""Opt-outs (calls/optouts.py, DoNotCall.objects.record_opt_out): the provider's unsubscribers
list, in every documented shape, copied onto the do-not-call list, idempotently, over real HTTP
and in the sandbox; rows that cannot be read logged, on /healthz and told to supervisors once."""

import logging
import threading
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connections

from calls.models import DoNotCall, Notice
from calls.optouts import sync_optouts, sync_unsubscribers
from calls.provider.base import GatewayError
from calls.provider.configured import get_gateway
from calls.provider.sandbox import SandboxGateway
from tests.helpers.engine import job
from tests.helpers.portal import health
from tests.helpers.provider_account import ProviderAccount
from tests.helpers.provider_shapes import UNSUBSCRIBER_FIRST, UNSUBSCRIBER_SHAPES


def listed() -> dict[str, str]:
    return dict(DoNotCall.objects.values_list("number", "source"))


@pytest.fixture
def account(real_gateway) -> ProviderAccount:
    real_gateway.reply = account = ProviderAccount()
    return account


def test_every_page_of_the_unsubscribers_list_lands_on_the_do_not_call_list_once(db, account):
    account.unsubscribers = [{"id": n, "receiver": f"9198765{n:05d}"} for n in range(20)]
    account.unsubscribers += [
        {"id": 90, "receiver": 919876500001},  # a JSON number, and again
        {"id": 91, "receiver": "+91 98765 00002"},  # as a person typed it, again
        {"id": 92, "receiver": "not a number"},
        {"id": 93},
    ]
    DoNotCall.objects.create(number="919876500003", reason="asked on the phone")

    first = sync_unsubscribers(get_gateway())

    assert (first.read, first.added, first.unreadable) == (24, 19, 2)
    assert len(listed()) == 20
    assert listed()["919876500003"] == "manual"  # listed before: its entry is kept
    assert listed()["919876500019"] == "provider_list"
    again = sync_unsubscribers(get_gateway())
    assert (again.added, len(listed())) == (0, 20)


def test_every_documented_shape_of_the_list_lands_on_the_do_not_call_list(db, account):
    account.unsubscribers = list(UNSUBSCRIBER_SHAPES.values())

    result = sync_unsubscribers(get_gateway())

    assert (result.read, result.added, result.unreadable) == (5, 5, 0)
    wanted = {row.get("receiver") or row["mobile"] for row in UNSUBSCRIBER_SHAPES.values()}
    assert set(listed()) == wanted
    assert not Notice.objects.exists()


def test_a_list_served_only_in_the_older_shape_loses_no_opt_out(db, account):
    """The issue's log: 17 rows of `{id, mobile, country, created_at}`, read=17 added=0."""
    account.unsubscribers = [
        {**UNSUBSCRIBER_FIRST, "id": f"older-{n}", "mobile": f"9198220{n:05d}"} for n in range(17)
    ]
    result = sync_unsubscribers(get_gateway())
    assert (result.read, result.added, result.unreadable) == (17, 17, 0)


def test_a_number_without_its_country_code_is_read_in_the_rows_country(db, account):
    # The create request takes `98xxxxxxxx`; a list row may echo it as sent.
    account.unsubscribers = [
        {"id": "a", "iso": "IN", "receiver": "98765 43210"},
        {"id": "b", "country": "in", "mobile": "09812345678"},
        {"id": "c", "receiver": "9876500123"},  # no country: could be anywhere
    ]
    result = sync_unsubscribers(get_gateway())
    assert (result.added, result.unreadable) == (2, 1)
    assert set(listed()) == {"919876543210", "919812345678"}


HOSTILE = [
    {"id": "no-number", "iso": "IN", "created_at": "2023-04-11T12:53:29.000000Z"},
    {"id": "nul", "receiver": "9198\x0000000001"},
    {"id": "long", "receiver": "9" * 5000},
    {"id": "nested", "receiver": {"number": [["919800000001"]]}, "iso": [{"x": {}}]},
    {"id": "words", "mobile": '=HYPERLINK("javascript:alert(1)")'},
    {"id": "boolean", "receiver": True},
    {"id": "float", "receiver": 9.19800000001e11},
    {"id": {"deep": ["junk"]}, "receiver": "12"},
    "a row that is no object",
    ["919800000001"],
    None,
]


def test_hostile_rows_are_counted_unreadable_and_the_rest_is_listed(db, account):
    account.unsubscribers = [*HOSTILE, UNSUBSCRIBER_FIRST]
    result = sync_unsubscribers(get_gateway())
    assert (result.read, result.added, result.unreadable) == (12, 1, 11)
    assert set(listed()) == {UNSUBSCRIBER_FIRST["mobile"]}


def test_unreadable_rows_are_logged_shown_on_healthz_and_told_to_supervisors_once(
    db, account, supervisor, admin_user, agent, client, caplog
):
    account.unsubscribers = [*HOSTILE[:3], UNSUBSCRIBER_FIRST]
    at = datetime(2026, 11, 27, 13, 0, tzinfo=UTC)
    with time_machine.travel(at, tick=False), caplog.at_level(logging.INFO):
        sync_optouts()
        sync_optouts()  # the same rows again: no second notice

    assert "opt-out sync unreadable=3 of read=4 ids=long,no-number,nul" in caplog.text
    assert "9198" not in caplog.text  # ids, never numbers
    told = Notice.objects.filter(kind=Notice.Kind.UNREADABLE_OPTOUTS)
    assert sorted(told.values_list("user__username", flat=True)) == ["boss", "supervisor"]
    notice = told.get(user=supervisor)
    assert notice.title.startswith("3 opt-outs on the provider's unsubscribers list could not")
    assert notice.link == "/admin/calls/donotcall/"
    section = health(client)["provider"]["unsubscribers"]
    assert section == {
        "read_at": "2026-11-27T13:00:00Z",
        "rows": 4,
        "unreadable": 3,
        "complete": True,
    }

    account.unsubscribers.append({"id": "new-problem", "receiver": "?"})
    sync_unsubscribers(get_gateway())  # another problem: told again
    assert told.filter(user=supervisor).count() == 2
    account.unsubscribers = [UNSUBSCRIBER_FIRST]
    sync_unsubscribers(get_gateway())  # mended: nothing to tell, and healthz says so
    assert told.filter(user=supervisor).count() == 2
    assert health(client)["provider"]["unsubscribers"]["unreadable"] == 0


def test_a_sync_broken_off_says_so_on_healthz_and_tells_the_whole_problem_once(
    db, account, supervisor, client
):
    account.unsubscribers = [{"id": n, "receiver": f"9198765{n:05d}"} for n in range(30)]
    account.unsubscribers[3]["receiver"] = account.unsubscribers[20]["receiver"] = "?"
    account.faults["GET outgoing/suppressions/unsubscribers"] = [None, 503]
    with pytest.raises(GatewayError):
        sync_unsubscribers(get_gateway())
    section = health(client)["provider"]["unsubscribers"]
    assert (section["rows"], section["unreadable"], section["complete"]) == (15, 1, False)
    assert not Notice.objects.exists()  # half of the problem: told when it is read whole

    assert sync_unsubscribers(get_gateway()).unreadable == 2
    assert sync_unsubscribers(get_gateway()).unreadable == 2
    assert Notice.objects.get().title.startswith("2 opt-outs")


def test_the_sandbox_lists_its_fixed_opt_outs(db):
    assert sync_unsubscribers(SandboxGateway()).added == 2
    assert listed() == {"919876540010": "provider_list", "919876540011": "provider_list"}


@pytest.mark.parametrize("fault", [500, "garbage", "slow"])
def test_a_failing_page_stops_the_sync_and_keeps_the_pages_before_it(db, settings, account, fault):
    settings.MOBTEXTING_READ_TIMEOUT = 0.3
    account.slow_seconds = 0.8
    account.unsubscribers = [{"id": n, "receiver": f"9198765{n:05d}"} for n in range(30)]
    account.faults["GET outgoing/suppressions/unsubscribers"] = [None, fault]
    with pytest.raises(GatewayError):
        sync_unsubscribers(get_gateway())
    assert len(listed()) == 15  # page 1


def test_the_periodic_sync_says_a_failing_provider_read_nothing_and_goes_on(db, account):
    account.unsubscribers = [{"id": 1, "receiver": "919876500001"}]
    account.faults["GET outgoing/suppressions/unsubscribers"] = [503]
    assert sync_optouts() == {"read": 0, "added": 0, "unreadable": 0}
    assert job("optouts").run().summary == {"read": 1, "added": 1, "unreadable": 0}  # next run


def test_recording_an_opt_out_is_idempotent_and_reads_numbers_as_typed(db):
    assert DoNotCall.objects.record_opt_out("+91 98765 40010", source="webhook", note="delivery 7")
    assert not DoNotCall.objects.record_opt_out("919876540010", source="keypress")
    entry = DoNotCall.objects.get()
    assert (entry.number, entry.source, entry.reason) == ("919876540010", "webhook", "delivery 7")
    with pytest.raises(ValidationError):
        DoNotCall.objects.record_opt_out("12", source="webhook")


def test_the_admin_list_shows_each_numbers_source(db, admin_user, client):
    DoNotCall.objects.record_opt_out("919876540010", source=DoNotCall.Source.PROVIDER_LIST)
    client.force_login(admin_user)
    page = client.get("/admin/calls/donotcall/").content.decode()
    assert "opted out (provider&#x27;s unsubscribers list)" in page


@pytest.mark.django_db(transaction=True)
def test_two_syncs_at_once_list_each_number_once(settings):
    numbers = [f"9198765{n:05d}" for n in range(200)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def record() -> None:
        try:
            barrier.wait()
            DoNotCall.objects.record_opt_outs(numbers, source=DoNotCall.Source.WEBHOOK)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=record) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert DoNotCall.objects.count() == 200
