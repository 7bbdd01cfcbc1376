"""The pages: a call's keys and its recording (played through the portal, an expired link
fetched anew from the provider over HTTP, the sandbox's clip), a campaign's keypress results
with their chart and CSV, the call log's filter by key, the flow's keys in the admin."""

import io
import wave
from datetime import timedelta

import pytest
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from calls.models import CallLog, IvrFlow, RecordingLookup
from calls.recordings import look_up_recording
from tests.clock import pinned, pinned_now
from tests.helpers.campaigns import make_campaign
from tests.helpers.keypresses import answered, json_reply
from tests.helpers.portal import API_TOKEN, logged_in
from tests.helpers.tasks import run_queued

FRESH = "https://s3.example.com/rec/fresh.mp3?X-Amz-Signature=abc"
OLD = "https://recordings.example.com/old.mp3"


@pytest.fixture
def choices_flow(otp_flow):
    otp_flow.choices = {"1": "confirm", "2": "reschedule", "9": "stop calling me"}
    otp_flow.stop_key = "9"
    otp_flow.save()
    return otp_flow


def recording_url(call) -> str:
    return reverse("calls:call-recording", args=[call.pk])


def recordings_list(fake_provider, to="918867135123", at=None, inbound=False):
    """The list with the call's recording: from the bridge to `to`, or (`inbound`) the other
    way round, as the documentation's only example row is listed."""
    ends = (to, "918068287602") if inbound else ("918068287602", to)

    def reply(recorded):
        moment = (at or pinned_now()).astimezone(timezone.get_fixed_timezone(330))
        row = {
            "id": 1,
            "call_from": ends[0],
            "call_to": ends[1],
            "audio": FRESH,
            "duration": "00:00:30",
            "created_at": moment.strftime("%Y-%m-%d %H:%M:%S"),
        }
        return json_reply(200, {"data": [row], "meta": {"current_page": 1, "last_page": 1}})

    fake_provider.route("voice/recordings", reply)


# --- a call's page --------------------------------------------------------------------------------


def test_the_call_page_shows_the_keys_and_a_player(agent_client, bridge, choices_flow):
    call = answered(
        bridge, choices_flow, keypresses="1", keypresses_at=pinned_now(), recording_url=OLD
    )
    html = agent_client.get(call.get_absolute_url()).content.decode()
    assert '<dd class="keypresses">1 (confirm)</dd>' in html
    assert (
        f'<audio class="recording" controls preload="metadata" src="{recording_url(call)}">' in html
    )
    assert OLD not in html  # played through the portal, which picks a live link


def test_a_call_whose_keys_are_still_looked_up_says_so_and_redraws_itself(
    agent_client, bridge, choices_flow
):
    """Answered, its outcome settled: the page still redraws itself until the keys are known,
    and then stops."""
    call = answered(bridge, choices_flow)
    html = agent_client.get(call.get_absolute_url()).content.decode()
    assert "Being looked up at the provider…" in html
    assert 'hx-trigger="every 2s"' in html
    assert "<audio" not in html  # no recording came

    CallLog.objects.filter(pk=call.pk).update(keypresses="1", keypresses_at=pinned_now())
    html = agent_client.get(call.get_absolute_url()).content.decode()
    assert '<dd class="keypresses">1 (confirm)</dd>' in html
    assert "hx-trigger" not in html.split('<div id="live"')[1].split(">")[0]


def test_a_valid_link_is_followed_without_asking_the_provider(
    agent_client, bridge, choices_flow, real_gateway
):
    call = answered(bridge, choices_flow, recording_url=OLD)
    response = agent_client.get(recording_url(call))
    assert (response.status_code, response["Location"]) == (302, OLD)
    assert real_gateway.requests == []


def open_recording(client, call):
    """Open the recording as a person does: the page asks and says it is looking it up (it
    refreshes itself); a worker runs the look-up; the page's next refresh answers."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        asked = client.get(recording_url(call))
    assert (asked.status_code, asked["Refresh"]) == (202, "2")
    assert "Looking up the recording" in asked.content.decode()
    run_queued(look_up_recording)
    return client.get(recording_url(call))


def test_an_expired_link_is_fetched_anew_by_a_worker_once_and_reused(
    agent_client, bridge, choices_flow, real_gateway
):
    call = answered(bridge, choices_flow, minutes_ago=180, recording_url=OLD)
    recordings_list(real_gateway, at=call.started_at + timedelta(seconds=20))

    first = open_recording(agent_client, call)
    second = agent_client.get(recording_url(call))

    assert (first.status_code, first["Location"]) == (302, FRESH)
    assert second["Location"] == FRESH
    assert len(real_gateway.requests) == 1
    assert API_TOKEN not in first["Location"]


@pytest.mark.parametrize("inbound", [False, True], ids=["bridge to customer", "customer to bridge"])
def test_an_expired_link_is_found_whichever_way_round_the_call_is_listed(
    agent_client, bridge, choices_flow, real_gateway, inbound
):
    call = answered(bridge, choices_flow, minutes_ago=180, recording_url=OLD)
    recordings_list(real_gateway, at=call.started_at + timedelta(seconds=20), inbound=inbound)
    response = open_recording(agent_client, call)
    assert (response.status_code, response["Location"]) == (302, FRESH)


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (lambda r: (500, {}, b"<html>down</html>"), "HTTP 500"),
        (lambda r: (200, {}, b"garbage"), "not the documented JSON"),
        (lambda r: json_reply(200, {"data": [], "meta": {}}), "lists no recording of this call"),
    ],
)
def test_a_provider_failure_is_a_clear_page_without_the_token(
    agent_client, bridge, choices_flow, real_gateway, reply, says
):
    call = answered(bridge, choices_flow, minutes_ago=180, recording_url=OLD)
    real_gateway.route("voice/recordings", reply)

    response = open_recording(agent_client, call)

    html = response.content.decode()
    assert response.status_code == 502
    assert says in html and "Back to call" in html
    assert API_TOKEN not in html


def test_a_failed_fetch_is_not_remembered(agent_client, bridge, choices_flow, real_gateway):
    call = answered(bridge, choices_flow, minutes_ago=180, recording_url=OLD)
    real_gateway.route("voice/recordings", lambda r: (503, {}, b""))
    assert open_recording(agent_client, call).status_code == 502

    recordings_list(real_gateway, at=call.started_at)
    assert open_recording(agent_client, call)["Location"] == FRESH


def test_a_page_that_refreshes_while_the_worker_looks_asks_once(
    agent_client, bridge, choices_flow, real_gateway
):
    call = answered(bridge, choices_flow, minutes_ago=180, recording_url=OLD)
    for _ in range(3):
        with TestCase.captureOnCommitCallbacks(execute=True):
            assert agent_client.get(recording_url(call)).status_code == 202
    recordings_list(real_gateway, at=call.started_at)
    assert run_queued(look_up_recording) == ["found"]
    assert agent_client.get(recording_url(call))["Location"] == FRESH


def test_a_look_up_whose_worker_died_is_asked_again_a_minute_later(
    agent_client, bridge, choices_flow, real_gateway
):
    call = answered(bridge, choices_flow, minutes_ago=180, recording_url=OLD)
    with TestCase.captureOnCommitCallbacks(execute=True):
        agent_client.get(recording_url(call))
    DBTaskResult.objects.all().delete()  # the task lost with its worker
    with (
        pinned(pinned_now() + timedelta(minutes=1)),
        TestCase.captureOnCommitCallbacks(execute=True),
    ):
        assert agent_client.get(recording_url(call)).status_code == 202
    recordings_list(real_gateway, at=call.started_at)
    assert run_queued(look_up_recording) == ["found"]


def test_a_provider_that_never_answers_does_not_hold_the_page(
    agent_client, bridge, choices_flow, silent_provider
):
    call = answered(bridge, choices_flow, minutes_ago=180, recording_url=OLD)

    for _ in range(2):
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = agent_client.get(recording_url(call))
        assert response.status_code == 202  # "looking up…": answered without the provider

    assert silent_provider.connections == 0
    assert RecordingLookup.objects.get(call=call).answered_at is None


def test_a_call_without_a_recording_has_none_to_play(agent_client, bridge, choices_flow):
    call = answered(bridge, choices_flow)
    response = agent_client.get(recording_url(call))
    assert response.status_code == 404  # not a provider failure: nothing to try again
    html = response.content.decode()
    assert "The provider sent no recording for this call." in html
    assert "Try again" not in html


def test_the_sandbox_plays_its_clip(agent_client, bridge, choices_flow):
    call = answered(bridge, choices_flow, recording_url="https://sandbox.invalid/x.wav")

    response = agent_client.get(recording_url(call), follow=True)

    assert response.redirect_chain == [(reverse("calls:sandbox-recording"), 302)]
    assert response["Content-Type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as clip:
        assert clip.getnframes() / clip.getframerate() == 1.0


def test_the_recording_needs_a_login_and_the_right(client, outsider, bridge, choices_flow):
    call = answered(bridge, choices_flow, recording_url=OLD)
    assert client.get(recording_url(call)).status_code == 302  # to the log-in page
    assert logged_in(outsider).get(recording_url(call)).status_code == 403
    assert logged_in(outsider).get(reverse("calls:sandbox-recording")).status_code == 403


# --- a campaign's results -------------------------------------------------------------------------


@pytest.fixture
def results_campaign(bridge, choices_flow):
    campaign = make_campaign(bridge, flow=choices_flow, status="finished")
    now = pinned_now()
    for keys in ("1", "1", "2", "9", ""):
        answered(bridge, choices_flow, campaign=campaign, keypresses=keys, keypresses_at=now)
    return campaign


def test_the_campaign_page_shows_counts_shares_and_a_chart(agent_client, results_campaign):
    html = agent_client.get(results_campaign.get_absolute_url()).content.decode()
    assert '<svg class="chart keypress-chart"' in html
    assert "1 (confirm): 2 calls (40.0%)" in html
    assert 'width="160"' in html  # 40 % of the 400-unit bar
    assert '9 (stop calling me)</a> <small class="muted">(put on the do-not-call list)' in html
    assert reverse("calls:campaign-keypresses", args=[results_campaign.pk]) in html


def test_an_audio_campaign_page_has_no_keypress_results(agent_client, bridge, sound):
    campaign = make_campaign(bridge, audio=sound, status="finished")
    assert "keypress-results" not in agent_client.get(campaign.get_absolute_url()).content.decode()


def test_the_results_export_neutralises_formulas(agent_client, results_campaign, choices_flow):
    choices_flow.choices["1"] = '=HYPERLINK("http://x")'
    choices_flow.save()
    url = reverse("calls:campaign-keypresses", args=[results_campaign.pk])

    response = agent_client.get(url)

    lines = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert response["Content-Disposition"] == (
        f'attachment; filename="campaign-{results_campaign.pk}-keypresses.csv"'
    )
    assert lines[0] == "key,choice,calls,share (%)"
    assert lines[1] == '1,"\'=HYPERLINK(""http://x"")",2,40.0'
    assert lines[-1] == ",No key pressed,1,20.0"


def test_the_call_log_filters_by_the_first_key(agent_client, results_campaign):
    log = reverse("calls:call-list")
    shown = agent_client.get(log, {"campaign": results_campaign.pk, "pressed": "1"})
    none = agent_client.get(log, {"campaign": results_campaign.pk, "pressed": "none"})
    junk = agent_client.get(log, {"pressed": "<script>"})
    assert len(shown.context["page"].rows) == 2
    assert len(none.context["page"].rows) == 1
    assert junk.status_code == 200
    assert "Key pressed" in shown.content.decode()


# --- the flow's keys in the admin -----------------------------------------------------------------


def test_the_admin_edits_a_flows_keys_one_a_line(admin_user, otp_flow):
    url = reverse("admin:calls_ivrflow_change", args=[otp_flow.pk])
    form = {
        "flow_id": otp_flow.flow_id,
        "name": otp_flow.name,
        "template": otp_flow.template,
        "sensitive_variables": "",
        "choices": "1 = confirm\n\n9=stop calling me",
        "stop_key": "9",
        "is_active": "on",
    }
    response = logged_in(admin_user).post(url, form)
    assert response.status_code == 302
    otp_flow.refresh_from_db()
    assert (otp_flow.choices, otp_flow.stop_key) == ({"1": "confirm", "9": "stop calling me"}, "9")


@pytest.mark.parametrize(
    ("choices", "stop_key", "error"),
    [
        ("1 confirm", "", "Line 1: write a key of the keypad"),
        ("x = confirm", "", "Line 1: write a key of the keypad"),
        ("1 = a\n1 = b", "", "Line 2: key 1 is named twice."),
        ("1 = " + "y" * 41, "", "at most 40 characters"),
        ("1 = confirm", "9", "Name key 9 among the choices first"),
    ],
)
def test_the_admin_refuses_keys_it_cannot_read(admin_user, otp_flow, choices, stop_key, error):
    url = reverse("admin:calls_ivrflow_change", args=[otp_flow.pk])
    form = {"flow_id": "24", "name": "x", "template": "", "choices": choices, "stop_key": stop_key}
    response = logged_in(admin_user).post(url, form)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert IvrFlow.objects.get(pk=otp_flow.pk).choices == {}


def test_a_flow_campaign_with_no_answered_call_says_so_instead_of_an_empty_table(
    agent_client, bridge, choices_flow
):
    campaign = make_campaign(bridge, flow=choices_flow, status="running")

    html = agent_client.get(campaign.get_absolute_url()).content.decode()

    assert "No call of this campaign has been answered yet" in html
    assert "Key pressed first" not in html
