"""Placing a call through the form (calls/views.py call_new, calls/forms.py PlaceCallForm):
validation, the do-not-call list and the per-number guard, what is stored, what is sent,
idempotency, and the log lines it writes."""

import json
import logging
import re
import socket
from datetime import timedelta

import pytest
from django_tasks_db.models import DBTaskResult

from calls.models import MASK, AudioAsset, CallLog, DoNotCall
from calls.provider.sandbox import deliver_sandbox_outcome
from tests.clock import pinned_now
from tests.helpers.answers import QUEUED
from tests.helpers.portal import (
    assert_no_secrets_in,
    call_form,
    database_dump,
    logged_in,
    place_call,
)


def test_the_form_page_lists_the_catalogue_and_a_fresh_key(agent_client, bridge, otp_flow, sound):
    page = agent_client.get("/calls/new/").content.decode()
    assert "Login OTP (flow 24)" in page and "Reminder" in page and "Bengaluru" in page
    assert 'name="idempotency_key"' in page
    assert "Sandbox test numbers" in page and "Sandbox mode" in page


def test_choosing_a_flow_swaps_in_its_variable_inputs_and_preview(agent_client, bridge, otp_flow):
    response = agent_client.post(
        "/calls/new/",
        {"flow": otp_flow.pk, "variables[Name]": "Asha"},
        headers={"HX-Request": "true", "HX-Target": "variables"},
    )
    html = response.content.decode()
    # It names the flow it was drawn for: the page asks again when the select says otherwise.
    assert html.lstrip().startswith(f'<div id="variables" data-flow="{otp_flow.pk}">')
    assert 'name="variables[Name]"' in html and 'name="variables[otp]"' in html
    assert 'type="password"' in html  # the OTP input never shows its value
    assert "Hello Asha, your otp for login is {otp}" in html


def test_the_preview_masks_the_otp_and_places_no_call(agent_client, bridge, otp_flow):
    response = agent_client.post(
        "/calls/new/",
        {"flow": otp_flow.pk, "variables[Name]": "Asha", "variables[otp]": "482913"},
        headers={"HX-Request": "true", "HX-Target": "preview"},
    )
    html = response.content.decode()
    assert f"Hello Asha, your otp for login is {MASK}" in html
    assert "482913" not in html
    assert not CallLog.objects.exists()


def test_variables_in_a_link_are_never_taken_so_no_secret_is_asked_for_in_a_url(
    agent_client, bridge, otp_flow
):
    response = agent_client.get(
        "/calls/new/", {"flow": otp_flow.pk, "variables[Name]": "Asha", "variables[otp]": "1"}
    )
    html = response.content.decode()
    assert 'name="variables[otp]"' in html  # the flow was taken
    assert 'value="Asha"' not in html and "Hello Asha" not in html


def test_the_live_parts_of_the_form_are_posted_never_sent_in_a_url(agent_client, otp_flow):
    html = agent_client.get("/calls/new/", {"flow": otp_flow.pk}).content.decode()
    assert "hx-get" not in html.split('id="call-form"', 1)[1].split("</form>", 1)[0]
    # The form, the number (its recent calls), the flow and both variables.
    assert html.count('hx-post="/calls/new/"') == 5


def test_it_places_a_flow_call_with_variables_and_stores_the_otp_masked(
    agent_client, agent, bridge, otp_flow, real_gateway, sends
):
    real_gateway.answer(200, QUEUED)
    data = call_form(bridge, otp_flow, **{"variables[Name]": "Asha", "variables[otp]": "482913"})
    response = agent_client.post("/calls/new/", data)
    call = CallLog.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/calls/{call.pk}/"
    assert sends.run() == ["queued"]
    call.refresh_from_db()
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
        "/calls/new/", call_form(bridge, audio=sound), headers={"HX-Request": "true"}
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
        call_form(bridge, otp_flow, **{"variables[Name]": "Asha", "variables[otp]": "1"}) | change
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
    data = call_form(
        bridge,
        otp_flow if flow else None,
        sound if audio else None,
        **{"variables[Name]": "A", "variables[otp]": "1"},
    )
    response = agent_client.post("/calls/new/", data)
    assert message in response.context["form"].non_field_errors()


def test_a_national_number_uses_the_default_region(agent_client, bridge, sound, settings):
    settings.OBD_DEFAULT_REGION = "IN"
    agent_client.post("/calls/new/", call_form(bridge, audio=sound, to="8867135123"))
    assert CallLog.objects.get().to == "918867135123"


def test_the_same_form_posted_twice_places_one_call(
    agent_client, bridge, sound, real_gateway, sends
):
    real_gateway.answer(200, QUEUED)
    data = call_form(bridge, audio=sound)
    first = agent_client.post("/calls/new/", data)
    second = agent_client.post("/calls/new/", data)
    assert sends.run() == ["queued"]
    assert CallLog.objects.count() == 1
    assert len(real_gateway.requests) == 1
    assert first["Location"] == second["Location"]


@pytest.mark.django_db(transaction=True)
def test_a_pending_call_is_stored_and_committed_before_the_provider_is_asked(
    agent_client, bridge, sound, real_gateway, sends
):
    seen = {}

    def reply(request):
        seen["stored"] = list(CallLog.objects.values_list("status", flat=True))
        return 200, {}, json.dumps(QUEUED).encode()

    real_gateway.reply = reply
    agent_client.post("/calls/new/", call_form(bridge, audio=sound))
    assert sends.run() == ["queued"]
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
    agent_client, bridge, sound, real_gateway, sends, answer, status, shown
):
    real_gateway.answer(*answer)
    placed = agent_client.post("/calls/new/", call_form(bridge, audio=sound))
    sends.run()
    response = agent_client.get(placed["Location"])
    call = CallLog.objects.get()
    assert call.status == status
    assert shown in response.content.decode()
    assert "tok-123" not in response.content.decode() + call.error + call.response_body


def test_place_again_prefills_all_but_the_secret(agent_client, bridge, otp_flow):
    data = call_form(
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


def test_no_otp_value_is_found_in_the_database_logs_or_pages(
    agent_client, bridge, otp_flow, caplog, sends
):
    secret = "739164"
    caplog.set_level(logging.DEBUG)
    data = call_form(bridge, otp_flow, **{"variables[Name]": "Asha", "variables[otp]": secret})
    agent_client.post("/calls/new/", data)
    call = CallLog.objects.get()
    assert secret not in database_dump()  # sealed while it waits for the worker
    assert sends.run() == ["queued"]
    outcome = DBTaskResult.objects.get(task_path=deliver_sandbox_outcome.module_path)
    deliver_sandbox_outcome.call(*outcome.args_kwargs["args"])
    pages = "".join(
        agent_client.get(url).content.decode()
        for url in ["/calls/", call.get_absolute_url(), f"/calls/new/?again={call.pk}"]
    )
    assert secret not in pages
    assert secret not in caplog.text
    assert secret not in database_dump()


# --- the do-not-call list and the per-number guard ------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "reason", "message"),
    [
        (
            "+91 88671 35123",
            "Customer asked on 2026-11-02",
            "This number is on the do-not-call list (Customer asked on 2026-11-02).",
        ),
        ("0091 8867135123", "", "This number is on the do-not-call list."),
    ],
)
def test_the_call_form_refuses_a_number_on_the_do_not_call_list(
    agent_client, bridge, sound, typed, reason, message
):
    DoNotCall.objects.create(number="918867135123", reason=reason)

    response = agent_client.post("/calls/new/", call_form(bridge, audio=sound, to=typed))

    assert response.status_code == 200
    assert response.context["form"].errors["to"] == [message]
    assert message in response.content.decode()
    assert not CallLog.objects.exists()


def test_calls_never_placed_do_not_count_against_the_per_number_guard(
    agent_client, bridge, sound, settings
):
    settings.OBD_MAX_CALLS_PER_NUMBER = 1
    for status in ("rejected", "error", "pending"):
        CallLog.objects.create(bridge=bridge, audio=sound, to="918867135123", status=status)
    agent_client.post("/calls/new/", call_form(bridge, audio=sound, to="+91 88671 35123"))
    assert CallLog.objects.filter(to="918867135123").count() == 4


@pytest.mark.parametrize(
    ("limit", "minutes_ago", "refused"),
    [
        (2, [5, 30], True),
        (2, [5, 90], False),  # one of them is outside the window
        (3, [5, 30], False),
        (0, [1, 2, 3], False),  # no limit set
    ],
)
def test_the_per_number_guard_refuses_a_call_over_the_limit(
    agent_client, bridge, sound, settings, limit, minutes_ago, refused
):
    settings.OBD_MAX_CALLS_PER_NUMBER = limit
    settings.OBD_MAX_CALLS_WINDOW_MINUTES = 60
    settings.OBD_REDIAL_WARN_MINUTES = 0  # the other guard, tested on its own
    for minutes in minutes_ago:
        CallLog.objects.create(
            bridge=bridge,
            audio=sound,
            to="918867135123",
            status="answered",
            created_at=pinned_now() - timedelta(minutes=minutes),
            submitted_at=pinned_now() - timedelta(minutes=minutes),
        )
    CallLog.objects.create(bridge=bridge, audio=sound, to="918867135124", status="answered")

    response = agent_client.post(
        "/calls/new/", call_form(bridge, audio=sound, to="+91 88671 35123")
    )

    placed = CallLog.objects.filter(to="918867135123").count() - len(minutes_ago)
    assert placed == (0 if refused else 1)
    if refused:
        assert response.context["form"].errors["to"] == [
            "This number was already called 2 time(s) in the last 60 minutes; try again later."
        ]


# --- log lines ------------------------------------------------------------------------------------


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v2/"


def test_placing_a_call_logs_one_line_with_its_id_and_status(
    caplog, real_gateway, agent, bridge, otp_flow, sends
):
    real_gateway.answer(200, QUEUED)
    caplog.set_level("INFO")
    call = place_call(logged_in(agent), bridge, otp_flow)
    sends.run()
    call.refresh_from_db()
    assert call.status == CallLog.Status.QUEUED
    lines = [r.getMessage() for r in caplog.records if f"call={call.pk}" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    assert "status=queued" in lines[0]
    assert_no_secrets_in(caplog)


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param("http 500", id="the provider fails with HTTP 500"),
        pytest.param("unreachable", id="the provider is unreachable"),
    ],
)
def test_a_provider_failure_logs_a_warning_without_secrets(
    caplog, settings, real_gateway, agent, bridge, otp_flow, sends, failure
):
    if failure == "unreachable":
        settings.MOBTEXTING_API_URL = closed_port_url()
    else:
        real_gateway.answer(500, {"message": "Server Error"})
    caplog.set_level("INFO")
    call = place_call(logged_in(agent), bridge, otp_flow)
    sends.run()
    call.refresh_from_db()
    assert call.status in (CallLog.Status.ERROR, CallLog.Status.UNKNOWN)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings, [r.getMessage() for r in caplog.records]
    assert_no_secrets_in(caplog)


# --- the redial guard -----------------------------------------------------------------------------


def dialled(bridge, sound, minutes_ago: int, status: str = "answered") -> CallLog:
    when = pinned_now() - timedelta(minutes=minutes_ago)
    return CallLog.objects.create(
        bridge=bridge,
        audio=sound,
        to="918867135123",
        status=status,
        submitted_at=when,
        created_at=when,
    )


def test_a_number_called_minutes_ago_is_called_again_only_once_confirmed(
    agent_client, bridge, sound
):
    earlier = dialled(bridge, sound, minutes_ago=3)
    form = call_form(bridge, audio=sound, to="+91 88671 35123")

    warned = agent_client.post("/calls/new/", form)
    assert warned.status_code == 200
    assert CallLog.objects.count() == 1
    assert f"This number was called 3\xa0minutes ago (call #{earlier.pk}, answered)" in warned.text
    assert 'name="call_again"' in warned.text and "Call again anyway" in warned.text

    confirmed = agent_client.post("/calls/new/", form | {"call_again": "on"})
    assert confirmed.status_code == 302
    assert CallLog.objects.count() == 2


@pytest.mark.parametrize(
    ("warn_minutes", "minutes_ago", "status", "warned"),
    [
        (10, 15, "answered", False),  # long enough ago
        (10, 3, "error", False),  # never rang
        (0, 1, "answered", False),  # the warning is off
        (30, 15, "queued", True),
    ],
)
def test_the_redial_warning_counts_calls_that_may_have_rung_within_its_minutes(
    agent_client, bridge, sound, settings, warn_minutes, minutes_ago, status, warned
):
    settings.OBD_REDIAL_WARN_MINUTES = warn_minutes
    dialled(bridge, sound, minutes_ago, status)
    agent_client.post("/calls/new/", call_form(bridge, audio=sound))
    assert CallLog.objects.count() == (1 if warned else 2)


def test_a_double_click_is_one_call_and_no_redial_warning(agent_client, bridge, sound):
    form = call_form(bridge, audio=sound)
    first, second = (agent_client.post("/calls/new/", form) for _ in range(2))
    assert (first.status_code, second.status_code) == (302, 302)
    assert first["Location"] == second["Location"]
    assert CallLog.objects.count() == 1


# --- the number's recent calls, sandbox numbers, an audio URL, the secret's eye -------------------


def test_typing_a_number_shows_its_recent_calls_and_posts_only_the_number(
    agent_client, bridge, sound, otp_flow
):
    earlier = dialled(bridge, sound, minutes_ago=30, status="busy")
    page = agent_client.get("/calls/new/", {"flow": otp_flow.pk}).text
    to_input = re.search(r'<input[^>]*name="to"[^>]*>', page)[0]
    assert 'hx-params="to"' in to_input and 'hx-target="#recent"' in to_input

    part = agent_client.post(
        "/calls/new/", {"to": "+91 88671 35123"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="recent"
    )
    assert part.text.lstrip().startswith('<div id="recent"')
    assert f'href="/calls/{earlier.pk}/"' in part.text and ">Busy<" in part.text
    other = agent_client.post(
        "/calls/new/", {"to": "+91 88671 35199"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="recent"
    )
    assert "/calls/" not in other.text
    assert not CallLog.objects.exclude(pk=earlier.pk).exists()


def test_the_sandbox_numbers_fill_the_to_field(agent_client, bridge):
    page = agent_client.get("/calls/new/").text
    assert 'data-fill="id_to" data-value="+919876540002"' in page


def test_an_audio_url_typed_on_the_form_is_kept_in_the_catalogue_and_reused(agent_client, bridge):
    url = "https://cdn.example.com/sounds/reminder.mp3"
    for number in ("+91 88671 35123", "+91 88671 35124"):
        response = agent_client.post("/calls/new/", call_form(bridge, to=number, audio_url=url))
        assert response.status_code == 302
    (asset,) = AudioAsset.objects.all()
    assert (asset.name, asset.url, asset.sound_id) == ("reminder.mp3", url, "")
    assert [c.request_payload["audio"] for c in CallLog.objects.all()] == [url, url]


@pytest.mark.parametrize(
    "url", ["ftp://cdn.example.com/a.mp3", "javascript:alert(1)", "file:///etc/passwd"]
)
def test_an_audio_url_must_be_http_or_https(agent_client, bridge, url):
    response = agent_client.post("/calls/new/", call_form(bridge, audio_url=url))
    assert response.status_code == 200 and response.context["form"].errors["audio_url"]
    assert not CallLog.objects.exists() and not AudioAsset.objects.exists()


def test_an_audio_and_an_audio_url_together_are_refused(agent_client, bridge, sound):
    form = call_form(bridge, audio=sound, audio_url="https://cdn.example.com/a.mp3")
    response = agent_client.post("/calls/new/", form)
    assert response.context["form"].errors["audio_url"]
    assert not CallLog.objects.exists()


def test_the_otp_input_has_an_eye_that_reveals_it_and_the_page_no_inline_script(
    agent_client, otp_flow
):
    page = agent_client.get("/calls/new/", {"flow": otp_flow.pk}).text
    otp = re.search(r'<input type="password"[^>]*id="([^"]+)"', page)
    assert otp is not None
    assert f'data-reveal="{otp[1]}"' in page and "Show otp" in page
    assert "<script>" not in page and "onclick" not in page


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("javascript:alert(1)", "Only an http:// or https:// link can be played."),
        ("ftp://cdn.example.com/c.mp3", "Only an http:// or https:// link can be played."),
        ("https://cdn.example.com/page.html", "Link to an MP3 or WAV file"),
        ("https://", "Enter a whole link"),
    ],
)
def test_an_audio_url_that_cannot_be_played_says_why_once(agent_client, bridge, url, error):
    response = agent_client.post("/calls/new/", call_form(bridge, audio_url=url))

    assert response.status_code == 200
    assert response.text.count(error) == 1
    assert "Choose an IVR flow or an audio to play." not in response.text
    assert not CallLog.objects.exists()


def test_a_secret_field_sent_back_with_an_error_asks_for_the_secret_again(
    agent_client, bridge, otp_flow
):
    data = call_form(
        bridge, otp_flow, to="12", **{"variables[Name]": "Asha", "variables[otp]": "4829"}
    )

    response = agent_client.post("/calls/new/", data)

    assert "Type it again: a secret is never sent back to the page." in response.text
    assert "4829" not in response.text


def test_a_single_calls_name_is_called_its_name_at_the_provider_not_a_campaign(
    agent_client, bridge, sound
):
    form = agent_client.get("/calls/new/").text
    assert '<label for="id_name">Name at the provider</label>' in form
    assert "Campaign name" not in form

    call = CallLog.objects.create(
        bridge=bridge, to="918867135123", audio=sound, name="obd_api_call"
    )
    page = agent_client.get(call.get_absolute_url()).text
    assert "<dt>Name at the provider</dt><dd>obd_api_call</dd>" in page
