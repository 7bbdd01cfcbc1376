"""Placing a call through the form: validation, what is stored, what is sent, idempotency."""

import json
import logging
import uuid

import pytest
from django.db import connection

from calls.models import MASK, CallEvent, CallLog
from calls.provider.sandbox import SandboxGateway, deliver_sandbox_outcome


def form_data(bridge, flow=None, audio=None, **extra) -> dict:
    data = {
        "bridge": bridge.pk,
        "to": "+91 88671 35123",
        "flow": flow.pk if flow else "",
        "audio": audio.pk if audio else "",
        "name": "",
        "interval": "0",
        "webhook_id": "",
        "idempotency_key": str(uuid.uuid4()),
    }
    return data | extra


@pytest.fixture
def real_gateway(settings, fake_provider):
    settings.MOBTEXTING_API_TOKEN = "tok-123"
    settings.MOBTEXTING_API_URL = fake_provider.url
    settings.OBD_SANDBOX = False
    return fake_provider


QUEUED = {
    "status": "OK",
    "message": "Calls queued successfully",
    "data": [
        {
            "id": "3b69aca9-3b55-4e2d-bfe0-02b910dbe156",
            "credits": 1,
            "status": "queued",
            "created_at": "2024-07-10T06:09:43.054164Z",
        }
    ],
}


def test_the_form_page_lists_the_catalogue_and_a_fresh_key(agent_client, bridge, otp_flow, sound):
    page = agent_client.get("/calls/new/").content.decode()
    assert "Login OTP (flow 24)" in page and "Reminder" in page and "Bengaluru" in page
    assert 'name="idempotency_key"' in page
    assert "Sandbox test numbers" in page and "Sandbox mode" in page


def test_choosing_a_flow_swaps_in_its_variable_inputs_and_preview(agent_client, bridge, otp_flow):
    response = agent_client.get(
        "/calls/new/",
        {"flow": otp_flow.pk, "variables[Name]": "Asha"},
        headers={"HX-Request": "true", "HX-Target": "variables"},
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="variables">')
    assert 'name="variables[Name]"' in html and 'name="variables[otp]"' in html
    assert 'type="password"' in html  # the OTP input never shows its value
    assert "Hello Asha, your otp for login is {otp}" in html


def test_the_preview_masks_the_otp(agent_client, bridge, otp_flow):
    response = agent_client.get(
        "/calls/new/",
        {"flow": otp_flow.pk, "variables[Name]": "Asha", "variables[otp]": "482913"},
        headers={"HX-Request": "true", "HX-Target": "preview"},
    )
    html = response.content.decode()
    assert f"Hello Asha, your otp for login is {MASK}" in html
    assert "482913" not in html


def test_it_places_a_flow_call_with_variables_and_stores_the_otp_masked(
    agent_client, agent, bridge, otp_flow, real_gateway
):
    real_gateway.answer(200, QUEUED)
    data = form_data(bridge, otp_flow, **{"variables[Name]": "Asha", "variables[otp]": "482913"})
    response = agent_client.post("/calls/new/", data)
    call = CallLog.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/calls/{call.pk}/"
    assert real_gateway.requests[0].json() == {
        "bridge": "918068287602",
        "to": "918867135123",
        "flow_id": "24",
        "variables[Name]": "Asha",
        "variables[otp]": "482913",
    }
    assert call.status == "queued" and call.provider_id == "3b69aca9-3b55-4e2d-bfe0-02b910dbe156"
    assert call.variables == {"Name": "Asha", "otp": MASK}
    assert call.request_payload["variables[otp]"] == MASK
    assert call.created_by == agent and call.submitted_at is not None


def test_an_htmx_post_answers_with_a_client_redirect(agent_client, bridge, sound):
    response = agent_client.post(
        "/calls/new/", form_data(bridge, audio=sound), headers={"HX-Request": "true"}
    )
    assert response["HX-Redirect"] == CallLog.objects.get().get_absolute_url()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"to": "12345"}, "to", "is not a valid phone number"),
        ({"to": ""}, "to", "required"),
        ({"interval": "10"}, "interval", "Select a valid choice"),
        ({"variables[otp]": ""}, "variables[otp]", "required"),
    ],
)
def test_bad_input_re_renders_the_form_in_place_with_field_errors(
    agent_client, bridge, otp_flow, change, field, message
):
    data = (
        form_data(bridge, otp_flow, **{"variables[Name]": "Asha", "variables[otp]": "1"}) | change
    )
    response = agent_client.post("/calls/new/", data, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert message in " ".join(response.context["form"].errors[field])
    assert response.content.decode().lstrip().startswith('<form id="call-form"')
    assert not CallLog.objects.exists()


@pytest.mark.parametrize(
    ("flow", "audio", "message"),
    [
        (True, True, "Choose an IVR flow or an audio, not both."),
        (False, False, "Choose an IVR flow or an audio to play."),
    ],
)
def test_a_call_plays_exactly_one_of_flow_and_audio(
    agent_client, bridge, otp_flow, sound, flow, audio, message
):
    data = form_data(
        bridge,
        otp_flow if flow else None,
        sound if audio else None,
        **{"variables[Name]": "A", "variables[otp]": "1"},
    )
    response = agent_client.post("/calls/new/", data)
    assert message in response.context["form"].non_field_errors()


def test_a_national_number_uses_the_default_region(agent_client, bridge, sound, settings):
    settings.OBD_DEFAULT_REGION = "IN"
    agent_client.post("/calls/new/", form_data(bridge, audio=sound, to="8867135123"))
    assert CallLog.objects.get().to == "918867135123"


def test_the_same_form_posted_twice_places_one_call(agent_client, bridge, sound, real_gateway):
    real_gateway.answer(200, QUEUED)
    data = form_data(bridge, audio=sound)
    first = agent_client.post("/calls/new/", data)
    second = agent_client.post("/calls/new/", data)
    assert CallLog.objects.count() == 1
    assert len(real_gateway.requests) == 1
    assert first["Location"] == second["Location"]


@pytest.mark.django_db(transaction=True)
def test_a_pending_call_is_stored_and_committed_before_the_provider_is_asked(
    agent_client, bridge, sound, real_gateway
):
    seen = {}

    def reply(request):
        seen["stored"] = list(CallLog.objects.values_list("status", flat=True))
        return 200, {}, json.dumps(QUEUED).encode()

    real_gateway.reply = reply
    agent_client.post("/calls/new/", form_data(bridge, audio=sound))
    assert seen["stored"] == ["pending"]


@pytest.mark.parametrize(
    ("answer", "status", "shown"),
    [
        ((401, {"message": "Unauthenticated."}), "rejected", "MOBTEXTING_API_TOKEN"),
        ((422, {"message": "Invalid bridge"}), "rejected", "Invalid bridge"),
        ((503, {"message": "down"}), "unknown", "may or may not have been placed"),
    ],
)
def test_a_failure_is_stored_and_shown_on_the_call_page(
    agent_client, bridge, sound, real_gateway, answer, status, shown
):
    real_gateway.answer(*answer)
    response = agent_client.post("/calls/new/", form_data(bridge, audio=sound), follow=True)
    call = CallLog.objects.get()
    assert call.status == status
    assert shown in response.content.decode()
    assert "tok-123" not in response.content.decode() + call.error + call.response_body


def test_an_error_call_can_be_retried_once_with_its_otp_re_entered(
    agent_client, bridge, otp_flow, settings
):
    settings.MOBTEXTING_API_TOKEN = "tok"
    settings.MOBTEXTING_API_URL = "http://127.0.0.1:9/api/v2/"  # discard port: refused
    data = form_data(bridge, otp_flow, **{"variables[Name]": "Asha", "variables[otp]": "111111"})
    agent_client.post("/calls/new/", data)
    call = CallLog.objects.get()
    assert call.status == "error"
    page = agent_client.get(call.get_absolute_url()).content.decode()
    assert "Retry" in page and 'name="variables[otp]"' in page
    settings.MOBTEXTING_API_TOKEN = ""  # the provider is back (the sandbox answers)
    agent_client.post(f"/calls/{call.pk}/retry/", {"variables[otp]": "222222"})
    call.refresh_from_db()
    assert call.status == "queued"
    assert call.variables == {"Name": "Asha", "otp": MASK}


def test_a_queued_call_cannot_be_retried(agent_client, bridge, sound):
    agent_client.post("/calls/new/", form_data(bridge, audio=sound))
    call = CallLog.objects.get()
    agent_client.post(f"/calls/{call.pk}/retry/", {})
    call.refresh_from_db()
    assert call.status == "queued" and CallLog.objects.count() == 1


def test_place_again_prefills_all_but_the_secret(agent_client, bridge, otp_flow):
    data = form_data(
        bridge, otp_flow, name="reminders", **{"variables[Name]": "Asha", "variables[otp]": "1"}
    )
    agent_client.post("/calls/new/", data)
    call = CallLog.objects.get()
    form = agent_client.get(f"/calls/new/?again={call.pk}").context["form"]
    assert form["to"].value() == "+918867135123"
    assert form["variables[Name]"].value() == "Asha"
    assert form["name"].value() == "reminders"
    assert str(form["idempotency_key"].value()) != str(call.idempotency_key)
    assert (
        'name="variables[otp]"' in agent_client.get(f"/calls/new/?again={call.pk}").content.decode()
    )


def test_the_sandbox_answers_then_its_outcome_arrives_through_the_webhook_path(
    agent_client, bridge, sound
):
    agent_client.post("/calls/new/", form_data(bridge, audio=sound, to="+91 98765 40002"))
    call = CallLog.objects.get()
    assert call.status == "queued"
    from django_tasks_db.models import DBTaskResult

    task = DBTaskResult.objects.get()
    deliver_sandbox_outcome.call(*task.args_kwargs["args"])
    call.refresh_from_db()
    assert call.status == "busy" and call.provider_status == "BUSY"
    assert CallEvent.objects.get().source == "sandbox"


@pytest.mark.parametrize(
    ("ending", "status"), [("0004", "rejected"), ("0005", "unknown"), ("0009", "error")]
)
def test_sandbox_test_numbers_give_their_fixed_submission_result(db, ending, status):
    payload = {"bridge": "918068287602", "to": "91987654" + ending, "audio": "x"}
    assert SandboxGateway().send(payload).status == status


def test_no_otp_value_is_found_in_the_database_logs_or_pages(
    agent_client, bridge, otp_flow, caplog
):
    secret = "739164"
    caplog.set_level(logging.DEBUG)
    data = form_data(bridge, otp_flow, **{"variables[Name]": "Asha", "variables[otp]": secret})
    agent_client.post("/calls/new/", data)
    call = CallLog.objects.get()
    from django_tasks_db.models import DBTaskResult

    deliver_sandbox_outcome.call(*DBTaskResult.objects.get().args_kwargs["args"])
    pages = "".join(
        agent_client.get(url).content.decode()
        for url in ["/calls/", call.get_absolute_url(), f"/calls/new/?again={call.pk}"]
    )
    with connection.cursor() as cursor:
        dump = []
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from introspection
            dump.append(repr(cursor.fetchall()))
    assert secret not in pages
    assert secret not in caplog.text
    assert secret not in "".join(dump)


@pytest.mark.parametrize("tail", ["5123", "23", "99", "9", "0"])
def test_the_call_log_finds_calls_by_the_last_digits_of_the_number(
    agent_client, bridge, sound, tail
):
    numbers = ["918867135123", "918867130099", "918867135199", "918867135100", "918867135129"]
    for number in numbers:
        CallLog.objects.create(bridge=bridge, audio=sound, to=number, status="queued")
    found = {c.to for c in agent_client.get("/calls/", {"q": tail}).context["page"].rows}
    assert found == {n for n in numbers if n.endswith(tail)}


def test_the_call_log_keeps_whole_days_between_from_and_to(agent_client, bridge, sound):
    from datetime import timedelta

    from django.utils import timezone

    today = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)
    for days_ago in (9, 5, 4, 3, 1):  # created in that order, as ids grow with time
        CallLog.objects.create(
            bridge=bridge,
            audio=sound,
            to=f"91886713510{days_ago}",
            status="queued",
            created_at=today - timedelta(days=days_ago),
        )
    since, until = (today - timedelta(days=5)).date(), (today - timedelta(days=3)).date()
    rows = agent_client.get("/calls/", {"since": since, "until": until}).context["page"].rows
    assert [c.to for c in rows] == ["918867135103", "918867135104", "918867135105"]
