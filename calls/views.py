import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import (
    HttpRequest,
    HttpResponse,
    JsonResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from calls.engine.health import check_health
from calls.engine.sends import queue_send
from calls.exports import Spreadsheet, call_log_csv
from calls.forms import (
    CallFilterForm,
    PlaceCallForm,
    RetryForm,
)
from calls.http import AuthenticatedHttpRequest, id_in
from calls.keypresses import describe
from calls.models import (
    AudioAsset,
    AuditEntry,
    Bridge,
    CallLog,
    IvrFlow,
)
from calls.models.retries import attempt_chain
from calls.paging import keyset_page
from calls.provider.sandbox import SANDBOX_EXAMPLE, SANDBOX_NUMBERS
from calls.reports import PERIODS, build_dashboard
from calls.roles import check_may_act_on, may_act_on, permission_required
from calls.schedules import cancel_scheduled
from calls.templatetags.call_rows import as_rows, name_rows
from calls.vocabulary import variable_of

logger = logging.getLogger(__name__)
# Parts of the call form redrawn as the agent types (see call_new.html).
LIVE_PARTS = ("variables", "preview", "recent")


@permission_required("calls.view_calllog")
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    period = asked if (asked := request.GET.get("period")) in PERIODS else "today"
    context = {"board": build_dashboard(period), "periods": PERIODS}
    if request.user.has_perm("calls.change_campaign"):  # supervisors see the background work
        context["health"] = check_health()
    return render(request, "calls/dashboard.html", context)


@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    """For monitors: the database answers, each kind of background process beats, no due work
    waits late (calls/engine/health.py); 503 with the problems in words when something is wrong."""
    health = check_health()
    return JsonResponse(health.as_json(), status=200 if health.ok else 503)


@permission_required("calls.view_bridge")
def catalogue(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(
        request,
        "calls/catalogue.html",
        {
            "bridges": Bridge.objects.all(),
            "flows": IvrFlow.objects.all(),
            "audio_assets": AudioAsset.objects.all(),
        },
    )


@permission_required("calls.view_calllog")
def call_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    filters = CallFilterForm(request.GET or None)
    page = keyset_page(as_rows(filters.filter(CallLog.objects.all())), request.GET)
    name_rows(page.rows)
    params = request.GET.copy()
    for key in ("before", "after"):
        params.pop(key, None)
    context = {
        "filters": filters,
        "page": page,
        "query": params.urlencode(),
        "in_flight": any(not call.is_settled for call in page.rows),
        # The newest page redraws itself, so calls placed elsewhere appear; an older one stays.
        "newest": "before" not in request.GET and "after" not in request.GET,
        "filtered": bool(params),
    }
    template = "calls/call_list.html#results" if request.htmx else "calls/call_list.html"
    return render(request, template, context)


@permission_required("calls.view_calllog")
def call_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    call = get_object_or_404(
        CallLog.objects.select_related(
            "bridge", "flow", "audio", "created_by", "api_key", "campaign"
        ),
        pk=pk,
    )
    may_act = may_act_on(request.user, call)
    context = {
        "call": call,
        "may_act": may_act,
        "attempts": attempt_chain(call),
        "events": call.events.all(),
        "audit": call.audit.select_related("actor", "api_key"),
        "retry_form": RetryForm(call) if may_act and call.status == CallLog.Status.ERROR else None,
        "keypresses": describe(call)
        if call.status == CallLog.Status.ANSWERED and call.flow
        else "",
    }
    template = "calls/call_detail.html#live" if request.htmx else "calls/call_detail.html"
    return render(request, template, context)


@permission_required("calls.add_calllog")
def call_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method == "POST" and request.htmx and request.htmx.target in LIVE_PARTS:
        # The flow's variables and the live preview, redrawn from what is typed so far. POST,
        # never GET: a sensitive value must not travel in a URL (access logs keep URLs).
        form = PlaceCallForm(initial=request.POST.dict())
        return render(request, f"calls/call_new.html#{request.htmx.target}", _form_context(form))
    if request.method == "POST":
        form = PlaceCallForm(request.POST)
        if form.is_valid():
            call, created = form.save(request.user)
            if created:
                _placed(request, call)
            if request.htmx:
                return HttpResponseClientRedirect(call.get_absolute_url())
            return redirect(call)
        template = "calls/call_new.html#form" if request.htmx else "calls/call_new.html"
        return render(request, template, _form_context(form), status=422 if request.htmx else 200)
    again = id_in(request.GET.get("again"))
    if again:
        initial = PlaceCallForm.initial_from(get_object_or_404(CallLog, pk=again))
    else:  # pre-filled from a link: never a variable's value, which would sit in the URL
        initial = {k: v for k, v in request.GET.items() if variable_of(k) is None}
    form = PlaceCallForm(initial=initial)
    return render(request, "calls/call_new.html", _form_context(form))


def _placed(request: AuthenticatedHttpRequest, call: CallLog) -> None:
    """Audit a call just stored and queue its send; its page shows "Sending…", then the outcome."""
    if call.is_scheduled:
        when = _when(call)
        AuditEntry.record(request.user, AuditEntry.Action.PLACED, call=call, detail=f"for {when}")
        messages.success(request, f"Scheduled for {when}: it is sent then.")
    else:
        AuditEntry.record(request.user, AuditEntry.Action.PLACED, call=call)
    queue_send(call)


def _form_context(form: PlaceCallForm) -> dict[str, object]:
    return {
        "form": form,
        "sandbox_numbers": [
            (SANDBOX_EXAMPLE[:-4] + ending, what) for ending, (what, _) in SANDBOX_NUMBERS.items()
        ]
        if settings.OBD_SANDBOX
        else [],
    }


@require_POST
@permission_required("calls.add_calllog")
def call_retry(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Send again a call that never left (status `error`); nothing else may be resent."""
    call = get_object_or_404(CallLog.objects.select_related("created_by", "api_key"), pk=pk)
    check_may_act_on(request.user, call, "retry")
    form = RetryForm(call, request.POST)
    if not form.is_valid():
        messages.error(request, "Type the masked values again to retry.")
    elif not call.reopen_for_retry(form.secrets()):
        messages.error(request, "Only a call that never reached the provider can be retried.")
    else:
        AuditEntry.record(request.user, AuditEntry.Action.RETRIED, call=call)
        queue_send(call)
        messages.success(request, "Retrying: sending it again.")
    return redirect(call)


@require_POST
@permission_required("calls.add_calllog")
def call_cancel(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Cancel a call placed for a later time, until its POST begins."""
    call = get_object_or_404(CallLog.objects.select_related("created_by", "api_key"), pk=pk)
    check_may_act_on(request.user, call, "cancel")
    if cancel_scheduled(call):
        AuditEntry.record(request.user, AuditEntry.Action.CANCELED_CALL, call=call)
        messages.success(request, "Canceled: this call will not be sent.")
    else:
        messages.error(request, "Only a call placed for later and not sent yet can be canceled.")
    return redirect(call)


def _when(call: CallLog) -> str:
    assert call.not_before is not None  # asked of a scheduled call
    return date_format(timezone.localtime(call.not_before), "DATETIME_FORMAT")


@permission_required("calls.view_calllog")
def call_export(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    """The filtered call log as CSV, streamed row by row; variables as stored (secrets masked)."""
    filters = CallFilterForm(request.GET or None)
    if filters.not_applied():
        # Leaving out a filter the reader believes is on would export calls they did not ask
        # for (every call, for a lone mistyped day): back to the log, which names the filter.
        messages.error(
            request, "Nothing was exported: a filter could not be read. Correct or clear it first."
        )
        return redirect(f"{reverse('calls:call-list')}?{request.GET.urlencode()}")
    calls = filters.filter(
        CallLog.objects.select_related("bridge", "flow", "audio", "created_by", "api_key")
    )
    campaign = filters.cleaned_data["campaign"] if filters.is_valid() else None
    return call_log_csv(calls, campaign, Spreadsheet.of(request.user))
