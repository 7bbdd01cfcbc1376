"""Idempotency-Key (calls/api/idempotency.py) with Stripe's rules: the same key and body get the
first answer again; another body is refused; a request in flight gets 409; a key is scoped to its
API key and kept 24 hours; two identical requests at the same instant make exactly one call."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from calls.engine.jobs import JOBS
from calls.models import CallLog, IdempotentRequest
from tests.api.conftest import issue_key


def place(client, body, key="order-1042-otp"):
    return client.post(
        "/api/v1/calls", body, content_type="application/json", headers={"Idempotency-Key": key}
    )


@pytest.fixture
def body(bridge, sound):
    return {"bridge": bridge.pk, "to": "+91 88671 35123", "audio": sound.pk}


@pytest.mark.django_db
def test_the_same_key_and_body_get_the_first_answer_again_and_one_call(api, body, sends):
    first = place(api, body)
    again = place(api, body)

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert CallLog.objects.count() == 1
    assert len(sends.queued()) == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_refused(api, body):
    place(api, body)

    response = place(api, {**body, "to": "+91 88671 35124"})

    assert response.status_code == 422
    assert "another request" in response.json()["detail"]
    assert CallLog.objects.count() == 1


@pytest.mark.django_db
def test_a_request_still_being_answered_gets_409(api, body):
    place(api, body)
    IdempotentRequest.objects.update(response_status=None)  # as while the first is being answered

    response = place(api, body)

    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert CallLog.objects.count() == 1


@pytest.mark.django_db
def test_a_claim_is_stored_at_the_instant_the_request_came(api, body):
    # The claim is written in SQL (ON CONFLICT DO NOTHING): its instant must read back as the ORM
    # writes one, or the 5-minute and 24-hour rules would compare against a shifted time.
    before = timezone.now()
    place(api, body)
    after = timezone.now()

    claim = IdempotentRequest.objects.get()
    assert before <= claim.created_at <= after
    assert IdempotentRequest.objects.filter(created_at__gte=before).count() == 1


@pytest.mark.django_db
def test_a_request_whose_process_died_in_flight_may_be_retried_and_finds_its_call(api, body):
    first = place(api, body)
    IdempotentRequest.objects.update(
        response_status=None, created_at=timezone.now() - timedelta(minutes=6)
    )

    again = place(api, body)

    assert again.status_code == 200  # the call stored under the key, not a second one
    assert again.json()["id"] == first.json()["id"]
    assert CallLog.objects.count() == 1


@pytest.mark.django_db
def test_a_refused_body_keeps_no_answer_so_the_fixed_request_may_use_the_key(api, body):
    assert place(api, {**body, "to": "not a number"}).status_code == 422

    assert place(api, body).status_code == 201


@pytest.mark.django_db
def test_keys_are_scoped_to_their_api_key(api, body, client_with, sends):
    _, other = issue_key(name="Helpdesk")
    place(api, body)

    response = place(client_with(other), {**body, "call_again": True})

    assert response.status_code == 201
    assert CallLog.objects.count() == 2


@pytest.mark.django_db
def test_a_key_is_purged_after_24_hours_by_the_engine(api, body, settings):
    place(api, body)
    purge = next(job for job in JOBS if job.name == "api_records")

    assert purge.run().summary["idempotency_keys"] == 0
    IdempotentRequest.objects.update(created_at=timezone.now() - timedelta(hours=24, seconds=1))
    assert purge.run().summary["idempotency_keys"] == 1
    assert not IdempotentRequest.objects.exists()


@pytest.mark.django_db
def test_an_answer_past_its_24_hours_is_not_replayed(api, body):
    place(api, body)
    IdempotentRequest.objects.update(created_at=timezone.now() - timedelta(hours=25))

    again = place(api, {**body, "call_again": True})

    assert again.status_code == 201 and "Idempotent-Replayed" not in again


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "ünïcode"])
def test_an_unusable_idempotency_key_is_refused(api, body, key):
    response = place(api, body, key=key)

    assert response.status_code == 400
    assert not CallLog.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_identical_requests_at_the_same_instant_make_exactly_one_call(body):
    _, secret = issue_key(name="Race")
    start = threading.Barrier(4)
    answers: list[int] = []

    def client() -> None:
        try:
            start.wait(timeout=10)
            answers.append(
                place(Client(headers={"Authorization": f"Bearer {secret}"}), body).status_code
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert CallLog.objects.count() == 1
    # The others found the first still in flight (409) or got its answer again (201).
    assert len(answers) == 4 and set(answers) <= {201, 409} and 201 in answers
