"""The two staff roles. Groups are (re)made after every migrate so permissions never drift."""

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import user_passes_test
from django.contrib.auth.models import AnonymousUser, Group, Permission, PermissionsMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBase

if TYPE_CHECKING:
    from calls.models import CallLog

AGENT_PERMISSIONS = [
    "add_calllog",
    "view_calllog",
    "view_bridge",
    "view_ivrflow",
    "view_audioasset",
    "view_campaign",
]
SUPERVISOR_PERMISSIONS = (
    AGENT_PERMISSIONS
    + [
        f"{action}_{model}"
        for model in ("bridge", "ivrflow", "audioasset", "donotcall", "campaign")
        for action in ("add", "change", "delete")
    ]
    + ["view_donotcall"]
)
ROLES = {"Agents": AGENT_PERMISSIONS, "Supervisors": SUPERVISOR_PERMISSIONS}
# Supervisors act on anyone's call (cancel it, retry it); an agent only on the calls they placed.
ANY_CALL_PERMISSION = "calls.change_campaign"


def ensure_groups(**kwargs: object) -> None:
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(
            Permission.objects.filter(content_type__app_label="calls", codename__in=codenames)
        )


def permission_required[V: Callable[..., HttpResponseBase]](perm: str) -> Callable[[V], V]:
    """Django's decorator with `raise_exception`, but the 403 page then names what is missing."""

    def check(user: AbstractBaseUser | AnonymousUser) -> bool:
        if isinstance(user, PermissionsMixin) and user.has_perm(perm):
            return True
        raise PermissionDenied(missing_permission(perm))

    return user_passes_test(check)


def missing_permission(perm: str) -> str:
    """What the 403 page says: the permission in words and which groups have it."""
    app_label, codename = perm.split(".", 1)
    name = (
        Permission.objects.filter(content_type__app_label=app_label, codename=codename)
        .values_list("name", flat=True)
        .first()
    )
    groups = [group for group, codenames in ROLES.items() if codename in codenames]
    said = f"This page needs the permission “{name or codename}” ({perm}), which your account does not have."
    if not groups:
        return f"{said} Only an administrator has it."
    return f"{said} The {' and '.join(groups)} group{'s have' if len(groups) > 1 else ' has'} it: ask an administrator to add you."


def may_act_on(user: AbstractBaseUser | AnonymousUser, call: "CallLog") -> bool:
    """Whether `user` may cancel or retry `call`: their own, or anyone's for a supervisor."""
    if not isinstance(user, PermissionsMixin) or not user.has_perm("calls.add_calllog"):
        return False
    return user.has_perm(ANY_CALL_PERMISSION) or call.created_by_id == user.pk


def check_may_act_on(user: AbstractBaseUser | AnonymousUser, call: "CallLog", act: str) -> None:
    """A 403 that says whose call it is and who may `act` on it."""
    if not may_act_on(user, call):
        if call.created_by is None:  # through an API key, or by the system
            by = call.placed_by or "the system"
            raise PermissionDenied(
                f"Call #{call.pk} was placed by {by}: only a supervisor may {act} it."
            )
        placed_by = call.created_by.get_username()
        raise PermissionDenied(
            f"Call #{call.pk} was placed by {placed_by}: only they or a supervisor may {act} it."
        )
