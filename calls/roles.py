"""The two staff roles. Groups are (re)made after every migrate so permissions never drift."""

from collections.abc import Callable

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import user_passes_test
from django.contrib.auth.models import AnonymousUser, Group, Permission, PermissionsMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBase

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
