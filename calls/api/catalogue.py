"""The catalogue, read only: the bridges calls are placed from, the flows with their variables
and key choices, the audio that can be played."""

from django.http import HttpRequest
from ninja import Router, Schema

from calls.api.keys import Scope
from calls.api.problems import READ_REFUSED, ProblemOut
from calls.models import AudioAsset, Bridge, IvrFlow

router = Router(tags=["catalogue"])


class BridgeOut(Schema):
    id: int
    number: str
    label: str
    is_active: bool


class VariableOut(Schema):
    name: str
    sensitive: bool  # masked everywhere once sent


class FlowOut(Schema):
    id: int
    flow_id: str
    name: str
    template: str
    variables: list[VariableOut]
    choices: dict[str, str]  # key pressed: what it means
    stop_key: str
    is_active: bool


class AudioOut(Schema):
    id: int
    name: str
    sound_id: str
    url: str
    is_active: bool


@router.get(
    "/catalogue/bridges",
    response={200: list[BridgeOut], READ_REFUSED: ProblemOut},
    auth=Scope("catalogue:read"),
)
def list_bridges(request: HttpRequest) -> list[BridgeOut]:
    return [
        BridgeOut(id=b.pk, number=b.number, label=b.label, is_active=b.is_active)
        for b in Bridge.objects.all()
    ]


@router.get(
    "/catalogue/flows",
    response={200: list[FlowOut], READ_REFUSED: ProblemOut},
    auth=Scope("catalogue:read"),
)
def list_flows(request: HttpRequest) -> list[FlowOut]:
    return [
        FlowOut(
            id=flow.pk,
            flow_id=flow.flow_id,
            name=flow.name,
            template=flow.template,
            variables=[VariableOut(name=n, sensitive=s) for n, s in flow.variable_specs],
            choices={str(k): str(v) for k, v in (flow.choices or {}).items()},
            stop_key=flow.stop_key,
            is_active=flow.is_active,
        )
        for flow in IvrFlow.objects.all()
    ]


@router.get(
    "/catalogue/audio",
    response={200: list[AudioOut], READ_REFUSED: ProblemOut},
    auth=Scope("catalogue:read"),
)
def list_audio(request: HttpRequest) -> list[AudioOut]:
    return [
        AudioOut(id=a.pk, name=a.name, sound_id=a.sound_id, url=a.url, is_active=a.is_active)
        for a in AudioAsset.objects.all()
    ]
