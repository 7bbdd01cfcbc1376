"""Campaigns over the API: made from JSON rows or a CSV's text through the campaign form (the
same checks and words as the page; a worker reads the rows), started, paused, resumed and
stopped through the page's own actions, and read with their progress and keypress results."""

import csv
import io
from datetime import datetime
from typing import Annotated, Literal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest
from ninja import Field, Path, Router, Schema, Status

from calls.api.keys import Scope, key_of
from calls.api.problems import READ_REFUSED, WRITE_REFUSED, Problem, ProblemOut, form_problem
from calls.campaign_actions import act, refused_words
from calls.forms import CampaignForm
from calls.keypresses import campaign_results
from calls.models import Campaign, CampaignImport

router = Router(tags=["campaigns"])
CampaignId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Action = Literal["start", "pause", "resume", "stop"]
LISTED = 100


class CampaignIn(Schema):
    name: str = Field(description="e.g. November payment reminders")
    bridge: int = Field(ge=1, le=2**31 - 1)
    flow: int | None = Field(None, ge=1, le=2**31 - 1)
    audio: int | None = Field(None, ge=1, le=2**31 - 1)
    rows: list[dict[str, str]] | None = Field(
        None,
        max_length=100_000,
        description="One object a call: `number` and the flow's variables, e.g. "
        '[{"number": "+91 88671 35123", "Name": "Asha"}]',
    )
    csv: str | None = Field(None, description="Or the text of a CSV, as the page takes it")
    interval: int = 0
    webhook_id: str = ""
    pace: str | None = Field(None, description="Calls per second, e.g. 2")
    window_start: str | None = Field(None, description="e.g. 09:00")
    window_end: str | None = Field(None, description="e.g. 20:00")
    window_timezone: str | None = Field(None, description="Empty: each recipient's own")
    calling_days: list[int] = Field(default_factory=list, description="0 Monday … 6 Sunday")
    holidays: str = Field("", description="e.g. 2026-12-25, 2027-01-26")
    transactional: bool = False
    max_attempts: int | None = None
    retry_on: list[str] = Field(default_factory=list, description="no_answer, busy, failed")
    retry_minutes: int | None = None
    start_at: str | None = Field(None, description="ISO 8601 with offset; empty: on start")
    end_at: str | None = None


class KeyCount(Schema):
    key: str  # "" for calls where no key was pressed
    name: str
    calls: int
    share: float  # percent of answered calls whose keys are known


class CampaignOut(Schema):
    id: int
    name: str
    status: str
    bridge: int
    flow: int | None
    audio: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    rows_set_aside: int
    counts: dict[str, int] = Field(description="Calls per status")
    total: int
    done: int
    percent: int
    keypresses: list[KeyCount] | None = Field(description="Answered calls by first key pressed")

    @staticmethod
    def of(campaign: Campaign) -> "CampaignOut":
        progress = campaign.progress()
        results = campaign_results(campaign)
        return CampaignOut(
            id=campaign.pk,
            name=campaign.name,
            status=campaign.status,
            bridge=campaign.bridge_id,
            flow=campaign.flow_id,
            audio=campaign.audio_id,
            created_at=campaign.created_at,
            started_at=campaign.started_at,
            finished_at=campaign.finished_at,
            rows_set_aside=campaign.rows_set_aside,
            counts=progress["counts"],
            total=progress["total"],
            done=progress["done"],
            percent=progress["percent"],
            keypresses=[
                KeyCount(key=c.key, name=c.name, calls=c.calls, share=c.share)
                for c in results.choices
            ]
            if results
            else None,
        )


def _csv_of(body: CampaignIn) -> bytes:
    """The rows as the CSV the page would upload (its importer reads both the same way)."""
    if body.csv is not None and body.rows is not None:
        raise Problem(422, "Send `rows` or `csv`, not both.")
    if body.csv is not None:
        return body.csv.encode()
    if not body.rows:
        raise Problem(422, "Send the numbers to call: `rows` (objects with a number) or `csv`.")
    columns = list(dict.fromkeys(column for row in body.rows for column in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(body.rows)
    return text.getvalue().encode()


def _page_defaults() -> dict[str, object]:
    """What the page's form holds before anyone types (the pace, the calling zone…): a field
    the body leaves out is left as the page would leave it."""
    blank = CampaignForm()
    return {
        name: value
        for name in blank.fields
        if (value := blank.get_initial_for_field(blank.fields[name], name)) is not None
    }


@router.post(
    "/campaigns",
    response={202: CampaignOut, WRITE_REFUSED: ProblemOut},
    auth=Scope("campaigns:write"),
    summary="Make a campaign",
)
def make_campaign(request: HttpRequest, body: CampaignIn) -> Status[CampaignOut]:
    """Answered at once, `importing`: a worker checks the rows, then it is a `draft` (rows set
    aside are counted in `rows_set_aside`). Start it with POST /campaigns/{id}/start."""
    key = key_of(request)
    upload = SimpleUploadedFile("api.csv", _csv_of(body), content_type="text/csv")
    given = body.model_dump(exclude={"rows", "csv"}, exclude_none=True)
    form = CampaignForm(_page_defaults() | given, {"csv_file": upload})
    if not form.is_valid():
        raise form_problem(form)
    return Status(202, CampaignOut.of(form.create(None, api_key=key)))


@router.get(
    "/campaigns",
    response={200: list[CampaignOut], READ_REFUSED: ProblemOut},
    auth=Scope("campaigns:read"),
    summary="List the latest campaigns",
)
def list_campaigns(request: HttpRequest) -> list[CampaignOut]:
    return [CampaignOut.of(campaign) for campaign in Campaign.objects.all()[:LISTED]]


def _campaign(campaign_id: int) -> Campaign:
    campaign = Campaign.objects.select_related("flow").filter(pk=campaign_id).first()
    if campaign is None:
        if (upload := CampaignImport.that_removed(campaign_id)) is not None:
            raise Problem(410, f"{upload.why_not_imported} Nothing was kept.")
        raise Problem(404, f"There is no campaign #{campaign_id}.")
    return campaign


@router.get(
    "/campaigns/{campaign_id}",
    response={200: CampaignOut, READ_REFUSED | {404, 410}: ProblemOut},
    auth=Scope("campaigns:read"),
    summary="Read a campaign: progress and keypress results",
)
def read_campaign(request: HttpRequest, campaign_id: CampaignId) -> CampaignOut:
    return CampaignOut.of(_campaign(campaign_id))


@router.post(
    "/campaigns/{campaign_id}/{action}",
    response={200: CampaignOut, WRITE_REFUSED | {404, 410}: ProblemOut},
    auth=Scope("campaigns:write"),
    summary="Start, pause, resume or stop a campaign",
)
def campaign_action(request: HttpRequest, campaign_id: CampaignId, action: Action) -> CampaignOut:
    campaign = _campaign(campaign_id)
    if not act(campaign, action, None, api_key=key_of(request)):
        raise Problem(409, refused_words(campaign, action))
    return CampaignOut.of(campaign)
