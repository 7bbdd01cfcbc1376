"""Playing a call's recording. The webhook's link dies two hours after the call; opening the
recording later asks the provider's recordings list for a fresh link (through the gateway) and
redirects to it. The sandbox records nothing and serves a short clip of tones instead."""

from django.core.cache import cache
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from calls.http import AuthenticatedHttpRequest
from calls.models import CallLog
from calls.provider.base import Gateway, GatewayError
from calls.provider.configured import get_gateway
from calls.provider.sandbox import sandbox_recording
from calls.roles import permission_required

# The list's links last an hour: one fetched is reused for half of that.
FRESH_LINK_SECONDS = 30 * 60


def playable_link(call: CallLog, gateway: Gateway) -> str:
    """A link that plays the call's recording now; GatewayError (safe to show) when there is
    none to be had."""
    if not call.recording_url:
        raise GatewayError("The provider sent no recording for this call.")
    if gateway.is_sandbox:  # its links are placeholders: it serves its clip itself
        return gateway.recording_link(call.to, call.bridge.number, timezone.now())
    if call.recording_is_valid:
        return call.recording_url
    if call.started_at is None:
        raise GatewayError("The call's start time is unknown, so its recording cannot be found.")
    key = f"recording-link:{call.pk}"
    link = cache.get(key)
    if not isinstance(link, str):
        link = gateway.recording_link(call.to, call.bridge.number, call.started_at)
        cache.set(key, link, FRESH_LINK_SECONDS)
    return link


@permission_required("calls.view_calllog")
def call_recording(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    call = get_object_or_404(CallLog.objects.select_related("bridge"), pk=pk)
    if not call.recording_url:  # nothing to fetch: not the provider's failure, no use retrying
        context = {"call": call, "reason": "The provider sent no recording for this call."}
        return render(request, "calls/recording_unavailable.html", context, status=404)
    try:
        return redirect(playable_link(call, get_gateway()))
    except GatewayError as exc:
        context = {"call": call, "reason": str(exc)}
        return render(request, "calls/recording_unavailable.html", context, status=502)


@permission_required("calls.view_calllog")
def sandbox_clip(request: AuthenticatedHttpRequest) -> HttpResponse:
    response = HttpResponse(sandbox_recording(), content_type="audio/wav")
    response["Cache-Control"] = "private, max-age=3600"
    return response
