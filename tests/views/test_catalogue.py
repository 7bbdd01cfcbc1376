"""Uploading a sound (calls/sounds.py): stored by the page, sent by a worker to the provider
as multipart while the page says "Uploading…", its refusal or failure shown in words, a hung
provider never holding the page, a POST never sent twice, a file that is not audio refused, a
made-up id in the sandbox."""

from datetime import timedelta
from email import policy
from email.parser import BytesParser

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, TestCase
from django_tasks_db.models import DBTaskResult

from calls.models import AudioAsset, AuditEntry, SoundUpload
from calls.sounds import upload_sound as upload_sound_task
from tests.clock import pinned, pinned_now
from tests.helpers.portal import API_TOKEN, logged_in, text_of
from tests.helpers.tasks import run_queued

SOUND_UPLOAD = "/catalogue/sounds/upload/"

SOUND_ID = "29ab2b24-3f93-441c-ae9c-6404361e5d14"


UPLOADED = {
    "status": "OK",
    "code": 200,
    "message": "Sound uploaded successfully",
    "data": {"id": SOUND_ID},
}


MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00fake-mp3-frames"


def header(recorded, name: str) -> str:
    return next((v for k, v in recorded.headers.items() if k.lower() == name.lower()), "")


def multipart_fields(recorded) -> dict[str, tuple[str | None, str, bytes]]:
    """A recorded multipart body as {field: (filename, content type, bytes)}."""
    head = f"Content-Type: {header(recorded, 'Content-Type')}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + recorded.body)
    assert message.is_multipart(), header(recorded, "Content-Type")
    return {
        part.get_param("name", header="content-disposition"): (
            part.get_filename(),
            part.get_content_type(),
            part.get_payload(decode=True),
        )
        for part in message.iter_parts()
    }


def upload_sound(client: Client, filename="greeting.mp3", content=MP3, kind="audio/mpeg"):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            SOUND_UPLOAD,
            {"name": "Diwali greeting", "audio_file": SimpleUploadedFile(filename, content, kind)},
        )


def upload_and_wait(client: Client, **kwargs) -> str:
    """Upload as a person does: the page stores the file and says "Uploading…" (refreshing
    itself); a worker sends it; the page's next refresh shows the outcome, as read."""
    response = upload_sound(client, **kwargs)
    assert response.status_code == 302
    waiting = client.get(response["Location"])
    assert "Uploading…" in waiting.text and 'hx-trigger="every 1s"' in waiting.text
    run_queued(upload_sound_task)
    done = client.get(response["Location"], headers={"HX-Request": "true"})
    assert "hx-trigger" not in done.text  # settled: the page stops asking
    return text_of(done.text)


def test_a_supervisor_uploads_a_sound_to_the_provider_as_multipart(real_gateway, supervisor):
    real_gateway.answer(200, UPLOADED)
    shown = upload_and_wait(logged_in(supervisor))
    assert f"Uploaded “Diwali greeting”: sound id {SOUND_ID}" in shown

    (sent,) = real_gateway.requests
    assert (sent.method, sent.path) == ("POST", "/api/v2/voice/sounds")
    assert header(sent, "Authorization") == f"Bearer {API_TOKEN}"
    fields = multipart_fields(sent)
    assert fields["audio"] == ("greeting.mp3", "audio/mpeg", MP3)
    assert fields["name"][2] == b"Diwali greeting"

    asset = AudioAsset.objects.get()
    assert (asset.name, asset.sound_id, asset.url) == ("Diwali greeting", SOUND_ID, "")
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action) == (supervisor, AuditEntry.Action.SOUND_UPLOADED)
    assert SOUND_ID in entry.detail
    assert bytes(SoundUpload.objects.get().content) == b""  # the bytes are not kept once sent


def test_a_provider_refusal_shows_its_message_and_creates_nothing(real_gateway, supervisor):
    real_gateway.answer(
        422,
        {
            "message": "The given data was invalid.",
            "errors": {"audio": ["The audio must be a file of type mp3 or wav."]},
        },
    )
    shown = upload_and_wait(logged_in(supervisor))
    assert "The upload failed" in shown
    assert "The given data was invalid." in shown
    assert "The audio must be a file of type mp3 or wav." in shown
    assert not AudioAsset.objects.exists() and not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    ("status", "body"),
    [(503, b"<html>down</html>"), (200, b"garbage"), (200, rb'{"data": "\u0000"}')],
    ids=["5xx", "garbage", "no id"],
)
def test_a_failing_provider_is_said_in_words_on_the_page(real_gateway, supervisor, status, body):
    real_gateway.answer(status, body)
    shown = upload_and_wait(logged_in(supervisor))
    assert "The upload failed:" in shown and len(shown) < 2000
    assert API_TOKEN not in shown
    assert SoundUpload.objects.get().state == SoundUpload.State.FAILED
    assert not AudioAsset.objects.exists()


def test_a_provider_that_never_answers_does_not_hold_the_upload_page(silent_provider, supervisor):
    client = logged_in(supervisor)
    response = upload_sound(client)  # returned: the request did not wait on the provider
    assert response.status_code == 302
    waiting = client.get(response["Location"])

    assert "Uploading…" in waiting.text and 'hx-trigger="every 1s"' in waiting.text
    assert silent_provider.connections == 0
    assert SoundUpload.objects.get().state == SoundUpload.State.PENDING
    assert DBTaskResult.objects.filter(task_path=upload_sound_task.module_path).count() == 1


def test_an_upload_whose_worker_died_mid_post_is_unknown_and_never_sent_again(
    real_gateway, supervisor
):
    client = logged_in(supervisor)
    response = upload_sound(client)
    upload = SoundUpload.claim(SoundUpload.objects.get().pk, pinned_now())  # then the worker died
    assert upload is not None

    assert "Uploading…" in client.get(response["Location"]).text  # it may still be at it
    with pinned(pinned_now() + timedelta(minutes=11)):
        run_queued(upload_sound_task)  # the task, run again, does not send
        shown = text_of(client.get(response["Location"]).text)

    assert "Outcome unknown: check the provider's sound list." in shown
    assert real_gateway.requests == []
    assert SoundUpload.objects.get().state == SoundUpload.State.UNKNOWN
    assert not AudioAsset.objects.exists()


def test_a_task_run_twice_uploads_once(real_gateway, supervisor):
    real_gateway.answer(200, UPLOADED)
    upload_sound(logged_in(supervisor))
    pk = SoundUpload.objects.get().pk
    assert [upload_sound_task.call(pk), upload_sound_task.call(pk)] == [
        "uploaded",
        "not ours to send",
    ]
    assert len(real_gateway.requests) == 1 and AudioAsset.objects.count() == 1


def test_the_form_refuses_a_file_that_is_not_audio(real_gateway, supervisor):
    response = upload_sound(logged_in(supervisor), "notes.txt", b"just text", "text/plain")
    assert response.status_code == 200
    assert "Upload an audio file (MP3 or WAV)." in response.content.decode()
    assert real_gateway.requests == []
    assert not SoundUpload.objects.exists() and not AudioAsset.objects.exists()


def test_in_the_sandbox_an_upload_stores_a_made_up_sound_id(fake_provider, supervisor):
    assert "sound id sandbox-" in upload_and_wait(logged_in(supervisor))
    asset = AudioAsset.objects.get()
    assert asset.sound_id.startswith("sandbox-") and len(asset.sound_id) > len("sandbox-")
    assert fake_provider.requests == []
    assert AuditEntry.objects.filter(action=AuditEntry.Action.SOUND_UPLOADED).count() == 1


def test_only_those_who_may_add_audio_see_an_upload(real_gateway, supervisor, agent_client):
    response = upload_sound(logged_in(supervisor))
    assert agent_client.get(response["Location"]).status_code == 403


def test_the_catalogue_writes_bridge_numbers_as_people_read_them(agent_client, bridge):
    html = agent_client.get("/catalogue/").text

    assert "+91 80 6828 7602" in html
    assert ">918068287602<" not in html


@pytest.mark.parametrize(
    "filename", ["greet\x00ing.mp3", "x" * 300 + ".mp3", "../../etc/greeting.mp3", "é\u202e3pm.wav"]
)
def test_a_hostile_file_name_is_stored_and_sent_without_a_500(real_gateway, supervisor, filename):
    real_gateway.answer(200, UPLOADED)
    assert "Uploaded “Diwali greeting”" in upload_and_wait(logged_in(supervisor), filename=filename)
    (sent,) = real_gateway.requests
    sent_name = multipart_fields(sent)["audio"][0] or ""
    assert "\x00" not in sent_name and "/" not in sent_name and len(sent_name) <= 255


def test_an_upload_whose_task_was_lost_is_queued_again_and_sent_once(real_gateway, supervisor):
    real_gateway.answer(200, UPLOADED)
    client = logged_in(supervisor)
    response = upload_sound(client)
    DBTaskResult.objects.all().delete()  # the task lost before any worker took it
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.get(response["Location"])  # too soon to tell: nothing queued
    assert not DBTaskResult.objects.exists()

    with pinned(pinned_now() + timedelta(minutes=2)):
        for _ in range(2):  # a page refreshing: one new task
            with TestCase.captureOnCommitCallbacks(execute=True):
                assert "Uploading…" in client.get(response["Location"]).text
        assert run_queued(upload_sound_task) == ["uploaded"]
    assert len(real_gateway.requests) == 1 and AudioAsset.objects.count() == 1
