"""Calls over the API: place one (through the call form, as the page does: the same rules and
words, stored pending and sent by a worker), read one, list them with the log's filters and
cursor."""

import uuid
from datetime import datetime
from typing import Annotated

from django.http import HttpRequest, QueryDict
from ninja import Field, Path, Query, Router, Schema, Status

from calls.api.idempotency import claim_of
from calls.api.keys import Scope, key_of
from calls.api.problems import (
    READ_REFUSED,
    WRITE_REFUSED,
    FieldError,
    Problem,
    ProblemOut,
    form_problem,
)
from calls.engine.sends import queue_send
from calls.forms import CallFilterForm, PlaceCallForm
from calls.models import AuditEntry, CallLog
from calls.paging import Cursor, keyset_page
from calls.vocabulary import variable_field, variable_of

router = Router(tags=["calls"])
# The call form's own key is made from the request's Idempotency-Key claim (uuid5 in this
# namespace): a retry that takes over an abandoned claim gets the call stored, not a second.
CALL_KEYS = uuid.UUID("6f1d9a52-61b4-4f7e-9a43-0c2be1f3a8d7")
# Ids as the database holds them: anything larger is no call, refused before a query.
CallId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class CallIn(Schema):
    bridge: int = Field(ge=1, le=2**31 - 1, description="A bridge's id (GET /catalogue/bridges)")
    to: str = Field(description="The number to call, with country code, e.g. +91 88671 35123")
    flow: int | None = Field(None, ge=1, le=2**31 - 1, description="An IVR flow's id")
    audio: int | None = Field(None, ge=1, le=2**31 - 1, description="An audio's id")
    audio_url: str = Field("", description="Or a public MP3 or WAV link (not with `audio`)")
    variables: dict[str, str] = Field(
        default_factory=dict, description='The flow\'s variables by name, e.g. {"otp": "4821"}'
    )
    name: str = Field("", description="Campaign name at the provider, e.g. obd_api_call")
    interval: int = Field(
        0, description="Minutes before the provider retries: 0, 5, 15, 30, 45, 60"
    )
    webhook_id: str = ""
    at: str | None = Field(
        None,
        description="Call at this later instant (ISO 8601 with offset, at most 30 days ahead); "
        "empty: now",
        examples=["2026-12-05T10:30:00+05:30"],
    )
    call_again: bool = Field(False, description="Ring a number called in the last minutes anyway")


class CallOut(Schema):
    id: int
    status: str
    to: str
    bridge: int
    flow: int | None
    audio: int | None
    campaign: int | None
    name: str
    interval: int
    variables: dict[str, str] = Field(description="As stored: sensitive values masked")
    call_at: datetime | None = Field(description="Not sent before this instant")
    created_at: datetime
    submitted_at: datetime | None
    outcome_at: datetime | None
    provider_id: str
    provider_status: str
    attempts: int
    duration: int | None
    keypresses: str
    error: str

    @staticmethod
    def of(call: CallLog) -> "CallOut":
        return CallOut(
            id=call.pk,
            status=call.status,
            to=call.to,
            bridge=call.bridge_id,
            flow=call.flow_id,
            audio=call.audio_id,
            campaign=call.campaign_id,
            name=call.name,
            interval=call.interval,
            variables={str(k): str(v) for k, v in call.variables.items()},
            call_at=call.not_before,
            created_at=call.created_at,
            submitted_at=call.submitted_at,
            outcome_at=call.outcome_at,
            provider_id=call.provider_id,
            provider_status=call.provider_status,
            attempts=call.attempts,
            duration=call.duration,
            keypresses=call.keypresses,
            error=call.error,
        )


class CallPage(Schema):
    calls: list[CallOut]
    older: str | None = Field(description="Pass as `before` for the next (older) page")
    newer: str | None = Field(description="Pass as `after` for the newer page")


class CallFilters(Schema):
    q: str | None = Field(None, description="A number (or its ending) or a provider id")
    status: str | None = None
    bridge: str | None = None
    flow: str | None = None
    campaign: str | None = None
    kind: str | None = Field(None, description="single or campaign")
    pressed: str | None = Field(None, description="A key pressed first, or none")
    since: str | None = Field(None, description="A day, e.g. 2026-11-27")
    until: str | None = None
    before: str | None = Field(None, description="The `older` cursor of a page")
    after: str | None = Field(None, description="The `newer` cursor of a page")


def _form_data(body: CallIn, form_key: uuid.UUID) -> dict[str, object]:
    data: dict[str, object] = {
        name: value
        for name, value in body.model_dump(exclude={"variables", "call_again"}).items()
        if value is not None
    }
    data |= {variable_field(name): value for name, value in body.variables.items()}
    data["idempotency_key"] = str(form_key)
    if body.call_again:
        data["call_again"] = "on"
    return data


def _body_name(field: str) -> str:
    variable = variable_of(field)
    return f"variables.{variable}" if variable is not None else field


@router.post(
    "/calls",
    response={
        201: CallOut,
        200: CallOut,
        WRITE_REFUSED: ProblemOut,
    },
    summary="Place a call",
    auth=Scope("calls:write"),
)
def place_call(request: HttpRequest, body: CallIn) -> Status[CallOut]:
    """Stored pending and answered at once; a worker sends it (now, or at `at`). The same
    rules as the Place a call page: the do-not-call list, a number called minutes ago, the
    flow's variables."""
    key = key_of(request)
    claim = claim_of(request)
    form_key = uuid.uuid5(CALL_KEYS, str(claim)) if claim else uuid.uuid4()
    form = PlaceCallForm(_form_data(body, form_key))
    # The page shows only the chosen flow's variables; a client may send any name, and a
    # misspelt one would otherwise be dropped without a word.
    unknown = [name for name in body.variables if variable_field(name) not in form.fields]
    if not form.is_valid() or unknown:
        fields = {name: _body_name(name) for name in form.errors}
        problem = form_problem(form, fields)
        takes = ", ".join(form.variable_values(dict(form.data))) or "no variables"
        problem.errors += [
            FieldError(field=f"variables.{name}", message=f"Not a variable of this flow ({takes}).")
            for name in unknown
        ]
        raise problem
    call, created = form.save(None, api_key=key)
    if created:
        detail = "for later" if call.is_scheduled else ""
        AuditEntry.record(None, AuditEntry.Action.PLACED, call=call, detail=detail, api_key=key)
        queue_send(call)
    return Status(201 if created else 200, CallOut.of(call))


@router.get(
    "/calls/{call_id}",
    response={200: CallOut, READ_REFUSED | {404}: ProblemOut},
    summary="Read a call",
    auth=Scope("calls:read"),
)
def read_call(request: HttpRequest, call_id: CallId) -> CallOut:
    call = CallLog.objects.filter(pk=call_id).first()
    if call is None:
        raise Problem(404, f"There is no call #{call_id}.")
    return CallOut.of(call)


@router.get(
    "/calls",
    response={200: CallPage, READ_REFUSED: ProblemOut},
    summary="List calls",
    auth=Scope("calls:read"),
)
def list_calls(request: HttpRequest, filters: Query[CallFilters]) -> CallPage:
    """Newest dialled first, 50 a page, with the call log's filters."""
    params = QueryDict(mutable=True)
    for name, value in filters.model_dump().items():
        if value is not None:
            params[name] = value
    form = CallFilterForm(params)
    if not form.is_valid():
        raise form_problem(form)
    for cursor in ("before", "after"):
        if (text := params.get(cursor)) and Cursor.read(text) is None:
            raise Problem(422, f"`{cursor}` is a cursor from a page (`older` or `newer`).")
    page = keyset_page(form.filter(CallLog.objects.all()), params)
    return CallPage(
        calls=[CallOut.of(call) for call in page.rows],
        older=str(page.older) if page.older else None,
        newer=str(page.newer) if page.newer else None,
    )
