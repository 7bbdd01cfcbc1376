"""Uploading a sound (calls/views.py sound_upload): sent to the provider as multipart, its
refusal shown, a file that is not audio refused, a made-up id in the sandbox."""

from email import policy
from email.parser import BytesParser

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from calls.models import AudioAsset, AuditEntry
from tests.helpers.portal import API_TOKEN, logged_in, text_of

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
    return client.post(
        "/catalogue/sounds/upload/",
        {"name": "Diwali greeting", "audio_file": SimpleUploadedFile(filename, content, kind)},
    )


def test_a_supervisor_uploads_a_sound_to_the_provider_as_multipart(real_gateway, supervisor):
    real_gateway.answer(200, UPLOADED)
    response = upload_sound(logged_in(supervisor))
    assert response.status_code == 302 and response["Location"] == "/catalogue/"

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


def test_a_provider_refusal_shows_its_message_and_creates_nothing(real_gateway, supervisor):
    real_gateway.answer(
        422,
        {
            "message": "The given data was invalid.",
            "errors": {"audio": ["The audio must be a file of type mp3 or wav."]},
        },
    )
    response = upload_sound(logged_in(supervisor))
    assert response.status_code == 200
    shown = text_of(response.content.decode())
    assert "The given data was invalid." in shown
    assert "The audio must be a file of type mp3 or wav." in shown
    assert not AudioAsset.objects.exists() and not AuditEntry.objects.exists()


def test_the_form_refuses_a_file_that_is_not_audio(real_gateway, supervisor):
    response = upload_sound(logged_in(supervisor), "notes.txt", b"just text", "text/plain")
    assert response.status_code == 200
    assert "Upload an audio file (MP3 or WAV)." in response.content.decode()
    assert real_gateway.requests == []
    assert not AudioAsset.objects.exists()


def test_in_the_sandbox_an_upload_stores_a_made_up_sound_id(fake_provider, supervisor):
    response = upload_sound(logged_in(supervisor))
    assert response.status_code == 302
    asset = AudioAsset.objects.get()
    assert asset.sound_id.startswith("sandbox-") and len(asset.sound_id) > len("sandbox-")
    assert fake_provider.requests == []
    assert AuditEntry.objects.filter(action=AuditEntry.Action.SOUND_UPLOADED).count() == 1


def test_the_catalogue_writes_bridge_numbers_as_people_read_them(agent_client, bridge):
    html = agent_client.get("/catalogue/").text

    assert "+91 80 6828 7602" in html
    assert ">918068287602<" not in html
