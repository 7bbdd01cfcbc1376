import hmac
import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.decorators import login_not_required, permission_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from calls.forms import CallFilterForm, PlaceCallForm, RetryForm
from calls.models import AudioAsset, Bridge, CallEvent, CallLog, IvrFlow
from calls.provider import SANDBOX_EXAMPLE, SANDBOX_NUMBERS, get_gateway

logger = logging.getLogger(__name__)
PAGE_SIZE = 50


def home(request: HttpRequest) -> HttpResponse:
    return redirect("calls:call-list")


@permission_required("calls.view_bridge", raise_exception=True)
def catalogue(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "calls/catalogue.html",
        {
            "bridges": Bridge.objects.all(),
            "flows": IvrFlow.objects.all(),
            "audio_assets": AudioAsset.objects.all(),
        },
    )


@dataclass
class KeysetPage:
    """A page of newest-first rows found by id, never by OFFSET or COUNT(*)."""

    rows: list
    newer: int | None
    older: int | None


def keyset_page(rows, params) -> KeysetPage:
    before, after = _int(params.get("before")), _int(params.get("after"))
    if after:
        found = list(rows.filter(id__gt=after).order_by("id")[: PAGE_SIZE + 1])
        more_newer = len(found) > PAGE_SIZE
        found = found[:PAGE_SIZE][::-1]
        return KeysetPage(
            found, found[0].id if found and more_newer else None, found[-1].id if found else None
        )
    if before:
        rows = rows.filter(id__lt=before)
    found = list(rows.order_by("-id")[: PAGE_SIZE + 1])
    more_older = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    return KeysetPage(
        found,
        found[0].id if found and before else None,
        found[-1].id if found and more_older else None,
    )


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@permission_required("calls.view_calllog", raise_exception=True)
def call_list(request: HttpRequest) -> HttpResponse:
    filters = CallFilterForm(request.GET or None)
    calls = filters.filter(CallLog.objects.select_related("bridge", "flow", "audio", "created_by"))
    page = keyset_page(calls, request.GET)
    params = request.GET.copy()
    for key in ("before", "after"):
        params.pop(key, None)
    context = {
        "filters": filters,
        "page": page,
        "query": params.urlencode(),
        "in_flight": any(not call.is_final for call in page.rows),
    }
    template = "calls/call_list.html#results" if request.htmx else "calls/call_list.html"
    return render(request, template, context)


@permission_required("calls.view_calllog", raise_exception=True)
def call_detail(request: HttpRequest, pk: int) -> HttpResponse:
    call = get_object_or_404(
        CallLog.objects.select_related("bridge", "flow", "audio", "created_by"), pk=pk
    )
    context = {
        "call": call,
        "events": call.events.all(),
        "retry_form": RetryForm(call) if call.status == CallLog.Status.ERROR else None,
    }
    template = "calls/call_detail.html#live" if request.htmx else "calls/call_detail.html"
    return render(request, template, context)


@permission_required("calls.add_calllog", raise_exception=True)
def call_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = PlaceCallForm(request.POST)
        if form.is_valid():
            call, created = form.save(request.user)
            if created:
                call.submit(get_gateway(), form.variable_values())
            if request.htmx:
                return HttpResponseClientRedirect(call.get_absolute_url())
            return redirect(call)
        template = "calls/call_new.html#form" if request.htmx else "calls/call_new.html"
        return render(request, template, _form_context(form), status=422 if request.htmx else 200)
    again = _int(request.GET.get("again"))
    if again:
        initial = PlaceCallForm.initial_from(get_object_or_404(CallLog, pk=again))
    else:
        initial = request.GET.dict()
    form = PlaceCallForm(initial=initial)
    if request.htmx and request.htmx.target in ("variables", "preview"):
        return render(request, f"calls/call_new.html#{request.htmx.target}", _form_context(form))
    return render(request, "calls/call_new.html", _form_context(form))


def _form_context(form: PlaceCallForm) -> dict:
    return {
        "form": form,
        "sandbox_numbers": [
            (SANDBOX_EXAMPLE[:-4] + ending, what) for ending, (what, _) in SANDBOX_NUMBERS.items()
        ]
        if settings.OBD_SANDBOX
        else [],
    }


@require_POST
@permission_required("calls.add_calllog", raise_exception=True)
def call_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Send again a call that never left (status `error`); nothing else may be resent."""
    call = get_object_or_404(CallLog, pk=pk)
    form = RetryForm(call, request.POST)
    if form.is_valid() and call.reopen_for_retry():
        call.submit(get_gateway(), form.variables())
    return redirect(call)


@csrf_exempt
@login_not_required
@require_http_methods(["GET", "POST", "PUT"])
def mobtexting_webhook(request: HttpRequest) -> HttpResponse:
    """The provider's door: verify, store first, then match. Answers in milliseconds."""
    token = request.GET.get("token", "")
    expected_token = settings.OBD_WEBHOOK_VERIFICATION_TOKEN
    if token and expected_token and hmac.compare_digest(token.encode(), expected_token.encode()):
        return _challenge(request)
    if not _authorized(request):
        logger.warning(
            "webhook refused: missing or wrong secret from %s", request.META.get("REMOTE_ADDR")
        )
        return JsonResponse({"error": "unauthorized"}, status=401)
    declared = _int(request.META.get("CONTENT_LENGTH"))
    if (declared or 0) > settings.OBD_WEBHOOK_MAX_BODY or len(
        request.body
    ) > settings.OBD_WEBHOOK_MAX_BODY:
        logger.warning("webhook refused: body over %s bytes", settings.OBD_WEBHOOK_MAX_BODY)
        return JsonResponse({"error": "body too large"}, status=413)
    event = CallEvent.objects.ingest(
        source=CallEvent.Source.WEBHOOK,
        method=request.method,
        body=request.body,
        content_type=request.META.get("CONTENT_TYPE", ""),
        query=request.META.get("QUERY_STRING", ""),
    )
    logger.info(
        "webhook event=%s call=%s status=%s", event.pk, event.call_id, event.raw_status or "-"
    )
    if event.parse_error:
        return JsonResponse({"error": event.parse_error, "event": event.pk}, status=400)
    return JsonResponse(
        {"event": event.pk, "matched": event.is_matched}, status=200 if event.is_matched else 202
    )


def _authorized(request: HttpRequest) -> bool:
    secret = settings.OBD_WEBHOOK_SECRET
    if not secret:
        return settings.OBD_SANDBOX  # an unprotected door is only acceptable offline
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), secret.encode())


def _challenge(request: HttpRequest) -> HttpResponse:
    event = CallEvent.objects.ingest(
        source=CallEvent.Source.WEBHOOK,
        method=request.method,
        body=request.body,
        content_type=request.META.get("CONTENT_TYPE", ""),
        query=request.META.get("QUERY_STRING", ""),
    )
    challenge = event.parsed.get("challenge", "")
    if not challenge:
        return JsonResponse({"error": "no challenge in the verification request"}, status=400)
    return JsonResponse({"challenge": challenge})
