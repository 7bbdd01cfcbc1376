"""The campaign pages: a draft from a CSV (with a sample file for the chosen flow; a worker reads
it while the page shows how far), its report and first rows, the questions asked before starting
or stopping, the actions, the rows set aside."""

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh

from calls.campaign_actions import act, refused_words
from calls.campaign_reach import reach_of
from calls.engine.imports import queue_import
from calls.exports import Spreadsheet, csv_download
from calls.forms import CallAgainForm, CampaignForm, CsvUploadForm
from calls.http import AuthenticatedHttpRequest, id_in
from calls.imports import sample
from calls.keypresses import campaign_results
from calls.models import AuditEntry, Campaign, CampaignImport, IvrFlow
from calls.models.retries import CannotCallAgain, eta, held_for_hours, why_not_again
from calls.roles import permission_required
from calls.unsent import closed_now, never_callable, withdrawn_by_reason
from calls.vocabulary import CallStatus

SET_ASIDE_SHOWN = 20  # rows set aside listed on the page; the download has them all


@permission_required("calls.view_campaign")
def campaign_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    campaigns = list(
        Campaign.objects.select_related("bridge", "flow", "audio", "created_by", "api_key")[:100]
    )
    progress, reach = Campaign.progress_of(campaigns), reach_of(campaigns)
    # A running campaign whose every number waits for its calling hours says until when.
    held = held_for_hours(campaigns, timezone.now())
    rows = [
        (campaign, progress[campaign.pk], reach[campaign.pk], held[campaign.pk])
        for campaign in campaigns
    ]
    # Refresh while anything moves: a running or importing campaign, calls awaiting outcomes.
    live = any(c.is_moving or p["in_flight"] for c, p, _, _ in rows)
    template = "calls/campaign_list.html#campaigns" if request.htmx else "calls/campaign_list.html"
    return render(request, template, {"rows": rows, "live": live})


@permission_required("calls.add_campaign")
def campaign_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.htmx and request.htmx.target == "csv-sample":  # a flow was chosen: its columns
        flow = _active_flow(request.GET.get("flow"))
        return render(request, "calls/campaign_new.html#csv-sample", _sample_context(flow))
    form = CampaignForm(request.POST or None, request.FILES or None)
    if form.is_valid():
        return redirect(form.create(request.user))
    form.ask_for_the_file_again()
    flow = _active_flow(form["flow"].value())
    return render(request, "calls/campaign_new.html", {"form": form, **_sample_context(flow)})


def _active_flow(pk: object) -> IvrFlow | None:
    """The flow a form or a link names, if it is one that may be played."""
    flow_id = id_in(pk)
    return IvrFlow.objects.filter(pk=flow_id, is_active=True).first() if flow_id else None


def _sample_context(flow: IvrFlow | None) -> dict[str, object]:
    header, example = sample(flow)
    return {"sample_flow": flow, "sample_header": header, "sample_row": example}


@permission_required("calls.add_campaign")
def campaign_sample_csv(request: AuthenticatedHttpRequest) -> StreamingHttpResponse:
    """A CSV to fill in for the chosen flow: its columns and one example row."""
    flow = _active_flow(request.GET.get("flow"))
    header, example = sample(flow)
    name = slugify(flow.name) if flow else "audio"
    return csv_download(
        f"campaign-{name}-sample.csv",
        header,
        [example],
        spreadsheet=Spreadsheet.of(request.user),
        phone_columns=["number"],
    )


@permission_required("calls.view_campaign")
def campaign_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    campaign = Campaign.objects.select_related("bridge", "flow", "audio").filter(pk=pk).first()
    if campaign is None:
        return _gone(request, pk)
    upload = campaign.imports.defer("content").first()  # the latest
    polled = request.htmx and request.htmx.target == "import-progress"
    if campaign.status == Campaign.Status.IMPORTING:  # how far the worker has read
        template = "calls/campaign_detail.html" + ("#import-progress" if polled else "")
        audit = campaign.audit.select_related("actor", "api_key")
        return render(request, template, {"campaign": campaign, "upload": upload, "audit": audit})
    if polled:  # read (or undone) since: the whole page changed
        return HttpResponseClientRefresh()
    draft = campaign.status == Campaign.Status.DRAFT
    context = {
        "campaign": campaign,
        "upload": upload,
        "progress": campaign.progress(),
        "reach": reach_of([campaign])[campaign.pk],
        "now": timezone.now(),
        "eta": eta(campaign, timezone.now()),
        "held": held_for_hours([campaign], timezone.now())[campaign.pk],
        "set_aside": list(campaign.set_aside_rows.select_related("campaign")[:SET_ASIDE_SHOWN]),
        "first_rows": campaign.first_rows() if draft else [],
        "never_callable": never_callable(campaign, timezone.now()) if draft else [],
        "withdrawn": [] if draft else withdrawn_by_reason(campaign),
        "audit": campaign.audit.select_related("actor", "api_key"),
        "upload_form": CsvUploadForm(),
        # Redrawn with the progress it is polled with (out of band), so the keys never
        # contradict the counts beside them.
        "keypress_results": None if draft else campaign_results(campaign),
        "may_call_again": not why_not_again(campaign),
        "polled": bool(request.htmx),
    }
    template = (
        "calls/campaign_detail.html#progress" if request.htmx else "calls/campaign_detail.html"
    )
    return render(request, template, context)


@require_POST
@permission_required("calls.change_campaign")
def campaign_upload(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk, status=Campaign.Status.DRAFT)
    form = CsvUploadForm(request.POST, request.FILES)
    if not form.is_valid():  # no file, or one over the size limit: the form says which
        messages.error(request, " ".join(map(str, form.errors["csv_file"])))
    else:
        with transaction.atomic():
            if queue_import(campaign, form.cleaned_data["csv_file"], request.user) is None:
                messages.error(request, "The campaign is no longer a draft: rows cannot be added.")
    return redirect(campaign)


@require_POST
@permission_required("calls.change_campaign")
def campaign_import_cancel(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Stop reading the upload; a worker removes what it stored (a new campaign with it)."""
    # campaign__pk, not campaign_id: an id past the column's integers finds nothing (not a 500).
    upload = CampaignImport.objects.defer("content").filter(campaign__pk=pk).first()  # the latest
    if upload is None:
        raise Http404("This campaign has no upload.")
    if not upload.cancel(request.user):
        messages.error(request, "The import had already ended: nothing to cancel.")
    return redirect("calls:campaign-detail", pk)


def _gone(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """A campaign removed with the upload it was made for says why, to whoever waited on it."""
    if request.htmx:
        return HttpResponseClientRefresh()
    upload = CampaignImport.that_removed(pk)
    if upload is None:
        raise Http404("No such campaign.")
    return render(request, "calls/campaign_gone.html", {"upload": upload}, status=410)


@permission_required("calls.change_campaign")
def campaign_confirm(request: AuthenticatedHttpRequest, pk: int, action: str) -> HttpResponse:
    """Asked before starting or stopping, saying what will happen: a page, so it works without
    JavaScript and needs no inline script. Its button posts to `campaign_action`."""
    campaign = get_object_or_404(Campaign.objects.select_related("bridge", "flow", "audio"), pk=pk)
    if campaign.status not in Campaign.ACTIONS_FROM[action]:
        return _refused(request, campaign, action)
    progress = campaign.progress()
    context = {
        "campaign": campaign,
        "action": action,
        "progress": progress,
        "sending_time": campaign.sending_time(progress["waiting"]),
        "window_closed_until": campaign.window_closed_until(),
        "starts_later": campaign.start_at and campaign.start_at > timezone.now(),
        "never_callable": never_callable(campaign, timezone.now()) if action == "start" else [],
        "closed_now": closed_now(campaign, timezone.now()) if action == "start" else [],
    }
    return render(request, "calls/campaign_confirm.html", context)


@require_POST
@permission_required("calls.change_campaign")
def campaign_action(request: AuthenticatedHttpRequest, pk: int, action: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    if not act(campaign, action, request.user):
        return _refused(request, campaign, action)
    return redirect(campaign)


def _refused(request: AuthenticatedHttpRequest, campaign: Campaign, action: str) -> HttpResponse:
    messages.error(request, refused_words(campaign, action))
    return redirect(campaign)


@permission_required("calls.add_campaign")
def campaign_again(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Call the unanswered again: pick the outcomes (the count follows each tick), confirm,
    and a linked draft campaign of those numbers is made, to check and start like any other."""
    campaign = get_object_or_404(Campaign.objects.select_related("flow"), pk=pk)
    # Ticking redraws the count from the boxes ticked (none ticked: an empty query).
    data = request.POST if request.method == "POST" else (request.GET if request.htmx else None)
    form = CallAgainForm(campaign, data)
    refused = why_not_again(campaign)
    if request.htmx and request.htmx.target == "again-count":
        return render(request, "calls/campaign_again.html#count", {"form": form})
    if request.method == "POST" and not refused and form.is_valid():
        try:
            again, made = form.save(request.user)
        except CannotCallAgain as exc:  # no number ended on those outcomes (any more)
            messages.error(request, str(exc))
        else:
            if not made:
                messages.info(request, "This draft already calls those numbers again.")
                return redirect(again)
            picked = ", ".join(str(CallStatus(s).label).lower() for s in form.picked())
            AuditEntry.record(
                request.user,
                AuditEntry.Action.CREATED,
                campaign=again,
                detail=f"Calling again the numbers of “{campaign.name}” that ended {picked}.",
            )
            messages.success(request, "A draft to call them again: check it and start it.")
            return redirect(again)
    context = {"campaign": campaign, "form": form, "refused": refused}
    return render(request, "calls/campaign_again.html", context)


@permission_required("calls.view_campaign")
def campaign_set_aside_csv(request: AuthenticatedHttpRequest, pk: int) -> StreamingHttpResponse:
    """The rows set aside as they came, plus why, to fix and upload again."""
    campaign = get_object_or_404(Campaign, pk=pk)
    header = [column for column, _ in campaign.columns]
    rows = (
        [row.values.get(name, "") for name in header] + [row.reason]
        for row in campaign.set_aside_rows.iterator(chunk_size=2000)
    )
    # Values go back as typed (formulas neutralised, the number kept as text so a spreadsheet
    # does not turn it into 9.18867E+11), to be fixed and uploaded again.
    numbers = [column for column, target in campaign.columns if target == "number"]
    return csv_download(
        f"campaign-{campaign.pk}-set-aside.csv",
        [*header, "reason"],
        rows,
        spreadsheet=Spreadsheet.of(request.user),
        phone_columns=numbers,
    )


@permission_required("calls.view_campaign")
def campaign_keypresses_csv(request: AuthenticatedHttpRequest, pk: int) -> StreamingHttpResponse:
    """The keypress results as on the page: calls and share per key pressed first."""
    campaign = get_object_or_404(Campaign.objects.select_related("flow"), pk=pk)
    results = campaign_results(campaign)
    if results is None:
        raise Http404("An audio campaign takes no keypresses.")
    rows = ([c.key, c.name, c.calls, c.share] for c in results.choices)
    return csv_download(
        f"campaign-{campaign.pk}-keypresses.csv",
        ["key", "choice", "calls", "share (%)"],
        rows,
        spreadsheet=Spreadsheet.of(request.user),
    )
