"""Opt-outs (calls/optouts.py, DoNotCall.objects.record_opt_out): the provider's unsubscribers
list copied onto the do-not-call list, idempotently, over real HTTP and in the sandbox."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connections

from calls.models import DoNotCall
from calls.optouts import sync_optouts, sync_unsubscribers
from calls.provider.base import GatewayError
from calls.provider.configured import get_gateway
from calls.provider.sandbox import SandboxGateway
from tests.helpers.engine import job
from tests.helpers.provider_account import ProviderAccount


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
