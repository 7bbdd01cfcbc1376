"""Callback endpoints in the admin: registered by an administrator (the secret shown once, on the
answer to the POST), rotated, replayed, their delivery log; hostile input is a form error."""

import re

from standardwebhooks import Webhook

from calls.models import CallbackAttempt, CallbackDelivery, CallbackEndpoint
from calls.models.callbacks import EventType
from calls.models.outbox import record
from tests.api.conftest import issue_key
from tests.callbacks.conftest import register
from tests.helpers.portal import logged_in

ADD = "/admin/calls/callbackendpoint/add/"
LIST = "/admin/calls/callbackendpoint/"


def shown_secret(text: str) -> str:
    found = re.search(r'<code id="callback-secret">(whsec_[A-Za-z0-9+/=]+)</code>', text)
    assert found, "no secret shown"
    return found.group(1)


def test_an_administrator_registers_an_endpoint_and_sees_its_secret_once(admin_client):
    response = admin_client.post(
        ADD,
        {
            "url": "https://crm.example/hooks/obd",
            "description": "CRM",
            "event_types": ["call.settled", "keypress.received"],
            "enabled": "on",
        },
    )

    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    secret = shown_secret(response.text)
    endpoint = CallbackEndpoint.objects.get()
    assert endpoint.event_types == ["call.settled", "keypress.received"]
    assert endpoint.signing_secrets(endpoint.created_at) == [secret]
    Webhook(secret)  # a secret the library takes
    assert secret not in endpoint.sealed_secret
    assert secret not in admin_client.get(f"{LIST}{endpoint.pk}/change/").text


def test_an_endpoint_is_registered_for_one_api_key_or_the_whole_portal(admin_client):
    crm = issue_key("CRM")[0]
    for description, key in [("CRM only", str(crm.pk)), ("Everything", "")]:
        admin_client.post(
            ADD,
            {
                "url": "https://crm.example/hooks/obd",
                "description": description,
                "api_key": key,
                "event_types": ["call.settled"],
                "enabled": "on",
            },
        )

    assert dict(CallbackEndpoint.objects.values_list("description", "api_key")) == {
        "CRM only": crm.pk,
        "Everything": None,
    }
    assert "CRM (obd_" in admin_client.get(LIST).text


def test_an_unknown_api_key_is_a_form_error_never_a_500(admin_client):
    for key in ["999999", "x\x00", "9" * 40]:
        response = admin_client.post(
            ADD, {"url": "https://crm.example/h", "api_key": key, "event_types": ["call.settled"]}
        )
        assert response.status_code == 200 and "errorlist" in response.text
    assert not CallbackEndpoint.objects.exists()


def test_a_hostile_url_is_a_form_error_never_a_500(admin_client):
    for url in [
        "javascript:alert(1)",
        "https://crm.example/\x00",
        "https://x.example/" + "a" * 3000,
    ]:
        response = admin_client.post(ADD, {"url": url, "event_types": ["call.settled"]})
        assert response.status_code == 200
        assert "errornote" in response.text or "errorlist" in response.text
    assert not CallbackEndpoint.objects.exists()


def test_a_supervisor_cannot_register_endpoints(supervisor):
    assert logged_in(supervisor).get(ADD).status_code == 403


def test_rotating_shows_the_new_secret_and_the_old_one_still_signs(admin_client):
    endpoint, old = register("https://crm.example/hooks/obd")

    response = admin_client.post(
        LIST, {"action": "rotate_secret", "_selected_action": [endpoint.pk]}
    )

    new = shown_secret(response.text)
    endpoint.refresh_from_db()
    assert new != old
    assert endpoint.signing_secrets(endpoint.created_at) == [new, old]
    assert "The previous secret signs too until" in response.text


def test_replay_sends_a_delivery_again_and_the_log_shows_its_attempts(admin_client):
    endpoint, _ = register("https://crm.example/hooks/obd")
    record([(EventType.CALL_SETTLED, {"call_id": 1}, "call:1", None)])
    delivery = CallbackDelivery.objects.get()
    CallbackAttempt.objects.create(
        delivery=delivery,
        number=1,
        attempted_at=endpoint.created_at,
        status_code=410,
        duration_ms=12,
    )
    CallbackDelivery.objects.filter(pk=delivery.pk).update(
        given_up_at=endpoint.created_at, next_attempt_at=None, last_status_code=410
    )

    log = admin_client.get(f"/admin/calls/callbackdelivery/?endpoint__id__exact={endpoint.pk}")
    assert delivery.event.message_id in log.text and "410" in log.text
    assert "410" in admin_client.get(f"/admin/calls/callbackdelivery/{delivery.pk}/change/").text

    admin_client.post(
        "/admin/calls/callbackdelivery/",
        {"action": "replay", "_selected_action": [delivery.pk]},
    )

    delivery.refresh_from_db()
    assert delivery.given_up_at is None and delivery.next_attempt_at is not None


def test_the_endpoint_list_links_each_to_its_delivery_log(admin_client):
    endpoint, _ = register("https://crm.example/hooks/obd")

    page = admin_client.get(LIST)

    assert page.status_code == 200
    assert f"/admin/calls/callbackdelivery/?endpoint__id__exact={endpoint.pk}" in page.text


def test_a_disabled_endpoint_is_turned_on_and_its_given_up_deliveries_replayed(admin_client):
    endpoint, _ = register("https://crm.example/hooks/obd")
    record([(EventType.CALL_SETTLED, {"call_id": 1}, "call:1", None)])
    CallbackDelivery.objects.update(given_up_at=endpoint.created_at, next_attempt_at=None)
    CallbackEndpoint.objects.update(
        enabled=False, disabled_reason="failed for days", failing_since=endpoint.created_at
    )

    for action in ("turn_on", "replay_given_up"):
        admin_client.post(LIST, {"action": action, "_selected_action": [endpoint.pk]})

    endpoint.refresh_from_db()
    assert endpoint.enabled and not endpoint.disabled_reason and endpoint.failing_since is None
    delivery = CallbackDelivery.objects.get()
    assert delivery.given_up_at is None and delivery.next_attempt_at is not None
