"""Playing a call's recording. The webhook's link dies two hours after the call; opening the
recording later has a worker ask the provider's recordings list for a fresh link (through the
gateway): the page stores the ask (RecordingLookup), says "looking up…" and refreshes itself
until the worker has answered, then redirects to the link or says why there is none. The page
never waits on the provider. The sandbox records nothing and serves a short clip of tones."""

from functools import partial

from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.tasks import task
from django.utils import timezone

from calls.engine.sends import SEND_PRIORITY
from calls.http import AuthenticatedHttpRequest
from calls.models import CallLog, RecordingLookup
from calls.provider.base import GatewayError
from calls.provider.configured import get_gateway
from calls.provider.sandbox import sandbox_recording
from calls.roles import permission_required

REFRESH_SECONDS = 2  # how often the "looking up…" page asks again


@permission_required("calls.view_calllog")
def call_recording(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    call = get_object_or_404(CallLog.objects.select_related("bridge"), pk=pk)
    if not call.recording_url:  # nothing to fetch: not the provider's failure, no use retrying
        return unavailable(request, call, "The provider sent no recording for this call.", 404)
    gateway = get_gateway()
    if gateway.is_sandbox:  # its links are placeholders: it serves its clip itself
        return redirect(gateway.recording_link(call.to, call.bridge.number, timezone.now()))
    if call.recording_is_valid:
        return redirect(call.recording_url)
    if call.started_at is None:
        reason = "The call's start time is unknown, so its recording cannot be found."
        return unavailable(request, call, reason, 502)
    now = timezone.now()
    lookup = RecordingLookup.objects.filter(call=call).first()
    if lookup and (link := lookup.fresh_link(now)):
        return redirect(link)
    if lookup and lookup.answered and lookup.failure:
        lookup.forget_failure()
        return unavailable(request, call, lookup.failure, 502)
    if RecordingLookup.ask(call.pk, now):
        transaction.on_commit(partial(look_up_recording.enqueue, call.pk), robust=True)
    response = render(request, "calls/recording_lookup.html", {"call": call}, status=202)
    response["Refresh"] = str(REFRESH_SECONDS)
    return response


def unavailable(
    request: AuthenticatedHttpRequest, call: CallLog, reason: str, status: int
) -> HttpResponse:
    context = {"call": call, "reason": reason}
    return render(request, "calls/recording_unavailable.html", context, status=status)


@task(priority=SEND_PRIORITY)  # a person's page waits for it
def look_up_recording(call_id: int) -> str:
    """A worker asks the provider for a fresh link to the call's recording and writes the
    answer where the waiting page reads it."""
    call = CallLog.objects.select_related("bridge").filter(pk=call_id).first()
    if call is None or call.started_at is None:
        return "nothing to look up"
    try:
        link = get_gateway().recording_link(call.to, call.bridge.number, call.started_at)
    except GatewayError as exc:
        RecordingLookup.answer(call_id, timezone.now(), failure=str(exc))
        return "none found"
    RecordingLookup.answer(call_id, timezone.now(), link=link)
    return "found"


@permission_required("calls.view_calllog")
def sandbox_clip(request: AuthenticatedHttpRequest) -> HttpResponse:
    response = HttpResponse(sandbox_recording(), content_type="audio/wav")
    response["Cache-Control"] = "private, max-age=3600"
    return response
