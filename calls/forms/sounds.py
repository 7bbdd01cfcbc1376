"""An audio file uploaded to the provider's Sounds, checked by its content."""

from django import forms
from django.core.files.uploadedfile import UploadedFile


class SoundUploadForm(forms.Form):
    """An audio file sent to the provider's Sounds; its id becomes a new audio asset."""

    MAX_BYTES = 10 * 1024 * 1024

    name = forms.CharField(max_length=100, help_text="e.g. Diwali greeting (Hindi)")
    audio_file = forms.FileField(label="Audio file", help_text="MP3 or WAV, up to 10 MB")

    def clean_audio_file(self) -> UploadedFile[bytes]:
        upload: UploadedFile[bytes] = self.cleaned_data["audio_file"]
        if upload.size is None or upload.size > self.MAX_BYTES:
            raise forms.ValidationError("The file is larger than 10 MB.")
        kind = (upload.content_type or "").split(";")[0]
        name = (upload.name or "").lower()
        if not (kind.startswith("audio/") or name.endswith((".mp3", ".wav"))):
            raise forms.ValidationError("Upload an audio file (MP3 or WAV).")
        upload.seek(0)
        sniffed = audio_type(upload.read(12))
        upload.seek(0)
        if sniffed is None:
            raise forms.ValidationError(
                "The file's content is not MP3 or WAV audio, whatever its name says: "
                "export the recording as MP3 or WAV and upload that."
            )
        upload.content_type = sniffed  # the provider is told what the bytes are
        return upload


def audio_type(head: bytes) -> str | None:
    """The audio format a file's first bytes announce, as a MIME type; None when not MP3 or WAV
    (the formats the provider's Sounds accept, so an OGG is refused here rather than there)."""
    if head.startswith(b"ID3"):  # an MP3 with an ID3v2 tag in front
        return "audio/mpeg"
    # An MP3 starting on a frame: 11 sync bits set, and a layer (bits 2-1) that is not reserved.
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
        return "audio/mpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    return None
