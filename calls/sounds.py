"""Uploading a sound to the provider's Sounds. The page stores the file (SoundUpload) and
queues a worker; it then shows "Uploading…" and refreshes itself until the worker has the
provider's answer: the new audio in the catalogue, or why not. The page never waits on the
provider, so a provider that hangs holds a worker, never a web process."""

from functools import partial

from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.tasks import task
from django.utils import timezone

from calls.engine.sends import SEND_PRIORITY
from calls.forms import SoundUploadForm
from calls.http import AuthenticatedHttpRequest
from calls.models import AudioAsset, AuditEntry, SoundUpload
from calls.provider.base import GatewayError
from calls.provider.configured import get_gateway
from calls.roles import permission_required

PERMISSION = "calls.add_audioasset"


@permission_required(PERMISSION)
def sound_upload(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = SoundUploadForm(request.POST or None, request.FILES or None)
    if form.is_valid():
        upload = form.cleaned_data["audio_file"]
        stored = SoundUpload.objects.create(
            name=form.cleaned_data["name"],
            filename=(upload.name or "sound")[-255:],
            content_type=upload.content_type,  # the sniffed type (SoundUploadForm)
            content=upload.read(),
            uploaded_by=request.user,
            asked_at=timezone.now(),
        )
        transaction.on_commit(partial(upload_sound.enqueue, stored.pk), robust=True)
        return redirect("calls:sound-upload-progress", pk=stored.pk)
    return render(request, "calls/sound_upload.html", {"form": form})


@permission_required(PERMISSION)
def sound_upload_progress(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    now = timezone.now()
    SoundUpload.give_up_lost(now)
    if SoundUpload.ask_again_if_lost(pk, now):
        transaction.on_commit(partial(upload_sound.enqueue, pk), robust=True)
    upload = get_object_or_404(SoundUpload.objects.select_related("asset").defer("content"), pk=pk)
    template = "calls/sound_progress.html#progress" if request.htmx else "calls/sound_progress.html"
    return render(request, template, {"upload": upload})


@task(priority=SEND_PRIORITY)  # a person's page waits for it
def upload_sound(upload_id: int) -> str:
    """A worker sends a stored sound to the provider, once, and writes the outcome where the
    waiting page reads it; a done upload becomes an audio in the catalogue."""
    upload = SoundUpload.claim(upload_id, timezone.now())
    if upload is None:
        return "not ours to send"
    try:
        sound_id = get_gateway().upload_sound(
            upload.name, upload.filename, bytes(upload.content), upload.content_type
        )
    except GatewayError as exc:
        upload.settle(error=str(exc))
        return "failed"
    with transaction.atomic():
        asset = AudioAsset.objects.create(name=upload.name, sound_id=sound_id)
        upload.settle(asset=asset)
        AuditEntry.record(
            upload.uploaded_by, AuditEntry.Action.SOUND_UPLOADED, detail=f"{asset.name}: {sound_id}"
        )
    return "uploaded"
